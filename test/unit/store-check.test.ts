import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { InvalidStateError } from '../../src/errors.js';
import { ImageStore } from '../../src/image-store.js';
import { putSyntheticImage } from '../fixtures/store-images.js';

describe('ImageStore check', () => {
  let dir: string;
  let store: ImageStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-store-check-'));
    store = await ImageStore.open({ root: join(dir, 'store') });
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const image = async (name: string) => {
    const img = await putSyntheticImage(store, [{ [`${name}.txt`]: name }, { [`${name}2.txt`]: name }]);
    await store.tag(img.manifest.digest, `${name}:1`);
    const snap = await store.snapshot(`${name}:1`);
    return { ...img, snap };
  };

  it('reports nothing for a healthy store', async () => {
    await image('healthy');
    assert.deepEqual(await store.check(), []);
  });

  it('reports a blob whose content does not match its digest', async () => {
    const img = await image('corrupt');
    await writeFile(store.blobPath(img.layers[1]!.digest), 'garbage');
    const problems = await store.check();
    assert.ok(problems.some((p) => p.kind === 'corrupt-blob' && p.digest === img.layers[1]!.digest), JSON.stringify(problems));
  });

  it('reports a tag whose image lacks a blob', async () => {
    const img = await image('missing');
    await unlink(store.blobPath(img.layers[0]!.digest));
    const problems = await store.check();
    assert.deepEqual(
      problems.map((p) => [p.kind, p.digest, p.reference]),
      [['missing-blob', img.layers[0]!.digest, 'docker.io/library/missing:1']],
    );
  });

  it('reports a history entry whose image is gone', async () => {
    const old = await image('old');
    const next = await putSyntheticImage(store, [{ 'next.txt': 'n' }]);
    await store.tag(next.manifest.digest, 'old:1');
    await unlink(store.blobPath(old.manifest.digest));
    const problems = await store.check();
    assert.ok(problems.some((p) => p.kind === 'missing-blob' && p.digest === old.manifest.digest && p.reference === 'docker.io/library/old:1'));
  });

  it('reports snapshots without completion marker or files', async () => {
    const img = await image('snap');
    await unlink(join(img.snap.lowerDirs[0]!, '..', 'snapshot.json'));
    await rm(img.snap.lowerDirs[1]!, { recursive: true });
    await mkdir(join(store.root, 'dockless', 'snapshots', 'f'.repeat(64)));
    const problems = await store.check();
    assert.equal(problems.filter((p) => p.kind === 'incomplete-snapshot').length, 3, JSON.stringify(problems));
    // The fast path notices a missing marker; snapshot() repairs by unpacking again.
    assert.equal(await store.snapshotPaths('snap:1'), undefined);
    await rm(join(img.snap.lowerDirs[1]!, '..'), { recursive: true });
    await rm(join(store.root, 'dockless', 'snapshots', 'f'.repeat(64)), { recursive: true });
    await store.snapshot('snap:1');
    assert.deepEqual(await store.check(), []);
  });

  // A snapshot moved under the other variant's name would be used by callers it was not unpacked for.
  it('reports a snapshot whose completion marker names another variant than its directory', async () => {
    const img = await image('variant');
    const snapshot = join(img.snap.lowerDirs[0]!, '..');
    const other = snapshot.endsWith('-rootless') ? snapshot.slice(0, -'-rootless'.length) : `${snapshot}-rootless`;
    await rename(snapshot, other);
    const problems = await store.check();
    assert.deepEqual(
      problems.map((p) => [p.kind, p.path]),
      [['incomplete-snapshot', other]],
    );
    assert.match(problems[0]!.message, /completion marker says a (root|rootless) unpack, the directory is for a (rootless|root) one/);
  });

  it('refuses to open a layout of another version', async () => {
    await writeFile(join(store.root, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}');
    await assert.rejects(ImageStore.open({ root: store.root }), InvalidStateError);
    assert.equal((await store.check())[0]?.kind, 'invalid-layout');
  });
});
