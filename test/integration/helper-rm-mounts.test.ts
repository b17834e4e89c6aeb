import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';

const helper = resolve(import.meta.dirname, '..', '..', 'native', 'build', 'dockless-helper');
const skip = process.getuid?.() !== 0 ? 'a bind mount needs root' : !existsSync(helper) ? `${helper} not built: run npm run build` : undefined;
if (skip !== undefined) console.log(`# skipping the helper rm's mount tests: ${skip}`);

describe("the helper's rm and mounts under the tree it deletes", { skip }, () => {
  let base: string;
  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'dl-rm-mounts-'));
  });
  after(async () => {
    if (base !== undefined) await rm(base, { recursive: true, force: true });
  });

  // A mount left under a trash entry (a volume, a rootfs not unmounted) had its own files deleted through it.
  it('does not delete the files of a mount left under the tree', async () => {
    const victim = join(base, 'volume');
    const entry = join(base, 'entry');
    await mkdir(victim);
    await writeFile(join(victim, 'data'), 'keep');
    await mkdir(join(entry, 'rootfs', 'mnt'), { recursive: true });
    // In a mount namespace of its own: the bind mount goes with it, whatever happens.
    const run = spawnSync(
      'unshare',
      ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$1" "$2" && exec "$3" rm -- "$4" 3>&1', 'sh', victim, join(entry, 'rootfs', 'mnt'), helper, entry],
      { encoding: 'utf8', timeout: 30_000 },
    );
    assert.deepEqual(await readdir(victim), ['data'], 'the mounted directory was emptied');
    assert.notEqual(run.status, 0, 'the helper removed a tree holding a mount point');
    assert.match(run.stdout, /"code":"EXDEV"/);
  });
});
