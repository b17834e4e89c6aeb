/**
 * The one module every entry of the bundle imports (dist/bundle/load.js): runs
 * dist/bundle/core.js, the whole library and its commands as one classic
 * script, through V8's code cache (src/util/script-cache.ts), once per
 * process, and gives what it exports. `DOCKLESS_CORE_HASH` is put in by
 * tools/bundle.mjs: the hash of core.js, part of the cache's key.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setCodeCacheHook } from '../dist/util/code-cache-stage.js';
import { runCachedScript } from '../dist/util/script-cache.js';

const url = new URL('./core.js', import.meta.url);
let core;

/**
 * What core.js exports (the library's exports, and `loadTesting`, `loadCli`), run
 * on the first call. `entry` names the package entry
 * that loads it first: each entry keeps a code cache of its own, shaped by
 * what its first process compiled (an app's import and first container, a
 * command's parsing), so that the first `dockless` command after an install
 * does not decide what an app's import finds in the cache, nor the reverse.
 */
export function loadCore(entry) {
  if (core !== undefined) return core;
  const file = fileURLToPath(url);
  const loaded = runCachedScript(file, { key: DOCKLESS_CORE_HASH, variant: entry });
  // The library says when a container first runs (src/util/code-cache-stage.ts): the cache is then rewritten once with that path compiled.
  setCodeCacheHook(loaded.reached);
  const factory = loaded.value;
  const module = { exports: {} };
  factory(module.exports, createRequire(url), module, file, dirname(file), url.href);
  core = module.exports;
  return core;
}
