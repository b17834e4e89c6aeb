/**
 * Content-addressed blobs: writing them through an ingest file while their
 * digest is computed, and reading them back through a stream that verifies
 * the digest at EOF.
 *
 * @module
 */

import { createHash, type Hash } from 'node:crypto';
import { type FileHandle, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, pipeline, type Transform, type TransformCallback } from 'node:stream';
import { AbortError, DigestMismatchError, NotFoundError } from '../errors.js';
import { type Digest, digestAlgorithm, type DigestAlgorithm, parseDigest, shortDigest } from '../oci/index.js';
import { doneWithBuffer, fsyncDir, isErrno, lazyRequire, ownerToken, touch } from '../util/index.js';
import type { StorePaths } from './paths.js';

/**
 * What a blob can be written from: a stream or async iterable of bytes, or the
 * bytes themselves (a string is taken as its UTF-8 encoding).
 */
export type BlobSource = Readable | AsyncIterable<Uint8Array> | Uint8Array | string;

/** What the caller says a blob should be; every given field is checked. */
export interface ExpectedBlob {
  /** The digest the content must have; its algorithm is the one computed. @default computed sha256 */
  digest?: string | undefined;
  /** The length the content must have, in bytes. */
  size?: number | undefined;
}

/** A blob written to the ingest area, verified and fsynced, not yet visible. */
export interface IngestedBlob {
  digest: Digest;
  size: number;
  /** The ingest file, or `undefined` when the blob already existed and nothing was written. */
  tmp: string | undefined;
  /** The content, when it was given as bytes (to rewrite it should the existing blob vanish). */
  bytes?: Uint8Array;
}

/**
 * Writes `source` to a new ingest file while hashing it, then checks it
 * against `expected` and fsyncs it. On any failure the ingest file is removed.
 *
 * @throws {DigestMismatchError} when the digest or size differs from `expected`.
 * @throws {AbortError} when `signal` aborts.
 */
export async function ingestBlob(
  paths: StorePaths,
  source: BlobSource,
  expected: ExpectedBlob,
  signal?: AbortSignal,
): Promise<IngestedBlob> {
  const expectedDigest = expected.digest === undefined ? undefined : parseDigest(expected.digest);
  const algorithm: DigestAlgorithm = expectedDigest === undefined ? 'sha256' : digestAlgorithm(expectedDigest);
  const label = expectedDigest === undefined ? 'blob' : `blob ${shortDigest(expectedDigest)}`;
  if (signal?.aborted) throw new AbortError(`write ${label}: aborted`, { cause: signal.reason });

  if (typeof source === 'string' || source instanceof Uint8Array) {
    const bytes = typeof source === 'string' ? Buffer.from(source, 'utf8') : source;
    const digest = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}` as Digest;
    checkExpected(label, expectedDigest, expected.size, digest, bytes.length);
    if (await exists(paths.blob(digest))) return { digest, size: bytes.length, tmp: undefined, bytes };
    return { digest, size: bytes.length, tmp: await writeIngest(paths, bytes), bytes };
  }

  const tmp = join(paths.ingest, ownerToken());
  const handle = await open(tmp, 'wx', 0o644);
  const hash = createHash(algorithm);
  const out = new GatheredWrites(handle, expected.size);
  let size = 0;
  try {
    try {
      for await (const chunk of source as AsyncIterable<Uint8Array | string>) {
        if (signal?.aborted) throw new AbortError(`write ${label}: aborted`, { cause: signal.reason });
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        size += bytes.length;
        if (expected.size !== undefined && size > expected.size) {
          throw sizeMismatch(label, expectedDigest, expected.size, `more than ${expected.size}`);
        }
        hash.update(bytes);
        await out.write(bytes);
        // Copied into the gathered writes: a chunk shared with the unpack may be freed now (see shareBuffer).
        doneWithBuffer(bytes);
      }
      await out.end();
      const digest = `${algorithm}:${hash.digest('hex')}` as Digest;
      checkExpected(label, expectedDigest, expected.size, digest, size);
      await handle.sync();
      await handle.close();
      return { digest, size, tmp };
    } finally {
      // A write still in flight must finish before its file is closed and unlinked.
      await out.settled();
      await handle.close().catch(() => {});
    }
  } catch (err) {
    await unlink(tmp).catch(() => {});
    if (source instanceof Readable && !source.destroyed) source.destroy();
    throw err;
  }
}

/**
 * Bytes of a streamed blob gathered into one write(2): network chunks are 16 to
 * 64 KiB, and a write each costs a thread-pool round trip (and a wakeup) that
 * the unpack running beside it, on a shared core, pays for.
 */
const WRITE_GATHER = 256 << 10;

/**
 * Sequential writes to a file, gathered into two alternating buffers: one
 * fills while the other is written, so the caller waits only when both are
 * full.
 */
class GatheredWrites {
  readonly #handle: FileHandle;
  readonly #buffers: Buffer[];
  #current = 0;
  #used = 0;
  #inFlight: Promise<void> | undefined;

  /** `size`: the blob's expected length, when known (a small blob gets small buffers). */
  constructor(handle: FileHandle, size: number | undefined) {
    this.#handle = handle;
    const length = Math.max(1, Math.min(WRITE_GATHER, size ?? WRITE_GATHER));
    this.#buffers = [Buffer.allocUnsafeSlow(length), Buffer.allocUnsafeSlow(length)];
  }

  async write(bytes: Uint8Array): Promise<void> {
    for (let at = 0; at < bytes.byteLength; ) {
      const buffer = this.#buffers[this.#current]!;
      const n = Math.min(bytes.byteLength - at, buffer.length - this.#used);
      buffer.set(bytes.subarray(at, at + n), this.#used);
      this.#used += n;
      at += n;
      if (this.#used === buffer.length) await this.#flush();
    }
  }

  /** Writes what is gathered and waits until everything is written. */
  async end(): Promise<void> {
    await this.#flush();
    await this.#inFlight;
  }

  /** Waits for a write in flight, whatever its outcome (for cleanup after a failure). */
  async settled(): Promise<void> {
    await this.#inFlight?.catch(() => {});
  }

  async #flush(): Promise<void> {
    // The other buffer is free again once its write is done.
    await this.#inFlight;
    this.#inFlight = undefined;
    if (this.#used === 0) return;
    const full = this.#buffers[this.#current]!.subarray(0, this.#used);
    this.#current ^= 1;
    this.#used = 0;
    const write = writeAll(this.#handle, full);
    // Observed at the next flush or at end(); until then a failure must not count as unhandled.
    write.catch(() => {});
    this.#inFlight = write;
  }
}

/** Writes all of `bytes` at the file's position (write(2) may write less than asked). */
async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.byteLength; ) {
    const { bytesWritten } = await handle.write(bytes, at, bytes.byteLength - at);
    at += bytesWritten;
  }
}

/**
 * Verifies an ingest file that was put in place without being written
 * (a reflink or a hard link of a layout's blob): `source` streams its content,
 * which is hashed and checked against `expected`; then the file is fsynced
 * (a no-op for data already on disk). The caller reads `source` from `tmp`
 * itself, so that what is verified is what is kept. On any failure `tmp` is
 * removed.
 *
 * @throws {DigestMismatchError} when the digest or size differs from `expected`.
 * @throws {AbortError} when `signal` aborts.
 */
export async function verifyPlacedBlob(
  tmp: string,
  source: AsyncIterable<Uint8Array>,
  expected: { digest: Digest; size: number },
  signal?: AbortSignal,
): Promise<IngestedBlob> {
  const label = `blob ${shortDigest(expected.digest)}`;
  const hash = createHash(digestAlgorithm(expected.digest));
  let size = 0;
  try {
    for await (const chunk of source) {
      if (signal?.aborted) throw new AbortError(`write ${label}: aborted`, { cause: signal.reason });
      size += chunk.byteLength;
      if (size > expected.size) throw sizeMismatch(label, expected.digest, expected.size, `more than ${expected.size}`);
      hash.update(chunk);
    }
    const digest = `${digestAlgorithm(expected.digest)}:${hash.digest('hex')}` as Digest;
    checkExpected(label, expected.digest, expected.size, digest, size);
    const handle = await open(tmp, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    return { digest, size, tmp };
  } catch (err) {
    await unlink(tmp).catch(() => {});
    if (source instanceof Readable && !source.destroyed) source.destroy();
    throw err;
  }
}

/**
 * Makes an ingested blob visible at `blobs/<alg>/<hex>` (the caller holds the
 * store lock). An existing blob is success: its modification time is renewed
 * (so GC's grace period covers it) and the ingest file is dropped.
 *
 * `synced`: a caller committing several blobs passes one set to all of them
 * and then calls {@link syncBlobDirs} once: each algorithm directory is then
 * fsynced once, not once per blob. Until then the renames may be lost to a
 * power loss, so nothing may name the blobs before that call returns.
 */
export async function commitBlob(paths: StorePaths, blob: IngestedBlob, synced?: Set<string>): Promise<void> {
  const target = paths.blob(blob.digest);
  if (await touch(target)) {
    if (blob.tmp !== undefined) await unlink(blob.tmp).catch(() => {});
    return;
  }
  let tmp = blob.tmp;
  if (tmp === undefined) {
    // The blob existed when it was ingested and was collected before the commit.
    if (blob.bytes === undefined) throw new NotFoundError(`write blob ${blob.digest}: removed concurrently`, { path: target });
    tmp = await writeIngest(paths, blob.bytes);
  }
  const dir = join(paths.blobs, digestAlgorithm(blob.digest));
  try {
    await rename(tmp, target);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
    await mkdir(dir, { recursive: true });
    // A new algorithm directory (blobs/sha512) must itself survive a power loss.
    await fsyncDir(paths.blobs);
    await rename(tmp, target);
  }
  if (synced === undefined) await fsyncDir(dir);
  else synced.add(dir);
  // A rename keeps the time the bytes were written: a blob downloaded early in a long
  // pull would look older than GC's grace period before anything references it.
  await touch(target);
}

/** Makes the renames of the {@link commitBlob} calls given `dirs` durable: one fsync per directory. */
export async function syncBlobDirs(dirs: Set<string>): Promise<void> {
  for (const dir of dirs) await fsyncDir(dir);
  dirs.clear();
}

async function writeIngest(paths: StorePaths, bytes: Uint8Array): Promise<string> {
  const tmp = join(paths.ingest, ownerToken());
  const handle = await open(tmp, 'wx', 0o644);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
    await handle.close();
  } catch (err) {
    await handle.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  return tmp;
}

/** Removes an ingest file that will not be committed. */
export async function discardIngest(blob: IngestedBlob): Promise<void> {
  if (blob.tmp !== undefined) await unlink(blob.tmp).catch(() => {});
}

function checkExpected(
  label: string,
  expectedDigest: Digest | undefined,
  expectedSize: number | undefined,
  digest: Digest,
  size: number,
): void {
  if (expectedSize !== undefined && size !== expectedSize) {
    throw sizeMismatch(label, expectedDigest, expectedSize, String(size), digest);
  }
  if (expectedDigest !== undefined && digest !== expectedDigest) {
    throw new DigestMismatchError(`write ${label}: digest mismatch: content is ${digest}`, {
      expected: expectedDigest,
      actual: digest,
    });
  }
}

function sizeMismatch(
  label: string,
  expectedDigest: Digest | undefined,
  expectedSize: number,
  got: string,
  actual?: Digest,
): DigestMismatchError {
  return new DigestMismatchError(`write ${label}: size mismatch: expected ${expectedSize} bytes, got ${got}`, {
    expected: expectedDigest ?? `size:${expectedSize}`,
    ...(actual === undefined ? {} : { actual }),
  });
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}

/**
 * A pass-through stream that hashes what flows through it and fails at EOF
 * (with a {@link DigestMismatchError}, before `end`) when the content does not
 * match `digest` and `size`. The reader must read to the end for the check to
 * happen. Made by {@link createVerifyingStream}.
 */
export interface VerifyingStream extends Transform {
  /** Whether the whole content went through and matched. */
  readonly verified: boolean;
  /** How many bytes went through so far. */
  readonly bytesSeen: number;
}

// Node's streams (~1.2 ms to load) are not needed by `import('dockless')` nor by a container run:
// the class extends the real Transform, so it is defined when the first blob is opened.
const stream = lazyRequire<typeof import('node:stream')>('node:stream');
let verifyingStreamClass: (new (digest: Digest, size?: number, onBytes?: (bytes: number) => void) => VerifyingStream) | undefined;

/**
 * A new {@link VerifyingStream}.
 *
 * @param digest - the digest the content must have
 * @param size - the length it must have, when known
 * @param onBytes - called with the running byte count as content flows
 */
export function createVerifyingStream(digest: Digest, size?: number, onBytes?: (bytes: number) => void): VerifyingStream {
  verifyingStreamClass ??= defineVerifyingStream(stream().Transform);
  return new verifyingStreamClass(digest, size, onBytes);
}

function defineVerifyingStream(Base: typeof Transform) {
  return class VerifyingStream extends Base {
    readonly #digest: Digest;
    readonly #size: number | undefined;
    readonly #hash: Hash;
    readonly #onBytes: ((bytes: number) => void) | undefined;
    #seen = 0;
    #verified = false;

    /**
     * @param digest the digest the content must have.
     * @param size the length it must have, when known.
     * @param onBytes called with the running byte count as content flows.
     */
    constructor(digest: Digest, size?: number, onBytes?: (bytes: number) => void) {
      super();
      this.#digest = digest;
      this.#size = size;
      this.#onBytes = onBytes;
      this.#hash = createHash(digestAlgorithm(digest));
    }

    /** Whether the whole content went through and matched. */
    get verified(): boolean {
      return this.#verified;
    }

    /** How many bytes went through so far. */
    get bytesSeen(): number {
      return this.#seen;
    }

    override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
      this.#seen += chunk.length;
      if (this.#size !== undefined && this.#seen > this.#size) {
        callback(
          new DigestMismatchError(
            `read blob ${this.#digest}: size mismatch: expected ${this.#size} bytes, got more`,
            { expected: this.#digest },
          ),
        );
        return;
      }
      this.#hash.update(chunk);
      this.#onBytes?.(this.#seen);
      callback(null, chunk);
    }

    override _flush(callback: TransformCallback): void {
      const actual = `${digestAlgorithm(this.#digest)}:${this.#hash.digest('hex')}`;
      if (this.#size !== undefined && this.#seen !== this.#size) {
        callback(
          new DigestMismatchError(
            `read blob ${this.#digest}: size mismatch: expected ${this.#size} bytes, got ${this.#seen}`,
            { expected: this.#digest, actual },
          ),
        );
        return;
      }
      if (actual !== this.#digest) {
        callback(
          new DigestMismatchError(`read blob ${this.#digest}: digest mismatch: content is ${actual}`, {
            expected: this.#digest,
            actual,
          }),
        );
        return;
      }
      this.#verified = true;
      callback();
    }
  };
}

/**
 * Opens a blob for reading through a {@link VerifyingStream}.
 *
 * @throws {NotFoundError} when the blob is not in the store.
 */
export async function openBlob(
  paths: StorePaths,
  digest: Digest,
  size?: number,
  onBytes?: (bytes: number) => void,
): Promise<VerifyingStream> {
  const path = paths.blob(digest);
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) throw new NotFoundError(`blob ${digest}: not found`, { path, cause: err });
    throw err;
  }
  const verifier = createVerifyingStream(digest, size, onBytes);
  pipeline(handle.createReadStream({ highWaterMark: 1 << 20 }), verifier, () => {});
  return verifier;
}

/**
 * Reads a whole (small) blob and verifies it.
 *
 * @throws {NotFoundError} when the blob is not in the store.
 * @throws {DigestMismatchError} when its content does not match its digest.
 */
export async function readBlobVerified(paths: StorePaths, digest: Digest): Promise<Buffer> {
  const path = paths.blob(digest);
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) throw new NotFoundError(`blob ${digest}: not found`, { path, cause: err });
    throw err;
  }
  const actual = `${digestAlgorithm(digest)}:${createHash(digestAlgorithm(digest)).update(data).digest('hex')}`;
  if (actual !== digest) {
    throw new DigestMismatchError(`read blob ${digest}: digest mismatch: content is ${actual}`, {
      expected: digest,
      actual,
      path,
    });
  }
  return data;
}
