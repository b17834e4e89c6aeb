/**
 * The option, progress and result types of {@link LayerBuilder}.
 *
 * @module
 */

import type { ProgressBase } from '../util/index.js';
import type { Digest, ImageConfig } from '../oci/index.js';
import type { MountSpec, Runtime } from '../runtime/index.js';

/** How a build runs: the options of `new LayerBuilder()` but its base. */
export interface BuildSettings {
  /**
   * Runs the `RUN` steps. It must use the same store (`new Runtime({ store })`).
   * @default a `Runtime` with default directories on the builder's store, made at the first `RUN`
   */
  runtime?: Runtime;
  /** The directory `COPY`/`ADD` read from. @default process.cwd() */
  context?: string;
  /**
   * `.dockerignore` rules for the context (the file's text), or `false` for none.
   * @default the context's `.dockerignore` file, if any
   */
  ignore?: string | false;
  /** Build args (`--build-arg`): values of the `ARG`s declared. @default {} */
  buildArgs?: Readonly<Record<string, string>>;
  /** Run every step, even those the cache has; the results still go into the cache. @default false */
  noCache?: boolean;
  /** Receives a {@link BuildProgress} event per step change. */
  onProgress?: (event: BuildProgress) => void;
  /** Cancels the build: a running step is killed, nothing is tagged. */
  signal?: AbortSignal;
  /**
   * Clamp file times in new layers and history times to this (seconds since the epoch), for reproducible images.
   * @default Number(process.env.SOURCE_DATE_EPOCH) when set, else no clamping
   */
  sourceDateEpoch?: number;
  /**
   * gzip level of new layers, 1 (fast) to 9 (small). A build compresses
   * every layer it makes, most of which never leave the machine, so speed
   * wins: level 6 (Docker's) takes 5× the CPU for layers about 20% smaller.
   * @default 1
   */
  compressionLevel?: number;
  /** A name for progress events and messages, e.g. a Dockerfile stage's. */
  name?: string;
  /** Path of the native helper. @default the one `npm install` built */
  helperPath?: string;
}

/** Options of {@link LayerBuilder.run}. */
export interface RunStepOptions {
  /** Extra environment of this command only (not kept in the image). @default {} */
  env?: Readonly<Record<string, string>>;
  /** The user it runs as. @default the image's User */
  user?: string;
  /** Its working directory. @default the image's WorkingDir */
  cwd?: string;
  /**
   * Its network. Only `'none'` (a loopback interface of its own) is available.
   * @default 'none'
   */
  network?: 'none';
  /** Extra mounts (binds, tmpfs), not part of the layer. @default [] */
  mounts?: readonly MountSpec[];
}

/** Options of {@link LayerBuilder.healthcheck}. Durations are milliseconds or Go-style strings (`'30s'`, `'1m30s'`). */
export interface HealthcheckOptions {
  /** Time between checks. @default 30s (Docker's) */
  interval?: number | string;
  /** Time a check may take before it counts as failed. @default 30s */
  timeout?: number | string;
  /** Start-up time during which failures do not count. @default 0 */
  startPeriod?: number | string;
  /** Time between checks during the start period. @default 5s */
  startInterval?: number | string;
  /** Consecutive failures that make the container unhealthy. @default 3 */
  retries?: number;
}

/** A layer made or reused by a step. */
export interface StepLayer {
  /** The compressed layer blob's digest. */
  digest: Digest;
  /** Its size in bytes. */
  size: number;
  /** The digest of the uncompressed tar. */
  diffId: Digest;
}

/** Fields every {@link BuildProgress} event has. */
export interface BuildStepInfo {
  /** The step's number in its builder, from 1. */
  step: number;
  /** The number of steps of the builder. */
  total: number;
  /** The instruction, e.g. `COPY src /app`. */
  instruction: string;
  /** The builder's name (a Dockerfile stage), when it has one. */
  stage?: string;
  /** The Dockerfile line, for a Dockerfile build. */
  line?: number;
}

/**
 * A build progress event. Each step reports `step-start`, then either
 * `step-cached` (the cache had its result: nothing ran) or `step-done`;
 * a `RUN` reports its output as `step-output` in between.
 */
export type BuildProgress = ProgressBase<'build'> &
  (
  | ({
      /** The step begins. */
      type: 'step-start';
    } & BuildStepInfo)
  | ({
      /** The cache had the step's result: nothing ran. */
      type: 'step-cached';
      /** The layer reused; absent for a step without one. */
      layer?: StepLayer;
    } & BuildStepInfo)
  | ({
      /** The step ran (or, for a config-only step, was applied). */
      type: 'step-done';
      /** The layer made; absent for a step that only changed the config. */
      layer?: StepLayer;
      /** How long the step took. */
      durationMs: number;
    } & BuildStepInfo)
  | ({
      /** Output of a `RUN` command. */
      type: 'step-output';
      /** Which of its streams it came on. */
      stream: 'stdout' | 'stderr';
      /** A chunk of output, as it came. */
      data: string;
    } & BuildStepInfo)
  );

/** What {@link LayerBuilder.commit} returns. */
export interface BuildResult {
  /** The image manifest's digest. */
  digest: Digest;
  /** The tag, normalised (`docker.io/library/app:latest`), when one was given. */
  reference?: string;
  /** The image config. */
  config: ImageConfig;
  /** Steps whose result came from the cache. */
  cachedSteps: number;
  /** Steps that ran (or, for config-only steps, were applied). */
  builtSteps: number;
}
