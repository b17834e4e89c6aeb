/**
 * Compression of archives and layer blobs: sniffing it from the magic
 * bytes, and decompressing a stream of chunks.
 *
 * @module
 */

import { Readable, pipeline } from 'node:stream';
import zlib from 'node:zlib';
import { unzstd } from '../../layer/streams.js';
import { InvalidArgumentError } from '../../errors.js';

/** How a tar (an archive, or a layer blob) is compressed. */
export type Compression = 'gzip' | 'zstd' | 'none';

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];
/** Bytes needed to tell the compressions apart. */
export const MAGIC_LENGTH = ZSTD_MAGIC.length;
const GUNZIP_CHUNK = 256 * 1024;

/**
 * The compression the first bytes of a stream announce; anything but the
 * gzip and zstd magic numbers is `'none'`.
 *
 * @example
 * detectCompression(Buffer.from([0x1f, 0x8b, 8, 0])); // 'gzip'
 */
export function detectCompression(head: Uint8Array): Compression {
  const starts = (magic: number[]): boolean => head.length >= magic.length && magic.every((b, i) => head[i] === b);
  if (starts(GZIP_MAGIC)) return 'gzip';
  if (starts(ZSTD_MAGIC)) return 'zstd';
  return 'none';
}

/**
 * Reads the first bytes of `source` to detect its compression, and returns
 * the whole stream again (those bytes included).
 */
export async function sniffCompression(
  source: AsyncIterable<Uint8Array>,
): Promise<{ compression: Compression; chunks: AsyncIterable<Uint8Array> }> {
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
    head.push(next.value);
    length += next.value.byteLength;
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
 * @param context the operation, for error messages.
 * @throws {InvalidArgumentError} (while iterating) when the data is not valid gzip or zstd.
 */
export function decompress(
  input: AsyncIterable<Uint8Array>,
  compression: Compression,
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
  const inflater = zlib.createGunzip({ chunkSize: GUNZIP_CHUNK });
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

