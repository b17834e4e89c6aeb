import { strict as assert } from 'node:assert';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../../src/errors.js';
import { CgroupSet, shimCgroupError, shimCgroups, shimMayMake } from '../../src/runtime/cgroups/cgroup-set.js';
import { detectCgroupsFrom, parseCgroupMounts, parseProcCgroup, type CgroupHost } from '../../src/runtime/cgroups/detect.js';
import {
  blkioToIoWeight,
  planCgroups,
  replanResources,
  sharesToWeight,
  validateCgroupParent,
  validateResources,
  type HierarchyPlan,
} from '../../src/runtime/cgroups/policy.js';
import { runArgs } from '../../src/runtime/run-args.js';
import { basePlan } from '../fixtures/run-plan.js';

// Fixture text as the kernel writes it, from real hosts.

/** Hybrid, as on the CI machine: every controller on v1, the unified hierarchy with hugetlb only. */
const HYBRID_CGROUP = `9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/5744adec
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
`;
const HYBRID_MOUNTINFO = `22 1 253:1 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;

/** systemd's hybrid layout (Debian 10, Ubuntu 20.04): co-mounted cpu,cpuacct and a tracking-only unified mount. */
const SYSTEMD_HYBRID_CGROUP = `12:cpu,cpuacct:/user.slice
11:memory:/user.slice/user-1000.slice/session-2.scope
10:net_cls,net_prio:/
9:pids:/user.slice/user-1000.slice/session-2.scope
8:cpuset:/
1:name=systemd:/user.slice/user-1000.slice/session-2.scope
0::/user.slice/user-1000.slice/session-2.scope
`;
const SYSTEMD_HYBRID_MOUNTINFO = `25 0 8:1 / / rw - ext4 /dev/sda1 rw
30 22 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
36 30 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
37 30 0:33 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,net_cls,net_prio
38 30 0:34 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,pids
39 30 0:35 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:19 - cgroup cgroup rw,cpuset,clone_children
`;

/** Pure v2 (Debian 12, Fedora): one cgroup2 mount. */
const V2_CGROUP = '0::/user.slice/user-1000.slice/user@1000.service/app.slice/run-1.scope\n';
const V2_MOUNTINFO = `22 1 253:1 / / rw - ext4 /dev/vda rw
26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;
const V2_OWN = '/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/run-1.scope';

const files = (map: Record<string, string>) => (path: string) => map[path];

function v1Host(): CgroupHost {
  return detectCgroupsFrom({ procCgroup: HYBRID_CGROUP, mountinfo: HYBRID_MOUNTINFO, readFile: files({ '/sys/fs/cgroup/unified/cgroup.controllers': 'hugetlb\n' }) });
}

function v2Host(controllers = 'cpuset cpu io memory hugetlb pids rdma misc'): CgroupHost {
  return detectCgroupsFrom({
    procCgroup: V2_CGROUP,
    mountinfo: V2_MOUNTINFO,
    readFile: files({ [`${V2_OWN}/cgroup.controllers`]: `${controllers}\n`, '/sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory hugetlb pids rdma misc\n' }),
  });
}

test('parseProcCgroup: v1 lines, named hierarchies, the v2 line, colons in paths', () => {
  assert.deepEqual(parseProcCgroup('12:cpu,cpuacct:/a\n1:name=systemd:/b:c\n0::/\n'), [
    { id: 12, controllers: ['cpu', 'cpuacct'], path: '/a' },
    { id: 1, controllers: ['name=systemd'], path: '/b:c' },
    { id: 0, controllers: [], path: '/' },
  ]);
});

test('parseCgroupMounts: controllers from super options, escaped mount points, other filesystems ignored', () => {
  const mounts = parseCgroupMounts(
    `${SYSTEMD_HYBRID_MOUNTINFO}50 30 0:40 /x /mnt/with\\040space rw - cgroup cgroup rw,memory,release_agent=/bin/x\n`,
  );
  assert.equal(mounts.length, 8);
  assert.deepEqual(mounts.find((m) => m.mountPoint === '/sys/fs/cgroup/cpu,cpuacct')?.controllers, ['cpu', 'cpuacct']);
  assert.deepEqual(mounts.find((m) => m.mountPoint === '/sys/fs/cgroup/cpuset')?.controllers, ['cpuset']);
  assert.deepEqual(mounts.find((m) => m.mountPoint === '/sys/fs/cgroup/systemd')?.controllers, ['name=systemd']);
  assert.deepEqual(mounts.at(-1), { fstype: 'cgroup', root: '/x', mountPoint: '/mnt/with space', controllers: ['memory'] });
  assert.equal(mounts.find((m) => m.fstype === 'cgroup2')?.mountPoint, '/sys/fs/cgroup/unified');
});

test('detect: hybrid host with every controller on v1 and hugetlb alone on the unified hierarchy', () => {
  const host = v1Host();
  assert.equal(host.mode, 'hybrid');
  const mem = host.controllers.get('memory')!;
  assert.deepEqual(
    { version: mem.version, mount: mem.mount, path: mem.path, dir: mem.dir },
    { version: 1, mount: '/sys/fs/cgroup/memory', path: '/process_api/5744adec', dir: '/sys/fs/cgroup/memory/process_api/5744adec' },
  );
  assert.equal(host.controllers.get('pids')!.dir, '/sys/fs/cgroup/pids');
  assert.equal(host.controllers.get('cpu')!.dir, '/sys/fs/cgroup/cpu');
  assert.equal(host.controllers.get('cpuacct')!.dir, '/sys/fs/cgroup/cpuacct');
  assert.notEqual(host.controllers.get('cpu'), host.controllers.get('cpuacct'));
  assert.equal(host.controllers.get('hugetlb')!.version, 2);
  assert.equal(host.controllers.get('hugetlb')!.dir, '/sys/fs/cgroup/unified');
  assert.equal(host.controllers.get('systemd'), undefined);
});

test('detect: systemd hybrid with co-mounted cpu,cpuacct and a tracking-only unified hierarchy', () => {
  const host = detectCgroupsFrom({
    procCgroup: SYSTEMD_HYBRID_CGROUP,
    mountinfo: SYSTEMD_HYBRID_MOUNTINFO,
    readFile: files({ '/sys/fs/cgroup/unified/user.slice/user-1000.slice/session-2.scope/cgroup.controllers': '\n' }),
  });
  assert.equal(host.mode, 'hybrid');
  assert.equal(host.controllers.get('cpu'), host.controllers.get('cpuacct'));
  assert.equal(host.controllers.get('cpu')!.dir, '/sys/fs/cgroup/cpu,cpuacct/user.slice');
  assert.equal(host.controllers.get('memory')!.dir, '/sys/fs/cgroup/memory/user.slice/user-1000.slice/session-2.scope');
  assert.equal(host.controllers.get('net_prio')!.version, 1);
  const unified = host.hierarchies.find((h) => h.version === 2)!;
  assert.deepEqual(unified.controllers, []);
  assert.equal(unified.dir, '/sys/fs/cgroup/unified/user.slice/user-1000.slice/session-2.scope');
});

test('detect: pure v2 takes the controllers from our own cgroup.controllers', () => {
  const host = v2Host('memory pids');
  assert.equal(host.mode, 'v2');
  assert.equal(host.controllers.get('memory')!.dir, V2_OWN);
  assert.equal(host.controllers.get('memory')!.version, 2);
  assert.equal(host.controllers.get('cpu'), undefined, 'cpu is not delegated to us');
  // When our own file is unreadable the mount's top-level list is the fallback.
  const fallback = detectCgroupsFrom({ procCgroup: V2_CGROUP, mountinfo: V2_MOUNTINFO, readFile: files({ '/sys/fs/cgroup/cgroup.controllers': 'cpu memory' }) });
  assert.deepEqual([...fallback.controllers.keys()].sort(), ['cpu', 'memory']);
});

test('detect: a mount whose root is our cgroup (bind-mounted from a container host) and a cgroup outside every mount', () => {
  const host = detectCgroupsFrom({
    procCgroup: '5:memory:/docker/abc\n4:pids:/elsewhere\n0::/\n',
    mountinfo: `1 0 0:1 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory
2 0 0:2 /docker/abc /sys/fs/cgroup/pids ro - cgroup cgroup rw,pids
`,
    readFile: () => undefined,
  });
  assert.equal(host.mode, 'v1');
  assert.equal(host.controllers.get('memory')!.dir, '/sys/fs/cgroup/memory');
  assert.equal(host.controllers.get('pids'), undefined);
  // Outside our cgroup namespace the kernel shows `/..`: unreachable.
  const outside = detectCgroupsFrom({ procCgroup: '0::/../../x\n', mountinfo: V2_MOUNTINFO, readFile: () => 'memory' });
  assert.equal(outside.mode, 'none');
});

test('detect: no cgroup mounts at all', () => {
  const host = detectCgroupsFrom({ procCgroup: '', mountinfo: '', readFile: () => undefined });
  assert.equal(host.mode, 'none');
  assert.equal(host.controllers.size, 0);
});

test('validateResources: Docker ranges, each failure naming the field', () => {
  validateResources(undefined);
  validateResources({ memory: 64 << 20, memorySwap: -1, cpus: 0.5, cpuShares: 512, cpuset: '0-1,3', pids: 32, ioWeight: 500 });
  const bad: [unknown, RegExp][] = [
    [{ memory: 1024 }, /resources\.memory/],
    [{ memory: 1.5e7 + 0.5 }, /resources\.memory/],
    [{ memorySwap: 1e9 }, /memorySwap needs resources\.memory/],
    [{ memory: 64 << 20, memorySwap: 1 << 20 }, /resources\.memorySwap/],
    [{ cpus: 0 }, /resources\.cpus/],
    [{ cpus: 0.001 }, /at least 0\.01/],
    [{ cpus: Number.NaN }, /resources\.cpus/],
    [{ cpuShares: 1 }, /resources\.cpuShares/],
    [{ cpuset: '0-' }, /resources\.cpuset/],
    [{ cpuset: 'all' }, /resources\.cpuset/],
    [{ pids: 0 }, /resources\.pids/],
    [{ pids: -1 }, /resources\.pids/],
    [{ ioWeight: 5 }, /resources\.ioWeight/],
    [{ memroy: 1 }, /unknown field resources\.memroy/],
    ['64m', /resources must be an object/],
  ];
  for (const [r, re] of bad) assert.throws(() => validateResources(r as never), (e: Error) => e instanceof InvalidArgumentError && re.test(e.message), String(JSON.stringify(r)));
});

test('validateCgroupParent: relative or absolute, never climbing', () => {
  assert.equal(validateCgroupParent(undefined, 'x'), undefined);
  assert.equal(validateCgroupParent('tests//a/', 'x'), 'tests/a');
  assert.equal(validateCgroupParent('/machine.slice', 'x'), '/machine.slice');
  for (const bad of ['', '/', '../up', 'a/./b', 'a b', 'a\0b']) assert.throws(() => validateCgroupParent(bad, 'x'), InvalidArgumentError, bad);
});

test('weights convert as runc converts them', () => {
  assert.deepEqual([2, 1024, 262144].map(sharesToWeight), [1, 39, 10000]);
  assert.deepEqual([10, 500, 1000].map(blkioToIoWeight), [1, 4950, 10000]);
});

function byController(plans: HierarchyPlan[], c: string): HierarchyPlan {
  const p = plans.find((x) => x.controllers.includes(c));
  assert.ok(p, `no plan for ${c}`);
  return p;
}
const writes = (p: HierarchyPlan) => p.writes.map((w) => w.candidates.map((c) => `${c.file}=${c.value}`).join('|'));

test('planCgroups on v1: one cgroup per hierarchy, v1 files, cpuset copied, stats, freezer and cpu controllers always', () => {
  const host = v1Host();
  const none = planCgroups(undefined, host, 'dockless-1');
  // The freezer is what pause() needs; without it a container cannot be paused. The cpu cgroup is what update({ cpus }) writes.
  assert.deepEqual(none.hierarchies.map((p) => p.dir).sort(), [
    '/sys/fs/cgroup/cpu/dockless-1',
    '/sys/fs/cgroup/cpuacct/dockless-1',
    '/sys/fs/cgroup/freezer/dockless-1',
    '/sys/fs/cgroup/memory/process_api/5744adec/dockless-1',
    '/sys/fs/cgroup/pids/dockless-1',
  ]);
  assert.ok(none.hierarchies.every((p) => p.writes.length === 0 && p.optional.length === p.controllers.length));

  const all = planCgroups(
    { memory: 64 << 20, cpus: 0.5, cpuShares: 512, cpuset: '0', pids: 32, ioWeight: 300 },
    host,
    'dockless-1',
  ).hierarchies;
  assert.deepEqual(writes(byController(all, 'memory')), ['memory.limit_in_bytes=67108864', `memory.memsw.limit_in_bytes=${128 << 20}`]);
  assert.equal(byController(all, 'memory').writes[1]!.optional, true, 'memsw only where swap is accounted');
  assert.deepEqual(byController(all, 'memory').optional, [], 'a limit makes the controller required');
  assert.deepEqual(writes(byController(all, 'cpu')), ['cpu.cfs_period_us=100000', 'cpu.cfs_quota_us=50000', 'cpu.shares=512']);
  assert.deepEqual(writes(byController(all, 'cpuset')), ['cpuset.cpus=0']);
  assert.equal(byController(all, 'cpuset').copyCpuset, true);
  assert.equal(byController(all, 'memory').copyCpuset, false);
  assert.deepEqual(writes(byController(all, 'pids')), ['pids.max=32']);
  assert.deepEqual(writes(byController(all, 'blkio')), ['blkio.weight=300|blkio.bfq.weight=300']);
  assert.deepEqual(byController(all, 'cpuacct').optional, ['cpuacct']);

  const unlimitedSwap = planCgroups({ memory: 64 << 20, memorySwap: -1 }, host, 'c').hierarchies;
  assert.deepEqual(writes(byController(unlimitedSwap, 'memory')), ['memory.limit_in_bytes=67108864', 'memory.memsw.limit_in_bytes=-1']);
});

test('planCgroups on v2: one cgroup, v2 files and converted values', () => {
  const plans = planCgroups(
    { memory: 64 << 20, memorySwap: 96 << 20, cpus: 1.5, cpuShares: 1024, cpuset: '0-1', pids: 100, ioWeight: 500 },
    v2Host(),
    'dockless-2',
  ).hierarchies;
  assert.equal(plans.length, 1);
  const p = plans[0]!;
  assert.equal(p.dir, `${V2_OWN}/dockless-2`);
  assert.deepEqual(p.controllers.sort(), ['cpu', 'cpuset', 'io', 'memory', 'pids']);
  assert.deepEqual(p.optional, []);
  assert.deepEqual(writes(p), [
    'memory.max=67108864',
    `memory.swap.max=${32 << 20}`,
    'cpu.max=150000 100000',
    'cpu.weight=39',
    'cpuset.cpus=0-1',
    'pids.max=100',
    'io.bfq.weight=500|io.weight=default 4950',
  ]);
  assert.equal(p.copyCpuset, false, 'v2 cpusets inherit');
  const defaults = planCgroups({ memory: 64 << 20 }, v2Host(), 'c').hierarchies[0]!;
  assert.deepEqual(writes(defaults), ['memory.max=67108864', `memory.swap.max=${64 << 20}`]);
  assert.deepEqual(writes(planCgroups({ memory: 64 << 20, memorySwap: -1 }, v2Host(), 'c').hierarchies[0]!)[1], 'memory.swap.max=max');
  const statsOnly = planCgroups(undefined, v2Host(), 'c').hierarchies;
  assert.deepEqual(statsOnly.map((x) => [x.controllers, x.optional]), [[['memory', 'pids', 'cpu'], ['memory', 'pids', 'cpu']]]);
});

test('planCgroups: cgroupParent relative to our cgroup, or absolute from each hierarchy root', () => {
  const rel = planCgroups(undefined, v1Host(), 'c', 'tests/a').hierarchies;
  assert.equal(byController(rel, 'memory').dir, '/sys/fs/cgroup/memory/process_api/5744adec/tests/a/c');
  assert.equal(byController(rel, 'memory').baseDir, '/sys/fs/cgroup/memory/process_api/5744adec');
  assert.equal(byController(rel, 'pids').dir, '/sys/fs/cgroup/pids/tests/a/c');
  const abs = planCgroups({ pids: 5 }, v2Host(), 'c', '/machine.slice').hierarchies[0]!;
  assert.equal(abs.dir, '/sys/fs/cgroup/machine.slice/c');
  assert.equal(abs.baseDir, '/sys/fs/cgroup', 'controllers are enabled from the hierarchy root down');
});

test('planCgroups: a limit whose controller is missing is a NotFoundError; a missing stats controller is skipped', () => {
  const host = v2Host('memory pids');
  assert.throws(() => planCgroups({ cpus: 1 }, host, 'c'), (e: Error) => e instanceof NotFoundError && /resources\.cpus needs the cgroup `cpu` controller/.test(e.message));
  const none = detectCgroupsFrom({ procCgroup: '', mountinfo: '', readFile: () => undefined });
  assert.deepEqual(planCgroups(undefined, none, 'c').hierarchies, []);
  assert.throws(() => planCgroups({ pids: 3 }, none, 'c'), NotFoundError);
});

test('CgroupSet on a fake v1 tree: cpuset copied down to new parents, typed errors naming the file', async () => {
  const base = await mkdtemp(join(tmpdir(), 'dl-cg-'));
  try {
    // A stand-in for the cgroup filesystem: directories with the files the kernel would make.
    const mk = async (dir: string, fileMap: Record<string, string>) => {
      await mkdir(dir, { recursive: true });
      for (const [f, v] of Object.entries(fileMap)) await writeFile(join(dir, f), v);
    };
    await mk(join(base, 'cpuset'), { 'cpuset.cpus': '0-1\n', 'cpuset.mems': '0\n' });
    const host = detectCgroupsFrom({
      procCgroup: '2:cpuset:/\n1:blkio:/\n',
      mountinfo: `1 0 0:1 / ${base}/cpuset rw - cgroup cgroup rw,cpuset\n2 0 0:2 / ${base}/blkio rw - cgroup cgroup rw,blkio\n`,
      readFile: () => undefined,
    });
    const plan = planCgroups({ cpuset: '1' }, host, 'c1', 'par');
    // The parent exists with the empty cpuset files the kernel gives a new cgroup.
    await mk(join(base, 'cpuset', 'par'), { 'cpuset.cpus': '', 'cpuset.mems': '' });
    await mkdir(join(base, 'cpuset', 'par', 'c1'));
    await assert.rejects(CgroupSet.create(plan, 'run container c1'), (e: Error) => e instanceof AlreadyExistsError && /mkdir `.*\/c1`: EEXIST/.test(e.message));
    await rm(join(base, 'cpuset', 'par', 'c1'), { recursive: true });
    // A fake directory has none of the files the kernel's mkdir makes: the first copy names the missing file.
    const err = await CgroupSet.create(plan, 'run container c1').catch((e: Error) => e);
    assert.ok(err instanceof NotFoundError);
    assert.match(err.message, /^run container c1: write `0` to `.*\/par\/c1\/cpuset\.mems`: ENOENT$/);
    assert.equal((err as NotFoundError).path, join(base, 'cpuset', 'par', 'c1', 'cpuset.mems'));
    // Intermediate directories got the parent's values copied down.
    assert.equal((await readFile(join(base, 'cpuset', 'par', 'cpuset.mems'), 'utf8')).trim(), '0');
    assert.equal((await readFile(join(base, 'cpuset', 'par', 'cpuset.cpus'), 'utf8')).trim(), '0-1');

    // blkio: neither weight file exists → NotFoundError naming both.
    await mkdir(join(base, 'blkio'), { recursive: true });
    const io = planCgroups({ ioWeight: 100 }, host, 'c3');
    const ioErr = await CgroupSet.create(io, 'run container c3').catch((e: Error) => e);
    assert.ok(ioErr instanceof NotFoundError);
    assert.match((ioErr as Error).message, /run container c3: resources\.ioWeight is not supported here: no `.*blkio\.weight` or `.*blkio\.bfq\.weight`/);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test('CgroupSet.stats and oomKilled read v1 and v2 files', async () => {
  const base = await mkdtemp(join(tmpdir(), 'dl-cg-'));
  try {
    const w = async (dir: string, f: string, v: string) => {
      await mkdir(join(base, dir), { recursive: true });
      await writeFile(join(base, dir, f), v);
    };
    await w('mem', 'memory.usage_in_bytes', '1048576\n');
    await w('mem', 'memory.limit_in_bytes', '9223372036854771712\n');
    await w('mem', 'memory.max_usage_in_bytes', '2097152\n');
    await w('mem', 'memory.oom_control', 'oom_kill_disable 0\nunder_oom 0\noom_kill 1\n');
    await w('pids', 'pids.current', '3\n');
    await w('pids', 'pids.max', 'max\n');
    await w('acct', 'cpuacct.usage', '123456789\n');
    const v1 = new CgroupSet([
      { dir: join(base, 'mem'), version: 1, controllers: ['memory'] },
      { dir: join(base, 'pids'), version: 1, controllers: ['pids'] },
      { dir: join(base, 'acct'), version: 1, controllers: ['cpuacct'] },
    ]);
    assert.deepEqual(await v1.stats('x'), { memory: { usage: 1048576, maxUsage: 2097152 }, cpu: { usageNanos: 123456789 }, pids: { current: 3 } });

    await w('v2', 'memory.current', '4096\n');
    await w('v2', 'memory.max', '67108864\n');
    await w('v2', 'memory.events', 'low 0\nhigh 0\nmax 12\noom 1\noom_kill 0\noom_group_kill 0\n');
    await w('v2', 'pids.current', '1\n');
    await w('v2', 'pids.max', '32\n');
    await w('v2', 'cpu.stat', 'usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n');
    const v2 = new CgroupSet([{ dir: join(base, 'v2'), version: 2, controllers: ['memory', 'pids'] }]);
    assert.deepEqual(await v2.stats('x'), { memory: { usage: 4096, limit: 67108864 }, cpu: { usageNanos: 2_500_000 }, pids: { current: 1, limit: 32 } });

    await assert.rejects(new CgroupSet([]).stats('stats of container c'), (e: Error) => e instanceof NotFoundError && /no cgroup for memory, pids, cpu/.test(e.message));
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test('CgroupSet on a fake v2 tree: controllers enabled top-down; a refused stats controller is dropped, a refused limit is an error', async () => {
  const base = await mkdtemp(join(tmpdir(), 'dl-cg-'));
  try {
    const own = join(base, 'own');
    await mkdir(own, { recursive: true });
    await writeFile(join(own, 'cgroup.subtree_control'), '');
    const host = detectCgroupsFrom({
      procCgroup: '0::/own\n',
      mountinfo: `1 0 0:1 / ${base} rw - cgroup2 cgroup2 rw\n`,
      readFile: (p) => (p === join(own, 'cgroup.controllers') ? 'memory pids' : undefined),
    });
    // The fake parent `p` has no cgroup.subtree_control, as if the kernel refused it.
    const limited = await CgroupSet.create(planCgroups({ pids: 5 }, host, 'c1', 'p'), 'run container c1').catch((e: Error) => e);
    assert.ok(limited instanceof NotFoundError);
    assert.match(limited.message, /enable the `pids` controller in `.*\/own\/p\/cgroup\.subtree_control`: ENOENT/);
    // Each controller is written on its own (one refusal must not take the others down); the fake file keeps the last.
    assert.equal(await readFile(join(own, 'cgroup.subtree_control'), 'utf8'), '+memory', 'enabled in our own cgroup first');

    const statsOnly = await CgroupSet.create(planCgroups(undefined, host, 'c2', 'p'), 'run container c2');
    assert.deepEqual(statsOnly.entries, [{ dir: join(own, 'p', 'c2'), version: 2, controllers: [] }]);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test('runArgs passes each cgroup directory as --cgroup', () => {
  const args = runArgs(basePlan({
    cgroups: ['/sys/fs/cgroup/memory/dockless-abc', '/sys/fs/cgroup/pids/dockless-abc'],
  }));
  const dashes = args.indexOf('--');
  const flags = args.slice(0, dashes);
  assert.deepEqual(
    flags.flatMap((a, i) => (a === '--cgroup' ? [flags[i + 1]] : [])),
    ['/sys/fs/cgroup/memory/dockless-abc', '/sys/fs/cgroup/pids/dockless-abc'],
  );
  assert.deepEqual(args.slice(dashes), ['--', 'true']);
});

test('planCgroups: the device allow-list goes to a required v1 devices cgroup, and nowhere on v2', () => {
  const rules = [
    { file: 'devices.deny', value: 'a *:* rwm' },
    { file: 'devices.allow', value: 'c 1:3 rwm' },
  ];
  const v1 = byController(planCgroups(undefined, v1Host(), 'c', undefined, rules).hierarchies, 'devices');
  assert.equal(v1.dir, '/sys/fs/cgroup/devices/c');
  assert.deepEqual(writes(v1), ['devices.deny=a *:* rwm', 'devices.allow=c 1:3 rwm']);
  assert.deepEqual(v1.optional, []);
  assert.ok(planCgroups(undefined, v2Host(), 'c', undefined, rules).hierarchies.every((p) => !p.controllers.includes('devices')));
});

test('replanResources: the same cgroups with the new limits, device rules kept, no cgroup added', () => {
  const host = v1Host();
  const deny = { file: 'devices.deny', value: 'a' };
  const saved = planCgroups({ memory: 64 << 20 }, host, 'dockless-1', undefined, [deny]);
  const next = replanResources(saved, { memory: 128 << 20, cpus: 0.5, pids: 10 });
  assert.deepEqual(next.hierarchies.map((p) => p.dir), saved.hierarchies.map((p) => p.dir));
  assert.deepEqual(writes(byController(next.hierarchies, 'memory')), ['memory.limit_in_bytes=134217728', `memory.memsw.limit_in_bytes=${256 << 20}`]);
  assert.deepEqual(writes(byController(next.hierarchies, 'cpu')), ['cpu.cfs_period_us=100000', 'cpu.cfs_quota_us=50000']);
  assert.deepEqual(writes(byController(next.hierarchies, 'pids')), ['pids.max=10']);
  assert.deepEqual(writes(byController(next.hierarchies, 'devices')), ['devices.deny=a']);
  assert.throws(() => replanResources(saved, { cpuset: '0' }), (e: unknown) => e instanceof NotFoundError && /resources\.cpuset needs a `cpuset` cgroup/.test(e.message));
});

test('shimCgroups: a v1 plan becomes the shim\'s mkdir and write steps, in order; plans that need this side\'s care stay here', () => {
  const rules = [
    { file: 'devices.deny', value: 'a *:* rwm' },
    { file: 'devices.allow', value: 'c 1:3 rwm' },
  ];
  const plan = planCgroups({ memory: 64 << 20, pids: 32 }, v1Host(), 'dockless-1', undefined, rules);
  const shim = shimCgroups(plan)!;
  assert.deepEqual(shim.set.dirs, plan.hierarchies.map((p) => p.dir));
  assert.deepEqual(
    shim.set.entries.map((e) => [e.version, e.controllers]),
    plan.hierarchies.map((p) => [1, p.controllers]),
  );
  const mem = '/sys/fs/cgroup/memory/process_api/5744adec/dockless-1';
  const at = shim.args.indexOf(mem);
  // The directory first, then its limits; memsw only where swap is accounted.
  assert.deepEqual(shim.args.slice(at - 1, at + 7), [
    '--cgroup-mkdir', mem,
    '--cgroup-write', `${mem}/memory.limit_in_bytes`, String(64 << 20),
    '--cgroup-write-optional', `${mem}/memory.memsw.limit_in_bytes`, String(128 << 20),
  ]);
  const dev = shim.args.indexOf('/sys/fs/cgroup/devices/dockless-1');
  assert.deepEqual(shim.args.slice(dev - 1, dev + 7), [
    '--cgroup-mkdir', '/sys/fs/cgroup/devices/dockless-1',
    '--cgroup-write', '/sys/fs/cgroup/devices/dockless-1/devices.deny', 'a *:* rwm',
    '--cgroup-write', '/sys/fs/cgroup/devices/dockless-1/devices.allow', 'c 1:3 rwm',
  ]);
  const args = runArgs(basePlan({ cgroups: shim.set.dirs, cgroupSteps: shim.args }));
  assert.ok(args.indexOf('--cgroup-mkdir') < args.indexOf('--cgroup'), 'made before they are joined');

  // v2 enables controllers level by level; a cgroupParent may need making; cpuset values are copied down; blkio has two files to try.
  assert.equal(shimCgroups(planCgroups(undefined, v2Host(), 'c')), undefined);
  assert.equal(shimCgroups(planCgroups(undefined, v1Host(), 'c', 'sub')), undefined);
  assert.equal(shimCgroups(planCgroups({ cpuset: '0' }, v1Host(), 'c')), undefined);
  assert.equal(shimCgroups(planCgroups({ ioWeight: 300 }, v1Host(), 'c')), undefined);
});

test('shimCgroupError: the shim\'s failure is the typed error the library\'s own creation gives, naming the field', () => {
  const plan = planCgroups({ memory: 64 << 20 }, v1Host(), 'dockless-1');
  const mem = '/sys/fs/cgroup/memory/process_api/5744adec/dockless-1';
  const helper = new Error('helper');
  const refused = shimCgroupError(plan, 'run container 1', `${mem}/memory.limit_in_bytes`, 'EINVAL', helper);
  assert.ok(refused instanceof InvalidArgumentError);
  assert.equal(refused.message, `run container 1: write \`${64 << 20}\` to \`${mem}/memory.limit_in_bytes\`: EINVAL (resources.memory)`);
  const missing = shimCgroupError(plan, 'run container 1', `${mem}/memory.limit_in_bytes`, 'ENOENT', helper);
  assert.ok(missing instanceof NotFoundError);
  assert.match(missing.message, /resources\.memory is not supported here/);
  const taken = shimCgroupError(plan, 'run container 1', mem, 'EEXIST', helper);
  assert.ok(taken instanceof AlreadyExistsError);
  assert.equal(taken.message, `run container 1: mkdir \`${mem}\`: EEXIST`);
});

// A first container's cgroups are the shim's to make only where CgroupSet.create would skip nothing: a
// stats-only hierarchy whose directory this process cannot write would be skipped here and fail the shim.
test('shimMayMake: a stats-only hierarchy must be writable here; a limit\'s hierarchy fails either way and is not looked at', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dockless-shim-may-'));
  try {
    const at = (plan: ReturnType<typeof planCgroups>, parentDir: string) => ({
      hierarchies: plan.hierarchies.map((p) => ({ ...p, parentDir })),
    });
    const statsOnly = planCgroups(undefined, v1Host(), 'c');
    assert.ok(statsOnly.hierarchies.some((p) => p.optional.length === p.controllers.length));
    assert.equal(shimMayMake(at(statsOnly, dir)), true);
    assert.equal(shimMayMake(at(statsOnly, join(dir, 'missing'))), false);
    const limited = planCgroups({ pids: 32 }, v1Host(), 'c');
    const required = { hierarchies: limited.hierarchies.filter((p) => p.optional.length < p.controllers.length).map((p) => ({ ...p, parentDir: join(dir, 'missing') })) };
    assert.ok(required.hierarchies.length > 0);
    assert.equal(shimMayMake(required), true);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("oomFile names the memory hierarchy's OOM counter, and runArgs hands it to the shim as --oom-file", () => {
  // The shim reads only this file at the exit: any other would miss the OOM kill (or cost a failed lookup).
  const v1 = new CgroupSet([
    { dir: '/cg/pids/c', version: 1, controllers: ['pids'] },
    { dir: '/cg/memory/p/c', version: 1, controllers: ['memory'] },
    { dir: '/cg/cpu,cpuacct/c', version: 1, controllers: ['cpu', 'cpuacct'] },
  ]);
  assert.equal(v1.oomFile, '/cg/memory/p/c/memory.oom_control');
  assert.equal(new CgroupSet([{ dir: '/cg/c', version: 2, controllers: ['pids', 'memory'] }]).oomFile, '/cg/c/memory.events');
  // No memory controller (a stats-only v2 cgroup, a v1 host without the memory hierarchy): nothing to read.
  assert.equal(new CgroupSet([{ dir: '/cg/c', version: 2, controllers: [] }]).oomFile, undefined);
  assert.equal(new CgroupSet([{ dir: '/cg/pids/c', version: 1, controllers: ['pids'] }]).oomFile, undefined);

  const args = runArgs(basePlan({ cgroups: v1.dirs, oomFile: v1.oomFile! }));
  assert.deepEqual(args.slice(args.indexOf('--oom-file'), args.indexOf('--oom-file') + 2), ['--oom-file', '/cg/memory/p/c/memory.oom_control']);
  assert.ok(!runArgs(basePlan({ cgroups: v1.dirs })).includes('--oom-file'));
});
