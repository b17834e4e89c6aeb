/**
 * The {@link Lease} handle returned by `ImageStore.lease`.
 *
 * @module
 */

import type { Digest } from '../oci/index.js';

/** What a {@link Lease} handle calls back into its store. */
export interface LeaseBackend {
  add(id: string, targets: Iterable<string>): Promise<Digest[]>;
  release(id: string): Promise<boolean>;
}

/**
 * A *lease*: a named promise to GC that some content stays, for as long as a
 * running container, an import in progress or any other user needs it. A
 * lease on a manifest (or index) digest keeps the whole image: manifest,
 * config, layer blobs and the snapshots of its chainIDs; a lease on a chainID
 * keeps that snapshot. Leases are stored on disk, so they hold across
 * processes and restarts until released or expired.
 *
 * `AsyncDisposable`: `await using lease = await store.lease(…)` releases it
 * at the end of the block.
 *
 * @example
 * ```ts
 * await using lease = await store.lease('container-0f3a', ['alpine:3.20']);
 * const snap = await store.snapshot('alpine:3.20');
 * // … run the container on snap.lowerDirs; GC cannot remove them meanwhile
 * ```
 */
export class Lease implements AsyncDisposable {
  /** The lease's name, unique in the store. */
  readonly id: string;
  readonly #backend: LeaseBackend;

  /** @internal Leases are made by `ImageStore.lease`. */
  constructor(id: string, backend: LeaseBackend) {
    this.id = id;
    this.#backend = backend;
  }

  /**
   * Adds content to the lease: digests of blobs or manifests, chainIDs, or
   * image references (resolved to their manifest digest now).
   *
   * @returns the digests added.
   * @throws {NotFoundError} when the lease was released, or a reference does not resolve.
   * @throws {InvalidArgumentError} when a target is malformed.
   * @example
   * await lease.add([layerDescriptor.digest]);
   */
  async add(targets: Iterable<string>): Promise<Digest[]> {
    return this.#backend.add(this.id, targets);
  }

  /**
   * Ends the lease: its content becomes collectable (unless something else
   * holds it). Releasing a lease that is already gone is not an error.
   *
   * @returns whether the lease still existed.
   */
  async release(): Promise<boolean> {
    return this.#backend.release(this.id);
  }

  /** Releases the lease; for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}
