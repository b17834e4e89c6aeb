/**
 * {@link LayerBuilder}: builds an image step by step, one layer per
 * filesystem step, with a build cache.
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { lstat, mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import createDebug from 'debug';
import { AbortError, BuildError, DocklessError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { sha256Digest, shortDigest, type Digest } from '../oci/digest.js';
import { formatPlatform, hostPlatform } from '../oci/platform.js';
import { parseReference } from '../oci/reference.js';
import type { ContainerConfig, Descriptor, HistoryEntry, ImageConfig } from '../oci/types.js';
import { Runtime } from '../runtime/runtime.js';
import type { MountSpec } from '../runtime/spec.js';
import { resolveUserFrom } from '../runtime/user.js';
import { ownerInContainer } from '../runtime/userns.js';
import type { ImageStoreCore as ImageStore } from '../store/index.js';
import type { Lease } from '../store/lease.js';
import type { ImageLayerInput } from '../store/types.js';
import { ownerToken } from '../util/index.js';
import { BuildCache, cacheKey, type CacheEntry, type CacheKeyInput } from './cache.js';
import { copySources, UpperDir, writeContent, type Owner } from './copy.js';
import { prepareForAdoption, pruneUpper, RUNTIME_MOUNT_POINTS, sourceDateEpochFromEnv, storeLayer, type StoredLayer } from './layer-writer.js';
import { MergedView } from './merged-view.js';
import type { DockerfileBuildOptions } from './dockerfile.js';
import { DockerIgnore } from './patterns.js';
import { ContextFs, expandSources, sourcesDigest, ViewFs, type SourceFs } from './source-fs.js';
import type {
  AddStepOptions,
  BuildProgress,
  BuildResult,
  BuildStepInfo,
  CopyStepOptions,
  HealthcheckOptions,
  LayerBuilderOptions,
  RunStepOptions,
  StepLayer,
} from './types.js';

const debug = createDebug('dockless:build');

const DEFAULT_SHELL: readonly string[] = ['/bin/sh', '-c'];
const OUTPUT_TAIL = 4096;

/** @internal The context a step is planned in. */
export interface PlanContext {
  /** The container config so far. */
  readonly config: ContainerConfig;
  /** `ARG`s declared so far, name → value (`undefined`: declared without a value). */
  readonly args: ReadonlyMap<string, string | undefined>;
  /** A variable as the Dockerfile sees it: `ENV` first, then `ARG`s. */
  lookup(name: string): string | undefined;
}

/** @internal A step with its variables expanded, ready to run. */
export type PlannedStep =
  | { kind: 'arg'; name: string; value: string | undefined }
  | { kind: 'config'; instruction: string; args?: Record<string, string>; apply: (config: ImageConfig) => void }
  | { kind: 'workdir'; instruction: string; args?: Record<string, string>; path: string }
  | {
      kind: 'run';
      instruction: string;
      args?: Record<string, string>;
      argv: string[];
      env: Record<string, string>;
      user?: string;
      cwd?: string;
      mounts: MountSpec[];
    }
  | {
      kind: 'copy';
      instruction: string;
      args?: Record<string, string>;
      add: boolean;
      sources: string[];
      heredocs: { name: string; content: string }[];
      dest: string;
      chown?: string;
      chmod?: number;
      from?: string | LayerBuilder;
      fetch: boolean;
      extract: boolean;
    };

/** @internal One step of a builder: planned when the build reaches it (variables depend on the steps before). */
export interface StepDefinition {
  /** The Dockerfile line, for messages. */
  line?: number;
  plan(ctx: PlanContext): PlannedStep;
}

/** @internal Adds a step definition (the Dockerfile front-end's way in). */
export const ADD_STEP = Symbol('dockless.addStep');
/** @internal Sets how a base image's `ONBUILD` triggers become steps (Dockerfile builds run them). */
export const ON_BUILD_TRIGGERS = Symbol('dockless.onBuildTriggers');

/** The state of a build between steps. */
interface BuildState {
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

/** A finished builder's result. */
interface Built {
  state: BuildState;
  manifest: Descriptor;
  cachedSteps: number;
  builtSteps: number;
}

/**
 * Builds an image step by step, as `docker build` does: each filesystem step
 * (`run`, `copy`, `add`, and `workdir` when the directory is new) becomes one
 * layer, the diff of what the step changed (deleted files as whiteouts,
 * replaced directories as opaque); config steps (`env`, `cmd`, `label`, …)
 * add `empty_layer` history entries. The image config's history records
 * every step, so `store.inspect()` shows the change log.
 *
 * Steps are recorded by the chained methods and run by {@link LayerBuilder.commit}.
 * Each `run` is a real container of the image built so far (through a
 * {@link Runtime} on the same store), with no network but its own loopback.
 * `copy`/`add` write into a fresh directory laid out as the step's overlay
 * upper dir would be, so they need no container (and work on `scratch`).
 *
 * Results go into the build cache, keyed by the state before the step, the
 * step's instruction and options, the build args it uses and (for
 * `copy`/`add`) a digest of the files copied; a later build finds them
 * without running anything. Layers are reproducible: sorted entries, times
 * clamped to `SOURCE_DATE_EPOCH` when set.
 *
 * @example
 * ```ts
 * const store = await ImageStore.open();
 * const { digest, reference } = await new LayerBuilder(store, { from: 'base:1', context: './app' })
 *   .run('mkdir -p /srv && echo ready > /srv/status')
 *   .copy(['package.json', 'src/'], '/srv/')
 *   .env('NODE_ENV', 'production')
 *   .workdir('/srv')
 *   .cmd(['node', 'src/main.js'])
 *   .commit('myapp:1.0');
 * ```
 */
export class LayerBuilder {
  readonly #store: ImageStore;
  readonly #options: LayerBuilderOptions;
  readonly #steps: StepDefinition[] = [];
  readonly #cache: BuildCache;
  #runtime: Runtime | undefined;
  #triggers: ((triggers: readonly string[]) => StepDefinition[]) | undefined;
  #built: Promise<Built> | undefined;
  #context: ContextFs | undefined;
  /** Whether a `cmd` step ran in this build (then `entrypoint` keeps the Cmd, as Docker's does). */
  #cmdSetInBuild = false;

  /**
   * A builder on `store`, from `options.from`.
   *
   * @throws {InvalidArgumentError} when `from` is not a string or builder.
   */
  constructor(store: ImageStore, options: LayerBuilderOptions) {
    if (typeof options?.from !== 'string' && !(options?.from instanceof LayerBuilder)) {
      throw new InvalidArgumentError('layer builder: `from` must be an image reference, \'scratch\' or a LayerBuilder');
    }
    this.#store = store;
    this.#options = options;
    this.#cache = new BuildCache(store.buildCache);
    this.#runtime = options.runtime;
  }

  /** The builder's name (a Dockerfile stage's), if any. */
  get name(): string | undefined {
    return this.#options.name;
  }

  /** The number of steps recorded so far. */
  get stepCount(): number {
    return this.#steps.length;
  }

  /** @internal */
  [ADD_STEP](step: StepDefinition): this {
    if (this.#built !== undefined) throw new InvalidArgumentError('layer builder: steps cannot be added once the build has started');
    this.#steps.push(step);
    return this;
  }

  /** @internal */
  [ON_BUILD_TRIGGERS](hook: (triggers: readonly string[]) => StepDefinition[]): this {
    this.#triggers = hook;
    return this;
  }

  #add(plan: (ctx: PlanContext) => PlannedStep): this {
    return this[ADD_STEP]({ plan });
  }

  /**
   * Runs a command in a container of the image so far; what it changes is
   * the step's layer. A string runs through the image's shell (`SHELL`,
   * default `/bin/sh -c`), an array is executed as it is. The `ARG`s
   * declared so far are in its environment (an `ENV` of the same name wins).
   *
   * @example
   * ```ts
   * builder.run('apk add --no-cache curl').run(['/bin/mkdir', '-p', '/data'], { user: '1000' });
   * ```
   */
  run(command: string | readonly string[], options: RunStepOptions = {}): this {
    if ((options.network ?? 'none') !== 'none') {
      throw new InvalidArgumentError(`run: network \`${String(options.network)}\` is not available; build containers have 'none' (loopback only)`);
    }
    return this.#add((ctx) => {
      const argv = typeof command === 'string' ? [...(ctx.config.Shell ?? DEFAULT_SHELL), command] : [...command];
      if (argv.length === 0) throw new InvalidArgumentError('run: empty command');
      const flags = [
        ...(options.user !== undefined ? [`--user=${options.user}`] : []),
        ...(options.cwd !== undefined ? [`--cwd=${options.cwd}`] : []),
        ...Object.entries(options.env ?? {}).map(([k, v]) => `--env=${k}=${v}`),
        ...(options.mounts ?? []).map((m) => `--mount=${mountLabel(m)}`),
      ];
      return {
        kind: 'run',
        instruction: ['RUN', ...flags, typeof command === 'string' ? argv.join(' ') : JSON.stringify(argv)].join(' '),
        argv,
        env: { ...options.env },
        ...(options.user !== undefined ? { user: options.user } : {}),
        ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
        mounts: [...(options.mounts ?? [])],
      };
    });
  }

  /**
   * Copies files from the context directory (or, with `from`, another
   * builder or an image) to `dest`, as `COPY` does: wildcards match, a
   * directory's contents are copied, `dest` relative to the working
   * directory, and a `dest` ending in `/` (needed for several sources) is a
   * directory. `.dockerignore` applies to the context.
   *
   * @example
   * ```ts
   * builder.copy(['src/', 'package.json'], '/app/', { chown: 'node:node', chmod: '644' });
   * builder.copy('/out/app', '/usr/local/bin/app', { from: buildStage });
   * ```
   */
  copy(sources: string | readonly string[], dest: string, options: CopyStepOptions = {}): this {
    return this.#copyStep('COPY', sources, dest, options, false, false, true);
  }

  /**
   * As {@link LayerBuilder.copy}, and a local tar archive (plain, gzip or
   * zstd) is extracted into `dest`. URLs are fetched only with `fetch: true`.
   *
   * @example
   * ```ts
   * builder.add('rootfs-extra.tar.gz', '/');
   * ```
   */
  add(sources: string | readonly string[], dest: string, options: AddStepOptions = {}): this {
    return this.#copyStep('ADD', sources, dest, options, true, options.fetch === true, options.extract !== false);
  }

  #copyStep(
    keyword: 'COPY' | 'ADD',
    sources: string | readonly string[],
    dest: string,
    options: CopyStepOptions,
    add: boolean,
    fetch: boolean,
    extract: boolean,
  ): this {
    const list = typeof sources === 'string' ? [sources] : [...sources];
    if (list.length === 0) throw new InvalidArgumentError(`${keyword.toLowerCase()}: no source given`);
    if (typeof dest !== 'string' || dest === '') throw new InvalidArgumentError(`${keyword.toLowerCase()}: no destination given`);
    const chmod = options.chmod === undefined ? undefined : parseMode(options.chmod, keyword.toLowerCase());
    const chown = options.chown === undefined ? undefined : String(options.chown);
    const fromLabel = options.from === undefined ? undefined : typeof options.from === 'string' ? options.from : (options.from.name ?? 'builder');
    return this.#add(() => ({
      kind: 'copy',
      instruction: [
        keyword,
        ...(fromLabel !== undefined ? [`--from=${fromLabel}`] : []),
        ...(chown !== undefined ? [`--chown=${chown}`] : []),
        ...(chmod !== undefined ? [`--chmod=${chmod.toString(8)}`] : []),
        ...list,
        dest,
      ].join(' '),
      add,
      sources: list,
      heredocs: [],
      dest,
      ...(chown !== undefined ? { chown } : {}),
      ...(chmod !== undefined ? { chmod } : {}),
      ...(options.from !== undefined ? { from: options.from } : {}),
      fetch,
      extract,
    }));
  }

  #config(instruction: string, apply: (config: ContainerConfig, image: ImageConfig) => void): this {
    return this.#add(() => ({
      kind: 'config',
      instruction,
      apply: (image) => {
        image.config ??= {};
        apply(image.config, image);
      },
    }));
  }

  /**
   * Sets environment variables of the image (`ENV`).
   *
   * @example
   * ```ts
   * builder.env('PORT', '8080').env({ NODE_ENV: 'production', TZ: 'UTC' });
   * ```
   */
  env(name: string | Readonly<Record<string, string>>, value?: string): this {
    const pairs: [string, string][] = typeof name === 'string' ? [[name, value ?? '']] : Object.entries(name);
    for (const [k] of pairs) {
      if (k === '' || k.includes('=') || k.includes('\0')) throw new InvalidArgumentError(`env: \`${k}\` is not a valid variable name`);
    }
    return this.#config(`ENV ${pairs.map(([k, v]) => `${k}=${quoteIfNeeded(v)}`).join(' ')}`, (config) => {
      config.Env = setEnv(config.Env ?? [], pairs);
    });
  }

  /**
   * Declares a build arg (`ARG`): its value is the builder's `buildArgs[name]`,
   * else `defaultValue`. Declared args are in the environment of later `run`
   * steps, not in the image.
   */
  arg(name: string, defaultValue?: string): this {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new InvalidArgumentError(`arg: \`${name}\` is not a valid name`);
    return this.#add(() => ({ kind: 'arg', name, value: this.#options.buildArgs?.[name] ?? defaultValue }));
  }

  /**
   * Sets the working directory (`WORKDIR`), relative to the previous one;
   * it is created (as a layer) when the image lacks it.
   */
  workdir(dir: string): this {
    if (typeof dir !== 'string' || dir === '') throw new InvalidArgumentError('workdir: empty path');
    return this.#add((ctx) => {
      const resolved = path.posix.resolve(ctx.config.WorkingDir || '/', dir);
      return { kind: 'workdir', instruction: `WORKDIR ${resolved}`, path: resolved };
    });
  }

  /** Sets the user the image's commands run as (`USER`): `uid[:gid]` or `name[:group]`. */
  user(user: string): this {
    if (typeof user !== 'string' || user === '') throw new InvalidArgumentError('user: empty user');
    return this.#config(`USER ${user}`, (config) => {
      config.User = user;
    });
  }

  /** Sets labels (`LABEL`). */
  label(key: string | Readonly<Record<string, string>>, value?: string): this {
    const pairs: [string, string][] = typeof key === 'string' ? [[key, value ?? '']] : Object.entries(key);
    return this.#config(`LABEL ${pairs.map(([k, v]) => `${quoteIfNeeded(k)}=${quoteIfNeeded(v)}`).join(' ')}`, (config) => {
      config.Labels = { ...config.Labels, ...Object.fromEntries(pairs) };
    });
  }

  /** Declares ports the image listens on (`EXPOSE`): `80`, `'53/udp'`, `'8000-8002'`. */
  expose(...ports: (number | string)[]): this {
    const keys = ports.flatMap((p) => expandPort(String(p)));
    return this.#config(`EXPOSE ${ports.map(String).join(' ')}`, (config) => {
      config.ExposedPorts = { ...config.ExposedPorts };
      for (const k of keys) config.ExposedPorts[k] = {};
    });
  }

  /** Declares volumes (`VOLUME`). */
  volume(...paths: string[]): this {
    return this.#config(`VOLUME ${JSON.stringify(paths)}`, (config) => {
      config.Volumes = { ...config.Volumes };
      for (const p of paths) config.Volumes[p] = {};
    });
  }

  /**
   * Sets the entrypoint (`ENTRYPOINT`): an array is exec form, a string runs
   * through the shell. As in Docker, it clears a `Cmd` the base image had.
   */
  entrypoint(command: string | readonly string[]): this {
    return this.#add((ctx) => {
      const argv = typeof command === 'string' ? [...(ctx.config.Shell ?? DEFAULT_SHELL), command] : [...command];
      return {
        kind: 'config',
        instruction: `ENTRYPOINT ${JSON.stringify(argv)}`,
        apply: (image) => {
          image.config ??= {};
          image.config.Entrypoint = argv;
          if (!this.#cmdSetInBuild) image.config.Cmd = null;
        },
      };
    });
  }

  /** Sets the default command (`CMD`): an array is exec form, a string runs through the shell. */
  cmd(command: string | readonly string[]): this {
    return this.#add((ctx) => {
      const argv = typeof command === 'string' ? [...(ctx.config.Shell ?? DEFAULT_SHELL), command] : [...command];
      return {
        kind: 'config',
        instruction: `CMD ${JSON.stringify(argv)}`,
        apply: (image) => {
          image.config ??= {};
          image.config.Cmd = argv;
          this.#cmdSetInBuild = true;
        },
      };
    });
  }

  /** Sets the shell of shell-form commands (`SHELL`). */
  shell(shell: readonly string[]): this {
    if (!Array.isArray(shell) || shell.length === 0) throw new InvalidArgumentError('shell: expected a non-empty array');
    return this.#config(`SHELL ${JSON.stringify(shell)}`, (config) => {
      config.Shell = [...shell];
    });
  }

  /** Sets the signal that stops containers of the image (`STOPSIGNAL`). */
  stopSignal(signal: string | number): this {
    return this.#config(`STOPSIGNAL ${signal}`, (config) => {
      config.StopSignal = String(signal);
    });
  }

  /**
   * Sets the healthcheck (`HEALTHCHECK`): a command (array: exec form,
   * string: through the shell), or `'NONE'` to disable the base image's.
   */
  healthcheck(command: string | readonly string[], options: HealthcheckOptions = {}): this {
    const test =
      command === 'NONE' ? ['NONE'] : typeof command === 'string' ? ['CMD-SHELL', command] : ['CMD', ...command];
    const health: NonNullable<ContainerConfig['Healthcheck']> = { Test: test };
    const set = (key: 'Interval' | 'Timeout' | 'StartPeriod' | 'StartInterval', v: number | string | undefined): void => {
      if (v !== undefined) health[key] = parseDuration(v, 'healthcheck') * 1_000_000;
    };
    set('Interval', options.interval);
    set('Timeout', options.timeout);
    set('StartPeriod', options.startPeriod);
    set('StartInterval', options.startInterval);
    if (options.retries !== undefined) health.Retries = options.retries;
    return this.#config(`HEALTHCHECK ${JSON.stringify(health)}`, (config) => {
      config.Healthcheck = health;
    });
  }

  /** Adds a trigger that runs when the image is used as the base of a Dockerfile build (`ONBUILD`). */
  onBuild(instruction: string): this {
    return this.#config(`ONBUILD ${instruction}`, (config) => {
      config.OnBuild = [...(config.OnBuild ?? []), instruction];
    });
  }

  /** Sets the image's author (`MAINTAINER`). */
  author(author: string): this {
    return this.#config(`MAINTAINER ${author}`, (_config, image) => {
      image.author = author;
    });
  }

  /**
   * Runs the steps (once; a second call reuses the result), stores the image
   * and, with `tag`, tags it.
   *
   * @returns the image's digest, its reference when tagged, its config and how many steps were cached.
   * @throws {BuildError} when a `RUN` fails: its exit code and the tail of its output; no layer or tag is left.
   * @throws {NotFoundError} when the base image, a `from` image or a source file is missing.
   * @throws {InvalidArgumentError} for a malformed step (bad destination, chown, …).
   * @throws {AbortError} when `signal` aborts.
   * @example
   * ```ts
   * const { digest, reference, cachedSteps } = await builder.commit('app:dev');
   * ```
   */
  async commit(tag?: string): Promise<BuildResult> {
    const reference = tag === undefined ? undefined : parseReference(tag);
    if (reference?.digest !== undefined) throw new InvalidArgumentError(`commit: tag \`${tag}\` must not have a digest`);
    const built = await this.#build();
    if (reference !== undefined) await this.#store.tag(built.manifest.digest, reference.toString());
    const result: BuildResult = {
      digest: built.manifest.digest,
      config: built.state.config,
      cachedSteps: built.cachedSteps,
      builtSteps: built.builtSteps,
    };
    if (reference !== undefined) result.reference = reference.toString();
    return result;
  }

  /**
   * Builds a Dockerfile (or Containerfile) in `options.context`: the target
   * stage (default the last) and the stages it needs, each a builder sharing
   * the build cache, and tags the result with `options.tag`. All of
   * Dockerfile's instructions are understood (multi-stage `FROM … AS`,
   * `RUN` with heredocs and `--mount=type=bind|cache|tmpfs`, `COPY`/`ADD`
   * with `--from`, `--chown`, `--chmod` and heredocs, `ARG` scoping and
   * build args, `${VAR:-default}`/`${VAR:+alt}` substitution, the `escape`
   * directive, `ONBUILD`), and `.dockerignore` (or `<Dockerfile>.dockerignore`).
   *
   * @throws {InvalidArgumentError} for a bad Dockerfile; the message starts with `Dockerfile line N:`.
   * @throws {BuildError} when a `RUN` fails (`line`, `exitCode`, `output`); nothing is tagged.
   * @throws {NotFoundError} when the Dockerfile, a base image or a source file is missing.
   * @example
   * ```ts
   * const { digest } = await LayerBuilder.fromDockerfile(store, { context: '.', tag: 'app:1', buildArgs: { VERSION: '2' } });
   * ```
   */
  static async fromDockerfile(store: ImageStore, options: DockerfileBuildOptions): Promise<BuildResult> {
    // Loaded on use: the front-end imports this module.
    const { buildDockerfile } = await import('./dockerfile.js');
    return buildDockerfile(store, options);
  }

  /**
   * Removes build cache entries not used for `olderThan` milliseconds (all
   * with 0); run `store.gc()` afterwards to free their layers, as
   * `docker builder prune` does.
   *
   * @returns the number of entries removed.
   */
  static pruneCache(store: ImageStore, options: { olderThan?: number } = {}): Promise<number> {
    return new BuildCache(store.buildCache).prune(options);
  }

  // ---------------------------------------------------------------- the build

  #build(): Promise<Built> {
    this.#built ??= this.#run();
    return this.#built;
  }

  async #run(): Promise<Built> {
    const store = this.#store;
    const { signal } = this.#options;
    const label = this.#options.name !== undefined ? `build stage ${this.#options.name}` : 'build';
    throwIfAborted(signal, label);
    const lease = await store.lease(`build-${process.pid}-${randomBytes(6).toString('hex')}`, [], { processBound: true });
    try {
      const { state, triggers } = await this.#baseState(lease, label);
      const steps = [...(this.#triggers !== undefined && triggers.length > 0 ? this.#triggers(triggers) : []), ...this.#steps];
      let cachedSteps = 0;
      let builtSteps = 0;
      for (const [i, def] of steps.entries()) {
        throwIfAborted(signal, label);
        const info: BuildStepInfo = { step: i + 1, total: steps.length, instruction: '' };
        if (this.#options.name !== undefined) info.stage = this.#options.name;
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
        this.#emit({ type: 'step-start', ...info });
        const started = performance.now();
        let outcome: { cached: boolean; layer?: StepLayer };
        try {
          outcome = await this.#step(state, planned, lease, context, info);
        } catch (err) {
          throw rewrap(err, context);
        }
        if (outcome.cached) {
          cachedSteps++;
          this.#emit({ type: 'step-cached', ...info, ...(outcome.layer !== undefined ? { layer: outcome.layer } : {}) });
        } else {
          builtSteps++;
          this.#emit({
            type: 'step-done',
            ...info,
            ...(outcome.layer !== undefined ? { layer: outcome.layer } : {}),
            durationMs: performance.now() - started,
          });
        }
      }
      const manifest = await this.#image(state, lease);
      await this.#context?.saveDigests();
      debug('%s: %s (%d steps cached, %d built)', label, shortDigest(manifest.digest), cachedSteps, builtSteps);
      return { state, manifest, cachedSteps, builtSteps };
    } finally {
      await lease.release().catch(() => false);
    }
  }

  #emit(event: BuildProgress): void {
    try {
      this.#options.onProgress?.(event);
    } catch (err) {
      debug('progress listener threw: %s', (err as Error).message);
    }
  }

  async #baseState(lease: Lease, label: string): Promise<{ state: BuildState; triggers: string[] }> {
    const from = this.#options.from;
    if (from instanceof LayerBuilder) {
      const built = await from.#build();
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
      details = await this.#store.inspect(from);
    } catch (err) {
      if (err instanceof NotFoundError) {
        throw new NotFoundError(`${label}: base image \`${from}\` is not in the store (pull or import it first)`, { cause: err });
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

  async #step(
    state: BuildState,
    planned: Exclude<PlannedStep, { kind: 'arg' }>,
    lease: Lease,
    context: string,
    info: BuildStepInfo,
  ): Promise<{ cached: boolean; layer?: StepLayer }> {
    const platform = formatPlatform({ os: state.config.os, architecture: state.config.architecture, ...(state.config.variant !== undefined ? { variant: state.config.variant } : {}) });
    const base: CacheKeyInput = { parent: state.key, instruction: planned.instruction, platform, ...(planned.args !== undefined ? { args: planned.args } : {}) };
    switch (planned.kind) {
      case 'config': {
        const key = cacheKey(base);
        planned.apply(state.config);
        this.#history(state, { created_by: planned.instruction, empty_layer: true }, state.created ?? this.#now());
        changed(state, key);
        return { cached: false };
      }
      case 'workdir': {
        const key = cacheKey(base);
        state.config.config = { ...state.config.config, WorkingDir: planned.path };
        return this.#layerStep(state, key, planned.instruction, lease, async () => {
          const view = await this.#view(state, lease);
          const resolved = await view.resolve(planned.path, { followLast: true });
          if ((await view.lstat(resolved))?.stats.isDirectory()) return undefined;
          return this.#withUpper(state, view, async (upper) => {
            await upper.ensureDir(resolved, { mode: 0o755, owner: { uid: 0, gid: 0 }, mtime: this.#nowSeconds() }, context);
          }, lease);
        });
      }
      case 'run': {
        const env = runEnv(state);
        const key = cacheKey({
          ...base,
          args: { ...Object.fromEntries([...state.args].filter((e): e is [string, string] => e[1] !== undefined)) },
          options: { env: planned.env, user: planned.user, cwd: planned.cwd, network: 'none', mounts: planned.mounts },
        });
        return this.#layerStep(state, key, planned.instruction, lease, () =>
          this.#runCommand(state, planned, { ...env, ...planned.env }, lease, context, info),
        );
      }
      case 'copy':
        return this.#copy(state, planned, base, lease, context);
    }
  }

  /** Looks the step up in the cache; runs `make` on a miss and records its result. */
  async #layerStep(
    state: BuildState,
    key: Digest,
    instruction: string,
    lease: Lease,
    make: () => Promise<StoredLayer | undefined>,
  ): Promise<{ cached: boolean; layer?: StepLayer }> {
    if (this.#options.noCache !== true) {
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
    if (!(await this.#store.hasBlob(entry.layer.descriptor.digest))) return false;
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
    return new Date(this.#nowSeconds() * 1000).toISOString();
  }

  #nowSeconds(): number {
    const epoch = this.#epoch();
    const now = Math.floor(Date.now() / 1000);
    return epoch !== undefined && epoch < now ? epoch : now;
  }

  #epoch(): number | undefined {
    return this.#options.sourceDateEpoch ?? sourceDateEpochFromEnv('build');
  }

  /** The state as an image in the store (config and manifest written once per state). */
  #image(state: BuildState, lease: Lease): Promise<Descriptor> {
    state.image ??= (async () => {
      const history = state.config.history ?? [];
      const config: ImageConfig = { ...state.config, rootfs: { type: 'layers', diff_ids: state.layers.map((l) => l.diffId as Digest) } };
      const last = history.at(-1)?.created ?? state.created;
      if (last !== undefined) config.created = last;
      return this.#store.putImage({ config, layers: state.layers, lease });
    })();
    return state.image;
  }

  /** The state's files, unpacked in the store. */
  #view(state: BuildState, lease: Lease): Promise<MergedView> {
    state.view ??= (async () => {
      if (state.layers.length === 0) return new MergedView([]);
      const image = await this.#image(state, lease);
      const snapshot = await this.#store.snapshot(image.digest, signalOption(this.#options.signal));
      return new MergedView(snapshot.lowerDirs, helperOption(this.#options.helperPath));
    })();
    return state.view;
  }

  async #withUpper(state: BuildState, view: MergedView | undefined, fill: (upper: UpperDir) => Promise<void>, lease: Lease): Promise<StoredLayer> {
    const dir = path.join(this.#store.tmpDir(), `build-${ownerToken()}`);
    await mkdir(dir, { mode: 0o755 });
    try {
      const upper = new UpperDir(dir, view);
      await fill(upper);
      await upper.finish();
      const stored = await storeLayer(this.#store, dir, { ...this.#layerOptions(lease), mapOwner: upper.mapOwner() });
      await this.#adopt(state, stored, dir);
      return stored;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * Makes the directory a layer was just made from that layer's snapshot, so
   * the next step's container (or files) need not unpack it again. Best
   * effort: the layer is unpacked from its blob when this does not happen.
   */
  async #adopt(state: BuildState, stored: StoredLayer, dir: string): Promise<void> {
    try {
      const entries = prepareForAdoption(dir, stored.xattrs, this.#epoch());
      if (entries === undefined) return;
      await this.#store.adoptSnapshot([...state.layers, { descriptor: stored.descriptor, diffId: stored.diffId }], dir, {
        size: stored.uncompressedSize,
        entries,
      });
    } catch (err) {
      debug('snapshot of %s not adopted: %s', shortDigest(stored.descriptor.digest), (err as Error).message);
    }
  }

  #layerOptions(lease: Lease): Parameters<typeof storeLayer>[2] {
    return {
      lease,
      sourceDateEpoch: this.#epoch(),
      compressionLevel: this.#options.compressionLevel,
      signal: this.#options.signal,
      helperPath: this.#options.helperPath,
    };
  }

  async #runCommand(
    state: BuildState,
    planned: Extract<PlannedStep, { kind: 'run' }>,
    env: Record<string, string>,
    lease: Lease,
    context: string,
    info: BuildStepInfo,
  ): Promise<StoredLayer> {
    const image = await this.#image(state, lease);
    this.#runtime ??= new Runtime({ store: this.#store, ...helperOption(this.#options.helperPath) });
    const runtime = this.#runtime;
    const container = await runtime.run({
      image: image.digest,
      entrypoint: [],
      cmd: planned.argv,
      env,
      ...(planned.user !== undefined ? { user: planned.user } : {}),
      ...(planned.cwd !== undefined ? { cwd: planned.cwd } : {}),
      mounts: planned.mounts,
      stdio: 'pipe',
    });
    try {
      container.stdin?.end();
      let tail = '';
      const collect = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
        const data = chunk.toString();
        tail = (tail + data).slice(-OUTPUT_TAIL);
        this.#emit({ type: 'step-output', ...info, stream, data });
      };
      container.stdout?.on('data', collect('stdout'));
      container.stderr?.on('data', collect('stderr'));
      const { signal } = this.#options;
      const onAbort = (): void => void container.kill('SIGKILL').catch(() => undefined);
      signal?.addEventListener('abort', onAbort, { once: true });
      let exit;
      try {
        exit = await container.wait();
        await Promise.all([ended(container.stdout), ended(container.stderr)]);
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
      throwIfAborted(signal, context);
      if (exit.exitCode !== 0) {
        const how = exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${exit.exitCode}`;
        const lastLine = tail.trimEnd().split('\n').at(-1) ?? '';
        throw new BuildError(`${context}: the command ${how}${lastLine !== '' ? `: ${lastLine}` : ''}`, {
          step: info.step,
          instruction: info.instruction,
          ...(info.line !== undefined ? { line: info.line } : {}),
          exitCode: exit.exitCode,
          output: tail,
        });
      }
      const upper = runtime.pathsOf(container.id).upper;
      const view = await this.#view(state, lease);
      await pruneUpper(upper, view, [...RUNTIME_MOUNT_POINTS, ...planned.mounts.map((m) => m.target)], this.#options.helperPath);
      const { userns } = container.info();
      // A rootless container's upper dir holds host ids: the layer has the container's.
      const rootless = userns?.rootless === true;
      const stored = await storeLayer(this.#store, upper, { ...this.#layerOptions(lease), mapOwner: rootless ? ownerInContainer(userns) : undefined });
      // Nor can it stand for the snapshot: its files of other ids than the caller's could not be removed again.
      if (!rootless) await this.#adopt(state, stored, upper);
      return stored;
    } finally {
      await container.remove({ force: true }).catch((err: unknown) => debug('%s: remove container: %s', context, (err as Error).message));
    }
  }

  async #copy(
    state: BuildState,
    planned: Extract<PlannedStep, { kind: 'copy' }>,
    base: CacheKeyInput,
    lease: Lease,
    context: string,
  ): Promise<{ cached: boolean; layer?: StepLayer }> {
    const urls = planned.sources.filter(isUrl);
    const local = planned.sources.filter((s) => !isUrl(s));
    if (urls.length > 0 && !planned.add) throw new InvalidArgumentError(`${context}: COPY cannot copy from a URL; use ADD`);
    if (urls.length > 0 && !planned.fetch) {
      throw new InvalidArgumentError(`${context}: ADD from a URL fetches over the network; allow it with { fetch: true }`);
    }
    const count = local.length + urls.length + planned.heredocs.length;
    let fs: SourceFs;
    let fromKey: string | undefined;
    if (planned.from !== undefined) {
      const source = await this.#fromSource(planned.from, lease, context);
      fs = source.fs;
      fromKey = source.key;
    } else {
      fs = this.#contextFs();
    }
    const sources = await expandSources(fs, local, context);
    const dest = path.posix.resolve(state.config.config?.WorkingDir || '/', planned.dest);
    const destIsDir = planned.dest.endsWith('/') || count > 1 || sources.length > local.length;
    if (destIsDir && !planned.dest.endsWith('/') && (count > 1 || sources.length > local.length)) {
      throw new InvalidArgumentError(`${context}: with several sources the destination must be a directory and end with /`);
    }
    const tmp = urls.length > 0 ? await this.#tmpDir() : undefined;
    try {
      const fetched = tmp === undefined ? [] : await Promise.all(urls.map((u, i) => fetchTo(u, path.join(tmp, String(i)), context, this.#options.signal)));
      const content = [
        fromKey !== undefined ? `from:${fromKey}` : '',
        sources.length > 0 ? (fromKey !== undefined ? sources.map((s) => s.rel).join('\0') : await sourcesDigest(fs, sources)) : '',
        ...planned.heredocs.map((h) => `heredoc:${h.name}\0${h.content}`),
        ...fetched.map((f) => `url:${f.url}\0${f.digest}`),
      ].join('\n');
      const key = cacheKey({
        ...base,
        content,
        options: { chown: planned.chown, chmod: planned.chmod, extract: planned.add ? planned.extract : undefined },
      });
      return await this.#layerStep(state, key, planned.instruction, lease, async () => {
        const view = await this.#view(state, lease);
        const chown = planned.chown !== undefined ? await resolveChown(view, planned.chown, context) : undefined;
        const now = this.#nowSeconds();
        return this.#withUpper(state, view, async (upper) => {
          const options = {
            destIsDir,
            now,
            extractArchives: planned.add && planned.extract && planned.from === undefined,
            ...(chown !== undefined ? { chown } : {}),
            ...(planned.chmod !== undefined ? { chmod: planned.chmod } : {}),
          };
          await copySources(upper, fs, sources, dest, options, context);
          for (const h of planned.heredocs) await writeContent(upper, h.name, h.content, dest, options, context);
          for (const f of fetched) {
            const stats = await lstat(f.path);
            await copySources(upper, fs, [{ rel: f.name, entry: { stats, hostPath: f.path } }], dest, { ...options, extractArchives: false, chmod: planned.chmod ?? 0o600 }, context);
          }
        }, lease);
      });
    } finally {
      if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
    }
  }

  async #tmpDir(): Promise<string> {
    const dir = path.join(this.#store.tmpDir(), `build-fetch-${ownerToken()}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  #contextFs(): ContextFs {
    if (this.#context === undefined) {
      const dir = path.resolve(this.#options.context ?? process.cwd());
      const ignore = this.#options.ignore === false ? DockerIgnore.EMPTY : DockerIgnore.parse(this.#options.ignore ?? readIgnoreFile(dir));
      this.#context = new ContextFs(dir, ignore, {
        dir: this.#store.buildCache.directory('files'),
        tmpDir: this.#store.tmpDir(),
      });
    }
    return this.#context;
  }

  async #fromSource(from: string | LayerBuilder, lease: Lease, context: string): Promise<{ fs: SourceFs; key: string }> {
    if (from instanceof LayerBuilder) {
      const built = await from.#build();
      await lease.add([built.manifest.digest]);
      const view = await from.#view(built.state, lease);
      return { fs: new ViewFs(view, `stage ${from.name ?? shortDigest(built.manifest.digest)}`), key: built.state.key };
    }
    let snapshot;
    try {
      await lease.add([from]);
      snapshot = await this.#store.snapshot(from, signalOption(this.#options.signal));
    } catch (err) {
      if (err instanceof NotFoundError) throw new NotFoundError(`${context}: image \`${from}\` is not in the store`, { cause: err });
      throw err;
    }
    return { fs: new ViewFs(new MergedView(snapshot.lowerDirs, helperOption(this.#options.helperPath)), `image ${from}`), key: `image:${snapshot.digest}` };
  }
}

/** Marks the state changed: a new key, and its image and files to be made again when needed. */
function changed(state: BuildState, key: Digest): void {
  state.key = key;
  delete state.image;
  delete state.view;
}

function planContext(state: BuildState): PlanContext {
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
function runEnv(state: BuildState): Record<string, string> {
  const envNames = new Set((state.config.config?.Env ?? []).map((p) => p.slice(0, p.indexOf('='))));
  const out: Record<string, string> = {};
  for (const [name, value] of state.args) if (value !== undefined && !envNames.has(name)) out[name] = value;
  return out;
}

function stepLayer(layer: { descriptor: Descriptor; diffId: Digest }): StepLayer {
  return { digest: layer.descriptor.digest, size: layer.descriptor.size, diffId: layer.diffId };
}

function setEnv(env: readonly string[], pairs: readonly [string, string][]): string[] {
  const out = [...env];
  for (const [k, v] of pairs) {
    const i = out.findIndex((p) => p.slice(0, p.indexOf('=')) === k);
    if (i >= 0) out[i] = `${k}=${v}`;
    else out.push(`${k}=${v}`);
  }
  return out;
}

function quoteIfNeeded(v: string): string {
  return /^[A-Za-z0-9_./:@%+,-]*$/.test(v) && v !== '' ? v : JSON.stringify(v);
}

function mountLabel(m: MountSpec): string {
  return m.type === 'bind'
    ? `type=bind,source=${m.source},target=${m.target}${m.readonly ? ',ro' : ''}`
    : `type=tmpfs,target=${m.target}${m.size !== undefined ? `,size=${m.size}` : ''}`;
}

/** Parses a mode: a number, or an octal string (`'755'`, `'0644'`). */
export function parseMode(mode: number | string, what: string): number {
  const n = typeof mode === 'number' ? mode : /^[0-7]{1,4}$/.test(mode) ? parseInt(mode, 8) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 0o7777) throw new InvalidArgumentError(`${what}: chmod \`${String(mode)}\` is not an octal mode`);
  return n;
}

/** The `ExposedPorts` keys of an `EXPOSE` word: `80` → `80/tcp`, `8000-8001/udp` → two. */
export function expandPort(word: string): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(word);
  if (m === null) throw new InvalidArgumentError(`expose: \`${word}\` is not a port, port range or port/protocol`);
  const first = Number(m[1]);
  const last = m[2] !== undefined ? Number(m[2]) : first;
  const proto = (m[3] ?? 'tcp').toLowerCase();
  if (first < 1 || last > 65535 || last < first) throw new InvalidArgumentError(`expose: \`${word}\` is out of range`);
  const out: string[] = [];
  for (let p = first; p <= last; p++) out.push(`${p}/${proto}`);
  return out;
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds of a duration: a number of milliseconds, or Go's form (`'1m30s'`, `'500ms'`). */
export function parseDuration(value: number | string, what: string): number {
  if (typeof value === 'number') {
    if (!(value >= 0)) throw new InvalidArgumentError(`${what}: duration ${value} must not be negative`);
    return value;
  }
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  for (let m = re.exec(value); m !== null; m = re.exec(value)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    pos = re.lastIndex;
  }
  if (value === '' || pos !== value.length) throw new InvalidArgumentError(`${what}: \`${value}\` is not a duration (e.g. 30s, 1m30s)`);
  return total;
}

async function resolveChown(view: MergedView, spec: string, context: string): Promise<Owner> {
  const [userPart = '', groupPart] = spec.split(':');
  const numeric = (s: string): boolean => /^\d+$/.test(s);
  if (numeric(userPart) && (groupPart === undefined || numeric(groupPart))) {
    const uid = Number(userPart);
    return { uid, gid: groupPart === undefined ? uid : Number(groupPart) };
  }
  const [passwd, group] = await Promise.all([view.readFile('/etc/passwd'), view.readFile('/etc/group')]);
  try {
    const user = resolveUserFrom(groupPart === undefined ? userPart : `${userPart}:${groupPart}`, passwd?.toString() ?? '', group?.toString() ?? '');
    // Docker: a user without a group gets the gid equal to its uid.
    return { uid: user.uid, gid: groupPart === undefined ? user.uid : user.gid };
  } catch (err) {
    throw rewrap(err, `${context}: --chown`);
  }
}

function readIgnoreFile(dir: string): string {
  try {
    return readFileSync(path.join(dir, '.dockerignore'), 'utf8');
  } catch {
    return '';
  }
}

function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

async function fetchTo(url: string, file: string, context: string, signal: AbortSignal | undefined): Promise<{ url: string; path: string; name: string; digest: string }> {
  let response: Response;
  try {
    response = await fetch(url, signal !== undefined ? { signal } : {});
  } catch (cause) {
    throw new DocklessError(`${context}: fetch \`${url}\`: ${(cause as Error).message}`, { cause });
  }
  if (!response.ok) throw new NotFoundError(`${context}: fetch \`${url}\`: HTTP ${response.status}`);
  const data = Buffer.from(await response.arrayBuffer());
  await writeFile(file, data, { mode: 0o600 });
  const modified = response.headers.get('last-modified');
  if (modified !== null && !Number.isNaN(Date.parse(modified))) {
    const t = Date.parse(modified) / 1000;
    await utimes(file, t, t);
  }
  const name = decodeURIComponent(new URL(url).pathname.split('/').filter(Boolean).at(-1) ?? 'download');
  return { url, path: file, name, digest: sha256Digest(data) };
}

async function ended(stream: NodeJS.ReadableStream | null): Promise<void> {
  if (stream === null) return;
  const s = stream as NodeJS.ReadableStream & { readableEnded?: boolean; destroyed?: boolean };
  if (s.readableEnded || s.destroyed) return;
  await new Promise<void>((resolve) => {
    s.once('end', resolve);
    s.once('close', resolve);
    s.once('error', () => resolve());
  });
}

function throwIfAborted(signal: AbortSignal | undefined, context: string): void {
  if (signal?.aborted) throw new AbortError(`${context}: aborted`, { cause: signal.reason });
}

/**
 * Puts `context` before the message of a dockless error that does not start
 * with it yet (keeping its class and fields); wraps anything else in a
 * {@link BuildError}.
 */
function rewrap(err: unknown, context: string): Error {
  if (err instanceof DocklessError) {
    if (!err.message.startsWith(context) && !err.message.startsWith('build')) err.message = `${context}: ${err.message}`;
    return err;
  }
  const message = err instanceof Error ? err.message : String(err);
  return new BuildError(`${context}: ${message}`, { cause: err });
}

function signalOption(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal !== undefined ? { signal } : {};
}

function helperOption(helperPath: string | undefined): { helperPath?: string } {
  return helperPath !== undefined ? { helperPath } : {};
}
