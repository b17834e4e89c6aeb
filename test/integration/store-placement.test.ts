import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImageStore } from '../../src/image-store.js';
import { putSyntheticImage } from '../fixtures/store-images.js';
import { cannotRun } from '../fixtures/world.js';

/** The inode flags `lsattr -d` prints for `path` (`T` is FS_TOPDIR_FL). */
const flags = (path: string): string => spawnSync('lsattr', ['-d', path], { encoding: 'utf8' }).stdout.split(' ')[0]!;

describe('where a store puts its snapshots on disk', () => {
  let dir: string;
  let why: string | undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-store-placement-'));
    const fs = spawnSync('findmnt', ['-n', '-o', 'FSTYPE', '-T', dir], { encoding: 'utf8' }).stdout.trim();
    why = cannotRun() ?? (/^ext[234]$/.test(fs) && spawnSync('lsattr', ['-d', dir]).status === 0 ? undefined : `no inode flags to see here (${fs || 'findmnt failed'}, or no lsattr)`);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  // Without a journal ext4 passes over every inode freed in the last minutes when it allocates one, from the start of the
  // group: snapshots unpacked where the last ones were removed spent 40 % of an unpack's CPU there (issue 13). The first
  // unpack of a process marks snapshots/ +T, so that ext4 puts each snapshot's tree in a block group of its own choosing;
  // stores made before that are marked too, at their next unpack.
  it('the first unpack marks snapshots/ FS_TOPDIR_FL (chattr +T), in a store made before the rule too', async (t) => {
    if (why !== undefined) return t.skip(why);
    const store = await ImageStore.open({ root: join(dir, 'snapshot') });
    const snapshots = join(store.root, 'dockless', 'snapshots');
    const { manifest } = await putSyntheticImage(store, [{ 'a.txt': 'a\n' }, { 'b/': { type: 'dir' }, 'b/c.txt': 'c\n' }]);
    await store.tag(manifest.digest, 'placed:1');
    assert.doesNotMatch(flags(snapshots), /T/, 'an unmarked snapshots directory, as older stores have');
    const { lowerDirs } = await store.snapshot('placed:1');
    await store.flush();
    assert.match(flags(snapshots), /T/);
    // Only snapshots/: what a snapshot holds stays in its own group, and the rest of the store where it was.
    assert.doesNotMatch(flags(store.root), /T/);
    for (const lower of lowerDirs) assert.doesNotMatch(flags(lower), /T/);
  });

  // A pull or an import unpacks as it reads, through an ingest session rather than store.snapshot(): the same rule.
  it('an OCI layout import, which unpacks as it reads, marks snapshots/ too', async (t) => {
    if (why !== undefined) return t.skip(why);
    const source = await ImageStore.open({ root: join(dir, 'source') });
    const { manifest } = await putSyntheticImage(source, [{ 'a.txt': 'a\n' }]);
    await source.tag(manifest.digest, 'layout:1');
    const layout = join(dir, 'layout');
    await source.export('layout:1', layout, { format: 'oci' });
    const store = await ImageStore.open({ root: join(dir, 'import') });
    await store.import(layout);
    await store.flush();
    assert.match(flags(join(store.root, 'dockless', 'snapshots')), /T/);
  });
});
