import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { ImageStore } from '../../src/image-store.js';

const CHILD = fileURLToPath(new URL('../fixtures/store-worker-child.ts', import.meta.url));
const WORKERS = 4;
const IMAGES = 6;

function runChild(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('ImageStore used by several processes at once', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-store-conc-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it(`${WORKERS} processes importing, tagging, unpacking and collecting end with a consistent store`, async () => {
    const root = join(dir, 'store');
    const results = await Promise.all(
      Array.from({ length: WORKERS }, (_, id) => runChild([root, String(id), String(IMAGES)])),
    );
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const reports = results.map((r) => JSON.parse(r.stdout.trim()) as { baseUnpacked: number });
    // The shared base layer is unpacked exactly once across all processes.
    assert.equal(reports.reduce((n, r) => n + r.baseUnpacked, 0), 1);

    const store = await ImageStore.open({ root, historyRetention: { maxEntries: 1000 } });
    const refs = (await store.list()).map((i) => i.reference);
    const expected = ['docker.io/library/shared:latest'];
    for (let id = 0; id < WORKERS; id++) for (let i = 0; i < IMAGES; i++) expected.push(`docker.io/library/worker${id}:${i}`);
    assert.deepEqual(refs.sort(), expected.sort());
    // No lost update: every one of the concurrent re-tags of shared:latest is in its history.
    const history = await store.history('shared:latest');
    assert.equal(history.length, WORKERS * IMAGES);
    assert.ok(history.every((h) => h.action === 'tag'));
    assert.equal(history[0]!.digest, (await store.resolve('shared:latest')).digest);
    assert.deepEqual(await store.leases(), []);
    assert.deepEqual(await store.check(), []);
    for (const ref of refs) assert.ok(await store.snapshotPaths(ref), `${ref} is unpacked`);
    const gc = await store.gc({ gracePeriodMs: 0 });
    assert.deepEqual([gc.blobs, gc.snapshots], [[], []]);
    assert.deepEqual(await readdir(join(root, 'dockless', 'ingest')), []);
  });
});
