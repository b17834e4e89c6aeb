import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DigestMismatchError } from '../../src/errors.js';
import { ImageStore } from '../../src/image-store.js';
import { buildLayer, GZIP_LAYER } from '../fixtures/store-images.js';

type Algorithm = 'sha256' | 'sha512';

function digestOf(bytes: Buffer, algorithm: Algorithm): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/**
 * A registry that serves fixed content, read-only: Debian's docker-registry
 * refuses manifests named by sha512 (`PUT …/manifests/sha512:…` is
 * DIGEST_INVALID), so this one holds them by whatever digest it is given.
 */
async function fakeRegistry(content: Map<string, { bytes: Buffer; type: string }>): Promise<{ host: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/v2/') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    const match = /^\/v2\/.+\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    const item = match === null ? undefined : content.get(match[2]!);
    if (item === undefined || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"BLOB_UNKNOWN","message":"unknown"}]}');
      return;
    }
    const headers: Record<string, string | number> = { 'content-type': item.type, 'docker-content-digest': match![2]! };
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = range === null ? 0 : Number(range[1]);
    const body = item.bytes.subarray(start);
    headers['content-length'] = body.length;
    if (range !== null) headers['content-range'] = `bytes ${start}-${item.bytes.length - 1}/${item.bytes.length}`;
    res.writeHead(range === null ? 200 : 206, headers).end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('pull by a sha512 digest', () => {
  let dir: string;
  let registry: Awaited<ReturnType<typeof fakeRegistry>>;
  let manifestDigest: string;
  let wrongDigest: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-pull-sha512-'));
    const content = new Map<string, { bytes: Buffer; type: string }>();
    const put = (bytes: Buffer, type: string, algorithm: Algorithm) => {
      const digest = digestOf(bytes, algorithm);
      content.set(digest, { bytes, type });
      return { mediaType: type, digest, size: bytes.length };
    };
    const base = await buildLayer({ 'etc/': { type: 'dir' }, 'etc/base': 'base\n' });
    const top = await buildLayer({ 'etc/top': 'top\n' });
    const config = Buffer.from(
      JSON.stringify({
        architecture: process.arch === 'x64' ? 'amd64' : process.arch,
        os: 'linux',
        config: { Cmd: ['/bin/sh'] },
        rootfs: { type: 'layers', diff_ids: [base.diffId, top.diffId] },
      }),
    );
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: put(config, 'application/vnd.oci.image.config.v1+json', 'sha512'),
        layers: [put(base.gz, GZIP_LAYER, 'sha256'), put(top.gz, GZIP_LAYER, 'sha512')],
      }),
    );
    manifestDigest = put(manifest, 'application/vnd.oci.image.manifest.v1+json', 'sha512').digest;
    // A registry that serves other bytes than the sha512 digest asked for.
    wrongDigest = digestOf(Buffer.concat([manifest, Buffer.from(' ')]), 'sha512');
    content.set(wrongDigest, content.get(manifestDigest)!);
    registry = await fakeRegistry(content);
  });
  after(async () => {
    await registry?.close();
    await rm(dir, { recursive: true, force: true });
  });

  // OCI allows sha512 digests: a pull by one must keep it, not rename the image to the sha256 of its bytes.
  it('stores, leases and reports the sha512 digest it was asked for', async () => {
    const store = await ImageStore.open({ root: join(dir, 'store') });
    const reference = `${registry.host}/team/app@${manifestDigest}`;
    const result = await store.pull(reference);
    assert.equal(result.digest, manifestDigest);
    assert.equal(result.manifest.digest, manifestDigest);
    assert.equal(result.reference, reference);

    const hex = manifestDigest.slice('sha512:'.length);
    const blobPath = join(store.root, 'blobs', 'sha512', hex);
    assert.equal(store.blobPath(manifestDigest), blobPath);
    assert.equal(digestOf(await readFile(blobPath), 'sha512'), manifestDigest);
    assert.equal(await store.hasBlob(digestOf(await readFile(blobPath), 'sha256')), false);

    const leases = await store.leases();
    assert.deepEqual(
      leases.map((l) => [l.id, l.digests]),
      [[`pull-sha512-${hex}`, [manifestDigest]]],
    );

    const snap = await store.snapshot(manifestDigest);
    assert.equal(snap.digest, manifestDigest);
    assert.equal(await readFile(join(snap.lowerDirs[0]!, 'etc', 'top'), 'utf8'), 'top\n');
    assert.equal(await readFile(join(snap.lowerDirs[1]!, 'etc', 'base'), 'utf8'), 'base\n');
    assert.deepEqual(await store.check(), []);

    // The lease keeps the sha512 manifest and what it names, and its fast-path record.
    const gc = await store.gc({ gracePeriodMs: 0 });
    assert.deepEqual([gc.blobs, gc.snapshots], [[], []]);
    assert.ok(existsSync(join(store.root, 'dockless', 'images', `${hex}.json`)));
    assert.deepEqual(await store.snapshotPaths(manifestDigest), snap);
  });

  it('verifies the manifest against the sha512 digest asked for', async () => {
    const store = await ImageStore.open({ root: join(dir, 'wrong') });
    await assert.rejects(store.pull(`${registry.host}/team/app@${wrongDigest}`), (err: unknown) => {
      assert.ok(err instanceof DigestMismatchError, String(err));
      assert.equal(err.expected, wrongDigest);
      assert.equal(err.actual, manifestDigest);
      return true;
    });
    assert.deepEqual(await store.leases(), []);
  });
});
