import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Runtime } from '../../src/index.js';
import { cannotRun, makeWorld, type World } from '../fixtures/world.js';

const why = cannotRun();
if (why !== undefined) console.log(`# skipped detached-start: ${why}`);
const child = join(import.meta.dirname, '..', 'fixtures', 'detached-start-child.ts');
const removeChild = join(import.meta.dirname, '..', 'fixtures', 'detached-remove-child.ts');

describe('detached start', { skip: why }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => world?.dispose());

  // start() of a detached container awaited the helper's `started` line on an
  // unref'd pipe: with nothing else pending, Node ended the process (exit 13,
  // unsettled top-level await) before start() returned, most of the time.
  it('start() of a detached container returns, with nothing else keeping the process alive (unsettled await, exit 13)', () => {
    for (let i = 0; i < 5; i++) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', child, world.runtime.root, world.runtime.stateDir, world.rootfs], { encoding: 'utf8', timeout: 30_000 });
      assert.deepEqual({ status: r.status, stdout: r.stdout }, { status: 0, stdout: 'started\n' }, r.stderr);
    }
  });

  // The shim writes the exit record just after it reaps pid 1; a waiter in another process that looked
  // in between took the missing record for a killed shim and reported 137 (seen as `attach` exiting 137).
  it('wait() from another process reports the recorded exit code when the record comes just after pid 1 died', async () => {
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'exit 7'], detached: true, stdio: 'ignore' });
    try {
      assert.equal((await c.wait()).exitCode, 7);
      const exitRecord = world.runtime.pathsOf(c.id).exit;
      // The owner's wait() may hear of the end from its helper before the shim has written the record.
      for (let i = 0; i < 250 && !existsSync(exitRecord); i++) await sleep(20);
      await rename(exitRecord, `${exitRecord}.late`);
      const other = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir });
      const foreign = await other.get(c.id);
      setTimeout(() => void rename(`${exitRecord}.late`, exitRecord), 150);
      assert.equal((await foreign.wait()).exitCode, 7);
    } finally {
      await c.remove({ force: true });
    }
  });

  // remove() of a detached container whose end was already seen awaited the helper's exit with the
  // helper unref'd: Node could end the process there (exit 13) before remove() returned.
  it('remove() of a detached container seen to stop returns, with nothing else keeping the process alive (exit 13)', () => {
    for (let i = 0; i < 10; i++) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', removeChild, world.runtime.root, world.runtime.stateDir, world.rootfs], { encoding: 'utf8', timeout: 30_000 });
      assert.deepEqual({ status: r.status, stdout: r.stdout }, { status: 0, stdout: 'removed\n' }, r.stderr);
    }
  });
});
