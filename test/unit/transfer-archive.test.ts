import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import tar from 'tar-stream';
import {
  AbortError,
  AlreadyExistsError,
  DigestMismatchError,
  InvalidArgumentError,
  NotFoundError,
} from '../../src/errors.js';
import { ImageStore } from '../../src/image-store.js';
import type { Descriptor, ImageIndex } from '../../src/oci/types.js';
import { applyChanges, exportImage, importImage, type ArchiveProgress } from '../../src/transfer/archive/index.js';
import { bigLayerEntries, buildLayer, CORRUPTIONS, putSyntheticImage, sha256, type BuiltLayer } from '../fixtures/store-images.js';
import { docker25Save, dockerConfig, legacyDockerSave, tarOf } from '../fixtures/transfer-archives.js';

/** Every entry of a tar: name → content. */
async function untar(data: Buffer): Promise<Map<string, Buffer>> {
  const extract = tar.extract();
  const files = new Map<string, Buffer>();
  extract.end(data);
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    files.set(entry.header.name, Buffer.concat(chunks));
  }
  return files;
}

describe('image import and export', () => {
  let dir: string;
  let source: ImageStore;
  let image: Descriptor;
  let layers: BuiltLayer[];
  let n = 0;
  /** A fresh, empty store. */
  const freshStore = (): Promise<ImageStore> => ImageStore.open({ root: join(dir, `store-${n++}`) });
  const path = (name: string): string => join(dir, `${n++}-${name}`);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-transfer-'));
    source = await ImageStore.open({ root: join(dir, 'source') });
    ({ manifest: image, layers } = await putSyntheticImage(
      source,
      [{ 'etc/': { type: 'dir' }, 'etc/os-release': 'ID=test\n', 'bin/': { type: 'dir' }, 'bin/tool': 'x' }, { 'etc/extra': 'more' }],
      { cmd: ['/bin/tool', '--serve'] },
    ));
    await source.tag(image.digest, 'example.com/team/app:1.0');
    await source.tag(image.digest, 'app:latest');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('is reachable as store.export and store.import', async () => {
    const out = path('via-store.tar');
    const written = await source.export('app', out);
    assert.equal(written.format, 'docker-archive');
    const target = await freshStore();
    assert.equal((await target.import(out))[0]?.reference, 'docker.io/library/app:latest');
  });

  describe('OCI layouts', () => {
    it('round-trips through an OCI layout directory with the same manifest, config and tags', async () => {
      const out = path('layout');
      const result = await exportImage(source, ['example.com/team/app:1.0', 'app'], out, { format: 'oci' });
      assert.deepEqual(result.images, [
        { digest: image.digest, references: ['example.com/team/app:1.0', 'docker.io/library/app:latest'] },
      ]);
      const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as ImageIndex;
      assert.deepEqual(
        index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']),
        ['example.com/team/app:1.0', 'docker.io/library/app:latest'],
      );
      assert.deepEqual(JSON.parse(await readFile(join(out, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });

      const target = await freshStore();
      const imported = await importImage(target, out);
      assert.deepEqual(
        imported.map((i) => [i.reference, i.digest]),
        [
          ['example.com/team/app:1.0', image.digest],
          ['docker.io/library/app:latest', image.digest],
        ],
      );
      const [before, after] = await Promise.all([source.inspect('app'), target.inspect('app')]);
      assert.equal(after.digest, before.digest);
      assert.equal(after.configDigest, before.configDigest);
      assert.deepEqual(after.layers, before.layers);
      assert.deepEqual(await target.check(), []);
    });

    it('round-trips through an oci-archive', async () => {
      const out = path('app.oci.tar');
      await exportImage(source, 'app', out, { format: 'oci-archive' });
      const files = await untar(await readFile(out));
      assert.ok(files.has('oci-layout') && files.has('index.json'));
      for (const d of [image.digest, ...layers.map((l) => l.digest)]) assert.ok(files.has(`blobs/sha256/${d.slice(7)}`), d);
      const target = await freshStore();
      const imported = await importImage(target, out);
      assert.deepEqual(imported, [{ reference: 'docker.io/library/app:latest', digest: image.digest, mediaType: image.mediaType }]);
      assert.equal((await target.inspect('app')).configDigest, (await source.inspect('app')).configDigest);
    });

    it('writes bare tags with refName "tag", and reads the full name back from io.containerd.image.name', async () => {
      const out = path('layout-tag');
      await exportImage(source, 'example.com/team/app:1.0', out, { format: 'oci', refName: 'tag' });
      const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as ImageIndex;
      assert.deepEqual(index.manifests[0]?.annotations, {
        'io.containerd.image.name': 'example.com/team/app:1.0',
        'org.opencontainers.image.ref.name': '1.0',
      });
      const target = await freshStore();
      assert.equal((await importImage(target, out))[0]?.reference, 'example.com/team/app:1.0');
    });

    it('adds to an existing layout, replacing entries of the same name', async () => {
      const out = path('layout-add');
      const other = (await putSyntheticImage(source, [{ 'other.txt': 'o' }])).manifest;
      await source.tag(other.digest, 'other:1');
      await exportImage(source, ['app', 'other:1'], out, { format: 'oci' });
      const other2 = (await putSyntheticImage(source, [{ 'other.txt': 'o2' }])).manifest;
      await source.tag(other2.digest, 'other:1');
      await exportImage(source, 'other:1', out, { format: 'oci' });
      const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as ImageIndex;
      assert.deepEqual(
        index.manifests.map((m) => [m.annotations?.['org.opencontainers.image.ref.name'], m.digest]),
        [
          ['docker.io/library/app:latest', image.digest],
          ['docker.io/library/other:1', other2.digest],
        ],
      );
    });

    it('imports a bare ref.name tag only with baseName, and untagged otherwise', async () => {
      const out = path('layout-bare');
      await exportImage(source, 'app', out, { format: 'oci', refName: 'tag' });
      const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as ImageIndex;
      delete index.manifests[0]!.annotations!['io.containerd.image.name'];
      await writeFile(join(out, 'index.json'), JSON.stringify(index));
      const target = await freshStore();
      assert.deepEqual(await importImage(target, out), [{ digest: image.digest, mediaType: image.mediaType }]);
      assert.deepEqual(await importImage(target, out, { baseName: 'registry.example/base' }), [
        { reference: 'registry.example/base:latest', digest: image.digest, mediaType: image.mediaType },
      ]);
    });

    it('does not copy layers the store already has, and says so in its progress', async () => {
      const out = path('layout-cached');
      await exportImage(source, 'app', out, { format: 'oci' });
      const target = await freshStore();
      const first: ArchiveProgress[] = [];
      await importImage(target, out, { onProgress: (e) => first.push(e) });
      const again: ArchiveProgress[] = [];
      await importImage(target, out, { onProgress: (e) => again.push(e) });
      const layerEvents = (events: ArchiveProgress[]) => events.filter((e) => e.type === 'layer');
      assert.deepEqual(layerEvents(first).map((e) => e.type === 'layer' && [e.done, e.total, e.cached]), [[1, 2, false], [2, 2, false]]);
      assert.deepEqual(layerEvents(again).map((e) => e.type === 'layer' && e.cached), [true, true]);
      const bytes = first.filter((e) => e.type === 'bytes').map((e) => (e.type === 'bytes' ? e.bytes : 0));
      assert.ok(bytes.length > 0 && bytes.every((b, i) => i === 0 || b >= bytes[i - 1]!));
      assert.deepEqual(first.at(-1), { op: 'import', type: 'image', digest: image.digest, references: ['docker.io/library/app:latest'] });
      // One event shape for every long operation: each event names its operation.
      assert.ok([...first, ...again].every((e) => e.op === 'import'));
    });
  });

  describe('docker-archive', () => {
    it('exports manifest.json, repositories and uncompressed layer tars whose digests are the diffIDs', async () => {
      const out = path('app.tar');
      await exportImage(source, ['example.com/team/app:1.0', 'app'], out);
      const files = await untar(await readFile(out));
      const info = await source.inspect('app');
      const manifest = JSON.parse(files.get('manifest.json')!.toString()) as Array<Record<string, unknown>>;
      assert.deepEqual(manifest, [
        {
          Config: `${info.configDigest.slice(7)}.json`,
          RepoTags: ['example.com/team/app:1.0', 'app:latest'],
          Layers: layers.map((l) => `${l.diffId.slice(7)}/layer.tar`),
        },
      ]);
      assert.deepEqual(JSON.parse(files.get('repositories')!.toString()), {
        'example.com/team/app': { '1.0': layers[1]!.diffId.slice(7) },
        app: { latest: layers[1]!.diffId.slice(7) },
      });
      for (const layer of layers) assert.deepEqual(files.get(`${layer.diffId.slice(7)}/layer.tar`), layer.tar);
      assert.equal(sha256(files.get(`${info.configDigest.slice(7)}.json`)!), info.configDigest);
    });

    it('round-trips with the same diffIDs, config (image ID) and tags, byte for byte on the way back', async () => {
      const out = path('rt.tar');
      await exportImage(source, ['example.com/team/app:1.0', 'app'], out, { format: 'docker-archive' });
      const target = await freshStore();
      const imported = await importImage(target, out);
      assert.deepEqual(
        imported.map((i) => i.reference),
        ['example.com/team/app:1.0', 'docker.io/library/app:latest'],
      );
      const [before, after] = await Promise.all([source.inspect('app'), target.inspect('app')]);
      assert.deepEqual(after.layers.map((l) => l.diffId), before.layers.map((l) => l.diffId));
      assert.equal(after.configDigest, before.configDigest);
      // Stored as the archive had them: uncompressed, so the blob digest is the diffID.
      assert.deepEqual(after.layers.map((l) => [l.mediaType, l.digest]), before.layers.map((l) => ['application/vnd.oci.image.layer.v1.tar', l.diffId]));
      assert.deepEqual(after.tags, ['docker.io/library/app:latest', 'example.com/team/app:1.0']);
      const back = path('back.tar');
      await exportImage(target, ['example.com/team/app:1.0', 'app'], back);
      assert.deepEqual(await readFile(back), await readFile(out));
      assert.deepEqual(await target.check(), []);
    });

    it('imports the legacy docker save layout (<id>/layer.tar, <id>.json, repositories)', async () => {
      const built = [await buildLayer({ 'a.txt': 'a' }), await buildLayer({ 'b.txt': 'b' })];
      const { tar: archive, configDigest } = await legacyDockerSave(built, ['legacy/app:2', 'legacy/app:latest']);
      const file = path('legacy.tar');
      await writeFile(file, archive);
      const target = await freshStore();
      const imported = await importImage(target, file);
      assert.deepEqual(imported.map((i) => i.reference), ['docker.io/legacy/app:2', 'docker.io/legacy/app:latest']);
      const info = await target.inspect('legacy/app:2');
      assert.equal(info.configDigest, configDigest);
      assert.deepEqual(info.layers.map((l) => l.diffId), built.map((l) => l.diffId));
    });

    it('imports a gzip-compressed docker save', async () => {
      const built = [await buildLayer({ 'z.txt': 'z' })];
      const file = path('save.tar.gz');
      await writeFile(file, gzipSync((await legacyDockerSave(built, ['gz:1'])).tar));
      const target = await freshStore();
      assert.equal((await importImage(target, file))[0]?.reference, 'docker.io/library/gz:1');
    });

    it('imports a Docker 25+ archive (an OCI layout with manifest.json) keeping its manifest digest', async () => {
      const built = [await buildLayer({ 'n.txt': 'new' })];
      const { tar: archive, manifestDigest } = await docker25Save(built, 'docker.io/library/new', '25');
      const file = path('docker25.tar');
      await writeFile(file, archive);
      const target = await freshStore();
      const imported = await importImage(target, file);
      assert.deepEqual(imported.map((i) => [i.reference, i.digest]), [['docker.io/library/new:25', manifestDigest]]);
      // Read as a docker-archive when asked: the same layers, by manifest.json.
      const other = await freshStore();
      const asDocker = await importImage(other, file, { format: 'docker-archive' });
      assert.equal(asDocker[0]?.reference, 'docker.io/library/new:25');
      assert.deepEqual((await other.inspect('new:25')).layers.map((l) => l.diffId), built.map((l) => l.diffId));
    });

    it('adds the tag option to a single image, and refuses it for several', async () => {
      const file = path('one.tar');
      await writeFile(file, (await legacyDockerSave([await buildLayer({ 'o.txt': 'o' })], ['one:1'])).tar);
      const target = await freshStore();
      assert.deepEqual((await importImage(target, file, { tag: 'extra:9' })).map((i) => i.reference), [
        'docker.io/library/one:1',
        'docker.io/library/extra:9',
      ]);
      const two = path('two.tar');
      const other = (await putSyntheticImage(source, [{ 'two.txt': '2' }])).manifest;
      await source.tag(other.digest, 'two:1');
      await exportImage(source, ['app', 'two:1'], two);
      const store2 = await freshStore();
      await assert.rejects(importImage(store2, two, { tag: 'x:1' }), InvalidArgumentError);
      assert.deepEqual(await store2.list(), []);
    });
  });

  describe('root filesystem tars', () => {
    it('imports a plain rootfs tar as one uncompressed layer with config, changes and a tag', async () => {
      const rootfs = await buildLayer({ 'bin/': { type: 'dir' }, 'bin/sh': 'shell', 'etc/': { type: 'dir' }, 'etc/hostname': 'box' });
      const file = path('rootfs.tar');
      await writeFile(file, rootfs.tar);
      const target = await freshStore();
      const imported = await importImage(target, file, {
        tag: 'base:1',
        config: { Env: ['A=1'], User: 'nobody' },
        changes: ['ENV B="two words"', 'CMD ["/bin/sh", "-c", "echo hi"]', 'WORKDIR /srv', 'EXPOSE 8080 53/udp', 'LABEL k=v'],
        message: 'from a test',
      });
      assert.equal(imported[0]?.reference, 'docker.io/library/base:1');
      const info = await target.inspect('base:1');
      assert.deepEqual(info.layers.map((l) => [l.mediaType, l.digest, l.diffId]), [
        ['application/vnd.oci.image.layer.v1.tar', rootfs.diffId, rootfs.diffId],
      ]);
      assert.deepEqual(info.config.config, {
        Env: ['A=1', 'B=two words'],
        User: 'nobody',
        Cmd: ['/bin/sh', '-c', 'echo hi'],
        WorkingDir: '/srv',
        ExposedPorts: { '8080/tcp': {}, '53/udp': {} },
        Labels: { k: 'v' },
      });
      assert.equal(info.config.history?.[0]?.comment, 'from a test');
      assert.equal(info.config.os, 'linux');
    });

    it('imports a gzip rootfs tar as it is, with the diffID of its content', async () => {
      const rootfs = await buildLayer({ 'hello.txt': 'hello' });
      const file = path('rootfs.tar.gz');
      await writeFile(file, rootfs.gz);
      const target = await freshStore();
      const [img] = await importImage(target, file);
      assert.equal(img?.reference, undefined);
      const info = await target.inspect(img!.digest);
      assert.deepEqual(info.layers.map((l) => [l.mediaType, l.digest, l.diffId]), [
        ['application/vnd.oci.image.layer.v1.tar+gzip', rootfs.digest, rootfs.diffId],
      ]);
    });

    it('refuses rootfs options for an archive, and a malformed change before reading anything', async () => {
      const file = path('opt.tar');
      await exportImage(source, 'app', file);
      const target = await freshStore();
      await assert.rejects(importImage(target, file, { changes: ['CMD x'] }), InvalidArgumentError);
      const rootfs = path('r.tar');
      await writeFile(rootfs, (await buildLayer({ 'x.txt': 'x' })).tar);
      await assert.rejects(importImage(target, rootfs, { changes: ['FROM scratch'] }), InvalidArgumentError);
      assert.deepEqual(await target.list(), []);
    });
  });

  describe('malformed sources: a typed error and nothing tagged', () => {
    const nothingTagged = async (store: ImageStore): Promise<void> => assert.deepEqual(await store.list(), []);

    it('an archive without manifest.json or index.json', async () => {
      const built = [await buildLayer({ 'a.txt': 'a' })];
      const config = dockerConfig(built);
      const file = path('no-manifest.tar');
      await writeFile(
        file,
        await tarOf([
          { name: `${built[0]!.diffId.slice(7)}/`, type: 'directory' },
          { name: `${built[0]!.diffId.slice(7)}/layer.tar`, content: built[0]!.tar },
          { name: `${sha256(config).slice(7)}.json`, content: config },
        ]),
      );
      const target = await freshStore();
      await assert.rejects(importImage(target, file), (err: unknown) => {
        assert.ok(err instanceof InvalidArgumentError);
        assert.match(err.message, /no `manifest\.json`/);
        return true;
      });
      await nothingTagged(target);
    });

    it('a layout blob that does not match its name (directory and oci-archive)', async () => {
      const out = path('corrupt-layout');
      await exportImage(source, 'app', out, { format: 'oci' });
      const layerFile = join(out, 'blobs', 'sha256', layers[1]!.digest.slice(7));
      const bytes = await readFile(layerFile);
      bytes[bytes.length - 5] ^= 0xff;
      await writeFile(layerFile, bytes);
      const target = await freshStore();
      await assert.rejects(importImage(target, out), DigestMismatchError);
      await nothingTagged(target);

      const archive = path('corrupt.oci.tar');
      await exportImage(source, 'app', archive, { format: 'oci-archive' });
      const files = await untar(await readFile(archive));
      const name = `blobs/sha256/${layers[0]!.digest.slice(7)}`;
      files.set(name, gzipSync(Buffer.from('not the layer')));
      await writeFile(archive, await tarOf([...files].map(([n2, content]) => ({ name: n2, content }))));
      const target2 = await freshStore();
      await assert.rejects(importImage(target2, archive), (err: unknown) => {
        assert.ok(err instanceof DigestMismatchError);
        assert.equal(err.expected, layers[0]!.digest);
        return true;
      });
      await nothingTagged(target2);
    });

    it('a docker-archive layer that does not match the diffID in its config', async () => {
      const built = [await buildLayer({ 'a.txt': 'a' }), await buildLayer({ 'b.txt': 'b' })];
      const file = path('bad-diffid.tar');
      const evil = await buildLayer({ 'b.txt': 'evil' });
      await writeFile(file, (await legacyDockerSave(built, ['bad:1'], { layerContent: (l, i) => (i === 1 ? evil.tar : l.tar) })).tar);
      const target = await freshStore();
      await assert.rejects(importImage(target, file), (err: unknown) => {
        assert.ok(err instanceof DigestMismatchError);
        assert.equal(err.expected, built[1]!.diffId);
        assert.equal(err.actual, evil.diffId);
        return true;
      });
      await nothingTagged(target);
    });

    describe('a layer blob whose bytes are corrupt, as a digest mismatch', () => {
      let big: BuiltLayer;
      let bigSource: ImageStore;
      before(async () => {
        bigSource = await freshStore();
        const built = await putSyntheticImage(bigSource, [bigLayerEntries()]);
        big = built.layers[0]!;
        await bigSource.tag(built.manifest.digest, 'big:1');
      });
      for (const [name, corrupt] of Object.entries(CORRUPTIONS)) {
        // Corrupt bytes break gunzip before anything reaches the digest or diffID that would name the fault.
        it(`a docker-archive gzip layer with ${name}`, async () => {
          const file = path('corrupt-docker.tar');
          await writeFile(file, (await legacyDockerSave([big], ['corrupt:1'], { layerContent: (l) => corrupt(l.gz) })).tar);
          const target = await freshStore();
          await assert.rejects(importImage(target, file), (err: unknown) => {
            assert.ok(err instanceof DigestMismatchError, String(err));
            assert.equal(err.expected, big.diffId);
            assert.ok(err.cause instanceof InvalidArgumentError, String(err.cause));
            return true;
          });
          await nothingTagged(target);
        });

        it(`an OCI layout (directory and oci-archive) layer with ${name}`, async () => {
          const out = path('corrupt-big-layout');
          await exportImage(bigSource, 'big:1', out, { format: 'oci' });
          const layerFile = join(out, 'blobs', 'sha256', big.digest.slice(7));
          await writeFile(layerFile, corrupt(await readFile(layerFile)));
          const target = await freshStore();
          await assert.rejects(importImage(target, out), (err: unknown) => {
            assert.ok(err instanceof DigestMismatchError, String(err));
            assert.equal(err.expected, big.digest);
            return true;
          });
          await nothingTagged(target);

          const archive = path('corrupt-big.oci.tar');
          await exportImage(bigSource, 'big:1', archive, { format: 'oci-archive' });
          const files = await untar(await readFile(archive));
          const name2 = `blobs/sha256/${big.digest.slice(7)}`;
          files.set(name2, corrupt(files.get(name2)!));
          await writeFile(archive, await tarOf([...files].map(([n2, content]) => ({ name: n2, content }))));
          const target2 = await freshStore();
          await assert.rejects(importImage(target2, archive), (err: unknown) => {
            assert.ok(err instanceof DigestMismatchError, String(err));
            assert.equal(err.expected, big.digest);
            return true;
          });
          await nothingTagged(target2);
        });
      }
    });

    it('a truncated archive', async () => {
      const file = path('truncated.tar');
      await exportImage(source, 'app', file);
      const size = (await readFile(file)).length;
      // Cut inside the second layer's data, not at a block boundary.
      await truncate(file, Math.floor(size / 2) + 100);
      const target = await freshStore();
      await assert.rejects(importImage(target, file, { format: 'docker-archive' }), InvalidArgumentError);
      await assert.rejects(importImage(target, file), InvalidArgumentError);
      await nothingTagged(target);
    });

    it('a truncated root filesystem tar', async () => {
      const file = path('truncated-rootfs.tar');
      const rootfs = await buildLayer({ 'big.bin': 'x'.repeat(20000) });
      await writeFile(file, rootfs.tar.subarray(0, 5000));
      const target = await freshStore();
      await assert.rejects(importImage(target, file, { tag: 'cut:1' }), InvalidArgumentError);
      await nothingTagged(target);
    });

    it('a file that is not a tar, an empty file, a missing path', async () => {
      const target = await freshStore();
      const junk = path('junk.bin');
      await writeFile(junk, Buffer.from('this is not a tar archive at all, just some text that goes on '.repeat(20)));
      await assert.rejects(importImage(target, junk), InvalidArgumentError);
      const empty = path('empty.tar');
      await writeFile(empty, '');
      await assert.rejects(importImage(target, empty), InvalidArgumentError);
      await assert.rejects(importImage(target, path('nowhere')), NotFoundError);
      await nothingTagged(target);
    });

    it('a layout whose manifest names a blob it does not hold', async () => {
      const out = path('missing-blob');
      await exportImage(source, 'app', out, { format: 'oci' });
      await rm(join(out, 'blobs', 'sha256', layers[0]!.digest.slice(7)));
      const target = await freshStore();
      await assert.rejects(importImage(target, out), NotFoundError);
      await nothingTagged(target);
    });
  });

  describe('cancellation', () => {
    it('aborts an import part-way with an AbortError, and tags nothing', async () => {
      const big = await buildLayer({ 'big.bin': createHash('sha512').update('seed').digest('hex').repeat(40000) });
      const file = path('big.tar');
      await writeFile(file, (await legacyDockerSave([big], ['big:1'])).tar);
      const target = await freshStore();
      const controller = new AbortController();
      await assert.rejects(
        importImage(target, file, {
          signal: controller.signal,
          onProgress: (e) => {
            if (e.type === 'bytes' && e.bytes > 0) controller.abort();
          },
        }),
        AbortError,
      );
      assert.deepEqual(await target.list(), []);
      await assert.rejects(importImage(target, file, { signal: AbortSignal.abort() }), AbortError);
      await assert.rejects(exportImage(source, 'app', path('never.tar'), { signal: AbortSignal.abort() }), AbortError);
    });

    it('aborts an export part-way and leaves nothing at the path', async () => {
      const out = path('aborted.tar');
      const controller = new AbortController();
      await assert.rejects(
        exportImage(source, 'app', out, {
          signal: controller.signal,
          onProgress: (e) => {
            if (e.type === 'layer') controller.abort();
          },
        }),
        AbortError,
      );
      assert.deepEqual((await readdir(dir)).filter((f) => f.includes('aborted')), []);
    });
  });

  describe('export failures', () => {
    it('refuses a corrupt blob in the store and leaves no file behind', async () => {
      const store = await freshStore();
      const { manifest, layers: built } = await putSyntheticImage(store, [{ 'c.txt': 'c' }]);
      await store.tag(manifest.digest, 'corrupt:1');
      const blob = store.blobPath(built[0]!.digest);
      const bytes = await readFile(blob);
      await writeFile(blob, gzipSync(Buffer.concat([gunzipSync(bytes), Buffer.from('x')])));
      for (const format of ['docker-archive', 'oci-archive', 'oci'] as const) {
        const out = path(`corrupt-${format}`);
        await assert.rejects(exportImage(store, 'corrupt:1', out, { format }), DigestMismatchError, format);
        assert.deepEqual((await readdir(dir)).filter((f) => f.includes(`corrupt-${format}`)), [], format);
      }
    });

    // Decompressing a layer for a docker-archive meets corrupt bytes before the blob's end, where its digest is checked.
    it('refuses a big stored layer with a byte flipped early as a digest mismatch, not a gzip error', async () => {
      const store = await freshStore();
      const { manifest, layers: built } = await putSyntheticImage(store, [bigLayerEntries()]);
      await store.tag(manifest.digest, 'corrupt-big:1');
      const blob = store.blobPath(built[0]!.digest);
      await writeFile(blob, CORRUPTIONS['a byte flipped early']!(await readFile(blob)));
      for (const format of ['docker-archive', 'oci-archive', 'oci'] as const) {
        const out = path(`corrupt-big-${format}`);
        await assert.rejects(exportImage(store, 'corrupt-big:1', out, { format }), (err: unknown) => {
          assert.ok(err instanceof DigestMismatchError, `${format}: ${String(err)}`);
          assert.equal(err.expected, built[0]!.digest);
          return true;
        });
        assert.deepEqual((await readdir(dir)).filter((f) => f.includes(`corrupt-big-${format}`)), [], format);
      }
    });

    it('refuses to write over a directory that is not an OCI layout', async () => {
      const occupied = path('occupied');
      await mkdir(occupied);
      await writeFile(join(occupied, 'file'), 'x');
      await assert.rejects(exportImage(source, 'app', occupied, { format: 'oci' }), AlreadyExistsError);
      await assert.rejects(exportImage(source, 'app', occupied, { format: 'oci-archive' }), AlreadyExistsError);
      await assert.rejects(exportImage(source, 'nosuch:1', path('x.tar')), NotFoundError);
      await assert.rejects(exportImage(source, 'app', path('x.tar'), { format: 'zip' as 'oci' }), InvalidArgumentError);
    });

    it('exports the host platform of a multi-platform image to a docker-archive', async () => {
      const store = await freshStore();
      const { manifest } = await putSyntheticImage(store, [{ 'p.txt': 'p' }]);
      const arch = process.arch === 'x64' ? 'amd64' : process.arch;
      const index = {
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          { ...manifest, platform: { os: 'linux', architecture: arch === 's390x' ? 'ppc64le' : 's390x' }, digest: `sha256:${'0'.repeat(64)}` },
          { ...manifest, platform: { os: 'linux', architecture: arch } },
        ],
      };
      const indexDesc = await store.putBlob(JSON.stringify(index), { mediaType: index.mediaType });
      await store.tag(indexDesc.digest, 'multi:1');
      const out = path('multi.tar');
      const result = await exportImage(store, 'multi:1', out);
      assert.deepEqual(result.images, [{ digest: manifest.digest, references: ['docker.io/library/multi:1'] }]);
      const layout = path('multi-layout');
      await exportImage(store, 'multi:1', layout, { format: 'oci' });
      const target = await freshStore();
      const imported = await importImage(target, layout);
      assert.equal(imported[0]?.digest, indexDesc.digest);
      assert.equal((await target.inspect('multi:1')).manifestDescriptor.digest, manifest.digest);
    });
  });
});

describe('applyChanges', () => {
  const cases: Array<[string[], Record<string, unknown>]> = [
    [['CMD ["a", "b"]'], { Cmd: ['a', 'b'] }],
    [['CMD echo $HOME'], { Cmd: ['/bin/sh', '-c', 'echo $HOME'] }],
    [['entrypoint ["/init"]'], { Entrypoint: ['/init'] }],
    [['ENV A=1 B="x y" C=a\\ b'], { Env: ['A=1', 'B=x y', 'C=a b'] }],
    [['ENV LEGACY some value'], { Env: ['LEGACY=some value'] }],
    [['ENV A=1', 'ENV A=2'], { Env: ['A=2'] }],
    [['EXPOSE 80 443/tcp 53/udp 8000-8001'], { ExposedPorts: { '80/tcp': {}, '443/tcp': {}, '53/udp': {}, '8000/tcp': {}, '8001/tcp': {} } }],
    [['VOLUME ["/data", "/logs"]'], { Volumes: { '/data': {}, '/logs': {} } }],
    [['VOLUME /a /b'], { Volumes: { '/a': {}, '/b': {} } }],
    [['WORKDIR /srv', 'WORKDIR app'], { WorkingDir: '/srv/app' }],
    [['USER 1000:1000', 'STOPSIGNAL SIGINT'], { User: '1000:1000', StopSignal: 'SIGINT' }],
    [['LABEL a=b "c d"=e'], { Labels: { a: 'b', 'c d': 'e' } }],
    [['ONBUILD RUN make'], { OnBuild: ['RUN make'] }],
  ];
  for (const [changes, expected] of cases) {
    it(`applies ${JSON.stringify(changes)}`, () => assert.deepEqual(applyChanges({}, changes), expected));
  }
  it('keeps the given config and does not change it', () => {
    const base = { Env: ['A=0'], Cmd: ['old'] };
    assert.deepEqual(applyChanges(base, ['ENV B=1']), { Env: ['A=0', 'B=1'], Cmd: ['old'] });
    assert.deepEqual(base, { Env: ['A=0'], Cmd: ['old'] });
  });
  for (const bad of ['RUN make', 'FROM x', 'ENV', 'EXPOSE http', 'EXPOSE 70000', 'LABEL novalue', 'ENV A="open', '']) {
    it(`refuses ${JSON.stringify(bad)}`, () => assert.throws(() => applyChanges({}, [bad]), InvalidArgumentError));
  }
});
