#!/usr/bin/env node
/**
 * Bundles the tsc output (dist/*.js) into dist/bundle/, what `import('dockless')`
 * and the commands load. Node 20 parses and compiles every ES module from its
 * source at each start (~25 ms for the library's ~1 MB) and has no compile
 * cache for them; a classic script can have V8's code cache. So the library
 * is one script, core.js, run once per process by the loader through the cache
 * (src/util/script-cache.ts); `dockless/testing` is testing-core.js, run on
 * core.js's exports; the `dockless` command's process runs cli-core.js (the
 * library and the command line) instead. The package's entries (index.js,
 * testing.js, cli.js) are small ES modules that take their names from them;
 * `dockless-runtime`'s Node front end is a file of its own (below). What a
 * container run does not need (registries and archives, the Dockerfile parser,
 * see LAZY_IMPORTS in test/unit/layering.test.ts) stays in esbuild's lazily-run
 * module wrappers, compiled on first use. `debug` is replaced by
 * tools/debug-lazy.mjs, which loads the real package only when `DEBUG` is set,
 * and the default seccomp profile's programs are compiled here and put in as
 * a constant.
 *
 * esbuild is a devDependency for this alone (it already came with tsx): it
 * bundles in ~0.3 s, and leaves packages loaded through `lazyRequire`
 * (src/util/lazy.ts) to be resolved from node_modules at first use.
 */
import { build } from 'esbuild';
import { isAscii } from 'node:buffer';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = join(import.meta.dirname, '..');
const dist = (file) => import(pathToFileURL(join(root, 'dist', file)).href);

// The default seccomp profile's programs for Docker's default capabilities, compiled
// now rather than by each process's first container (see PrecompiledSeccomp).
const { precompileDefaultSeccomp } = await dist('runtime/seccomp/compile.js');
const { DOCKER_DEFAULT_CAPS, capNames, resolveCaps } = await dist('runtime/capabilities.js');
const seccomp = precompileDefaultSeccomp([capNames(resolveCaps({})), DOCKER_DEFAULT_CAPS]);
const outdir = join(root, 'dist', 'bundle');

// Node's crypto (with its streams and webcrypto: ~25 internal modules), child_process (which
// brings net and dgram), net and stream (Node's streams machinery, ~20 internal modules, ~1.2 ms)
// are loaded by the first call that uses them, not by the import: a process that only imports
// dockless, or runs a container through the fork server, needs none of them. Each import of them
// in core.js gets a module of stand-ins made here, one per function the built-in exports, that
// load it and call (or construct) the real one; a name with no stand-in fails the build. A class's
// static functions (Readable.from) have stand-ins too, and `instanceof` a stand-in asks the real
// class. A stand-in cannot be extended (the subclass's prototype would not inherit the real one's
// methods): constructing such a subclass throws, so define the class on first use from
// `lazyRequire('node:stream')` (as src/store/blobs.ts's VerifyingStream). The promisified form
// (util.promisify of execFile) is the real one's. The command line's process has Node's streams
// loaded by its first write to stdout: cli-core.js takes node:stream as it is (its classes, such as
// src/cli/detach-keys.ts's filter, extend Transform).
const LAZY_BUILTINS = ['crypto', 'child_process', 'net', 'stream', 'fs/promises', 'timers/promises', 'stream/promises'];
const requireHere = createRequire(import.meta.url);
const lazyBuiltinsOf = (builtins) => ({
  name: 'lazy-builtins',
  setup(b) {
    const filter = new RegExp(`^(node:)?(${builtins.join('|')})$`);
    // The stand-ins' own require of the real module is left to Node.
    b.onResolve({ filter }, (args) => (args.namespace === 'lazy-builtin' ? undefined : { path: args.path.replace(/^node:/, ''), namespace: 'lazy-builtin' }));
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => {
      const real = requireHere(`node:${args.path}`);
      const isName = (n) => /^[A-Za-z_$][\w$]*$/.test(n);
      const names = Object.keys(real).filter((n) => typeof real[n] === 'function' && isName(n));
      // A class's own static functions (Readable.from, Duplex.fromWeb), not those every function has.
      const statics = (n) => Object.getOwnPropertyNames(real[n]).filter((s) => isName(s) && !['length', 'name', 'prototype', 'caller', 'arguments'].includes(s) && typeof Object.getOwnPropertyDescriptor(real[n], s).value === 'function');
      const lines = [
        'let real;',
        `const load = () => (real ??= require('node:${args.path}'));`,
        "const custom = Symbol.for('nodejs.util.promisify.custom');",
        'const stand = (name, statics) => {',
        '  const f = function (...a) {',
        '    if (new.target === undefined) return load()[name].apply(this, a);',
        `    if (new.target !== f) throw new TypeError(\`\${new.target.name} extends a lazily loaded stand-in of node:${args.path}'s \${name} (tools/bundle.mjs): define it on first use from the real class\`);`,
        '    return Reflect.construct(load()[name], a);',
        '  };',
        '  Object.defineProperty(f, custom, { get: () => load()[name][custom] });',
        '  Object.defineProperty(f, Symbol.hasInstance, { value: (x) => x instanceof load()[name] });',
        '  for (const s of statics) f[s] = function (...a) { return new.target ? Reflect.construct(load()[name][s], a) : load()[name][s].apply(load()[name], a); };',
        '  return f;',
        '};',
        // Pure: esbuild leaves out the stand-ins nothing imports.
        ...names.map((n) => `export const ${n} = /* @__PURE__ */ stand('${n}', ${JSON.stringify(statics(n))});`),
      ];
      return { contents: lines.join('\n'), loader: 'js', resolveDir: root };
    });
  },
});
const lazyBuiltins = lazyBuiltinsOf(LAZY_BUILTINS);
await rm(outdir, { recursive: true, force: true });
const LINE_LIMIT = 160;
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  // Minified lines end near here: Node prints the line an uncaught error was thrown on, and a
  // whole bundle on one line is tens of kilobytes of code on the user's terminal.
  lineLimit: LINE_LIMIT,
  alias: { debug: join(root, 'tools', 'debug-lazy.mjs') },
  logLevel: 'warning',
};

// The library as one classic script wrapped in a function, which the loader runs with V8's
// code cache. What `import('dockless')` does not need (registries, archives, the builder's
// parser) sits in esbuild's lazily-run module wrappers: in the file, compiled only when
// first called. The command line and the test harness are scripts of their own (below), so
// that the library's import reads, checksums and deserialises none of their ~300 KB.
const classic = {
  ...common,
  format: 'cjs',
  plugins: [lazyBuiltins],
  // Less source to read and hash at each start; names are kept, so stack traces still name functions (the .map maps lines back).
  minifyWhitespace: true,
  minifySyntax: true,
  charset: 'ascii',
  define: { DOCKLESS_PRECOMPILED_SECCOMP: JSON.stringify(seccomp), 'import.meta.url': '__docklessModuleUrl' },
  banner: { js: '(function (exports, require, module, __filename, __dirname, __docklessModuleUrl, __docklessCore) {' },
  footer: { js: '})' },
};
// `dockless/testing` shares the library's one copy (a harness hands an app the same
// Runtime class it imports from `dockless`): it imports only the library's public entry
// (src/testing imports '../index.js' alone), which here is core.js's exports, passed in
// by the loader. Any other path into the library would be a second copy: the build fails.
const distIndex = join(root, 'dist', 'index.js');
const libraryFromCore = {
  name: 'library-from-core',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      const path = join(args.resolveDir, args.path);
      if (path === distIndex) return { path, namespace: 'dockless-core' };
      if (path.startsWith(join(root, 'dist') + '/') && !path.startsWith(join(root, 'dist', 'testing') + '/')) return { errors: [{ text: `${args.importer} reaches into the library (${args.path}): import it from '../index.js'` }] };
      return undefined;
    });
    b.onLoad({ filter: /.*/, namespace: 'dockless-core' }, () => ({ contents: 'module.exports = __docklessCore;', loader: 'js' }));
  },
};
for (const [name, contents, plugins] of [
  ['core', "export * from './dist/index.js';", [lazyBuiltins]],
  ['testing-core', "export * from './dist/testing/index.js';", [libraryFromCore, lazyBuiltins]],
  // The `dockless` command's process loads no other entry: its script holds the library too,
  // and is what its startup snapshot is made from (native/snapshot.mjs).
  ['cli-core', "export const loadCli = () => import('./dist/cli/main.js');", [lazyBuiltinsOf(LAZY_BUILTINS.filter((m) => m !== 'stream'))]],
]) {
  await build({ ...classic, plugins, stdin: { contents, resolveDir: root, sourcefile: `${name}-entry.js` }, outfile: join(outdir, `${name}.js`) });
  // An ASCII script is copied into a one-byte string (src/util/script-cache.ts); one other character (esbuild's
  // `charset: 'ascii'` leaves a regular expression's as written) makes it a decoded two-byte string of twice
  // the size, ~1 ms more of each import.
  const bytes = await readFile(join(outdir, `${name}.js`));
  if (!isAscii(bytes)) {
    const at = bytes.findIndex((b) => b > 0x7f);
    throw new Error(`${name}.js is not ASCII at byte ${at}: \`${bytes.subarray(Math.max(0, at - 40), at + 20).toString()}\` (escape it in the source, e.g. \\u00b5)`);
  }
}
const hashOf = async (file) => createHash('sha256').update(await readFile(join(outdir, file))).digest('hex');
const scriptHashes = JSON.stringify({ core: await hashOf('core.js'), 'testing-core': await hashOf('testing-core.js'), 'cli-core': await hashOf('cli-core.js') });

// Worker threads and the rootless diff's worker process start from a file beside
// core.js (layer/unpack-thread.ts, builder/layer-from-upper.ts): each its own module.
await build({
  ...common,
  entryPoints: { 'unpack-worker': join(root, 'dist', 'layer', 'unpack-worker.js'), 'userns-worker': join(root, 'dist', 'builder', 'userns-worker.js') },
  outdir,
  format: 'esm',
  define: { DOCKLESS_PRECOMPILED_SECCOMP: 'undefined' },
  // The CommonJS dependencies require Node's built-ins; an ES module has no `require` of its own.
  banner: { js: "import { createRequire as __docklessCreateRequire } from 'node:module'; const require = __docklessCreateRequire(import.meta.url);" },
});

// The package's entries: ES modules that take their names from core.js, each one file with
// its own copy of the loader (tools/core-loader.mjs): one module less for each import to
// resolve, read and compile (~1 ms).
const names = async (file) => Object.keys(await dist(file)).sort();
const reexport = (list, from) => `export const {\n  ${list.join(',\n  ')}\n} = ${from};\n`;
const loader = './tools/core-loader.mjs';
for (const [name, contents, banner] of [
  ['index', `import { loadCore } from '${loader}';\n${reexport(await names('index.js'), "loadCore('index')")}`],
  ['testing', `import { loadTesting } from '${loader}';\n${reexport(await names('testing/index.js'), 'loadTesting()')}`],
  [
    'cli',
    // As src/cli/bin.ts: once the loop is empty, end without tearing the V8 heap down.
    `import { loadCli } from '${loader}';\nconst { main } = await loadCli();\nprocess.exitCode = await main(process.argv.slice(2));\nprocess.once('beforeExit', () => process.exit());\n`,
    '#!/usr/bin/env node',
  ],
]) {
  await build({
    ...common,
    stdin: { contents, resolveDir: root, sourcefile: `${name}-entry.js` },
    outfile: join(outdir, `${name}.js`),
    format: 'esm',
    define: { DOCKLESS_SCRIPT_HASHES: scriptHashes },
    ...(banner !== undefined ? { banner: { js: banner } } : {}),
  });
}
await chmod(join(outdir, 'cli.js'), 0o755);

// The Node front end of `dockless-runtime` runs once per `create`/`run`/`exec`, each a new
// process that reads and compiles what it loads: one file of only what it reaches, minified
// (a third of the shared chunks' bytes; names kept, errors take theirs from their class).
await build({
  entryPoints: { runtime: join(root, 'dist', 'oci-runtime', 'bin.js') },
  outdir,
  bundle: true,
  minify: true,
  lineLimit: LINE_LIMIT,
  keepNames: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  alias: { debug: join(root, 'tools', 'debug-lazy.mjs') },
  define: { DOCKLESS_PRECOMPILED_SECCOMP: JSON.stringify(seccomp) },
  banner: { js: "import { createRequire as __docklessCreateRequire } from 'node:module'; const require = __docklessCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});

// The same front end as a classic script wrapped in a function, for its V8 startup snapshot
// (native/snapshot-entry.cjs), which needs `rehearse` beside `main` and no top-level await.
await build({
  ...common,
  stdin: { contents: "export { main, rehearse } from './dist/oci-runtime/main.js';", resolveDir: root, sourcefile: 'runtime-core-entry.js' },
  outfile: join(outdir, 'runtime-core.js'),
  format: 'cjs',
  minify: true,
  keepNames: true,
  charset: 'ascii',
  sourcemap: false,
  define: { DOCKLESS_PRECOMPILED_SECCOMP: JSON.stringify(seccomp), 'import.meta.url': '__docklessModuleUrl' },
  banner: { js: '(function (exports, require, module, __filename, __dirname, __docklessModuleUrl) {' },
  footer: { js: '})' },
});

// The package's bins are launchers that `npm install` (native/build.mjs) replaces with the
// native programs; until then, or where no C compiler is, they run the ones built in place
// (a checkout) or the Node entry. `dockless-runtime`'s is its native front end; `dockless`'s
// starts Node from the command line's V8 startup snapshot when it can.
await mkdir(join(root, 'dist', 'bin'), { recursive: true });
for (const [bin, native, script] of [
  ['dockless-runtime', 'dockless-runtime', 'runtime.js'],
  ['dockless', 'dockless-cli', 'cli.js'],
]) {
  const launcher = join(root, 'dist', 'bin', bin);
  await writeFile(
    launcher,
    `#!/bin/sh
self=$(readlink -f "$0") || exit 1
pkg=\${self%/*}/../..
[ -x "$pkg/native/build/${native}" ] && exec "$pkg/native/build/${native}" "$@"
exec node "$pkg/dist/bundle/${script}" "$@"
`,
  );
  await chmod(launcher, 0o755);
}
// The snapshot is made from this core.js: remade after every bundle.
// Without a C compiler the launcher runs the plain bundle (build.mjs says why).
spawnSync(process.execPath, [join(root, 'native', 'build.mjs'), '--cli'], { stdio: 'inherit' });
