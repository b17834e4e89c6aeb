/**
 * Where a container's stdio goes: the log, the TTY, stdin kept open, the
 * attached caller's streams, decided from the spec and turned into the helper's
 * io options (native/PROTOCOL.md, "Logs, TTY and stdin").
 *
 * @module
 */

import { InvalidArgumentError } from '../errors.js';
import type { HelperStdio } from '../helper/index.js';
import { resolveLogOptions, type LogOptions } from './logs.js';
import type { ContainerSpec, StdioMode, TerminalSize } from './spec.js';
import type { ContainerPaths } from './state.js';

/** The terminal size a TTY starts with when the spec gives none (a VT100's). */
export const DEFAULT_TERMINAL_SIZE: TerminalSize = { columns: 80, rows: 24 };

/**
 * Bytes of output per stream the helper holds for an attached reader that does
 * not keep up, before it ends that reader's stream (the log keeps everything).
 */
export const DEFAULT_OUTPUT_BUFFER = 4 * 1024 * 1024;

/** What the helper's io loop does for one container; see native/logio.h. */
export interface IoPlan {
  log?: { path: string; maxSize: number; maxFiles: number };
  /** Relay output to the helper's own stdout/stderr (the attached caller). */
  live: boolean;
  /** Bytes held per live stream before it is ended; 0: the container waits for the reader. */
  liveBuffer: number;
  tty?: TerminalSize;
  /** Relay the helper's own stdin to the container. */
  stdinRelay: boolean;
  stdinFifo?: string;
  controlFifo?: string;
}

/** @internal The io plan and the helper's stdio for a launch; `io` undefined: stdio passed straight through, no log. */
export function planIo(
  spec: ContainerSpec,
  runtimeLog: LogOptions | false | undefined,
  paths: Pick<ContainerPaths, 'log' | 'stdinFifo' | 'control'>,
  context: string,
): { io: IoPlan | undefined; stdio: [HelperStdio, HelperStdio, HelperStdio] } {
  // A detached container has no streams unless its creator also attaches (`attach`).
  const detached = spec.detached === true && spec.attach !== true;
  const stdio: StdioMode = spec.stdio ?? 'pipe';
  const logSetting = spec.log ?? runtimeLog ?? {};
  const log = logSetting === false ? undefined : resolveLogOptions(logSetting, context);
  const tty = spec.tty === true ? checkSize(spec.ttySize ?? DEFAULT_TERMINAL_SIZE, `${context}: ttySize`) : undefined;
  const openStdin = spec.stdin === true;
  if (log === undefined && tty === undefined && !openStdin) {
    return { io: undefined, stdio: detached ? ['ignore', 'ignore', 'ignore'] : [stdio, stdio, stdio] };
  }
  const buffer = spec.outputBuffer ?? DEFAULT_OUTPUT_BUFFER;
  if (buffer !== 'block' && (!Number.isSafeInteger(buffer) || buffer < 1)) {
    throw new InvalidArgumentError(`${context}: outputBuffer must be a number of bytes, 1 or more, or 'block'`);
  }
  const attached = !detached && stdio !== 'ignore';
  return {
    io: {
      ...(log !== undefined ? { log: { path: paths.log, ...log } } : {}),
      live: attached,
      liveBuffer: buffer === 'block' ? 0 : buffer,
      ...(tty !== undefined ? { tty } : {}),
      stdinRelay: attached && (tty !== undefined || openStdin),
      ...(openStdin ? { stdinFifo: paths.stdinFifo } : {}),
      ...(tty !== undefined ? { controlFifo: paths.control } : {}),
    },
    stdio: detached ? ['ignore', 'ignore', 'ignore'] : [stdio, stdio, stdio],
  };
}

/** @internal Checks a terminal size (1 to 65535 each way). */
export function checkSize(size: TerminalSize, context: string): TerminalSize {
  const ok = (n: unknown) => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 0xffff;
  if (typeof size !== 'object' || size === null || !ok(size.columns) || !ok(size.rows)) {
    throw new InvalidArgumentError(`${context}: columns and rows must be whole numbers from 1 to 65535`);
  }
  return { columns: size.columns, rows: size.rows };
}

/** Encodes an {@link IoPlan} as the helper's io options. */
export function ioArgs(plan: IoPlan | undefined): string[] {
  if (plan === undefined) return [];
  const args: string[] = [];
  if (plan.log !== undefined) {
    args.push('--log', plan.log.path, '--log-max-size', String(plan.log.maxSize), '--log-max-files', String(plan.log.maxFiles));
  }
  if (plan.live) args.push('--live', '--live-buffer', String(plan.liveBuffer));
  if (plan.tty !== undefined) args.push('--tty', '--tty-size', String(plan.tty.rows), String(plan.tty.columns));
  if (plan.stdinRelay) args.push('--stdin');
  if (plan.stdinFifo !== undefined) args.push('--stdin-fifo', plan.stdinFifo);
  if (plan.controlFifo !== undefined) args.push('--control-fifo', plan.controlFifo);
  return args;
}

/** The 8-byte control record that resizes a TTY: kind 1, rows, columns, little-endian. */
export function resizeRecord(size: TerminalSize): Buffer {
  const record = Buffer.alloc(8);
  record.writeUInt32LE(1, 0);
  record.writeUInt16LE(size.rows, 4);
  record.writeUInt16LE(size.columns, 6);
  return record;
}
