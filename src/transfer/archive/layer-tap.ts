/**
 * {@link LayerTap}: learns what a layer blob is (its compression, diffID and
 * uncompressed size, and optionally whether it is a well-formed tar) from the
 * chunks flowing past on their way into the store, so that the blob is read
 * once.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { InvalidArgumentError } from '../../errors.js';
import type { Digest } from '../../oci/index.js';
import { decompress, sniffCompression, type Compression } from './codec.js';
import { drained } from './util.js';
import { createExtract } from '../../layer/index.js';

/** What a {@link LayerTap} learnt about a layer. */
export interface LayerFacts {
  /** The blob's compression, from its magic bytes. */
  compression: Compression;
  /** The digest of the uncompressed tar; absent for an uncompressed blob when `hashUncompressed` is false. */
  diffId?: Digest;
  /** The length of the uncompressed tar, in bytes. */
  size: number;
  /** The number of tar entries, when the tar was validated. */
  entries?: number;
  /**
   * Why the blob could not be decompressed or parsed as a tar, with
   * {@link LayerTapOptions.keepReading}; `diffId` and `entries` are absent then.
   */
  failure?: unknown;
}

/** Options of {@link LayerTap}. */
export interface LayerTapOptions {
  /** Parse the uncompressed stream as a tar and fail on a malformed or truncated one. @default false */
  validateTar?: boolean;
  /** The operation, for error messages. */
  context: string;
  /**
   * Hash an uncompressed blob too. A caller that stores the blob gets its
   * digest, which is then the diffID, from the store, and can skip a second hash.
   * @default true
   */
  hashUncompressed?: boolean;
  /**
   * On a decompression or tar failure, pass the rest of the chunks on anyway
   * and report the failure in {@link LayerFacts.failure} instead of
   * throwing: for a caller that can still check the bytes against a digest,
   * since corrupt bytes usually break gunzip before the digest can tell.
   * @default false
   */
  keepReading?: boolean;
}

/**
 * Passes a layer blob's chunks through unchanged while computing its
 * {@link LayerFacts} on the side. A failure to decompress or to parse the tar
 * is thrown from the iteration, so the consumer (a blob write) fails too.
 *
 * @example
 * ```ts
 * const tap = new LayerTap({ context: 'import layer', validateTar: true });
 * const desc = await store.putBlob(tap.tap(createReadStream(path)));
 * const { diffId, compression } = tap.facts();
 * ```
 */
export class LayerTap {
  readonly #options: LayerTapOptions;
  #facts: LayerFacts | undefined;

  /** @param options what to check, and the operation for error messages. */
  constructor(options: LayerTapOptions) {
    this.#options = options;
  }

  /**
   * What was learnt; available once the iterable returned by {@link LayerTap.tap} has ended.
   *
   * @throws {InvalidArgumentError} when called before.
   */
  facts(): LayerFacts {
    if (this.#facts === undefined) throw new InvalidArgumentError(`${this.#options.context}: layer not read yet`);
    return this.#facts;
  }

  /** The chunks of `source`, unchanged; iterate it to the end. */
  async *tap(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    const { context, validateTar = false, hashUncompressed = true, keepReading = false } = this.#options;
    const sniffed = await sniffCompression(source);
    const { compression } = sniffed;
    const hash = createHash('sha256');
    let size = 0;
    const validator = validateTar ? new TarValidator(context) : undefined;
    let failure: unknown;

    if (compression === 'none') {
      for await (const chunk of sniffed.chunks) {
        if (hashUncompressed) hash.update(chunk);
        size += chunk.byteLength;
        if (validator !== undefined && failure === undefined) {
          try {
            await validator.write(chunk);
          } catch (err) {
            if (!keepReading) throw err;
            failure = err;
          }
        }
        yield chunk;
      }
    } else {
      // The decompressor pulls from an iterable; a PassThrough carries the chunks to it with backpressure.
      const channel = new PassThrough({ highWaterMark: 1 << 20 });
      const consumer = (async () => {
        try {
          for await (const chunk of decompress(channel, compression, context)) {
            hash.update(chunk);
            size += chunk.byteLength;
            if (validator !== undefined) await validator.write(chunk);
          }
        } catch (err) {
          failure ??= err;
          channel.destroy();
        }
      })();
      try {
        for await (const chunk of sniffed.chunks) {
          if (failure === undefined && !channel.write(chunk)) await drained(channel);
          if (failure !== undefined && !keepReading) break;
          yield chunk;
        }
        channel.end();
        await consumer;
        if (failure !== undefined && !keepReading) throw failure;
      } finally {
        if (!channel.writableFinished) channel.destroy();
        await consumer;
      }
    }
    let entries: number | undefined;
    if (failure === undefined && validator !== undefined) {
      try {
        entries = await validator.end();
      } catch (err) {
        if (!keepReading) throw err;
        failure = err;
      }
    }
    if (failure !== undefined) {
      this.#facts = { compression, size, failure };
      return;
    }
    this.#facts = {
      compression,
      ...(compression !== 'none' || hashUncompressed ? { diffId: `sha256:${hash.digest('hex')}` as Digest } : {}),
      size,
      ...(entries !== undefined ? { entries } : {}),
    };
  }
}

/**
 * Parses a stream as a tar, draining every entry, to refuse what is not one
 * (or is cut short) before it becomes an image.
 */
class TarValidator {
  readonly #extract = createExtract().extract;
  readonly #done: Promise<void>;
  readonly #context: string;
  #entries = 0;
  #error: Error | undefined;

  constructor(context: string) {
    this.#context = context;
    this.#done = new Promise<void>((resolve) => {
      this.#extract.on('entry', (_header, stream, next) => {
        this.#entries++;
        stream.on('error', () => {});
        stream.on('end', () => next());
        stream.resume();
      });
      this.#extract.on('error', (err: Error) => {
        this.#error ??= err;
        resolve();
      });
      this.#extract.on('finish', () => resolve());
      this.#extract.on('close', () => resolve());
    });
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.#check();
    if (!this.#extract.write(chunk)) await drained(this.#extract);
    this.#check();
  }

  async end(): Promise<number> {
    this.#check();
    this.#extract.end(null);
    await this.#done;
    this.#check();
    return this.#entries;
  }

  #check(): void {
    if (this.#error !== undefined) {
      throw new InvalidArgumentError(`${this.#context}: not a valid tar: ${this.#error.message.toLowerCase()}`, {
        cause: this.#error,
      });
    }
  }
}
