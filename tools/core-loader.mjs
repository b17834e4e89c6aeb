/**
 * The loader every entry of the bundle holds a copy of (dist/bundle/index.js, testing.js, cli.js): runs
 * the bundle's classic scripts through V8's code cache (src/util/script-cache.ts),
 * each once per process, and gives what they export: core.js (the library),
 * testing-core.js (`dockless/testing`, run with core.js's exports, its one way into
 * the library) and cli-core.js (the library and the `dockless` command, for the
 * command's process alone). `DOCKLESS_SCRIPT_HASHES` is put in by tools/bundle.mjs:
 * each script's hash, part of its cache's key.
 */
import { setCodeCacheHook } from '../dist/util/code-cache-stage.js';
import { runCachedScript } from '../dist/util/script-cache.js';

// Built-ins as src/util/script-cache.ts takes them: an `import` of one would evaluate its ES facade.
const builtin = typeof process.getBuiltinModule === 'function' ? (name) => process.getBuiltinModule(name) : (name) => import(name);
const [{ createRequire }, { dirname }, { fileURLToPath }] = await Promise.all(['node:module', 'node:path', 'node:url'].map(builtin));
// Each entry of the package (index.js, testing.js, cli.js) holds a copy of this loader; what they ran
// is shared through a registered symbol, keyed by the script's path, so that one process runs one copy
// of an install's library (and two installs each their own).
const LOADED = Symbol.for('dockless.bundle.loaded');
const loaded = (globalThis[LOADED] ??= new Map());

/**
 * Runs `name`.js (a key of DOCKLESS_SCRIPT_HASHES) once, with `core` as its library when
 * it takes one, and returns its exports. `variant` names the cache file: each use keeps a
 * code cache of its own, shaped by what its first process compiled (an app's import and
 * first container, a command's parsing), so that one use's first process does not decide
 * what the other's finds in the cache.
 */
function run(name, variant, core) {
  const url = new URL(`./${name}.js`, import.meta.url);
  const file = fileURLToPath(url);
  let exports = loaded.get(file);
  if (exports !== undefined) return exports;
  const script = runCachedScript(file, { key: DOCKLESS_SCRIPT_HASHES[name], variant });
  // The library says when a container first runs (src/util/code-cache-stage.ts): the cache is then rewritten once with that path compiled.
  if (core === undefined) setCodeCacheHook(script.reached);
  const module = { exports: {} };
  script.value(module.exports, createRequire(url), module, file, dirname(file), url.href, core);
  exports = module.exports;
  loaded.set(file, exports);
  return exports;
}

/** The library's exports (core.js). `entry` names the package entry that loads it first, for its code cache. */
export function loadCore(entry) {
  return run('core', entry);
}

/** `dockless/testing`'s exports, on the library that `import('dockless')` gives. */
export function loadTesting() {
  return run('testing-core', 'testing', loadCore('testing'));
}

/** The `dockless` command's module (cli-core.js: the library and the command line, compiled on first use). */
export function loadCli() {
  return run('cli-core', 'cli').loadCli();
}
