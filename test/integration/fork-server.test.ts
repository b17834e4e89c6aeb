import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, readlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ForkServer } from '../../src/helper/fork-server.js';
import { locateHelper } from '../../src/helper/locate.js';
import { cannotRun, makeWorld, text, type World } from '../fixtures/world.js';

const skip = cannotRun();
if (skip !== undefined) console.log(`# skipping fork server integration tests: ${skip}`);

const repo = join(import.meta.dirname, '..', '..');

async function parentOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** The pipes and sockets `pid` holds, by inode (`socket:[123]`, `pipe:[456]`). */
async function channels(pid: number): Promise<Set<string>> {
  const held = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    if (/^(socket|pipe):/.test(target)) held.add(target);
  }
  return held;
}

/** Runs a module snippet in a separate Node process with the library imported; its stdout and exit code. */
function node(script: string, env: Record<string, string> = {}): Promise<{ stdout: string; code: number | null; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: repo,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, code, timedOut });
    });
  });
}

/** Runs `cat` in a container (after a `true` one when BEFORE is set) and prints who the shim's parent is. */
const ONE_CONTAINER = `
  import { readFileSync } from 'node:fs';
  import { Runtime } from './src/index.ts';
  const ppid = (pid) => Number(readFileSync('/proc/' + pid + '/stat', 'utf8').split(') ')[1].split(' ')[1]);
  const r = new Runtime({ root: process.env.ROOT, stateDir: process.env.STATE });
  if (process.env.BEFORE === '1') {
    const first = await r.run({ rootfs: process.env.ROOTFS, cmd: ['true'], stdio: 'ignore' });
    await first.wait();
    await first.remove();
  }
  const c = await r.run({ rootfs: process.env.ROOTFS, cmd: ['cat'] });
  const shim = ppid(c.pid);
  console.log(JSON.stringify({ shimParent: ppid(shim), self: process.pid }));
  c.stdin.end();
  c.stdout.resume();
  c.stderr.resume();
  await c.wait();
  await c.remove();
`;

describe('fork server', { skip }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
    // This process's first op is spawned (see the test of that below): the server starts with the next one.
    const first = await world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], stdio: 'ignore' });
    await first.wait();
    await first.remove();
  });
  after(async () => {
    await world?.dispose();
  });

  // A fork without exec keeps every descriptor, CLOEXEC or not: an op that kept the server's
  // channel could forge its owner's requests, and one that kept another op's status socket could lie about it.
  it('an op holds no descriptor of the server or of another op', async () => {
    const a = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '300'], stdio: 'ignore' });
    const b = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '300'], stdio: 'pipe' });
    try {
      const shimA = await parentOf(a.pid);
      const shimB = await parentOf(b.pid);
      const server = await parentOf(shimA);
      assert.notEqual(server, process.pid, 'run was spawned from Node, not forked by the server');
      assert.equal(await parentOf(shimB), server);
      assert.match(await readFile(`/proc/${server}/cmdline`, 'utf8'), /fork-server/);
      const [ofServer, ofA, ofB] = await Promise.all([channels(server), channels(shimA), channels(shimB)]);
      assert.ok(ofServer.size >= 2, `the server holds its channel and request pipe: ${[...ofServer].join(' ')}`);
      for (const fd of ofA) assert.ok(!ofServer.has(fd) && !ofB.has(fd), `shared ${fd}`);
      for (const fd of ofB) assert.ok(!ofServer.has(fd), `shared ${fd}`);
    } finally {
      await Promise.all([a.remove({ force: true }), b.remove({ force: true })]);
    }
  });

  // A trash batch is one request and one reply: the server forks its `rm` with none of this process's descriptors.
  it('removes trees through its own rm request, and says so when one cannot be removed', async () => {
    const server = await ForkServer.for(locateHelper());
    assert.ok(server !== undefined, 'no fork server');
    const dir = await mkdtemp(join(world.base, 'rm-'));
    const trees = [join(dir, 'a'), join(dir, 'b')];
    for (const t of trees) {
      await mkdir(join(t, 'x', 'y'), { recursive: true });
      await writeFile(join(t, 'x', 'y', 'f'), 'data');
    }
    const before = await channels(process.pid);
    assert.equal(await server.remove(trees), true);
    for (const t of trees) assert.equal(existsSync(t), false, `${t} left`);
    assert.deepEqual([...(await channels(process.pid))].filter((c) => !before.has(c)), [], 'a socket was made for the rm');
    // The helper's rm refuses a relative path: false, and the caller removes it its own way.
    await mkdir(join(dir, 'c'));
    assert.equal(await server.remove([join(dir, 'c'), 'relative/path']), false);
    assert.equal(await server.remove([]), true);
  });

  // The server makes network namespaces ahead, while idle, and hands each to one run, never back:
  // what one container did in its own (an MTU, an address) must never show in another's.
  it('holds new network namespaces ready, and each run gets one of its own, untouched by the runs before it', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('the pool is root only');
    const host = await readlink('/proc/self/ns/net');
    const mark = 'ip link set lo mtu 1280 && ip addr add 10.9.9.9/32 dev lo && readlink /proc/self/ns/net';
    const holder = await world.runtime.run({ rootfs: world.rootfs, capAdd: ['NET_ADMIN'], cmd: ['sh', '-c', `${mark} && sleep 300`] });
    try {
      let out = '';
      for await (const d of holder.stdout!) if ((out += d).includes('\n')) break;
      const held = out.trim();
      assert.match(held, /^net:\[\d+\]$/);
      const server = await parentOf(await parentOf(holder.pid));
      // Given a moment of idleness, the server fills its pool.
      let pooled: string[] = [];
      for (let i = 0; i < 50 && pooled.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
        const fds = await readdir(`/proc/${server}/fd`);
        pooled = (await Promise.all(fds.map((fd) => readlink(`/proc/${server}/fd/${fd}`).catch(() => '')))).filter((l) => l.startsWith('net:') && l !== host);
      }
      assert.ok(pooled.length > 0, 'the server holds no network namespace ready');
      assert.ok(!pooled.includes(held), `the holder's namespace is in the pool: ${pooled.join(' ')}`);
      // More runs than the pool holds, each marking its own namespace after reading it.
      for (let i = 0; i < 6; i++) {
        const c = await world.runtime.run({
          rootfs: world.rootfs,
          capAdd: ['NET_ADMIN'],
          cmd: ['sh', '-c', `cat /sys/class/net/lo/mtu /sys/class/net/lo/flags; ip -o addr show dev lo | grep -c 10.9.9.9; ${mark}`],
        });
        const [stdout, stderr] = await Promise.all([text(c.stdout), text(c.stderr), c.wait()]);
        await c.remove();
        const [mtu, flags, marked, ns] = stdout.trim().split('\n');
        assert.equal(mtu, '65536', `run ${i} saw another's MTU (${stderr})`);
        // Up (IFF_UP), whether the server brought it up in its pool or pid 1 did in a namespace of its own.
        assert.equal(Number(flags) & 0x1, 0x1, `run ${i}: lo flags ${flags}`);
        assert.equal(marked, '0', `run ${i} saw another's address`);
        assert.ok(ns !== host && ns !== held, `run ${i} is in ${ns}`);
      }
    } finally {
      await holder.remove({ force: true });
    }
  });

  it('output, exit codes and exec work through the server', async () => {
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'read x; echo "got $x"; echo err >&2; exit 7'] });
    c.stdin!.end('hello\n');
    let out = '';
    let err = '';
    c.stdout!.on('data', (d: Buffer) => (out += d));
    c.stderr!.on('data', (d: Buffer) => (err += d));
    assert.deepEqual(await c.wait(), { exitCode: 7, signal: null, oomKilled: false });
    await c.remove();
    assert.equal(out, 'got hello\n');
    assert.equal(err, 'err\n');
  });

  // The server is unref'd and counts only the ops that are: a program must end when its work does.
  it('a program that runs two containers exits on its own, its second run forked by the server', async () => {
    const env = { ROOT: join(world.base, 'fs-data'), STATE: join(world.base, 'fs-state'), ROOTFS: world.rootfs, BEFORE: '1' };
    const r = await node(ONE_CONTAINER, env);
    assert.equal(r.timedOut, false, 'the process did not exit within 30 s');
    assert.equal(r.code, 0);
    const seen = JSON.parse(r.stdout) as { shimParent: number; self: number };
    assert.notEqual(seen.shimParent, seen.self, 'run was spawned from Node, not forked by the server');
  });

  // Starting the server costs more than spawning one op (a spawn of its own, its sealed
  // re-exec, a handshake): a program that starts one container must not pay for it.
  it('a program that runs one container spawns it, starting no fork server for it alone', async () => {
    const env = { ROOT: join(world.base, 'fs-data'), STATE: join(world.base, 'fs-state'), ROOTFS: world.rootfs };
    const r = await node(ONE_CONTAINER, env);
    assert.equal(r.code, 0);
    const seen = JSON.parse(r.stdout) as { shimParent: number; self: number };
    assert.equal(seen.shimParent, seen.self, 'the only run was forked by a fork server started for it');
  });

  it('with DOCKLESS_FORK_SERVER=1, the first op is forked by the server too', async () => {
    const env = { ROOT: join(world.base, 'fs-data'), STATE: join(world.base, 'fs-state'), ROOTFS: world.rootfs, DOCKLESS_FORK_SERVER: '1' };
    const r = await node(ONE_CONTAINER, env);
    assert.equal(r.code, 0);
    const seen = JSON.parse(r.stdout) as { shimParent: number; self: number };
    assert.notEqual(seen.shimParent, seen.self);
  });

  it('with DOCKLESS_FORK_SERVER=0, ops are spawned from Node', async () => {
    const env = { ROOT: join(world.base, 'fs-data'), STATE: join(world.base, 'fs-state'), ROOTFS: world.rootfs, DOCKLESS_FORK_SERVER: '0', BEFORE: '1' };
    const r = await node(ONE_CONTAINER, env);
    assert.equal(r.code, 0);
    const seen = JSON.parse(r.stdout) as { shimParent: number; self: number };
    assert.equal(seen.shimParent, seen.self);
  });
});
