import { Readable, type Transform } from 'node:stream';
import type * as Fzstd from 'fzstd';
import { InvalidArgumentError } from '../errors.js';
import type { LayerCompression } from '../oci/index.js';
import { doneWithBuffer, lazyRequire, releaseBuffer } from '../util/index.js';

// Loaded at first use: a container run never inflates or deflates, and Node's zlib costs ~0.5 ms to load.
const zlib = lazyRequire<typeof import('node:zlib')>('node:zlib');
// Only zstd layers need it.
const fzstd = lazyRequire<typeof Fzstd>('fzstd');

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];
/** Bytes needed to tell the compressions apart. */
export const MAGIC_LENGTH = ZSTD_MAGIC.length;
/** Decompressed chunk size: large chunks mean fewer thread-pool round trips and stream events. */
const GUNZIP_CHUNK = 256 * 1024;

/**
 * The compression the first bytes of a stream announce; anything but the gzip
 * and zstd magic numbers (a zstd stream may open with a skippable frame) is `'none'`.
 *
 * @example
 * detectCompression(Buffer.from([0x1f, 0x8b, 8, 0])); // 'gzip'
 */
export function detectCompression(head: Uint8Array): LayerCompression {
  const starts = (magic: number[]): boolean => head.length >= magic.length && magic.every((b, i) => head[i] === b);
  if (starts(GZIP_MAGIC)) return 'gzip';
  // Skippable frames: magic 0x184d2a50–0x184d2a5f, little-endian.
  const zstdSkippable = head.length >= 4 && (head[0]! & 0xf0) === 0x50 && head[1] === 0x2a && head[2] === 0x4d && head[3] === 0x18;
  if (starts(ZSTD_MAGIC) || zstdSkippable) return 'zstd';
  return 'none';
}

/**
 * Reads the first bytes of `source` to detect its compression, and returns
 * the whole stream again (those bytes included).
 */
export async function sniffCompression(
  source: AsyncIterable<Uint8Array>,
): Promise<{ compression: LayerCompression; chunks: AsyncIterable<Uint8Array> }> {
  const iterator = source[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let length = 0;
  let ended = false;
  while (length < MAGIC_LENGTH) {
    const next = await iterator.next();
    if (next.done) {
      ended = true;
      break;
    }
    const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    head.push(chunk);
    length += chunk.byteLength;
  }
  const first = Buffer.concat(head);
  async function* chunks(): AsyncGenerator<Uint8Array> {
    try {
      if (first.byteLength > 0) yield first;
      if (ended) return;
      for (;;) {
        const next = await iterator.next();
        if (next.done) {
          ended = true;
          return;
        }
        yield next.value;
      }
    } finally {
      if (!ended) await iterator.return?.();
    }
  }
  return { compression: detectCompression(first), chunks: chunks() };
}

/** Options of {@link decompress}. */
export interface DecompressOptions {
  /**
   * The consumer is done with each chunk once it asks for the next one (it
   * copies what it keeps, and a chunk it was given to own may be moved
   * away): the decompressor's output buffers are then freed as soon as they
   * are consumed rather than at a later garbage collection, which keeps
   * resident memory flat. A consumer that keeps a view of a chunk must not set it.
   * @default false
   */
  consumed?: boolean;
}

/**
 * The decompressed form of a stream of chunks.
 *
 * @param context - the operation, for error messages.
 * @throws {@link InvalidArgumentError} (while iterating) when the data is not valid gzip or zstd.
 */
export function decompress(
  input: AsyncIterable<Uint8Array>,
  compression: LayerCompression,
  context: string,
  options: DecompressOptions = {},
): AsyncIterable<Uint8Array> {
  switch (compression) {
    case 'none':
      return input;
    case 'gzip':
      return gunzip(input, context, options.consumed === true);
    case 'zstd':
      return unzstd(input, context);
  }
}

async function* gunzip(input: AsyncIterable<Uint8Array>, context: string, consumed: boolean): AsyncGenerator<Uint8Array> {
  const inflater = zlib().createGunzip({ chunkSize: GUNZIP_CHUNK });
  void feed(input, inflater);
  const spent = new SpentBuffers();
  try {
    for await (const chunk of outputChunks(inflater)) {
      const buffer = spent.see(chunk);
      yield chunk;
      if (consumed && buffer !== undefined) releaseBuffer(buffer);
    }
  } catch (cause) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('Z_')) {
      throw new InvalidArgumentError(`${context}: corrupt gzip stream: ${(cause as Error).message}`, { cause });
    }
    throw cause;
  } finally {
    inflater.destroy();
    if (input instanceof Readable) input.destroy();
  }
}

/**
 * Writes `input` into `inflater` and ends it; a failure of `input` destroys
 * the inflater with it, so that it surfaces where the output is read. Each
 * input chunk is passed to {@link doneWithBuffer} once zlib consumed it:
 * the blob's bytes downloaded for both the store and the unpack are freed
 * then rather than at a later garbage collection.
 */
async function feed(input: AsyncIterable<Uint8Array>, inflater: Transform): Promise<void> {
  try {
    for await (const chunk of input) {
      if (inflater.destroyed) return;
      // Only on success: after a failure zlib's thread may still be reading the chunk.
      const more = inflater.write(chunk, (error) => {
        if (error == null) doneWithBuffer(chunk);
      });
      if (!more) await drained(inflater);
    }
    if (!inflater.destroyed) inflater.end();
  } catch (error) {
    inflater.destroy(error as Error);
  }
}

/**
 * The chunks `stream` pushes, each as it was pushed. A stream's own async
 * iterator reads whatever it has buffered at once, which joins two or more
 * chunks into a fresh copy whenever the reader is slower than zlib: a copy of
 * up to twice {@link GUNZIP_CHUNK} per read, and zlib's buffers behind it left
 * for a garbage collection instead of freed (see {@link SpentBuffers}). Here
 * the stream is paused at each chunk until the reader asks for the next one,
 * so at most one more output waits in the stream's buffer.
 */
async function* outputChunks(stream: Transform): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  let failure: Error | undefined;
  let ended = false;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };
  const onData = (chunk: Buffer): void => {
    queue.push(chunk);
    stream.pause();
    notify();
  };
  const onEnd = (): void => {
    ended = true;
    notify();
  };
  const onError = (error: Error): void => {
    failure ??= error;
    notify();
  };
  const onClose = (): void => {
    if (!ended) failure ??= Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
    notify();
  };
  stream.on('data', onData);
  stream.on('end', onEnd);
  stream.on('error', onError);
  stream.on('close', onClose);
  try {
    for (;;) {
      const chunk = queue.shift();
      if (chunk !== undefined) {
        yield chunk;
        continue;
      }
      if (failure !== undefined) throw failure;
      if (ended) return;
      const next = new Promise<void>((resolve) => {
        wake = resolve;
      });
      stream.resume();
      await next;
    }
  } finally {
    stream.off('data', onData);
    stream.off('end', onEnd);
    stream.off('error', onError);
    stream.off('close', onClose);
  }
}

/**
 * Tells which output buffers of a decompressor its consumer has seen all of:
 * zlib hands out slices of one buffer in order and starts a new buffer when
 * it is full, so a buffer seen from its first byte to its last in
 * consecutive chunks is no longer written to, and nobody but the consumer
 * holds it. (A chunk the stream joined from several is a fresh buffer of its
 * own, seen whole at once.)
 */
class SpentBuffers {
  #buffer: ArrayBufferLike | undefined;
  #seen = 0;

  /** Notes `chunk`, the next chunk; returns the buffer it completes, if any. */
  see(chunk: Uint8Array): ArrayBufferLike | undefined {
    if (chunk.byteOffset === 0) {
      this.#buffer = chunk.buffer;
      this.#seen = 0;
    } else if (chunk.buffer !== this.#buffer || chunk.byteOffset !== this.#seen) {
      this.#buffer = undefined;
      return undefined;
    }
    this.#seen += chunk.byteLength;
    const buffer = this.#buffer;
    if (buffer === undefined || this.#seen !== buffer.byteLength) return undefined;
    this.#buffer = undefined;
    // Node's shared allocation pool is cut into small buffers for everyone: a pool
    // the consumer saw all of in a row (only with Buffer.poolSize raised to a chunk's size) stays.
    return buffer.byteLength === Buffer.poolSize ? undefined : buffer;
  }
}

/** Resolves when `emitter` drains, errors or closes, whichever comes first (the caller checks why). */
export function drained(emitter: NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      emitter.off('drain', done);
      emitter.off('error', done);
      emitter.off('close', done);
      resolve();
    };
    emitter.on('drain', done);
    emitter.on('error', done);
    emitter.on('close', done);
  });
}

/**
 * Decompresses a zstd stream (Node 20's zlib has none). A corrupt stream is an
 * {@link InvalidArgumentError} whose message starts with `context`.
 */
export async function* unzstd(input: AsyncIterable<Uint8Array>, context: string): AsyncGenerator<Uint8Array> {
  const out: Uint8Array[] = [];
  const decoder = new (fzstd().Decompress)((data) => {
    if (data.byteLength > 0) out.push(data);
  });
  const push = (chunk: Uint8Array, final: boolean): void => {
    try {
      decoder.push(chunk, final);
    } catch (cause) {
      throw new InvalidArgumentError(`${context}: corrupt zstd stream: ${(cause as Error).message}`, { cause });
    }
  };
  for await (const chunk of input) {
    push(chunk, false);
    while (out.length > 0) yield out.shift()!;
  }
  push(new Uint8Array(0), true);
  while (out.length > 0) yield out.shift()!;
}
