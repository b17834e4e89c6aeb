/**
 * Leases: what GC must keep while a container, an import or a build uses it.
 *
 * @module
 */

import createDebug from 'debug';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../errors.js';
import type { Digest } from '../oci/index.js';
import { selfStartTime } from '../util/index.js';
import { parseImageRef, type ImageCatalog } from './images.js';
import { Lease } from './lease.js';
import { addToLeaseLocked, checkLeaseId, deleteLease, listLeases, readLease, writeLease, type LeaseInfo } from './leases.js';
import { withLock } from './lock.js';
import type { StorePaths } from './paths.js';
import type { LeaseOptions } from './types.js';

const debug = createDebug('dockless:store');

/** The leases of one store; see {@link ImageStoreCore}'s lease methods. */
export class LeaseStore {
  readonly #paths: StorePaths;
  readonly #images: ImageCatalog;

  constructor(paths: StorePaths, images: ImageCatalog) {
    this.#paths = paths;
    this.#images = images;
  }

  /** See {@link ImageStoreCore.lease}. */
  async lease(id: string, targets: Iterable<string> = [], options: LeaseOptions = {}): Promise<Lease> {
    checkLeaseId(id);
    if (options.expiresIn !== undefined && !(options.expiresIn >= 0)) {
      throw new InvalidArgumentError(`lease ${id}: expiresIn must be a non-negative number of milliseconds`);
    }
    const digests = await this.#leaseTargets(targets);
    await withLock(this.#paths.storeLock, async () => {
      if ((await readLease(this.#paths, id)) !== undefined) throw new AlreadyExistsError(`lease ${id}: already exists`);
      const info: LeaseInfo = { id, created: new Date().toISOString(), digests };
      if (options.expiresIn !== undefined) info.expires = new Date(Date.now() + options.expiresIn).toISOString();
      if (options.processBound) info.owner = { pid: process.pid, start: selfStartTime() };
      await writeLease(this.#paths, info);
    });
    debug('lease %s: taken (%d digests)', id, digests.length);
    return this.#leaseHandle(id);
  }

  /** See {@link ImageStoreCore.getLease}. */
  async getLease(id: string): Promise<Lease> {
    checkLeaseId(id);
    if ((await readLease(this.#paths, id)) === undefined) throw new NotFoundError(`lease ${id}: not found`);
    return this.#leaseHandle(id);
  }

  /** See {@link ImageStoreCore.releaseLease}. */
  async releaseLease(id: string): Promise<boolean> {
    checkLeaseId(id);
    const existed = await withLock(this.#paths.storeLock, () => deleteLease(this.#paths, id));
    debug('lease %s: released', id);
    return existed;
  }

  /** See {@link ImageStoreCore.leases}. */
  async leases(): Promise<LeaseInfo[]> {
    return (await listLeases(this.#paths)).leases;
  }


  async #leaseTargets(targets: Iterable<string>): Promise<Digest[]> {
    const digests = new Set<Digest>();
    for (const target of targets) {
      if (typeof target !== 'string') throw new InvalidArgumentError('lease: targets must be strings');
      const parsed = parseImageRef(target);
      digests.add(parsed.digest ?? (await this.#images.resolve(target)).digest);
    }
    return [...digests];
  }

  #leaseHandle(id: string): Lease {
    return new Lease(id, {
      add: async (leaseIdArg, targets) => {
        const digests = await this.#leaseTargets(targets);
        return withLock(this.#paths.storeLock, () => addToLeaseLocked(this.#paths, leaseIdArg, digests));
      },
      release: (leaseIdArg) => this.releaseLease(leaseIdArg),
    });
  }
}
