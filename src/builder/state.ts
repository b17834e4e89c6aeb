/**
 * The state of a build between steps, and what a step runner may ask of the
 * build running it ({@link StepHost}).
 *
 * @module
 */

import { AbortError } from '../errors.js';
import { contextual } from './error-context.js';
import type { Descriptor, Digest, ImageConfig } from '../oci/index.js';
import type { Runtime } from '../runtime/index.js';
import type { ImageLayerInput, ImageStoreCore as ImageStore, Lease } from '../store/index.js';
import type { UpperDir } from './copy.js';
import type { SettledDir, StoreLayerOptions, StoredLayer } from './layer-from-upper.js';
import type { MergedView } from '../layer/index.js';
import type { PlanContext, Recipe } from './recipe.js';
import type { SourceFs, ContextFs } from './source-fs.js';
import type { BuildProgress, BuildSettings, StepLayer } from './types.js';
import type { WithoutOp } from '../util/index.js';

/** The state of a build between steps. */
export interface BuildState {
  config: ImageConfig;
  layers: ImageLayerInput[];
  /** The cache key of the state: the base's identity, or the last step's key. */
  key: string;
  /** The `created` of the last layer step, for the config-only steps after it. */
  created: string | undefined;
  args: Map<string, string | undefined>;
  /** The state stored as an image, once needed. */
  image?: Promise<Descriptor>;
  /** The state's files, once needed. */
  view?: Promise<MergedView>;
}

/** A finished build's result. */
export interface Built {
  state: BuildState;
  manifest: Descriptor;
  cachedSteps: number;
  builtSteps: number;
}

/** What a step did: whether the cache had it, and the layer it made or reused. */
export interface StepOutcome {
  cached: boolean;
  layer?: StepLayer;
}

/** A directory on its way to becoming a snapshot: settled. */
export interface Adoption {
  /** What settling found; `undefined` when it failed (the directory is not adopted). */
  settled: SettledDir | undefined;
}

/** What a step runner may use of the build running it. */
export interface StepHost {
  readonly store: ImageStore;
  readonly settings: BuildSettings;
  emit(event: WithoutOp<BuildProgress>): void;
  /** The runtime of `RUN` steps, made at the first one. */
  runtime(): Runtime;
  /** The state as an image in the store. */
  image(state: BuildState, lease: Lease): Promise<Descriptor>;
  /** The state's files, unpacked in the store. */
  view(state: BuildState, lease: Lease): Promise<MergedView>;
  /** Looks the step up in the cache; runs `make` on a miss and records its result. */
  layerStep(state: BuildState, key: Digest, instruction: string, lease: Lease, make: () => Promise<StoredLayer | undefined>): Promise<StepOutcome>;
  /** Fills a fresh upper dir and stores it as a layer. */
  withUpper(state: BuildState, view: MergedView | undefined, fill: (upper: UpperDir) => Promise<void>, lease: Lease): Promise<StoredLayer>;
  /** Readies a directory to become the snapshot of the layer about to be made from it. */
  startAdoption(dir: string): Adoption;
  /** Makes the directory a layer was just made from that layer's snapshot, when it can. */
  adopt(state: BuildState, stored: StoredLayer, dir: string, adoption: Adoption): Promise<void>;
  layerOptions(lease: Lease): StoreLayerOptions;
  /** Now in seconds, clamped to `SOURCE_DATE_EPOCH`. */
  nowSeconds(): number;
  /** The build context's files. */
  contextFs(): ContextFs;
  /** The files of another stage or of an image, for `COPY --from`. */
  source(from: string | Recipe, lease: Lease, context: string): Promise<{ fs: SourceFs; key: string }>;
  /** A private scratch directory; the caller removes it. */
  tmpDir(): Promise<string>;
}

/** Marks the state changed: a new key, and its image and files to be made again when needed. */
export function changed(state: BuildState, key: Digest): void {
  state.key = key;
  delete state.image;
  delete state.view;
}

/** The context the next step of `state` is planned in. */
export function planContext(state: BuildState): PlanContext {
  const config = state.config.config ?? {};
  const env = new Map<string, string>();
  for (const pair of config.Env ?? []) {
    const eq = pair.indexOf('=');
    if (eq > 0) env.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return {
    config,
    args: state.args,
    lookup: (name) => env.get(name) ?? state.args.get(name),
  };
}

/** The build args a RUN gets in its environment: those with values and no ENV of the same name. */
export function runEnv(state: BuildState): Record<string, string> {
  const envNames = new Set((state.config.config?.Env ?? []).map((p) => p.slice(0, p.indexOf('='))));
  const out: Record<string, string> = {};
  for (const [name, value] of state.args) if (value !== undefined && !envNames.has(name)) out[name] = value;
  return out;
}

/** A layer as progress events show it. */
export function stepLayer(layer: { descriptor: Descriptor; diffId: Digest }): StepLayer {
  return { digest: layer.descriptor.digest, size: layer.descriptor.size, diffId: layer.diffId };
}

/** @throws {AbortError} when `signal` has aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, context: string): void {
  if (signal?.aborted) throw contextual(new AbortError(`${context}: aborted`, { cause: signal.reason }));
}

/** `{ signal }` when there is one, for options that must not hold `undefined`. */
export function signalOption(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal !== undefined ? { signal } : {};
}

/** `{ helperPath }` when there is one. */
export function helperOption(helperPath: string | undefined): { helperPath?: string } {
  return helperPath !== undefined ? { helperPath } : {};
}
