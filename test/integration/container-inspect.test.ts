import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import tarStream from 'tar-stream';
import { InvalidArgumentError, InvalidStateError, NotFoundError, Runtime, UnsafeContentError } from '../../src/index.js';
import { cannotRun, makeWorld, text, type World } from '../fixtures/world.js';

const skip = cannotRun();
if (skip !== undefined) console.log(`# skipping container inspect/copy integration tests: ${skip}`);

interface TarEntry {
  type: string;
  mode: number;
  linkname?: string;
  content: string;
}

/** Reads a tar stream into a map of entry name → entry. */
async function untar(stream: Readable): Promise<Map<string, TarEntry>> {
  const out = new Map<string, TarEntry>();
  const extract = tarStream.extract();
  stream.on('error', (e) => extract.destroy(e));
  stream.pipe(extract as unknown as NodeJS.WritableStream);
  for await (const entry of extract) {
    let content = '';
    for await (const chunk of entry) content += (chunk as Buffer).toString();
    out.set(entry.header.name, {
      type: entry.header.type ?? '?',
      mode: entry.header.mode ?? 0,
      ...(entry.header.linkname ? { linkname: entry.header.linkname } : {}),
      content,
    });
  }
  return out;
}

/** A tar stream of the given entries. */
function tarOf(entries: { name: string; type?: 'file' | 'directory' | 'symlink'; content?: string; linkname?: string; mode?: number }[]): Readable {
  const pack = tarStream.pack();
  for (const e of entries) {
    if (e.type === 'directory') pack.entry({ name: e.name, type: 'directory', mode: e.mode ?? 0o755 });
    else if (e.type === 'symlink') pack.entry({ name: e.name, type: 'symlink', linkname: e.linkname! });
    else pack.entry({ name: e.name, mode: e.mode ?? 0o644 }, e.content ?? '');
  }
  pack.finalize();
  return pack as unknown as Readable;
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('container inspect, top, pause, copy', { skip }, () => {
  let world: World;
  let hostDir: string;
  before(async () => {
    world = await makeWorld();
    hostDir = await mkdtemp(join(tmpdir(), 'dl-host-secret-'));
    await writeFile(join(hostDir, 'secret'), 'host secret\n');
    await mkdir(join(world.rootfs, 'data'));
    await writeFile(join(world.rootfs, 'data', 'gone'), 'deleted by the container\n');
    await writeFile(join(world.rootfs, 'data', 'kept'), 'kept\n');
  });
  after(async () => {
    await world?.dispose();
    if (hostDir !== undefined) await rm(hostDir, { recursive: true, force: true });
  });

  it('inspect gives Docker\'s shape for a running container, a stopped one and one of another Runtime', async () => {
    const c = await world.runtime.run({
      rootfs: world.rootfs,
      cmd: ['sleep', '1000'],
      name: 'inspected',
      hostname: 'box',
      env: { GREETING: 'hi' },
      cwd: '/data',
      detached: true,
      stdio: 'ignore',
      resources: { memory: 64 * 1024 * 1024, pids: 50, cpus: 0.5 },
      mounts: [{ type: 'tmpfs', target: '/scratch' }],
    });
    try {
      const i = await c.inspect();
      assert.equal(i.Id, c.id);
      assert.equal(i.Name, '/inspected');
      assert.equal(i.Path, 'sleep');
      assert.deepEqual(i.Args, ['1000']);
      assert.equal(i.State.Status, 'running');
      assert.equal(i.State.Running, true);
      assert.equal(i.State.Paused, false);
      assert.equal(i.State.Pid, c.pid);
      assert.notEqual(i.State.StartedAt, '0001-01-01T00:00:00Z');
      assert.equal(i.Config.Hostname, 'box');
      assert.ok(i.Config.Env.includes('GREETING=hi'), i.Config.Env.join(' '));
      assert.deepEqual(i.Config.Cmd, ['sleep', '1000']);
      assert.equal(i.Config.Entrypoint, null);
      assert.equal(i.Config.WorkingDir, '/data');
      assert.equal(i.HostConfig.Memory, 64 * 1024 * 1024);
      assert.equal(i.HostConfig.PidsLimit, 50);
      assert.equal(i.HostConfig.NanoCpus, 5e8);
      assert.deepEqual(i.Mounts, [{ Type: 'tmpfs', Source: 'tmpfs', Destination: '/scratch', RW: true }]);
      assert.deepEqual(JSON.parse(JSON.stringify(i)), i, 'inspect is plain data');

      const other = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir });
      const seen = await (await other.get('inspected')).inspect();
      assert.equal(seen.State.Status, 'running');
      assert.deepEqual(seen.Config, i.Config);
      assert.deepEqual(seen.HostConfig, i.HostConfig);

      await c.stop({ timeoutMs: 2000 });
      assert.equal((await (await other.get(c.id)).inspect()).State.Status, 'exited');
      const stopped = await c.inspect();
      assert.equal(stopped.State.Status, 'exited');
      assert.equal(stopped.State.Running, false);
      assert.equal(stopped.State.Pid, 0);
      assert.equal(stopped.State.ExitCode, 143);
      assert.notEqual(stopped.State.FinishedAt, '0001-01-01T00:00:00Z');
    } finally {
      await c.remove({ force: true });
    }
    await assert.rejects(c.inspect(), InvalidStateError);
  });

  it('top lists a sleep started in the container, with its pid inside', async () => {
    await using c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'sleep 1234 & exec sleep 1000'], stdio: 'ignore' });
    let procs = await c.top();
    await until('sleep 1234 in top()', async () => {
      procs = await c.top();
      return procs.some((p) => p.command.join(' ') === 'sleep 1234');
    });
    const sleeper = procs.find((p) => p.command.join(' ') === 'sleep 1234')!;
    assert.equal(sleeper.uid, 0);
    assert.ok(sleeper.containerPid !== undefined && sleeper.containerPid < 10, `container pid ${sleeper.containerPid}`);
    assert.notEqual(sleeper.pid, sleeper.containerPid);
    assert.ok(procs.some((p) => p.pid === c.pid), 'pid 1 listed');
    assert.ok(!procs.some((p) => p.pid === process.pid), 'the caller is not in the container');
    await c.kill();
    await c.wait();
    await assert.rejects(c.top(), InvalidStateError);
  });

  it('pause freezes the container (a counter stops), unpause resumes it, seen from another process too', async () => {
    await using c = await world.runtime.run({
      rootfs: world.rootfs,
      cmd: ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /counter; sleep 0.02; done'],
      stdio: 'ignore',
    });
    const counterFile = join(world.runtime.pathsOf(c.id).upper, 'counter');
    const counter = async () => Number((await readFile(counterFile, 'utf8').catch(() => '0')).trim() || '0');
    await until('the counter to run', async () => (await counter()) > 2);
    await c.pause();
    assert.equal(c.status, 'paused');
    const other = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir });
    assert.equal((await other.get(c.id)).status, 'paused');
    assert.equal((await c.inspect()).State.Paused, true);
    const frozenAt = await counter();
    await sleep(300);
    assert.equal(await counter(), frozenAt, 'the counter advanced while paused');
    await c.unpause();
    assert.equal(c.status, 'running');
    await until('the counter to advance again', async () => (await counter()) > frozenAt);
  });

  it('illegal pause transitions throw InvalidStateError', async () => {
    await using c = await world.runtime.create({ rootfs: world.rootfs, cmd: ['sleep', '1000'], stdio: 'ignore' });
    await assert.rejects(c.pause(), InvalidStateError, 'pause a created container');
    await assert.rejects(c.unpause(), InvalidStateError, 'unpause a created container');
    await c.start();
    await assert.rejects(c.unpause(), InvalidStateError, 'unpause a running container');
    await c.pause();
    await assert.rejects(c.pause(), InvalidStateError, 'pause a paused container');
    await assert.rejects(c.start(), InvalidStateError, 'start a paused container');
    await assert.rejects(c.remove(), InvalidStateError, 'remove a paused container without force');
    await c.unpause();
    await c.kill();
    await c.wait();
    await assert.rejects(c.pause(), InvalidStateError, 'pause a stopped container');
  });

  it('kill, stop and remove({ force }) of a paused container work', async () => {
    const killed = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '1000'], stdio: 'ignore' });
    await killed.pause();
    await killed.kill();
    const exit = await killed.wait({ signal: AbortSignal.timeout(5000) });
    assert.equal(exit.signal, 'SIGKILL');
    await killed.remove();

    const stopped = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '1000'], stdio: 'ignore' });
    await stopped.pause();
    const end = await stopped.stop({ timeoutMs: 1000, signal: AbortSignal.timeout(5000) });
    assert.ok(end.exitCode === 143 || end.exitCode === 137, `exit ${end.exitCode}`);
    await stopped.remove();

    const removed = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '1000'], stdio: 'ignore' });
    const cgroups = (await removed.inspect()) && (await readdir('/sys/fs/cgroup/freezer')).filter((d) => d === `dockless-${removed.id}`);
    assert.deepEqual(cgroups, [`dockless-${removed.id}`], 'the container has a freezer cgroup');
    await removed.pause();
    await removed.remove({ force: true });
    assert.equal(removed.status, 'removed');
    assert.ok(!existsSync(`/sys/fs/cgroup/freezer/dockless-${removed.id}`), 'freezer cgroup left behind');
  });

  it('copyIn and copyOut round-trip files, directories, symlinks and modes, running and stopped', async () => {
    const src = join(world.base, 'payload');
    await mkdir(join(src, 'sub'), { recursive: true });
    await writeFile(join(src, 'a.txt'), 'alpha\n');
    await chmod(join(src, 'a.txt'), 0o640);
    await writeFile(join(src, 'sub', 'run.sh'), '#!/bin/sh\necho ran\n');
    await chmod(join(src, 'sub', 'run.sh'), 0o755);
    await symlink('a.txt', join(src, 'link'));
    await chmod(join(src, 'sub'), 0o750);

    await using c = await world.runtime.run({
      rootfs: world.rootfs,
      cmd: ['sh', '-c', 'rm /data/gone; while [ ! -f /data/done ]; do sleep 0.02; done; cat /data/payload/link; /data/payload/sub/run.sh; stat -c %a /data/payload/a.txt /data/payload/sub'],
    });
    const out = text(c.stdout);
    await until('/data/gone to be deleted', () => existsSync(join(world.runtime.pathsOf(c.id).upper, 'data', 'gone')));
    await c.copyIn(src, '/data');
    await c.copyIn(tarOf([{ name: 'done' }]), '/data');
    assert.equal((await c.wait()).exitCode, 0);
    assert.equal(await out, 'alpha\nran\n640\n750\n');

    const tar = await untar(await c.copyOut('/data'));
    assert.ok(!tar.has('data/gone'), 'a file the container deleted is copied out');
    assert.equal(tar.get('data/kept')?.content, 'kept\n');
    assert.equal(tar.get('data/payload/a.txt')?.content, 'alpha\n');
    assert.equal(tar.get('data/payload/a.txt')?.mode, 0o640);
    assert.equal(tar.get('data/payload/sub')?.type, 'directory');
    assert.equal(tar.get('data/payload/sub')?.mode, 0o750);
    assert.equal(tar.get('data/payload/sub/run.sh')?.mode, 0o755);
    assert.equal(tar.get('data/payload/link')?.type, 'symlink');
    assert.equal(tar.get('data/payload/link')?.linkname, 'a.txt');

    await c.copyIn(tarOf([{ name: 'later.txt', content: 'after the end\n', mode: 0o600 }]), '/data/payload/sub');
    const later = await untar(await c.copyOut('/data/payload/sub/later.txt'));
    assert.deepEqual([...later.keys()], ['later.txt']);
    assert.equal(later.get('later.txt')?.content, 'after the end\n');
    assert.equal(later.get('later.txt')?.mode, 0o600);
    const whole = await untar(await c.copyOut('/'));
    assert.equal(whole.get('data/payload/sub/later.txt')?.content, 'after the end\n');
    assert.ok(!whole.has('') && !whole.has('/'), 'the root has no entry of its own');
    await assert.rejects(c.copyOut('/nowhere'), NotFoundError);
    await assert.rejects(c.copyIn(tarOf([{ name: 'x' }]), '/data/kept'), InvalidArgumentError);
  });

  // A container controls its own symlinks: resolved on the host, `/evil -> <host dir>` would hand the host's files out.
  it('copyOut through a planted symlink reads the container\'s file, never the host\'s', async () => {
    const plant = `ln -s ${hostDir} /evil && ln -s ../../../../../../../..${hostDir} /evil2 && touch /planted && exec sleep 1000`;
    await using c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', plant], stdio: 'ignore' });
    await until('the links', () => existsSync(join(world.runtime.pathsOf(c.id).upper, 'planted')));
    for (const state of ['running', 'stopped']) {
      for (const p of ['/evil/secret', '/evil2/secret', '/evil/']) await assert.rejects(c.copyOut(p), NotFoundError, `${state} ${p}`);
      if (state === 'running') await c.kill();
      await c.wait();
    }
    const withFile = `mkdir -p ${hostDir} && echo container file > ${hostDir}/secret && ${plant}`;
    await using c2 = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', withFile], stdio: 'ignore' });
    await until('the links', () => existsSync(join(world.runtime.pathsOf(c2.id).upper, 'planted')));
    for (const state of ['running', 'stopped']) {
      for (const p of ['/evil/secret', '/evil2/secret']) {
        const tar = await untar(await c2.copyOut(p));
        assert.equal(tar.get('secret')?.content, 'container file\n', `${state} ${p}`);
      }
      if (state === 'running') await c2.kill();
      await c2.wait();
    }
  });

  // The same attack the other way: a planted link must not make copyIn write on the host.
  it('copyIn through a planted symlink lands inside the container\'s root', async () => {
    const plant = `mkdir -p ${hostDir} && ln -s ${hostDir} /evil && ln -s ../../../../../../..${hostDir} /evil2 && touch /planted && exec sleep 1000`;
    await using c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', plant], stdio: 'ignore' });
    const upper = world.runtime.pathsOf(c.id).upper;
    await until('the links', () => existsSync(join(upper, 'planted')));
    for (const state of ['running', 'stopped']) {
      await c.copyIn(tarOf([{ name: `a-${state}`, content: 'x\n' }]), '/evil');
      await c.copyIn(tarOf([{ name: `b-${state}`, content: 'x\n' }]), '/evil2');
      assert.deepEqual((await readdir(hostDir)).sort(), ['secret'], `copyIn wrote on the host (${state})`);
      assert.equal(await readFile(join(upper, hostDir, `a-${state}`), 'utf8'), 'x\n');
      assert.equal(await readFile(join(upper, hostDir, `b-${state}`), 'utf8'), 'x\n');
      // A link made by the tar itself, then used by a later entry.
      await assert.rejects(
        c.copyIn(tarOf([{ name: `l-${state}`, type: 'symlink', linkname: hostDir }, { name: `l-${state}/through`, content: 'x\n' }]), '/'),
        InvalidArgumentError,
      );
      await assert.rejects(c.copyIn(tarOf([{ name: '../../../../escape', content: 'x\n' }]), '/'), UnsafeContentError);
      assert.deepEqual((await readdir(hostDir)).sort(), ['secret'], `copyIn wrote on the host (${state})`);
      if (state === 'running') await c.kill();
      await c.wait();
    }
  });
});
