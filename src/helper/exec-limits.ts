/**
 * What `execve(2)` accepts, so that an argument list the kernel would refuse
 * (`E2BIG`) is refused first with a typed error naming the field, and so that
 * no string with a NUL byte reaches an argv (Node throws a bare `TypeError`).
 *
 * @module
 */

import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../errors.js';

/** `MAX_ARG_STRLEN`: the most bytes one argv or envp string may take, its NUL included (32 pages). */
export const MAX_ARG_STRLEN = 131072;
/** `ARG_MAX` as the kernel defines it: the floor of the argv+envp limit, whatever the stack limit (32 pages). */
export const ARG_MAX_FLOOR = 131072;
/** `_STK_LIM / 4 * 3`: the ceiling of the argv+envp limit, whatever the stack limit. */
export const ARG_MAX_CEILING = (8 * 1024 * 1024 / 4) * 3;
/** `HOST_NAME_MAX`: the longest hostname `sethostname(2)` takes. */
export const HOST_NAME_MAX = 64;
/** `PATH_MAX`, the NUL included. */
export const PATH_MAX = 4096;

const POINTER_SIZE = 8;
const SHOWN = 64;

/**
 * A value as error messages show it: at most 64 characters, and when cut,
 * its length, so that a megabyte-long field is never echoed back whole.
 */
export function shown(value: string): string {
  const printable = value.replace(/[\0-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  if (printable.length <= SHOWN) return `\`${printable}\``;
  return `\`${printable.slice(0, SHOWN)}…\` (${Buffer.byteLength(value)} bytes)`;
}

/**
 * The argv+envp limit of an `execve` by a process whose soft stack limit is
 * `stackSoft` bytes (`Infinity` for unlimited): a quarter of it, at least
 * 128 KiB and at most 6 MiB (fs/exec.c, `bprm_stack_limits`).
 */
export function execArgLimit(stackSoft: number): number {
  return Math.max(ARG_MAX_FLOOR, Math.min(ARG_MAX_CEILING, Math.floor(stackSoft / 4)));
}

let ownStack: number | undefined;

/**
 * This process's soft stack limit in bytes (`Infinity` for unlimited), read
 * from `/proc/self/limits` (Node has no `getrlimit`); children inherit it.
 * 8 MiB, the usual default, when it cannot be read.
 */
export function ownStackLimit(): number {
  if (ownStack !== undefined) return ownStack;
  ownStack = 8 * 1024 * 1024;
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max stack size'));
    const soft = line?.slice('Max stack size'.length).trim().split(/\s+/)[0];
    if (soft === 'unlimited') ownStack = Infinity;
    else if (soft !== undefined && /^\d+$/.test(soft)) ownStack = Number(soft);
  } catch {
    /* not Linux procfs: keep the default */
  }
  return ownStack;
}

/** One string that will be part of an `execve`'s argv or envp, and what to call it in a message. */
export interface ExecString {
  /** What the string is, e.g. `cmd[2]` or ``env `PATH` ``. */
  field: string;
  /** The string itself. */
  value: string;
}

/**
 * Refuses a string that cannot be part of an argv: one with a NUL byte, or
 * longer than `MAX_ARG_STRLEN`.
 *
 * @throws {@link InvalidArgumentError} naming `field`.
 */
export function checkExecString(context: string, field: string, value: string): void {
  if (value.includes('\0')) {
    throw new InvalidArgumentError(`${context}: ${field} contains a NUL byte: ${shown(value)}`);
  }
  const bytes = Buffer.byteLength(value) + 1;
  if (bytes > MAX_ARG_STRLEN) {
    throw new InvalidArgumentError(
      `${context}: ${field} is ${bytes} bytes with its NUL, above execve's limit of ${MAX_ARG_STRLEN} bytes for one string (MAX_ARG_STRLEN): ${shown(value)}`,
    );
  }
}

/**
 * The bytes an `execve` of `strings` (argv and envp together) takes against
 * {@link execArgLimit}: each string with its NUL, plus one pointer each.
 */
export function execArgBytes(strings: readonly string[]): number {
  let total = 0;
  for (const s of strings) total += Buffer.byteLength(s) + 1 + POINTER_SIZE;
  return total;
}

/**
 * Refuses an argv+envp that `execve` would refuse with `E2BIG` for a process
 * whose soft stack limit is `stackSoft`: each string is checked with
 * {@link checkExecString}, then the total against {@link execArgLimit}.
 * `reserve` counts bytes the kernel copies besides them (the file name).
 *
 * @throws {@link InvalidArgumentError} giving the size, the limit and the field(s).
 */
export function checkExecSize(
  context: string,
  groups: readonly { field: string; strings: readonly ExecString[] }[],
  stackSoft: number,
  reserve = 0,
): void {
  for (const group of groups) for (const s of group.strings) checkExecString(context, s.field, s.value);
  const sizes = groups.map((g) => ({ field: g.field, bytes: execArgBytes(g.strings.map((s) => s.value)) }));
  const total = sizes.reduce((sum, g) => sum + g.bytes, reserve);
  const limit = execArgLimit(stackSoft);
  if (total > limit) {
    const parts = sizes.map((g) => `${g.field} ${g.bytes}`).join(', ');
    const stack = stackSoft === Infinity ? 'unlimited' : `${stackSoft} bytes`;
    throw new InvalidArgumentError(
      `${context}: ${sizes.map((g) => g.field).join(' and ')} take ${total} bytes (${parts}, strings with their NUL and pointers), above execve's limit of ${limit} bytes (a quarter of the stack limit, ${stack}, within 128 KiB and 6 MiB)`,
    );
  }
}
