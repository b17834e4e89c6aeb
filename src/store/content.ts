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

  /** See {@link ImageStoreCore.putBlob}. */
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

  /** See {@link ImageStoreCore.getBlob}. */
  async getBlob(digest: string): Promise<Readable> {
    const d = parseDigest(digest);
    return openBlob(this.#paths, d, await this.size(d));
  }

  /** See {@link ImageStoreCore.readBlob}. */
  async readBlob(digest: string): Promise<Buffer> {
    return readBlobVerified(this.#paths, parseDigest(digest));
  }

  /** See {@link ImageStoreCore.hasBlob}. */
  async hasBlob(digest: string): Promise<boolean> {
    return (await this.size(parseDigest(digest))) !== undefined;
  }

  /** See {@link ImageStoreCore.blobPath}. */
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
