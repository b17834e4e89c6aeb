/**
 * The TypeScript side of the helper protocol (native/PROTOCOL.md): op names and
 * the status lines the helper writes. A unit test checks these against the C
 * sources so the two sides cannot drift.
 *
 * @module
 */

/** The helper's subcommands. Mirrors the dispatch table in native/main.c. */
export const HELPER_OPS = ['run', 'meta', 'xattrs', 'rm', 'syncfs', 'version'] as const;

/** One helper subcommand. */
export type HelperOp = (typeof HELPER_OPS)[number];

/** The protocol version the helper's `version` op prints. */
export const HELPER_PROTOCOL_VERSION = 1;

/** Exit code of a helper that failed a step (after an `error` status line). */
export const HELPER_EXIT_FAILED = 1;
/** Exit code of a helper that was called with bad arguments. */
export const HELPER_EXIT_USAGE = 2;

/** `pid`: the host pid of the container's pid 1. */
export interface PidStatus {
  type: 'pid';
  pid: number;
}
/** `created`: setup is complete. */
export interface CreatedStatus {
  type: 'created';
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

/** Any status line. */
export type HelperStatus = PidStatus | CreatedStatus | StartedStatus | ExitedStatus | ErrorStatus | DoneStatus;

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
