/**
 * A container's log: json-lines as Docker's `json-file` driver writes them
 * (`{"log":"hi\n","stream":"stdout","time":"2026-12-03T10:23:10.123456789Z"}`),
 * written by the helper's shim (native/logio.c) and rotated by size, and
 * read here from any process through the container's directory.
 *
 * @module
 */

import { open, readdir, readFile, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError } from '../errors.js';
import { throwIfAborted } from '../util/index.js';

/**
 * How a container's log is kept: rotated once the current file would pass
 * `maxSize`, at most `maxFiles` files (the current one included), so at most
 * `maxSize × maxFiles` bytes. The defaults are those of Docker's `local` driver.
 * A single line (at most 16 KiB of output, as Docker splits longer ones) always
 * goes whole into one file.
 */
export interface LogOptions {
  /** Bytes a log file may hold, 4096 or more. @default 20971520 (20 MiB) */
  maxSize?: number;
  /** How many files are kept, the current one included; 1 truncates instead of rotating. @default 5 */
  maxFiles?: number;
}

/** The log rotation when neither the spec nor the runtime sets one. */
export const DEFAULT_LOG_OPTIONS: Required<LogOptions> = { maxSize: 20 * 1024 * 1024, maxFiles: 5 };

/** @internal Checks a {@link LogOptions} and fills in its defaults. */
export function resolveLogOptions(options: LogOptions, context: string): Required<LogOptions> {
  const maxSize = options.maxSize ?? DEFAULT_LOG_OPTIONS.maxSize;
  const maxFiles = options.maxFiles ?? DEFAULT_LOG_OPTIONS.maxFiles;
  if (!Number.isSafeInteger(maxSize) || maxSize < 4096) {
    throw new InvalidArgumentError(`${context}: log.maxSize must be a whole number of bytes, 4096 or more`);
  }
  if (!Number.isSafeInteger(maxFiles) || maxFiles < 1 || maxFiles > 1000) {
    throw new InvalidArgumentError(`${context}: log.maxFiles must be a whole number from 1 to 1000`);
  }
  return { maxSize, maxFiles };
}

/** Options of {@link Container.logs}. */
export interface LogsOptions {
  /** Go on with new lines as they are written, until the container has exited. @default false */
  follow?: boolean;
  /** Only lines written at or after this time (a Date, an ISO string, or milliseconds since the epoch). */
  since?: Date | string | number;
  /** Only lines written before this time (same forms as `since`). */
  until?: Date | string | number;
  /** Only the last `tail` lines (of those the other filters keep), then, with `follow`, the new ones. @default all */
  tail?: number;
  /** Put the line's time (RFC 3339, nanoseconds) and a space before its text, as `docker logs -t`. @default false */
  timestamps?: boolean;
  /** Include stdout lines (with a TTY, all output is stdout). @default true */
  stdout?: boolean;
  /** Include stderr lines. @default true */
  stderr?: boolean;
  /**
   * With `follow`: give the start of a line as soon as the log has it (a
   * prompt waiting for input), its rest later as another line, as an attached
   * terminal shows it. Without it, lines are given whole.
   * @default false
   */
  partial?: boolean;
  /** Stops reading: the iteration throws {@link AbortError}. */
  signal?: AbortSignal;
}

/** One line of a container's log. */
export interface LogLine {
  /** The stream it was written on. */
  stream: 'stdout' | 'stderr';
  /** When the helper read it, RFC 3339 in UTC with nanoseconds. */
  time: string;
  /**
   * The line as written, with its newline (none for the last output without
   * one); with `timestamps`, `time` and a space before it. A line the log holds
   * in pieces (one longer than 16 KiB, or whose writer paused before its
   * newline, as a shell's prompt) is given whole, up to 1 MiB, but while
   * following with {@link LogsOptions.partial}.
   */
  text: string;
}

/** A container's log collected whole, by stream: what `container.logs().collect()` gives. */
export interface ContainerLogs {
  /** Everything the log holds of stdout. */
  stdout: Buffer;
  /** Everything the log holds of stderr. */
  stderr: Buffer;
}

/** @internal Where a log is and how to tell that nothing more will be written to it. */
export interface LogSource {
  /** The current log file; rotated files are `<path>.1` (newest) to `<path>.N`. */
  path: string;
  /** Resolves true once the container has exited and its log holds its last line. */
  ended: () => Promise<boolean>;
}

const FOLLOW_POLL_MS = 50;
/** A line held in pieces is given whole up to this many characters, in parts of this size beyond. */
const JOIN_MAX = 1 << 20;

interface RawRecord {
  log?: unknown;
  stream?: unknown;
  time?: unknown;
}

function timeOption(value: Date | string | number | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = value instanceof Date ? value.getTime() : typeof value === 'number' ? value : Date.parse(value);
  if (!Number.isFinite(ms)) throw new InvalidArgumentError(`logs: ${name} must be a Date, an ISO time or milliseconds since the epoch`);
  return ms;
}

/** Milliseconds of an RFC 3339 time with up to nanoseconds (Date.parse takes milliseconds only). */
function timeMs(time: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(time);
  if (m === null) return Date.parse(time);
  return Date.parse(`${m[1]}${(m[2] ?? '.000').slice(0, 4).padEnd(4, '0')}${m[3]}`);
}

interface Piece {
  stream: 'stdout' | 'stderr';
  time: string;
  log: string;
}

/**
 * Joins the pieces of a line: a record whose text has no newline is the start
 * of a line that goes on in the stream's next record (Docker json-file's
 * partial record).
 */
class LineJoiner {
  readonly #open: { stdout?: Piece; stderr?: Piece } = {};

  /** Adds the next record; the line it ends, if any, goes to `into`. */
  push(piece: Piece, into: Piece[]): void {
    const open = this.#open[piece.stream];
    const line = open !== undefined ? { ...open, log: open.log + piece.log } : piece;
    if (line.log.endsWith('\n') || line.log.length >= JOIN_MAX) {
      into.push(line);
      delete this.#open[piece.stream];
    } else {
      this.#open[piece.stream] = line;
    }
  }

  /** The lines begun and not ended, to `into`, in the order they began. */
  flush(into: Piece[]): void {
    const open = [this.#open.stdout, this.#open.stderr].filter((p): p is Piece => p !== undefined);
    for (const p of open.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0))) into.push(p);
    delete this.#open.stdout;
    delete this.#open.stderr;
  }
}

/**
 * The lines of a container's log, from {@link Container.logs}: iterate it with
 * `for await`, or collect it whole with {@link ContainerLogReader.collect}.
 * Each iteration reads the log afresh.
 */
export class ContainerLogReader implements AsyncIterable<LogLine> {
  readonly #source: LogSource;
  readonly #options: LogsOptions;
  readonly #since: number | undefined;
  readonly #until: number | undefined;
  readonly #start: number | undefined;

  /** @internal Use {@link Container.logs}; `start`: follow from this offset of the current file, nothing before. */
  constructor(source: LogSource, options: LogsOptions = {}, start?: number) {
    if (options.tail !== undefined && (!Number.isSafeInteger(options.tail) || options.tail < 0)) {
      throw new InvalidArgumentError('logs: tail must be a whole number, 0 or more');
    }
    this.#source = source;
    this.#options = options;
    this.#since = timeOption(options.since, 'since');
    this.#until = timeOption(options.until, 'until');
    this.#start = start;
  }

  /**
   * Everything the iteration gives, as the two streams' bytes (the shape
   * `logs()` had before it returned lines).
   *
   * @throws {@link AbortError} when `signal` aborts.
   */
  async collect(): Promise<ContainerLogs> {
    const out: string[] = [];
    const err: string[] = [];
    for await (const line of this) (line.stream === 'stdout' ? out : err).push(line.text);
    return { stdout: Buffer.from(out.join('')), stderr: Buffer.from(err.join('')) };
  }

  /** Reads the log: rotated files oldest first, then the current one, followed with `follow`. */
  async *[Symbol.asyncIterator](): AsyncIterator<LogLine> {
    const { signal } = this.#options;
    throwIfAborted(signal, 'logs');
    const current = await open(this.#source.path, 'r').catch(() => undefined);
    try {
      if (this.#start !== undefined) {
        yield* this.#follow(current, this.#start, '', new LineJoiner());
        return;
      }
      if (this.#options.tail !== undefined) {
        const offset = current !== undefined ? (await current.stat()).size : 0;
        for (const line of await this.#tail(current, offset, this.#options.tail)) yield line;
        if (this.#options.follow === true) yield* this.#follow(current, offset, '', new LineJoiner());
        return;
      }
      const lines: LogLine[] = [];
      const joiner = new LineJoiner();
      for (const file of await rotatedFiles(this.#source.path)) {
        const text = await readFile(file, 'utf8').catch(() => '');
        this.#parse(text, joiner, lines);
      }
      let offset = 0;
      let rest = '';
      if (current !== undefined) {
        const chunk = await readFrom(current, 0);
        offset = chunk.length;
        rest = this.#parseChunk(rest, chunk, joiner, lines);
      }
      if (this.#options.follow !== true || this.#options.partial === true) this.#finish(joiner, lines);
      for (const line of lines) yield line;
      if (this.#options.follow !== true) return;
      yield* this.#follow(current, offset, rest, joiner);
    } finally {
      await current?.close().catch(() => undefined);
    }
  }

  /** The last `want` lines, read backwards: the current file up to `end`, then the rotated ones, newest first. */
  async #tail(current: FileHandle | undefined, end: number, want: number): Promise<LogLine[]> {
    const found: LogLine[][] = [];
    let count = 0;
    const files = (await rotatedFiles(this.#source.path)).reverse();
    for (let i = -1; i < files.length && count < want; i++) {
      const handle = i < 0 ? current : await open(files[i]!, 'r').catch(() => undefined);
      if (handle === undefined) continue;
      try {
        const size = i < 0 ? end : (await handle.stat()).size;
        const lines = await this.#lastLines(handle, size, want - count);
        count += lines.length;
        found.unshift(lines);
      } finally {
        if (i >= 0) await handle.close();
      }
    }
    return found.flat();
  }

  async #lastLines(file: FileHandle, end: number, want: number): Promise<LogLine[]> {
    const out: LogLine[] = [];
    let carry = Buffer.alloc(0);
    let position = end;
    while (out.length < want && (position > 0 || carry.length > 0)) {
      const size = Math.min(position, 1 << 20);
      position -= size;
      const chunk = Buffer.allocUnsafe(size);
      if (size > 0) await file.read(chunk, 0, size, position);
      let data = Buffer.concat([chunk, carry]);
      // Before the first newline the line may begin in the chunk before; at the file's start it is whole.
      const first = position > 0 ? data.indexOf(10) : -1;
      carry = first >= 0 ? data.subarray(0, first) : Buffer.alloc(0);
      if (position > 0 && first < 0) {
        carry = data;
        continue;
      }
      data = data.subarray(first + 1);
      const parsed: LogLine[] = [];
      const joiner = new LineJoiner();
      this.#parse(data.toString('utf8'), joiner, parsed);
      this.#finish(joiner, parsed);
      for (let k = parsed.length - 1; k >= 0 && out.length < want; k--) out.push(parsed[k]!);
      if (position === 0) break;
    }
    return out.reverse();
  }

  async *#follow(first: FileHandle | undefined, offset: number, rest: string, joiner: LineJoiner): AsyncGenerator<LogLine> {
    const { signal, partial = false } = this.#options;
    let file = first;
    try {
      for (;;) {
        throwIfAborted(signal, 'logs');
        // Asked before reading, so that what is read after it is known complete.
        const ended = await this.#source.ended();
        let grew = false;
        if (file === undefined) {
          file = await open(this.#source.path, 'r').catch(() => undefined);
          offset = 0;
        }
        if (file !== undefined) {
          const size = (await file.stat()).size;
          if (size < offset) offset = 0; // truncated in place (maxFiles 1)
          const chunk = await readFrom(file, offset);
          if (chunk.length > 0) {
            grew = true;
            offset += chunk.length;
            const lines: LogLine[] = [];
            rest = this.#parseChunk(rest, chunk, joiner, lines);
            if (partial) this.#finish(joiner, lines);
            for (const line of lines) yield line;
          }
          // Rotated: the file read so far is finished; the new one starts at 0.
          const now = await stat(this.#source.path).catch(() => undefined);
          const mine = await file.stat();
          if (now !== undefined && (now.ino !== mine.ino || now.dev !== mine.dev)) {
            const chunk = await readFrom(file, offset);
            const lines: LogLine[] = [];
            this.#parseChunk(rest, chunk, joiner, lines);
            if (partial) this.#finish(joiner, lines);
            for (const line of lines) yield line;
            await file.close();
            file = await open(this.#source.path, 'r').catch(() => undefined);
            offset = 0;
            rest = '';
            continue;
          }
        }
        if (ended && !grew) {
          const lines: LogLine[] = [];
          this.#finish(joiner, lines);
          for (const line of lines) yield line;
          return;
        }
        if (!grew) await sleep(FOLLOW_POLL_MS, undefined, signal !== undefined ? { signal } : {}).catch(() => undefined);
      }
    } finally {
      if (file !== first) await file?.close().catch(() => undefined);
    }
  }

  #parseChunk(rest: string, chunk: Buffer, joiner: LineJoiner, into: LogLine[]): string {
    const text = rest + chunk.toString('utf8');
    const end = text.lastIndexOf('\n');
    if (end < 0) return text;
    this.#parse(text.slice(0, end + 1), joiner, into);
    return text.slice(end + 1);
  }

  /** The lines `joiner` holds begun, as they are, to `into`. */
  #finish(joiner: LineJoiner, into: LogLine[]): void {
    const pieces: Piece[] = [];
    joiner.flush(pieces);
    for (const piece of pieces) this.#emit(piece, into);
  }

  #emit(line: Piece, into: LogLine[]): void {
    if (this.#since !== undefined || this.#until !== undefined) {
      const ms = timeMs(line.time);
      if (this.#since !== undefined && ms < this.#since) return;
      if (this.#until !== undefined && ms >= this.#until) return;
    }
    into.push({ stream: line.stream, time: line.time, text: this.#options.timestamps === true ? `${line.time} ${line.log}` : line.log });
  }

  #parse(text: string, joiner: LineJoiner, into: LogLine[]): void {
    const { stdout = true, stderr = true } = this.#options;
    const lines: Piece[] = [];
    for (const raw of text.split('\n')) {
      if (raw === '') continue;
      let record: RawRecord;
      try {
        record = JSON.parse(raw) as RawRecord;
      } catch {
        continue;
      }
      if (typeof record.log !== 'string' || typeof record.time !== 'string') continue;
      const stream = record.stream === 'stderr' ? 'stderr' : 'stdout';
      if ((stream === 'stdout' && !stdout) || (stream === 'stderr' && !stderr)) continue;
      joiner.push({ stream, time: record.time, log: record.log }, lines);
    }
    for (const line of lines) this.#emit(line, into);
  }
}

/** `<path>.N` … `<path>.1`, oldest first. */
async function rotatedFiles(path: string): Promise<string[]> {
  const name = basename(path);
  const numbers: number[] = [];
  for (const entry of await readdir(dirname(path)).catch(() => [] as string[])) {
    const m = entry.startsWith(`${name}.`) ? /^\d+$/.exec(entry.slice(name.length + 1)) : null;
    if (m !== null) numbers.push(Number(m[0]));
  }
  return numbers.sort((a, b) => b - a).map((n) => join(dirname(path), `${name}.${n}`));
}

async function readFrom(file: FileHandle, offset: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (;;) {
    const buffer = Buffer.allocUnsafe(1 << 20);
    const { bytesRead } = await file.read(buffer, 0, buffer.length, offset);
    if (bytesRead === 0) break;
    chunks.push(buffer.subarray(0, bytesRead));
    offset += bytesRead;
  }
  return Buffer.concat(chunks);
}
