/**
 * Content: blobs named by their digest, in `blobs/<algorithm>/<hex>`.
 *
 * @module
 */

import type { Readable } from 'node:stream';
import createDebug from 'debug';
import { type Descriptor, type Digest, parseDigest, shortDigest } from '../oci/index.js';
import { isErrno } from '../util/index.js';
import { stat } from 'node:fs/promises';
import { commitBlob, discardIngest, ingestBlob, openBlob, readBlobVerified, type BlobSource } from './blobs.js';
import { addToLeaseLocked, leaseId } from './leases.js';
import { withLock } from './lock.js';
import type { StorePaths } from './paths.js';
import type { PutBlobOptions } from './types.js';

const debug = createDebug('dockless:store');

const OCTET_STREAM = 'application/octet-stream';

/** The blobs of one store; see {@link ImageStoreCore}'s blob methods. */
export class ContentStore {
  readonly #paths: StorePaths;

  constructor(paths: StorePaths) {
    this.#paths = paths;
  }

  /**
   * Stores a blob. The content is written to an ingest file while its digest
   * is computed, checked against `digest` and `size` when given, fsynced and
   * renamed into `blobs/<algorithm>/<hex>`. Idempotent: storing content that
   * is already there succeeds (a resolved promise means the content is
   * stored, not that this call stored it).
   *
   * @returns the blob's descriptor (with `options.mediaType`).
   * @throws {DigestMismatchError} when the content does not match `digest` or `size`; nothing is stored.
   * @throws {InvalidArgumentError} when `digest` is malformed.
   * @throws {NotFoundError} when `lease` names no lease.
   * @throws {AbortError} when `signal` aborts; nothing is stored.
   * @example
   * ```ts
   * const desc = await store.putBlob(createReadStream('layer.tar.gz'), {
   *   digest: 'sha256:…', size: 1234, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
   * });
   * ```
   */
  async putBlob(data: BlobSource, options: PutBlobOptions = {}): Promise<Descriptor> {
    const blob = await ingestBlob(this.#paths, data, { digest: options.digest, size: options.size }, options.signal);
    try {
      await withLock(this.#paths.storeLock, async () => {
        await commitBlob(this.#paths, blob);
        if (options.lease !== undefined) await addToLeaseLocked(this.#paths, leaseId(options.lease), [blob.digest]);
      });
    } catch (err) {
      await discardIngest(blob);
      throw err;
    }
    debug('blob %s: stored (%d bytes)', shortDigest(blob.digest), blob.size);
    return { mediaType: options.mediaType ?? OCTET_STREAM, digest: blob.digest, size: blob.size };
  }

  /**
   * Opens a blob for reading. The stream verifies the content as it flows
   * and fails at EOF, with a `DigestMismatchError` before `end`, when it does
   * not match the digest: read it to the end before trusting it.
   *
   * @throws {NotFoundError} when the blob is not in the store.
   * @throws {InvalidArgumentError} when `digest` is malformed.
   * @example
   * ```ts
   * await pipeline(await store.getBlob(layer.digest), createWriteStream('layer.tar.gz'));
   * ```
   */
  async getBlob(digest: string): Promise<Readable> {
    const d = parseDigest(digest);
    return openBlob(this.#paths, d, await this.size(d));
  }

  /**
   * Reads a whole blob into memory and verifies it; meant for small blobs
   * (manifests, configs).
   *
   * @throws {NotFoundError} when the blob is not in the store.
   * @throws {DigestMismatchError} when its content does not match its digest.
   * @throws {InvalidArgumentError} when `digest` is malformed.
   * @example
   * ```ts
   * const manifest = JSON.parse((await store.readBlob(desc.digest)).toString());
   * ```
   */
  async readBlob(digest: string): Promise<Buffer> {
    return readBlobVerified(this.#paths, parseDigest(digest));
  }

  /**
   * Whether a blob is in the store.
   *
   * @throws {InvalidArgumentError} when `digest` is malformed.
   * @example
   * ```ts
   * if (!(await store.hasBlob(layer.digest))) await download(layer);
   * ```
   */
  async hasBlob(digest: string): Promise<boolean> {
    return (await this.size(parseDigest(digest))) !== undefined;
  }

  /**
   * The path of a blob's file (`<root>/blobs/<algorithm>/<hex>`), whether or
   * not it exists. Read it, never write it.
   *
   * @throws {InvalidArgumentError} when `digest` is malformed.
   * @example
   * ```ts
   * const path = store.blobPath('sha256:…');
   * ```
   */
  blobPath(digest: string): string {
    return this.#paths.blob(parseDigest(digest));
  }

  /** The size of a blob in the store, or `undefined` when it is not there. */
  async size(digest: Digest): Promise<number | undefined> {
    try {
      return (await stat(this.#paths.blob(digest))).size;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
  }
}
