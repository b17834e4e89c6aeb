import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { AbortError, InvalidArgumentError, Runtime, type Container } from '../../src/index.js';
import { rmdirWhenEmpty } from '../fixtures/host.js';
import { cannotRun, descendants, makeWorld, type World } from '../fixtures/world.js';

const skip = cannotRun();
if (skip !== undefined) console.log(`# skipping runtime hardening tests: ${skip}`);

const repo = join(import.meta.dirname, '..', '..');
const run = promisify(execFile);

describe('runtime hardening', { skip }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    await world?.dispose();
  });

  // A name claimed before the holder's state existed used to look dead to a
  // second launch, which stole it (and its unlink-then-create deleted a third's claim).
  it('two running containers never hold one name, across processes racing for few names', async () => {
    const child = join(repo, 'test', 'fixtures', 'name-race-child.ts');
    const { root, stateDir } = world.runtime;
    const workers = Array.from({ length: 4 }, () =>
      run(process.execPath, ['--import', 'tsx', child, root, stateDir, world.rootfs, '12', '3', 'race-a,race-b'], {
        cwd: repo,
        maxBuffer: 1 << 20,
      }),
    );
    const results = (await Promise.all(workers)).map((r) => JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      won: number;
      lost: number;
      violations: string[];
    });
    const violations = results.flatMap((r) => r.violations);
    assert.deepEqual(violations, [], `${violations.length} violations`);
    assert.ok(results.reduce((n, r) => n + r.won, 0) > 0, 'no launch won a name');
    // Every container was removed: a name file left behind points at a container that does not claim it.
    const left = (await readdir(join(stateDir, 'names'))).filter((n) => !n.startsWith('.'));
    const stale = [];
    for (const name of left) stale.push(`${name} -> ${await readFile(join(stateDir, 'names', name), 'utf8').catch(() => '?')}`);
    assert.deepEqual(stale, []);
  });

  // Every host user can read /proc/<pid>/cmdline (`ps`), and the container reads its
  // pid 1's: env values and host paths passed as argv leaked to both.
  it('no secret env value or bind source appears in any cmdline, on the host or in the container', async () => {
    const source = join(world.base, 'bind-source-hostpath-7c1e');
    await mkdir(source);
    const c = await world.runtime.run({
      rootfs: world.rootfs,
      cmd: ['sh', '-c', 'cat /proc/1/cmdline; echo; exec sleep 30'],
      env: { SECRET: 'hunter2' },
      mounts: [{ type: 'bind', source, target: '/data' }],
    });
    try {
      let inside = '';
      for await (const chunk of c.stdout!) {
        inside += chunk.toString();
        if (inside.includes('\n')) break;
      }
      const cmdlines: Record<number, string> = { 0: `container /proc/1/cmdline: ${inside}` };
      for (const pid of new Set([...(await descendants()), c.pid])) {
        cmdlines[pid] = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      }
      assert.ok(Object.values(cmdlines).some((l) => l.includes('--config-fd')), 'the shim was not found');
      for (const [pid, line] of Object.entries(cmdlines)) {
        assert.ok(!line.includes('hunter2') && !line.includes(source), `pid ${pid}: ${line.replaceAll('\0', ' ')}`);
      }
    } finally {
      await c.remove({ force: true });
    }
  });

  // A launch killed half-way left an empty cgroup on every hierarchy and a state
  // directory without a record, which prune() never removed.
  it('prune removes a crashed launch\'s empty cgroups, record-less state and name, never a live container\'s', async () => {
    // A cgroup parent of its own: prune() takes old empty dockless-* cgroups below its parent, and
    // the default parent (this process's cgroup) may be shared with other users of the machine.
    const runtime = new Runtime({
      root: world.runtime.root,
      stateDir: world.runtime.stateDir,
      cgroupParent: `dl-prune-test-${randomBytes(6).toString('hex')}`,
    });
    const live = await runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '30'], resources: { memory: 64 << 20 }, name: 'live-one' });
    const made: string[] = [];
    const parents = new Set<string>();
    try {
      const liveRecord = JSON.parse(await readFile(world.runtime.pathsOf(live.id).record, 'utf8')) as { cgroups: { dir: string }[] };
      assert.ok(liveRecord.cgroups.length > 0, 'the live container has no cgroups to compare with');
      const id = randomBytes(32).toString('hex');
      const paths = world.runtime.pathsOf(id);
      const dead = { pid: 2 ** 22 + 1, start: 1 }; // above pid_max: no such process
      await mkdir(paths.state, { recursive: true });
      await writeFile(paths.owner, JSON.stringify(dead));
      await mkdir(paths.upper, { recursive: true });
      await writeFile(join(world.runtime.stateDir, 'names', 'crashed'), JSON.stringify({ id, ...dead }));
      for (const { dir } of liveRecord.cgroups) {
        parents.add(dirname(dir));
        const leftover = join(dirname(dir), `dockless-${id}`);
        await mkdir(leftover);
        made.push(leftover);
      }
      const removed = await runtime.prune();
      assert.deepEqual(removed, [id]);
      assert.equal(existsSync(paths.state), false, 'record-less state dir left');
      assert.equal(existsSync(paths.bundle), false, 'data dir left');
      assert.equal(existsSync(join(world.runtime.stateDir, 'names', 'crashed')), false, 'dead name claim left');
      for (const dir of made) assert.equal(existsSync(dir), false, `cgroup ${dir} left`);
      assert.equal(live.status, 'running');
      for (const { dir } of liveRecord.cgroups) assert.ok(existsSync(dir), `live cgroup ${dir} removed`);
      assert.equal((await runtime.get('live-one')).id, live.id);
    } finally {
      await live.remove({ force: true });
      for (const dir of made) await rmdir(dir).catch(() => undefined);
      // The live container's own cgroups go with its shim, which may finish its teardown after remove() returns.
      for (const dir of parents) await rmdirWhenEmpty(dir);
    }
  });

  // Durations were seconds in stop() and milliseconds elsewhere; one rule now: milliseconds, named so.
  it('stop() takes timeoutMs, and refuses the seconds-based timeout', async () => {
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'trap "" TERM; sleep 30'], init: false });
    try {
      await assert.rejects(c.stop({ timeout: 1 } as never), InvalidArgumentError);
      await new Promise((r) => setTimeout(r, 200));
      const t = performance.now();
      assert.equal((await c.stop({ timeoutMs: 300 })).signal, 'SIGKILL');
      assert.ok(performance.now() - t < 5000, `stop took ${performance.now() - t} ms`);
    } finally {
      await c.remove({ force: true });
    }
  });

  // run/create/wait/stop could not be cancelled: an AbortSignal now ends them, and an aborted launch leaves nothing.
  it('an AbortSignal cancels run, wait and stop; an aborted launch leaves nothing behind', async () => {
    const before = new Set(await readdir(world.runtime.stateDir));
    await assert.rejects(world.runtime.run({ rootfs: world.rootfs, cmd: ['true'] }, { signal: AbortSignal.abort() }), AbortError);
    const got: Container[] = [];
    let aborted = 0;
    for (const delay of [0, 1, 2, 3, 5, 8, 12, 20]) {
      const controller = new AbortController();
      const launching = world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '30'], name: `abort-${delay}` }, { signal: controller.signal });
      setTimeout(() => controller.abort(), delay);
      try {
        got.push(await launching);
      } catch (error) {
        assert.ok(error instanceof AbortError, String(error));
        aborted++;
      }
    }
    assert.ok(aborted > 0, 'no launch was aborted');
    const left = (await readdir(world.runtime.stateDir)).filter((e) => !before.has(e));
    assert.deepEqual(left.sort(), got.map((c) => c.id).sort(), 'an aborted launch left its state directory');
    const names = (await readdir(join(world.runtime.stateDir, 'names'))).filter((n) => n.startsWith('abort-'));
    assert.deepEqual(names.sort(), got.map((c) => c.name!).sort(), 'an aborted launch kept its name');
    for (const c of got) await c.remove({ force: true });

    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'trap "" TERM; sleep 30'], init: false });
    try {
      await assert.rejects(c.wait({ signal: AbortSignal.timeout(100) }), AbortError);
      assert.equal(c.status, 'running');
      await assert.rejects(c.stop({ timeoutMs: 60_000, signal: AbortSignal.timeout(300) }), AbortError);
      assert.equal(c.status, 'running');
    } finally {
      await c.remove({ force: true });
    }
  });

  // A Runtime held processes and directories but could not be disposed of.
  it('await using a Runtime removes the non-detached containers it made', async () => {
    let pid = 0;
    let id = '';
    {
      await using runtime = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir });
      const c = await runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '30'] });
      pid = c.pid;
      id = c.id;
    }
    assert.equal(existsSync(join(world.runtime.stateDir, id)), false, 'state directory left');
    assert.equal(existsSync(`/proc/${pid}`), false, 'pid 1 still alive');
  });
});
