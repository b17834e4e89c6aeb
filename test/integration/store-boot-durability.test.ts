// Snapshots are published before their files reach the disk and flushed in the
// background; a marker that says `flushed: false` is trusted only in the boot
// that wrote it. These tests fake the boot id to simulate a reboot.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { ImageStore, InvalidStateError, Runtime, type SnapshotProgress } from '../../src/index.js';
import { setBootIdForTesting, setFlushDelayForTesting } from '../../src/store/durability.js';
import { runCli } from '../fixtures/cli-terminal.js';
import { putSyntheticImage } from '../fixtures/store-images.js';
import { cannotRun, makeWorld, type World } from '../fixtures/world.js';

const CHILD = fileURLToPath(new URL('../fixtures/store-flush-child.ts', import.meta.url));
const suffix = process.getuid?.() === 0 ? '' : '-rootless';

function markerPath(store: ImageStore, chainId: string): string {
  return join(store.root, 'dockless', 'snapshots', `${chainId.slice(7)}${suffix}`, 'snapshot.json');
}

async function readMarker(store: ImageStore, chainId: string): Promise<{ flushed?: boolean; boot?: string; created: string }> {
  return JSON.parse(await readFile(markerPath(store, chainId), 'utf8'));
}

/** Unpacks `image` with progress events (no fast path); whether each layer was found unpacked. */
async function cachedLayers(store: ImageStore, image: string): Promise<boolean[]> {
  const cached: boolean[] = [];
  await store.snapshot(image, {
    onProgress: (e: SnapshotProgress) => {
      if (e.type === 'layer-done') cached[e.index] = e.cached;
    },
  });
  return cached;
}

describe('snapshots published before their flush, across a (simulated) reboot', () => {
  let dir: string;
  let n = 0;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-boot-durable-'));
  });
  beforeEach(() => {
    // Long enough that no background flush runs during a test unless it asks for one.
    setFlushDelayForTesting(600_000);
    setBootIdForTesting('boot-a');
  });
  afterEach(() => {
    setFlushDelayForTesting(undefined);
    setBootIdForTesting(undefined);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  async function unpackedImage(): Promise<{ store: ImageStore; image: string; chainId: string }> {
    const store = await ImageStore.open({ root: join(dir, `store-${n++}`) });
    const { manifest } = await putSyntheticImage(store, [{ 'etc/': { type: 'dir' }, 'etc/hostname': 'durable\n' }]);
    await store.tag(manifest.digest, 'example.test/durable:1');
    const snap = await store.snapshot('example.test/durable:1');
    return { store, image: 'example.test/durable:1', chainId: snap.chainIds[0]! };
  }

  it('publishes a snapshot unflushed, with the boot id, and uses it in the same boot', async () => {
    const { store, image, chainId } = await unpackedImage();
    const marker = await readMarker(store, chainId);
    assert.equal(marker.flushed, false);
    assert.equal(marker.boot, 'boot-a');
    assert.notEqual(await store.snapshotPaths(image), undefined);
    assert.deepEqual(await cachedLayers(store, image), [true]);
    assert.deepEqual(await store.check(), []);
  });

  // After a power loss the page cache is gone: an unflushed snapshot from another boot may lack files.
  it('does not use an unflushed snapshot from another boot, and unpacks it again', async () => {
    const { store, image, chainId } = await unpackedImage();
    setBootIdForTesting('boot-b');
    assert.equal(await store.snapshotPaths(image), undefined);
    assert.deepEqual(await cachedLayers(store, image), [false]);
    const marker = await readMarker(store, chainId);
    assert.equal(marker.boot, 'boot-b');
    assert.equal(await readFile(join((await store.snapshot(image)).lowerDirs[0]!, 'etc', 'hostname'), 'utf8'), 'durable\n');
  });

  it('flush() waits for the files to be on disk and marks the snapshot flushed; it is then trusted in any boot', async () => {
    const { store, image, chainId } = await unpackedImage();
    await store.flush();
    const marker = await readMarker(store, chainId);
    assert.equal(marker.flushed, true);
    setBootIdForTesting('boot-b');
    assert.notEqual(await store.snapshotPaths(image), undefined);
    assert.deepEqual(await cachedLayers(store, image), [true]);
  });

  it('flushes in the background without being asked', async () => {
    setFlushDelayForTesting(0);
    const { store, chainId } = await unpackedImage();
    let marker = await readMarker(store, chainId);
    for (let i = 0; i < 500 && marker.flushed === false; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      marker = await readMarker(store, chainId);
    }
    assert.equal(marker.flushed, true);
  });

  it('check() reports an unflushed snapshot from another boot and gc() removes it, though an image uses it', async () => {
    const { store, image, chainId } = await unpackedImage();
    setBootIdForTesting('boot-b');
    const problems = await store.check();
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.equal(problems[0]!.kind, 'incomplete-snapshot');
    assert.equal(problems[0]!.path, join(store.root, 'dockless', 'snapshots', `${chainId.slice(7)}${suffix}`));
    // Within the default grace period and referenced by a tag: still collected.
    const result = await store.gc();
    assert.deepEqual(result.snapshots, [chainId]);
    assert.deepEqual(await store.check(), []);
    assert.deepEqual(await cachedLayers(store, image), [false]);
  });

  // The background flush's helper does not hold the event loop; flush() must, or a command ending on it exits first.
  it('flush() keeps the process alive until a background flush it waits for has ended', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', CHILD, join(dir, `store-${n++}`)]);
    assert.equal(stdout, 'true\n');
  });

  it('tolerates the store being removed while its flush runs', async () => {
    const { store } = await unpackedImage();
    const flushing = store.flush();
    await rm(store.root, { recursive: true, force: true });
    await flushing;
  });

  // A command ends well before the background flush's timer: Docker's daemon keeps what it loaded across a reboot, so must it.
  it('`dockless load` ends with its snapshots flushed', async () => {
    const source = await ImageStore.open({ root: join(dir, `store-${n++}`) });
    const { manifest } = await putSyntheticImage(source, [{ 'a.txt': 'a\n' }, { 'b.txt': 'b\n' }]);
    await source.tag(manifest.digest, 'example.test/loaded:1');
    const layout = join(dir, 'layout');
    await source.export('example.test/loaded:1', layout, { format: 'oci' });
    const root = join(dir, 'cli');
    const loaded = await runCli(['load', '-i', layout], { DOCKLESS_ROOT: root });
    assert.equal(loaded.code, 0, loaded.stderr);
    const snapshots = join(root, 'store', 'dockless', 'snapshots');
    const names = (await readdir(snapshots)).filter((name) => /^[0-9a-f]{64}/.test(name));
    assert.equal(names.length, 2, names.join(', '));
    for (const name of names) {
      const marker = JSON.parse(await readFile(join(snapshots, name, 'snapshot.json'), 'utf8')) as { flushed?: boolean };
      assert.notEqual(marker.flushed, false, name);
    }
  });
});

const skipRun = cannotRun();

describe('restart of a container whose image a reboot caught unflushed', { skip: skipRun }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    setFlushDelayForTesting(undefined);
    setBootIdForTesting(undefined);
    await world?.dispose();
  });

  // Its lower dir may have lost files in the reboot: starting it on them could run a half-written binary.
  it('refuses with InvalidStateError and leaves the container as it was', async () => {
    setFlushDelayForTesting(600_000);
    setBootIdForTesting('boot-a');
    const store = await ImageStore.open({ root: join(world.base, 'store') });
    const runtime = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir, store });
    const { manifest } = await putSyntheticImage(store, [{ 'bin/': { type: 'dir' } }]);
    await store.tag(manifest.digest, 'example.test/restart:1');
    // The probe binary comes from the world's rootfs, bound in; the image itself has only /bin.
    const c = await runtime.run({
      image: 'example.test/restart:1',
      cmd: ['/probe/probe', 'hostname'],
      mounts: [{ type: 'bind', source: join(world.rootfs, 'bin'), target: '/probe', readonly: true }],
      stdio: 'ignore',
    });
    await c.wait();
    const status = c.status;
    setBootIdForTesting('boot-b');
    await assert.rejects(c.restart(), (err: unknown) => err instanceof InvalidStateError && /not flushed to disk before the machine rebooted/.test(err.message));
    assert.equal(c.status, status);
    await c.remove();
  });

  // `dockless start` of a created or exited container may come after a reboot: the image the command unpacked must be on disk.
  it('`dockless create` and `run -d` end with the snapshots they unpacked flushed', async () => {
    const root = join(world.base, 'cli-unpack');
    const store = await ImageStore.open({ root: join(root, 'store') });
    const { manifest, layers } = await putSyntheticImage(store, [{ 'bin/': { type: 'dir' } }]);
    // One layer: its chainID is its diffID.
    const chainId = layers[0]!.diffId;
    const marker = join(root, 'store', 'dockless', 'snapshots', chainId.slice(7), 'snapshot.json');
    await store.tag(manifest.digest, 'example.test/cli-unpack:1');
    const env = { DOCKLESS_ROOT: root };
    for (const command of [['create'], ['run', '-d']]) {
      const created = await runCli([...command, '-v', `${join(world.rootfs, 'bin')}:/probe:ro`, 'example.test/cli-unpack:1', '/probe/probe', 'hostname'], env);
      assert.equal(created.code, 0, created.stderr);
      try {
        const flushed = (JSON.parse(await readFile(marker, 'utf8')) as { flushed?: boolean }).flushed;
        assert.notEqual(flushed, false, `${command.join(' ')}: the snapshot it unpacked is not flushed`);
      } finally {
        // A created container's shim waits for its start: removed even when the check failed.
        const removed = await runCli(['rm', '-f', created.stdout.trim()], env);
        assert.equal(removed.code, 0, removed.stderr);
      }
      // The next command unpacks it again.
      await rm(join(root, 'store', 'dockless', 'snapshots', chainId.slice(7)), { recursive: true, force: true });
    }
  });
});
