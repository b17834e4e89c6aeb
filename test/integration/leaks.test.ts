// No reaper, no leaks: what a SIGKILLed owner's containers leave (state
// records, cgroups, upper dirs, names, forwarders, pods) goes when the next
// Runtime opens the state directory, and runtime.audit() reports every
// orphan that prune() then removes.
import { strict as assert } from 'node:assert';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { mkdir, readdir, readFile, readlink, rmdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Runtime, type AuditEntry } from '../../src/index.js';
import { detectCgroups } from '../../src/runtime/cgroups/detect.js';
import { parentDirs } from '../../src/runtime/cgroups/policy.js';
import { processStartTime } from '../../src/util/index.js';
import { notedTeardowns, noteTeardown, TEARDOWN_WAIT_MS } from '../../src/runtime/teardowns.js';
import { cannotRun, makeWorld, type World } from '../fixtures/world.js';

const skip = cannotRun();
if (skip !== undefined) console.log(`# skipping leak tests: ${skip}`);
const repo = join(import.meta.dirname, '..', '..');
const child = join(repo, 'test', 'fixtures', 'leaks-child.ts');
const zombiesChild = join(repo, 'test', 'fixtures', 'zombies-child.ts');

interface Record {
  pid: number;
  pidStart: number;
  cgroups?: { dir: string }[];
  forwarder?: { pid: number; start: number };
}

/** Starts the owner process; resolves with what it made once its containers run. */
async function startOwner(world: World, ...extra: string[]) {
  const owner = spawn(process.execPath, ['--import', 'tsx', child, world.runtime.root, world.runtime.stateDir, world.rootfs, ...extra], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  for await (const chunk of owner.stdout!) {
    out += String(chunk);
    if (out.includes('\n')) break;
  }
  const made = JSON.parse(out) as { ids: string[]; pod: string; port: number };
  const records = await Promise.all(made.ids.map(async (id) => JSON.parse(await readFile(join(world.runtime.stateDir, id, 'state.json'), 'utf8')) as Record));
  return { owner, ...made, records };
}

async function killAndWait(owner: ReturnType<typeof spawn>, records: Record[]) {
  owner.kill('SIGKILL');
  await new Promise((resolve) => owner.once('exit', resolve));
  // Their pid 1s die with the owner (the parent-death signal down the shim), a moment later.
  for (let i = 0; i < 250 && records.some((r) => processStartTime(r.pid) === r.pidStart); i++) await sleep(20);
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

const orphans = (entries: AuditEntry[]) => entries.filter((e) => e.orphaned);
/** Where remove() renames a container's directories before it deletes them (src/runtime/trash.ts). */
const TRASH_DIR = '.trash';

/** The parent pid of `pid`, from /proc. */
function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** Every /proc/PID/ns/mnt and /proc/PID/fd/N that names the mount namespace `ns` (`mnt:[INODE]`). */
async function mountNsHolders(ns: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const links = [`/proc/${pid}/ns/mnt`, ...(await readdir(`/proc/${pid}/fd`).catch(() => [])).map((fd) => `/proc/${pid}/fd/${fd}`)];
    for (const link of links) if ((await readlink(link).catch(() => '')) === ns) found.push(link);
  }
  return found;
}

/** What is in the trash of the state and data directories. */
async function trashOf(world: World): Promise<string[]> {
  const dirs = [join(world.runtime.stateDir, TRASH_DIR), join(world.runtime.root, 'containers', TRASH_DIR)];
  return (await Promise.all(dirs.map((d) => readdir(d).catch(() => [] as string[])))).flat();
}

describe('no reaper, no leaks', { skip }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    await world?.dispose();
  });

  // The shim keeps pid 1's mount namespace past the exit report and drops it in a child of its own
  // (so that neither the report nor remove() waits for the unmounts): that child must not keep it.
  it("a container's mount namespace is gone soon after remove(): nothing keeps it past the exit", async () => {
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '5'], stdio: 'ignore' });
    const ns = await readlink(`/proc/${c.pid}/ns/mnt`);
    assert.match(ns, /^mnt:\[\d+\]$/);
    await c.kill('SIGKILL');
    await c.wait();
    await c.remove();
    let holders: string[] = [];
    for (const deadline = performance.now() + 2000; performance.now() < deadline; await sleep(20)) {
      holders = await mountNsHolders(ns);
      if (holders.length === 0) break;
    }
    assert.deepEqual(holders, [], `${ns} still held 2 s after remove()`);
  });

  // That child is an orphan once the shim exits: reparented to the pid namespace's init, which
  // may never reap it (Node as pid 1 in a CI container), every container would leave a zombie.
  // The fork server adopts and reaps it (a subreaper); a shim spawned by Node itself waits for
  // it before it exits. Both paths, under an init that reaps nothing.
  for (const [setting, path] of [
    ['1', 'forked by the fork server'],
    ['0', 'spawned by Node'],
  ] as const) {
    it(`containers ${path} leave no zombie under an init that never reaps what it adopts`, async () => {
      const out = execFileSync(
        'unshare',
        ['--pid', '--fork', '--mount-proc', '--kill-child', '--', process.execPath, '--import', 'tsx', zombiesChild, world.runtime.root, world.runtime.stateDir, world.rootfs, '4'],
        { cwd: repo, env: { ...process.env, DOCKLESS_FORK_SERVER: setting }, stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const { pid, zombies } = JSON.parse(String(out)) as { pid: number; zombies: number[] };
      assert.equal(pid, 1, 'the child is the init of its pid namespace');
      assert.deepEqual(zombies, [], 'zombies left to an init that does not reap them');
    });
  }

  // A process's first container is spawned, not forked: its shim too leaves the unmounts and the
  // overlay's sync (1-7 ms on ext4) to a child and reports it, so that remove() goes on at that line
  // rather than at the shim's exit after them; the shim, not an init, waits for that child.
  it("a spawned shim reports its mount namespace's teardown child, its own, and is gone only after it", async () => {
    const setting = process.env.DOCKLESS_FORK_SERVER;
    process.env.DOCKLESS_FORK_SERVER = '0';
    try {
      const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '5'], stdio: 'ignore' });
      const shim = parentOf(c.pid);
      assert.equal(parentOf(shim), process.pid, 'run was not spawned from Node');
      const shimStart = processStartTime(shim);
      await c.kill('SIGKILL');
      await c.wait();
      await c.remove();
      const noted = notedTeardowns(world.runtime.stateDir).filter((t) => t.id === c.id);
      assert.equal(noted.length, 1, 'the spawned shim reported no teardown child');
      const t = noted[0]!;
      if (processStartTime(t.pid) === t.start) assert.equal(parentOf(t.pid), shim, 'the teardown child is not the shim\'s');
      for (let i = 0; i < 250 && processStartTime(shim) === shimStart; i++) await sleep(20);
      assert.notEqual(processStartTime(shim), shimStart, 'the shim did not exit');
      assert.notEqual(processStartTime(t.pid), t.start, 'the teardown child outlived the shim that waits for it');
    } finally {
      if (setting === undefined) delete process.env.DOCKLESS_FORK_SERVER;
      else process.env.DOCKLESS_FORK_SERVER = setting;
    }
  });

  // Forked by the fork server (a subreaper that reaps it, and nothing waits for the op's exit after
  // the teardown line), the shim drops the mount namespace itself: no fork and exit of a child per container.
  it('a shim forked by the fork server reports itself as its mount namespace\'s teardown, with no child for it', async () => {
    const setting = process.env.DOCKLESS_FORK_SERVER;
    process.env.DOCKLESS_FORK_SERVER = '1';
    try {
      // A process's first container is spawned while the fork server starts: the ones after it are forked.
      for (let i = 0; i < 20; i++) {
        const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '5'], stdio: 'ignore' });
        const shim = parentOf(c.pid);
        const forked = parentOf(shim) !== process.pid;
        const shimStart = processStartTime(shim);
        await c.kill('SIGKILL');
        await c.wait();
        await c.remove();
        if (!forked) continue;
        const noted = notedTeardowns(world.runtime.stateDir).filter((t) => t.id === c.id);
        assert.deepEqual(
          noted.map((t) => ({ pid: t.pid, start: t.start })),
          [{ pid: shim, start: shimStart }],
          'the forked shim left its teardown to another process',
        );
        return;
      }
      assert.fail('no container was forked by the fork server');
    } finally {
      if (setting === undefined) delete process.env.DOCKLESS_FORK_SERVER;
      else process.env.DOCKLESS_FORK_SERVER = setting;
    }
  });

  // The audit waits for those teardowns of the containers this process removed (they end by
  // themselves, in milliseconds, or longer with much to sync) and lists one that outlasts the wait,
  // not orphaned: a suite's last audit sees a settled host, and names every process dockless left.
  // Two sleeps stand in for a teardown that takes 0.3 s and one that takes longer than the wait.
  it("audit() waits for the teardown of a removed container's mount namespace, and lists one that outlasts the wait", async () => {
    const quick = spawn('sleep', ['0.3'], { stdio: 'ignore' });
    const slow = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await Promise.all([once(quick, 'spawn'), once(slow, 'spawn')]);
      const [q, s] = [quick.pid!, slow.pid!].map((pid) => ({ type: 'teardown' as const, pid, start: processStartTime(pid)! }));
      noteTeardown(world.runtime.stateDir, 'a'.repeat(64), q);
      noteTeardown(world.runtime.stateDir, 'b'.repeat(64), s);
      const t = performance.now();
      const listed = (await world.runtime.audit()).filter((e) => e.kind === 'process' && (e.id === 'a'.repeat(64) || e.id === 'b'.repeat(64)));
      assert.ok(performance.now() - t >= TEARDOWN_WAIT_MS - 50, 'the audit did not wait for the teardowns');
      assert.equal(quick.exitCode, 0, 'the quick teardown ended while the audit waited');
      assert.deepEqual(
        listed.map((e) => [e.what, e.orphaned]),
        [[String(slow.pid), false]],
      );
    } finally {
      quick.kill();
      slow.kill();
    }
    // Gone, it is listed no more, and the audit does not wait.
    await once(slow, 'exit');
    const t = performance.now();
    assert.deepEqual((await world.runtime.audit()).filter((e) => e.kind === 'process' && e.id === 'b'.repeat(64)), []);
    assert.ok(performance.now() - t < TEARDOWN_WAIT_MS / 2);
  });

  // A shim's teardown child is one of those: the audit right after remove() finds the
  // container's mount namespace held by nothing it did not list.
  it("audit() right after remove() leaves no holder of the container's mount namespace unlisted", async () => {
    // A process's first container is spawned (the test above): this one is forked by the server.
    await (await world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], stdio: 'ignore' })).remove({ force: true });
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '5'], stdio: 'ignore' });
    const ns = await readlink(`/proc/${c.pid}/ns/mnt`);
    await c.kill('SIGKILL');
    await c.wait();
    await c.remove();
    const listed = (await world.runtime.audit()).filter((e) => e.kind === 'process' && e.id === c.id);
    const holders = (await mountNsHolders(ns)).map((link) => link.split('/')[2]!);
    assert.deepEqual(
      holders.filter((pid) => !listed.some((e) => e.what === pid && !e.orphaned)),
      [],
      `${ns} is held by processes the audit neither waited for nor listed`,
    );
  });

  // That teardown now follows the exit report: a restart must not mount the same upper and work
  // directories beside the old overlay, so the shim's child holds the work directory's lock until it
  // is done, and a new launch waits for that lock.
  it('a restart waits for the lock on the work directory that the old overlay holds until it is unmounted', async () => {
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], stdio: 'ignore' });
    try {
      await c.wait();
      const work = join(world.runtime.root, 'containers', c.id, 'work');
      assert.ok(existsSync(work), `${work} is the overlay's work directory`);
      // Another holder of the lock stands in for a teardown that takes 1.5 s.
      const holder = spawn('flock', [work, 'sleep', '1.5'], { stdio: 'ignore' });
      const exited = once(holder, 'exit');
      await once(holder, 'spawn');
      for (let i = 0; i < 50 && spawnSync('flock', ['-n', work, 'true']).status === 0; i++) await sleep(10);
      const t = performance.now();
      await c.restart();
      const waited = performance.now() - t;
      await c.wait();
      await exited;
      assert.ok(waited >= 1000, `the restart took ${waited.toFixed(0)} ms: it did not wait for the lock`);
    } finally {
      await c.remove({ force: true });
    }
  });

  it("a SIGKILLed owner's containers (named, with a published port, created, in a pod) leave nothing once the next Runtime opens the state directory", async () => {
    const since = Date.now();
    const { owner, ids, pod, port, records } = await startOwner(world);
    await killAndWait(owner, records);
    const stateDir = world.runtime.stateDir;
    // Before any new Runtime looks: the records, cgroups and upper dirs are still there (the defect this guards).
    assert.ok(ids.every((id) => existsSync(join(stateDir, id, 'state.json'))));

    const next = new Runtime({ root: world.runtime.root, stateDir });
    assert.deepEqual(await next.list(), []);
    assert.deepEqual((await readdir(stateDir)).filter((e) => /^[0-9a-f]{64}$|^\.reap-/.test(e)), []);
    assert.deepEqual((await readdir(join(world.runtime.root, 'containers'))).filter((e) => e !== TRASH_DIR), []);
    assert.deepEqual(await trashOf(world), []);
    for (const r of records) for (const cg of r.cgroups ?? []) assert.ok(!existsSync(cg.dir), `cgroup ${cg.dir} left`);
    assert.ok(!existsSync(join(stateDir, 'names', 'leak-victim')), 'the name was not given up');
    assert.ok(!existsSync(join(stateDir, 'pods', pod)), 'the pod record was left');
    const forwarder = records.find((r) => r.forwarder !== undefined)!.forwarder!;
    for (let i = 0; i < 100 && processStartTime(forwarder.pid) === forwarder.start; i++) await sleep(20);
    assert.equal(processStartTime(forwarder.pid), undefined, 'the port forwarder outlived its owner');
    assert.ok(await portFree(port), `host port ${port} is still bound`);
    assert.deepEqual(orphans(await next.audit()), []);
    const died = [];
    for await (const e of next.events({ since, until: Date.now(), filters: { container: [ids[0]!] } })) died.push(e.action);
    assert.deepEqual(died.slice(-2), ['die', 'remove']);
  });

  it("never takes a container whose owner lives, a detached one, or another live process's", async () => {
    const mine = await world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], stdio: 'ignore' });
    await mine.wait();
    const detached = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '300'], stdio: 'ignore', detached: true });
    await detached.kill();
    await detached.wait();
    const { owner, ids, records } = await startOwner(world);
    try {
      const next = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir });
      const listed = (await next.list()).map((c) => c.id);
      for (const id of [mine.id, detached.id, ...ids]) assert.ok(listed.includes(id), `${id.slice(0, 12)} was taken`);
      assert.deepEqual(orphans(await next.audit()), []);
      assert.equal((await next.get(mine.id)).status, 'stopped');
    } finally {
      await killAndWait(owner, records);
      await mine.remove();
      await detached.remove();
      await new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir }).list();
    }
  });

  it('audit() reports planted orphans (a stale record with its cgroup and upper dir, a crashed launch with its cgroup, a stray mount) and prune() removes them', async () => {
    const stateDir = world.runtime.stateDir;
    const id = randomBytes(32).toString('hex');
    const lone = randomBytes(32).toString('hex');
    const host = detectCgroups();
    const pids = host.hierarchies.find((h) => h.controllers.includes('pids')) ?? host.hierarchies[0]!;
    // prune() is kept to a cgroup parent of this test's own: the machine's cgroup roots hold other users' containers.
    const scope = `dl-test-leaks-${process.pid}`;
    const parent = parentDirs(pids, scope).parentDir;
    const cgroup = join(parent, `dockless-${id}`);
    const loneCgroup = join(parent, `dockless-${lone}`);
    const stray = join(stateDir, 'stray-mount');
    try {
      await mkdir(join(stateDir, id), { recursive: true });
      await mkdir(join(world.runtime.root, 'containers', id, 'upper'), { recursive: true });
      await mkdir(cgroup, { recursive: true });
      await mkdir(loneCgroup);
      // A launch killed before it wrote a record: its state directory names a dead process.
      await mkdir(join(stateDir, lone));
      await writeFile(join(stateDir, lone, 'owner.json'), JSON.stringify({ pid: 4_194_305, start: 1 }));
      await mkdir(stray);
      execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', stray]);
      // A container that is not detached, whose owner and pid 1 are gone (pid 2^22 + 1 is above pid_max's limit).
      const dead = 4_194_305;
      await writeFile(
        join(stateDir, id, 'state.json'),
        JSON.stringify({
          version: 1, id, created: new Date().toISOString(), started: new Date().toISOString(), pid: dead, pidStart: 1, ownerPid: dead, ownerStart: 1,
          detached: false, rootfs: world.rootfs, cmd: ['true'], stdio: 'ignore', cgroups: [{ dir: cgroup, version: pids.version, controllers: ['pids'] }],
        }),
      );
      const fresh = new Runtime({ root: world.runtime.root, stateDir, cgroupParent: scope });
      const found = orphans(await fresh.audit());
      const has = (kind: string, what: string) => found.some((e) => e.kind === kind && e.what === what);
      assert.ok(has('container', join(stateDir, id)), JSON.stringify(found));
      assert.ok(has('cgroup', cgroup), JSON.stringify(found));
      assert.ok(has('cgroup', loneCgroup), JSON.stringify(found));
      assert.ok(has('launch', join(stateDir, lone)), JSON.stringify(found));
      assert.ok(has('data', join(world.runtime.root, 'containers', id)), JSON.stringify(found));
      assert.ok(has('mount', stray), JSON.stringify(found));
      await fresh.prune();
      assert.deepEqual(orphans(await fresh.audit()), []);
      assert.ok(!existsSync(join(stateDir, id)));
      assert.ok(!existsSync(cgroup));
      assert.ok(!existsSync(loneCgroup));
      assert.ok(!existsSync(join(stateDir, lone)));
      assert.ok(!existsSync(join(world.runtime.root, 'containers', id)));
      assert.ok(!(await readFile('/proc/self/mountinfo', 'utf8')).includes(` ${stray} `));
    } finally {
      try {
        execFileSync('umount', ['-l', stray], { stdio: 'ignore' });
      } catch {
        // Unmounted by prune(), as it should be.
      }
      await rmdir(cgroup).catch(() => undefined);
      await rmdir(loneCgroup).catch(() => undefined);
      await rmdir(parent).catch(() => undefined);
    }
  });

  // remove() returns once a container's directories are renamed into the trash, and deletes them after:
  // a process killed in between left them there for good.
  it('a removal cut short by the death of its process leaves nothing in the trash once the next Runtime opens the state directory', async () => {
    // As a SIGKILL between the renames and the deletion leaves them: a state and a data directory under a dead owner's token.
    const dead = `${randomBytes(32).toString('hex')}-${process.pid}-1-${randomBytes(6).toString('hex')}`;
    const state = join(world.runtime.stateDir, TRASH_DIR, dead);
    const bundle = join(world.runtime.root, 'containers', TRASH_DIR, dead);
    await mkdir(join(state, 'rootfs'), { recursive: true });
    await writeFile(join(state, 'state.json'), '{}');
    await mkdir(join(bundle, 'upper', 'etc'), { recursive: true });
    await mkdir(join(bundle, 'work', 'work'), { recursive: true });
    await writeFile(join(bundle, 'upper', 'written'), 'x');
    assert.ok(orphans(await world.runtime.audit()).some((e) => e.what === state), 'audit() did not report the dead removal');
    const next = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir });
    await next.list();
    assert.equal(existsSync(state), false, 'the state directory stayed in the trash');
    assert.equal(existsSync(bundle), false, 'the data directory stayed in the trash');
    assert.deepEqual(await trashOf(world), []);
  });

  it('at the end of the suite, nothing is orphaned', async () => {
    assert.deepEqual(orphans(await world.runtime.audit()), []);
  });
});
