import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { removeDir } from '../../src/util/fs.js';

describe('removeDir', () => {
  let base: string;
  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'dockless-remove-dir-'));
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('removes a container directory: files, nested directories, and an empty one', async () => {
    const dir = join(base, 'bundle');
    await mkdir(join(dir, 'upper', 'etc', 'deep'), { recursive: true });
    await mkdir(join(dir, 'work', 'work'), { recursive: true });
    await mkdir(join(dir, 'rootfs'));
    for (const f of ['hostname', 'hosts', 'resolv.conf', 'json.log', 'upper/etc/deep/file']) await writeFile(join(dir, f), f);
    await removeDir(dir);
    assert.equal(existsSync(dir), false);
  });

  // The upper directory holds what the container made, symlinks to host paths included:
  // the removal takes the link, never what it points to.
  it('never follows a symlink out of the tree it removes', async () => {
    const outside = join(base, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'keep'), 'host file');
    const dir = join(base, 'with-links');
    await mkdir(join(dir, 'upper'), { recursive: true });
    await symlink(outside, join(dir, 'link-to-dir'));
    await symlink(outside, join(dir, 'upper', 'nested-link'));
    await symlink(join(outside, 'keep'), join(dir, 'link-to-file'));
    await removeDir(dir);
    assert.equal(existsSync(dir), false);
    assert.deepEqual(await readdir(outside), ['keep']);
  });

  it('takes a missing directory as removed', async () => {
    await removeDir(join(base, 'never-made'));
  });
});
