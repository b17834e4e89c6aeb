import { strict as assert } from 'node:assert';
import { execFileSync, spawn } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { HelperError, InvalidArgumentError, InvalidStateError, NotFoundError, PermissionError, Runtime } from '../../src/index.js';
import { cannotRun, cgroupDirs, descendants, hostMounts, makeWorld, text, type World } from '../fixtures/world.js';
import { settleTrash, TRASH_DIR } from '../../src/runtime/trash.js';
import { parseOwnerToken } from '../../src/util/process.js';

const skip = cannotRun();
if (skip !== undefined) console.log(`# skipping runtime integration tests: ${skip}`);

const repo = join(import.meta.dirname, '..', '..');

async function output(world: World, cmd: string[], extra: Record<string, unknown> = {}) {
  const c = await world.runtime.run({ rootfs: world.rootfs, cmd, ...extra });
  const [stdout, stderr, exit] = await Promise.all([text(c.stdout), text(c.stderr), c.wait()]);
  await c.remove();
  return { stdout, stderr, ...exit };
}

/** Runs a TypeScript snippet in a separate Node process with the library imported. */
function node(script: string, env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: repo,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return child;
}

describe('runtime', { skip }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    await world?.dispose();
  });

  it('runs a command and streams its output and exit code', async () => {
    const r = await output(world, ['sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    assert.equal(r.exitCode, 3);
    assert.equal(r.signal, null);
  });

  // A quick container ends, output and exit line both in, before the caller reads its stdout. A 'data'
  // listener added just before `await wait()` starts the flow on the next tick; wait() resolved at once
  // (the exit line already read) ran the caller's code first, and the output came after (round 11's
  // earlier exit line made that the rule for a process's first container).
  it('output a container wrote before it ended reaches a listener added before wait()', async () => {
    for (let i = 0; i < 3; i++) {
      const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'echo out; echo err >&2'], stdio: 'pipe' });
      try {
        await sleep(150); // the container is done, its exit line read
        let out = '';
        let err = '';
        c.stdout!.on('data', (d: Buffer) => (out += String(d)));
        c.stderr!.on('data', (d: Buffer) => (err += String(d)));
        assert.equal((await c.wait()).exitCode, 0);
        assert.equal(out, 'out\n');
        assert.equal(err, 'err\n');
        // A second wait() after the first, as a caller's later check: the same exit.
        assert.equal((await c.wait()).exitCode, 0);
      } finally {
        await c.remove({ force: true });
      }
    }
  });

  it('isolates hostname, pids, mounts and network', async () => {
    assert.equal((await output(world, ['probe', 'hostname'], { hostname: 'box' })).stdout.trim(), 'box');
    assert.equal((await output(world, ['probe', 'cat', '/etc/hostname'], { hostname: 'box' })).stdout.trim(), 'box');
    assert.match((await output(world, ['probe', 'cat', '/etc/hosts'], { hostname: 'box' })).stdout, /127\.0\.0\.1\s+localhost/);
    // Without an init, the command itself is pid 1; with one, it is the init's child.
    assert.equal((await output(world, ['probe', 'pid'], { init: false })).stdout.trim(), '1');
    assert.equal((await output(world, ['probe', 'ppid'])).stdout.trim(), '1');
    const ps = (await output(world, ['probe', 'ps'])).stdout.trim().split(/\s+/).map(Number);
    assert.ok(ps.length <= 3 && ps.every((p) => p <= 3), `host processes visible: ${ps.join(',')}`);
    const mountinfo = (await output(world, ['probe', 'mounts'])).stdout.trim().split('\n').map((l) => l.split(' '));
    const points = mountinfo.map((f) => f[4]!);
    assert.ok(!points.some((p) => p.startsWith(world.base) || p === '/work'), `host mount points visible: ${points.join(' ')}`);
    assert.ok(mountinfo.some((f) => f[4] === '/' && f.includes('overlay')), 'root is not an overlay');
    assert.deepEqual((await output(world, ['probe', 'ls', '/sys/class/net'])).stdout.trim().split(/\s+/), ['lo']);
    assert.match((await output(world, ['probe', 'cat', '/sys/class/net/lo/operstate'])).stdout, /unknown|up/);
  });

  it('provides /dev with only the safe nodes and /proc, /sys read-only', async () => {
    const dev = (await output(world, ['probe', 'ls', '/dev'])).stdout.trim().split(/\s+/).sort();
    for (const name of ['null', 'zero', 'full', 'random', 'urandom', 'tty', 'pts', 'ptmx', 'shm', 'fd', 'stdin', 'stdout', 'stderr']) {
      assert.ok(dev.includes(name), `/dev/${name} missing: ${dev.join(' ')}`);
    }
    assert.ok(!dev.includes('sda') && !dev.includes('mem') && !dev.includes('kmsg'));
    const w = await output(world, ['probe', 'write', '/sys/kernel/x', 'y']);
    assert.notEqual(w.exitCode, 0);
    const kcore = await output(world, ['probe', 'cat', '/proc/kcore']);
    assert.equal(kcore.stdout, '');
  });

  it('passes env, cwd and user', async () => {
    assert.equal((await output(world, ['probe', 'env', 'GREETING'], { env: { GREETING: 'hi there' } })).stdout.trim(), 'hi there');
    assert.match((await output(world, ['probe', 'env', 'PATH'])).stdout, /\/usr\/bin/);
    assert.equal((await output(world, ['probe', 'cwd'], { cwd: '/tmp' })).stdout.trim(), '/tmp');
    assert.equal((await output(world, ['probe', 'uid'], { user: '1234:5678' })).stdout.trim(), '1234 5678');
    assert.equal((await output(world, ['probe', 'uid'], { user: 'nobody' })).stdout.trim(), '65534 65534');
    await assert.rejects(world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], user: 'ghost' }), NotFoundError);
  });

  it('never modifies the rootfs: writes go to the container upper dir, dropped by remove()', async () => {
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'echo x > /etc/created && rm /bin/cat'] });
    assert.equal((await c.wait()).exitCode, 0);
    assert.ok(!existsSync(join(world.rootfs, 'etc', 'created')));
    assert.ok(existsSync(join(world.rootfs, 'bin', 'cat')));
    const upper = world.runtime.pathsOf(c.id).upper;
    assert.ok(existsSync(join(upper, 'etc', 'created')));
    await c.remove();
    assert.ok(!existsSync(upper));
    assert.equal(c.status, 'removed');
  });

  it('a missing command exits 127 with a clear message, like Docker', async () => {
    const r = await output(world, ['no-such-command', 'arg']);
    assert.equal(r.exitCode, 127);
    assert.match(r.stderr, /no-such-command.*(No such file|not found)/i);
  });

  it('a missing or non-directory rootfs is a typed error and nothing is created', async () => {
    const before = await readdir(world.runtime.stateDir).catch(() => []);
    await assert.rejects(world.runtime.run({ rootfs: join(world.base, 'nope'), cmd: ['true'] }), NotFoundError);
    await writeFile(join(world.base, 'file'), 'x');
    await assert.rejects(world.runtime.run({ rootfs: join(world.base, 'file'), cmd: ['true'] }), InvalidArgumentError);
    await assert.rejects(world.runtime.run({ rootfs: world.rootfs, cmd: [] }), InvalidArgumentError);
    assert.deepEqual(await readdir(world.runtime.stateDir).catch(() => []), before);
  });

  it('a failing setup step is a HelperError naming the step and path, with nothing left behind', async () => {
    const before = await readdir(world.runtime.stateDir);
    await assert.rejects(
      world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], cwd: '/does/not/exist' }),
      (e: unknown) => e instanceof HelperError && e.step === 'chdir' && /does\/not\/exist/.test(e.message),
    );
    assert.deepEqual(await readdir(world.runtime.stateDir), before);
  });

  it('init forwards signals and reaps orphans; the exit status is the workload\'s', async () => {
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['probe', 'signal-wait'] });
    await sleep(100);
    await c.kill('SIGTERM');
    assert.equal((await c.wait()).exitCode, 0);
    assert.match(await text(c.stdout), /got SIGTERM/);
    await c.remove();
    const z = await output(world, ['sh', '-c', 'probe spawn-zombie; sleep 0.3; probe ps']);
    assert.equal(z.exitCode, 0);
    const killed = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '100'] });
    await killed.kill();
    assert.deepEqual(await killed.wait(), { exitCode: 137, signal: 'SIGKILL', oomKilled: false });
    await killed.remove();
  });

  it('create then start, with the state machine enforced', async () => {
    const c = await world.runtime.create({ rootfs: world.rootfs, cmd: ['probe', 'hostname'], hostname: 'two-step' });
    assert.equal(c.status, 'created');
    assert.ok(c.pid > 0);
    await assert.rejects(c.remove(), InvalidStateError);
    await c.start();
    assert.equal((await c.wait()).exitCode, 0);
    assert.equal((await text(c.stdout)).trim(), 'two-step');
    await assert.rejects(c.start(), InvalidStateError);
    await assert.rejects(c.kill(), InvalidStateError);
    await c.remove();
  });

  // A state directory others may write could hold planted records naming pids to signal.
  it('refuses a state directory that others can write', async () => {
    const shared = join(world.base, 'world-writable-state');
    await mkdir(shared, { mode: 0o777 });
    await chmod(shared, 0o777);
    const runtime = new Runtime({ root: world.runtime.root, stateDir: shared });
    await assert.rejects(runtime.run({ rootfs: world.rootfs, cmd: ['true'] }), PermissionError);
  });

  it('stop() of a created, never started container does not wait out the timeout', async () => {
    const c = await world.runtime.create({ rootfs: world.rootfs, cmd: ['true'] });
    const t = performance.now();
    assert.equal((await c.stop({ timeoutMs: 5000 })).signal, 'SIGKILL');
    assert.ok(performance.now() - t < 3000, 'stop waited for the timeout');
    await c.remove();
  });

  it('stdin is a writable stream', async () => {
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['cat'] });
    c.stdin!.end('through the container\n');
    assert.equal(await text(c.stdout), 'through the container\n');
    await c.wait();
    await c.remove();
  });

  it('bind and tmpfs mounts, read-only where asked, and a read-only rootfs', async () => {
    const shared = join(world.base, 'shared');
    await mkdir(shared, { recursive: true });
    await writeFile(join(shared, 'in'), 'from host');
    const mounts = [
      { type: 'bind' as const, source: shared, target: '/mnt/rw' },
      { type: 'bind' as const, source: shared, target: '/mnt/ro', readonly: true },
      { type: 'tmpfs' as const, target: '/scratch' },
    ];
    const r = await output(world, ['sh', '-c', 'cat /mnt/ro/in; echo back > /mnt/rw/out; echo no > /mnt/ro/x || echo ro-ok; echo t > /scratch/t && echo tmp-ok'], { mounts });
    assert.equal(r.stdout, 'from hostro-ok\ntmp-ok\n');
    assert.equal(await readFile(join(shared, 'out'), 'utf8'), 'back\n');
    const ro = await output(world, ['sh', '-c', 'echo x > /etc/y || echo rootfs-ro'], { readonlyRootfs: true });
    assert.match(ro.stdout, /rootfs-ro/);
  });

  // Docker 25+ makes read-only binds recursive: a sub-mount of the source must not stay writable.
  it('a read-only bind is read-only in its sub-mounts too', async () => {
    const source = join(world.base, 'with-submount');
    await mkdir(join(source, 'inner'), { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', join(source, 'inner')]);
    try {
      const r = await output(world, ['sh', '-c', 'echo x > /mnt/inner/f && echo wrote || echo refused'], {
        mounts: [{ type: 'bind', source, target: '/mnt', readonly: true }],
      });
      assert.equal(r.stdout, 'refused\n');
    } finally {
      execFileSync('umount', [join(source, 'inner')]);
    }
  });

  it('names are unique and find the container', async () => {
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '10'], name: 'named-one' });
    assert.equal((await world.runtime.get('named-one')).id, c.id);
    assert.equal((await world.runtime.get(c.id.slice(0, 12))).id, c.id);
    await assert.rejects(world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], name: 'named-one' }), { code: 'ERR_DOCKLESS_ALREADY_EXISTS' });
    await c.remove({ force: true });
    await assert.rejects(world.runtime.get('named-one'), NotFoundError);
  });

  it('await using kills and removes', async () => {
    let id: string;
    {
      await using c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '100'] });
      id = c.id;
    }
    await assert.rejects(world.runtime.get(id), NotFoundError);
  });

  // Containers must not outlive a crashed owner (DESIGN rule 3): PR_SET_PDEATHSIG chains the kill down.
  it('containers die with their owner, even when it is SIGKILLed', async () => {
    const child = node(
      `import { Runtime } from './src/index.ts';
       const r = new Runtime({ root: process.env.ROOT, stateDir: process.env.STATE });
       const c = await r.run({ rootfs: process.env.ROOTFS, cmd: ['sleep', '1000'], stdio: 'ignore' });
       console.log(c.pid); setInterval(() => {}, 1000);`,
      { ROOT: world.runtime.root, STATE: world.runtime.stateDir, ROOTFS: world.rootfs },
    );
    const pid = Number((await new Promise<string>((resolve) => child.stdout!.once('data', (d) => resolve(String(d))))).trim());
    assert.ok(pid > 0);
    process.kill(pid, 0);
    child.kill('SIGKILL');
    const deadline = Date.now() + 1000;
    let alive = true;
    while (alive && Date.now() < deadline) {
      await sleep(20);
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
      alive = stat !== '' && stat[stat.lastIndexOf(')') + 2] !== 'Z';
    }
    assert.equal(alive, false, 'container outlived its owner by more than a second');
    // Its leftover scan is kept to a parent of its own: this machine's cgroup roots are shared with other users.
    const pruner = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir, cgroupParent: 'dl-test-prune-scope' });
    const pruned = await pruner.prune();
    assert.ok(pruned.length >= 1);
  });

  it('detached containers survive their owner and are managed from another process', async () => {
    const child = node(
      `import { Runtime } from './src/index.ts';
       const r = new Runtime({ root: process.env.ROOT, stateDir: process.env.STATE });
       const c = await r.run({ rootfs: process.env.ROOTFS, cmd: ['sh', '-c', 'echo logged; exec sleep 1000'], detached: true, name: 'daemonish' });
       console.log(c.id);`,
      { ROOT: world.runtime.root, STATE: world.runtime.stateDir, ROOTFS: world.rootfs },
    );
    const id = (await text(child.stdout)).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const c = await world.runtime.get('daemonish');
    assert.equal(c.id, id);
    assert.equal(c.status, 'running');
    assert.ok((await world.runtime.list()).some((i) => i.id === id && i.status === 'running' && i.detached));
    await sleep(50);
    assert.equal((await c.logs().collect()).stdout.toString(), 'logged\n');
    await c.kill('SIGKILL');
    assert.deepEqual(await c.wait(), { exitCode: 137, signal: 'SIGKILL', oomKilled: false });
    await c.remove();
    await assert.rejects(world.runtime.get(id), NotFoundError);
  });

  it('leaks nothing over 200 run+remove cycles', async () => {
    // Only mounts below this runtime's directories: other programs on the machine mount and unmount meanwhile.
    const ours = async () => (await hostMounts()).filter((m) => [world.runtime.root, world.runtime.stateDir].some((d) => m.startsWith(d)) || ids.some((id) => m.includes(id)));
    const ids: string[] = [];
    const mounts = await ours();
    const procs = await descendants();
    const state = await readdir(world.runtime.stateDir);
    const bundles = await readdir(join(world.runtime.root, 'containers'));
    for (let i = 0; i < 200; i++) {
      const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], stdio: 'ignore' });
      ids.push(c.id);
      assert.equal((await c.wait()).exitCode, 0);
      await c.remove();
    }
    assert.deepEqual(await ours(), mounts);
    // Only this test's containers: other processes' containers may come and go in the shared hierarchies.
    assert.deepEqual((await cgroupDirs()).filter((dir) => ids.some((id) => dir.includes(id))), []);
    assert.deepEqual(await readdir(world.runtime.stateDir), state);
    assert.deepEqual(await readdir(join(world.runtime.root, 'containers')), bundles);
    // remove() leaves the deletion of the directories it renamed into the trash running (a helper
    // process forked by the fork server): it ends, takes them all, and leaves no process behind.
    await settleTrash();
    assert.deepEqual(await descendants(), procs);
    assert.deepEqual(await readdir(join(world.runtime.stateDir, TRASH_DIR)), []);
    assert.deepEqual(await readdir(join(world.runtime.root, 'containers', TRASH_DIR)), []);
  });

  it('detachRemoval hands the removed directories to a process of their own, which audit counts as alive and which ends', async () => {
    // A one-shot program (the command line) waited after remove() for its container's files to be deleted before it could exit.
    const procs = await descendants();
    const runtime = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir, detachRemoval: true });
    const c = await runtime.run({ rootfs: world.rootfs, cmd: ['true'], stdio: 'ignore' });
    assert.equal((await c.wait()).exitCode, 0);
    await c.remove();
    const trashes = [join(world.runtime.stateDir, TRASH_DIR), join(world.runtime.root, 'containers', TRASH_DIR)];
    const left = async () => (await Promise.all(trashes.map(async (t) => readdir(t)))).flat().filter((n) => n.startsWith(c.id));
    for (const name of await left()) assert.notEqual(parseOwnerToken(name)?.pid, process.pid, `${name}: still this process's to delete`);
    assert.deepEqual((await runtime.audit()).filter((e) => e.orphaned && e.id === c.id), []);
    await runtime[Symbol.asyncDispose]();
    for (let i = 0; i < 200 && (await left()).length > 0; i++) await sleep(50);
    assert.deepEqual(await left(), []);
    for (let i = 0; i < 200 && (await descendants()).length > procs.length; i++) await sleep(50);
    assert.deepEqual(await descendants(), procs);
  });
});
