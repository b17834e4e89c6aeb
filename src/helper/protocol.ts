/**
 * The TypeScript side of the helper protocol (native/PROTOCOL.md): op names and
 * the status lines the helper writes. A unit test checks these against the C
 * sources so the two sides cannot drift.
 *
 * @module
 */

import { InvalidArgumentError } from '../errors.js';

/** The helper's subcommands. Mirrors the dispatch table in native/main.c. */
export const HELPER_OPS = ['run', 'exec', 'meta', 'apply', 'xattrs', 'rm', 'userns-exec', 'syncfs', 'version', 'seal', 'pause', 'net', 'forward', 'fork-server'] as const;

/** One helper subcommand. */
export type HelperOp = (typeof HELPER_OPS)[number];

/** The protocol version the helper's `version` op prints. */
export const HELPER_PROTOCOL_VERSION = 1;

/**
 * The one option on the helper's command line (besides the op) for every op but
 * `version`: `--config-fd N`, the descriptor its arguments arrive on, so that
 * env values and host paths never appear in `/proc/<pid>/cmdline`.
 */
export const CONFIG_FD_OPTION = '--config-fd';

/**
 * Encodes an op's arguments as the helper reads them from `--config-fd`: each
 * argument followed by a NUL byte; after `reserve` bytes left for the caller to
 * fill (a frame's header, so that the ~20 KB of a run's arguments are not copied again into one).
 *
 * @throws {@link InvalidArgumentError} for an argument that holds a NUL byte (it would split into two).
 */
export function encodeConfig(args: readonly string[], reserve = 0): Buffer {
  const bad = args.findIndex((a) => a.includes('\0'));
  if (bad >= 0) throw new InvalidArgumentError(`helper argument ${bad} (\`${args[bad - 1] ?? ''}\` …) contains a NUL byte`);
  if (args.length === 0) return Buffer.alloc(reserve);
  // One join and one copy: a run's ~20 KB of arguments as a string per argument, then joined, was garbage for every launch.
  const text = args.join('\0');
  const size = Buffer.byteLength(text);
  const encoded = Buffer.allocUnsafe(reserve + size + 1);
  encoded.write(text, reserve, size, 'utf8');
  encoded[reserve + size] = 0;
  return encoded;
}

/** Exit code of a helper that failed a step (after an `error` status line). */
export const HELPER_EXIT_FAILED = 1;
/** Exit code of a helper that was called with bad arguments. */
export const HELPER_EXIT_USAGE = 2;

/**
 * The `step` of an `error` line for a mount the helper refused because its
 * target holds a symlink (a `--mount-nofollow`, `--mask` or `--readonly` path).
 * Mirrors `DL_STEP_MOUNT_TARGET` in native/mounts.h.
 */
export const HELPER_STEP_MOUNT_TARGET = 'mount target';

/** `pid`: the host pid of the container's pid 1. */
export interface PidStatus {
  type: 'pid';
  pid: number;
  /** Its start time (`/proc/PID/stat` field 22), when the shim read it (`run` with `--record`). */
  start?: number;
}
/** `created`: setup is complete. */
export interface CreatedStatus {
  type: 'created';
}
/** `hooks` (run with `--hooks-fd`): pid 1 is at the createRuntime/createContainer point and waits for the state on that fd. */
export interface HooksStatus {
  type: 'hooks';
}
/** `started`: the workload is being executed. */
export interface StartedStatus {
  type: 'started';
}
/** `exited`: the workload's exit status. */
export interface ExitedStatus {
  type: 'exited';
  code: number;
  signal?: number;
  oom?: boolean;
}
/** `cgroups-removed` (run with `--cgroup-rmdir-at-exit`): after `exited`, the shim removed the container's cgroups. */
export interface CgroupsRemovedStatus {
  type: 'cgroups-removed';
}
/**
 * `teardown` (run): after `exited`, the process that drops pid 1's mount
 * namespace (the unmounts); the shim touches nothing of the container's after
 * this line. Forked by the fork server, that is the shim itself, which the
 * server reaps; spawned, a child of the shim's, which the shim waits for before
 * it exits.
 */
export interface TeardownStatus {
  type: 'teardown';
  pid: number;
  /** Its start time (`/proc/PID/stat` field 22). */
  start: number;
}
/** `error`: a step failed. */
export interface ErrorStatus {
  type: 'error';
  step: string;
  path?: string;
  errno: number;
  code: string;
  message: string;
}
/** `done`: a non-run op finished. */
export interface DoneStatus {
  type: 'done';
}

/** `netns` (run with `--report-netns`): paths through which the container's namespaces can be opened while the shim lives. */
export interface NetnsStatus {
  type: 'netns';
  net: string;
  user?: string;
}
/** `port` (forward): one host socket bound. */
export interface PortStatus {
  type: 'port';
  protocol: 'tcp' | 'udp';
  hostIp: string;
  host: number;
  container: number;
}
/** `bound` (forward): every host socket is bound. */
export interface BoundStatus {
  type: 'bound';
}
/** `ready` (forward): in the container's namespaces, serving. */
export interface ReadyStatus {
  type: 'ready';
}

/** Any status line. */
export type HelperStatus =
  | PidStatus
  | CreatedStatus
  | HooksStatus
  | StartedStatus
  | ExitedStatus
  | CgroupsRemovedStatus
  | TeardownStatus
  | ErrorStatus
  | DoneStatus
  | NetnsStatus
  | PortStatus
  | BoundStatus
  | ReadyStatus;

/** Parses one status line; returns undefined for a line that is not a status object. */
export function parseStatusLine(line: string): HelperStatus | undefined {
  if (line.length === 0) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string') return undefined;
  return value as HelperStatus;
}

/** Splits a stream of bytes into status lines, keeping the partial tail between chunks. */
export class StatusLineDecoder {
  #tail = '';

  /** Feeds one chunk; returns the complete status objects it finished. */
  push(chunk: Buffer | string): HelperStatus[] {
    const text = this.#tail + chunk.toString();
    const lines = text.split('\n');
    this.#tail = lines.pop() ?? '';
    const out: HelperStatus[] = [];
    for (const line of lines) {
      const status = parseStatusLine(line);
      if (status !== undefined) out.push(status);
    }
    return out;
  }
}
