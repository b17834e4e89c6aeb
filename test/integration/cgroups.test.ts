import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { InvalidArgumentError, InvalidStateError, NotFoundError, Runtime, type Container } from '../../src/index.js';
import { detectCgroups } from '../../src/runtime/cgroups/detect.js';
import { cannotRun, cgroupDirs, makeWorld, text, type World } from '../fixtures/world.js';

function whyNot(): string | undefined {
  const base = cannotRun();
  if (base !== undefined) return base;
  const host = detectCgroups();
  const missing = ['memory', 'pids', 'cpu'].filter((c) => !host.controllers.has(c));
  if (missing.length > 0) return `cgroup controllers not available to this process: ${missing.join(', ')} (cgroups: ${host.mode})`;
  return undefined;
}

const skip = whyNot();
if (skip !== undefined) console.log(`# skipping cgroups integration tests: ${skip}`);

const MiB = 1024 * 1024;

/** The first line a stream writes. */
async function firstLine(stream: NodeJS.ReadableStream | null): Promise<string> {
  let buf = '';
  for await (const chunk of stream!) {
    buf += chunk.toString();
    if (buf.includes('\n')) break;
  }
  return buf.split('\n')[0]!;
}

/** The cgroup of host process `pid` in each hierarchy, by controller list. */
async function cgroupsOf(pid: number): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const line of (await readFile(`/proc/${pid}/cgroup`, 'utf8')).split('\n').filter(Boolean)) {
    const [, controllers, path] = line.split(':') as [string, string, string];
    out.set(controllers, path);
  }
  return out;
}

describe('cgroups', { skip }, () => {
  let world: World;
  let before0: string[];
  const parentName = `dl-it-parent-${process.pid}`;
  // This test's containers: the hierarchies' roots are shared with every other
  // process of the machine, whose containers come and go meanwhile.
  const ids = new Set<string>();
  /** The cgroup directories that are this test's own (its containers', its parent's). */
  const own = async (): Promise<string[]> =>
    (await cgroupDirs()).filter((dir) => dir.includes(parentName) || [...ids].some((id) => dir.includes(id)));

  before(async () => {
    world = await makeWorld();
    for (const launch of ['run', 'create'] as const) {
      const original = world.runtime[launch].bind(world.runtime);
      world.runtime[launch] = async (...args: Parameters<typeof original>) => {
        const c = (await Reflect.apply(original, undefined, args)) as Awaited<ReturnType<typeof original>>;
        ids.add(c.id);
        return c;
      };
    }
    before0 = await own();
  });
  after(async () => {
    await world?.dispose();
    // The cgroupParent test's parent directories are the test's own to remove.
    for (const h of detectCgroups().hierarchies) {
      const dir = join(h.dir, parentName);
      if (existsSync(dir)) await rmdir(dir).catch(() => undefined);
    }
    if (before0 !== undefined) assert.deepEqual(await own(), before0, 'cgroup directories leaked');
  });

  /** Kills, waits for and removes a container; returns how it ended. */
  async function finish(c: Container) {
    if (c.status === 'running' || c.status === 'created') await c.kill('SIGKILL');
    const exit = await c.wait();
    await c.remove();
    return exit;
  }

  it("puts pid 1 in the container's memory, pids and cpuacct cgroups", async () => {
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['probe', 'sleep', '10'], stdio: 'ignore' });
    const host = await cgroupsOf(c.pid);
    for (const ctrl of ['memory', 'pids', 'cpuacct']) {
      const key = [...host.keys()].find((k) => k.split(',').includes(ctrl));
      if (key === undefined) continue;
      assert.match(host.get(key)!, new RegExp(`/dockless-${c.id}$`), `${ctrl} cgroup of pid 1`);
    }
    await finish(c);
  });

  // After a runtime's first container the shim, not this process, makes the cgroups: they must be the same.
  it("makes a runtime's later containers' cgroups in the shim as it made the first's: limits, device rules, removal", async () => {
    const runtime = new Runtime({ root: join(world.base, 'shim-root'), stateDir: join(world.base, 'shim-state') });
    const host = detectCgroups();
    /** The container's cgroup files that hold its limits, keyed by controller, its id taken out. */
    const limits = async (c: Container) => {
      const out: Record<string, string> = {};
      const own = await cgroupsOf(c.pid);
      for (const [ctrl, file] of [['memory', 'memory.limit_in_bytes'], ['pids', 'pids.max'], ['devices', 'devices.list']] as const) {
        const h = host.controllers.get(ctrl);
        const key = [...own.keys()].find((k) => k.split(',').includes(ctrl));
        if (h === undefined || h.version !== 1 || key === undefined) continue;
        assert.match(own.get(key)!, new RegExp(`/dockless-${c.id}$`), `${ctrl} cgroup of pid 1`);
        out[ctrl] = await readFile(join(h.mount, own.get(key)!, file), 'utf8');
      }
      return out;
    };
    const made: Container[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const c = await runtime.run({ rootfs: world.rootfs, cmd: ['probe', 'sleep', '30'], stdio: 'ignore', resources: { memory: 64 * MiB, pids: 32 } });
        ids.add(c.id);
        made.push(c);
      }
      const [first, ...later] = await Promise.all(made.map(limits));
      assert.equal(first!.memory, `${64 * MiB}\n`);
      assert.equal(first!.pids, '32\n');
      for (const l of later) assert.deepEqual(l, first);
    } finally {
      for (const c of made) await finish(c);
      await runtime[Symbol.asyncDispose]();
    }
    assert.deepEqual((await own()).filter((dir) => made.some((c) => dir.includes(c.id))), [], 'cgroups left after removal');
  });

  // Without limits to show after the exit, the shim removes the container's cgroups as it exits: those it made, and those
  // made here for a runtime's first container (which remove() used to take on the caller's thread, after the exit).
  it('has the shim remove an unlimited container\'s cgroups at its exit, whoever made them; remove() takes them when the shim was killed', async () => {
    const runtime = new Runtime({ root: join(world.base, 'rmdir-root'), stateDir: join(world.base, 'rmdir-state') });
    const dirsOf = async (c: Container) => (await cgroupDirs()).filter((dir) => dir.includes(c.id));
    try {
      // The runtime's first container has its cgroups made here; the shim makes the later ones'.
      for (const made of ['here', 'by the shim']) {
        const c = await runtime.run({ rootfs: world.rootfs, cmd: ['probe', 'sleep', '30'], stdio: 'ignore' });
        ids.add(c.id);
        assert.ok((await dirsOf(c)).length > 0, `the running container has cgroups (made ${made})`);
        await c.kill('SIGKILL');
        assert.deepEqual(await c.wait(), { exitCode: 137, signal: 'SIGKILL', oomKilled: false });
        // The shim removes them right after its exit line, with no call of ours.
        for (let i = 0; i < 100 && (await dirsOf(c)).length > 0; i++) await sleep(20);
        assert.deepEqual(await dirsOf(c), [], `cgroups (made ${made}) left after the exit`);
        // Zeros once they are gone, as for a stopped container in Docker.
        assert.deepEqual((await c.stats()).pids, { current: 0 });
        await c.remove();
        assert.deepEqual(await dirsOf(c), []);
      }

      // The shim killed: nothing removed them at the exit, so remove() does.
      const k = await runtime.run({ rootfs: world.rootfs, cmd: ['probe', 'sleep', '30'], stdio: 'ignore' });
      ids.add(k.id);
      const shim = Number((await readFile(`/proc/${k.pid}/stat`, 'utf8')).replace(/^.*\) /s, '').split(' ')[1]);
      assert.ok(shim > 1 && shim !== process.pid, `shim pid ${shim}`);
      process.kill(shim, 'SIGKILL');
      assert.equal((await k.wait()).exitCode, 137);
      assert.ok((await dirsOf(k)).length > 0, 'a killed shim removed nothing');
      await k.remove();
      assert.deepEqual(await dirsOf(k), [], 'cgroups left after remove() of a container whose shim was killed');
    } finally {
      await runtime[Symbol.asyncDispose]();
    }
  });

  it('shows the container its own cgroup as the root of its cgroup namespace', async () => {
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['probe', 'cat', '/proc/self/cgroup'] });
    const [out, exit] = await Promise.all([text(c.stdout), c.wait()]);
    await c.remove();
    assert.equal(exit.exitCode, 0);
    // Every hierarchy shows `/`: nothing of the host's tree is visible. It also shows that pid 1
    // was in its cgroups before it unshared the namespace (else it would see `/dockless-<id>`),
    // so nothing of the container ran outside them.
    for (const line of out.trim().split('\n')) assert.match(line, /:\/$/, line);
  });

  it('stops a fork bomb at pids: 32 with EAGAIN; the container and the host live on, and cleanup is complete', async () => {
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['probe', 'fork-bomb'], resources: { pids: 32 } });
    const line = await firstLine(c.stdout);
    const [n, errno] = line.split(' ');
    assert.equal(errno, 'EAGAIN', line);
    // init and probe are two of the 32.
    assert.equal(Number(n), 30, line);
    const stats = await c.stats();
    assert.deepEqual(stats.pids, { current: 32, limit: 32 });
    assert.equal(c.status, 'running');
    // The host can still fork.
    assert.equal(execFileSync('sh', ['-c', 'echo fine']).toString().trim(), 'fine');
    const exit = await finish(c);
    assert.equal(exit.exitCode, 137);
    assert.equal(exit.oomKilled, false);
    assert.deepEqual(await own(), before0);
  });

  it('contains a shell fork bomb that keeps trying', async () => {
    const c = await world.runtime.run({
      rootfs: world.rootfs,
      cmd: ['sh', '-c', 'b() { b | b & }; b; sleep 60'],
      resources: { pids: 32 },
      stdio: 'ignore',
    });
    await sleep(1000);
    const { pids } = await c.stats();
    assert.ok(pids.current <= 32, `pids.current ${pids.current}`);
    assert.equal(execFileSync('sh', ['-c', 'echo fine']).toString().trim(), 'fine');
    await finish(c);
    assert.deepEqual(await own(), before0);
  });

  it('OOM-kills a memory hog under memory: 64 MiB and reports oomKilled with exit code 137; the host is unharmed', async () => {
    const ownKills = () => {
      const mem = detectCgroups().controllers.get('memory')!;
      const file = mem.version === 1 ? 'memory.oom_control' : 'memory.events.local';
      return readFile(join(mem.dir, file), 'utf8').then((t) => /^oom_kill (\d+)$/m.exec(t)?.[1] ?? '0', () => 'n/a');
    };
    const killsBefore = await ownKills();
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['probe', 'hog', '1024'], resources: { memory: 64 * MiB } });
    const [out, exit] = await Promise.all([text(c.stdout), c.wait()]);
    assert.equal(out, '', 'the hog never got its 1 GiB');
    assert.deepEqual(exit, { exitCode: 137, signal: 'SIGKILL', oomKilled: true });
    const stats = await c.stats();
    assert.equal(stats.memory.limit, 64 * MiB);
    assert.ok(stats.memory.maxUsage === undefined || stats.memory.maxUsage <= 64 * MiB, `maxUsage ${stats.memory.maxUsage}`);
    await c.remove();
    // The kill stayed in the container: none in our own memory cgroup, and a container afterwards runs normally.
    assert.equal(await ownKills(), killsBefore);
    const ok = await world.runtime.run({ rootfs: world.rootfs, cmd: ['probe', 'hog', '16'], resources: { memory: 64 * MiB } });
    const [okOut, okExit] = await Promise.all([text(ok.stdout), ok.wait()]);
    await ok.remove();
    assert.equal(okOut.trim(), 'ok');
    assert.deepEqual(okExit, { exitCode: 0, signal: null, oomKilled: false });
  });

  it('gives a CPU-bound loop under cpus: 0.5 about half a core', async () => {
    const c = await world.runtime.run({
      rootfs: world.rootfs,
      cmd: ['sh', '-c', 'while :; do :; done'],
      resources: { cpus: 0.5 },
      stdio: 'ignore',
    });
    try {
      await sleep(300);
      const s1 = await c.stats();
      const t1 = process.hrtime.bigint();
      await sleep(2000);
      const s2 = await c.stats();
      const t2 = process.hrtime.bigint();
      const share = (s2.cpu.usageNanos - s1.cpu.usageNanos) / Number(t2 - t1);
      // The quota caps the share; a loaded machine may give less, so the floor is checked through
      // the kernel's own count of periods in which the quota stopped the loop.
      assert.ok(share <= 0.65, `the loop got ${share.toFixed(3)} of a core`);
      const record = JSON.parse(await readFile(world.runtime.pathsOf(c.id).record, 'utf8')) as { cgroups: { dir: string; controllers: string[] }[] };
      const cpu = record.cgroups.find((g) => g.controllers.includes('cpu'));
      assert.ok(cpu !== undefined, 'no cpu cgroup recorded');
      const throttled = /^nr_throttled (\d+)$/m.exec(await readFile(join(cpu.dir, 'cpu.stat'), 'utf8'));
      assert.ok(throttled !== null && Number(throttled[1]) > 0, `the quota never throttled the loop (share ${share.toFixed(3)})`);
    } finally {
      await finish(c);
    }
  });

  it('stats() reads sane figures without limits, and throws once the container is removed', async () => {
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['probe', 'sleep', '10'], stdio: 'ignore' });
    await sleep(50);
    const s = await c.stats();
    assert.ok(s.memory.usage > 0 && s.memory.usage < 256 * MiB, `memory.usage ${s.memory.usage}`);
    assert.equal(s.memory.limit, undefined);
    assert.ok(s.cpu.usageNanos > 0 && s.cpu.usageNanos < 10e9, `cpu ${s.cpu.usageNanos}`);
    assert.equal(s.pids.current, 2, 'init and the probe');
    assert.equal(s.pids.limit, undefined);
    await finish(c);
    await assert.rejects(c.stats(), InvalidStateError);
  });

  it('creates the container cgroup below cgroupParent', async () => {
    const c = await world.runtime.run({
      rootfs: world.rootfs,
      cmd: ['probe', 'sleep', '10'],
      stdio: 'ignore',
      cgroupParent: parentName,
      resources: { pids: 10 },
    });
    const pidsHierarchy = detectCgroups().controllers.get('pids')!;
    const dir = join(pidsHierarchy.dir, parentName, `dockless-${c.id}`);
    assert.equal((await readFile(join(dir, 'pids.max'), 'utf8')).trim(), '10');
    assert.ok((await readFile(join(dir, 'cgroup.procs'), 'utf8')).includes(String(c.pid)));
    await finish(c);
    assert.equal(existsSync(dir), false);
    assert.deepEqual(await readdir(join(pidsHierarchy.dir, parentName)).then((e) => e.filter((x) => x.startsWith('dockless-'))), []);
    // The parent is left in place for other containers; it is the caller's to remove.
    for (const h of detectCgroups().hierarchies) await rmdir(join(h.dir, parentName)).catch(() => undefined);
  });

  it('a limit the kernel refuses is a typed error naming the file, and leaves nothing behind', async () => {
    const state = await readdir(world.runtime.stateDir).catch(() => []);
    const cpus = Number(execFileSync('nproc', ['--all']).toString().trim());
    const err = await world.runtime
      .run({ rootfs: world.rootfs, cmd: ['true'], resources: { cpuset: String(cpus + 63) } })
      .catch((e: Error) => e);
    assert.ok(err instanceof InvalidArgumentError, String(err));
    assert.match(err.message, /cpuset\.cpus`: (EINVAL|ERANGE) \(resources\.cpuset\)$/);

    // Block I/O weights need BFQ (v1: blkio.bfq.weight, only in non-root cgroups) or io.weight (v2):
    // either the weight is written, or the error names the files that are missing.
    const io = await world.runtime
      .run({ rootfs: world.rootfs, cmd: ['probe', 'sleep', '10'], resources: { ioWeight: 300 }, stdio: 'ignore' })
      .catch((e: Error) => e);
    if (io instanceof Error) {
      assert.ok(io instanceof NotFoundError, String(io));
      assert.match(io.message, /resources\.ioWeight is not supported here: no `.*weight` or `.*weight`/);
    } else {
      const blkio = (await cgroupsOf(io.pid).catch(() => new Map<string, string>())).get('blkio');
      const h = detectCgroups().controllers.get('blkio');
      if (blkio !== undefined && h !== undefined && h.version === 1) {
        const dir = join(h.mount, blkio);
        const file = existsSync(join(dir, 'blkio.weight')) ? 'blkio.weight' : 'blkio.bfq.weight';
        assert.match(await readFile(join(dir, file), 'utf8'), /^(default )?300\n/);
      }
      await finish(io);
    }
    assert.deepEqual(await readdir(world.runtime.stateDir).catch(() => []), state);
    assert.deepEqual(await own(), before0);
  });

  it('prune() removes the cgroups of stopped containers', async () => {
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], stdio: 'ignore', resources: { memory: 32 * MiB } });
    await c.wait();
    assert.notDeepEqual(await own(), before0);
    // Its leftover scan is kept to a parent of its own: this machine's cgroup roots are shared with other users.
    const pruner = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir, cgroupParent: 'dl-test-prune-scope' });
    assert.ok((await pruner.prune()).includes(c.id));
    assert.deepEqual(await own(), before0);
  });
});
