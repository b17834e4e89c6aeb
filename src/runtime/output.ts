import type { Readable } from 'node:stream';
import { InvalidArgumentError, OutputLimitError } from '../errors.js';

/** The default `maxBuffer` of `output()`: 10 MiB per stream. */
export const DEFAULT_MAX_BUFFER = 10 * 1024 * 1024;

/** Options of `runtime.output()` and `container.output()`. */
export interface OutputOptions {
  /**
   * The most bytes kept of each of stdout and stderr. A command that writes more
   * is killed (SIGKILL) and the call throws {@link OutputLimitError}.
   * @default 10485760 (10 MiB, {@link DEFAULT_MAX_BUFFER})
   */
  maxBuffer?: number;
  /** `'utf8'`: stdout and stderr as strings; `'buffer'`: as Buffers. @default 'utf8' */
  encoding?: 'utf8' | 'buffer';
  /** Kills the command (SIGKILL) and rejects with {@link AbortError}. */
  signal?: AbortSignal;
}

/** What `output()` resolves with: everything the command wrote, and how it ended. */
export interface OutputResult<T extends string | Buffer = string> {
  /** What the command wrote on stdout. */
  stdout: T;
  /** What the command wrote on stderr. */
  stderr: T;
  /** The exit code; 128 + the signal number for a command ended by a signal. */
  exitCode: number;
  /** The signal that ended the command, or null. */
  signal: NodeJS.Signals | null;
}

/** @internal Checks {@link OutputOptions} and returns the limit. */
export function maxBufferOf(options: OutputOptions, context: string): number {
  const max = options.maxBuffer ?? DEFAULT_MAX_BUFFER;
  if (typeof max !== 'number' || !(max >= 0) || (!Number.isSafeInteger(max) && max !== Infinity)) {
    throw new InvalidArgumentError(`${context}: maxBuffer must be a number of bytes, 0 or more`);
  }
  if (options.encoding !== undefined && options.encoding !== 'utf8' && options.encoding !== 'buffer') {
    throw new InvalidArgumentError(`${context}: encoding must be 'utf8' or 'buffer'`);
  }
  return max;
}

/**
 * @internal Reads stdout and stderr to their ends, each up to `max` bytes; past
 * that, calls `onLimit` once (which kills the command) and rejects with
 * {@link OutputLimitError}.
 */
export async function collectOutput(
  streams: { stdout: Readable | null; stderr: Readable | null },
  max: number,
  context: string,
  onLimit: () => void,
): Promise<{ stdout: Buffer; stderr: Buffer }> {
  let over: OutputLimitError | undefined;
  const read = async (stream: Readable | null, name: 'stdout' | 'stderr'): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    let size = 0;
    if (stream === null) return Buffer.alloc(0);
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        if (over !== undefined) break;
        size += chunk.length;
        if (size > max) {
          over = new OutputLimitError(`${context}: ${name} is over maxBuffer (${max} bytes)`, { stream: name, maxBuffer: max });
          onLimit();
          // A child the command left behind may hold the pipes open: stop reading now.
          streams.stdout?.destroy();
          streams.stderr?.destroy();
          break;
        }
        chunks.push(chunk);
      }
    } catch (error) {
      // The other stream's limit destroyed this one: the limit is the error to report.
      if (over === undefined) throw error;
    }
    return Buffer.concat(chunks);
  };
  const [stdout, stderr] = await Promise.all([read(streams.stdout, 'stdout'), read(streams.stderr, 'stderr')]);
  if (over !== undefined) throw over;
  return { stdout, stderr };
}

/** @internal The result in the requested encoding. */
export function encodeOutput(
  out: { stdout: Buffer; stderr: Buffer },
  exit: { exitCode: number; signal: NodeJS.Signals | null },
  encoding: 'utf8' | 'buffer' | undefined,
): OutputResult<string> | OutputResult<Buffer> {
  const { exitCode, signal } = exit;
  if (encoding === 'buffer') return { stdout: out.stdout, stderr: out.stderr, exitCode, signal };
  return { stdout: out.stdout.toString('utf8'), stderr: out.stderr.toString('utf8'), exitCode, signal };
}
