/**
 * The types a {@link Container}'s methods take and return.
 *
 * @module
 */

import type { ExecOptions } from './exec.js';
import type { HealthStatus } from './health.js';
import type { OutputOptions } from './output.js';
import type { PublishedPort } from './ports.js';
import type { IdMap } from './userns.js';

/** Options of {@link Container.output}: those of {@link Container.exec} but `stdio` and `detached`, and of the output. */
export type ExecOutputOptions = Omit<ExecOptions, 'stdio' | 'detached'> & OutputOptions;

/**
 * The status of a container, an explicit state machine:
 * `created` → `running` ⇄ `paused`, then `stopped` → `removed`. An operation not
 * allowed in the current status throws {@link InvalidStateError}. `paused` is read
 * live from the container's freezer cgroup, so every process sees it.
 */
export type ContainerStatus = 'created' | 'running' | 'paused' | 'stopped' | 'removed';

/** How a container's command ended. */
export interface ExitStatus {
  /**
   * The exit code; for a command ended by a signal, 128 + the signal number, as
   * Docker reports it (137 for SIGKILL).
   */
  exitCode: number;
  /** The signal that ended the command, or null when it exited by itself. */
  signal: NodeJS.Signals | null;
  /**
   * Whether the kernel's OOM killer killed a process of the container (read from
   * its memory cgroup; as Docker reports it, also when the victim was not the command).
   */
  oomKilled: boolean;
}

/** A summary of one container, as `runtime.list()` returns it. */
export interface ContainerInfo {
  /** The container's id. */
  id: string;
  /** Its name, when it was given one. */
  name?: string;
  /** Its status when listed. */
  status: Exclude<ContainerStatus, 'removed'>;
  /** Host pid of the container's pid 1 while it exists. */
  pid: number;
  /** When it was created. */
  created: Date;
  /** Whether it outlives the process that created it. */
  detached: boolean;
  /** Its command. */
  cmd: string[];
  /** The rootfs directory it runs on. */
  rootfs: string;
  /** The image it was made from, when it was. */
  image?: string;
  /** How it ended, once stopped. */
  exit?: ExitStatus;
  /** The id of the pod (`Namespace`) it is in, when it is in one. */
  namespace?: string;
  /** How many times its restart policy started its command again. */
  restartCount: number;
  /** Its labels: the image's, then the spec's. */
  labels: Record<string, string>;
  /** Its published ports as bound (what `docker ps` shows), when it publishes any. */
  ports?: PublishedPort[];
  /**
   * Its health as last recorded, while it runs and has a healthcheck (what
   * `docker ps` shows beside `Up`). Read from the state directory, no check is
   * run: {@link Container.inspect} runs one that is overdue.
   */
  health?: HealthStatus;
  /** It is to be removed once it exits (its spec's `autoRemove`). */
  autoRemove?: boolean;
  /**
   * Its user namespace, when it has one. `rootless`: its upper directory holds
   * host ids (those of the maps), not the container's own.
   */
  userns?: {
    /** Container uids to host uids. */
    uidMap: IdMap[];
    /** Container gids to host gids. */
    gidMap: IdMap[];
    /** Made by a caller that is not root. */
    rootless: boolean;
  };
}

/** Options of {@link Container.remove}. */
export interface RemoveOptions {
  /** Kill a running or paused container first instead of throwing. @default false */
  force?: boolean;
}

/** Options of {@link Container.wait}. */
export interface WaitOptions {
  /**
   * Stops waiting (the promise rejects with {@link AbortError}); the container
   * goes on running.
   */
  signal?: AbortSignal;
}

/** Options of {@link Container.stop}. Durations are in milliseconds, as everywhere in dockless. */
export interface StopOptions {
  /** Milliseconds to wait after SIGTERM before SIGKILL. @default 10000 */
  timeoutMs?: number;
  /**
   * Stops waiting (the promise rejects with {@link AbortError}); the SIGTERM
   * already sent is not undone, and no SIGKILL follows.
   */
  signal?: AbortSignal;
}

/** Options of {@link Container.restart}. */
export interface RestartOptions {
  /** Milliseconds to wait after the stop signal before SIGKILL, when it runs. @default the container's stop timeout, else 10000 */
  timeoutMs?: number;
  /** Stops waiting for the stop (the promise rejects with {@link AbortError}); the container is then not started again. */
  signal?: AbortSignal;
}

export type { ContainerLogs } from './logs.js';

/** Options of {@link Container.waitHealthy}. */
export interface WaitHealthyOptions {
  /** Milliseconds to wait before giving up with an {@link UnhealthyError} (`reason: 'timeout'`). @default no limit */
  timeout?: number;
  /** Stops waiting (the promise rejects with {@link AbortError}). */
  signal?: AbortSignal;
}
