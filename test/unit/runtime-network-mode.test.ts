// Network modes and pods as the runtime decides them (src/runtime/network-mode.ts)
// and as the helper is told (run-args.ts): no root, no helper.
import { strict as assert } from 'node:assert';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { InvalidArgumentError, NotFoundError } from '../../src/errors.js';
import { DEFAULT_MOUNTS } from '../../src/runtime/defaults.js';
import { hostSysfs, networkOf, planNamespaces, validateNetwork, type NamespaceContext } from '../../src/runtime/network-mode.js';
import { POD_SHARES } from '../../src/runtime/pods.js';
import { runArgs } from '../../src/runtime/run-args.js';
import type { UsernsPlan } from '../../src/runtime/userns.js';
import { basePlan } from '../fixtures/run-plan.js';

function ctx(stateDir: string, extra: Partial<NamespaceContext> = {}): NamespaceContext {
  return {
    stateDir,
    network: undefined,
    userns: false,
    containerPaths: async (ref) => {
      throw new NotFoundError(`no such container: ${ref}`);
    },
    ...extra,
  };
}

const USERNS: UsernsPlan = {
  uidMap: [{ containerId: 0, hostId: 1000, size: 1 }],
  gidMap: [{ containerId: 0, hostId: 1000, size: 1 }],
  rootless: true,
  idmapRoot: false,
  hostRoot: { uid: 1000, gid: 1000 },
};

describe('run argv for joined namespaces', () => {
  it('passes each joined namespace as --join-ns and no --hostname when the uts namespace is joined', () => {
    const { hostname: _, ...rest } = basePlan();
    const args = runArgs({ ...rest, joins: [['net', '/proc/7/ns/net'], ['uts', '/proc/7/ns/uts']] });
    assert.deepEqual(args.slice(args.indexOf('--join-ns'), args.indexOf('--join-ns') + 6), ['--join-ns', 'net', '/proc/7/ns/net', '--join-ns', 'uts', '/proc/7/ns/uts']);
    assert.ok(!args.includes('--hostname'));
  });

  it('a joined user namespace brings its maps: no --userns-uid, still the rootless overlay', () => {
    const args = runArgs(basePlan({ joins: [['user', '/proc/7/ns/user']], userns: USERNS }));
    assert.ok(!args.includes('--userns-uid'));
    assert.ok(args.includes('--userxattr'));
    const own = runArgs(basePlan({ userns: USERNS }));
    assert.ok(own.includes('--userns-uid'));
    assert.ok(!own.includes('--join-ns'));
  });
});

describe('pod namespaces and the helper', () => {
  it('every namespace a pod shares, and user, is a name the helper knows (native/ns.c)', async () => {
    const text = await readFile(join(import.meta.dirname, '..', '..', 'native', 'ns.c'), 'utf8');
    for (const name of [...POD_SHARES, 'user']) assert.match(text, new RegExp(`\\{"${name}", CLONE_NEW`), name);
    const pause = await readFile(join(import.meta.dirname, '..', '..', 'native', 'pause.c'), 'utf8');
    assert.match(pause, /#define POD_NS \(CLONE_NEWNET \| CLONE_NEWIPC \| CLONE_NEWUTS \| CLONE_NEWPID\)/);
  });
});

describe('network modes', () => {
  it('validates the shape of network', () => {
    for (const ok of [undefined, 'none', 'host', 'bridge', { container: 'db' }, { container: { id: 'abc' } }, { id: 'n', name: 'net' }]) {
      validateNetwork(ok, 'f');
    }
    for (const bad of ['nat', '', 3, null, { container: '' }, { container: 5 }, {}]) {
      assert.throws(() => validateNetwork(bad, 'f'), InvalidArgumentError, String(bad));
    }
  });

  it("'none' makes every namespace; the runtime's default applies when the spec has none", async () => {
    const plan = await planNamespaces({}, ctx('/nonexistent'));
    assert.deepEqual(plan.namespaces, ['mount', 'pid', 'uts', 'ipc', 'net', 'cgroup']);
    assert.deepEqual(plan.joins, []);
    const host = await planNamespaces({}, ctx('/nonexistent', { network: 'host' }));
    assert.equal(host.mode, 'host');
    // The spec's wins over the runtime's.
    assert.equal((await planNamespaces({ network: 'none' }, ctx('/nonexistent', { network: 'host' }))).mode, 'none');
  });

  it("'host' makes no network namespace, takes the host's hostname and /etc files, and binds /sys in a user namespace", async () => {
    const plan = await planNamespaces({ network: 'host' }, ctx('/nonexistent'));
    assert.ok(!plan.namespaces.includes('net'));
    assert.equal(plan.hostname, hostname());
    assert.equal(plan.etc.kind, 'host');
    assert.equal(plan.hostSys, false);
    assert.equal((await planNamespaces({ network: 'host', hostname: 'mine' }, ctx('/nonexistent'))).hostname, 'mine');
    assert.equal((await planNamespaces({ network: 'host' }, ctx('/nonexistent', { userns: true }))).hostSys, true);
    const sys = DEFAULT_MOUNTS.map(hostSysfs).find((m) => m.target === '/sys')!;
    assert.equal(sys.type, 'bind');
    assert.equal(sys.source, '/sys');
    assert.ok(sys.options.includes('rbind') && sys.options.includes('ro'));
  });

  it("'bridge' and networks: a network namespace of its own; without an attacher, an InvalidArgumentError", async () => {
    const bridge = await planNamespaces({ network: 'bridge' }, ctx('/nonexistent'));
    assert.equal(bridge.mode, 'bridge');
    assert.ok(bridge.namespaces.includes('net'));
    assert.deepEqual(bridge.joins, []);
    assert.equal((await planNamespaces({ network: { id: 'x', name: 'backend' } }, ctx('/nonexistent'))).mode, 'backend');
    assert.throws(() => networkOf({ network: 'bridge' }, undefined, false), /no network attacher/);
    assert.equal(networkOf({}, 'bridge', true), 'bridge', "the runtime's default network");
    assert.equal(networkOf({ network: 'host' }, 'bridge', true), undefined);
    assert.throws(() => networkOf({ networkAliases: ['db'] }, undefined, true), /networkAliases needs/);
  });

  it('{ container } with a hostname is refused before the container is looked up; an unknown one is NotFoundError', async () => {
    await assert.rejects(planNamespaces({ network: { container: 'db' }, hostname: 'h' }, ctx('/nonexistent')), InvalidArgumentError);
    await assert.rejects(planNamespaces({ network: { container: 'db' } }, ctx('/nonexistent')), NotFoundError);
  });

  it('a pod that is not in the state directory is NotFoundError; a malformed one InvalidArgumentError', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dl-netmode-'));
    try {
      await assert.rejects(planNamespaces({ namespace: { id: 'a'.repeat(64) } }, ctx(dir)), NotFoundError);
      await assert.rejects(planNamespaces({ namespace: { id: '../x' } }, ctx(dir)), InvalidArgumentError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
