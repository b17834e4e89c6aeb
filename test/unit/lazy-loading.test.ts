/**
 * Time to first container: `import('dockless')` loads only what a container
 * run needs. The registry client (http, tls), the archive formats, the
 * Dockerfile parser and the tar and zstd codecs load on first use (see
 * LAZY_IMPORTS in layering.test.ts and `lazyRequire`), each worth milliseconds
 * of every Node start that imports the package.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** What a fresh Node process has loaded after importing src/index.ts: built-in modules and CommonJS packages. */
function loadedAfterImport(): { builtins: string[]; packages: string[] } {
  const script = `
    import { createRequire } from 'node:module';
    await import(${JSON.stringify(resolve(ROOT, 'src/index.ts'))});
    const cache = createRequire(import.meta.url).cache;
    console.log(JSON.stringify({
      builtins: process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13)),
      packages: Object.keys(cache).map((k) => k.match(/node_modules\\/((?:@[^/]+\\/)?[^/]+)/)?.[1]).filter(Boolean),
    }));`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!);
}

test('importing dockless loads neither the registry client, the Dockerfile parser nor the tar and zstd codecs', () => {
  // Each of these cost a first container milliseconds it never uses (issue 13).
  const { builtins, packages } = loadedAfterImport();
  assert.deepEqual(builtins.filter((m) => m === 'https' || m === 'tls' || m === 'http'), []);
  assert.deepEqual(
    [...new Set(packages)].filter((p) => ['tar-stream', 'dockerfile-ast', 'fzstd', 'streamx'].includes(p!)),
    [],
  );
});

test('importing dockless does not load zlib: a container run neither inflates nor deflates', () => {
  // Node's zlib cost every import ~0.5 ms that only pulls, imports and builds use (issue 13).
  assert.deepEqual(loadedAfterImport().builtins.filter((m) => m === 'zlib'), []);
});

const BUNDLE = resolve(ROOT, 'dist/bundle/index.js');
test(
  'importing the built bundle loads neither zlib nor worker_threads',
  { skip: existsSync(BUNDLE) ? undefined : 'dist/bundle not built: run npm run build' },
  () => {
    // tsx itself loads worker_threads, so only the bundle, as users load it, can show it left out (issue 13: ~1 ms of each import).
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(BUNDLE)}); console.log(JSON.stringify(process.moduleLoadList))`], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, DOCKLESS_CODE_CACHE: '0' },
    });
    const loaded = (JSON.parse(out.trim().split('\n').pop()!) as string[]).map((m) => m.replace(/^NativeModule /, ''));
    assert.deepEqual(loaded.filter((m) => m === 'zlib' || m === 'worker_threads'), []);
  },
);

test(
  'importing the built bundle loads neither crypto, child_process, net, stream, zlib, fs/promises nor timers/promises, with the code cache as with none',
  { skip: existsSync(BUNDLE) ? undefined : 'dist/bundle not built: run npm run build' },
  () => {
    // Node's crypto (~25 modules), child_process (with net and dgram) cost each import milliseconds (issue 13):
    // a run needs child_process only to spawn the helper, and crypto not at all. fs/promises and timers/promises
    // (~1 ms) are loaded by the first call that uses them; so is node:stream with its ~20 internal modules (~1.2 ms):
    // the library's modules that extend, construct or test for stream classes reach them on first use, and the code
    // cache's checksum is not zlib's (node:zlib requires node:stream). The second import writes the cache, the third
    // reads and checks it. (internal/streams/utils is loaded by every Node process, before any script.)
    const cacheHome = mkdtempSync(join(tmpdir(), 'dockless-lazy-'));
    try {
      for (const env of [{ DOCKLESS_CODE_CACHE: '0' }, { XDG_CACHE_HOME: cacheHome }, { XDG_CACHE_HOME: cacheHome }]) {
        const out = execFileSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(BUNDLE)}); console.log(JSON.stringify(process.moduleLoadList))`], {
          cwd: ROOT,
          encoding: 'utf8',
          env: { ...process.env, DOCKLESS_CODE_CACHE: '', ...env },
        });
        const loaded = (JSON.parse(out.trim().split('\n').pop()!) as string[]).map((m) => m.replace(/^NativeModule /, ''));
        const lazy = ['crypto', 'child_process', 'net', 'stream', 'zlib', 'fs/promises', 'timers/promises'];
        assert.deepEqual(loaded.filter((m) => lazy.includes(m) || (m.startsWith('internal/streams/') && m !== 'internal/streams/utils')), [], JSON.stringify(env));
      }
      assert.equal(readdirSync(join(cacheHome, 'dockless', 'code')).length, 1, 'the code cache was written and used');
    } finally {
      rmSync(cacheHome, { recursive: true, force: true });
    }
  },
);

test(
  "the library's script (core.js) holds neither the command line nor the test harness",
  { skip: existsSync(BUNDLE) ? undefined : 'dist/bundle not built: run npm run build' },
  () => {
    // ~300 KB that each import read, checksummed and deserialised from the code cache (issue 13): they are
    // cli-core.js (the command's own script) and testing-core.js (run on the library's exports).
    const sources = (JSON.parse(readFileSync(resolve(ROOT, 'dist/bundle/core.js.map'), 'utf8')) as { sources: string[] }).sources;
    assert.deepEqual(
      sources.filter((s) => /\/src\/(cli|testing)\/|node_modules\/(commander|log-update|pg|redis)\//.test(s)),
      [],
    );
  },
);

test(
  "the built `dockless/testing` runs on `dockless`'s copy of the library, not one of its own",
  { skip: existsSync(BUNDLE) ? undefined : 'dist/bundle not built: run npm run build' },
  () => {
    // testing-core.js is a script apart from core.js: a second copy would fail an app's instanceof checks
    // on the harness's errors and share none of the library's state.
    const testing = resolve(ROOT, 'dist/bundle/testing.js');
    const script = [
      `const { InvalidArgumentError } = await import(${JSON.stringify(BUNDLE)});`,
      `const { startPostgres } = await import(${JSON.stringify(testing)});`,
      "const error = await startPostgres(undefined, { username: 'not an identifier' }).catch((e) => e);",
      'console.log(JSON.stringify([error.name, error instanceof InvalidArgumentError]));',
    ].join('\n');
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, DOCKLESS_CODE_CACHE: '0' } });
    assert.deepEqual(JSON.parse(out.trim()), ['InvalidArgumentError', true]);
  },
);

test(
  "the bundle's classic scripts are ASCII: each is read into a one-byte string, not decoded from UTF-8",
  { skip: existsSync(BUNDLE) ? undefined : 'dist/bundle not built: run npm run build' },
  () => {
    // One `µ` in a regular expression (esbuild's `charset: 'ascii'` leaves those as written) made core.js a
    // two-byte string decoded at every import: ~1 ms, and twice the memory (issue 13).
    for (const script of ['core.js', 'cli-core.js', 'testing-core.js']) {
      const bytes = readFileSync(resolve(ROOT, 'dist/bundle', script));
      assert.equal(bytes.findIndex((b) => b > 0x7f), -1, script);
    }
  },
);

test(
  'an uncaught error from the bundle prints a short source line, not the minified bundle',
  { skip: existsSync(BUNDLE) ? undefined : 'dist/bundle not built: run npm run build' },
  () => {
    // Node prints the source line an uncaught error was thrown on; with the library minified onto a few
    // lines that was tens of kilobytes of code on the user's terminal.
    const script = `const { Runtime } = await import(${JSON.stringify(BUNDLE)}); await new Runtime({ root: '/nonexistent-dockless' }).run({ rootfs: '/', cmd: [] });`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    assert.notEqual(run.status, 0);
    assert.match(run.stderr, /InvalidArgumentError: container spec: cmd is required with a rootfs/);
    const longest = Math.max(...run.stderr.split('\n').map((line) => line.length));
    assert.ok(longest <= 400, `longest stderr line: ${longest} characters`);
  },
);

test(
  "through the bundle, a blob is written from a stream or an iterable and read back through a verifying Transform that sees damage",
  { skip: existsSync(BUNDLE) ? undefined : 'dist/bundle not built: run npm run build' },
  () => {
    // core.js reaches node:stream through stand-ins made by tools/bundle.mjs and defines its verifying stream (which
    // extends Transform) on first use: the tsx-run tests never load core.js, so this runs those paths as users load them.
    const dir = mkdtempSync(join(tmpdir(), 'dockless-lazy-stream-blobs-'));
    try {
      const script = `
        import { Readable, Transform } from 'node:stream';
        import { readFileSync, writeFileSync } from 'node:fs';
        const { ImageStore, DigestMismatchError } = await import(${JSON.stringify(BUNDLE)});
        const store = await ImageStore.open({ root: ${JSON.stringify(join(dir, 'store'))} });
        const out = {};
        const fromStream = await store.putBlob(Readable.from([Buffer.from('hello '), Buffer.from('world')]));
        const fromIterable = await store.putBlob((async function* () { yield Buffer.from('hello world'); })());
        out.same = fromStream.digest === fromIterable.digest;
        const read = await store.getBlob(fromStream.digest);
        out.transform = read instanceof Transform;
        const chunks = [];
        for await (const c of read) chunks.push(c);
        out.content = Buffer.concat(chunks).toString();
        const source = Readable.from([Buffer.from('not this')]);
        try { await store.putBlob(source, { digest: fromStream.digest }); } catch (e) { out.refused = e.constructor.name; }
        out.destroyed = source.destroyed;
        const path = store.blobPath(fromStream.digest);
        const damaged = readFileSync(path); damaged[0] ^= 1; writeFileSync(path, damaged);
        try { for await (const _ of await store.getBlob(fromStream.digest)); } catch (e) { out.damaged = e instanceof DigestMismatchError; }
        console.log(JSON.stringify(out));`;
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, DOCKLESS_CODE_CACHE: '0' } });
      assert.deepEqual(JSON.parse(out.trim().split('\n').pop()!), { same: true, transform: true, content: 'hello world', refused: 'DigestMismatchError', destroyed: true, damaged: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  "the bundle's loader takes Node's built-ins without their ES facades (node:fs's would load its streams)",
  { skip: existsSync(BUNDLE) ? undefined : 'dist/bundle not built: run npm run build' },
  () => {
    // An `import … from 'node:fs'` in an ES module reads all of fs's exports, its `ReadStream` getter too, which
    // loads fs's streams; the loader's seven such imports cost ~3 ms of each `import('dockless')` (issue 13).
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(BUNDLE)}); console.log(JSON.stringify(process.moduleLoadList))`], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    const loaded = (JSON.parse(out.trim().split('\n').pop()!) as string[]).map((m) => m.replace(/^NativeModule /, ''));
    assert.deepEqual(loaded.filter((m) => m === 'internal/fs/streams'), []);
  },
);

test(
  'each entry of the bundle holds its loader (one module less per import), yet one install runs one library and two installs two',
  { skip: existsSync(BUNDLE) ? undefined : 'dist/bundle not built: run npm run build' },
  () => {
    // The entries share what they ran through a registered symbol keyed by the script's path: keyed by name, a
    // second install in the same process would have been handed the first one's classes.
    const copy = mkdtempSync(join(tmpdir(), 'dockless-bundle-copy-'));
    try {
      execFileSync('cp', ['-a', resolve(ROOT, 'dist/bundle'), copy]);
      const other = join(copy, 'bundle', 'index.js');
      const script = [
        `const a = await import(${JSON.stringify(BUNDLE)});`,
        `const t = await import(${JSON.stringify(resolve(ROOT, 'dist/bundle/testing.js'))});`,
        `const b = await import(${JSON.stringify(other)});`,
        "const entries = (await import('node:fs')).readdirSync(" + JSON.stringify(resolve(ROOT, 'dist/bundle')) + ").filter((f) => f === 'load.js');",
        'console.log(JSON.stringify([a.Runtime === b.Runtime, typeof t.startPostgres, entries.length]));',
      ].join('\n');
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, DOCKLESS_CODE_CACHE: '0' } });
      assert.deepEqual(JSON.parse(out.trim()), [false, 'function', 0]);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  },
);

test(
  'the bundle loads on a Node without process.getBuiltinModule (before 20.16), through require',
  { skip: existsSync(BUNDLE) ? undefined : 'dist/bundle not built: run npm run build' },
  () => {
    // package.json allows Node 20 from 20.0; the loader's way to Node's built-ins is 20.16's.
    const script = [
      'delete process.getBuiltinModule;',
      `const m = await import(${JSON.stringify(BUNDLE)});`,
      `const t = await import(${JSON.stringify(resolve(ROOT, 'dist/bundle/testing.js'))});`,
      "console.log(JSON.stringify([typeof m.Runtime, typeof t.startPostgres, m.parseReference('alpine').toString()]));",
    ].join('\n');
    for (const cache of ['0', '']) {
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, DOCKLESS_CODE_CACHE: cache } });
      assert.deepEqual(JSON.parse(out.trim()), ['function', 'function', 'docker.io/library/alpine:latest'], `DOCKLESS_CODE_CACHE=${cache}`);
    }
  },
);
