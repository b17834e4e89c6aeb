// container.exec and the one-call results (runtime.output, container.output),
// against real containers: the exec'd process must be inside everything the
// container is inside (namespaces, cgroups, security settings) and nowhere else.
import { strict as assert } from 'node:assert';
import { execFile, spawn } from 'node:child_process';
import { readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { AbortError, HelperError, ImageStore, InvalidArgumentError, InvalidStateError, OutputLimitError, type Container } from '../../src/index.js';
import { findExecCwdEscapes, prepareEscape } from '../fixtures/cwd-escape.js';
import { cannotRun, makeWorld, type World } from '../fixtures/world.js';
import { processStartTime } from '../../src/util/index.js';

const skip = cannotRun();
if (skip !== undefined) console.log(`# skipping exec integration tests: ${skip}`);
const repo = join(import.meta.dirname, '..', '..');

function statusLines(text: string, keys: readonly string[]): string[] {
  return text.split('\n').filter((l) => keys.some((k) => l.startsWith(`${k}:`)));
}

describe('container.exec', { skip }, () => {
  let world: World;
  let c: Container;

  before(async () => {
    world = await makeWorld();
    c = await world.runtime.run({
      rootfs: world.rootfs,
      cmd: ['sh', '-c', 'echo from-pid1 > /mnt/t/f; exec sleep 300'],
      hostname: 'exec-box',
      env: { FOO: 'container' },
      user: '1000:1000',
      cwd: '/tmp',
      init: false,
      mounts: [{ type: 'tmpfs', target: '/mnt/t', mode: 0o1777 }],
      stdio: 'ignore',
    });
    for (let i = 0; i < 100 && !(await c.output(['cat', '/mnt/t/f'])).stdout; i++) await sleep(20);
  });
  after(async () => {
    await world?.dispose();
  });

  it("sees the container's hostname, and gets its env, user and cwd by default", async () => {
    const r = await c.output(['sh', '-c', 'hostname; echo $FOO; id -u; id -g; pwd']);
    assert.deepEqual(r, { stdout: 'exec-box\ncontainer\n1000\n1000\n/tmp\n', stderr: '', exitCode: 0, signal: null });
  });

  it('takes env, user and cwd from its options over the container’s', async () => {
    const r = await c.output(['sh', '-c', 'echo $FOO $BAR; id -un; pwd; echo $HOME'], {
      env: { FOO: 'exec', BAR: 'b' },
      user: 'root',
      cwd: '/etc',
    });
    assert.equal(r.stdout, 'exec b\nroot\n/etc\n/root\n');
  });

  it("is in the container's pid namespace: pid 1 is the container's command, and it sees the container's processes only", async () => {
    const r = await c.output(['sh', '-c', 'cat /proc/1/comm; ls /proc | grep -c "^[0-9]"']);
    const [comm, count] = r.stdout.trim().split('\n');
    assert.equal(comm, 'sleep');
    assert.ok(Number(count) <= 4, `a container of one process shows ${count} pids to an exec`);
  });

  it("is in the container's mount namespace: it sees the container's tmpfs and what pid 1 wrote there", async () => {
    assert.equal((await c.output(['cat', '/mnt/t/f'])).stdout, 'from-pid1\n');
    assert.equal((await c.output(['cat', '/mnt/t/f'])).exitCode, 0);
    assert.deepEqual(await stat('/mnt/t/f').catch(() => 'absent'), 'absent');
  });

  it("is in the container's cgroups", async () => {
    await using p = await c.exec(['sleep', '30'], { stdio: 'ignore' });
    const mine = await readFile(`/proc/${p.pid}/cgroup`, 'utf8');
    const pid1 = await readFile(`/proc/${c.pid}/cgroup`, 'utf8');
    assert.equal(mine, pid1);
    assert.match(pid1, new RegExp(`dockless-${c.id}`));
  });

  it("has the container's capabilities, no_new_privs and seccomp filter", async () => {
    const keys = ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp'];
    const pid1 = statusLines(await readFile(`/proc/${c.pid}/status`, 'utf8'), keys);
    const r = await c.output(['cat', '/proc/self/status'], { user: '1000' });
    assert.deepEqual(statusLines(r.stdout, keys), pid1);
    const root = await c.output(['cat', '/proc/self/status'], { user: '0' });
    assert.match(root.stdout, /^CapEff:\s*00000000a80425fb$/m);
  });

  it('is denied what the seccomp filter denies, unless privileged', async () => {
    assert.equal((await c.output(['probe', 'unshare-user'], { user: '0' })).stdout.trim(), 'EPERM');
    assert.equal((await c.output(['probe', 'unshare-user'], { user: '0', privileged: true })).stdout.trim(), 'ok');
  });

  it('reports exit codes and signals, and a missing command as 127 with Docker’s message', async () => {
    assert.equal((await c.output(['sh', '-c', 'exit 3'])).exitCode, 3);
    const missing = await c.output(['no-such-command']);
    assert.equal(missing.exitCode, 127);
    assert.match(missing.stderr, /exec `no-such-command`: No such file or directory/);
    const p = await c.exec(['sleep', '30'], { stdio: 'ignore' });
    p.kill('SIGTERM');
    assert.deepEqual(await p.wait(), { exitCode: 143, signal: 'SIGTERM' });
  });

  it('streams stdin to the process and its output back', async () => {
    const p = await c.exec(['sh', '-c', 'read x; echo got $x; echo err >&2']);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout?.on('data', (d: Buffer) => out.push(d));
    p.stderr?.on('data', (d: Buffer) => err.push(d));
    p.stdin?.end('hello\n');
    assert.equal((await p.wait()).exitCode, 0);
    await sleep(10);
    assert.equal(Buffer.concat(out).toString(), 'got hello\n');
    assert.equal(Buffer.concat(err).toString(), 'err\n');
  });

  it('a cwd that does not exist is a HelperError with step chdir; a tty that is not a boolean is an InvalidArgumentError', async () => {
    await assert.rejects(c.exec(['true'], { cwd: '/nope' }), (e) => e instanceof HelperError && e.step === 'chdir');
    await assert.rejects(c.exec(['true'], { tty: 'yes' } as never), InvalidArgumentError);
  });

  // runc's CVE-2019-5736 through an exec: the process's parent must not lead to the helper binary on disk.
  it("the exec'd process cannot see its parent, and the parent runs from the sealed copy, not the helper on disk", async () => {
    assert.equal((await c.output(['probe', 'ppid'])).stdout.trim(), '0');
    await using p = await c.exec(['sleep', '30'], { stdio: 'ignore' });
    const ppid = /^PPid:\s*(\d+)$/m.exec(await readFile(`/proc/${p.pid}/status`, 'utf8'))![1];
    assert.match(await readlink(`/proc/${ppid}/exe`), /^\/memfd:dockless-helper/);
  });

  it('an exec on another process’s detached container works through the state directory', async () => {
    const detached = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '300'], hostname: 'far-box', detached: true, stdio: 'ignore' });
    try {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', join(repo, 'test', 'fixtures', 'exec-child.ts'), world.runtime.root, world.runtime.stateDir, detached.id, 'hostname'],
        { cwd: repo },
      );
      assert.deepEqual(JSON.parse(stdout), { stdout: 'far-box\n', stderr: '', exitCode: 0, signal: null });
    } finally {
      await detached.remove({ force: true });
    }
  });

  it('an exec dies with the process that started it, unless detached; an AbortSignal kills it', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(repo, 'test', 'fixtures', 'exec-child.ts'), world.runtime.root, world.runtime.stateDir, c.id, '--hold', 'sleep', '300'],
      { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const line = await new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString())));
    const { pid } = JSON.parse(line) as { pid: number };
    assert.notEqual(processStartTime(pid), undefined);
    child.kill('SIGKILL');
    for (let i = 0; i < 250 && processStartTime(pid) !== undefined; i++) await sleep(40);
    assert.equal(processStartTime(pid), undefined, 'the exec outlived its caller');

    const detached = await c.exec(['sleep', '300'], { stdio: 'ignore', detached: true });
    try {
      // The exec is reported at its `started` line, written just before its execve: /proc/PID/cmdline
      // may still read the helper's argv a moment, or read empty while the kernel is inside execve.
      let cmdline = '';
      for (let i = 0; i < 100 && !cmdline.startsWith('sleep'); i++) {
        cmdline = await readFile(`/proc/${detached.pid}/cmdline`, 'utf8');
        if (!cmdline.startsWith('sleep')) await sleep(10);
      }
      assert.match(cmdline, /^sleep/);
    } finally {
      detached.kill('SIGKILL');
      await detached.wait();
    }

    const controller = new AbortController();
    const p = await c.exec(['sleep', '300'], { stdio: 'ignore', signal: controller.signal });
    controller.abort();
    await assert.rejects(p.wait(), AbortError);
    for (let i = 0; i < 250 && processStartTime(p.pid) !== undefined; i++) await sleep(40);
    assert.equal(processStartTime(p.pid), undefined, 'the aborted exec still runs');
  });

  it('exec into a stopped container is an InvalidStateError, from this process or another', async () => {
    const done = await world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], stdio: 'ignore' });
    await done.wait();
    await assert.rejects(done.exec(['true']), InvalidStateError);
    const foreign = await world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], detached: true, stdio: 'ignore' });
    await foreign.wait();
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', join(repo, 'test', 'fixtures', 'exec-child.ts'), world.runtime.root, world.runtime.stateDir, foreign.id, 'true'],
      { cwd: repo },
    );
    assert.equal(JSON.parse(stdout).error, 'InvalidStateError');
    await Promise.all([done.remove(), foreign.remove()]);
  });

  it("with userns: 'auto', it runs in the container's user namespace as its root", async () => {
    const u = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '300'], userns: 'auto', stdio: 'ignore' });
    try {
      const r = await u.output(['sh', '-c', 'id -u; cat /proc/self/uid_map']);
      const pid1Map = await readFile(`/proc/${u.pid}/uid_map`, 'utf8');
      const [id, ...map] = r.stdout.split('\n');
      assert.equal(id, '0');
      assert.equal(map.join('\n'), pid1Map);
    } finally {
      await u.remove({ force: true });
    }
  });

  // runc CVE-2024-21626 ("leaky vessels"): `runc exec --cwd /proc/self/fd/N` reached a host directory through a leaked fd.
  it('an exec cwd of /proc/self/fd/N never lands on the host', async () => {
    const store = await ImageStore.open({ root: join(world.base, 'store') });
    const fixture = await prepareEscape(join(world.base, 'escape'), store);
    const target = await world.runtime.run({
      rootfs: fixture.rootfs,
      cmd: ['/bin/probe', 'sleep', '300'],
      mounts: [{ type: 'bind', source: fixture.bindSource, target: '/mnt/bind' }],
      stdio: 'ignore',
    });
    try {
      assert.deepEqual(await findExecCwdEscapes(fixture, target), []);
    } finally {
      await target.remove({ force: true });
    }
  });
});

describe('runtime.output', { skip }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    await world?.dispose();
  });

  it('returns stdout, stderr and the exit code, and removes the container', async () => {
    const r = await world.runtime.output({ rootfs: world.rootfs, cmd: ['sh', '-c', 'echo out; echo err >&2; exit 4'] });
    assert.deepEqual(r, { stdout: 'out\n', stderr: 'err\n', exitCode: 4, signal: null });
    assert.deepEqual(await world.runtime.list(), []);
  });

  it("returns Buffers with encoding: 'buffer'", async () => {
    const r = await world.runtime.output({ rootfs: world.rootfs, cmd: ['printf', '\\377\\000'] }, { encoding: 'buffer' });
    assert.deepEqual(r.stdout, Buffer.from([0xff, 0]));
  });

  it('kills a command over maxBuffer with an OutputLimitError, and removes the container', async () => {
    await assert.rejects(
      world.runtime.output({ rootfs: world.rootfs, cmd: ['sh', '-c', 'yes | head -c 100000; sleep 300'] }, { maxBuffer: 1000 }),
      (e) => e instanceof OutputLimitError && e.stream === 'stdout' && e.maxBuffer === 1000,
    );
    assert.deepEqual(await world.runtime.list(), []);
  });

  it('refuses a detached spec', async () => {
    await assert.rejects(world.runtime.output({ rootfs: world.rootfs, cmd: ['true'], detached: true }), InvalidArgumentError);
  });
});
