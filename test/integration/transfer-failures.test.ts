/**
 * Pulls that fail: the registry down, a manifest it does not have, a blob
 * tampered with on its disk, connections cut mid-layer. Each is a typed
 * error, and the store is left as it was.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DigestMismatchError, InvalidArgumentError, NotFoundError, UnavailableError } from '../../src/errors.js';
import { ImageStore } from '../../src/image-store.js';
import type { PullProgress } from '../../src/transfer/types.js';
import { CORRUPTIONS, putSyntheticImage, type BuiltLayer } from '../fixtures/store-images.js';
import { freePort, registryMissing, startCuttingProxy, startRegistry, storeState, type RegistryFixture } from '../fixtures/registry.js';

describe('pull failures', async () => {
  const missing = await registryMissing();
  if (missing) console.log(`# skipping registry failure tests: ${missing}`);

  let registry: RegistryFixture;
  let dir: string;
  let layers: BuiltLayer[];
  let fresh: () => Promise<ImageStore>;

  before(async () => {
    if (missing) return;
    registry = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), 'dockless-transfer-fail-'));
    const source = await ImageStore.open({ root: join(dir, 'source') });
    // Random content, so the gzip layer is about as large as the file: big enough to cut mid-way.
    const built = await putSyntheticImage(source, [
      { 'etc/': { type: 'dir' }, 'etc/hello': 'hello\n' },
      { 'data/': { type: 'dir' }, 'data/blob': randomBytes(600_000).toString('base64') },
    ]);
    layers = built.layers;
    await source.tag(built.manifest.digest, 'local/app:1');
    await source.push('local/app:1', { to: `${registry.host}/fail/app:1` });
    let n = 0;
    fresh = () => ImageStore.open({ root: join(dir, `store-${n++}`) });
  });
  after(async () => {
    await registry?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('names the registry when it is down', { skip: missing }, async () => {
    const port = await freePort();
    const store = await fresh();
    const before = await storeState(store);
    const started = Date.now();
    await assert.rejects(store.pull(`127.0.0.1:${port}/app:1`), (err: unknown) => {
      assert.ok(err instanceof UnavailableError, String(err));
      assert.equal(err.registry, `127.0.0.1:${port}`);
      assert.match(err.message, new RegExp(`^pull 127\\.0\\.0\\.1:${port}/app:1: registry 127\\.0\\.0\\.1:${port} is unreachable: .*ECONNREFUSED`));
      return true;
    });
    // Retried with backoff, but not for long.
    assert.ok(Date.now() - started < 10_000);
    assert.equal(await storeState(store), before);
  });

  it('reports a manifest the registry does not have as not found', { skip: missing }, async () => {
    const store = await fresh();
    await assert.rejects(store.pull(`${registry.host}/fail/app:nope`), (err: unknown) => {
      assert.ok(err instanceof NotFoundError, String(err));
      assert.match(err.message, /manifest fail\/app:nope: not found on registry 127\.0\.0\.1:\d+ \(MANIFEST_UNKNOWN/);
      return true;
    });
    await assert.rejects(store.pull(`${registry.host}/no/such/repo:1`), NotFoundError);
  });

  it('rejects a blob tampered with on the registry\'s disk, leaving the store unchanged', { skip: missing }, async () => {
    const target = layers[1]!;
    const path = registry.blobPath(target.digest);
    const original = await readFile(path);
    const tampered = Buffer.from(original);
    // Same size, one byte changed in the middle: only the digest can tell.
    tampered[tampered.length >> 1] ^= 0xff;
    await writeFile(path, tampered);
    try {
      const store = await fresh();
      const before = await storeState(store);
      await assert.rejects(store.pull(`${registry.host}/fail/app:1`), (err: unknown) => {
        assert.ok(err instanceof DigestMismatchError, `${String(err)}`);
        assert.equal(err.expected, target.digest);
        return true;
      });
      assert.equal(await storeState(store), before);
      assert.deepEqual(await store.check(), []);
    } finally {
      await writeFile(path, original);
    }
  });

  for (const [name, corrupt] of Object.entries(CORRUPTIONS)) {
    if (name === 'its second half cut off') continue; // the next test: the registry then sends fewer bytes than the manifest says
    // The layer is unpacked as it downloads, and corrupt bytes break gunzip before the digest is known: the digest must still decide, with the gzip error as its cause.
    it(`rejects a layer blob with ${name} on the registry's disk as a digest mismatch caused by the unpack failure`, { skip: missing }, async () => {
      const target = layers[1]!;
      const path = registry.blobPath(target.digest);
      const original = await readFile(path);
      await writeFile(path, corrupt(original));
      try {
        const store = await fresh();
        const before = await storeState(store);
        await assert.rejects(store.pull(`${registry.host}/fail/app:1`), (err: unknown) => {
          assert.ok(err instanceof DigestMismatchError, String(err));
          assert.equal(err.expected, target.digest);
          assert.ok(err.cause instanceof InvalidArgumentError, String(err.cause));
          return true;
        });
        assert.equal(await storeState(store), before);
      } finally {
        await writeFile(path, original);
      }
    });
  }

  it('rejects a blob truncated on the registry\'s disk as a size mismatch, leaving the store unchanged', { skip: missing }, async () => {
    const target = layers[1]!;
    const path = registry.blobPath(target.digest);
    const original = await readFile(path);
    await writeFile(path, original.subarray(0, original.length - 1000));
    try {
      const store = await fresh();
      const before = await storeState(store);
      await assert.rejects(store.pull(`${registry.host}/fail/app:1`), (err: unknown) => {
        assert.ok(err instanceof DigestMismatchError, `${String(err)}`);
        assert.match(err.message, /size mismatch: registry 127\.0\.0\.1:\d+ sends \d+ bytes, the manifest says \d+/);
        return true;
      });
      assert.equal(await storeState(store), before);
    } finally {
      await writeFile(path, original);
    }
  });

  it('resumes a layer download cut mid-way with a Range request', { skip: missing }, async () => {
    await using proxy = await startCuttingProxy({ port: registry.port });
    proxy.cut = { remaining: 1, afterBytes: 200_000 };
    const store = await fresh();
    const events: PullProgress[] = [];
    // Layers one at a time, so that the cut falls in the big one.
    const pulled = await store.pull(`${proxy.host}/fail/app:1`, { concurrency: 1, onProgress: (e) => events.push(e) });
    assert.equal(await store.hasBlob(layers[1]!.digest), true);
    assert.ok(events.some((e) => e.type === 'layer' && e.state === 'retrying'), 'a retry was reported');
    const ranged = proxy.requests.filter((r) => / range=bytes=\d+-$/.test(r));
    assert.equal(ranged.length, 1, proxy.requests.join('\n'));
    const from = Number(/range=bytes=(\d+)-/.exec(ranged[0]!)![1]);
    assert.ok(from > 0 && from < layers[1]!.gz.length, `resumed from ${from}`);
    assert.deepEqual(await store.check(), []);
    const snap = await store.snapshot(pulled.tag!);
    assert.equal((await readFile(join(snap.lowerDirs[0]!, 'data', 'blob'), 'utf8')).length, 800_000);
  });

  it('fails cleanly when the connection keeps being cut and the registry stays away', { skip: missing }, async () => {
    await using proxy = await startCuttingProxy({ port: registry.port });
    const store = await fresh();
    const before = await storeState(store);
    proxy.cut = { remaining: Infinity, afterBytes: 100_000 };
    let cuts = 0;
    await assert.rejects(
      store.pull(`${proxy.host}/fail/app:1`, {
        concurrency: 1,
        onProgress: (e) => {
          // After the first cut, the registry is gone for good.
          if (e.type === 'layer' && e.state === 'retrying' && ++cuts === 1) proxy.refuseAll = true;
        },
      }),
      (err: unknown) => {
        assert.ok(err instanceof UnavailableError, String(err));
        assert.match(err.message, new RegExp(`registry ${proxy.host.replace(/\./g, '\\.')} is unreachable \\(blob `));
        return true;
      },
    );
    assert.equal(await storeState(store), before);
  });
});
