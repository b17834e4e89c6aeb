/**
 * The build cache: what a build step made, found again by a key computed from
 * everything the step's result depends on.
 *
 * A key is the SHA-256 of a canonical JSON document of:
 *
 * - `parent`: the state the step starts from: the base image's manifest
 *   digest (`image:sha256:…`) or `scratch` for the first step, else the
 *   previous step's key; so changing one step changes every key after it;
 * - `instruction`: the step's full instruction, variables expanded
 *   (`RUN /bin/sh -c make`, `COPY --chown=1:1 src /app`);
 * - `options`: the step's options (env, user, cwd, network, mounts, …);
 * - `args`: the build args the step uses, with their values;
 * - `content`: for `COPY`/`ADD`, the digest of the files copied: their
 *   names, types, modes, link targets and contents, after `.dockerignore`;
 * - `platform`: the image's platform.
 *
 * Entries live in the store, through its {@link BuildCacheStorage} (written
 * atomically, so they survive the process and any number of processes share
 * them). Each entry lists the blobs it needs in `blobs`; `ImageStore.gc()`
 * treats entries as roots and keeps those blobs.
 *
 * @module
 */

import createDebug from 'debug';
import { type Descriptor, type Digest, digestHex, isDigest, sha256Digest, shortDigest } from '../oci/index.js';
import type { BuildCacheStorage } from '../store/index.js';
import { ensureDir, isErrno, writeFileAtomic } from '../util/index.js';

const debug = createDebug('dockless:build');

/** The version of the key document and of the entries; bumping it invalidates every entry. */
export const BUILD_CACHE_VERSION = 1;

/** What a build cache key is computed from; see the module documentation. */
export interface CacheKeyInput {
  /** `scratch`, `image:<manifest digest>`, or the previous step's key. */
  parent: string;
  /** The step's instruction, variables expanded. */
  instruction: string;
  /** The step's options; `undefined` members are left out. */
  options?: Record<string, unknown>;
  /** The build args the step uses, name → value. */
  args?: Record<string, string>;
  /** The digest of the files a `COPY`/`ADD` copies. */
  content?: string;
  /** The platform, `os/arch[/variant]`. */
  platform?: string;
}

/**
 * The cache key of a step: SHA-256 of the canonical JSON (sorted keys, no
 * whitespace, `undefined` left out) of `input` and the cache version. Pure.
 *
 * @example
 * cacheKey({ parent: 'scratch', instruction: 'RUN /bin/sh -c make' }); // 'sha256:…'
 */
export function cacheKey(input: CacheKeyInput): Digest {
  return sha256Digest(canonicalJson({ v: BUILD_CACHE_VERSION, ...input }));
}

/** JSON with object keys sorted at every level and `undefined` members dropped. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const keys = Object.keys(value)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

/** The layer a cached step made. */
export interface CachedLayer {
  /** The compressed layer blob. */
  descriptor: Descriptor;
  /** Its diffID. */
  diffId: Digest;
}

/** One build cache entry: the result of one step. */
export interface CacheEntry {
  version: typeof BUILD_CACHE_VERSION;
  /** The key it is stored under. */
  key: Digest;
  /** When the step ran: the `created` of its history entry, so that a cached rebuild makes the same image. */
  created: string;
  /** The history entry's `created_by`. */
  createdBy: string;
  /** The layer the step made; absent for a step that only changed the config. */
  layer?: CachedLayer;
  /** The blobs the entry needs, kept by `ImageStore.gc()`. */
  blobs: Digest[];
}

/**
 * The build cache of one store. Reads and writes need no lock: entries are
 * immutable once written, and a key always names the same result.
 */
export class BuildCache {
  readonly #storage: BuildCacheStorage;

  /** The cache kept in a store's build cache storage (`store.buildCache`). */
  constructor(storage: BuildCacheStorage) {
    this.#storage = storage;
  }

  /**
   * The entry stored under `key`, or `undefined`. A hit marks the entry as
   * used now, for {@link BuildCache.prune}.
   */
  async get(key: Digest): Promise<CacheEntry | undefined> {
    const entry = (await this.#storage.get(key)) as CacheEntry | undefined;
    if (entry?.version !== BUILD_CACHE_VERSION) return undefined;
    return entry;
  }

  /** Stores an entry (atomically; an existing entry for the key is replaced by an equal one). */
  async put(entry: Omit<CacheEntry, 'version' | 'blobs'>): Promise<CacheEntry> {
    const full: CacheEntry = {
      version: BUILD_CACHE_VERSION,
      ...entry,
      blobs: entry.layer !== undefined ? [entry.layer.descriptor.digest] : [],
    };
    await this.#storage.put({ ...full });
    return full;
  }

  /**
   * Removes entries not used (hit or written) for `olderThan` milliseconds,
   * or all of them when it is 0; run `ImageStore.gc()` afterwards to free
   * their layers.
   *
   * @returns the number of entries removed.
   */
  async prune(options: { olderThan?: number } = {}): Promise<number> {
    const removed = await this.#storage.prune(options.olderThan ?? 0);
    debug('build cache: pruned %d entries', removed);
    return removed;
  }
}
