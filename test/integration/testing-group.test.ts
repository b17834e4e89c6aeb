// dockless/testing startGroup: services on one network by name, started in
// dependency order with their waits, and removed together with the network.
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { NotReadyError } from '../../src/index.js';
import { startGroup, Wait } from '../../src/testing/index.js';
import { cannotRun, makeWorld, type World } from '../fixtures/world.js';

const why = cannotRun();
if (why !== undefined) console.log(`# skipped testing-group: ${why}`);

describe('dockless/testing groups', { skip: why }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => world?.dispose());

  const networks = async () => (await world.runtime.listNetworks()).map((n) => n.name).filter((n) => n.startsWith('dockless-group-'));

  it('a dependent starts after what it depends on is ready, reaches it by service name, and all goes at the end', async () => {
    let networkName: string;
    {
      await using group = await startGroup(world.runtime, {
        services: {
          // Listed first, started second: its readiness check needs `db` to answer.
          app: {
            rootfs: world.rootfs,
            cmd: ['sleep', '1000'],
            dependsOn: ['db'],
            wait: Wait.forSuccessfulCommand(['/bin/probe', 'udp-send', 'db', '5001', 'ping']),
            startupTimeout: 15_000,
          },
          db: {
            rootfs: world.rootfs,
            cmd: ['sh', '-c', 'sleep 0.5; echo db-ready; exec /bin/probe udp-echo 5001'],
            wait: Wait.all(Wait.forLogMessage('db-ready'), Wait.forListeningPorts('5001/udp')),
            startupTimeout: 15_000,
          },
        },
      });
      networkName = group.network.name;
      let dbReady: string | undefined;
      for await (const line of group.get('db').logs()) if (line.text === 'db-ready\n') dbReady = line.time;
      assert.ok(dbReady !== undefined && group.get('app').container.created.getTime() >= Date.parse(dbReady), 'app was created after db was ready');
      assert.deepEqual(await networks(), [networkName]);
      const answer = await group.get('app').exec(['/bin/probe', 'udp-send', 'db', '5001', 'again']);
      assert.equal(answer.stdout, 'echo:again\n');
      assert.equal((await world.runtime.list()).length, 2);
    }
    assert.deepEqual(await world.runtime.list(), []);
    assert.deepEqual(await networks(), []);
  });

  it('a service that is not ready removes those already started, and the network', async () => {
    await assert.rejects(
      startGroup(world.runtime, {
        services: {
          db: { rootfs: world.rootfs, cmd: ['sleep', '1000'] },
          app: { rootfs: world.rootfs, cmd: ['sh', '-c', 'echo cannot connect; exit 1'], dependsOn: ['db'], wait: Wait.forLogMessage('up') },
        },
      }),
      NotReadyError,
    );
    assert.deepEqual(await world.runtime.list(), []);
    assert.deepEqual(await networks(), []);
  });
});
