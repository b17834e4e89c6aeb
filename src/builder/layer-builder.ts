/**
 * {@link LayerBuilder}: the fluent API that records a build's recipe, step
 * by step; the executor runs it.
 *
 * @module
 */

import path from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { type ContainerConfig, DEFAULT_SHELL, type ImageConfig } from '../oci/index.js';
import type { ImageStoreCore as ImageStore } from '../store/index.js';
import { BuildCache } from './cache.js';
import { buildDockerfile, type DockerfileBuildOptions } from './dockerfile.js';
import { buildImage, executionOf } from './executor.js';
import type { PlanContext, PlannedStep, Recipe } from './recipe.js';
import type { BuildResult, BuildSettings, HealthcheckOptions, RunStepOptions } from './types.js';
import { expandPort, mountLabel, parseDuration, parseMode, quoteIfNeeded, setEnv } from './values.js';

/** Options of `new LayerBuilder()`. */
export interface LayerBuilderOptions extends BuildSettings {
  /** The base: an image reference in the store, `'scratch'` for none, or another builder (a stage). */
  from: string | LayerBuilder;
}

/** Options of {@link LayerBuilder.copy}. */
export interface CopyStepOptions {
  /** Owner of what is copied: `uid[:gid]` or `name[:group]` (from the image's /etc/passwd). @default 0:0 */
  chown?: string | number;
  /** Permission bits of what is copied: a number or an octal string (`'755'`). @default the source's */
  chmod?: number | string;
  /** Copy from another builder (stage) or an image in the store instead of the context. */
  from?: string | LayerBuilder;
}

/** Options of {@link LayerBuilder.add}. */
export interface AddStepOptions extends CopyStepOptions {
  /** Allow `http(s)://` sources, downloaded at build time. @default false */
  fetch?: boolean;
  /** Extract local tar archives (plain, gzip, zstd) into the destination. @default true */
  extract?: boolean;
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
  readonly #recipe: Recipe;
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
    const { from, ...settings } = options;
    this.#store = store;
    this.#recipe = { from: typeof from === 'string' ? from : from.#recipe, settings, steps: [] };
    // Registered now, so that this builder's stage is built on its own store whoever uses it.
    executionOf(store, this.#recipe);
  }

  /** The builder's name (a Dockerfile stage's), if any. */
  get name(): string | undefined {
    return this.#recipe.settings.name;
  }

  /** The number of steps recorded so far. */
  get stepCount(): number {
    return this.#recipe.steps.length;
  }

  #add(plan: (ctx: PlanContext) => PlannedStep): this {
    if (executionOf(this.#store, this.#recipe).started) throw new InvalidArgumentError('layer builder: steps cannot be added once the build has started');
    this.#recipe.steps.push({ plan });
    return this;
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
      ...(options.from !== undefined ? { from: typeof options.from === 'string' ? options.from : options.from.#recipe } : {}),
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
    return this.#add(() => ({ kind: 'arg', name, value: this.#recipe.settings.buildArgs?.[name] ?? defaultValue }));
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
  commit(tag?: string): Promise<BuildResult> {
    return buildImage(this.#store, this.#recipe, tag);
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
  static fromDockerfile(store: ImageStore, options: DockerfileBuildOptions): Promise<BuildResult> {
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
}
