import assert from 'node:assert/strict';
import { lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { readXattrs } from '../../src/helper/index.js';
import { ImageStore } from '../../src/image-store.js';
import type { ImageSnapshot, SnapshotProgress } from '../../src/store/index.js';
import { GZIP_LAYER, sha256 } from '../fixtures/store-images.js';
import { cannotRun } from '../fixtures/world.js';

const skip = cannotRun();
if (skip !== undefined) console.log(`# skipping snapshot variant tests: ${skip}`);

interface TarEntry {
  name: string;
  type?: 'file' | 'directory' | 'character-device';
  uid?: number;
  mode?: number;
  content?: string;
  devmajor?: number;
  devminor?: number;
}

async function gzTar(entries: TarEntry[]): Promise<{ gz: Buffer; diffId: `sha256:${string}` }> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  const mtime = new Date('2024-01-01T00:00:00Z');
  for (const e of entries) {
    const { content, uid = 0, ...header } = e;
    pack.entry({ mode: 0o755, uid, gid: uid, mtime, ...header }, content ?? '');
  }
  pack.finalize();
  await ended;
  const raw = Buffer.concat(chunks);
  return { gz: gzipSync(raw), diffId: sha256(raw) };
}

/** A base layer with a file of another owner and a device node, and a top layer that makes `data` opaque. */
async function putVariantImage(store: ImageStore): Promise<string> {
  const base = await gzTar([
    { name: 'data/', type: 'directory' },
    { name: 'data/old', content: 'old\n', mode: 0o644 },
    { name: 'secret', content: 'x\n', mode: 0o600, uid: 1234 },
    { name: 'dev/', type: 'directory' },
    { name: 'dev/null', type: 'character-device', mode: 0o666, devmajor: 1, devminor: 3 },
  ]);
  const top = await gzTar([
    { name: 'data/', type: 'directory' },
    { name: 'data/.wh..wh..opq', mode: 0o644 },
    { name: 'data/new', content: 'new\n', mode: 0o644 },
  ]);
  const layers = [];
  for (const layer of [base, top]) {
    const descriptor = await store.putBlob(layer.gz, { mediaType: GZIP_LAYER });
    layers.push({ descriptor, diffId: layer.diffId });
  }
  const image = await store.putImage({
    config: {
      architecture: process.arch === 'x64' ? 'amd64' : process.arch,
      os: 'linux',
      config: { Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: [] },
    },
    layers,
  });
  return image.digest;
}

async function opaqueXattrs(lowerDir: string): Promise<string[]> {
  const names = (await readXattrs(lowerDir, ['data'])).get('data');
  return [...(names?.keys() ?? [])].filter((n) => n.endsWith('overlay.opaque')).sort();
}

/** Checks that `snap` was unpacked as `variant` asks: owners and devices as root, none as rootless. */
async function assertVariant(snap: ImageSnapshot, variant: 'root' | 'rootless'): Promise<void> {
  const [top, base] = snap.lowerDirs as [string, string];
  const secret = await lstat(join(base, 'secret'));
  const devices = await readdir(join(base, 'dev'));
  if (variant === 'root') {
    assert.equal(secret.uid, 1234);
    assert.equal(secret.gid, 1234);
    assert.deepEqual(devices, ['null']);
    assert.deepEqual(await opaqueXattrs(top), ['trusted.overlay.opaque']);
    assert.ok(!top.includes('-rootless'), top);
  } else {
    assert.equal(secret.uid, process.getuid!());
    assert.equal(secret.gid, process.getgid!());
    assert.deepEqual(devices, []);
    assert.deepEqual(await opaqueXattrs(top), ['user.overlay.opaque']);
    assert.ok(top.includes('-rootless'), top);
  }
}

describe('snapshot variants', { skip }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-store-variants-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const [first, second] of [['root', 'rootless'], ['rootless', 'root']] as const) {
    // A root overlay ignores user.overlay.* and a rootless caller cannot use root-owned files: a snapshot of one unpack mode must never serve the other.
    it(`a ${second} snapshot never reuses the ${first} snapshot of the same chainID`, async () => {
      const store = await ImageStore.open({ root: join(dir, `${first}-first`) });
      const digest = await putVariantImage(store);
      const cachedOf = (events: SnapshotProgress[]): boolean[] =>
        events.flatMap((e) => (e.type === 'layer-done' ? [e.cached] : []));

      const firstEvents: SnapshotProgress[] = [];
      const a = await store.snapshot(digest, { rootless: first === 'rootless', onProgress: (e) => firstEvents.push(e) });
      assert.deepEqual(cachedOf(firstEvents), [false, false]);
      await assertVariant(a, first);
      assert.equal(await store.ingest({ rootless: second === 'rootless' }).hasSnapshot(a.chainIds[0]!), false);
      assert.equal(await store.snapshotPaths(digest, { rootless: second === 'rootless' }), undefined);

      const secondEvents: SnapshotProgress[] = [];
      const b = await store.snapshot(digest, { rootless: second === 'rootless', onProgress: (e) => secondEvents.push(e) });
      assert.deepEqual(cachedOf(secondEvents), [false, false]);
      await assertVariant(b, second);
      assert.deepEqual(b.chainIds, a.chainIds);
      for (const lower of b.lowerDirs) assert.ok(!a.lowerDirs.includes(lower), lower);

      // Each lookup finds its own variant again.
      assert.deepEqual(await store.snapshotPaths(digest, { rootless: first === 'rootless' }), a);
      assert.deepEqual(await store.snapshotPaths(digest, { rootless: second === 'rootless' }), b);
      assert.equal(await store.ingest({ rootless: second === 'rootless' }).hasSnapshot(a.chainIds[0]!), true);
      assert.deepEqual(await store.check(), []);

      // GC counts both variants as the chainID's: held, both stay; unreferenced, both go.
      await store.lease('variants', [digest]);
      assert.deepEqual((await store.gc({ gracePeriodMs: 0 })).snapshots, []);
      await store.releaseLease('variants');
      const { snapshots } = await store.gc({ gracePeriodMs: 0 });
      assert.deepEqual([...snapshots].sort(), [...a.chainIds, ...a.chainIds].sort());
      assert.deepEqual(await readdir(join(store.root, 'dockless', 'snapshots')), []);
    });
  }

  // An unpack with a user namespace's maps gives files the host ids of those maps: neither a root nor a
  // rootless snapshot, nor one of other maps, may stand for it (the same host id is another owner inside).
  it('a userns snapshot is its maps\' own: never the root snapshot, nor one of other maps', async () => {
    const store = await ImageStore.open({ root: join(dir, 'userns') });
    const digest = await putVariantImage(store);
    const maps = (sub: number) => {
      const m = [{ containerId: 0, hostId: 0, size: 1 }, { containerId: 1, hostId: sub, size: 65536 }];
      return { uidMap: m, gidMap: m };
    };
    const root = await store.snapshot(digest);
    const a = await store.snapshot(digest, { userns: maps(1_700_000_000) });
    const b = await store.snapshot(digest, { userns: maps(1_800_000_000) });
    for (const [snap, sub] of [[a, 1_700_000_000], [b, 1_800_000_000]] as const) {
      const [top, base] = snap.lowerDirs as [string, string];
      assert.match(top, /-userns-[0-9a-f]{16}\/fs$/);
      const secret = await lstat(join(base, 'secret'));
      assert.deepEqual([secret.uid, secret.gid, secret.mode & 0o7777], [sub + 1233, sub + 1233, 0o600]);
      assert.equal((await lstat(join(base, 'data', 'old'))).uid, 0);
      assert.deepEqual(await readdir(join(base, 'dev')), []);
      assert.deepEqual(await opaqueXattrs(top), ['user.overlay.opaque']);
      for (const lower of snap.lowerDirs) assert.ok(!root.lowerDirs.includes(lower), lower);
    }
    for (const lower of b.lowerDirs) assert.ok(!a.lowerDirs.includes(lower), lower);
    assert.deepEqual(await store.snapshotPaths(digest, { userns: maps(1_700_000_000) }), a);
    assert.deepEqual(await store.snapshotPaths(digest), root);
    assert.deepEqual(await store.check(), []);
    const { snapshots } = await store.gc({ gracePeriodMs: 0 });
    assert.equal(snapshots.length, 6);
    assert.deepEqual(await readdir(join(store.root, 'dockless', 'snapshots')), []);
  });
});
