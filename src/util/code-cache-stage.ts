/**
 * How the library tells the loader of its bundle (tools/core-loader.mjs, a
 * separate script with its own copy of src/util/script-cache.ts) what the
 * program has gone on to do, so that the V8 code cache is rewritten once with
 * that path compiled. A registered symbol on `globalThis` is the one name both
 * copies share.
 *
 * @module
 */

const HOOK = Symbol.for('dockless.codeCache.reached');

type Hook = (stage: string) => void;

/** Sets what {@link reachedCodeCacheStage} calls: the loader's cache, or nothing. */
export function setCodeCacheHook(hook: Hook | undefined): void {
  (globalThis as { [HOOK]?: Hook })[HOOK] = hook;
}

/** Says the program has reached `stage` (e.g. `run`: a container was started); nothing without a loader's cache. */
export function reachedCodeCacheStage(stage: string): void {
  (globalThis as { [HOOK]?: Hook })[HOOK]?.(stage);
}
