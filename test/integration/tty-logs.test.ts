// TTY, stdin kept open, attach and logs, as root; the same cases run rootless
// through rootless-cases.ts.
import { after, before, describe, it } from 'node:test';
import { cannotRun, makeWorld, type World } from '../fixtures/world.js';
import { TTY_LOGS_CASES } from '../fixtures/tty-logs-cases.js';

const skip = cannotRun();
if (skip !== undefined) console.log(`# skipping tty and logs integration tests: ${skip}`);

describe('tty, stdin, attach and logs', { skip }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    await world?.dispose();
  });
  for (const c of TTY_LOGS_CASES) it(c.name, () => c.run(world.runtime, world.rootfs));
});
