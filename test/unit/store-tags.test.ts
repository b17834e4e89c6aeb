import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InvalidArgumentError, InvalidStateError, NotFoundError } from '../../src/errors.js';
import { ImageStore } from '../../src/image-store.js';
import type { Descriptor, ImageIndex } from '../../src/oci/types.js';
import { putSyntheticImage } from '../fixtures/store-images.js';

describe('ImageStore tags', () => {
  let dir: string;
  let store: ImageStore;
  let a: Descriptor;
  let b: Descriptor;
  let c: Descriptor;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-store-tags-'));
    store = await ImageStore.open({ root: join(dir, 'store') });
    a = (await putSyntheticImage(store, [{ 'a.txt': 'a' }], { created: '2024-01-01T00:00:00Z' })).manifest;
    b = (await putSyntheticImage(store, [{ 'a.txt': 'a' }, { 'b.txt': 'b' }])).manifest;
    c = (await putSyntheticImage(store, [{ 'c.txt': 'c' }])).manifest;
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('tags with the full normalised reference in index.json', async () => {
    await store.tag(a.digest, 'alpine');
    const index = JSON.parse(await readFile(join(store.root, 'index.json'), 'utf8')) as ImageIndex;
    const entry = index.manifests.find((m) => m.digest === a.digest);
    assert.equal(entry?.annotations?.['org.opencontainers.image.ref.name'], 'docker.io/library/alpine:latest');
    assert.equal(entry?.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  });

  it('resolves every accepted form', async () => {
    for (const ref of [
      'alpine',
      'alpine:latest',
      'library/alpine',
      'docker.io/library/alpine:latest',
      'index.docker.io/library/alpine',
      a.digest,
      a.digest.slice(7),
      `alpine@${a.digest}`,
      `whatever/name:tag@${a.digest}`,
    ]) {
      const d = await store.resolve(ref);
      assert.equal(d.digest, a.digest, ref);
      assert.equal(d.size, a.size, ref);
      assert.equal(d.mediaType, a.mediaType, ref);
    }
    // An untagged manifest is still reachable by digest.
    assert.equal((await store.resolve(c.digest)).digest, c.digest);
  });

  it('reports malformed references as InvalidArgumentError and unknown ones as NotFoundError', async () => {
    for (const bad of ['Alpine', 'alpine:', 'a b', 'sha256:123', '']) {
      await assert.rejects(store.resolve(bad), InvalidArgumentError, bad);
    }
    await assert.rejects(store.resolve('nosuch'), NotFoundError);
    await assert.rejects(store.resolve(`sha256:${'0'.repeat(64)}`), NotFoundError);
    await assert.rejects(store.tag(a.digest, `x@${a.digest}`), InvalidArgumentError);
    await assert.rejects(store.tag('nosuch', 'x'), NotFoundError);
  });

  it('lists tags with digest, creation time and size', async () => {
    await store.tag(b.digest, 'localhost:5000/team/app:1.0');
    const list = await store.list();
    assert.deepEqual(
      list.map((i) => i.reference),
      ['docker.io/library/alpine:latest', 'localhost:5000/team/app:1.0'],
    );
    const alpine = list[0]!;
    assert.equal(alpine.digest, a.digest);
    assert.equal(alpine.created, '2024-01-01T00:00:00Z');
    assert.ok(alpine.size > a.size);
  });

  it('inspects an image: manifest, config, layers with diffIDs and chainIDs, tags', async () => {
    await store.tag('localhost:5000/team/app:1.0', 'app:copy');
    const info = await store.inspect('localhost:5000/team/app:1.0');
    assert.equal(info.reference, 'localhost:5000/team/app:1.0');
    assert.equal(info.digest, b.digest);
    assert.equal(info.layers.length, 2);
    assert.equal(info.layers[0]!.chainId, info.layers[0]!.diffId);
    assert.notEqual(info.layers[1]!.chainId, info.layers[1]!.diffId);
    assert.deepEqual(info.config.rootfs.diff_ids, info.layers.map((l) => l.diffId));
    assert.equal(info.history.length, 2);
    assert.deepEqual(info.tags, ['docker.io/library/app:copy', 'localhost:5000/team/app:1.0']);
    assert.equal(info.size, info.manifestDescriptor.size + info.manifest.config.size + info.layers.reduce((s, l) => s + l.size, 0));
  });

  it('untags, and remove() by digest removes every tag of the image', async () => {
    await store.untag('app:copy');
    await assert.rejects(store.resolve('app:copy'), NotFoundError);
    await assert.rejects(store.untag('app:copy'), NotFoundError);
    await store.tag(b.digest, 'app:one');
    await store.tag(b.digest, 'app:two');
    const removed = await store.remove(b.digest);
    assert.deepEqual(removed.sort(), ['docker.io/library/app:one', 'docker.io/library/app:two', 'localhost:5000/team/app:1.0']);
    assert.equal(await store.hasBlob(b.digest), true, 'content stays until gc');
    await assert.rejects(store.remove(b.digest), NotFoundError);
  });

  it('records history and rolls back like undo', async () => {
    await store.tag(a.digest, 'web:latest');
    await store.tag(b.digest, 'web:latest');
    await store.tag(b.digest, 'web:latest'); // no change, not recorded
    await store.tag(c.digest, 'web:latest');
    let history = await store.history('web');
    assert.deepEqual(history.map((h) => [h.digest, h.action, h.current]), [
      [c.digest, 'tag', true],
      [b.digest, 'tag', false],
      [a.digest, 'tag', false],
    ]);
    assert.ok(history.every((h) => !Number.isNaN(Date.parse(h.time))));

    assert.equal((await store.rollback('web')).digest, b.digest);
    assert.equal((await store.resolve('web')).digest, b.digest);
    assert.equal((await store.rollback('web')).digest, a.digest, 'a second rollback goes further back');
    await assert.rejects(store.rollback('web'), InvalidStateError);
    history = await store.history('web');
    assert.deepEqual(history.slice(0, 2).map((h) => [h.digest, h.action]), [
      [a.digest, 'rollback'],
      [b.digest, 'rollback'],
    ]);

    await store.tag(c.digest, 'web:latest');
    assert.equal((await store.rollback('web', { steps: 2 })).digest, b.digest);
    await assert.rejects(store.rollback('web', { steps: 0 }), InvalidArgumentError);
    await assert.rejects(store.rollback('never-tagged'), NotFoundError);
    await assert.rejects(store.history('never-tagged'), NotFoundError);
  });

  it('can roll a removed tag back to its last target', async () => {
    await store.tag(c.digest, 'gone:1');
    await store.untag('gone:1');
    const [removed] = await store.history('gone:1');
    assert.deepEqual([removed!.digest, removed!.action, removed!.current], [null, 'untag', true]);
    assert.equal((await store.rollback('gone:1')).digest, c.digest);
    assert.equal((await store.resolve('gone:1')).digest, c.digest);
  });

  it('records a change made by another tool as external', async () => {
    await store.tag(a.digest, 'ext:1');
    const indexPath = join(store.root, 'index.json');
    const index = JSON.parse(await readFile(indexPath, 'utf8')) as ImageIndex;
    // What `skopeo copy … oci:<root>:ext:1` would do: an entry with a tag-only ref.name.
    index.manifests = index.manifests.filter((m) => m.annotations?.['org.opencontainers.image.ref.name'] !== 'docker.io/library/ext:1');
    index.manifests.push({ mediaType: c.mediaType, digest: c.digest, size: c.size, annotations: { 'org.opencontainers.image.ref.name': 'ext:1' } });
    await writeFile(indexPath, JSON.stringify(index));
    assert.equal((await store.resolve('ext:1')).digest, c.digest);
    const history = await store.history('ext:1');
    assert.deepEqual(history.map((h) => [h.digest, h.action]), [
      [c.digest, 'external'],
      [a.digest, 'tag'],
    ]);
    await store.tag(b.digest, 'ext:1');
    const after = JSON.parse(await readFile(indexPath, 'utf8')) as ImageIndex;
    assert.equal(after.manifests.filter((m) => m.annotations?.['org.opencontainers.image.ref.name']?.includes('ext')).length, 1);
    assert.deepEqual((await store.history('ext:1')).map((h) => h.action), ['tag', 'external', 'tag']);
  });

  it('refuses to tag an image whose blobs are missing', async () => {
    const { manifest, layers } = await putSyntheticImage(store, [{ 'x.txt': 'unique-x' }]);
    await rm(store.blobPath(layers[0]!.digest));
    await assert.rejects(store.tag(manifest.digest, 'broken:1'), NotFoundError);
    await assert.rejects(store.resolve('broken:1'), NotFoundError);
  });

  it('putImage checks its layers', async () => {
    await assert.rejects(
      store.putImage({
        config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } },
        layers: [{ descriptor: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${'1'.repeat(64)}`, size: 3 }, diffId: `sha256:${'2'.repeat(64)}` }],
      }),
      NotFoundError,
    );
    await assert.rejects(
      store.putImage({
        config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } },
        layers: [{ descriptor: { mediaType: 'text/plain', digest: `sha256:${'1'.repeat(64)}`, size: 3 }, diffId: `sha256:${'2'.repeat(64)}` }],
      }),
      InvalidArgumentError,
    );
  });
});
