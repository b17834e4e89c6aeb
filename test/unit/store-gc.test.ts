import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../../src/errors.js';
import { ImageStore } from '../../src/image-store.js';
import { putSyntheticImage, sha256 } from '../fixtures/store-images.js';

describe('ImageStore gc and leases', () => {
  let dir: string;
  let store: ImageStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-store-gc-'));
    store = await ImageStore.open({ root: join(dir, 'store'), historyRetention: { maxEntries: 2 } });
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const blobCount = async (): Promise<number> => (await readdir(join(store.root, 'blobs', 'sha256'))).length;
  const snapshotNames = async (): Promise<string[]> => readdir(join(store.root, 'dockless', 'snapshots'));

  it('removes unreferenced blobs and snapshots, keeps tagged ones', async () => {
    const kept = await putSyntheticImage(store, [{ 'base.txt': 'base' }, { 'kept.txt': 'kept' }]);
    const dropped = await putSyntheticImage(store, [{ 'base.txt': 'base' }, { 'dropped.txt': 'dropped' }]);
    await store.tag(kept.manifest.digest, 'kept:1');
    await store.tag(dropped.manifest.digest, 'dropped:1');
    const keptSnap = await store.snapshot('kept:1');
    const droppedSnap = await store.snapshot('dropped:1');
    const loose = await store.putBlob('loose blob');

    const dry = await store.gc({ gracePeriodMs: 0, dryRun: true });
    assert.deepEqual(dry.blobs, [loose.digest]);
    assert.equal(await store.hasBlob(loose.digest), true, 'a dry run removes nothing');
    // Within the default grace period, content written just now stays even unreferenced.
    assert.deepEqual((await store.gc()).blobs, []);

    await store.remove('dropped:1');
    // The dropped image is still in the tag's history (retention 2: tag, untag), so only the loose blob goes.
    assert.deepEqual((await store.gc({ gracePeriodMs: 0 })).blobs, [loose.digest]);

    // A third change pushes it out of retention.
    await store.tag(kept.manifest.digest, 'dropped:1');
    const result = await store.gc({ gracePeriodMs: 0 });
    assert.ok(result.blobs.includes(dropped.manifest.digest));
    assert.ok(result.blobs.includes(dropped.layers[1]!.digest));
    assert.ok(!result.blobs.includes(dropped.layers[0]!.digest), 'shared base layer stays');
    assert.deepEqual(result.snapshots, [droppedSnap.chainIds[1]]);
    assert.ok(result.historyEntries >= 1);
    assert.ok(result.reclaimedBytes > 0);
    assert.ok((await snapshotNames()).some((n) => n.startsWith(keptSnap.chainIds[1]!.slice(7))));
    assert.equal(await store.hasBlob(kept.manifest.digest), true);
    assert.deepEqual(await store.check(), []);
    // Nothing left to do.
    assert.deepEqual((await store.gc({ gracePeriodMs: 0 })).blobs, []);
  });

  it('keeps targets of retained history so rollback works after gc', async () => {
    const v1 = await putSyntheticImage(store, [{ 'v.txt': '1' }]);
    const v2 = await putSyntheticImage(store, [{ 'v.txt': '2' }]);
    await store.tag(v1.manifest.digest, 'app:latest');
    await store.tag(v2.manifest.digest, 'app:latest');
    await store.gc({ gracePeriodMs: 0 });
    assert.equal((await store.rollback('app')).digest, v1.manifest.digest);
    await store.snapshot('app');
  });

  it('drops history older than maxAgeMs', async () => {
    const aged = await ImageStore.open({ root: store.root, historyRetention: { maxEntries: 10, maxAgeMs: 0 } });
    const v1 = await putSyntheticImage(aged, [{ 'v.txt': 'old' }]);
    const v2 = await putSyntheticImage(aged, [{ 'v.txt': 'new' }]);
    await aged.tag(v1.manifest.digest, 'aged:1');
    await aged.tag(v2.manifest.digest, 'aged:1');
    await new Promise((r) => setTimeout(r, 5));
    const result = await aged.gc({ gracePeriodMs: 0 });
    assert.equal(result.historyEntries, 1);
    assert.ok(result.blobs.includes(v1.manifest.digest));
    assert.equal((await aged.history('aged:1')).length, 1);
  });

  it('never removes what a lease holds, until it is released', async () => {
    const img = await putSyntheticImage(store, [{ 'leased.txt': 'leased' }]);
    await store.tag(img.manifest.digest, 'leased:1');
    const snap = await store.snapshot('leased:1');
    {
      await using lease = await store.lease('container-1', ['leased:1']);
      assert.equal(lease.id, 'container-1');
      await store.untag('leased:1');
      await store.tag(img.manifest.digest, 'other:1');
      await store.untag('other:1');
      const byLease = await store.gc({ gracePeriodMs: 0 });
      assert.ok(!byLease.blobs.includes(img.manifest.digest));
      assert.deepEqual(byLease.snapshots, []);
      assert.deepEqual((await store.leases()).map((l) => l.digests), [[img.manifest.digest]]);
      await assert.rejects(store.lease('container-1', []), AlreadyExistsError);
    }
    assert.deepEqual(await store.leases(), []);
    // Forget the history so nothing else holds the image.
    const forgetful = await ImageStore.open({ root: store.root, historyRetention: { maxEntries: 1 } });
    const result = await forgetful.gc({ gracePeriodMs: 0 });
    assert.ok(result.blobs.includes(img.manifest.digest));
    assert.deepEqual(result.snapshots, snap.chainIds);
  });

  it('protects chainIDs and blobs named directly, and blobs added while importing', async () => {
    const img = await putSyntheticImage(store, [{ 'direct.txt': 'direct' }]);
    const snap = await store.snapshot(img.manifest.digest);
    const lease = await store.lease('import-1', [snap.chainIds[0]!]);
    const blob = await store.putBlob('being imported', { lease });
    await lease.add([img.layers[0]!.digest]);
    const result = await store.gc({ gracePeriodMs: 0 });
    assert.ok(!result.blobs.includes(blob.digest));
    assert.ok(!result.blobs.includes(img.layers[0]!.digest));
    assert.ok(result.blobs.includes(img.manifest.digest));
    assert.deepEqual(result.snapshots, []);
    assert.equal(await lease.release(), true);
    assert.equal(await lease.release(), false);
    await assert.rejects(store.putBlob('x', { lease: 'import-1' }), NotFoundError);
  });

  it('ends expired leases and leases of processes that are gone', async () => {
    await store.lease('expired', [sha256('a')], { expiresIn: 0 });
    await store.lease('mine', [sha256('b')], { processBound: true });
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const leasePath = join(store.root, 'dockless', 'leases', 'dead.json');
    await writeFile(
      leasePath,
      JSON.stringify({ id: 'dead', created: new Date().toISOString(), owner: { pid: Number(child.stdout), start: 1 }, digests: [] }),
    );
    const result = await store.gc({ gracePeriodMs: 0 });
    assert.deepEqual(result.leases.sort(), ['dead', 'expired']);
    assert.deepEqual((await store.leases()).map((l) => l.id), ['mine']);
    await assert.rejects(store.lease('bad id!', []), InvalidArgumentError);
    await assert.rejects(store.getLease('nope'), NotFoundError);
    assert.equal((await store.getLease('mine')).id, 'mine');
    JSON.parse(await readFile(join(store.root, 'dockless', 'leases', 'mine.json'), 'utf8'));
  });
});
