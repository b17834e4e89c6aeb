// A container's overlay is mounted `volatile` (no sync of the upper filesystem,
// above all none at its unmount), and the kernel's marker that such a mount
// leaves in the work dir is cleared for a start in the same boot only: from
// another boot the upper may have lost writes in a crash, and the start is refused.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HelperError } from '../../src/index.js';
import { readXattrs, runHelperOp } from '../../src/helper/index.js';
import { cannotRun, makeWorld, text, type World } from '../fixtures/world.js';

const skip = cannotRun();
// Where the shim records the boot of a volatile mount (native/mounts.c).
const BOOT_XATTR = 'trusted.dockless.boot_id';
if (skip !== undefined) console.log(`# skipping volatile upper integration tests: ${skip}`);

describe('volatile overlay upper', { skip }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    await world?.dispose();
  });

  it('mounts the root overlay volatile, and starts the exited container again in the same boot with its writes', async () => {
    await using c = await world.runtime.run({
      rootfs: world.rootfs,
      cmd: ['sh', '-c', 'grep " / / " /proc/self/mountinfo; echo x >> /runs; exit $(wc -l < /runs)'],
      stdio: 'pipe',
    });
    const [mountinfo, first] = await Promise.all([text(c.stdout), c.wait()]);
    assert.equal(first.exitCode, 1);
    assert.match(mountinfo, /\boverlay\b.*\bvolatile\b/);
    const work = (await c.inspect()).GraphDriver.Data.WorkDir;
    // The kernel's marker, which would refuse the next mount if left there, and this boot's id beside it.
    assert.deepEqual(await readdir(join(work, 'work', 'incompat', 'volatile')), ['dirty']);
    const boot = (await readXattrs(work, ['.'])).get('.')?.get(BOOT_XATTR);
    assert.equal(Buffer.from(boot ?? []).toString(), readFileSync('/proc/sys/kernel/random/boot_id', 'utf8'));
    await c.restart();
    assert.equal((await c.wait()).exitCode, 2);
  });

  it('refuses to start an exited container whose volatile mount was in another boot (EUCLEAN)', async () => {
    await using c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], stdio: 'ignore' });
    assert.equal((await c.wait()).exitCode, 0);
    const work = (await c.inspect()).GraphDriver.Data.WorkDir;
    // As if the host had restarted since: the boot recorded at the mount is not this one.
    const other = Buffer.from('00000000-0000-0000-0000-000000000000\n').toString('hex');
    await runHelperOp('meta', ['--root', work], { input: Buffer.from(`xattr\0.\0${BOOT_XATTR}\0${other}\0`), context: 'test' });
    await assert.rejects(c.restart(), (error: unknown) => error instanceof HelperError && error.errnoCode === 'EUCLEAN');
  });
});
