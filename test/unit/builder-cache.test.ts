import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { BuildCache, cacheKey, canonicalJson, type CacheKeyInput } from '../../src/builder/cache.js';
import { DockerIgnore } from '../../src/builder/patterns.js';
import { ContextFs, expandSources, listSource, sourcesDigest } from '../../src/builder/source-fs.js';
import { NotFoundError } from '../../src/errors.js';
import { ImageStore } from '../../src/image-store.js';

const base: CacheKeyInput = {
  parent: 'image:sha256:' + 'a'.repeat(64),
  instruction: 'RUN /bin/sh -c make',
  options: { env: { A: '1' }, user: 'app' },
  args: { VERSION: '2' },
  content: 'sha256:' + 'b'.repeat(64),
  platform: 'linux/amd64',
};

describe('build cache keys', () => {
  it('are the SHA-256 of canonical JSON: stable, whatever the key order', () => {
    const key = cacheKey(base);
    assert.match(key, /^sha256:[0-9a-f]{64}$/);
    const reordered: CacheKeyInput = {
      platform: base.platform!,
      content: base.content!,
      args: { VERSION: '2' },
      options: { user: 'app', env: { A: '1' } },
      instruction: base.instruction,
      parent: base.parent,
    };
    assert.equal(cacheKey(reordered), key);
    assert.equal(canonicalJson({ b: 1, a: [1, { d: undefined, c: 'x' }], u: undefined }), '{"a":[1,{"c":"x"}],"b":1}');
  });

  it('change with every part they are made of', () => {
    const key = cacheKey(base);
    const variants: CacheKeyInput[] = [
      { ...base, parent: 'scratch' },
      { ...base, parent: 'sha256:' + 'c'.repeat(64) },
      { ...base, instruction: 'RUN /bin/sh -c make all' },
      { ...base, options: { env: { A: '2' }, user: 'app' } },
      { ...base, options: { env: { A: '1' } } },
      { ...base, args: { VERSION: '3' } },
      { ...base, args: {} },
      { ...base, content: 'sha256:' + 'd'.repeat(64) },
      { ...base, platform: 'linux/arm64' },
    ];
    const keys = new Set(variants.map(cacheKey));
    assert.equal(keys.size, variants.length);
    assert.ok(!keys.has(key));
  });

  it('leave out undefined options, so an option not given and one given as undefined agree', () => {
    assert.equal(cacheKey({ ...base, options: { user: undefined, env: { A: '1' } } }), cacheKey({ ...base, options: { env: { A: '1' } } }));
  });
});

describe('build cache entries', () => {
  let dir: string;
  let store: ImageStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-build-cache-'));
    store = await ImageStore.open({ root: join(dir, 'store') });
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('are stored in the store and read back by another BuildCache (another process)', async () => {
    const layer = await store.putBlob('layer bytes', { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' });
    const key = cacheKey(base);
    await new BuildCache(store.buildCache).put({ key, created: '2024-01-01T00:00:00.000Z', createdBy: 'RUN make', layer: { descriptor: layer, diffId: layer.digest } });
    const entry = await new BuildCache(store.buildCache).get(key);
    assert.equal(entry?.layer?.descriptor.digest, layer.digest);
    assert.deepEqual(entry?.blobs, [layer.digest]);
    assert.equal(await new BuildCache(store.buildCache).get(cacheKey({ ...base, parent: 'scratch' })), undefined);
  });

  // Entries are written without an fsync (one per built step): what a crash can leave of one,
  // nothing, an empty file or a record cut short, must read as a miss, never as an error.
  it('read an entry a crash left empty or cut short as a miss', async () => {
    const layer = await store.putBlob('layer bytes', { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' });
    const key = cacheKey(base);
    await new BuildCache(store.buildCache).put({ key, created: '2024-01-01T00:00:00.000Z', createdBy: 'RUN make', layer: { descriptor: layer, diffId: layer.digest } });
    const records = join(store.root, 'dockless', 'build-cache');
    const [name] = (await readdir(records)).filter((n) => n.endsWith('.json'));
    const full = await readFile(join(records, name!), 'utf8');
    for (const torn of ['', full.slice(0, full.length >> 1)]) {
      await writeFile(join(records, name!), torn);
      assert.equal(await new BuildCache(store.buildCache).get(key), undefined, JSON.stringify(torn));
    }
  });

  // Cache entries are GC roots: a layer only the cache refers to survives gc(), until the cache is pruned.
  it('keep their layers from gc() until pruned', async () => {
    const layer = await store.putBlob('cached layer', { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' });
    const loose = await store.putBlob('nobody refers to this');
    const cache = new BuildCache(store.buildCache);
    await cache.put({ key: cacheKey(base), created: new Date().toISOString(), createdBy: 'RUN make', layer: { descriptor: layer, diffId: layer.digest } });
    // A malformed entry protects nothing and breaks nothing.
    await writeFile(join(store.root, 'dockless', 'build-cache', `${'e'.repeat(64)}.json`), '{not json');

    const first = await store.gc({ gracePeriodMs: 0 });
    assert.deepEqual(first.blobs, [loose.digest]);
    assert.equal(await store.hasBlob(layer.digest), true);

    assert.equal(await cache.prune({ olderThan: 60_000 }), 0, 'entries used just now are not old');
    assert.equal(await cache.prune(), 2);
    const second = await store.gc({ gracePeriodMs: 0 });
    assert.deepEqual(second.blobs, [layer.digest]);
    assert.equal((await store.check()).length, 0);
  });
});

describe('build context content digests', () => {
  let dir: string;
  let ctx: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-build-ctx-'));
    ctx = join(dir, 'ctx');
    await mkdir(join(ctx, 'app', 'sub'), { recursive: true });
    await writeFile(join(ctx, 'app', 'a.txt'), 'alpha\n');
    await writeFile(join(ctx, 'app', 'sub', 'b.txt'), 'beta\n');
    await writeFile(join(ctx, 'app', 'debug.log'), 'noise\n');
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const digestOf = async (ignore = DockerIgnore.EMPTY, cacheDir?: string): Promise<string> => {
    const fs = new ContextFs(ctx, ignore, cacheDir !== undefined ? { dir: cacheDir, tmpDir: join(dir, 'tmp') } : undefined);
    const digest = await sourcesDigest(fs, await expandSources(fs, ['app/'], 'COPY'));
    await fs.saveDigests();
    return digest;
  };

  it('change with a file content, mode or name, and not with its times', async () => {
    const first = await digestOf();
    assert.equal(await digestOf(), first);
    await utimes(join(ctx, 'app', 'a.txt'), 1, 1);
    assert.equal(await digestOf(), first, 'times are not content');

    await writeFile(join(ctx, 'app', 'a.txt'), 'ALPHA\n');
    const content = await digestOf();
    assert.notEqual(content, first);

    await chmod(join(ctx, 'app', 'a.txt'), 0o600);
    const mode = await digestOf();
    assert.notEqual(mode, content);

    await rename(join(ctx, 'app', 'sub', 'b.txt'), join(ctx, 'app', 'sub', 'c.txt'));
    const renamed = await digestOf();
    assert.notEqual(renamed, mode);
  });

  it('leave out what .dockerignore excludes', async () => {
    const ignore = DockerIgnore.parse('**/*.log\n');
    const first = await digestOf(ignore);
    await writeFile(join(ctx, 'app', 'debug.log'), 'other noise\n');
    assert.equal(await digestOf(ignore), first);
    assert.notEqual(await digestOf(), first);
  });

  // A file rewritten within the same clock tick as it was hashed keeps its times: the remembered
  // digest must not be trusted then (git's "racy" files), or a changed file would be a cache hit.
  it('see a same-size rewrite right after hashing, with the digest cache on', async () => {
    const cacheDir = join(dir, 'digests');
    const first = await digestOf(DockerIgnore.EMPTY, cacheDir);
    assert.equal((await readdir(cacheDir)).length, 1, 'the digests were saved');
    await writeFile(join(ctx, 'app', 'a.txt'), 'ALPHA\n');
    const second = await digestOf(DockerIgnore.EMPTY, cacheDir);
    assert.notEqual(second, first);
    assert.equal(second, await digestOf(), 'the cached digest equals a fresh one');
  });

  // The digest file is written without fsync (a cache): what a crash can leave of it (empty, cut short,
  // not JSON) must read as no record, so that every file is hashed again, never as a wrong digest.
  it('read a digest file a crash left empty or cut short as empty: every file hashed again', async () => {
    const cacheDir = join(dir, 'digests');
    const fresh = await digestOf();
    await digestOf(DockerIgnore.EMPTY, cacheDir);
    const [file] = await readdir(cacheDir);
    const saved = await readFile(join(cacheDir, file!), 'utf8');
    for (const torn of ['', saved.slice(0, Math.floor(saved.length / 2)), '\0'.repeat(64)]) {
      await writeFile(join(cacheDir, file!), torn);
      await writeFile(join(ctx, 'app', 'a.txt'), `changed ${torn.length}\n`);
      const expected = await digestOf();
      assert.notEqual(expected, fresh);
      assert.equal(await digestOf(DockerIgnore.EMPTY, cacheDir), expected, `torn at ${torn.length} bytes`);
    }
  });

  // The digest cache trusts size, mtime, ctime and inode: an edit that keeps the size and puts the
  // mtime back (a checkout, `cp -p`, `touch -d`) long after the hash must still be seen, through ctime.
  it('see a same-size edit with the mtime put back, long after hashing, with the digest cache on', async () => {
    const cacheDir = join(dir, 'digests');
    const file = join(ctx, 'app', 'a.txt');
    // Whole seconds, which utimes sets exactly.
    const mtime = 1_700_000_000;
    await utimes(file, mtime, mtime);
    // Past the racy window, so that the cached digest is trusted by the next build.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const first = await digestOf(DockerIgnore.EMPTY, cacheDir);
    assert.equal(await digestOf(DockerIgnore.EMPTY, cacheDir), first, 'unchanged: a cache hit');
    await writeFile(file, 'ALPHA\n');
    await utimes(file, mtime, mtime);
    assert.equal((await stat(file)).mtimeMs, mtime * 1000, 'same mtime, same size');
    const second = await digestOf(DockerIgnore.EMPTY, cacheDir);
    assert.notEqual(second, first);
    assert.equal(second, await digestOf(), 'the cached digest equals a fresh one');
  });

  it("are walked once per build: a COPY's digest shares the look-ahead's walk of the same sources", async () => {
    const fs = new ContextFs(ctx, DockerIgnore.EMPTY);
    let listings = 0;
    // The walk lists through the synchronous twin.
    const readdir = fs.sync.readdir;
    fs.sync.readdir = (rel) => {
      listings++;
      return readdir(rel);
    };
    const sources = await expandSources(fs, ['app/'], 'COPY');
    const [ahead, step] = await Promise.all([sourcesDigest(fs, sources), sourcesDigest(fs, await expandSources(fs, ['app/'], 'COPY'))]);
    assert.equal(step, ahead);
    // app/ and app/sub/: listed once each, not once per caller.
    assert.equal(listings, 2);
    // Another build (another ContextFs) walks again, and sees a change made meanwhile.
    await writeFile(join(ctx, 'app', 'c.txt'), 'gamma\n');
    const again = new ContextFs(ctx, DockerIgnore.EMPTY);
    assert.notEqual(await sourcesDigest(again, await expandSources(again, ['app/'], 'COPY')), ahead);
  });

  it("are walked once per build with the COPY itself: the files copied are the ones the digest was taken of, each listed and stat'd once", async () => {
    const fs = new ContextFs(ctx, DockerIgnore.EMPTY);
    let listings = 0;
    let stats = 0;
    const { readdir, lstat } = fs.sync;
    fs.sync.readdir = (rel) => {
      listings++;
      return readdir(rel);
    };
    fs.sync.lstat = (rel) => {
      stats++;
      return lstat(rel);
    };
    const [source] = await expandSources(fs, ['app/'], 'COPY');
    stats = 0;
    const digest = await sourcesDigest(fs, [source!]);
    // Written after the digest: the COPY of this build copies what was digested, not this.
    await writeFile(join(ctx, 'app', 'late.txt'), 'late\n');
    const copied = await listSource(fs, source!);
    assert.deepEqual(copied.map((e) => e.rel), ['', 'a.txt', 'debug.log', 'sub', 'sub/b.txt']);
    assert.equal(listings, 2, 'app/ and app/sub/, once');
    assert.equal(stats, 4, 'each entry below the source, once');
    assert.equal(await sourcesDigest(fs, [source!]), digest);
    // Another build (another ContextFs) walks again, and sees the file.
    const fresh = new ContextFs(ctx, DockerIgnore.EMPTY);
    assert.ok((await listSource(fresh, source!)).some((e) => e.rel === 'late.txt'));
  });

  it('expand wildcards per path component and name a source that matches nothing', async () => {
    const fs = new ContextFs(ctx, DockerIgnore.parse('app/debug.log'));
    const found = await expandSources(fs, ['app/*.txt', 'app/s?b/*'], 'COPY');
    assert.deepEqual(found.map((s) => s.rel), ['app/a.txt', 'app/sub/b.txt']);
    await assert.rejects(expandSources(fs, ['app/*.log'], 'COPY'), NotFoundError);
    await assert.rejects(expandSources(fs, ['app/debug.log'], 'COPY'), /excluded by \.dockerignore/);
    await assert.rejects(expandSources(fs, ['missing.txt'], 'COPY'), NotFoundError);
  });
});
