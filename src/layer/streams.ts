import { Readable, pipeline } from 'node:stream';
import type * as Fzstd from 'fzstd';
import { InvalidArgumentError } from '../errors.js';
import type { LayerCompression } from '../oci/index.js';
import { lazyRequire } from '../util/index.js';

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
): AsyncIterable<Uint8Array> {
  switch (compression) {
    case 'none':
      return input;
    case 'gzip':
      return gunzip(input, context);
    case 'zstd':
      return unzstd(input, context);
  }
}

async function* gunzip(input: AsyncIterable<Uint8Array>, context: string): AsyncGenerator<Uint8Array> {
  const inflater = zlib().createGunzip({ chunkSize: GUNZIP_CHUNK });
  const readable = input instanceof Readable ? input : Readable.from(input, { objectMode: false });
  pipeline(readable, inflater, () => {
    // Errors surface through the iteration of the inflater.
  });
  try {
    for await (const chunk of inflater) yield chunk as Buffer;
  } catch (cause) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('Z_')) {
      throw new InvalidArgumentError(`${context}: corrupt gzip stream: ${(cause as Error).message}`, { cause });
    }
    throw cause;
  } finally {
    inflater.destroy();
    readable.destroy();
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
