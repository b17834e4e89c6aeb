/**
 * Pull and push against a real registry (Debian's docker-registry, no auth):
 * manifest kinds, indexes and platforms, digests, skipping, mounting,
 * chunked uploads, progress and cancellation.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AbortError, NotFoundError } from '../../src/errors.js';
import type { Descriptor } from '../../src/oci/index.js';
import { ImageStore } from '../../src/image-store.js';
import type { PullProgress, PushProgress } from '../../src/transfer/types.js';
import { buildLayer, putSyntheticImage, sha256 } from '../fixtures/store-images.js';
import { registryMissing, startRegistry, storeState, type RegistryFixture } from '../fixtures/registry.js';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

const hostArch = process.arch === 'x64' ? 'amd64' : process.arch;
const otherArch = hostArch === 'amd64' ? 'arm64' : 'amd64';

/** An image for one architecture, written with putBlob only (so any media types can be used). */
async function putRawImage(
  store: ImageStore,
  options: { arch: string; file: string; docker?: boolean },
): Promise<Descriptor> {
  const layer = await buildLayer({ 'etc/': { type: 'dir' }, 'etc/arch': `${options.arch}\n`, [options.file]: options.file });
  const layerType = options.docker ? DOCKER_LAYER : 'application/vnd.oci.image.layer.v1.tar+gzip';
  const layerDesc = await store.putBlob(layer.gz, { mediaType: layerType });
  const config = Buffer.from(
    JSON.stringify({
      architecture: options.arch,
      os: 'linux',
      config: { Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    }),
  );
  const configDesc = await store.putBlob(config, { mediaType: options.docker ? DOCKER_CONFIG : OCI_CONFIG });
  const mediaType = options.docker ? DOCKER_MANIFEST : OCI_MANIFEST;
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType, config: configDesc, layers: [layerDesc] }),
  );
  const desc = await store.putBlob(manifest, { mediaType });
  return { ...desc, platform: { os: 'linux', architecture: options.arch } };
}

describe('pull and push against a registry', async () => {
  const missing = await registryMissing();
  if (missing) console.log(`# skipping registry tests: ${missing}`);

  let registry: RegistryFixture;
  let dir: string;
  let source: ImageStore;
  let image: Descriptor;
  let layers: Awaited<ReturnType<typeof putSyntheticImage>>['layers'];
  let fresh: () => Promise<ImageStore>;

  before(async () => {
    if (missing) return;
    registry = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), 'dockless-transfer-'));
    source = await ImageStore.open({ root: join(dir, 'source') });
    const built = await putSyntheticImage(source, [
      { 'etc/': { type: 'dir' }, 'etc/hello': 'hello from the base\n', 'bin/': { type: 'dir' } },
      { 'usr/': { type: 'dir' }, 'usr/data': 'x'.repeat(200_000) + Math.random() },
    ]);
    image = built.manifest;
    layers = built.layers;
    await source.tag(image.digest, 'local/app:1');
    let n = 0;
    fresh = () => ImageStore.open({ root: join(dir, `store-${n++}`) });
  });
  after(async () => {
    await registry?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('pushes an image, then pulls it into another store with the same digests and files', { skip: missing }, async () => {
    const events: PushProgress[] = [];
    const pushed = await source.push('local/app:1', { to: `${registry.host}/team/app:1`, onProgress: (e) => events.push(e) });
    assert.equal(pushed.digest, image.digest);
    assert.equal(pushed.reference, `${registry.host}/team/app:1`);
    assert.equal(pushed.tag, '1');
    assert.ok(pushed.uploadedBytes > 200, `uploaded ${pushed.uploadedBytes}`);
    // Manifest last.
    assert.equal(events.at(-1)?.type, 'manifest');
    // `reference` means one thing in every result and event: the full reference, as pushed.
    const last = events.at(-1);
    assert.equal(last?.type === 'manifest' ? last.reference : undefined, pushed.reference);
    assert.ok(events.every((e) => e.op === 'push'));
    assert.ok(events.some((e) => e.type === 'blob' && e.state === 'done' && e.kind === 'config'));

    const store = await fresh();
    const pullEvents: PullProgress[] = [];
    const pulled = await store.pull(`${registry.host}/team/app:1`, { onProgress: (e) => pullEvents.push(e) });
    assert.equal(pulled.digest, image.digest);
    assert.equal(pulled.tag, `${registry.host}/team/app:1`);
    assert.deepEqual(pulled.platform, { os: 'linux', architecture: hostArch });
    assert.equal((await store.resolve(`${registry.host}/team/app:1`)).digest, image.digest);
    for (const layer of layers) assert.equal(await store.hasBlob(layer.digest), true);
    // Unpacked in the same pass: the snapshot is there without another unpack.
    const snap = await store.snapshotPaths(`${registry.host}/team/app:1`);
    assert.ok(snap, 'snapshot ready after pull');
    assert.equal(await readFile(join(snap.lowerDirs[1]!, 'etc', 'hello'), 'utf8'), 'hello from the base\n');
    assert.deepEqual(await store.check(), []);
    const states = pullEvents.filter((e) => e.type === 'layer').map((e) => (e as { state: string }).state);
    assert.ok(states.includes('downloading') && states.includes('done'));
    assert.equal(pullEvents[0]?.type, 'resolved');
    assert.equal(pullEvents.at(-1)?.type, 'done');
  });

  it('starts the largest layer first, whatever its place in the manifest', { skip: missing }, async () => {
    // A layer's download and unpack are one CPU-bound stream: a large layer started last would run alone at the end.
    const origin = await fresh();
    const built = await putSyntheticImage(origin, [
      { 'small/': { type: 'dir' }, 'small/a': 'a' },
      { 'middle/': { type: 'dir' }, 'middle/b': randomBytes(20_000).toString('base64') },
      { 'large/': { type: 'dir' }, 'large/c': randomBytes(120_000).toString('base64') },
    ]);
    await origin.tag(built.manifest.digest, 'local/sizes:1');
    await origin.push('local/sizes:1', { to: `${registry.host}/team/sizes:1` });
    const store = await fresh();
    const started: number[] = [];
    await store.pull(`${registry.host}/team/sizes:1`, {
      concurrency: 1,
      onProgress: (e) => {
        if (e.type === 'layer' && e.state === 'downloading' && !started.includes(e.index)) started.push(e.index);
      },
    });
    assert.deepEqual(started, [2, 1, 0]);
    assert.ok(await store.snapshotPaths(`${registry.host}/team/sizes:1`), 'every layer unpacked');
  });

  it('skips blobs the registry has (HEAD), and layers the store has', { skip: missing }, async () => {
    const events: PushProgress[] = [];
    const again = await source.push('local/app:1', { to: `${registry.host}/team/app:1`, onProgress: (e) => events.push(e) });
    assert.equal(again.uploadedBytes, 0);
    assert.ok(events.filter((e) => e.type === 'blob').every((e) => e.state === 'waiting' || e.state === 'exists'));

    const store = await fresh();
    await store.pull(`${registry.host}/team/app:1`);
    const pullEvents: PullProgress[] = [];
    const second = await store.pull(`${registry.host}/team/app:1`, { onProgress: (e) => pullEvents.push(e) });
    assert.ok(pullEvents.filter((e) => e.type === 'layer').every((e) => e.state === 'waiting' || e.state === 'exists'));
    assert.ok(second.downloadedBytes < 2000, `downloaded ${second.downloadedBytes} (manifest only)`);
  });

  it('mounts blobs from another repository of the same registry', { skip: missing }, async () => {
    const store = await fresh();
    await store.pull(`${registry.host}/team/app:1`);
    const events: PushProgress[] = [];
    const pushed = await store.push(`${registry.host}/team/app:1`, { to: `${registry.host}/copy/app:2`, onProgress: (e) => events.push(e) });
    assert.equal(pushed.uploadedBytes, 0);
    const mounted = events.filter((e) => e.type === 'blob' && e.state === 'mounted');
    assert.equal(mounted.length, 3, 'config and both layers mounted');
    assert.ok(mounted.every((e) => e.type === 'blob' && e.from === 'team/app'));
    const check = await fresh();
    assert.equal((await check.pull(`${registry.host}/copy/app:2`)).digest, image.digest);
  });

  it('uploads in chunks when chunkSize is set', { skip: missing }, async () => {
    const store = await fresh();
    const random = randomBytes(150_000).toString('base64');
    const { manifest, layers: built } = await putSyntheticImage(store, [{ 'big/': { type: 'dir' }, 'big/file': random }]);
    await store.tag(manifest.digest, 'local/chunked:1');
    const sizes: number[] = [];
    const pushed = await store.push('local/chunked:1', {
      to: `${registry.host}/chunked/app:1`,
      chunkSize: 64 * 1024,
      onProgress: (e) => {
        if (e.type === 'blob' && e.state === 'uploading' && e.digest === built[0]!.digest) sizes.push(e.bytes);
      },
    });
    assert.ok(built[0]!.gz.length > 64 * 1024, 'layer spans several chunks');
    assert.ok(sizes.filter((b) => b > 0).length >= 2, `chunks reported: ${sizes.join(',')}`);
    const back = await fresh();
    await back.pull(`${registry.host}/chunked/app:1`);
    assert.deepEqual(await back.readBlob(built[0]!.digest), built[0]!.gz);
    assert.equal(pushed.digest, manifest.digest);
  });

  it('pulls by digest: no tag, kept from GC, and the content verified against the digest', { skip: missing }, async () => {
    const store = await fresh();
    const pulled = await store.pull(`${registry.host}/team/app@${image.digest}`);
    assert.equal(pulled.tag, undefined);
    assert.deepEqual(await store.list(), []);
    assert.equal((await store.resolve(`${registry.host}/team/app@${image.digest}`)).digest, image.digest);
    await store.gc({ gracePeriodMs: 0 });
    assert.equal(await store.hasBlob(layers[1]!.digest), true, 'a pull by digest survives gc');
  });

  it('pulls a Docker schema 2 manifest and a Docker manifest list', { skip: missing }, async () => {
    const docker = await putRawImage(source, { arch: hostArch, file: 'docker-file', docker: true });
    await source.tag(docker.digest, 'local/docker:1');
    await source.push('local/docker:1', { to: `${registry.host}/docker/app:1` });
    const store = await fresh();
    const pulled = await store.pull(`${registry.host}/docker/app:1`);
    assert.equal(pulled.mediaType, DOCKER_MANIFEST);
    assert.equal(pulled.digest, docker.digest);
    const snap = await store.snapshot(`${registry.host}/docker/app:1`);
    assert.equal(await readFile(join(snap.lowerDirs[0]!, 'docker-file'), 'utf8'), 'docker-file');

    const other = await putRawImage(source, { arch: otherArch, file: 'other-file', docker: true });
    const list = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_LIST, manifests: [other, docker] }));
    const listDesc = await source.putBlob(list, { mediaType: DOCKER_LIST });
    await source.tag(listDesc.digest, 'local/docker:list');
    const pushedList = await source.push('local/docker:list', { to: `${registry.host}/docker/app:list` });
    assert.equal(pushedList.mediaType, DOCKER_LIST);
    const fromList = await fresh();
    const r = await fromList.pull(`${registry.host}/docker/app:list`);
    assert.equal(r.digest, listDesc.digest);
    assert.equal(r.manifest.digest, docker.digest);
  });

  it('picks the platform from an OCI index: the host by default, or the one asked for', { skip: missing }, async () => {
    const mine = await putRawImage(source, { arch: hostArch, file: 'host-file' });
    const theirs = await putRawImage(source, { arch: otherArch, file: 'other-file' });
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [theirs, mine] }));
    const indexDesc = await source.putBlob(index, { mediaType: OCI_INDEX });
    await source.tag(indexDesc.digest, 'local/multi:1');
    const pushed = await source.push('local/multi:1', { to: `${registry.host}/multi/app:1` });
    assert.equal(pushed.digest, indexDesc.digest);

    const host = await fresh();
    const pulledHost = await host.pull(`${registry.host}/multi/app:1`);
    assert.equal(pulledHost.digest, indexDesc.digest);
    assert.equal(pulledHost.mediaType, OCI_INDEX);
    assert.equal(pulledHost.manifest.digest, mine.digest);
    assert.equal(await host.hasBlob(theirs.digest), false, 'only the chosen platform is downloaded');
    const snap = await host.snapshot(`${registry.host}/multi/app:1`);
    assert.equal(await readFile(join(snap.lowerDirs[0]!, 'host-file'), 'utf8'), 'host-file');

    const foreign = await fresh();
    const pulledForeign = await foreign.pull(`${registry.host}/multi/app:1`, { platform: `linux/${otherArch}` });
    assert.equal(pulledForeign.manifest.digest, theirs.digest);
    assert.deepEqual(pulledForeign.platform, { os: 'linux', architecture: otherArch });

    // A pulled index holds one platform: pushing it on pushes that platform's manifest.
    const repushed = await host.push(`${registry.host}/multi/app:1`, { to: `${registry.host}/multi/host-only:1` });
    assert.equal(repushed.digest, mine.digest);

    await assert.rejects(
      (await fresh()).pull(`${registry.host}/multi/app:1`, { platform: 'linux/s390x' }),
      (err: unknown) => err instanceof NotFoundError && /no manifest for linux\/s390x in the image index \(it has /.test(err.message),
    );
  });

  it('cancels a pull through its signal, leaving the store as it was', { skip: missing }, async () => {
    const store = await fresh();
    const before = await storeState(store);
    const controller = new AbortController();
    await assert.rejects(
      store.pull(`${registry.host}/team/app:1`, {
        signal: controller.signal,
        onProgress: (e) => {
          if (e.type === 'resolved') controller.abort(new Error('changed my mind'));
        },
      }),
      AbortError,
    );
    assert.equal(await storeState(store), before);
    await assert.rejects(store.pull(`${registry.host}/team/app:1`, { signal: AbortSignal.abort() }), AbortError);
  });

  it('cancels a push through its signal: the manifest is never pushed', { skip: missing }, async () => {
    const store = await fresh();
    const { manifest } = await putSyntheticImage(store, [{ 'big/': { type: 'dir' }, 'big/file': randomBytes(300_000).toString('base64') }]);
    await store.tag(manifest.digest, 'local/abort:1');
    const controller = new AbortController();
    await assert.rejects(
      store.push('local/abort:1', {
        to: `${registry.host}/abort/app:1`,
        signal: controller.signal,
        onProgress: (e) => {
          if (e.type === 'blob' && e.state === 'uploading') controller.abort(new Error('changed my mind'));
        },
      }),
      AbortError,
    );
    await assert.rejects((await fresh()).pull(`${registry.host}/abort/app:1`), NotFoundError);
    await assert.rejects(store.push('local/abort:1', { to: `${registry.host}/abort/app:1`, signal: AbortSignal.abort() }), AbortError);
  });

  it('verifies a manifest pulled by digest against that digest', { skip: missing }, async () => {
    // The registry answers by digest with the content it has; asking for a digest it does not have is not found.
    const wrong = sha256('no such manifest');
    await assert.rejects((await fresh()).pull(`${registry.host}/team/app@${wrong}`), NotFoundError);
  });
});
