/**
 * The restart policy and the healthcheck, as a spec gives them and as
 * `config.json` keeps them resolved (types only, so that the spec, the state
 * records and the code that acts on them do not import each other).
 *
 * @module
 */

/** A healthcheck with every default resolved (milliseconds), as `config.json` keeps it. */
export interface HealthPlan {
  /** The command to exec. */
  cmd: string[];
  interval: number;
  timeout: number;
  retries: number;
  startPeriod: number;
  startInterval: number;
}

/** A restart policy in the helper's terms. */
export interface RestartPlan {
  policy: 'no' | 'on-failure' | 'always' | 'unless-stopped';
  /** on-failure: the most restarts, 0 for no limit. */
  maxRetries: number;
}


/**
 * A container's healthcheck, as `docker run --health-*` gives it. Durations
 * are in milliseconds. Fields left out keep the image's `Healthcheck`, then
 * Docker's defaults.
 */
export interface HealthcheckSpec {
  /**
   * The check: a command run in the container that exits 0 when healthy.
   * A string runs through the image's shell (`CMD-SHELL`); an array is the
   * command itself, or Docker's form (`['CMD', …]`, `['CMD-SHELL', '…']`);
   * `'none'` (or `['NONE']`) disables the image's healthcheck.
   * @default the image's
   */
  test?: 'none' | string | readonly string[];
  /** Time between checks. @default 30000 */
  interval?: number;
  /** Time a check may take; past it, it is killed and counts as a failure. @default 30000 */
  timeout?: number;
  /** Consecutive failures that make the container `unhealthy`. @default 3 */
  retries?: number;
  /** Time after the start during which failures do not count. @default 0 */
  startPeriod?: number;
  /** Time between checks during the start period. @default 5000 */
  startInterval?: number;
}

/**
 * When the container's command is started again after it ends, as
 * `docker run --restart`:
 *
 * - `'no'`: never (the default).
 * - `'on-failure'`: when it exits non-zero; `{ policy: 'on-failure', maxRetries }`
 *   at most `maxRetries` times (0: no limit).
 * - `'always'`, `'unless-stopped'`: whatever the exit code.
 *
 * A restart waits 100 ms, doubled after each restart up to a minute, and back
 * to 100 ms once a run lasted 10 s (Docker's backoff). `stop()` and `kill()`
 * end the container for good: a signal sent to the container from outside
 * (any but SIGWINCH, SIGCONT, SIGURG) makes the command's next exit final. With
 * no daemon, `'always'` and `'unless-stopped'` behave alike: nothing restarts a
 * container after the host reboots. A restart policy needs dockless's init as
 * pid 1, so `init: false` is overridden. Each restart runs a fresh process
 * tree: what the command left running in the container is killed first.
 */
export type RestartPolicy =
  | 'no'
  | 'on-failure'
  | 'always'
  | 'unless-stopped'
  | {
      /** Restart on a non-zero exit only. */
      policy: 'on-failure';
      /** The most restarts; 0 for no limit. @default 0 */
      maxRetries?: number;
    };

