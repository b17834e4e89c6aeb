// Pods (Namespace) and the network modes 'none', 'host' and { container },
// against real containers, as root (the rootless versions are cases of
// rootless.test.ts).
import { strict as assert } from 'node:assert';
import { execFile, execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import {
  AlreadyExistsError,
  InvalidArgumentError,
  InvalidStateError,
  Namespace,
  NotFoundError,
  Runtime,
  type Container,
} from '../../src/index.js';
import { isProcessAlive, processStartTime } from '../../src/util/index.js';
import { podsDir } from '../../src/runtime/pods.js';
import { cannotRun, makeWorld, type World } from '../fixtures/world.js';

const skip = cannotRun();
if (skip !== undefined) console.log(`# skipping pod integration tests: ${skip}`);
const repo = join(import.meta.dirname, '..', '..');
const execFileP = promisify(execFile);

/** Runs `sh -c script` in a container to its end and returns its stdout (asserting exit 0). */
async function sh(runtime: Runtime, rootfs: string, script: string, spec: Record<string, unknown> = {}): Promise<string> {
  const r = await runtime.output({ rootfs, cmd: ['sh', '-c', script], ...spec });
  assert.equal(r.exitCode, 0, `${script}: ${r.stderr}`);
  return r.stdout;
}

/** A server that answers one TCP connection on <port> with `reply`, once it listens. */
async function listen(runtime: Runtime, rootfs: string, port: number, reply: string, spec: Record<string, unknown>): Promise<Container> {
  const c = await runtime.run({ rootfs, cmd: ['sh', '-c', `echo ${reply} | nc -l -p ${port}`], stdio: 'ignore', ...spec });
  // Listening shows in the network namespace's /proc/net/tcp or tcp6 (state 0A), read from inside it.
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  for (let i = 0; i < 200; i++) {
    const tcp = await c.output(['cat', '/proc/net/tcp', '/proc/net/tcp6']).catch(() => undefined);
    if (tcp?.stdout.split('\n').some((l) => l.includes(`:${hex} `) && l.includes(' 0A '))) return c;
    await sleep(20);
  }
  throw new Error(`nothing listens on ${port}`);
}

async function childJson(args: string[]): Promise<{ id: string; pid: number }> {
  const { stdout } = await execFileP(process.execPath, ['--import', 'tsx', join(repo, 'test', 'fixtures', 'pod-child.ts'), ...args], { cwd: repo, timeout: 30_000 });
  return JSON.parse(stdout.trim()) as { id: string; pid: number };
}

describe('Namespace (pods)', { skip }, () => {
  let world: World;

  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    for (const p of await Namespace.list(world.runtime).catch(() => [])) {
      await (await Namespace.get(world.runtime, p.id).catch(() => undefined))?.remove({ force: true }).catch(() => undefined);
    }
    await world?.dispose();
  });

  it('three members share net, ipc and uts: loopback TCP between them, one hostname, SysV and POSIX shared memory', async () => {
    await using pod = await Namespace.create(world.runtime, { hostname: 'pod-three' });
    const { runtime, rootfs } = world;
    const server = await listen(runtime, rootfs, 7001, 'from-server', { namespace: pod });
    const client = await sh(runtime, rootfs, 'nc 127.0.0.1 7001; hostname', { namespace: pod });
    assert.equal(client, 'from-server\npod-three\n');
    await sh(runtime, rootfs, 'probe shmget 4242; echo posix > /dev/shm/pod-segment', { namespace: pod });
    assert.equal(await sh(runtime, rootfs, 'cat /dev/shm/pod-segment', { namespace: pod }), 'posix\n');
    const third = await sh(runtime, rootfs, 'hostname; cat /proc/sysvipc/shm; cat /etc/hostname', { namespace: pod });
    const [hostname, , ...segments] = third.trim().split('\n');
    assert.equal(hostname, 'pod-three');
    assert.ok(segments.some((l) => l.trim().split(/\s+/)[0] === '4242'), third);
    assert.equal(third.trim().split('\n').at(-1), 'pod-three');
    // Outside the pod nothing of it is seen.
    const outside = await sh(runtime, rootfs, 'cat /proc/sysvipc/shm; ls /dev/shm; hostname', { hostname: 'alone' });
    assert.ok(!outside.includes('4242') && !outside.includes('pod-segment'), outside);
    assert.equal((await pod.members()).map((m) => m.id).includes(server.id), true);
    await server.wait();
  });

  it("with 'pid' shared, ps in one member shows the other members' processes", async () => {
    await using pod = await Namespace.create(world.runtime, { share: ['net', 'ipc', 'uts', 'pid'] });
    const { runtime, rootfs } = world;
    const sleeper = await runtime.run({ rootfs, cmd: ['sleep', '4711'], namespace: pod, stdio: 'ignore' });
    const ps = await sh(runtime, rootfs, 'ps -o pid,args', { namespace: pod });
    assert.match(ps, /sleep 4711/);
    assert.match(ps, /^\s*1\s.*pause/m, 'the holder is the pid namespace\'s init');
    // An exec into a member joins the pod's pid namespace too.
    const exec = await sleeper.output(['ps', '-o', 'args']);
    assert.match(exec.stdout, /sleep 4711/);
    assert.match(exec.stdout, /pause/);
  });

  it('an exec into a member joins the pod’s network namespace', async () => {
    await using pod = await Namespace.create(world.runtime, {});
    const { runtime, rootfs } = world;
    const member = await runtime.run({ rootfs, cmd: ['sleep', '300'], namespace: pod, stdio: 'ignore' });
    await listen(runtime, rootfs, 7002, 'via-exec', { namespace: pod });
    const r = await member.output(['sh', '-c', 'nc 127.0.0.1 7002; hostname']);
    assert.equal(r.stdout, `via-exec\n${pod.id.slice(0, 12)}\n`);
    assert.equal((await member.inspect()).HostConfig.NetworkMode, `pod:${pod.id}`);
    assert.equal(member.info().namespace, pod.id);
  });

  it('removing a pod with running members is an InvalidStateError and leaves it whole; force kills them', async () => {
    const pod = await Namespace.create(world.runtime, {});
    const member = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '300'], namespace: pod, stdio: 'ignore' });
    await assert.rejects(pod.remove(), InvalidStateError);
    assert.equal((await pod.inspect()).status, 'running');
    assert.equal(member.status, 'running');
    const holder = (await pod.inspect()).pid;
    await pod.remove({ force: true });
    assert.equal(member.status, 'removed');
    assert.equal(processStartTime(holder), undefined, 'the holder is gone');
    await assert.rejects(Namespace.get(world.runtime, pod.id), NotFoundError);
    await assert.rejects(pod.inspect(), NotFoundError);
  });

  it('bad input is a typed error with nothing half-created: an unknown share name, a name taken, a bad hostname', async () => {
    const before = (await readdir(podsDir(world.runtime.stateDir)).catch(() => [])).filter((e) => !e.startsWith('.'));
    await assert.rejects(Namespace.create(world.runtime, { share: ['net', 'mount' as 'net'] }), InvalidArgumentError);
    await assert.rejects(Namespace.create(world.runtime, { share: [] }), InvalidArgumentError);
    await assert.rejects(Namespace.create(world.runtime, { hostname: 'bad host' }), InvalidArgumentError);
    await assert.rejects(Namespace.create(world.runtime, { name: '-bad' }), InvalidArgumentError);
    await using taken = await Namespace.create(world.runtime, { name: 'taken-pod' });
    const pods = async () => (await Namespace.list(world.runtime)).map((p) => p.id);
    const listed = await pods();
    await assert.rejects(Namespace.create(world.runtime, { name: 'taken-pod' }), AlreadyExistsError);
    assert.deepEqual(await pods(), listed, 'the failed create left no pod');
    assert.equal((await Namespace.get(world.runtime, 'taken-pod')).id, taken.id);
    const after = (await readdir(podsDir(world.runtime.stateDir))).filter((e) => !e.startsWith('.'));
    assert.deepEqual(after.sort(), [...before, 'names', taken.id].filter((v, i, a) => a.indexOf(v) === i).sort());
    // A member cannot have what the pod gives it.
    await assert.rejects(world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], namespace: taken, hostname: 'x' }), InvalidArgumentError);
    await assert.rejects(world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], namespace: taken, network: 'host' }), InvalidArgumentError);
  });

  it('a detached pod made by another process is found, used and removed here', async () => {
    const made = await childJson(['create', world.runtime.root, world.runtime.stateDir, 'detached-pod']);
    // The creating process has exited: the pod lives on.
    assert.ok(isProcessAlive(made.pid, processStartTime(made.pid)!));
    const pod = await Namespace.get(world.runtime, 'detached-pod');
    assert.equal(pod.id, made.id);
    const info = await pod.inspect();
    assert.equal(info.status, 'running');
    assert.equal(info.detached, true);
    assert.ok((await Namespace.list(world.runtime)).some((p) => p.id === made.id));
    assert.equal(await sh(world.runtime, world.rootfs, 'hostname', { namespace: pod }), 'child-pod\n');
    await pod.remove();
    assert.equal(processStartTime(made.pid), undefined);
    await assert.rejects(Namespace.get(world.runtime, 'detached-pod'), NotFoundError);
  });

  it('a pod alone does not keep its owner running: the process ends, and the pod with it', async () => {
    // A pod has no output to wait for: holding the event loop open for it would hang every script that forgets to remove one.
    const started = Date.now();
    const { id, pid } = await childJson(['leave', world.runtime.root, world.runtime.stateDir]);
    assert.ok(Date.now() - started < 20_000);
    for (let i = 0; i < 200 && processStartTime(pid) !== undefined; i++) await sleep(10);
    assert.equal(processStartTime(pid), undefined, 'the holder died with its owner');
    assert.equal((await (await Namespace.get(world.runtime, id)).inspect()).status, 'stopped');
  });

  it("a pod that is not detached dies with its owner, even by SIGKILL, and prune() removes its record", async () => {
    const child = execFile(process.execPath, ['--import', 'tsx', join(repo, 'test', 'fixtures', 'pod-child.ts'), 'hold', world.runtime.root, world.runtime.stateDir], { cwd: repo });
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      child.on('exit', () => reject(new Error(`pod child exited: ${out}`)));
    });
    const { id, pid } = JSON.parse(line) as { id: string; pid: number };
    assert.notEqual(processStartTime(pid), undefined);
    child.kill('SIGKILL');
    for (let i = 0; i < 200 && processStartTime(pid) !== undefined; i++) await sleep(10);
    assert.equal(processStartTime(pid), undefined, 'the holder died with its owner');
    assert.equal((await Namespace.get(world.runtime, id)).id, id);
    assert.equal((await (await Namespace.get(world.runtime, id)).inspect()).status, 'stopped');
    await assert.rejects(world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], namespace: { id } }), InvalidStateError);
    await world.runtime.prune();
    await assert.rejects(Namespace.get(world.runtime, id), NotFoundError);
  });
});

describe('network modes', { skip }, () => {
  let world: World;

  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    await world?.dispose();
  });

  it("'none' (the default): only loopback, up", async () => {
    const out = await sh(world.runtime, world.rootfs, 'cat /proc/net/dev', { network: 'none' });
    const names = out.split('\n').slice(2).filter(Boolean).map((l) => l.split(':')[0]!.trim());
    assert.deepEqual(names, ['lo']);
    assert.equal(await sh(world.runtime, world.rootfs, 'cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " "'), 'lo\n');
  });

  it("'host': the host's interfaces, /etc/hosts and hostname", async (t) => {
    const ifaces = (text: string) => text.split('\n').slice(2).filter(Boolean).map((l) => l.split(':')[0]!.trim()).sort();
    // The suite's own network namespace has only loopback: a pair of links of ours shows they are the host's.
    if (process.env.DOCKLESS_IN_TEST_NETNS === '1' && ifaces(await readFile('/proc/net/dev', 'utf8')).length === 1) {
      execFileSync('ip', ['link', 'add', 'dl-hostns0', 'type', 'veth', 'peer', 'name', 'dl-hostns1']);
      t.after(() => execFileSync('ip', ['link', 'del', 'dl-hostns0']));
    }
    const hostDev = await readFile('/proc/net/dev', 'utf8');
    const out = await sh(world.runtime, world.rootfs, 'cat /proc/net/dev; echo ---; cat /etc/hosts; echo ---; hostname', { network: 'host' });
    const [dev, hosts, hostname] = out.split('---\n');
    assert.deepEqual(ifaces(dev!), ifaces(hostDev));
    assert.ok(ifaces(dev!).length > 1, 'the host has more than loopback');
    assert.equal(hosts, await readFile('/etc/hosts', 'utf8'));
    assert.equal(hostname!.trim(), (await readFile('/proc/sys/kernel/hostname', 'utf8')).trim());
    // A runtime's default.
    const hostRuntime = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir, network: 'host' });
    assert.deepEqual(ifaces(await sh(hostRuntime, world.rootfs, 'cat /proc/net/dev')), ifaces(hostDev));
    const created = await hostRuntime.create({ rootfs: world.rootfs, cmd: ['true'] });
    assert.equal((await created.inspect()).HostConfig.NetworkMode, 'host');
    await created.remove({ force: true });
  });

  it('{ container }: joins that container’s network namespace (loopback reaches it) and takes its hostname', async () => {
    const { runtime, rootfs } = world;
    const server = await listen(runtime, rootfs, 7003, 'joined', { hostname: 'net-owner', name: 'net-owner' });
    const joined = await runtime.create({ rootfs, cmd: ['true'], network: { container: server } });
    assert.equal((await joined.inspect()).HostConfig.NetworkMode, `container:${server.id}`);
    await joined.remove({ force: true });
    const out = await sh(runtime, rootfs, 'nc 127.0.0.1 7003; hostname', { network: { container: 'net-owner' } });
    assert.equal(out, 'joined\nnet-owner\n');
    await server.wait();
    await server.remove();
  });

  it('{ container }: a container that is not running, or a hostname, is a typed error', async () => {
    const { runtime, rootfs } = world;
    const done = await runtime.run({ rootfs, cmd: ['true'], stdio: 'ignore' });
    await done.wait();
    await assert.rejects(runtime.run({ rootfs, cmd: ['true'], network: { container: done } }), InvalidStateError);
    await assert.rejects(runtime.run({ rootfs, cmd: ['true'], network: { container: 'no-such-container' } }), NotFoundError);
    const live = await runtime.run({ rootfs, cmd: ['sleep', '30'], stdio: 'ignore' });
    await assert.rejects(runtime.run({ rootfs, cmd: ['true'], network: { container: live }, hostname: 'x' }), InvalidArgumentError);
    await live.remove({ force: true });
    await done.remove();
  });

  it('a malformed network is an InvalidArgumentError, nothing made', async () => {
    const before = (await world.runtime.list()).length;
    await assert.rejects(world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], network: 'nat' as 'none' }), InvalidArgumentError);
    assert.equal((await world.runtime.list()).length, before);
  });
});
