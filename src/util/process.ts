/**
 * Process identity: start times from `/proc`, liveness that a reused pid cannot
 * fool, and owner tokens that name a temporary file's or lock's creator.
 *
 * @module
 */

import { readFileSync } from 'node:fs';
import { isErrno } from './errno.js';
import { randomHex } from './random.js';

/**
 * The start time of a process (clock ticks since boot, field 22 of
 * `/proc/<pid>/stat`), or `undefined` when there is no such process.
 */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Field 3 (state) is fields[0]; a zombie has finished everything it will ever do.
    if (fields[0] === 'Z') return undefined;
    const start = Number(fields[19]);
    return Number.isFinite(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

let selfStart: number | undefined;

/** This process's start time, read once. */
export function selfStartTime(): number {
  selfStart ??= processStartTime(process.pid) ?? 0;
  return selfStart;
}

let procReadable: boolean | undefined;

/**
 * Whether process `pid` is alive and is the one that started at `start` (a
 * reused pid is not). Without a readable `/proc` (start times unknown) a
 * process counts as alive while its pid exists, so that locks are never
 * broken wrongly.
 */
export function isProcessAlive(pid: number, start: number): boolean {
  if (pid === process.pid) return start === selfStartTime();
  procReadable ??= processStartTime(process.pid) !== undefined;
  if (!procReadable) {
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      return isErrno(err, 'EPERM');
    }
  }
  const now = processStartTime(pid);
  return now !== undefined && now === start;
}

/**
 * A process, told from a later one that reuses its pid by its start time: the
 * creator of a temporary name (to judge whether it is abandoned), or the
 * process a `processBound` lease ends with.
 */
export interface Owner {
  /** The process id. */
  pid: number;
  /** The process's start time, in clock ticks since boot (field 22 of `/proc/<pid>/stat`). */
  start: number;
}

/**
 * A unique name part `<pid>-<start>-<random>` naming this process as the
 * creator; {@link parseOwnerToken} reads it back.
 */
export function ownerToken(): string {
  return ownerTokenOf(process.pid, selfStartTime());
}

/** {@link ownerToken} for another process: `pid`, which started at `start` (`/proc/PID/stat`'s field 22). */
export function ownerTokenOf(pid: number, start: number): string {
  return `${pid}-${start}-${randomHex(6)}`;
}

const OWNER_RE = /(\d+)-(\d+)-[0-9a-f]{12}$/;

/** `name` (made with {@link ownerToken}) with its owner replaced by `token`; unchanged when it has none. */
export function withOwnerToken(name: string, token: string): string {
  const m = OWNER_RE.exec(name);
  return m === null ? name : name.slice(0, m.index) + token;
}

/** The creator encoded at the end of a name made with {@link ownerToken}, or `undefined`. */
export function parseOwnerToken(name: string): Owner | undefined {
  const m = OWNER_RE.exec(name);
  if (m === null) return undefined;
  return { pid: Number(m[1]), start: Number(m[2]) };
}

/**
 * Whether a name made with {@link ownerToken} belongs to a process that no
 * longer exists. Names without an owner token count as abandoned.
 */
export function isAbandoned(name: string): boolean {
  const owner = parseOwnerToken(name);
  return owner === undefined || !isProcessAlive(owner.pid, owner.start);
}
