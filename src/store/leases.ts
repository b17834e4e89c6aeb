/**
 * Leases: named records of content that GC must keep, for as long as a
 * running container, an import in progress or any other user needs it.
 * Stored as `dockless/leases/<id>.json`, written under the store lock.
 *
 * @module
 */

import { readdir, readFile, unlink } from 'node:fs/promises';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import type { Digest } from '../oci/index.js';
import { isErrno, isProcessAlive, writeFileAtomic, type Owner } from '../util/index.js';
import type { StorePaths } from './paths.js';

// Long enough for a name that holds a sha512 digest's 128 hex digits (`pull-sha512-<hex>`); `<id>.json` stays a valid file name.
const LEASE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$/;

/** What a lease holds, as stored and as {@link ImageStore.leases} lists it. */
export interface LeaseInfo {
  /** The lease's name. */
  id: string;
  /** When it was taken, ISO 8601. */
  created: string;
  /** When it ends by itself, ISO 8601; absent for a lease that lasts until released. */
  expires?: string;
  /** The process the lease ends with, when it was taken with `processBound`. */
  owner?: Owner;
  /**
   * The digests it protects: blob digests (a manifest's or index's digest
   * protects everything the image needs, snapshots included) and snapshot
   * chainIDs.
   */
  digests: Digest[];
}

/**
 * Checks a lease id: 1 to 200 characters, letters, digits, `_`, `.`, `-`,
 * starting with a letter or digit.
 *
 * @throws {InvalidArgumentError} when it is malformed.
 */
export function checkLeaseId(id: string): string {
  if (typeof id !== 'string' || !LEASE_ID_RE.test(id)) {
    throw new InvalidArgumentError(
      `invalid lease id ${JSON.stringify(id)}: must be 1 to 200 letters, digits, '_', '.' or '-', starting with a letter or digit`,
    );
  }
  return id;
}

/** Reads one lease; `undefined` when there is none. */
export async function readLease(paths: StorePaths, id: string): Promise<LeaseInfo | undefined> {
  try {
    return JSON.parse(await readFile(paths.lease(id), 'utf8')) as LeaseInfo;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/**
 * Writes one lease atomically; durably (fsynced) unless it is bound to a
 * process: such a lease ends with its process, which a power loss ends too,
 * so one lost to a power loss is one that had ended anyway. Each container
 * from an image takes one, and two fsyncs on a disk cost it milliseconds.
 */
export async function writeLease(paths: StorePaths, lease: LeaseInfo): Promise<void> {
  await writeFileAtomic(paths.lease(lease.id), `${JSON.stringify(lease)}\n`, paths.tmp, { sync: lease.owner === undefined });
}

/** Removes one lease; `false` when there was none. */
export async function deleteLease(paths: StorePaths, id: string): Promise<boolean> {
  try {
    await unlink(paths.lease(id));
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}

/** Every lease; unreadable records are returned in `invalid` by file name. */
export async function listLeases(paths: StorePaths): Promise<{ leases: LeaseInfo[]; invalid: string[] }> {
  let names: string[];
  try {
    names = await readdir(paths.leases);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return { leases: [], invalid: [] };
    throw err;
  }
  const leases: LeaseInfo[] = [];
  const invalid: string[] = [];
  for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
    try {
      const lease = JSON.parse(await readFile(`${paths.leases}/${name}`, 'utf8')) as LeaseInfo;
      if (typeof lease.id !== 'string' || !Array.isArray(lease.digests)) throw new Error('bad shape');
      leases.push(lease);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) continue;
      invalid.push(name);
    }
  }
  return { leases, invalid };
}

/** Whether a lease has ended by itself: expired, or its owner process is gone. */
export function isLeaseOver(lease: LeaseInfo, now = Date.now()): boolean {
  if (lease.expires !== undefined && Date.parse(lease.expires) <= now) return true;
  if (lease.owner !== undefined && !isProcessAlive(lease.owner.pid, lease.owner.start)) return true;
  return false;
}

/**
 * Adds `digests` to lease `id`; the caller holds the store lock.
 *
 * @throws {NotFoundError} when there is no such lease.
 */
export async function addToLeaseLocked(paths: StorePaths, id: string, digests: Digest[]): Promise<Digest[]> {
  const info = await readLease(paths, checkLeaseId(id));
  if (info === undefined) throw new NotFoundError(`lease ${id}: not found`);
  const merged = new Set(info.digests);
  const before = merged.size;
  for (const d of digests) merged.add(d);
  if (merged.size !== before) await writeLease(paths, { ...info, digests: [...merged] });
  return digests;
}

/** The id of a lease given as a handle or an id. */
export function leaseId(lease: { readonly id: string } | string): string {
  return typeof lease === 'string' ? lease : lease.id;
}
