#!/usr/bin/env node
/**
 * Bundles the tsc output (dist/*.js) into dist/bundle/, what `import('dockless')`
 * loads: Node's ESM loader spends ~0.5 ms per module resolving, reading and
 * linking it, and dist/ is ~140 modules plus their dependencies', so the
 * bundle is one file for what a container run needs and split-off chunks for
 * what loads lazily (registries and archives, see LAZY_IMPORTS in
 * test/unit/layering.test.ts). `debug` is replaced by tools/debug-lazy.mjs,
 * which loads the real package only when `DEBUG` is set, and the default
 * seccomp profile's programs are compiled here and put in as a constant.
 *
 * esbuild is a devDependency for this alone (it already came with tsx): it
 * bundles in ~0.3 s, keeps ESM with code splitting, and leaves packages loaded
 * through `lazyRequire` (src/util/lazy.ts) to be resolved from node_modules
 * at first use.
 */
import { build } from 'esbuild';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
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
await rm(outdir, { recursive: true, force: true });
await build({
  // The `dockless` command and `dockless/testing` share the library's chunks: one copy of the library, loaded as fast.
  entryPoints: { index: join(root, 'dist', 'index.js'), cli: join(root, 'dist', 'cli', 'bin.js'), testing: join(root, 'dist', 'testing', 'index.js'),
    // Started as a worker thread by layer/unpack-thread.ts, from beside the chunk that holds it.
    'unpack-worker': join(root, 'dist', 'layer', 'unpack-worker.js') },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  chunkNames: 'chunk-[hash]',
  alias: { debug: join(root, 'tools', 'debug-lazy.mjs') },
  define: { DOCKLESS_PRECOMPILED_SECCOMP: JSON.stringify(seccomp) },
  // The CommonJS dependencies require Node's built-ins; an ES module has no `require` of its own.
  banner: { js: "import { createRequire as __docklessCreateRequire } from 'node:module'; const require = __docklessCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});

// The Node front end of `dockless-runtime` runs once per `create`/`run`/`exec`, each a new
// process that reads and compiles what it loads: one file of only what it reaches, minified
// (a third of the shared chunks' bytes; names kept, errors take theirs from their class).
await build({
  entryPoints: { runtime: join(root, 'dist', 'oci-runtime', 'bin.js') },
  outdir,
  bundle: true,
  minify: true,
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

// The `dockless-runtime` bin: a launcher that `npm install` (native/build.mjs) replaces with
// the native front end; until then, or where no C compiler is, it runs the one built in
// place (a checkout) or the Node front end.
const launcher = join(root, 'dist', 'bin', 'dockless-runtime');
await mkdir(join(root, 'dist', 'bin'), { recursive: true });
await writeFile(
  launcher,
  `#!/bin/sh
self=$(readlink -f "$0") || exit 1
pkg=\${self%/*}/../..
[ -x "$pkg/native/build/dockless-runtime" ] && exec "$pkg/native/build/dockless-runtime" "$@"
exec node "$pkg/dist/bundle/runtime.js" "$@"
`,
);
await chmod(launcher, 0o755);
