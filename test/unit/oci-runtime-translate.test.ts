// dockless-runtime's config.json → run plan: every field either honoured (in the
// helper's terms) or refused with an UnsupportedError naming it, never ignored.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError, UnsupportedError } from '../../src/errors.js';
import type { OciConfig } from '../../src/oci-runtime/config.js';
import { main } from '../../src/oci-runtime/main.js';
import { defaultSpec, features } from '../../src/oci-runtime/spec-default.js';
import { translateConfig, translateProcess, type OciHost } from '../../src/oci-runtime/translate.js';
import { createHookArgs } from '../../src/oci-runtime/hooks.js';
import { runcUpdateResources } from '../../src/oci-runtime/update.js';
import { capBitmask, capNumber, execArgs, runArgs } from '../../src/runtime/index.js';

const HOST: OciHost = { uid: 0, umask: 0o22, arch: 'x86_64', kernel: '6.1.0' };
const BUNDLE = '/b';

const spec = (edit: (c: OciConfig) => void = () => undefined): OciConfig => {
  const c = structuredClone(defaultSpec());
  c.process!.terminal = false;
  edit(c);
  return c;
};

describe('oci-runtime: config.json → run plan', () => {
  it('translates runc\'s default spec', () => {
    const plan = translateConfig(spec(), BUNDLE, HOST);
    assert.equal(plan.rootfs, '/b/rootfs');
    assert.equal(plan.readonlyRootfs, true);
    assert.deepEqual(plan.namespaces, ['pid', 'net', 'ipc', 'uts', 'mount', 'cgroup']);
    assert.deepEqual(plan.joins, []);
    assert.equal(plan.hostname, 'runc');
    assert.deepEqual(plan.process.cmd, ['sh']);
    assert.equal(plan.process.caps, capBitmask(['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'].map(capNumber)));
    assert.deepEqual(plan.process.rlimits, [{ name: 'nofile', soft: '1024', hard: '1024' }]);
    assert.equal(plan.process.noNewPrivileges, true);
    const proc = plan.mounts.find((m) => !('cgroupfs' in m) && m.target === '/proc');
    assert.deepEqual(proc, { type: 'proc', source: 'proc', target: '/proc', options: [], nofollow: true });
    assert.ok(plan.mounts.some((m) => 'cgroupfs' in m && m.readonly));
    assert.ok(plan.devices.some((d) => d.path === '/dev/null'));
    assert.ok(plan.symlinks.some(([t, p]) => t === 'pts/ptmx' && p === '/dev/ptmx'));
    assert.ok(plan.masked.includes('/proc/kcore'));
    assert.ok(plan.readonlyPaths.includes('/proc/sys'));
    // The config's deny-all first, then the defaults runc adds so that /dev works.
    assert.deepEqual(plan.deviceRules![0], { allow: false, type: 'a', major: '*', minor: '*', access: 'rwm' });
    assert.ok(plan.deviceRules!.some((r) => r.allow && r.type === 'c' && r.major === 1 && r.minor === 3));
  });

  it('as root of a user namespace not the host\'s (rootless podman\'s runtime), binds the host\'s device nodes instead of making them', () => {
    // Rootless podman's containers failed: mknod of the default devices is EPERM there.
    const plan = translateConfig(spec(), BUNDLE, { ...HOST, nestedUserns: true });
    assert.deepEqual(plan.devices, []);
    assert.equal(plan.userns, undefined);
    const binds = plan.mounts.filter((m) => !('cgroupfs' in m) && m.type === 'bind').map((m) => !('cgroupfs' in m) && [m.source, m.target]);
    assert.deepEqual(binds.filter((b) => b && b[0] === '/dev/null'), [['/dev/null', '/dev/null']]);
    assert.ok(translateConfig(spec(), BUNDLE, HOST).devices.some((d) => d.path === '/dev/null'));
  });

  it('joins namespaces given by path, and makes a user namespace from the mappings', () => {
    const plan = translateConfig(
      spec((c) => {
        c.linux!.namespaces = [{ type: 'mount' }, { type: 'network', path: '/run/netns/x' }, { type: 'user' }, { type: 'pid' }];
        c.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        c.linux!.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
        c.hostname = '';
      }),
      BUNDLE,
      HOST,
    );
    assert.deepEqual(plan.namespaces, ['mount', 'pid']);
    assert.deepEqual(plan.joins, [['net', '/run/netns/x']]);
    assert.deepEqual(plan.userns?.hostRoot, { uid: 100000, gid: 200000 });
    assert.deepEqual(plan.userns?.uidMap, [{ containerId: 0, hostId: 100000, size: 65536 }]);
    // No node can be made in a user namespace: the host's are bound.
    assert.deepEqual(plan.devices, []);
    assert.ok(plan.mounts.some((m) => !('cgroupfs' in m) && m.type === 'bind' && m.target === '/dev/null'));
  });

  it('translates user, groups, env, cwd, rlimits, oomScoreAdj and the console size', () => {
    const p = translateProcess(
      {
        user: { uid: 1000, gid: 1000, additionalGids: [10, 20] },
        args: ['id'],
        env: ['A=1'],
        cwd: '/tmp',
        rlimits: [{ type: 'RLIMIT_NPROC', soft: 10, hard: 18446744073709551615 }],
        capabilities: { bounding: ['CAP_CHOWN'] },
        oomScoreAdj: 100,
        terminal: true,
        consoleSize: { height: 30, width: 100 },
      },
      HOST,
    );
    assert.deepEqual(p.user, { uid: 1000, gid: 1000, groups: [10, 20] });
    assert.deepEqual(p.rlimits, [{ name: 'nproc', soft: '10', hard: 'unlimited' }]);
    assert.equal(p.caps, 1n << BigInt(capNumber('CAP_CHOWN')));
    assert.equal(p.oomScoreAdj, 100);
    assert.deepEqual(p.consoleSize, { rows: 30, columns: 100 });
    assert.equal(p.terminal, true);
  });

  it('translates resources, sysctls, domainname, cgroupsPath and binds relative to the bundle', () => {
    const plan = translateConfig(
      spec((c) => {
        c.linux!.resources = { memory: { limit: 64 << 20, swap: 128 << 20 }, cpu: { shares: 512, quota: 50_000, period: 100_000, cpus: '0' }, pids: { limit: 50 } };
        c.linux!.sysctl = { 'net.ipv4.ping_group_range': '0 0', 'kernel.shmmax': '1000' };
        c.domainname = 'example.org';
        c.linux!.cgroupsPath = '/pods/c1';
        c.mounts!.push({ destination: '/data', type: 'bind', source: 'data', options: ['rbind', 'ro'] });
      }),
      BUNDLE,
      HOST,
    );
    assert.deepEqual(plan.resources, { memory: 64 << 20, memorySwap: 128 << 20, cpuShares: 512, cpus: 0.5, cpuset: '0', pids: 50 });
    assert.deepEqual(plan.sysctls, [
      ['net.ipv4.ping_group_range', '0 0'],
      ['kernel.shmmax', '1000'],
      ['kernel.domainname', 'example.org'],
    ]);
    assert.equal(plan.cgroupsPath, 'pods/c1');
    assert.deepEqual(plan.mounts.at(-1), { type: 'bind', source: '/b/data', target: '/data', options: ['rbind', 'ro'] });
  });

  it('compiles linux.seccomp with the library\'s compiler', () => {
    const plan = translateConfig(
      spec((c) => {
        c.linux!.seccomp = {
          defaultAction: 'SCMP_ACT_ALLOW',
          architectures: ['SCMP_ARCH_X86_64'],
          syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, args: [{ index: 1, value: 0o700, op: 'SCMP_CMP_EQ' }] }],
        };
      }),
      BUNDLE,
      HOST,
    );
    assert.ok(plan.seccomp !== undefined && plan.seccomp.length > 0 && plan.seccomp.length % 8 === 0);
  });

  const refusals: [string, (c: OciConfig) => void][] = [
    ['ociVersion', (c) => (c.ociVersion = '2.0.0')],
    ['process.apparmorProfile', (c) => (c.process!.apparmorProfile = 'docker-default')],
    ['process.selinuxLabel', (c) => (c.process!.selinuxLabel = 'system_u:system_r:container_t:s0')],
    ['process.scheduler', (c) => (c.process!.scheduler = { policy: 'SCHED_FIFO' })],
    ['process.ioPriority', (c) => (c.process!.ioPriority = { class: 'IOPRIO_CLASS_RT' })],
    ['process.user.umask', (c) => (c.process!.user.umask = 0o77)],
    ['process.capabilities.ambient', (c) => (c.process!.capabilities!.ambient = ['CAP_SYS_ADMIN'])],
    ['process.capabilities.inheritable', (c) => (c.process!.capabilities!.inheritable = ['CAP_KILL'])],
    ['process.capabilities.effective', (c) => (c.process!.capabilities!.effective = ['CAP_KILL'])],
    ['linux.seccomp.flags', (c) => (c.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_LOG'] })],
    ['linux.seccomp.listenerPath', (c) => (c.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/l.sock' })],
    [
      'linux.seccomp.syscalls[0].action',
      (c) => (c.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mount'], action: 'SCMP_ACT_NOTIFY' }] }),
    ],
    ['linux.resources.blockIO', (c) => (c.linux!.resources = { blockIO: { weight: 10 } })],
    ['linux.resources.hugepageLimits', (c) => (c.linux!.resources = { hugepageLimits: [{ pageSize: '2MB', limit: 1 }] })],
    ['linux.resources.unified', (c) => (c.linux!.resources = { unified: { 'memory.high': '1' } })],
    ['linux.resources.memory.swappiness', (c) => (c.linux!.resources = { memory: { swappiness: 10 } })],
    ['linux.resources.cpu.realtimeRuntime', (c) => (c.linux!.resources = { cpu: { realtimeRuntime: 10 } })],
    ['linux.resources.cpu.period', (c) => (c.linux!.resources = { cpu: { quota: 10_000, period: 50_000 } })],
    ['linux.namespaces[6]', (c) => c.linux!.namespaces!.push({ type: 'time' })],
    ['linux.namespaces', (c) => (c.linux!.namespaces = [{ type: 'pid' }])],
    ['mounts[1].options', (c) => c.mounts![1]!.options!.push('idmap')],
    ['mounts[0].uidMappings', (c) => (c.mounts![0]!.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }])],
    ['linux.personality', (c) => (c.linux!.personality = { domain: 'LINUX32' })],
    ['linux.intelRdt', (c) => (c.linux!.intelRdt = { closID: 'x' })],
    ['linux.timeOffsets', (c) => (c.linux!.timeOffsets = { monotonic: { secs: 1 } })],
    ['linux.mountLabel', (c) => (c.linux!.mountLabel = 'system_u:object_r:container_file_t:s0')],
    ['linux.rootfsPropagation', (c) => (c.linux!.rootfsPropagation = 'shared')],
    ['linux.cgroupsPath', (c) => (c.linux!.cgroupsPath = 'machine.slice:libpod:abc')],
    ['linux.sysctl.kernel.pid_max', (c) => (c.linux!.sysctl = { 'kernel.pid_max': '100' })],
    ['.solaris', (c) => (c.solaris = { milestone: 'x' })],
  ];
  for (const [field, edit] of refusals) {
    it(`refuses \`${field}\` with an UnsupportedError naming it`, () => {
      assert.throws(
        () => translateConfig(spec(edit), BUNDLE, HOST),
        (e: unknown) => e instanceof UnsupportedError && e.code === 'ERR_DOCKLESS_UNSUPPORTED' && e.field === field && e.message.includes(`\`${field}\``),
      );
    });
  }

  const invalid: [string, (c: OciConfig) => void][] = [
    ['process.args', (c) => (c.process!.args = [])],
    ['process.cwd', (c) => (c.process!.cwd = 'relative')],
    ['hostname', (c) => (c.linux!.namespaces = c.linux!.namespaces!.filter((n) => n.type !== 'uts'))],
    ['linux.sysctl', (c) => ((c.linux!.sysctl = { 'net.core.somaxconn': '10' }), (c.linux!.namespaces = c.linux!.namespaces!.filter((n) => n.type !== 'network')))],
    ['linux.uidMappings', (c) => (c.linux!.uidMappings = [{ containerID: 0, hostID: 1, size: 1 }])],
    ['linux.namespaces', (c) => c.linux!.namespaces!.push({ type: 'pid' })],
  ];
  for (const [field, edit] of invalid) {
    it(`refuses a malformed \`${field}\` with an InvalidArgumentError`, () => {
      assert.throws(() => translateConfig(spec(edit), BUNDLE, HOST), (e: unknown) => e instanceof InvalidArgumentError && e.message.includes(field));
    });
  }

  it('accepts runc\'s ambient set for uid 0 (within the bounding set it changes nothing)', () => {
    const plan = translateConfig(spec((c) => (c.process!.capabilities!.ambient = ['CAP_KILL'])), BUNDLE, HOST);
    assert.equal(plan.process.caps, capBitmask(['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'].map(capNumber)));
  });

  it('a non-root user gets no capabilities: a non-empty effective set is refused, not dropped', () => {
    assert.throws(
      () => translateProcess({ user: { uid: 1000, gid: 1000 }, args: ['x'], cwd: '/', capabilities: { bounding: ['CAP_KILL'], effective: ['CAP_KILL'] } }, HOST),
      (e: unknown) => e instanceof UnsupportedError && e.field === 'process.capabilities.effective',
    );
  });
});

describe('oci-runtime: command line', () => {
  it('--systemd-cgroup is a clear error, not ignored', async () => {
    const writes: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (writes.push(String(s)), true)) as typeof process.stderr.write;
    try {
      assert.equal(await main(['--root', '/nonexistent/dockless-runtime-test', '--systemd-cgroup', 'state', 'x']), 1);
      assert.equal(await main(['--root', '/nonexistent/dockless-runtime-test', 'checkpoint', 'x']), 1);
    } finally {
      process.stderr.write = write;
    }
    assert.match(writes.join(''), /--systemd-cgroup: systemd cgroup management is not supported/);
    assert.match(writes.join(''), /`checkpoint` is not supported/);
  });

  it('features lists only what the translation honours', () => {
    const f = features() as { hooks: string[]; linux: { namespaces: string[]; cgroup: { systemd: boolean } } };
    assert.deepEqual(f.hooks, ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']);
    assert.ok(!f.linux.namespaces.includes('time'));
    assert.equal(f.linux.cgroup.systemd, false);
  });
});

describe('oci-runtime: helper argv', () => {
  it('createContainer hooks: every kind is in the plan, and the helper gets each hook with its args, env and timeout', () => {
    const hook = (path: string, more: object = {}) => ({ path, ...more });
    const plan = translateConfig(
      spec((c) => {
        c.hooks = {
          prestart: [hook('/p')],
          createRuntime: [hook('/r')],
          createContainer: [hook('/usr/bin/env', { args: ['env', '-0'], env: ['A=1', 'B=x y'], timeout: 7 }), hook('/bin/true')],
          startContainer: [hook('/s')],
        };
      }),
      BUNDLE,
      HOST,
    );
    assert.deepEqual(plan.hooks.createContainer.map((h) => h.path), ['/usr/bin/env', '/bin/true']);
    assert.deepEqual(plan.hooks.prestart.map((h) => h.path), ['/p']);
    assert.deepEqual(createHookArgs(plan.hooks.createContainer, 6), [
      '--hooks-fd', '6',
      '--hook', '/usr/bin/env', '7', '--hook-arg', 'env', '--hook-arg', '-0', '--hook-env', 'A=1', '--hook-env', 'B=x y',
      '--hook', '/bin/true', '0',
    ]);
    // No createContainer hook: the fd alone, for the runtime's hooks' point.
    assert.deepEqual(createHookArgs([], 5), ['--hooks-fd', '5']);
    assert.throws(() => translateConfig(spec((c) => (c.hooks = { createContainer: [hook('true')] })), BUNDLE, HOST), /hooks\.createContainer\[0\]\.path/);
    assert.throws(() => translateConfig(spec((c) => (c.hooks = { createContainer: [hook('/x', { timeout: 0 })] })), BUNDLE, HOST), /hooks\.createContainer\[0\]\.timeout/);
  });

  it('run: --detach, --console-socket with --tty-size, --sysctl come before the command', () => {
    const args = runArgs({
      id: 'c',
      target: '/t',
      lowers: ['/r'],
      namespaces: ['mount'],
      mounts: [],
      devices: [{ path: '/dev/x', type: 'c', major: 1, minor: 2, mode: 0o600, uid: 5, gid: 6 }],
      symlinks: [],
      masked: [],
      readonlyPaths: [],
      readonlyRootfs: false,
      cwd: '/',
      user: { uid: 0, gid: 0, groups: [] },
      env: [],
      init: false,
      detach: true,
      console: { socket: '/s.sock', rows: 24, columns: 80 },
      sysctls: [['net.ipv4.ip_forward', '1']],
      cmd: ['sh'],
    });
    const tail = args.slice(args.indexOf('--detach'));
    assert.deepEqual(tail, ['--detach', '--console-socket', '/s.sock', '--tty-size', '24', '80', '--sysctl', 'net.ipv4.ip_forward', '1', '--', 'sh']);
    assert.deepEqual(args.slice(args.indexOf('--mknod'), args.indexOf('--mknod') + 8), ['--mknod', '/dev/x', 'c', '1', '2', '600', '5', '6']);
  });

  it('exec: --detach and --console-socket', () => {
    const args = execArgs({
      id: 'c',
      pid: 10,
      pidStart: 20,
      namespaces: ['mount'],
      userns: false,
      cgroups: [],
      cwd: '/',
      user: { uid: 0, gid: 0, groups: [] },
      env: [],
      noNewPrivileges: false,
      rlimits: [],
      detach: true,
      console: { socket: '/s.sock' },
      cmd: ['sh'],
    });
    assert.deepEqual(args.slice(args.indexOf('--detach')), ['--detach', '--console-socket', '/s.sock', '--', 'sh']);
  });
});

describe('oci-runtime: update flags', () => {
  it("runc's flags become the library's limits, only those given", () => {
    assert.deepEqual(
      runcUpdateResources({ memory: '64m', memorySwap: '-1', cpuShares: '512', cpuQuota: '50000', cpuPeriod: '100000', cpusetCpus: '0', pidsLimit: '20' }),
      { memory: 64 * 1024 * 1024, memorySwap: -1, cpuShares: 512, cpus: 0.5, cpuset: '0', pids: 20 },
    );
    assert.deepEqual(runcUpdateResources({ memory: '1048576000' }), { memory: 1048576000 });
  });
  it('-r takes linux.resources JSON, and the flags are then ignored, as with runc', () => {
    const json = JSON.stringify({ memory: { limit: 33554432 }, cpu: { quota: 25000, period: 100000 }, pids: { limit: 9 } });
    assert.deepEqual(runcUpdateResources({ pidsLimit: '100' }, json), { memory: 33554432, cpus: 0.25, pids: 9 });
  });
  it('malformed values, other periods, removing a quota, devices and nothing at all are refused', () => {
    assert.throws(() => runcUpdateResources({ memory: 'lots' }), (e: unknown) => e instanceof InvalidArgumentError && /--memory/.test(e.message));
    assert.throws(() => runcUpdateResources({ cpuPeriod: '50000', cpuQuota: '10000' }), /--cpu-period/);
    assert.throws(() => runcUpdateResources({ cpuQuota: '-1' }), /--cpu-quota/);
    assert.throws(() => runcUpdateResources({ pidsLimit: 'x' }), /--pids-limit/);
    assert.throws(() => runcUpdateResources({}), InvalidArgumentError);
    assert.throws(() => runcUpdateResources({}, '{"devices":[{"allow":false,"access":"rwm"}]}'), /devices/);
    assert.throws(() => runcUpdateResources({}, '[1]'), InvalidArgumentError);
  });
});
