/**
 * The build cache's storage in the store: records under
 * `dockless/build-cache/<key hex>.json` and directories for the builder's
 * cached files. The builder reads and writes through
 * {@link BuildCacheStorage}; only the store knows where they are, and GC
 * keeps the blobs each record names in `blobs`.
 *
 * @module
 */

import { readdir, readFile, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { digestHex, isDigest, type Digest } from '../oci/index.js';
import { ensureDir, isErrno, readdirOrEmpty, writeFileAtomic } from '../util/index.js';
import type { StorePaths } from './paths.js';

/** What every build cache record holds: its key, and the blobs GC must keep for it. */
export interface BuildCacheRecord {
  /** The key it is stored under. */
  key: Digest;
  /** The blobs it needs; GC keeps them while the record exists. */
  blobs: Digest[];
}

/** The build cache's storage, as the store offers it to the builder. */
export interface BuildCacheStorage {
  /**
   * The record stored under `key`, or `undefined` when there is none or it
   * is unreadable. A hit marks the record as used now, for {@link BuildCacheStorage.prune}.
   */
  get(key: Digest): Promise<(BuildCacheRecord & Record<string, unknown>) | undefined>;
  /** Stores a record atomically, replacing one under the same key. */
  put(record: BuildCacheRecord & Record<string, unknown>): Promise<void>;
  /**
   * Removes records not used (hit or written) for `olderThan` milliseconds,
   * or all of them when it is 0; their blobs become collectable.
   *
   * @returns the number of records removed.
   */
  prune(olderThan: number): Promise<number>;
  /**
   * The path of a directory of the build cache for the builder's own cached
   * files (`files`, `mounts`), on the store's filesystem; created by the caller when needed.
   *
   * @throws {InvalidArgumentError} when `name` is not a plain name.
   */
  directory(name: string): string;
}

/** {@link BuildCacheStorage} in a store's `dockless/build-cache/`. */
export class BuildCacheFiles implements BuildCacheStorage {
  readonly #paths: StorePaths;
  #ready: Promise<void> | undefined;

  constructor(paths: StorePaths) {
    this.#paths = paths;
  }

  #path(key: Digest): string {
    return join(this.#paths.buildCache, `${digestHex(key)}.json`);
  }

  async get(key: Digest): Promise<(BuildCacheRecord & Record<string, unknown>) | undefined> {
    const path = this.#path(key);
    let record: (BuildCacheRecord & Record<string, unknown>) | null;
    try {
      record = JSON.parse(await readFile(path, 'utf8')) as (BuildCacheRecord & Record<string, unknown>) | null;
    } catch {
      return undefined;
    }
    if (record?.key !== key || !Array.isArray(record.blobs)) return undefined;
    const now = new Date();
    await utimes(path, now, now).catch(() => undefined);
    return record;
  }

  async put(record: BuildCacheRecord & Record<string, unknown>): Promise<void> {
    if (!isDigest(record.key) || !Array.isArray(record.blobs) || !record.blobs.every((d) => isDigest(d))) {
      throw new InvalidArgumentError('build cache record: key and blobs must be digests');
    }
    this.#ready ??= ensureDir(this.#paths.buildCache);
    await this.#ready;
    // Not fsynced: a build writes one per step, and a crash can only leave a record missing,
    // empty or cut short, which `get` reads as a miss (its layer's blob was fsynced before).
    await writeFileAtomic(this.#path(record.key), `${JSON.stringify(record)}\n`, this.#paths.tmp, { sync: false });
  }

  async prune(olderThan: number): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.#paths.buildCache);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return 0;
      throw err;
    }
    const now = Date.now();
    let removed = 0;
    for (const name of names) {
      if (!name.endsWith('.json') || !isDigest(`sha256:${name.slice(0, -5)}`)) continue;
      const path = join(this.#paths.buildCache, name);
      try {
        if (olderThan > 0 && now - (await stat(path)).mtimeMs < olderThan) continue;
        await rm(path, { force: true });
        removed++;
      } catch {
        /* gone meanwhile */
      }
    }
    return removed;
  }

  directory(name: string): string {
    if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new InvalidArgumentError(`build cache directory ${JSON.stringify(name)}: not a plain name`);
    return join(this.#paths.buildCache, name);
  }
}

/** The blobs that build cache entries keep: each `build-cache/*.json` lists them in `blobs`. */
export async function buildCacheBlobs(paths: StorePaths): Promise<Digest[]> {
  const blobs: Digest[] = [];
  for (const name of await readdirOrEmpty(paths.buildCache)) {
    if (!name.endsWith('.json')) continue;
    let entry: { blobs?: unknown } | null;
    try {
      entry = JSON.parse(await readFile(join(paths.buildCache, name), 'utf8')) as { blobs?: unknown } | null;
    } catch {
      // Unreadable or malformed: it cannot be used as a cache hit either, so it keeps nothing.
      continue;
    }
    if (Array.isArray(entry?.blobs)) for (const d of entry.blobs) if (isDigest(d)) blobs.push(d);
  }
  return blobs;
}
