import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DigestMismatchError } from '../../src/errors.js';
import { ImageStore } from '../../src/image-store.js';
import type { Descriptor } from '../../src/oci/types.js';
import { exportImage, importImage } from '../../src/transfer/archive/index.js';
import { putSyntheticImage, type BuiltLayer } from '../fixtures/store-images.js';

describe('OCI layout import: one pass, blobs linked', () => {
  let dir: string;
  let source: ImageStore;
  let image: Descriptor;
  let layers: BuiltLayer[];
  let n = 0;
  const freshStore = (): Promise<ImageStore> => ImageStore.open({ root: join(dir, `store-${n++}`) });
  const layout = async (): Promise<string> => {
    const out = join(dir, `layout-${n++}`);
    await exportImage(source, 'app:1', out, { format: 'oci' });
    return out;
  };
  const layoutBlob = (out: string, digest: string): string => join(out, 'blobs', 'sha256', digest.slice(7));
  const storeBlob = (store: ImageStore, digest: string): string => join(store.root, 'blobs', 'sha256', digest.slice(7));
  const markers = async (store: ImageStore): Promise<string[]> => {
    const snapshots = join(store.root, 'dockless', 'snapshots');
    const names = await readdir(snapshots).catch(() => [] as string[]);
    const found: string[] = [];
    for (const name of names) {
      if (await stat(join(snapshots, name, 'snapshot.json')).then(() => true, () => false)) found.push(name);
    }
    return found;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-layout-link-'));
    source = await ImageStore.open({ root: join(dir, 'source') });
    ({ manifest: image, layers } = await putSyntheticImage(source, [
      { 'etc/': { type: 'dir' }, 'etc/os-release': 'ID=test\n', 'bin/': { type: 'dir' }, 'bin/tool': 'x' },
      { 'etc/extra': 'more' },
    ]));
    await source.tag(image.digest, 'app:1');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  // A layout's blobs were copied (and fsynced) into the store, then read a second time to unpack them.
  it('hard-links the blobs of a layout on the same filesystem and unpacks its layers during the import', async () => {
    const out = await layout();
    const store = await freshStore();
    await importImage(store, out);
    for (const layer of layers) {
      const [a, b] = await Promise.all([stat(layoutBlob(out, layer.digest)), stat(storeBlob(store, layer.digest))]);
      assert.equal(b.ino, a.ino, `layer ${layer.digest} is linked, not copied`);
    }
    assert.equal((await markers(store)).length, layers.length, 'every layer was unpacked by the import');
    const snap = await store.snapshot('app:1');
    assert.equal(snap.lowerDirs.length, layers.length);
    assert.equal(await readFile(join(snap.lowerDirs.at(-1)!, 'etc', 'os-release'), 'utf8'), 'ID=test\n');
  });

  it('copies instead with link: false', async () => {
    const out = await layout();
    const store = await freshStore();
    await importImage(store, out, { link: false });
    const [a, b] = await Promise.all([stat(layoutBlob(out, layers[0]!.digest)), stat(storeBlob(store, layers[0]!.digest))]);
    assert.notEqual(b.ino, a.ino);
    assert.equal((await markers(store)).length, layers.length);
  });

  // Whoever may write the layout's file could change the store's blob through a shared inode.
  it('copies a blob that others may write rather than linking it', async () => {
    const out = await layout();
    await chmod(layoutBlob(out, layers[0]!.digest), 0o666);
    const store = await freshStore();
    await importImage(store, out);
    const [a, b] = await Promise.all([stat(layoutBlob(out, layers[0]!.digest)), stat(storeBlob(store, layers[0]!.digest))]);
    assert.notEqual(b.ino, a.ino);
  });

  // Unpacking as it reads must not unpack, for nothing, the layers of an image this host cannot run.
  it('does not unpack the layers of an index entry for another platform', async () => {
    const out = await layout();
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: Array<Record<string, unknown>> };
    const entry: Record<string, unknown> = { ...index.manifests[0]!, platform: { os: 'linux', architecture: 's390x' } };
    delete entry['annotations'];
    const nested = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [entry] }));
    const hex = createHash('sha256').update(nested).digest('hex');
    await writeFile(join(out, 'blobs', 'sha256', hex), nested);
    index.manifests = [
      { mediaType: 'application/vnd.oci.image.index.v1+json', digest: `sha256:${hex}`, size: nested.length, annotations: { 'org.opencontainers.image.ref.name': 'docker.io/library/app:s390x' } },
    ];
    await writeFile(join(out, 'index.json'), JSON.stringify(index));
    const store = await freshStore();
    await importImage(store, out);
    assert.ok(await stat(storeBlob(store, layers[0]!.digest)), 'the blobs are imported');
    assert.deepEqual(await markers(store), []);
  });

  // The store's blob shares the layout file's inode: a rewrite in place after the import changes it too.
  // What was unpacked was verified, and every later read of the blob verifies it again.
  it('catches a linked layout blob rewritten in place after the import, and keeps the snapshot it unpacked', async () => {
    const out = await layout();
    const store = await freshStore();
    await importImage(store, out);
    const top = layers.at(-1)!;
    const before = await store.snapshot('app:1');
    const handle = await open(layoutBlob(out, top.digest), 'r+');
    try {
      await handle.write(Buffer.from('tampered'), 0, 8, 100);
    } finally {
      await handle.close();
    }
    assert.equal((await stat(storeBlob(store, top.digest))).ino, (await stat(layoutBlob(out, top.digest))).ino);
    const problems = await store.check();
    assert.ok(
      problems.some((p) => p.digest === top.digest),
      `check reports the changed blob: ${JSON.stringify(problems)}`,
    );
    await assert.rejects(exportImage(store, 'app:1', join(dir, `export-${n++}`), { format: 'oci' }), (err: unknown) => {
      assert.ok(err instanceof DigestMismatchError, String(err));
      return true;
    });
    const after = await store.snapshot('app:1');
    assert.deepEqual(after.lowerDirs, before.lowerDirs);
    assert.equal(await readFile(join(after.lowerDirs[0]!, 'etc', 'extra'), 'utf8'), 'more');
  });

  // A link puts the layout's file into the store before it is verified: a corrupt one must leave no trace.
  it('refuses a corrupt linked blob with DigestMismatchError and leaves nothing half-written', async () => {
    const out = await layout();
    const file = layoutBlob(out, layers[1]!.digest);
    const bytes = await readFile(file);
    bytes[bytes.length - 20] ^= 0xff;
    await writeFile(file, bytes);
    const store = await freshStore();
    await assert.rejects(importImage(store, out), (err: unknown) => {
      assert.ok(err instanceof DigestMismatchError, String(err));
      assert.equal(err.expected, layers[1]!.digest);
      return true;
    });
    await assert.rejects(stat(storeBlob(store, layers[1]!.digest)), { code: 'ENOENT' });
    assert.deepEqual(await readdir(join(store.root, 'dockless', 'ingest')), []);
    const snapshots = await readdir(join(store.root, 'dockless', 'snapshots'));
    assert.deepEqual(snapshots.filter((s) => s.startsWith('tmp-')), []);
    assert.equal((await markers(store)).length, 1, 'only the sound layer below is unpacked');
    assert.equal((await stat(file)).nlink, 1, 'the layout keeps its file, unshared');
    assert.deepEqual(await store.list(), []);
  });
});
