// container.restart(): Docker's `restart`, the same container started again in
// place (same id, name, written files, network place and published ports), from
// the process that made it or from any other, running or already stopped.
import { strict as assert } from 'node:assert';
import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { InvalidStateError, Runtime, type ContainerEvent } from '../../src/index.js';
import { cannotRun, cgroupDirs, makeWorld, type World } from '../fixtures/world.js';

const skip = cannotRun();
if (skip !== undefined) console.log(`# skipping restart integration tests: ${skip}`);

async function events(runtime: Runtime, id: string, since: number): Promise<string[]> {
  const out: ContainerEvent[] = [];
  for await (const e of runtime.events({ since, until: Date.now(), filters: { container: [id] } })) out.push(e);
  return out.map((e) => e.action);
}

/** Sends `hi` to the published port until the container answers (the forwarder accepts before the server listens). */
async function echo(port: number): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const got = await new Promise<string>((resolve) => {
      const s = createConnection({ host: '127.0.0.1', port }, () => s.end('hi'));
      let text = '';
      s.on('data', (d) => (text += String(d)));
      s.on('close', () => resolve(text));
      s.on('error', () => resolve(''));
    });
    if (got !== '' || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('container.restart()', { skip }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    await world?.dispose();
  });

  it('restarts a running container in place: same id and name, what it wrote kept, a new pid 1, restart event', async () => {
    const since = Date.now();
    await using c = await world.runtime.run({
      rootfs: world.rootfs,
      name: 'restart-running',
      cmd: ['sh', '-c', 'echo run >> /count; exec sleep 60'],
      stdio: 'ignore',
    });
    const firstPid = c.pid;
    // run() and restart() resolve once the command is executed; its line may come a moment later
    // (restarted before the first run's line, the container rightly keeps only the second's).
    const countReaches = async (want: string): Promise<string> => {
      let count = '';
      for (let i = 0; i < 100 && count !== want; i++) {
        count = (await c.output(['cat', '/count'])).stdout;
        if (count !== want) await sleep(20);
      }
      return count;
    };
    assert.equal(await countReaches('run\n'), 'run\n');
    await c.restart({ timeoutMs: 200 });
    assert.equal(c.status, 'running');
    assert.notEqual(c.pid, firstPid);
    assert.equal((await world.runtime.get('restart-running')).id, c.id);
    assert.equal(await countReaches('run\nrun\n'), 'run\nrun\n');
    const actions = await events(world.runtime, c.id, since);
    assert.ok(actions.includes('restart'), actions.join(','));
    assert.ok(actions.indexOf('restart') > actions.indexOf('die'), actions.join(','));
  });

  it('starts an exited container again, and wait() reports the new run', async () => {
    await using c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'echo x >> /runs; exit $(wc -l < /runs)'], stdio: 'ignore' });
    assert.equal((await c.wait()).exitCode, 1);
    await c.restart();
    assert.equal((await c.wait()).exitCode, 2);
    const cgroups = (await c.inspect()).State;
    assert.equal(cgroups.Status, 'exited');
  });

  it('restarts a detached container found by another runtime (another process) and the owner sees it running', async () => {
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '60'], stdio: 'ignore', detached: true });
    try {
      const other = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir });
      const found = await other.get(c.id);
      await found.kill();
      await found.wait();
      await found.restart();
      assert.equal(found.status, 'running');
      const again = await world.runtime.get(c.id);
      assert.equal(again.pid, found.pid);
      assert.equal(again.status, 'running');
      // The cgroups were made again, and hold the new pid 1.
      const { pids } = await found.stats();
      assert.ok(pids.current >= 1);
    } finally {
      await c.remove({ force: true });
    }
    // The owner's shim removed the first run's cgroups at its exit and said so; the restart made them
    // again, and the owner's remove() must not take its shim's word for the new ones.
    assert.deepEqual((await cgroupDirs()).filter((dir) => dir.includes(c.id)), []);
  });

  it('a removed container cannot be restarted', async () => {
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], stdio: 'ignore' });
    await c.wait();
    await c.remove();
    await assert.rejects(c.restart(), InvalidStateError);
  });

  it('keeps the published host port across a restart', async () => {
    await using c = await world.runtime.run({
      rootfs: world.rootfs,
      cmd: ['probe', 'serve-tcp', '8080'],
      stdio: 'ignore',
      network: 'none',
      ports: [{ container: 8080, host: 0, hostIp: '127.0.0.1' }],
    });
    const [{ host }] = c.ports();
    await c.restart({ timeoutMs: 100 });
    assert.equal(c.ports()[0]!.host, host);
    assert.equal(await echo(host), 'hi');
  });
});
