// The launch record restart() starts a container again from: it must give the
// helper the same argv as the first start (same mounts, security, network
// link), through JSON, with only what belongs to one start left out.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { launchRecord, savedPlan } from '../../src/runtime/relaunch.js';
import { runArgs } from '../../src/runtime/run-args.js';
import { basePlan } from '../fixtures/run-plan.js';

describe('launch record', () => {
  const plan = basePlan({
    caps: 0xa80425fbn,
    seccomp: Buffer.from([0x20, 0, 0, 0, 4, 0, 0, 0, 0x15, 0, 1, 0]),
    noNewPrivileges: true,
    env: ['A=1', 'SECRET=x'],
    mounts: [{ type: 'bind', source: '/src', target: '/dst', options: ['ro'] }],
    link: { host: 'dlvabcdef01aaaa', bridge: 'dl-br0', peer: 'eth0', mac: '02:42:0a:00:00:02', mtu: 0, addresses: ['10.88.0.2/16'], gateways: ['10.88.0.1'] },
    restartArgs: ['--restart', 'always', '--restart-file', '/s/restart.json'],
    exitFile: '/s/exit.json',
    cgroups: ['/sys/fs/cgroup/pids/dockless-abc'],
    startFifo: '/s/start.fifo',
    dieWithParent: 1234,
    reportNetns: true,
  });

  it('survives JSON with the same argv, less the gate, the owner, the netns report and the cgroup directories', () => {
    const record = JSON.parse(JSON.stringify(launchRecord(plan, { hierarchies: [] }, undefined, []))) as ReturnType<typeof launchRecord>;
    const { startFifo: _a, dieWithParent: _b, reportNetns: _c, cgroups: _d, ...kept } = plan;
    assert.deepEqual(runArgs(savedPlan(record)), runArgs(kept));
    assert.deepEqual(savedPlan(record).seccomp, plan.seccomp);
    assert.equal(savedPlan(record).caps, plan.caps);
    for (const field of ['startFifo', 'dieWithParent', 'reportNetns', 'cgroups']) assert.ok(!(field in record.plan), field);
  });

  // A restart finds the state directory there and the launch's events written: making them again failed it (ENOTEMPTY).
  it("leaves out the state directory the shim made and the launch's events, keeping where the shim appends its own", () => {
    const first = basePlan({
      state: { dir: '/s/c1', token: '1-2-aaaaaaaaaaaa', owner: '{"pid":1,"start":2}' },
      events: { file: '/s/events.jsonl', name: 'web', launch: '{"type":"container","action":"create"}\n' },
    });
    const record = JSON.parse(JSON.stringify(launchRecord(first, { hierarchies: [] }, undefined, []))) as ReturnType<typeof launchRecord>;
    const args = runArgs(savedPlan(record));
    assert.ok(!args.includes('--make-state'));
    assert.ok(!args.includes('--events-launch'));
    assert.deepEqual(savedPlan(record).events, { file: '/s/events.jsonl', name: 'web' });
  });

  it('keeps a plan without capabilities or seccomp (privileged, unconfined) without them', () => {
    const bare = basePlan();
    const record = JSON.parse(JSON.stringify(launchRecord(bare, { hierarchies: [] }, undefined, []))) as ReturnType<typeof launchRecord>;
    assert.equal(savedPlan(record).caps, undefined);
    assert.equal(savedPlan(record).seccomp, undefined);
    assert.deepEqual(runArgs(savedPlan(record)), runArgs(bare));
  });
});
