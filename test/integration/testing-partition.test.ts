/**
 * dockless/testing's partition/heal (root): a partitioned network member
 * cannot be reached by its peer, and heal brings it back. Runs inside a
 * throwaway "host" network namespace (this file again, in a child under
 * `unshare --net`, as network.test.ts does), so the machine's firewall is
 * never touched.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError } from '../../src/index.js';
import { partition, startContainer, Wait } from '../../src/testing/index.js';
import { cannotRun, makeWorld, type World } from '../fixtures/world.js';
import { IN_NET_SANDBOX, runInNetSandbox } from '../fixtures/net-sandbox.js';

const SANDBOX = IN_NET_SANDBOX;
const THIS = fileURLToPath(import.meta.url);
const skip = cannotRun() ?? (spawnSync('nft', ['--version']).status !== 0 ? 'nft is not installed (Debian package nftables)' : undefined);
if (skip !== undefined) console.log(`# skipping testing-partition: ${skip}`);

if (!SANDBOX) {
  describe('dockless/testing partition (root)', { skip }, () => {
    it('every case, in a throwaway host network namespace', () => {
      runInNetSandbox(THIS, 'partition', 300_000);
    });
  });
} else {
  describe('partition in a throwaway host namespace', () => {
    let world: World;
    before(async () => {
      execFileSync('ip', ['link', 'set', 'lo', 'up']);
      world = await makeWorld();
    });
    after(async () => {
      for (const n of (await world?.runtime.listNetworks().catch(() => [])) ?? []) await n.remove({ force: true }).catch(() => undefined);
      await world?.dispose();
    });

    it('a partitioned member is unreachable from its peer; heal restores it', async () => {
      const net = await world.runtime.createNetwork({ name: 'parted' });
      await using server = await startContainer(world.runtime, {
        rootfs: world.rootfs,
        cmd: ['/bin/probe', 'serve-tcp', '7000'],
        network: net,
        spec: { name: 'server' },
        wait: Wait.forListeningPorts(7000),
        startupTimeout: 20_000,
      });
      const peer = () => world.runtime.output({ rootfs: world.rootfs, cmd: ['sh', '-c', 'echo hi | nc -w 2 server 7000'], network: net });
      assert.equal((await peer()).stdout, 'hi\n', 'reachable before');

      const cut = await partition(server);
      const during = await peer();
      assert.notEqual(during.stdout, 'hi\n', 'the peer gets no answer while partitioned');
      assert.notEqual(during.exitCode, 0);

      await cut.heal();
      assert.equal((await peer()).stdout, 'hi\n', 'reachable again after heal');
      await cut.heal(); // twice is harmless
      await net.remove({ force: true });
    });

    // A container on network 'host' is in the caller's network namespace: its "partition" would have cut off the host.
    it('refuses a target on the host network, and leaves the host reachable', async () => {
      const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '30'], network: 'host', stdio: 'ignore' });
      try {
        await assert.rejects(partition(c), InvalidArgumentError);
        const tables = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' });
        assert.doesNotMatch(tables, /dockless_partition/);
      } finally {
        await c.remove({ force: true });
      }
    });
  });
}
