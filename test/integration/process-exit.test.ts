import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { cannotRun, makeWorld, type World } from '../fixtures/world.js';

const why = cannotRun();
if (why !== undefined) console.log(`# skipped process-exit: ${why}`);
const child = join(import.meta.dirname, '..', 'fixtures', 'exit-after-remove-child.ts');
const BUNDLE = resolve(import.meta.dirname, '..', '..', 'dist', 'bundle', 'index.js');

/** The stage recorded in a code cache file's head (src/util/script-cache.ts: magic, 4-byte length, JSON). */
function cacheStage(file: string): string {
  const data = readFileSync(file);
  const magic = 'dockless-v8-cache-2\n'.length;
  return (JSON.parse(data.toString('utf8', magic + 4, magic + 4 + data.readUInt32LE(magic))) as { stage: string }).stage;
}

describe('process exit', { skip: why }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => world?.dispose());

  // remove() deletes the container's directories in a batch that waited 25 ms on a timer holding the
  // event loop: `node app.mjs` that ran one container ended 25 ms or more after its last line. The
  // process now ends at once and a detached helper `rm` deletes what was queued.
  it('a process that runs and removes one container ends at once, and the container\'s directories are gone after', async () => {
    const lags: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', child, world.runtime.root, world.runtime.stateDir, world.rootfs], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 0, r.stderr);
      const { lagMs, dirs } = JSON.parse(r.stdout) as { lagMs: number; dirs: string[] };
      lags.push(lagMs);
      // The directories were renamed into the trash beside them before remove() returned; the trash empties once the detached rm has run.
      for (const dir of dirs) assert.equal(existsSync(dir), false, `${dir} is still there`);
      // The process's only removal comes before its fork server: its event is appended on the caller's thread, not the server's.
      const id = basename(dirs[0]!);
      const events = readFileSync(join(world.runtime.stateDir, 'events.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { action: string; id: string });
      assert.deepEqual(events.filter((e) => e.id === id).map((e) => e.action).slice(-2), ['die', 'remove']);
      const trashes = dirs.map((dir) => join(dirname(dir), '.trash'));
      const left = () => trashes.flatMap((trash) => (existsSync(trash) ? readdirSync(trash).map((name) => join(trash, name)) : []));
      for (let t = 0; t < 250 && left().length > 0; t++) await sleep(20);
      assert.deepEqual(left(), [], 'the removed container\'s directories are left in the trash');
    }
    // The old lag was the batch's 25 ms wait at least; the best of three keeps a loaded machine's stalls out.
    assert.ok(Math.min(...lags) < 12, `remove() to exit: ${lags.map((l) => l.toFixed(1)).join(', ')} ms`);
  });

  // The detached rm was forked at `beforeExit`, after the last remove(): a fork of the whole Node process
  // (~3 ms) between the program's last line and its end. It is now forked while the program waits for its
  // first container, and the exit only hands it the trash.
  it('a process that runs and removes one container starts no process between remove() and its exit', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', child, world.runtime.root, world.runtime.stateDir, world.rootfs], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    const { atRemove, atExit } = JSON.parse(r.stdout) as { atRemove: number[]; atExit: number[] };
    assert.deepEqual(atExit.filter((pid) => !atRemove.includes(pid)), [], `helper processes started after remove(): ${JSON.stringify({ atRemove, atExit })}`);
  });

  // The code cache was written after the import only, so every process's first container compiled the
  // run path from source. The first process that runs one through the built package rewrites it once.
  it('the first process that runs a container rewrites the code cache once, at the run stage', { skip: existsSync(BUNDLE) ? undefined : 'dist/bundle not built: run npm run build' }, () => {
    const cacheHome = mkdtempSync(join(tmpdir(), 'dockless-cache-stage-'));
    try {
      const node = (code: string) => {
        const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', env: { ...process.env, XDG_CACHE_HOME: cacheHome }, timeout: 30_000 });
        assert.equal(r.status, 0, r.stderr);
      };
      const app = [
        `const { Runtime } = await import(${JSON.stringify(BUNDLE)});`,
        `const runtime = new Runtime({ root: ${JSON.stringify(world.runtime.root)}, stateDir: ${JSON.stringify(world.runtime.stateDir)} });`,
        `const c = await runtime.run({ rootfs: ${JSON.stringify(world.rootfs)}, cmd: ['true'], stdio: 'ignore' });`,
        'await c.wait();',
        'await c.remove();',
      ].join('\n');
      node(`await import(${JSON.stringify(BUNDLE)});`);
      const dir = join(cacheHome, 'dockless', 'code');
      const [name] = readdirSync(dir);
      const file = join(dir, name!);
      const atImport = statSync(file);
      assert.equal(cacheStage(file), 'load');
      node(app);
      const atRun = statSync(file);
      assert.equal(cacheStage(file), 'run');
      assert.ok(atRun.size > atImport.size, `the run path's code is in it: ${atImport.size} -> ${atRun.size} bytes`);
      node(app);
      node(`await import(${JSON.stringify(BUNDLE)});`);
      assert.equal(statSync(file).ino, atRun.ino, 'written once');
      assert.deepEqual(readdirSync(dir), [name]);
    } finally {
      rmSync(cacheHome, { recursive: true, force: true });
    }
  });
});
