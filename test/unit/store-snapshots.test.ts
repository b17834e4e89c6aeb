import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AbortError, DigestMismatchError, InvalidArgumentError } from '../../src/errors.js';
import { hostPlatform } from '../../src/oci/index.js';
import { ImageStore } from '../../src/image-store.js';
import type { SnapshotProgress } from '../../src/store/index.js';
import { bigLayerEntries, buildLayer, CORRUPTIONS, GZIP_LAYER, putSyntheticImage } from '../fixtures/store-images.js';

const TAR_LAYER = 'application/vnd.oci.image.layer.v1.tar';

describe('ImageStore snapshots', () => {
  let dir: string;
  let store: ImageStore;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-store-snap-'));
    store = await ImageStore.open({ root: join(dir, 'store') });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const snapshotsDir = (): string => join(store.root, 'dockless', 'snapshots');
  // Snapshot directories of the unpacker's default variant, which depends on who runs the tests.
  const dirName = (chainId: string): string => `${chainId.slice(7)}${process.getuid?.() === 0 ? '' : '-rootless'}`;

  it('unpacks each layer into its own snapshot and returns lower dirs top-most first', async () => {
    const { manifest } = await putSyntheticImage(store, [
      { 'etc/': { type: 'dir' }, 'etc/os-release': 'base\n' },
      { 'app/': { type: 'dir' }, 'app/run.sh': { type: 'file', content: '#!/bin/sh\n', mode: 0o755 } },
      { 'app/config': 'top\n' },
    ]);
    await store.tag(manifest.digest, 'snap:1');
    const events: SnapshotProgress[] = [];
    const snap = await store.snapshot('snap:1', { onProgress: (e) => events.push(e) });
    assert.equal(snap.digest, manifest.digest);
    assert.equal(snap.lowerDirs.length, 3);
    assert.deepEqual(snap.lowerDirs, snap.chainIds.map((c) => join(snapshotsDir(), dirName(c), 'fs')).reverse());
    // Each lower dir holds only its own layer's files.
    assert.deepEqual(await readdir(snap.lowerDirs[2]!), ['etc']);
    assert.deepEqual((await readdir(snap.lowerDirs[1]!)).sort(), ['app']);
    assert.deepEqual(await readdir(join(snap.lowerDirs[1]!, 'app')), ['run.sh']);
    assert.equal(await readFile(join(snap.lowerDirs[0]!, 'app', 'config'), 'utf8'), 'top\n');
    assert.deepEqual(snap.config.config?.Cmd, ['/bin/sh']);
    const done = events.filter((e) => e.type === 'layer-done');
    assert.equal(done.length, 3);
    assert.ok(done.every((e) => e.type === 'layer-done' && !e.cached));
    assert.ok(events.some((e) => e.type === 'layer-progress'));
    const marker = JSON.parse(await readFile(join(snapshotsDir(), dirName(snap.chainIds[1]!), 'snapshot.json'), 'utf8'));
    assert.equal(marker.chainId, snap.chainIds[1]);
    assert.equal(marker.parent, snap.chainIds[0]);

    const again: SnapshotProgress[] = [];
    await store.snapshot('snap:1', { onProgress: (e) => again.push(e) });
    const doneAgain = again.filter((e) => e.type === 'layer-done');
    assert.equal(doneAgain.length, 3);
    assert.ok(doneAgain.every((e) => e.type === 'layer-done' && e.cached));
  });

  it('shares snapshots between images with a common base', async () => {
    const before = await readdir(snapshotsDir());
    const { manifest } = await putSyntheticImage(store, [
      { 'etc/': { type: 'dir' }, 'etc/os-release': 'base\n' },
      { 'other.txt': 'other' },
    ]);
    const snap = await store.snapshot(manifest.digest);
    const added = (await readdir(snapshotsDir())).filter((n) => !before.includes(n));
    assert.deepEqual(added, [dirName(snap.chainIds[1]!)]);
  });

  // `platform` is taken in the same forms everywhere (pull, push, export, snapshot): a
  // string was passed on as if it were an object, and no manifest ever matched it.
  it('snapshot() takes the platform as a string or an object, and refuses a malformed one', async () => {
    const { manifest } = await putSyntheticImage(store, [{ 'plat.txt': 'p' }]);
    const host = hostPlatform();
    const byString = await store.snapshot(manifest.digest, { platform: `${host.os}/${host.architecture}` });
    const byObject = await store.snapshot(manifest.digest, { platform: host });
    assert.deepEqual(byString, byObject);
    await assert.rejects(store.snapshot(manifest.digest, { platform: 'linux//x' }), InvalidArgumentError);
  });

  // Cheap means it reads no blob, which a run from an image would pay on every start:
  // checked by taking the blobs away (a timing would flake on a loaded machine).
  it('snapshotPaths is undefined until unpacked, then answers without reading a blob', async () => {
    const { manifest } = await putSyntheticImage(store, [{ 'fast.txt': 'fast' }, { 'fast2.txt': 'fast2' }]);
    await store.tag(manifest.digest, 'fast:1');
    assert.equal(await store.snapshotPaths('fast:1'), undefined);
    const snap = await store.snapshot('fast:1');
    const details = await store.inspect('fast:1');
    await rm(store.blobPath(details.configDigest));
    await rm(store.blobPath(manifest.digest));
    const fresh = await ImageStore.open({ root: store.root });
    assert.deepEqual(await fresh.snapshotPaths('fast:1'), snap);
    assert.deepEqual(await fresh.snapshotPaths(manifest.digest), snap);
    await store.untag('fast:1');
  });

  // Callers used to write `(await snapshotPaths(x)) ?? (await snapshot(x))`: snapshot() must itself skip
  // every blob read for an image already unpacked.
  it('snapshot() of an image already unpacked takes the fast path and reads no blob', async () => {
    const { manifest } = await putSyntheticImage(store, [{ 'quick.txt': 'quick' }]);
    await store.tag(manifest.digest, 'quick:1');
    const snap = await store.snapshot('quick:1');
    const details = await store.inspect('quick:1');
    // With its manifest and config blobs gone, only the fast path can answer.
    await rm(store.blobPath(details.configDigest));
    await rm(store.blobPath(manifest.digest));
    const fresh = await ImageStore.open({ root: store.root });
    assert.deepEqual(await fresh.snapshot('quick:1'), snap);
    await store.untag('quick:1');
  });

  it('does the work once for concurrent requests of the same layers', async () => {
    const { manifest } = await putSyntheticImage(store, [{ 'c1.txt': 'c'.repeat(100_000) }, { 'c2.txt': 'd' }]);
    const done: boolean[][] = [[], [], []];
    await Promise.all(
      [0, 1, 2].map((k) =>
        store.snapshot(manifest.digest, {
          onProgress: (e) => {
            if (e.type === 'layer-done') done[k]!.push(e.cached);
          },
        }),
      ),
    );
    // Joined waiters see the shared unpack as theirs (not cached); a second unpack would have found the marker.
    assert.deepEqual(done, [[false, false], [false, false], [false, false]]);
    const tmp = (await readdir(snapshotsDir())).filter((n) => n.startsWith('tmp-'));
    assert.deepEqual(tmp, []);
  });

  it('refuses a layer whose tar does not match the diffID, keeping nothing', async () => {
    const layer = await buildLayer({ 'evil.txt': 'not what the config says' });
    const other = await buildLayer({ 'good.txt': 'claimed' });
    const descriptor = await store.putBlob(layer.gz, { mediaType: GZIP_LAYER });
    const manifest = await store.putImage({
      config: { architecture: process.arch === 'x64' ? 'amd64' : process.arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] } },
      layers: [{ descriptor, diffId: other.diffId }],
    });
    const before = await readdir(snapshotsDir());
    await assert.rejects(store.snapshot(manifest.digest), (err) => {
      assert.ok(err instanceof DigestMismatchError, String(err));
      assert.equal(err.expected, other.diffId);
      assert.equal(err.actual, layer.diffId);
      return true;
    });
    assert.deepEqual((await readdir(snapshotsDir())).sort(), before.sort());
  });

  // The blob's own digest is the only check that catches a substituted blob whose tar is intact.
  it('refuses a layer blob that does not match its digest, keeping nothing', async () => {
    const { manifest, layers } = await putSyntheticImage(store, [{ 'corrupt.txt': 'x'.repeat(5000) }]);
    const { writeFile } = await import('node:fs/promises');
    const { gzipSync } = await import('node:zlib');
    await writeFile(store.blobPath(layers[0]!.digest), gzipSync(layers[0]!.tar, { level: 1 }));
    const before = await readdir(snapshotsDir());
    await assert.rejects(store.snapshot(manifest.digest), (err) => {
      assert.ok(err instanceof DigestMismatchError, String(err));
      assert.equal(err.expected, layers[0]!.digest);
      return true;
    });
    assert.deepEqual((await readdir(snapshotsDir())).sort(), before.sort());
  });

  for (const [name, corrupt] of Object.entries(CORRUPTIONS)) {
    // Corrupt bytes break gunzip long before the blob's end, where its digest is checked: the digest must still decide.
    it(`reports a stored layer blob with ${name} as a digest mismatch, not a gzip error`, async () => {
      const { manifest, layers } = await putSyntheticImage(store, [bigLayerEntries()]);
      const path = store.blobPath(layers[0]!.digest);
      await writeFile(path, corrupt(await readFile(path)));
      const before = await readdir(snapshotsDir());
      await assert.rejects(store.snapshot(manifest.digest), (err) => {
        assert.ok(err instanceof DigestMismatchError, String(err));
        assert.equal(err.expected, layers[0]!.digest);
        return true;
      });
      assert.deepEqual((await readdir(snapshotsDir())).sort(), before.sort());
    });
  }

  // Same corruption as above, but in a plain tar whose header checksum breaks first.
  it('reports a stored uncompressed layer blob with a damaged tar header as a digest mismatch', async () => {
    const layer = await buildLayer(bigLayerEntries());
    const damaged = Buffer.from(layer.tar);
    damaged[600]! ^= 0xff;
    const descriptor = await store.putBlob(layer.tar, { mediaType: TAR_LAYER });
    const manifest = await store.putImage({
      config: { architecture: process.arch === 'x64' ? 'amd64' : process.arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] } },
      layers: [{ descriptor, diffId: layer.diffId }],
    });
    await writeFile(store.blobPath(descriptor.digest), damaged);
    await assert.rejects(store.snapshot(manifest.digest), (err) => {
      assert.ok(err instanceof DigestMismatchError, String(err));
      assert.equal(err.expected, descriptor.digest);
      assert.ok(err.cause instanceof InvalidArgumentError, String(err.cause));
      return true;
    });
  });

  // The other side of the rule: bytes that match their digest but are no valid gzip are a bad layer, not a corrupt blob.
  it('reports a blob that matches its digest but is no valid gzip as an invalid argument', async () => {
    const layer = await buildLayer(bigLayerEntries());
    const bad = Buffer.from(layer.gz);
    bad[12]! ^= 0xff;
    const descriptor = await store.putBlob(bad, { mediaType: GZIP_LAYER });
    const manifest = await store.putImage({
      config: { architecture: process.arch === 'x64' ? 'amd64' : process.arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] } },
      layers: [{ descriptor, diffId: layer.diffId }],
    });
    await assert.rejects(store.snapshot(manifest.digest), (err) => {
      assert.ok(err instanceof InvalidArgumentError && !(err instanceof DigestMismatchError), String(err));
      return true;
    });
  });

  it('aborts through its signal and leaves nothing', async () => {
    const { manifest } = await putSyntheticImage(store, [{ 'big.bin': 'z'.repeat(4 << 20) }]);
    const controller = new AbortController();
    const before = await readdir(snapshotsDir());
    const pending = store.snapshot(manifest.digest, {
      signal: controller.signal,
      onProgress: (e) => {
        if (e.type === 'layer-start') controller.abort();
      },
    });
    await assert.rejects(pending, AbortError);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual((await readdir(snapshotsDir())).sort(), before.sort());
  });
});
