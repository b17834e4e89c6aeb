// dockless/testing's warm once, fork many: a container prepared once, then
// cloned per test, each clone waited for as the prepared one was.
import { strict as assert } from 'node:assert';
import { createConnection } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { InvalidStateError } from '../../src/index.js';
import { startContainer, Wait } from '../../src/testing/index.js';
import { cannotRun, makeWorld, type World } from '../fixtures/world.js';

const why = cannotRun();
if (why !== undefined) console.log(`# skipped testing-clone: ${why}`);

function echo(host: string, port: number, message: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host, port }, () => socket.end(message));
    let got = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (got += d));
    socket.on('end', () => resolve(got));
    socket.on('error', reject);
  });
}

describe('dockless/testing: prepared containers and their clones', { skip: why }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => world?.dispose());

  it("clone() starts from the prepared state, waits with the prepared container's strategy, and each clone's writes are its own", async () => {
    const prepared = await startContainer(world.runtime, {
      rootfs: world.rootfs,
      cmd: ['/bin/probe', 'serve-tcp', '7000'],
      ports: [7000],
      wait: Wait.forListeningPorts(7000),
      startupTimeout: 10_000,
    });
    assert.equal((await prepared.exec(['sh', '-c', 'mkdir /data && echo migrated > /data/schema'])).exitCode, 0);
    await using fixture = await prepared.snapshot();
    await using a = await fixture.clone();
    await using b = await fixture.clone();
    assert.notEqual(a.getMappedPort(7000), b.getMappedPort(7000));
    for (const c of [a, b]) {
      assert.equal(await echo(c.host, c.getMappedPort(7000), 'ping'), 'ping', 'the wait passed: the clone listens');
      assert.equal((await c.exec(['cat', '/data/schema'])).stdout, 'migrated\n');
    }
    assert.equal((await a.exec(['sh', '-c', 'echo a > /data/schema'])).exitCode, 0);
    assert.equal((await b.exec(['cat', '/data/schema'])).stdout, 'migrated\n');
    await prepared[Symbol.asyncDispose]();
    await using c = await fixture.clone({ spec: { env: { ROLE: 'third' } } });
    assert.equal((await c.exec(['sh', '-c', 'echo $ROLE; cat /data/schema'])).stdout, 'third\nmigrated\n');
  });

  it('a clone that is not ready in time is a NotReadyError and is removed', async () => {
    const prepared = await startContainer(world.runtime, { rootfs: world.rootfs, cmd: ['sleep', '1000'] });
    await using fixture = await prepared.snapshot({ stopTimeoutMs: 0 });
    const before = (await world.runtime.list()).length;
    await assert.rejects(fixture.clone({ wait: Wait.forListeningPorts(7001), startupTimeout: 500 }), { code: 'ERR_DOCKLESS_NOT_READY' });
    assert.equal((await world.runtime.list()).length, before);
    await prepared[Symbol.asyncDispose]();
  });

  it('a shared (reuse) container cannot be snapshotted', async () => {
    await using shared = await startContainer(world.runtime, { rootfs: world.rootfs, cmd: ['sleep', '1000'], reuse: { key: `clone-${process.pid}` } });
    await assert.rejects(shared.snapshot(), InvalidStateError);
  });
});
