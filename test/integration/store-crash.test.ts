import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { ImageStore } from '../../src/image-store.js';

const CHILD = fileURLToPath(new URL('../fixtures/store-crash-child.ts', import.meta.url));
const KILLS = 50;
const PARALLEL = 6;

/** Starts a child, waits for it to be working, lets it run a random while, and SIGKILLs it. */
function killAtRandom(root: string, seed: number, delayMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, root, String(seed)], {
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
});
