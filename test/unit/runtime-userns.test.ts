import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { InvalidArgumentError, NotFoundError } from '../../src/errors.js';
import { DEFAULT_DEVICES } from '../../src/runtime/defaults.js';
import { runArgs, type RunPlan } from '../../src/runtime/run-args.js';
import {
  AUTO_USERNS_BASE,
  autoRange,
  checkUserMapped,
  deviceBindMounts,
  hostIdOf,
  ownerInContainer,
  parseSubIds,
  planUserns,
  rootlessMapsFor,
  usernsArgs,
  type UsernsHost,
} from '../../src/runtime/userns.js';
import { basePlan } from '../fixtures/run-plan.js';

const root: UsernsHost = { uid: 0, gid: 0, user: 'root', subuid: '', subgid: '' };
const alice: UsernsHost = {
  uid: 1000,
  gid: 1000,
  user: 'alice',
  subuid: 'bob:100000:65536\nalice:165536:65536\n',
  subgid: '1000:165536:65536\n',
  newuidmap: '/usr/bin/newuidmap',
  newgidmap: '/usr/bin/newgidmap',
};

test('parseSubIds finds a user by name or uid and skips malformed lines', () => {
  const text = 'alice:100000:65536\n# comment\nbad\n1000:300000:10\nalice:x:1\nbob:1:1\nalice:5:0\n';
  assert.deepEqual(parseSubIds(text, 'alice', 1000), [
    { start: 100000, count: 65536 },
    { start: 300000, count: 10 },
  ]);
  assert.deepEqual(parseSubIds(text, 'carol', 7), []);
});

test('root without userns gets no user namespace', () => {
  assert.equal(planUserns(undefined, root), undefined);
});

test("userns 'auto' as root: a block from 2^30 that no /etc/subuid or /etc/subgid entry overlaps", () => {
  const plan = planUserns('auto', root)!;
  assert.deepEqual(plan.uidMap, [{ containerId: 0, hostId: AUTO_USERNS_BASE, size: 65536 }]);
  assert.deepEqual(plan.gidMap, plan.uidMap);
  assert.equal(plan.idmapRoot, true);
  assert.equal(plan.rootless, false);
  assert.deepEqual(plan.hostRoot, { uid: AUTO_USERNS_BASE, gid: AUTO_USERNS_BASE });
  // A range someone holds that reaches into the first block pushes it to the next one.
  const taken = autoRange({ subuid: `x:${AUTO_USERNS_BASE + 5}:10\n`, subgid: '' });
  assert.equal(taken.uid.start, AUTO_USERNS_BASE + 65536);
});

test("userns 'auto' as root uses the dockless user's ranges when it has them", () => {
  const plan = planUserns('auto', { ...root, subuid: 'dockless:200000:65536\n', subgid: 'dockless:300000:131072\n' })!;
  assert.deepEqual(plan.uidMap, [{ containerId: 0, hostId: 200000, size: 65536 }]);
  assert.deepEqual(plan.gidMap, [{ containerId: 0, hostId: 300000, size: 65536 }]);
});

test('explicit maps are validated: shape, overlaps, container id 0', () => {
  const ok = { uidMap: [{ containerId: 0, hostId: 500000, size: 100 }], gidMap: [{ containerId: 0, hostId: 500000, size: 100 }] };
  assert.deepEqual(planUserns(ok, root)!.uidMap, ok.uidMap);
  const bad: unknown[] = [
    'yes',
    { uidMap: [], gidMap: ok.gidMap },
    { uidMap: [{ containerId: 1, hostId: 5, size: 1 }], gidMap: ok.gidMap },
    { uidMap: [{ containerId: 0, hostId: 5, size: 0 }], gidMap: ok.gidMap },
    { uidMap: [{ containerId: 0, hostId: -1, size: 1 }], gidMap: ok.gidMap },
    { uidMap: [{ containerId: 0, hostId: 0xffff_fff0, size: 100 }], gidMap: ok.gidMap },
    {
      uidMap: [
        { containerId: 0, hostId: 100, size: 10 },
        { containerId: 5, hostId: 1000, size: 10 },
      ],
      gidMap: ok.gidMap,
    },
  ];
  for (const setting of bad) assert.throws(() => planUserns(setting as never, root), InvalidArgumentError, JSON.stringify(setting));
});

test('rootless default: the user is root, its subordinate ids the rest, through newuidmap', () => {
  const plan = planUserns(undefined, alice)!;
  assert.deepEqual(plan.uidMap, [
    { containerId: 0, hostId: 1000, size: 1 },
    { containerId: 1, hostId: 165536, size: 65536 },
  ]);
  assert.deepEqual(plan.gidMap, plan.uidMap);
  assert.equal(plan.rootless, true);
  assert.equal(plan.idmapRoot, false);
  assert.equal(plan.newuidmap, '/usr/bin/newuidmap');
  assert.deepEqual(planUserns('auto', alice), plan);
});

test("podman's keep-id and nomap as maps: the caller's own id kept in place, or left out; a planUserns setting as they are", () => {
  const keep = rootlessMapsFor('keep-id', alice);
  assert.deepEqual(keep.uidMap, [
    { containerId: 0, hostId: 165536, size: 1000 },
    { containerId: 1000, hostId: 1000, size: 1 },
    { containerId: 1001, hostId: 166536, size: 64535 },
  ]);
  assert.deepEqual(keep.gidMap, keep.uidMap);
  const plan = planUserns(keep, alice)!;
  assert.equal(plan.newuidmap, '/usr/bin/newuidmap');
  assert.equal(hostIdOf(plan.uidMap, 1000), 1000);
  assert.deepEqual(rootlessMapsFor('nomap', alice).uidMap, [{ containerId: 0, hostId: 165536, size: 65536 }]);
  // Split ranges are used in file order; a uid above the container's ids comes last.
  const high: UsernsHost = { ...alice, uid: 70000, gid: 70000, subuid: 'alice:200000:100\nalice:300000:70000\n', subgid: 'alice:200000:65536\n' };
  assert.deepEqual(rootlessMapsFor('keep-id', high).uidMap, [
    { containerId: 0, hostId: 200000, size: 100 },
    { containerId: 100, hostId: 300000, size: 65435 },
    { containerId: 70000, hostId: 70000, size: 1 },
  ]);
  assert.throws(() => rootlessMapsFor('keep-id', root), InvalidArgumentError);
  assert.throws(() => rootlessMapsFor('nomap', { ...alice, subuid: 'alice:100000:10\n' }), NotFoundError);
});

test('rootless default without subordinate ids or without newuidmap: a single-id mapping, written directly', () => {
  for (const host of [
    { ...alice, subuid: '', subgid: '' },
    { ...alice, newuidmap: undefined, newgidmap: undefined },
  ] as UsernsHost[]) {
    const plan = planUserns(undefined, host)!;
    assert.deepEqual(plan.uidMap, [{ containerId: 0, hostId: 1000, size: 1 }]);
    assert.equal(plan.newuidmap, undefined);
    assert.equal(plan.newgidmap, undefined);
  }
});

test('rootless explicit maps beyond the own ids need newuidmap and newgidmap', () => {
  const maps = {
    uidMap: [
      { containerId: 0, hostId: 1000, size: 1 },
      { containerId: 1, hostId: 165536, size: 10 },
    ],
    gidMap: [{ containerId: 0, hostId: 1000, size: 1 }],
  };
  assert.equal(planUserns(maps, alice)!.newuidmap, '/usr/bin/newuidmap');
  assert.throws(() => planUserns(maps, { ...alice, newuidmap: undefined }), NotFoundError);
});

test('helper argv: maps, mappers, and how the root is assembled', () => {
  const rootless = planUserns(undefined, alice)!;
  assert.deepEqual(usernsArgs(rootless), [
    '--userns-uid', '0', '1000', '1', '--userns-uid', '1', '165536', '65536',
    '--userns-gid', '0', '1000', '1', '--userns-gid', '1', '165536', '65536',
    '--newuidmap', '/usr/bin/newuidmap', '--newgidmap', '/usr/bin/newgidmap',
  ]);
  const plan: RunPlan = basePlan({ id: 'x' });
  const withUserns = (userns: RunPlan['userns']) => runArgs({ ...plan, ...(userns ? { userns } : {}) });
  assert.ok(withUserns(rootless).includes('--userxattr'));
  assert.ok(!withUserns(rootless).includes('--idmap-root'));
  const args = withUserns(planUserns('auto', root)!);
  assert.ok(args.includes('--idmap-root'));
  assert.ok(args.indexOf('--idmap-root') < args.indexOf('--'));
  assert.ok(!withUserns(undefined).some((a) => a.startsWith('--userns')));
});

test("maps whose root is not the caller (keep-id, nomap) mount the root in the caller's own namespace", () => {
  // nomap could not mount the store's files (the caller's) in a namespace that leaves the caller out.
  assert.equal(planUserns(undefined, alice)!.mountUserns, undefined, 'the default namespace mounts its root itself');
  for (const mode of ['keep-id', 'nomap'] as const) {
    const plan = planUserns(rootlessMapsFor(mode, alice), alice)!;
    assert.deepEqual(plan.mountUserns?.uidMap, planUserns(undefined, alice)!.uidMap, mode);
    const args = runArgs(basePlan({ upper: '/u', work: '/w', userns: plan }));
    assert.deepEqual(args.slice(args.indexOf('--mount-userns-uid'), args.indexOf('--mount-userns-uid') + 8), ['--mount-userns-uid', '0', '1000', '1', '--mount-userns-uid', '1', '165536', '65536'], mode);
    assert.ok(args.includes('--mount-userns-gid'), mode);
    assert.ok(args.indexOf('--mount-userns-uid') < args.indexOf('--'), mode);
    assert.equal(args.includes('--mount-root-owns-upper'), mode === 'nomap', `${mode}: the upper's top goes to the container's root only when the caller is left out`);
  }
});

test('device nodes become bind mounts of the host nodes', () => {
  const binds = deviceBindMounts(DEFAULT_DEVICES);
  assert.deepEqual(binds[0], { type: 'bind', source: '/dev/null', target: '/dev/null', options: [], nofollow: true });
  assert.equal(binds.length, DEFAULT_DEVICES.length);
});

test('the container user and groups must be mapped', () => {
  const single = planUserns(undefined, { ...alice, subuid: '' })!;
  assert.doesNotThrow(() => checkUserMapped({ uid: 0, gid: 0, groups: [] }, single));
  assert.throws(() => checkUserMapped({ uid: 1000, gid: 0, groups: [] }, single), /single-id mapping has only root/);
  const full = planUserns(undefined, alice)!;
  assert.doesNotThrow(() => checkUserMapped({ uid: 65534, gid: 65534, groups: [10] }, full));
  assert.throws(() => checkUserMapped({ uid: 0, gid: 0, groups: [70000] }, full), /gid 70000 is not mapped/);
});

test("ownerInContainer maps a rootless upper dir's host ids back to the container's", () => {
  const plan = planUserns(undefined, alice)!;
  const map = ownerInContainer(plan);
  assert.deepEqual(map({ uid: 1000, gid: 1000 }), { uid: 0, gid: 0 });
  assert.deepEqual(map({ uid: 165536 + 999, gid: 165536 + 999 }), { uid: 1000, gid: 1000 });
  assert.deepEqual(map({ uid: 5, gid: 5 }), { uid: 0, gid: 0 });
  assert.equal(hostIdOf(plan.uidMap, 1000), 166535);
});
