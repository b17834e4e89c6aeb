/**
 * The V8 code cache of the bundle (src/util/script-cache.ts): a cache file is
 * compiled code that V8 runs unchecked, so one that is damaged, refused by
 * V8, not the user's own or writable by others must be ignored and the script
 * compiled from its source, with the same result.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { checksum, checksumPortable } from '../../src/util/checksum.js';
import { CODE_CACHE_ENV, pruneCodeCache, runCachedScript } from '../../src/util/script-cache.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const base = mkdtempSync(join(tmpdir(), 'dockless-script-cache-'));
after(() => rmSync(base, { recursive: true, force: true }));

let n = 0;
/** A fresh script and cache directory: the script evaluates to a function returning `value`. */
function world(value = 42) {
  const dir = join(base, String(n++));
  const script = join(dir, 'core.js');
  const cacheDir = join(dir, 'cache');
  execFileSync('mkdir', ['-p', dir]);
  writeFileSync(script, `(function () { const table = ${JSON.stringify(Array.from({ length: 200 }, (_, i) => `entry ${i}`))}; return /* value */ ${value} + table.length * 0; })`);
  const load = () => runCachedScript(script, { cacheDir, key: 'test' });
  const call = (r: ReturnType<typeof load>) => (r.value as () => number)();
  return { script, cacheDir, load, call };
}

describe('checksum', () => {
  test('the WebAssembly checksum is the documented function (checksumPortable), at every length around a word, a chunk and its copies', () => {
    // The cache's integrity check is a base64 blob of WebAssembly: this holds it to its readable twin.
    for (const length of [0, 1, 7, 8, 9, 15, 16, 17, 1023, 1024, 1025, 1031, 65527, 65528, 65536, 65537, 300001, 1_200_003]) {
      const data = randomBytes(length);
      assert.equal(checksum(data), checksumPortable(data), `${length} bytes`);
    }
    assert.equal(checksum('dockless'), checksumPortable(Buffer.from('dockless')));
  });

  test('any one byte changed, or a zero byte added, changes the checksum', () => {
    // A byte flipped within the last, zero-padded word, or a zero appended, must not go unnoticed.
    const data = randomBytes(4099);
    const sum = checksum(data);
    for (const at of [0, 1, 7, 8, 2048, 4091, 4096, 4098]) {
      const damaged = Buffer.from(data);
      damaged[at]! ^= 1;
      assert.notEqual(checksum(damaged), sum, `byte ${at}`);
    }
    assert.notEqual(checksum(Buffer.concat([data, Buffer.alloc(1)])), sum);
    assert.notEqual(checksum(data.subarray(0, 4098)), sum);
  });
});

describe('runCachedScript', () => {
  test('a first load writes the cache, the next one runs from it', () => {
    const w = world();
    const first = w.load();
    assert.equal(first.cache, 'miss');
    assert.equal(w.call(first), 42);
    first.flush();
    assert.equal(statSync(first.cacheFile!).mode & 0o777, 0o600);
    assert.equal(statSync(w.cacheDir).mode & 0o777, 0o700);
    const second = w.load();
    assert.equal(second.cache, 'hit');
    assert.equal(w.call(second), 42);
  });

  test('a damaged cache file is compiled around and replaced', () => {
    const w = world();
    const first = w.load();
    first.flush();
    const data = readFileSync(first.cacheFile!);
    // One byte of V8's payload changed: V8 itself would not notice (it checks a length, not the bytes).
    data[data.length - 100] ^= 0xff;
    writeFileSync(first.cacheFile!, data);
    const damaged = w.load();
    assert.equal(damaged.cache, 'miss');
    assert.equal(w.call(damaged), 42);
    damaged.flush();
    assert.equal(w.load().cache, 'hit');
  });

  test('a truncated cache file is compiled around', () => {
    const w = world();
    const first = w.load();
    first.flush();
    writeFileSync(first.cacheFile!, readFileSync(first.cacheFile!).subarray(0, 40));
    const r = w.load();
    assert.equal(r.cache, 'miss');
    assert.equal(w.call(r), 42);
  });

  test('a cache V8 refuses (made with other V8 flags) is rejected and rewritten', () => {
    const w = world();
    // Another Node process with another V8 flag writes the cache: V8 refuses code compiled under other flags.
    const code = `import { runCachedScript } from ${JSON.stringify(join(REPO, 'src/util/script-cache.ts'))};
      runCachedScript(${JSON.stringify(w.script)}, { cacheDir: ${JSON.stringify(w.cacheDir)}, key: 'test' }).flush();`;
    execFileSync(process.execPath, ['--stack-size=900', '--import', 'tsx', '--input-type=module', '-e', code], { stdio: 'inherit' });
    const r = w.load();
    assert.equal(r.cache, 'rejected');
    assert.equal(w.call(r), 42);
    r.flush();
    assert.equal(w.load().cache, 'hit');
  });

  test('a cache of another build of the script (another key) is not used', () => {
    const w = world();
    w.load().flush();
    const other = runCachedScript(w.script, { cacheDir: w.cacheDir, key: 'another build' });
    assert.equal(other.cache, 'miss');
  });

  // The first `dockless` command after an install must not decide what an app's import finds cached.
  test('each variant keeps a cache file of its own', () => {
    const w = world();
    const cli = runCachedScript(w.script, { cacheDir: w.cacheDir, key: 'test', variant: 'cli' });
    cli.flush();
    const app = runCachedScript(w.script, { cacheDir: w.cacheDir, key: 'test', variant: 'index' });
    assert.equal(app.cache, 'miss');
    assert.notEqual(app.cacheFile, cli.cacheFile);
    app.flush();
    assert.equal(runCachedScript(w.script, { cacheDir: w.cacheDir, key: 'test', variant: 'cli' }).cache, 'hit');
    assert.equal(runCachedScript(w.script, { cacheDir: w.cacheDir, key: 'test', variant: 'index' }).cache, 'hit');
  });

  test('a cache file that others can write is not used, nor replaced (also when the process reaches a new stage)', () => {
    const w = world();
    const first = w.load();
    first.flush();
    chmodSync(first.cacheFile!, 0o666);
    const before = readFileSync(first.cacheFile!);
    const r = w.load();
    assert.equal(r.cache, 'untrusted');
    assert.equal(w.call(r), 42);
    r.reached('run');
    r.flush();
    assert.deepEqual(readFileSync(first.cacheFile!), before);
  });

  test('a cache directory that others can write is not used, nor written to', () => {
    const w = world();
    const first = w.load();
    first.flush();
    chmodSync(w.cacheDir, 0o777);
    const r = w.load();
    assert.equal(r.cache, 'untrusted');
    assert.equal(w.call(r), 42);
  });

  test('a cache file owned by another user is not used', (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('needs root to give the cache file to another user');
      return;
    }
    const w = world();
    const first = w.load();
    first.flush();
    chownSync(first.cacheFile!, 65534, 65534);
    const r = w.load();
    assert.equal(r.cache, 'untrusted');
    assert.equal(w.call(r), 42);
  });

  test('a cache directory owned by another user is not used', (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('needs root to give the cache directory to another user');
      return;
    }
    const w = world();
    w.load().flush();
    chownSync(w.cacheDir, 65534, 65534);
    const r = w.load();
    assert.equal(r.cache, 'untrusted');
    assert.equal(w.call(r), 42);
  });

  test('a symlink in place of the cache file is not followed', () => {
    const w = world();
    const first = w.load();
    first.flush();
    const real = join(w.cacheDir, 'elsewhere.v8');
    writeFileSync(real, readFileSync(first.cacheFile!), { mode: 0o600 });
    rmSync(first.cacheFile!);
    symlinkSync(real, first.cacheFile!);
    const r = w.load();
    assert.equal(r.cache, 'miss');
    assert.equal(w.call(r), 42);
  });

  // The cache was written after the import only: every process's first container compiled the run path from
  // source (issue 13). The first process that runs one now rewrites it once, and says so in the file.
  test('a cache written at load is rewritten once, at the stage a process reaches, with what that stage compiled', () => {
    const w = world();
    // A function V8 compiles only when called: the "run" path.
    writeFileSync(w.script, `(function () { return { load: () => 1, run: () => { ${Array.from({ length: 300 }, (_, i) => `let v${i} = [${i}, '${i}'];`).join(' ')} return 2; } }; })`);
    const first = w.load();
    first.flush();
    const atLoad = statSync(first.cacheFile!);
    const second = w.load();
    assert.deepEqual([second.cache, second.stage], ['hit', 'load']);
    const api = (second.value as () => { run: () => number })();
    assert.equal(api.run(), 2);
    second.reached('run');
    second.flush();
    const atRun = statSync(second.cacheFile!);
    assert.notEqual(atRun.ino, atLoad.ino, 'rewritten');
    assert.ok(atRun.size > atLoad.size, `the run path's code is in it: ${atLoad.size} -> ${atRun.size} bytes`);
    const third = w.load();
    assert.deepEqual([third.cache, third.stage], ['hit', 'run']);
    third.reached('run');
    third.flush();
    assert.equal(statSync(third.cacheFile!).ino, atRun.ino, 'not rewritten when it covers the stage');
  });

  test(`${CODE_CACHE_ENV}=0 turns the cache off`, () => {
    const w = world();
    process.env[CODE_CACHE_ENV] = '0';
    try {
      const r = w.load();
      assert.equal(r.cache, 'off');
      assert.equal(w.call(r), 42);
      r.flush();
      assert.equal(existsSync(w.cacheDir), false);
    } finally {
      delete process.env[CODE_CACHE_ENV];
    }
  });

  test('a changed script is compiled from its new source, not run from the old cache', () => {
    const w = world(42);
    w.load().flush();
    // Same length, so V8's own check (the source's length) would take the old code; a later
    // mtime, as any later edit has (the kernel's file times are coarser than a test's two writes).
    const { mtime } = statSync(w.script);
    writeFileSync(w.script, readFileSync(w.script, 'utf8').replace('/* value */ 42', '/* value */ 43'));
    utimesSync(w.script, mtime, new Date(mtime.getTime() + 1000));
    const r = w.load();
    assert.equal(r.cache, 'miss');
    assert.equal(w.call(r), 43);
  });
});

// One cache file is made per install path, script and variant, and nothing deleted them: 52 files (29 MB) had
// gathered on one machine from test installs and worktrees long gone (issue 13).
describe('the cache directory is pruned when a cache is written', () => {
  /** `count` scripts in a directory of their own, sharing one cache directory. */
  function scripts(name: string, count: number) {
    const dir = join(base, name);
    const cacheDir = join(dir, 'cache');
    execFileSync('mkdir', ['-p', dir]);
    const files = Array.from({ length: count }, (_, i) => {
      const file = join(dir, `s${i}.js`);
      writeFileSync(file, `(function () { return ${i}; })`);
      return file;
    });
    const cache = (file: string, keep?: number) => {
      const r = runCachedScript(file, { cacheDir, key: 'test', ...(keep !== undefined ? { keep } : {}) });
      r.flush();
      return r.cacheFile!;
    };
    return { files, cacheDir, cache };
  }

  test("a cache whose script is gone, changed since, or whose head is damaged is deleted; a live one is kept", () => {
    const { files, cacheDir, cache } = scripts('prune-gone', 5);
    const [gone, changed, damaged, live] = files.slice(0, 4).map((f) => cache(f));
    rmSync(files[0]!);
    const { mtime } = statSync(files[1]!);
    utimesSync(files[1]!, mtime, new Date(mtime.getTime() + 1000));
    writeFileSync(damaged!, 'dockless-v8-cache-2\n\xff\xff');
    // An earlier version's name (a 24-digit hash) and format.
    writeFileSync(join(cacheDir, '143696a4ff32dd2af30acce3.v8'), 'dockless-v8-cache\n', { mode: 0o600 });
    const last = cache(files[4]!);
    assert.deepEqual(readdirSync(cacheDir).sort(), [live, last].map((f) => f!.slice(cacheDir.length + 1)).sort());
    assert.equal(existsSync(gone!) || existsSync(changed!), false);
  });

  test('at most `keep` caches stay: the one just written and the most recently written before it', () => {
    const { files, cacheDir, cache } = scripts('prune-keep', 4);
    const written = files.slice(0, 3).map((f) => cache(f));
    // Oldest first, whatever the clock's resolution.
    written.forEach((f, i) => utimesSync(f, new Date(1e12 + i * 1000), new Date(1e12 + i * 1000)));
    const last = cache(files[3]!, 2);
    assert.deepEqual(readdirSync(cacheDir).sort(), [written[2]!, last].map((f) => f.slice(cacheDir.length + 1)).sort());
  });

  test("a temporary file a killed writer left is deleted once old; anything not named as a cache is not touched", () => {
    const { files, cacheDir, cache } = scripts('prune-tmp', 1);
    execFileSync('mkdir', ['-p', cacheDir], { stdio: 'ignore' });
    chmodSync(cacheDir, 0o700);
    const old = join(cacheDir, '0123abcd-index.v8.4242.tmp');
    const young = join(cacheDir, '0123abcd-cli.v8.4343.tmp');
    const other = join(cacheDir, 'notes.txt');
    for (const f of [old, young, other]) writeFileSync(f, 'x', { mode: 0o600 });
    utimesSync(old, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    utimesSync(other, new Date(0), new Date(0));
    // Named as a cache, but a link: never followed, never deleted.
    symlinkSync(files[0]!, join(cacheDir, 'ffffffff-index.v8'));
    const written = cache(files[0]!);
    assert.deepEqual(readdirSync(cacheDir).sort(), ['0123abcd-cli.v8.4343.tmp', 'ffffffff-index.v8', 'notes.txt', written.slice(cacheDir.length + 1)].sort());
  });

  test('pruning a directory that is not there does nothing', () => {
    assert.deepEqual(pruneCodeCache(join(base, 'no such dir'), undefined), []);
  });
});

describe('the bundle', () => {
  const load = join(REPO, 'dist/bundle/index.js');
  test('import("dockless") writes its code cache at exit and the next process uses it', (t) => {
    if (!existsSync(load)) {
      t.skip('needs `npm run build` (dist/bundle/index.js)');
      return;
    }
    const cache = join(base, 'bundle-cache');
    const env = { ...process.env, XDG_CACHE_HOME: cache, NODE_OPTIONS: '' };
    const code = `const m = await import(${JSON.stringify(join(REPO, 'dist/bundle/index.js'))}); console.log(typeof m.Runtime, typeof m.ImageStore);`;
    const run = () => execFileSync(process.execPath, ['--input-type=module', '-e', code], { env, encoding: 'utf8' }).trim();
    assert.equal(run(), 'function function');
    const dir = join(cache, 'dockless', 'code');
    const [file] = readdirSync(dir);
    assert.ok(file !== undefined, 'no cache file written');
    const written = statSync(join(dir, file)).mtimeMs;
    assert.equal(run(), 'function function');
    assert.equal(statSync(join(dir, file)).mtimeMs, written, 'the cache was rewritten: the second process did not take it');
  });
});
