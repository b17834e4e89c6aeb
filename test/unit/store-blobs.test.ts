import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { text } from 'node:stream/consumers';
import { AbortError, DigestMismatchError, InvalidArgumentError, NotFoundError } from '../../src/errors.js';
import { ImageStore } from '../../src/image-store.js';
import { sha256 } from '../fixtures/store-images.js';

describe('ImageStore blobs', () => {
  let dir: string;
  let store: ImageStore;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-store-blobs-'));
    store = await ImageStore.open({ root: join(dir, 'store') });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const ingestEmpty = async (): Promise<void> => {
    assert.deepEqual(await readdir(join(store.root, 'dockless', 'ingest')), []);
  };

  it('creates an OCI image layout', async () => {
    const names = await readdir(store.root);
    for (const n of ['oci-layout', 'index.json', 'blobs', 'dockless']) assert.ok(names.includes(n), n);
  });

  it('stores a buffer under its sha256 and reads it back verified', async () => {
    const desc = await store.putBlob(Buffer.from('hello'), { mediaType: 'text/plain' });
    assert.deepEqual(desc, { mediaType: 'text/plain', digest: sha256('hello'), size: 5 });
    assert.equal(await store.hasBlob(desc.digest), true);
    assert.equal(store.blobPath(desc.digest), join(store.root, 'blobs', 'sha256', desc.digest.slice(7)));
    assert.equal(await text(await store.getBlob(desc.digest)), 'hello');
    assert.equal((await store.readBlob(desc.digest)).toString(), 'hello');
    await ingestEmpty();
  });

  it('stores a stream, checking the expected digest and size', async () => {
    const data = Buffer.alloc(3 << 20, 7);
    const desc = await store.putBlob(Readable.from([data.subarray(0, 1 << 20), data.subarray(1 << 20)]), {
      digest: sha256(data),
      size: data.length,
    });
    assert.equal(desc.digest, sha256(data));
    assert.equal(desc.mediaType, 'application/octet-stream');
    await ingestEmpty();
  });

  it('is idempotent: storing existing content succeeds', async () => {
    const a = await store.putBlob('same');
    const b = await store.putBlob(Readable.from([Buffer.from('sa'), Buffer.from('me')]), { digest: a.digest });
    assert.deepEqual(a, b);
  });

  it('refuses content that does not match its digest, leaving nothing behind', async () => {
    const wrong = sha256('something else');
    await assert.rejects(store.putBlob(Readable.from([Buffer.from('payload')]), { digest: wrong }), (err) => {
      assert.ok(err instanceof DigestMismatchError);
      assert.equal(err.expected, wrong);
      assert.equal(err.actual, sha256('payload'));
      return true;
    });
    await assert.rejects(store.putBlob('payload', { digest: wrong }), DigestMismatchError);
    assert.equal(await store.hasBlob(wrong), false);
    assert.equal(await store.hasBlob(sha256('payload')), false);
    await ingestEmpty();
  });

  it('refuses content of the wrong size, stopping early when it is too long', async () => {
    await assert.rejects(store.putBlob(Readable.from([Buffer.from('12345')]), { size: 3 }), DigestMismatchError);
    await assert.rejects(store.putBlob(Buffer.from('12'), { size: 3 }), DigestMismatchError);
    await ingestEmpty();
  });

  it('refuses a malformed digest with InvalidArgumentError', async () => {
    await assert.rejects(store.putBlob('x', { digest: 'sha256:abc' }), InvalidArgumentError);
    await assert.rejects(store.getBlob('md5:abc'), InvalidArgumentError);
    assert.throws(() => store.blobPath('nope'), InvalidArgumentError);
  });

  it('reports a missing blob as NotFoundError', async () => {
    const missing = sha256('never stored');
    await assert.rejects(store.getBlob(missing), NotFoundError);
    await assert.rejects(store.readBlob(missing), NotFoundError);
    assert.equal(await store.hasBlob(missing), false);
  });

  it('fails the read stream at EOF when a stored blob was corrupted', async () => {
    const desc = await store.putBlob('original content');
    await writeFile(store.blobPath(desc.digest), 'tampered content');
    await assert.rejects(text(await store.getBlob(desc.digest)), DigestMismatchError);
    await assert.rejects(store.readBlob(desc.digest), DigestMismatchError);
  });

  it('stops on abort and stores nothing', async () => {
    const controller = new AbortController();
    async function* slow(): AsyncGenerator<Buffer> {
      yield Buffer.from('part one');
      controller.abort();
      yield Buffer.from('part two');
    }
    await assert.rejects(store.putBlob(slow(), { signal: controller.signal }), AbortError);
    assert.equal(await store.hasBlob(sha256('part onepart two')), false);
    await ingestEmpty();
  });
});
