import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { ImageStore } from '../../src/image-store.js';
import { putSyntheticImage } from '../fixtures/store-images.js';
import { registryMissing, startRegistry } from '../fixtures/registry.js';

const CHILD = fileURLToPath(new URL('../fixtures/store-crash-child.ts', import.meta.url));
const PULL_CHILD = fileURLToPath(new URL('../fixtures/store-pull-child.ts', import.meta.url));
const KILLS = 50;
const PARALLEL = 6;

/** Starts a child (`script ROOT ARG`), waits for it to be working, lets it run a random while, and SIGKILLs it. */
function killAtRandom(root: string, seed: number, delayMs: number, script = CHILD, arg = String(seed)): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, root, arg], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d: Buffer) => {
      if (!killed && d.toString().includes('ready')) {
        killed = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal === 'SIGKILL') resolve(stderr);
      else reject(new Error(`crash child exited by itself (code ${code}): ${stderr}`));
    });
  });
}

describe('ImageStore after crashes', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-store-crash-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it(`opens clean after ${KILLS} SIGKILLs at random points of import, tag, unpack and gc`, async () => {
    const root = join(dir, 'store');
    // A pool of children working on the store at once, each replaced as soon as it is killed.
    let started = 0;
    const worker = async (): Promise<void> => {
      while (started < KILLS) {
        const seed = ++started;
        await killAtRandom(root, seed, Math.floor(Math.random() * 400));
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));

    const store = await ImageStore.open({ root });
    assert.deepEqual(await store.check(), []);
    // Nothing partial is visible, and open() removed what the dead processes left.
    const state = join(root, 'dockless');
    assert.deepEqual(await readdir(join(state, 'ingest')), []);
    assert.deepEqual(await readdir(join(state, 'tmp')), []);
    assert.deepEqual(await readdir(join(state, 'trash')), []);
    for (const name of await readdir(join(state, 'snapshots'))) {
      assert.ok(!name.startsWith('tmp-'), `leftover ${name}`);
      await stat(join(state, 'snapshots', name, 'snapshot.json'));
    }
    // Every tag points to a complete image that unpacks.
    const images = await store.list();
    assert.ok(images.length > 0);
    for (const { reference } of images) await store.snapshot(reference);
    // The dead processes' leases end; collecting leaves a healthy store.
    await store.gc({ gracePeriodMs: 0 });
    assert.deepEqual(await store.leases(), []);
    assert.deepEqual(await store.check(), []);
  });

  it('leaves no half-written image after pulls killed at random points', async (t) => {
    const missing = await registryMissing();
    if (missing) return t.skip(missing);
    // A pull's blobs, snapshots and tag become visible in one commit: a pull killed anywhere (download,
    // unpack, blob fsync, commit, publish, tag) leaves a store that opens clean, with a complete image or none.
    await using registry = await startRegistry();
    const source = await ImageStore.open({ root: join(dir, 'pull-source') });
    const noise = (n: number): string => randomBytes(n).toString('base64');
    const { manifest } = await putSyntheticImage(source, [
      { 'etc/': { type: 'dir' }, 'etc/base': 'base' },
      { 'a/': { type: 'dir' }, ...Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`a/f${i}`, noise(8_000)])) },
      { 'b/': { type: 'dir' }, 'b/big': noise(3_000_000) },
    ]);
    await source.tag(manifest.digest, 'local/crash:1');
    const reference = `${registry.host}/crash/pull:1`;
    await source.push('local/crash:1', { to: reference });
    const root = join(dir, 'pull-store');
    for (let kill = 0; kill < 12; kill++) await killAtRandom(root, kill, Math.floor(Math.random() * 1500), PULL_CHILD, reference);

    const store = await ImageStore.open({ root });
    assert.deepEqual(await store.check(), []);
    const state = join(root, 'dockless');
    assert.deepEqual(await readdir(join(state, 'ingest')), []);
    for (const name of await readdir(join(state, 'snapshots'))) {
      assert.ok(!name.startsWith('tmp-'), `leftover ${name}`);
      await stat(join(state, 'snapshots', name, 'snapshot.json'));
    }
    // A tag the killed pulls left names the whole image, which runs without another download.
    for (const { reference: tagged } of await store.list()) {
      assert.equal(tagged, reference);
      assert.ok(await store.snapshotPaths(tagged), 'a tagged image has its snapshots');
    }
    // And the store pulls the image again as if nothing had happened.
    await store.pull(reference);
    assert.ok(await store.snapshotPaths(reference));
    assert.deepEqual(await store.check(), []);
  });
});
