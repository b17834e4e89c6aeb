// Secure by default: each test is an escape a default container must not make,
// tried from inside by the probe, or a knob (capAdd, capDrop, seccomp,
// privileged, noNewPrivileges, rlimits) that must do what it says. Root only.
import { strict as assert } from 'node:assert';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HelperError, PermissionError } from '../../src/index.js';
import { locateHelper, nativeBuildDir } from '../../src/helper/locate.js';
import { MASKED_PATHS } from '../../src/runtime/defaults.js';
import { applyDeviceAllowList, DEFAULT_DEVICE_RULES, processBoundingSet } from '../../src/runtime/security.js';
import type { ContainerSpec } from '../../src/runtime/spec.js';
import { cannotRun, makeWorld, text, type World } from '../fixtures/world.js';

const skip = cannotRun();
if (skip !== undefined) console.log(`# skipping security integration tests: ${skip}`);

const repo = join(import.meta.dirname, '..', '..');
const DOCKER_DEFAULT_CAP_MASK = '00000000a80425fb';
const CAP_SYS_ADMIN = 21;

type Extra = Partial<Omit<ContainerSpec, 'rootfs' | 'cmd'>>;

async function run(world: World, cmd: string[], extra: Extra = {}) {
  // create, read, then start: a container that exits before its output is read
  // could otherwise lose it (Node resumes unread stdio of an exited child).
  const c = await world.runtime.create({ rootfs: world.rootfs, cmd, ...extra });
  const output = Promise.all([text(c.stdout), text(c.stderr)]);
  await c.start();
  const [[stdout, stderr], exit] = await Promise.all([output, c.wait()]);
  await c.remove();
  return { stdout: stdout.trim(), stderr: stderr.trim(), exitCode: exit.exitCode };
}

/** The probe's answer: its stdout, or for a failed data probe the errno name on stderr. */
async function probe(world: World, args: string[], extra: Extra = {}): Promise<string> {
  const r = await run(world, ['probe', ...args], extra);
  return r.stdout !== '' ? r.stdout : r.stderr;
}

/** rmdir of a cgroup, retried while the kernel still counts an exited task in it (EBUSY). */
async function removeCgroup(dir: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EBUSY' || i >= 100) throw error;
      await sleep(10);
    }
  }
}

function hostStatus(pid: number, field: string): string {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  return line?.split(':')[1]?.trim() ?? '';
}

describe('security', { skip }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    await world?.dispose();
  });

  it('mounting a filesystem fails', async () => {
    assert.equal(await probe(world, ['mount', 'tmpfs', '/tmp']), 'EPERM');
  });

  it('masked /proc and /sys paths show nothing', async () => {
    // Kernels differ in which of these exist (this one may lack /proc/kcore); those that exist are tried.
    const present = MASKED_PATHS.filter((p) => existsSync(p));
    assert.ok(present.length > 0);
    for (const path of present) {
      if (statSync(path).isDirectory()) {
        assert.equal((await run(world, ['probe', 'ls', path])).stdout, '', path);
      } else {
        assert.equal(await probe(world, ['stat', path]), '666 0 0 char 1:3', path);
        assert.equal((await run(world, ['probe', 'cat', path])).stdout, '', path);
      }
    }
  });

  it('writing /proc/sys fails', async () => {
    // The host's own value, so that a broken protection would change nothing.
    const swappiness = readFileSync('/proc/sys/vm/swappiness', 'utf8').trim();
    assert.equal(await probe(world, ['write', '/proc/sys/vm/swappiness', swappiness]), 'EROFS');
    assert.equal(await probe(world, ['open', '/proc/sys/kernel/hostname', 'w']), 'EROFS');
    if (existsSync('/proc/sysrq-trigger')) assert.equal(await probe(world, ['open', '/proc/sysrq-trigger', 'w']), 'EROFS');
  });

  // Docker keeps CAP_MKNOD, so creating the node works; the devices cgroup must refuse its use.
  it('a block device made with mknod cannot be opened', async (t) => {
    try {
      closeSync(openSync('/dev/loop0', 'r'));
    } catch {
      return t.skip('the host itself cannot open /dev/loop0 (7:0), so the probe would prove nothing');
    }
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'read x; probe mknod /tmp/loop0 b 7 0 && probe open /tmp/loop0 r'] });
    const devicesCgroup = (pid: number | 'self') =>
      readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => /^\d+:(.*,)?devices(,.*)?:/.test(l));
    const own = devicesCgroup('self') !== undefined && devicesCgroup(c.pid) === devicesCgroup('self');
    c.stdin!.end('\n');
    const [stdout] = await Promise.all([text(c.stdout), c.wait()]);
    await c.remove();
    // The allow-list lives in the container's own devices cgroup, which the cgroup code creates.
    if (own) t.todo('the container has no devices cgroup of its own yet: this escape is OPEN');
    assert.equal(stdout.trim(), 'ok\nEPERM');
  });

  // The same escape against the allow-list alone, on this kernel's devices controller (cgroup v1).
  it('the devices allow-list refuses a block device made with mknod but allows /dev/null', async (t) => {
    const line = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => /^\d+:(.*,)?devices(,.*)?:/.test(l));
    if (line === undefined || !existsSync('/sys/fs/cgroup/devices')) return t.skip('no cgroup v1 devices controller here');
    const dir = join('/sys/fs/cgroup/devices', line.slice(line.lastIndexOf(':') + 1), `dl-test-${process.pid}`);
    mkdirSync(dir);
    try {
      await applyDeviceAllowList(dir, DEFAULT_DEVICE_RULES);
      const node = join(world.base, 'loop0');
      const script = `echo $$ > ${dir}/cgroup.procs; mknod ${node} b 7 0 && echo made; head -c 1 ${node} >/dev/null 2>&1 || echo refused; echo x >/dev/null && echo null`;
      const child = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise((resolve) => child.once('close', resolve));
      const [out] = await Promise.all([text(child.stdout), exited]);
      assert.equal(out.trim(), 'made\nrefused\nnull');
    } finally {
      rmSync(join(world.base, 'loop0'), { force: true });
      await removeCgroup(dir);
    }
  });

  it('loading a kernel module fails', async () => {
    assert.equal(await probe(world, ['init-module']), 'EPERM');
    assert.equal(await probe(world, ['finit-module']), 'EPERM');
  });

  it('changing the host’s hostname fails', async () => {
    const before = hostname();
    // Without CAP_SYS_ADMIN not even the container's own hostname may change, as with Docker.
    assert.equal(await probe(world, ['sethostname', 'escaped']), 'EPERM');
    // With it, only the container's uts namespace changes.
    const r = await run(world, ['sh', '-c', 'probe sethostname escaped && probe hostname'], { capAdd: ['SYS_ADMIN'] });
    assert.equal(r.stdout, 'ok\nescaped');
    assert.equal(hostname(), before);
    assert.equal(readFileSync('/proc/sys/kernel/hostname', 'utf8').trim(), before);
  });

  it('host processes are invisible', async () => {
    const pids = (await probe(world, ['ps'])).split('\n').map(Number);
    assert.ok(pids.every((p) => p <= 3), `host processes visible: ${pids.join(',')}`);
    assert.equal(await probe(world, ['kill', String(process.pid), '0']), 'ESRCH');
  });

  it('ptrace reaches neither a host process nor the init', async () => {
    assert.equal(await probe(world, ['ptrace', String(process.pid)]), 'ESRCH');
    // pid 1 is the helper's init: non-dumpable, so not even a root workload may trace it.
    assert.equal(await probe(world, ['ptrace', '1']), 'EPERM');
  });

  // runc CVE-2019-5736: a container that opens its init's /proc/PID/exe reaches the host's runtime binary.
  it('the host helper binary cannot be opened through /proc/1/exe', async () => {
    assert.equal(await probe(world, ['open', '/proc/1/exe', 'w']), 'EACCES');
    assert.equal(await probe(world, ['open', '/proc/1/exe', 'r']), 'EACCES');
    assert.equal(await probe(world, ['readlink', '/proc/1/exe']), 'EACCES');
    assert.equal(await probe(world, ['cat', '/proc/1/environ']), 'EACCES');
    assert.equal(await probe(world, ['open', '/proc/1/mem', 'r']), 'EACCES');
  });

  // With CAP_SYS_PTRACE a container process may trace pid 1; an init outside the filter ran keyctl for it.
  it('a tracer with CAP_SYS_PTRACE cannot make the init run a syscall the seccomp filter denies', async (t) => {
    if (process.arch !== 'x64') return t.skip(`the probe injects syscalls on x86_64 only, not ${process.arch}`);
    const r = await run(world, ['sh', '-c', 'probe ptrace-keyctl 1; probe cat /proc/1/status'], { capAdd: ['SYS_PTRACE'] });
    const [injected, ...status] = r.stdout.split('\n');
    assert.equal(injected, 'EPERM', r.stderr);
    assert.ok(status.includes('Seccomp:\t2'), status.join('\n'));
  });

  // The init's filter must not bring no_new_privs to a workload that asked to go without.
  it('with noNewPrivileges: false the init is under the filter and the workload still lacks no_new_privs', async () => {
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['probe', 'signal-wait'], noNewPrivileges: false });
    try {
      await new Promise<void>((resolve) => c.stdout!.once('data', () => resolve()));
      assert.equal(hostStatus(c.pid, 'Seccomp'), '2');
      const workload = Number(readFileSync(`/proc/${c.pid}/task/${c.pid}/children`, 'utf8').trim());
      assert.equal(hostStatus(workload, 'NoNewPrivs'), '0');
      assert.equal(hostStatus(workload, 'Seccomp'), '2');
    } finally {
      await c.kill('SIGKILL');
      await c.wait();
      await c.remove();
    }
  });

  // runc CVE-2019-5736: whoever reaches the shim's or the init's executable must not reach the helper on disk.
  it('the running helper is a sealed copy: its exe is not the helper on disk and cannot be opened for writing', async () => {
    const helper = locateHelper();
    const digest = () => createHash('sha256').update(readFileSync(helper)).digest('hex');
    const before = digest();
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['probe', 'signal-wait'] });
    try {
      await new Promise<void>((resolve) => c.stdout!.once('data', () => resolve()));
      const stat = readFileSync(`/proc/${c.pid}/stat`, 'utf8');
      const shim = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const onDisk = statSync(helper);
      for (const pid of [shim, c.pid]) {
        assert.match(readlinkSync(`/proc/${pid}/exe`), /^\/memfd:/, `pid ${pid}`);
        const exe = statSync(`/proc/${pid}/exe`);
        assert.ok(exe.ino !== onDisk.ino || exe.dev !== onDisk.dev, `pid ${pid} runs the helper on disk`);
        assert.throws(() => closeSync(openSync(`/proc/${pid}/exe`, 'r+')), /ETXTBSY|EPERM|EACCES/, `pid ${pid}`);
      }
    } finally {
      await c.kill('SIGKILL');
      await c.wait();
      await c.remove();
    }
    assert.equal(digest(), before);
  });

  // The copy costs about a millisecond per start when each run makes its own.
  it('the library runs every container from one sealed copy per process', async () => {
    const shimExe = async () => {
      const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['probe', 'signal-wait'] });
      try {
        await new Promise<void>((resolve) => c.stdout!.once('data', () => resolve()));
        const stat = readFileSync(`/proc/${c.pid}/stat`, 'utf8');
        const exe = `/proc/${Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])}/exe`;
        assert.match(readlinkSync(exe), /^\/memfd:/);
        return statSync(exe).ino;
      } finally {
        await c.kill('SIGKILL');
        await c.wait();
        await c.remove();
      }
    };
    assert.equal(await shimExe(), await shimExe());
  });

  it('run from its path on disk, the helper seals itself before it starts anything', () => {
    const out = execFileSync(locateHelper(), ['run', '--init', '--', '/bin/sh', '-c', 'readlink /proc/$PPID/exe'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    assert.match(out.trim(), /^\/memfd:dockless-helper/);
  });

  // The copy overlaps the caller's writing the configuration: it must not wait for it, nor depend on it.
  for (const op of ['run', 'exec', 'pause']) {
    it(`\`${op}\` seals itself before it reads its configuration`, async () => {
      // fd 5, the configuration, stays open and empty: an op that reads it first never seals itself.
      const child = spawn(locateHelper(), [op, '--config-fd', '5'], { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'ignore', 'pipe'], env: {} });
      try {
        let exe = '';
        for (let i = 0; i < 200 && !exe.startsWith('/memfd:'); i++) {
          await sleep(10);
          exe = readlinkSync(`/proc/${child.pid}/exe`);
        }
        assert.match(exe, /^\/memfd:dockless-helper/);
      } finally {
        child.kill('SIGKILL');
        await new Promise((resolve) => child.once('close', resolve));
      }
    });
  }

  it('with CAP_SYS_PTRACE, /proc/1/exe is not the host helper and cannot be opened for writing', async () => {
    const r = await run(world, ['sh', '-c', 'probe readlink /proc/1/exe; probe open /proc/1/exe w'], { capAdd: ['SYS_PTRACE'] });
    const [link, open] = r.stdout.split('\n');
    assert.match(link ?? '', /^\/memfd:/);
    assert.notEqual(open, 'ok');
  });

  // runc gives each container its own session keyring; ours joined the host user's _uid_ses.0.
  it('the container has its own session keyring, not the host user’s', async () => {
    const host = execFileSync(join(nativeBuildDir, 'probe'), ['keyring'], { encoding: 'utf8' }).trim();
    const inside = await probe(world, ['keyring'], { seccomp: 'unconfined' });
    assert.match(inside, /^\d+$/);
    assert.notEqual(inside, host);
    assert.notEqual(await probe(world, ['keyring'], { seccomp: 'unconfined' }), inside, 'two containers share a keyring');
  });

  it('the init holds only CAP_KILL, no_new_privs and no host fd', async () => {
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['probe', 'signal-wait'] });
    try {
      await new Promise<void>((resolve) => c.stdout!.once('data', () => resolve()));
      assert.equal(hostStatus(c.pid, 'CapEff'), '0000000000000020');
      assert.equal(hostStatus(c.pid, 'CapPrm'), '0000000000000020');
      assert.equal(hostStatus(c.pid, 'CapBnd'), DOCKER_DEFAULT_CAP_MASK);
      assert.equal(hostStatus(c.pid, 'NoNewPrivs'), '1');
      const fds = readdirSync(`/proc/${c.pid}/fd`).map(Number).sort((a, b) => a - b);
      // The container's stdio and the pipe that reports the workload's exit to the shim.
      assert.equal(fds.length, 4, `init fds: ${fds.join(',')}`);
      assert.deepEqual(fds.slice(0, 3), [0, 1, 2]);
      assert.match(readlinkSync(`/proc/${c.pid}/fd/${fds[3]}`), /^pipe:/);
    } finally {
      await c.kill('SIGKILL');
      await c.wait();
      await c.remove();
    }
  });

  // A file the caller opened without O_CLOEXEC (here by the shell that starts Node) must not reach the container.
  it('a host fd leaked into the caller does not reach the container', async () => {
    const script = `import { Runtime } from './src/index.ts';
      const r = new Runtime({ root: process.env.ROOT, stateDir: process.env.STATE });
      for (const init of [true, false]) {
        for (const cmd of [['probe', 'fds'], ['probe', 'open-fd', '7']]) {
          const c = await r.create({ rootfs: process.env.ROOTFS, cmd, init });
          let out = '';
          const reading = (async () => { for await (const chunk of c.stdout) out += chunk; })();
          await c.start();
          await Promise.all([reading, c.wait()]);
          await c.remove();
          console.log(JSON.stringify(out.trim()));
        }
      }`;
    const child = spawn('sh', ['-c', 'exec 7</etc/hostname; exec "$0" --import tsx --input-type=module -e "$1"', process.execPath, script], {
      cwd: repo,
      env: { ...process.env, ROOT: world.runtime.root, STATE: world.runtime.stateDir, ROOTFS: world.rootfs },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines = (await text(child.stdout)).trim().split('\n').map((l) => JSON.parse(l) as string);
    assert.deepEqual(lines, ['0\n1\n2', 'EBADF', '0\n1\n2', 'EBADF']);
  });

  it('capabilities cannot be raised above Docker’s default set', async () => {
    for (const init of [true, false]) {
      const caps = (await run(world, ['sh', '-c', 'for f in CapEff CapPrm CapBnd CapInh CapAmb; do probe status $f; done'], { init })).stdout;
      assert.deepEqual(caps.split('\n'), [DOCKER_DEFAULT_CAP_MASK, DOCKER_DEFAULT_CAP_MASK, DOCKER_DEFAULT_CAP_MASK, '0'.repeat(16), '0'.repeat(16)]);
    }
    assert.equal(await probe(world, ['capset-raise', String(CAP_SYS_ADMIN)]), 'EPERM');
  });

  it('no_new_privs and the seccomp filter are in force', async () => {
    assert.equal((await run(world, ['sh', '-c', 'probe status NoNewPrivs; probe status Seccomp'])).stdout, '1\n2');
  });

  it('a non-root user has no permitted or effective capabilities', async () => {
    const r = await run(world, ['sh', '-c', 'for f in CapEff CapPrm CapBnd; do probe status $f; done'], { user: '1000' });
    assert.deepEqual(r.stdout.split('\n'), ['0'.repeat(16), '0'.repeat(16), DOCKER_DEFAULT_CAP_MASK]);
  });

  it('unshare -U is refused by the default seccomp profile', async () => {
    assert.equal(await probe(world, ['unshare-user']), 'EPERM');
  });

  it('capAdd SYS_ADMIN allows mounting, as the seccomp profile follows the capabilities', async () => {
    assert.equal(await probe(world, ['mount', 'tmpfs', '/tmp'], { capAdd: ['SYS_ADMIN'] }), 'ok');
  });

  it('capDrop CHOWN makes chown fail', async () => {
    assert.equal(await probe(world, ['chown', '/etc/hostname', '1', '1']), 'ok');
    assert.equal(await probe(world, ['chown', '/etc/hostname', '1', '1'], { capDrop: ['CHOWN'] }), 'EPERM');
  });

  it('capAdd of a capability this process lacks is a PermissionError before anything starts', async (t) => {
    if ((processBoundingSet() & (1n << 24n)) !== 0n) return t.skip('this process holds CAP_SYS_RESOURCE');
    await assert.rejects(world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], capAdd: ['SYS_RESOURCE'] }), PermissionError);
  });

  it('seccomp unconfined allows unshare -U', async () => {
    assert.equal(await probe(world, ['unshare-user'], { seccomp: 'unconfined' }), 'ok');
  });

  it('a custom seccomp profile denying mkdir makes mkdir fail with EPERM', async () => {
    const profile = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }] } as const;
    assert.equal(await probe(world, ['mkdir', '/tmp/d']), 'ok');
    assert.equal(await probe(world, ['mkdir', '/tmp/d'], { seccomp: profile }), 'EPERM');
    assert.equal(await probe(world, ['mkdir', '/tmp/d'], { seccomp: JSON.stringify(profile) }), 'EPERM');
  });

  // The init runs under the container's filter: one that denies the init's own wait must not hang it.
  it('a profile denying rt_sigtimedwait still ends the container with the workload’s status', { timeout: 20_000 }, async () => {
    const profile = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['rt_sigtimedwait'], action: 'SCMP_ACT_ERRNO' }] } as const;
    const r = await run(world, ['sh', '-c', 'exit 3'], { seccomp: profile });
    assert.equal(r.exitCode, 3);
  });

  it('privileged lifts the restrictions', async () => {
    const own = processBoundingSet().toString(16).padStart(16, '0');
    const r = await run(
      world,
      ['sh', '-c', 'probe status CapEff; probe status Seccomp; probe mount tmpfs /tmp; probe unshare-user; probe stat /proc/keys'],
      { privileged: true },
    );
    const [capEff, seccomp, mount, unshare, keys] = r.stdout.split('\n');
    assert.equal(capEff, own);
    assert.equal(seccomp, '0');
    assert.equal(mount, 'ok');
    assert.equal(unshare, 'ok');
    assert.match(keys ?? '', / file$/, 'a masked path is still masked');
    const mounts = (await run(world, ['probe', 'mounts'], { privileged: true })).stdout;
    assert.ok(!mounts.split('\n').some((l) => l.split(' ')[4] === '/proc/sys'), '/proc/sys is still a read-only mount');
  });

  it('noNewPrivileges: false still confines the container with seccomp and the default capabilities', async () => {
    const r = await run(world, ['sh', '-c', 'probe status NoNewPrivs; probe status Seccomp; probe status CapEff; probe unshare-user'], {
      noNewPrivileges: false,
    });
    assert.deepEqual(r.stdout.split('\n'), ['0', '2', DOCKER_DEFAULT_CAP_MASK, 'EPERM']);
  });

  it('rlimits are applied; one above the hard limit is a HelperError naming setrlimit and the resource', async (t) => {
    assert.equal(await probe(world, ['rlimit', 'nofile'], { rlimits: { nofile: { soft: 256, hard: 512 } } }), '256 512');
    assert.equal(await probe(world, ['rlimit', 'core'], { rlimits: { core: { soft: 0, hard: 0 } } }), '0 0');
    if ((processBoundingSet() & (1n << 24n)) !== 0n) return t.skip('this process holds CAP_SYS_RESOURCE, so it may raise hard limits');
    const [, hard] = readFileSync('/proc/self/limits', 'utf8').match(/Max open files\s+\d+\s+(\d+)/)!;
    const above = Number(hard) + 1;
    const error = await world.runtime
      .run({ rootfs: world.rootfs, cmd: ['true'], rlimits: { nofile: { soft: above, hard: above } } })
      .then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof HelperError, String(error));
    assert.equal(error.step, 'setrlimit');
    assert.match(error.message, /setrlimit.*`nofile`/);
  });
});
