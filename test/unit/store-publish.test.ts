import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImageStore } from '../../src/image-store.js';
import { ownerToken } from '../../src/util/index.js';
import { buildLayer, GZIP_LAYER, putSyntheticImage } from '../fixtures/store-images.js';

/** A pid no process has (above the kernel's pid_max), with a made-up start time: its owner is dead. */
const DEAD_OWNER = 'owner-2147483646-12345-deadbeef';

describe('ImageStore snapshot publishing', () => {
  let dir: string;
  let store: ImageStore;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-store-publish-'));
    store = await ImageStore.open({ root: join(dir, 'store') });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  // This process's default unpack variant: root as root, rootless otherwise.
  const snapshotDir = (chainId: string): string =>
    join(store.root, 'dockless', 'snapshots', `${chainId.slice(7)}${process.getuid?.() === 0 ? '' : '-rootless'}`);
  const locksDir = (): string => join(store.root, 'dockless', 'locks');

  // Hardening 4: a pull that finds its snapshot's name taken must judge the holder by its marker
  // under the snapshot lock, not assume it is a good snapshot and drop its own.
  it('a pull whose snapshot name is taken by a directory without a marker publishes its own snapshot', async () => {
    const layer = await buildLayer({ 'pulled.txt': 'pulled\n' });
    const chainId = layer.diffId;
    await mkdir(join(snapshotDir(chainId), 'fs'), { recursive: true });
    await writeFile(join(snapshotDir(chainId), 'fs', 'junk.txt'), 'not from the layer');

    const session = store.ingest();
    const writer = await session.layer(
      { mediaType: GZIP_LAYER, digest: layer.digest, size: layer.gz.length },
      { snapshot: { chainId, diffId: layer.diffId, parent: null } },
    );
    await writer.write(layer.gz);
    await writer.finish();
    await session.commit();

    const marker = JSON.parse(await readFile(join(snapshotDir(chainId), 'snapshot.json'), 'utf8'));
    assert.equal(marker.chainId, chainId);
    assert.deepEqual(await readdir(join(snapshotDir(chainId), 'fs')), ['pulled.txt']);
    assert.deepEqual(await store.check(), []);
  });

  // One rule for every path: a directory without a marker is not a snapshot, so adopting replaces it too.
  it('adopting a directory replaces a snapshot directory without a marker', async () => {
    const { manifest, layers } = await putSyntheticImage(store, [{ 'adopted.txt': 'adopted\n' }]);
    const chainId = layers[0]!.diffId;
    await mkdir(join(snapshotDir(chainId), 'fs'), { recursive: true });
    const built = join(dir, 'built');
    await mkdir(built);
    await writeFile(join(built, 'adopted.txt'), 'adopted\n');
    const details = await store.inspect(manifest.digest);
    const adopted = await store.adoptSnapshot(
      [{ descriptor: { mediaType: GZIP_LAYER, digest: layers[0]!.digest, size: layers[0]!.gz.length }, diffId: chainId }],
      built,
      { size: layers[0]!.tar.length, entries: 1 },
    );
    assert.equal(adopted, true);
    assert.equal(details.layers[0]!.chainId, chainId);
    assert.deepEqual(await readdir(join(snapshotDir(chainId), 'fs')), ['adopted.txt']);
    assert.ok((await readdir(snapshotDir(chainId))).includes('snapshot.json'));
  });

  // Hardening 12: a killed unpack leaves its snapshot lock behind; nothing else would ever remove it.
  it('open() and gc() remove snapshot locks whose owner died, and keep live ones', async () => {
    const stale = (n: number): string => join(locksDir(), `snapshot-${String(n).repeat(64)}.lock`);
    const live = join(locksDir(), `snapshot-${'a'.repeat(64)}.lock`);
    await mkdir(stale(1));
    await writeFile(join(stale(1), DEAD_OWNER), '');
    await mkdir(live);
    await writeFile(join(live, `owner-${ownerToken()}`), '');

    await ImageStore.open({ root: store.root });
    let names = await readdir(locksDir());
    assert.ok(!names.includes(`snapshot-${'1'.repeat(64)}.lock`), `left: ${names.join(' ')}`);
    assert.ok(names.includes(`snapshot-${'a'.repeat(64)}.lock`));

    await mkdir(stale(2));
    await writeFile(join(stale(2), DEAD_OWNER), '');
    await store.gc({ gracePeriodMs: 0 });
    names = await readdir(locksDir());
    assert.ok(!names.includes(`snapshot-${'2'.repeat(64)}.lock`), `left: ${names.join(' ')}`);
    assert.ok(names.includes(`snapshot-${'a'.repeat(64)}.lock`));
    await rm(live, { recursive: true });
  });
});
