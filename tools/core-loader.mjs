/**
 * The one module every entry of the bundle imports (dist/bundle/load.js): runs
 * dist/bundle/core.js, the whole library and its commands as one classic
 * script, through V8's code cache (src/util/script-cache.ts), once per
 * process, and exports what it exports. `DOCKLESS_CORE_HASH` is put in by
 * tools/bundle.mjs: the hash of core.js, part of the cache's key.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCachedScript } from '../dist/util/script-cache.js';

const url = new URL('./core.js', import.meta.url);
const file = fileURLToPath(url);
const factory = runCachedScript(file, { key: DOCKLESS_CORE_HASH }).value;
const module = { exports: {} };
factory(module.exports, createRequire(url), module, file, dirname(file), url.href);

/** What core.js exports: the library's exports, and `loadTesting`, `loadCli`, `loadOciRuntime`. */
export const core = module.exports;
