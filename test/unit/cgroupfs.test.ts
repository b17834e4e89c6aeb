import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { parseCgroupMounts } from '../../src/runtime/cgroups/detect.js';
import { cgroupfsPlan } from '../../src/runtime/cgroups/mounts.js';

// Mount tables as the kernel writes them, from real hosts.

/** Hybrid, as on the CI machine: every controller on its own v1 hierarchy, and the unified one. */
const HYBRID = parseCgroupMounts(`22 1 253:1 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`);

/** systemd's hybrid layout: co-mounted cpu,cpuacct and net_cls,net_prio, `xattr` on the named hierarchy. */
const SYSTEMD_HYBRID = parseCgroupMounts(`25 0 8:1 / / rw - ext4 /dev/sda1 rw
30 22 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
36 30 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
37 30 0:33 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,net_cls,net_prio
90 25 0:32 / /var/lib/other/memory rw,relatime - cgroup cgroup rw,memory
`);

/** Pure v2 (Debian 12, Fedora). */
const V2_TEXT = `25 0 8:1 / / rw - ext4 /dev/sda1 rw
30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;
const V2 = parseCgroupMounts(V2_TEXT);

const RO = ['ro', 'nosuid', 'noexec', 'nodev'];

test('hybrid: a tmpfs, one cgroup mount per v1 hierarchy (named ones too), cgroup2 on unified, all read-only', () => {
  const plan = cgroupfsPlan({ hostMounts: HYBRID, cgroups: [], callerCgroups: [], userns: false, readonly: true });
  assert.deepEqual(
    plan.mounts.map((m) => [m.type, m.target, m.options.join(',')]),
    [
      ['tmpfs', '/sys/fs/cgroup', 'nosuid,noexec,nodev,mode=755'],
      ['cgroup', '/sys/fs/cgroup/cpu', `${RO.join(',')},cpu`],
      ['cgroup', '/sys/fs/cgroup/memory', `${RO.join(',')},memory`],
      ['cgroup', '/sys/fs/cgroup/pids', `${RO.join(',')},pids`],
      ['cgroup', '/sys/fs/cgroup/systemd', `${RO.join(',')},name=systemd`],
      ['cgroup2', '/sys/fs/cgroup/unified', RO.join(',')],
    ],
  );
  assert.ok(plan.mounts.every((m) => m.nofollow === true));
  assert.deepEqual(plan.symlinks, []);
  // The tmpfs is filled by the mounts, then made read-only.
  assert.deepEqual(plan.readonlyPaths, ['/sys/fs/cgroup']);
});

test('co-mounted hierarchies keep the host name and get a symlink per controller, as Docker has', () => {
  const plan = cgroupfsPlan({ hostMounts: SYSTEMD_HYBRID, cgroups: [], callerCgroups: [], userns: false, readonly: true });
  assert.deepEqual(
    plan.mounts.map((m) => m.target),
    [
      '/sys/fs/cgroup',
      '/sys/fs/cgroup/cpu,cpuacct',
      '/sys/fs/cgroup/memory',
      '/sys/fs/cgroup/net_cls,net_prio',
      '/sys/fs/cgroup/systemd',
      '/sys/fs/cgroup/unified',
    ],
  );
  // The second mount of the memory hierarchy elsewhere is the same hierarchy: mounted once.
  assert.equal(plan.mounts.filter((m) => m.options.includes('memory')).length, 1);
  assert.deepEqual(plan.symlinks, [
    ['cpu,cpuacct', '/sys/fs/cgroup/cpu'],
    ['cpu,cpuacct', '/sys/fs/cgroup/cpuacct'],
    ['net_cls,net_prio', '/sys/fs/cgroup/net_cls'],
    ['net_cls,net_prio', '/sys/fs/cgroup/net_prio'],
  ]);
});

/** v2 with a named v1 hierarchy mounted beside it (for an old systemd in a container). */
const V2_AND_NAMED = parseCgroupMounts(`${V2_TEXT}41 25 0:40 / /run/systemd-v1 rw,relatime - cgroup cgroup rw,name=systemd
`);

test('pure v2: cgroup2 on /sys/fs/cgroup itself, read-only, in a user namespace too', () => {
  for (const [hostMounts, userns] of [[V2, false], [V2, true], [V2_AND_NAMED, false]] as const) {
    const plan = cgroupfsPlan({ hostMounts, cgroups: [], callerCgroups: [], userns, readonly: true });
    assert.deepEqual(plan.mounts, [{ type: 'cgroup2', source: 'cgroup2', target: '/sys/fs/cgroup', options: RO, nofollow: true }]);
    assert.deepEqual(plan.readonlyPaths, []);
  }
});

// Without cpu, cpuacct, cpuset and memory all mounted, the JVM gives up its container support.
test("in a user namespace, v1 hierarchies are read-only binds of the container's cgroup, else the caller's", () => {
  const plan = cgroupfsPlan({
    hostMounts: SYSTEMD_HYBRID,
    cgroups: [
      { dir: '/sys/fs/cgroup/memory/x/dockless-1', version: 1, controllers: ['memory'] },
      { dir: '/sys/fs/cgroup/cpu,cpuacct/x/dockless-1', version: 1, controllers: ['cpuacct'] },
    ],
    callerCgroups: [
      { version: 1, controllers: ['memory'], mount: '/sys/fs/cgroup/memory', mountRoot: '/', path: '/x', dir: '/sys/fs/cgroup/memory/x' },
      { version: 1, controllers: ['net_cls', 'net_prio'], mount: '/sys/fs/cgroup/net_cls,net_prio', mountRoot: '/', path: '/', dir: '/sys/fs/cgroup/net_cls,net_prio' },
    ],
    userns: true,
    readonly: true,
  });
  assert.deepEqual(
    plan.mounts.map((m) => [m.type, m.source, m.target, m.options.join(',')]),
    [
      ['tmpfs', 'tmpfs', '/sys/fs/cgroup', 'nosuid,noexec,nodev,mode=755'],
      ['bind', '/sys/fs/cgroup/cpu,cpuacct/x/dockless-1', '/sys/fs/cgroup/cpu,cpuacct', `rbind,${RO.join(',')}`],
      ['bind', '/sys/fs/cgroup/memory/x/dockless-1', '/sys/fs/cgroup/memory', `rbind,${RO.join(',')}`],
      ['bind', '/sys/fs/cgroup/net_cls,net_prio', '/sys/fs/cgroup/net_cls,net_prio', `rbind,${RO.join(',')}`],
      ['cgroup2', 'cgroup2', '/sys/fs/cgroup/unified', RO.join(',')],
    ],
  );
  // A named hierarchy's directory is not known (it has no controller to find it by).
  assert.deepEqual(plan.skipped, ['systemd']);
  assert.deepEqual(plan.symlinks, [
    ['cpu,cpuacct', '/sys/fs/cgroup/cpu'],
    ['cpu,cpuacct', '/sys/fs/cgroup/cpuacct'],
    ['net_cls,net_prio', '/sys/fs/cgroup/net_cls'],
    ['net_cls,net_prio', '/sys/fs/cgroup/net_prio'],
  ]);
});

test('privileged: the same mounts, writable', () => {
  const plan = cgroupfsPlan({ hostMounts: HYBRID, cgroups: [], callerCgroups: [], userns: false, readonly: false });
  assert.ok(plan.mounts.every((m) => !m.options.includes('ro')));
  assert.deepEqual(plan.readonlyPaths, []);
});

test('no cgroup filesystem on the host: nothing', () => {
  assert.deepEqual(cgroupfsPlan({ hostMounts: [], cgroups: [], callerCgroups: [], userns: false, readonly: true }), {
    mounts: [],
    symlinks: [],
    readonlyPaths: [],
    skipped: [],
  });
});
