/**
 * The steps that change the image config: `ENV`, `CMD`, `LABEL`, … (an
 * `empty_layer` history entry each), and `WORKDIR` (a layer when the
 * directory is new).
 *
 * @module
 */

import type { Lease } from '../../store/index.js';
import { cacheKey, type CacheKeyInput } from '../cache.js';
import type { PlannedStep } from '../recipe.js';
import { changed, type BuildState, type StepHost, type StepOutcome } from '../state.js';

/** Applies a config-only step: no layer, and no cache lookup (applying it costs nothing). */
export function configStep(
  state: BuildState,
  planned: Extract<PlannedStep, { kind: 'config' }>,
  base: CacheKeyInput,
  history: (state: BuildState, entry: { created_by: string; empty_layer: true }) => void,
): StepOutcome {
  const key = cacheKey(base);
  planned.apply(state.config);
  history(state, { created_by: planned.instruction, empty_layer: true });
  changed(state, key);
  return { cached: false };
}

/** Sets the working directory, making it (as a layer) when the image lacks it. */
export function workdirStep(
  host: StepHost,
  state: BuildState,
  planned: Extract<PlannedStep, { kind: 'workdir' }>,
  base: CacheKeyInput,
  lease: Lease,
  context: string,
): Promise<StepOutcome> {
  const key = cacheKey(base);
  state.config.config = { ...state.config.config, WorkingDir: planned.path };
  return host.layerStep(state, key, planned.instruction, lease, async () => {
    const view = await host.view(state, lease);
    const resolved = await view.resolve(planned.path, { followLast: true });
    if ((await view.lstat(resolved))?.stats.isDirectory()) return undefined;
    return host.withUpper(state, view, async (upper) => {
      await upper.ensureDir(resolved, { mode: 0o755, owner: { uid: 0, gid: 0 }, mtime: host.nowSeconds() }, context);
    }, lease);
  });
}
