import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AbortError, DigestMismatchError } from '../../src/errors.js';
import { ImageStore, type SnapshotProgress } from '../../src/store/index.js';
import { buildLayer, GZIP_LAYER, putSyntheticImage } from '../fixtures/store-images.js';

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

  it('snapshotPaths is undefined until unpacked, then cheap', async () => {
    const { manifest } = await putSyntheticImage(store, [{ 'fast.txt': 'fast' }, { 'fast2.txt': 'fast2' }]);
    await store.tag(manifest.digest, 'fast:1');
    assert.equal(await store.snapshotPaths('fast:1'), undefined);
    const snap = await store.snapshot('fast:1');
    const fresh = await ImageStore.open({ root: store.root });
    assert.deepEqual(await fresh.snapshotPaths('fast:1'), snap);
    assert.deepEqual(await fresh.snapshotPaths(manifest.digest), snap);
    const rounds = 200;
    const started = process.hrtime.bigint();
    for (let i = 0; i < rounds; i++) await fresh.snapshotPaths('fast:1');
    const perCallMs = Number(process.hrtime.bigint() - started) / 1e6 / rounds;
    assert.ok(perCallMs < 2, `snapshotPaths took ${perCallMs.toFixed(3)} ms per call`);
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
      config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } },
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
