/**
 * The executor: runs a {@link Recipe} step by step against the store, with
 * the build cache, and stores the result as an image.
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import createDebug from 'debug';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { type Descriptor, type Digest, formatPlatform, type HistoryEntry, hostPlatform, type ImageConfig, parseReference, shortDigest } from '../oci/index.js';
import { MergedView, sourceDateEpochFromEnv } from '../layer/index.js';
import { Runtime } from '../runtime/index.js';
import type { ImageStoreCore as ImageStore, Lease } from '../store/index.js';
import { ownerToken, type WithoutOp } from '../util/index.js';
import { BuildCache, type CacheEntry, type CacheKeyInput } from './cache.js';
import { UpperDir } from './copy.js';
import { adoptionEntries, GZIP_MEMBER_SIZE, layerXattrs, settleForAdoption, storeLayer, storeTar, type StoreLayerOptions, type StoredLayer } from './layer-from-upper.js';
import { LayerStream } from './layer-stream.js';
import { readXattrs } from '../helper/index.js';
import { contextual, rewrap } from './error-context.js';
import { DockerIgnore } from './patterns.js';
import type { PlannedStep, Recipe, StepDefinition } from './recipe.js';
import { ContextFs, expandSources, sourcesDigest, ViewFs, type SourceFs } from './source-fs.js';
import { isUrl } from './fetch-url.js';
import {
  changed,
  helperOption,
  planContext,
  signalOption,
  stepLayer,
  throwIfAborted,
  type Adoption,
  type BuildState,
  type Built,
  type StepHost,
  type StepOutcome,
} from './state.js';
import { configStep, workdirStep } from './steps/config.js';
import { copyStep } from './steps/copy.js';
import { runStep } from './steps/run.js';
import type { BuildProgress, BuildResult, BuildSettings, BuildStepInfo } from './types.js';

const debug = createDebug('dockless:build');

const executions = new WeakMap<Recipe, Execution>();

/**
 * The execution of `recipe`: the one made first for it (a recipe is built
 * once, on the store it was first given), else a new one on `store`.
 */
export function executionOf(store: ImageStore, recipe: Recipe): Execution {
  let execution = executions.get(recipe);
  if (execution === undefined) {
    execution = new Execution(store, recipe);
    executions.set(recipe, execution);
  }
  return execution;
}

/**
 * Builds `recipe` (once; a second call reuses the result), stores the image
 * and, with `tag`, tags it.
 */
export async function buildImage(store: ImageStore, recipe: Recipe, tag?: string): Promise<BuildResult> {
  const reference = tag === undefined ? undefined : parseReference(tag);
  if (reference?.digest !== undefined) throw new InvalidArgumentError(`commit: tag \`${tag}\` must not have a digest`);
  const built = await executionOf(store, recipe).build();
  if (reference !== undefined) await store.tag(built.manifest.digest, reference.toString());
  const result: BuildResult = {
    digest: built.manifest.digest,
    config: built.state.config,
    cachedSteps: built.cachedSteps,
    builtSteps: built.builtSteps,
  };
  if (reference !== undefined) result.reference = reference.toString();
  return result;
}

/** One recipe's build on one store; the {@link StepHost} of its steps. */
export class Execution implements StepHost {
  /** The store the build reads its base from and writes its layers, images and cache to. */
  readonly store: ImageStore;
  /** The recipe's settings. */
  readonly settings: BuildSettings;
  readonly #recipe: Recipe;
  readonly #cache: BuildCache;
  #runtime: Runtime | undefined;
  #built: Promise<Built> | undefined;
  #context: ContextFs | undefined;

  /** An execution of `recipe` on `store`; use {@link executionOf}, which makes one per recipe. */
  constructor(store: ImageStore, recipe: Recipe) {
    this.store = store;
    this.#recipe = recipe;
    this.settings = recipe.settings;
    this.#cache = new BuildCache(store.buildCache);
    this.#runtime = recipe.settings.runtime;
  }

  /** Whether the build has started (its steps can no longer change). */
  get started(): boolean {
    return this.#built !== undefined;
  }

  /** Runs the steps, once. */
  build(): Promise<Built> {
    this.#built ??= this.#run();
    return this.#built;
  }

  async #run(): Promise<Built> {
    const store = this.store;
    const { signal } = this.settings;
    const label = this.settings.name !== undefined ? `build stage ${this.settings.name}` : 'build';
    throwIfAborted(signal, label);
    const lease = await store.lease(`build-${process.pid}-${randomBytes(6).toString('hex')}`, [], { processBound: true });
    try {
      const { state, triggers } = await this.#baseState(lease, label);
      const onBuild = this.#recipe.onBuildTriggers;
      const steps = [...(onBuild !== undefined && triggers.length > 0 ? onBuild(triggers) : []), ...this.#recipe.steps];
      const lookAhead = this.#hashAhead(steps, state);
      let cachedSteps = 0;
      let builtSteps = 0;
      for (const [i, def] of steps.entries()) {
        throwIfAborted(signal, label);
        const info: BuildStepInfo = { step: i + 1, total: steps.length, instruction: '' };
        if (this.settings.name !== undefined) info.stage = this.settings.name;
        if (def.line !== undefined) info.line = def.line;
        const where = `${label} step ${i + 1}/${steps.length}${def.line !== undefined ? ` (Dockerfile line ${def.line})` : ''}`;
        let planned: PlannedStep;
        try {
          planned = def.plan(planContext(state));
        } catch (err) {
          throw rewrap(err, where);
        }
        if (planned.kind === 'arg') {
          state.args.set(planned.name, planned.value);
          continue;
        }
        info.instruction = planned.instruction;
        const context = `${where} \`${planned.instruction}\``;
        this.emit({ type: 'step-start', ...info });
        const started = performance.now();
        let outcome: StepOutcome;
        try {
          outcome = await this.#step(state, planned, lease, context, info);
        } catch (err) {
          throw rewrap(err, context);
        }
        if (outcome.cached) {
          cachedSteps++;
          this.emit({ type: 'step-cached', ...info, ...(outcome.layer !== undefined ? { layer: outcome.layer } : {}) });
        } else {
          builtSteps++;
          this.emit({
            type: 'step-done',
            ...info,
            ...(outcome.layer !== undefined ? { layer: outcome.layer } : {}),
            durationMs: performance.now() - started,
          });
        }
      }
      // The context's file digests are saved while the image is written: neither waits on the other.
      const [manifest] = await Promise.all([this.image(state, lease), lookAhead.then(() => this.#context?.saveDigests())]);
      debug('%s: %s (%d steps cached, %d built)', label, shortDigest(manifest.digest), cachedSteps, builtSteps);
      return { state, manifest, cachedSteps, builtSteps };
    } finally {
      await lease.release().catch(() => false);
    }
  }

  /**
   * Hashes, in the background, the build-context files of every `COPY`/`ADD`
   * of `steps`, planned with the state the build starts from: a cold build's
   * first read of its context then overlaps the steps before, instead of
   * waiting on the disk when its `COPY` is reached, which takes the digest
   * computed here for the same source list (see {@link sourcesDigest}); a
   * step planned otherwise later (an `ARG` or `ENV` in between) names other
   * sources and hashes what it really copies. Never fails; ends early when
   * the build is aborted.
   */
  async #hashAhead(steps: readonly StepDefinition[], state: BuildState): Promise<void> {
    const { signal } = this.settings;
    // After the first step has started: the walk's stats are synchronous.
    await new Promise((resolve) => setImmediate(resolve));
    for (const def of steps) {
      if (signal?.aborted) return;
      try {
        const planned = def.plan(planContext(state));
        if (planned.kind !== 'copy' || planned.from !== undefined) continue;
        const local = planned.sources.filter((s) => !isUrl(s));
        if (local.length === 0) continue;
        const fs = this.contextFs();
        await sourcesDigest(fs, await expandSources(fs, local, 'look-ahead'));
      } catch (err) {
        // The step itself reports what is wrong, if it is reached.
        debug('look-ahead hash: %s', (err as Error).message);
      }
    }
  }

  /** Hands `event` to the progress listener; a listener that throws does not stop the build. */
  emit(event: WithoutOp<BuildProgress>): void {
    try {
      this.settings.onProgress?.({ ...event, op: 'build' });
    } catch (err) {
      debug('progress listener threw: %s', (err as Error).message);
    }
  }

  async #baseState(lease: Lease, label: string): Promise<{ state: BuildState; triggers: string[] }> {
    const from = this.#recipe.from;
    if (typeof from !== 'string') {
      const built = await executionOf(this.store, from).build();
      await lease.add([built.manifest.digest]);
      const config = structuredClone(built.state.config);
      const state: BuildState = { config, layers: [...built.state.layers], key: built.state.key, created: built.state.created, args: new Map() };
      state.image = Promise.resolve(built.manifest);
      const triggers = config.config?.OnBuild ?? [];
      if (config.config !== undefined) config.config.OnBuild = null;
      return { state, triggers: [...triggers] };
    }
    if (from === 'scratch') {
      const platform = hostPlatform();
      const config: ImageConfig = {
        architecture: platform.architecture,
        os: platform.os,
        ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
        config: {},
        rootfs: { type: 'layers', diff_ids: [] },
        history: [],
      };
      return { state: { config, layers: [], key: 'scratch', created: undefined, args: new Map() }, triggers: [] };
    }
    let details;
    try {
      details = await this.store.inspect(from);
    } catch (err) {
      if (err instanceof NotFoundError) {
        throw contextual(new NotFoundError(`${label}: base image \`${from}\` is not in the store (pull or import it first)`, { cause: err }));
      }
      throw err;
    }
    await lease.add([details.manifestDescriptor.digest]);
    const config = structuredClone(details.config);
    config.history ??= [];
    const state: BuildState = {
      config,
      layers: details.layers.map((l) => ({ descriptor: { mediaType: l.mediaType, digest: l.digest, size: l.size }, diffId: l.diffId })),
      key: `image:${details.manifestDescriptor.digest}`,
      created: config.created,
      args: new Map(),
    };
    state.image = Promise.resolve(details.manifestDescriptor);
    const triggers = config.config?.OnBuild ?? [];
    if (config.config !== undefined) config.config.OnBuild = null;
    return { state, triggers: [...triggers] };
  }

  #step(state: BuildState, planned: Exclude<PlannedStep, { kind: 'arg' }>, lease: Lease, context: string, info: BuildStepInfo): Promise<StepOutcome> | StepOutcome {
    const platform = formatPlatform({ os: state.config.os, architecture: state.config.architecture, ...(state.config.variant !== undefined ? { variant: state.config.variant } : {}) });
    const base: CacheKeyInput = { parent: state.key, instruction: planned.instruction, platform, ...(planned.args !== undefined ? { args: planned.args } : {}) };
    switch (planned.kind) {
      case 'config':
        return configStep(state, planned, base, (s, entry) => this.#history(s, entry, s.created ?? this.#now()));
      case 'workdir':
        return workdirStep(this, state, planned, base, lease, context);
      case 'run':
        return runStep(this, state, planned, base, lease, context, info);
      case 'copy':
        return copyStep(this, state, planned, base, lease, context);
    }
  }

  /** Looks the step up in the cache; runs `make` on a miss and records its result. */
  async layerStep(state: BuildState, key: Digest, instruction: string, lease: Lease, make: () => Promise<StoredLayer | undefined>): Promise<StepOutcome> {
    if (this.settings.noCache !== true) {
      const entry = await this.#cache.get(key);
      if (entry !== undefined && (await this.#usable(entry, lease))) {
        this.#apply(state, key, instruction, entry.created, entry.layer);
        return { cached: true, ...(entry.layer !== undefined ? { layer: stepLayer(entry.layer) } : {}) };
      }
    }
    const created = this.#now();
    const stored = await make();
    const layer = stored === undefined ? undefined : { descriptor: stored.descriptor, diffId: stored.diffId };
    await this.#cache.put({ key, created, createdBy: instruction, ...(layer !== undefined ? { layer } : {}) });
    this.#apply(state, key, instruction, created, layer);
    return { cached: false, ...(layer !== undefined ? { layer: stepLayer(layer) } : {}) };
  }

  async #usable(entry: CacheEntry, lease: Lease): Promise<boolean> {
    if (entry.layer === undefined) return true;
    if (!(await this.store.hasBlob(entry.layer.descriptor.digest))) return false;
    // Held from now on, so that a gc() racing with a cache prune cannot take it mid-build.
    await lease.add([entry.layer.descriptor.digest]);
    return true;
  }

  #apply(state: BuildState, key: Digest, instruction: string, created: string, layer: { descriptor: Descriptor; diffId: Digest } | undefined): void {
    if (layer !== undefined) {
      state.layers.push({ descriptor: layer.descriptor, diffId: layer.diffId });
      state.config.rootfs = { type: 'layers', diff_ids: [...state.config.rootfs.diff_ids, layer.diffId] };
      state.created = created;
      this.#history(state, { created_by: instruction }, created);
    } else {
      this.#history(state, { created_by: instruction, empty_layer: true }, created);
    }
    changed(state, key);
  }

  #history(state: BuildState, entry: HistoryEntry, created: string): void {
    state.config.history = [...(state.config.history ?? []), { created, ...entry }];
  }

  #now(): string {
    return new Date(this.nowSeconds() * 1000).toISOString();
  }

  /** Now in seconds, clamped to `SOURCE_DATE_EPOCH`. */
  nowSeconds(): number {
    const epoch = this.#epoch();
    const now = Math.floor(Date.now() / 1000);
    return epoch !== undefined && epoch < now ? epoch : now;
  }

  #epoch(): number | undefined {
    return this.settings.sourceDateEpoch ?? sourceDateEpochFromEnv('build');
  }

  /** The runtime of `RUN` steps: the one given, else one on the store, made at the first `RUN`. */
  runtime(): Runtime {
    this.#runtime ??= new Runtime({ store: this.store, ...helperOption(this.settings.helperPath) });
    return this.#runtime;
  }

  /** The state as an image in the store (config and manifest written once per state). */
  image(state: BuildState, lease: Lease): Promise<Descriptor> {
    state.image ??= (async () => {
      const history = state.config.history ?? [];
      const config: ImageConfig = { ...state.config, rootfs: { type: 'layers', diff_ids: state.layers.map((l) => l.diffId as Digest) } };
      const last = history.at(-1)?.created ?? state.created;
      if (last !== undefined) config.created = last;
      return this.store.putImage({ config, layers: state.layers, lease });
    })();
    return state.image;
  }

  /** The state's files, unpacked in the store. */
  view(state: BuildState, lease: Lease): Promise<MergedView> {
    state.view ??= (async () => {
      if (state.layers.length === 0) return new MergedView([]);
      const image = await this.image(state, lease);
      const snapshot = await this.store.snapshot(image.digest, signalOption(this.settings.signal));
      return new MergedView(snapshot.lowerDirs, helperOption(this.settings.helperPath));
    })();
    return state.view;
  }

  /**
   * Fills a fresh directory laid out as an upper dir, stores it as a layer
   * and offers it as that layer's snapshot. The layer's tar is gzipped while
   * the directory is filled (see {@link LayerStream}); when the finished
   * directory is not what the stream took, it is diffed instead.
   */
  async withUpper(state: BuildState, view: MergedView | undefined, fill: (upper: UpperDir) => Promise<void>, lease: Lease): Promise<StoredLayer> {
    const dir = path.join(this.store.tmpDir(), `build-${ownerToken()}`);
    await mkdir(dir, { mode: 0o755 });
    let adoption: Adoption | undefined;
    const options = this.layerOptions(lease);
    let mapOwner: ReturnType<UpperDir['mapOwner']>;
    const stream = new LayerStream(dir, {
      epoch: options.sourceDateEpoch,
      mapOwner: (owner, rel) => (mapOwner !== undefined ? mapOwner(owner, rel) : owner),
      blockSize: GZIP_MEMBER_SIZE,
    });
    // Read from the start, so that the gzip keeps pace with the writes; a failure to store frees the writers.
    const storing = storeTar(this.store, stream.tar(), options, (block) => stream.recycle(block));
    storing.catch((err: unknown) => stream.fail(`store: ${(err as Error).message}`));
    try {
      const upper = new UpperDir(dir, view, { stream });
      mapOwner = upper.mapOwner();
      await fill(upper);
      await upper.finish();
      adoption = this.startAdoption(dir);
      let stored: StoredLayer | undefined;
      const settled = adoption.settled;
      if (stream.usable && settled !== undefined) {
        const xattrs = await readXattrs(dir, [...settled.stats.keys()], { context: `diff \`${dir}\``, ...helperOption(this.settings.helperPath) });
        if (stream.matches(settled.stats, layerXattrs(xattrs))) {
          stream.end();
          stored = { ...(await storing), xattrs };
        }
      }
      if (stored === undefined) {
        debug('layer of `%s` diffed: the stream could not stand for it', dir);
        stream.fail('the directory is not what it took');
        await storing.catch(() => undefined);
        stored = await storeLayer(this.store, dir, { ...options, mapOwner });
      }
      await this.adopt(state, stored, dir, adoption);
      return stored;
    } finally {
      stream.fail('the step ended');
      await storing.catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * Makes the directory a layer was just made from that layer's snapshot, so
   * the next step's container (or files) need not unpack it again. Best
   * effort: the layer is unpacked from its blob when this does not happen.
   */
  async adopt(state: BuildState, stored: StoredLayer, dir: string, adoption: Adoption): Promise<void> {
    try {
      const entries = adoption.settled === undefined ? undefined : adoptionEntries(adoption.settled, stored.xattrs);
      if (entries === undefined) return;
      // Published as an unpack publishes: its files are flushed in the background, and until
      // then it is trusted in this boot only (the layer's blob, flushed, can make it again).
      await this.store.adoptSnapshot([...state.layers, { descriptor: stored.descriptor, diffId: stored.diffId }], dir, {
        size: stored.uncompressedSize,
        entries,
      });
    } catch (err) {
      debug('snapshot of %s not adopted: %s', shortDigest(stored.descriptor.digest), (err as Error).message);
    }
  }

  /** Settles `dir` for adoption (its last change), before the caller tars it. */
  startAdoption(dir: string): Adoption {
    try {
      return { settled: settleForAdoption(dir, this.#epoch()) };
    } catch (err) {
      debug('`%s` not settled for adoption: %s', dir, (err as Error).message);
      return { settled: undefined };
    }
  }

  /** The options of `storeLayer` for this build. */
  layerOptions(lease: Lease): StoreLayerOptions {
    return {
      lease,
      sourceDateEpoch: this.#epoch(),
      compressionLevel: this.settings.compressionLevel,
      signal: this.settings.signal,
      helperPath: this.settings.helperPath,
    };
  }

  /** A private scratch directory in the store; the caller removes it. */
  async tmpDir(): Promise<string> {
    const dir = path.join(this.store.tmpDir(), `build-fetch-${ownerToken()}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  /** The build context's files, `.dockerignore` applied. */
  contextFs(): ContextFs {
    if (this.#context === undefined) {
      const dir = path.resolve(this.settings.context ?? process.cwd());
      const ignore = this.settings.ignore === false ? DockerIgnore.EMPTY : DockerIgnore.parse(this.settings.ignore ?? readIgnoreFile(dir));
      this.#context = new ContextFs(dir, ignore, {
        dir: this.store.buildCache.directory('files'),
        tmpDir: this.store.tmpDir(),
      });
    }
    return this.#context;
  }

  /** The files of another stage (built first) or of an image, for `COPY --from`. */
  async source(from: string | Recipe, lease: Lease, context: string): Promise<{ fs: SourceFs; key: string }> {
    if (typeof from !== 'string') {
      const stage = executionOf(this.store, from);
      const built = await stage.build();
      await lease.add([built.manifest.digest]);
      const view = await stage.view(built.state, lease);
      return { fs: new ViewFs(view, `stage ${from.settings.name ?? shortDigest(built.manifest.digest)}`), key: built.state.key };
    }
    let snapshot;
    try {
      await lease.add([from]);
      snapshot = await this.store.snapshot(from, signalOption(this.settings.signal));
    } catch (err) {
      if (err instanceof NotFoundError) throw contextual(new NotFoundError(`${context}: image \`${from}\` is not in the store`, { cause: err }));
      throw err;
    }
    return { fs: new ViewFs(new MergedView(snapshot.lowerDirs, helperOption(this.settings.helperPath)), `image ${from}`), key: `image:${snapshot.digest}` };
  }
}

function readIgnoreFile(dir: string): string {
  try {
    return readFileSync(path.join(dir, '.dockerignore'), 'utf8');
  } catch {
    return '';
  }
}
