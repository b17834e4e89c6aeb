import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImageStore } from '../../src/image-store.js';
import { buildLayer, GZIP_LAYER } from '../fixtures/store-images.js';

/** The blob cut into 64 KiB chunks, each a buffer of its own, as network reads are. */
const owned = (blob: Buffer): Buffer[] => {
  const chunks: Buffer[] = [];
  for (let at = 0; at < blob.byteLength; at += 64 * 1024) chunks.push(Buffer.from(blob.subarray(at, at + 64 * 1024)));
  return chunks;
};

describe('LayerIngest.write with owned chunks', () => {
  let dir: string;
  let store: ImageStore;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-ingest-owned-'));
    store = await ImageStore.open({ root: join(dir, 'store') });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const pull = async (ownedChunks: boolean): Promise<{ chunks: Buffer[]; content: string; layer: Awaited<ReturnType<typeof buildLayer>> }> => {
    const content = randomBytes(768 * 1024).toString('base64');
    const layer = await buildLayer({ 'big.txt': content });
    const chunks = owned(layer.gz);
    const session = store.ingest();
    const writer = await session.layer(
      { mediaType: GZIP_LAYER, digest: layer.digest, size: layer.gz.length },
      { snapshot: { chainId: layer.diffId, diffId: layer.diffId, parent: null } },
    );
    for (const chunk of chunks) await writer.write(chunk, ownedChunks);
    await writer.finish();
    await session.commit();
    return { chunks, content, layer };
  };

  it('frees each chunk once the blob is written and unpacked from it, and both are whole', async () => {
    const { chunks, content, layer } = await pull(true);
    assert.ok(chunks.length >= 10, `${chunks.length} chunks`);
    // The first chunks are joined to read the compression's magic bytes: a copy, so those stay.
    const freed = chunks.filter((chunk) => chunk.byteLength === 0).length;
    assert.ok(freed >= chunks.length - 2, `${freed} of ${chunks.length} chunks freed`);
    assert.equal((await readFile(join(store.root, 'blobs', 'sha256', layer.digest.slice(7)))).compare(layer.gz), 0);
    const snapshot = join(store.root, 'dockless', 'snapshots', `${layer.diffId.slice(7)}${process.getuid?.() === 0 ? '' : '-rootless'}`);
    assert.equal(await readFile(join(snapshot, 'fs', 'big.txt'), 'utf8'), content);
    assert.deepEqual(await store.check(), []);
  });

  it('leaves chunks the caller did not give away as they were', async () => {
    const { chunks } = await pull(false);
    assert.ok(chunks.every((chunk) => chunk.byteLength > 0));
  });
});
