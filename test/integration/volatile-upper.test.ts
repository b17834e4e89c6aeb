// A container's overlay is mounted `volatile` (no sync of the upper filesystem,
// above all none at its unmount) where its upper is not to outlive the boot: an
// auto-removed container's, or any whose state directory a reboot empties
// (tmpfs). The kernel's marker that such a mount leaves in the work dir is
// cleared for a start in the same boot only: from another boot the upper may
// have lost writes in a crash, and the start is refused. A container whose
// records outlive a reboot keeps the synced mount.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HelperError, Runtime } from '../../src/index.js';
import { readXattrs, runHelperOp } from '../../src/helper/index.js';
import { cannotRun, makeWorld, text, type World } from '../fixtures/world.js';

const skip = cannotRun();
// Where the shim records the boot of a volatile mount (native/mounts.c).
const BOOT_XATTR = 'trusted.dockless.boot_id';
if (skip !== undefined) console.log(`# skipping volatile upper integration tests: ${skip}`);

const TMPFS_MAGIC = 0x01021994;

describe('volatile overlay upper', { skip }, () => {
  let world: World;
  // A runtime whose state directory is on tmpfs, as the default `/run/dockless` is on most hosts.
  let shmState: string;
  let runtime: Runtime;
  before(async () => {
    world = await makeWorld();
    shmState = await mkdtemp('/dev/shm/dl-it-volatile-');
    runtime = new Runtime({ root: join(world.base, 'root-shm'), stateDir: shmState });
  });
  after(async () => {
    for (const c of (await runtime?.list().catch(() => undefined)) ?? []) {
      await (await runtime.get(c.id).catch(() => undefined))?.remove({ force: true }).catch(() => undefined);
    }
    if (shmState !== undefined) await rm(shmState, { recursive: true, force: true });
    await world?.dispose();
  });

  const rootMount = async (rt: Runtime, extra: { autoRemove?: boolean } = {}): Promise<string> => {
    const c = await rt.run({ rootfs: world.rootfs, cmd: ['grep', ' / / ', '/proc/self/mountinfo'], stdio: 'pipe', ...extra });
    const [mountinfo] = await Promise.all([text(c.stdout), c.wait()]);
    if (extra.autoRemove !== true) await c.remove();
    return mountinfo;
  };

  it('mounts the root overlay volatile where the state directory is on tmpfs, or the container is auto-removed, and not otherwise', async (t) => {
    assert.match(await rootMount(runtime), /\boverlay\b.*\bvolatile\b/);
    if ((await statfs(world.base)).type === TMPFS_MAGIC) {
      t.diagnostic(`${world.base} is on tmpfs: no state directory that outlives a reboot to check`);
    } else {
      const synced = await rootMount(world.runtime);
      assert.match(synced, /\boverlay\b/);
      assert.doesNotMatch(synced, /\bvolatile\b/);
    }
    assert.match(await rootMount(world.runtime, { autoRemove: true }), /\boverlay\b.*\bvolatile\b/);
  });

  it('mounts the root overlay volatile, and starts the exited container again in the same boot with its writes', async () => {
    await using c = await runtime.run({
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
    await using c = await runtime.run({ rootfs: world.rootfs, cmd: ['true'], stdio: 'ignore' });
    assert.equal((await c.wait()).exitCode, 0);
    const work = (await c.inspect()).GraphDriver.Data.WorkDir;
    // As if the host had restarted since: the boot recorded at the mount is not this one.
    const other = Buffer.from('00000000-0000-0000-0000-000000000000\n').toString('hex');
    await runHelperOp('meta', ['--root', work], { input: Buffer.from(`xattr\0.\0${BOOT_XATTR}\0${other}\0`), context: 'test' });
    await assert.rejects(c.restart(), (error: unknown) => error instanceof HelperError && error.errnoCode === 'EUCLEAN');
  });
});
