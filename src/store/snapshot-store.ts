/**
 * An image's snapshots: every layer unpacked once per chainID and variant
 * (root or rootless, see snapshot-variant.ts), the overlayfs lower dirs of
 * an image, and the fast path that finds them without reading a blob.
 *
 * @module
 */

import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import createDebug from 'debug';
import PQueue from 'p-queue';
import { AbortError, InvalidArgumentError, InvalidStateError, NotFoundError } from '../errors.js';
import { chainIds, type Descriptor, type Digest, type ImageConfig, parseDigest, shortDigest, toPlatform } from '../oci/index.js';
import { touch, writeFileAtomic, progressEmitter } from '../util/index.js';
import type { DocumentReader } from './documents.js';
import { parseImageRef, type ImageCatalog } from './images.js';
import { withLock } from './lock.js';
import { SNAPSHOT_MARKER, type StorePaths } from './paths.js';
import { adoptSnapshot, SnapshotManager } from './snapshots.js';
import { chooseVariant, type SnapshotVariant } from './snapshot-variant.js';
import { flushScheduled, snapshotTrustedSync } from './durability.js';
import type { ImageLayerInput, ImageSnapshot, SnapshotOptions } from './types.js';

const debug = createDebug('dockless:store');

const RECORD_VERSION = 1;

/** The fast-path record of an unpacked image, `dockless/images/<hex>.json`. */
interface ImageRecord {
  version: 1;
  digest: Digest;
  manifest: Descriptor;
  config: ImageConfig;
  diffIds: Digest[];
  chainIds: Digest[];
}

/** The snapshots of one store's images; see {@link ImageStoreCore}'s snapshot methods. */
export class SnapshotStore {
  readonly #paths: StorePaths;
  readonly #docs: DocumentReader;
  readonly #images: ImageCatalog;
  readonly #snapshots: SnapshotManager;
  readonly #records = new Map<Digest, ImageRecord>();

  readonly #helperPath: string | undefined;

  constructor(paths: StorePaths, docs: DocumentReader, images: ImageCatalog, helperPath: string | undefined) {
    this.#paths = paths;
    this.#docs = docs;
    this.#images = images;
    this.#helperPath = helperPath;
    this.#snapshots = new SnapshotManager(paths, helperPath);
  }

  /** Drops the cached records of images whose manifests GC removed. */
  forget(digests: Iterable<Digest>): void {
    for (const digest of digests) this.#records.delete(digest);
  }

  /** See {@link ImageStoreCore.adoptSnapshot}. */
  async adoptSnapshot(
    layers: readonly ImageLayerInput[],
    dir: string,
    facts: { size: number; entries: number },
  ): Promise<boolean> {
    if (layers.length === 0) throw new InvalidArgumentError('adopt snapshot: no layers');
    const ids = chainIds(layers.map((l) => parseDigest(l.diffId)));
    const top = layers.at(-1)!;
    const { variant, userns } = chooseVariant();
    // A directory the caller wrote has the caller's ids, not the namespace's owners of the layer.
    if (userns !== undefined) return false;
    return adoptSnapshot(
      this.#paths,
      { chainId: ids.at(-1)!, diffId: parseDigest(top.diffId), parent: ids.at(-2) ?? null, descriptor: top.descriptor },
      dir,
      facts,
      variant,
      this.#helperPath,
    );
  }

  /** See {@link ImageStoreCore.flush}. */
  flush(): Promise<void> {
    return flushScheduled(this.#paths.root);
  }


  /** See {@link ImageStoreCore.snapshot}. */
  async snapshot(image: string, options: SnapshotOptions = {}): Promise<ImageSnapshot> {
    // An image unpacked before needs no blob read and no lock, unless progress events or another platform are asked for.
    if (options.platform === undefined && options.onProgress === undefined) {
      const ready = await this.snapshotPaths(image, options);
      if (ready !== undefined) return ready;
    }
    const descriptor = await this.#images.resolve(image);
    const loaded = await this.#docs.image(
      descriptor,
      options.platform === undefined ? undefined : toPlatform(options.platform, `snapshot ${image}`),
    );
    const { manifest, diffIds, chainIds } = loaded;
    const total = manifest.layers.length;
    const concurrency = options.concurrency ?? 3;
    if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
      throw new InvalidArgumentError(`snapshot ${image}: concurrency must be a positive integer`);
    }
    const queue = new PQueue({ concurrency });
    const emit = progressEmitter('snapshot', options.onProgress);
    const { variant } = chooseVariant(options);
    // A failing layer cancels its siblings; the caller's signal cancels them all.
    const siblings = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, siblings.signal]) : siblings.signal;
    const ensureOne = async (i: number): Promise<void> => {
      if (signal.aborted) throw new AbortError(`snapshot ${image}: aborted`, { cause: signal.reason });
      const layer = manifest.layers[i]!;
      const chainId = chainIds[i]!;
      emit?.({ type: 'layer-start', index: i, total, digest: layer.digest, chainId, size: layer.size });
      const unpacked = await this.#snapshots.ensure(
        { chainId, diffId: diffIds[i]!, parent: i === 0 ? null : chainIds[i - 1]!, descriptor: layer },
        {
          signal,
          rootless: options.rootless,
          userns: options.userns,
          onBytes: emit
            ? (bytes) => emit({ type: 'layer-progress', index: i, digest: layer.digest, chainId, bytes, size: layer.size })
            : undefined,
        },
      );
      emit?.({ type: 'layer-done', index: i, digest: layer.digest, chainId, cached: !unpacked });
    };
    const ensureAll = async (indices: number[]): Promise<void> => {
      const results = await Promise.allSettled(
        indices.map((i) =>
          queue.add(async () => {
            try {
              await ensureOne(i);
            } catch (err) {
              siblings.abort(err);
              throw err;
            }
          }),
        ),
      );
      // The first failure is the cause; the others are usually its cancellations.
      const failure = results.find(
        (r): r is PromiseRejectedResult => r.status === 'rejected' && !(r.reason instanceof AbortError),
      ) ?? results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failure !== undefined) throw failure.reason;
    };
    let pending = chainIds.map((_, i) => i);
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt === 3) throw new InvalidStateError(`snapshot ${image}: snapshots keep disappearing (concurrent gc?)`);
      await ensureAll(pending);
      // Renew every marker under the store lock, so that GC's grace period covers them from now on;
      // a snapshot GC took meanwhile is unpacked again.
      pending = await withLock(this.#paths.storeLock, async () => {
        const missing: number[] = [];
        for (const [i, chainId] of chainIds.entries()) {
          if (!(await touch(join(this.#paths.snapshot(chainId, variant), SNAPSHOT_MARKER)))) missing.push(i);
        }
        return missing;
      });
    }
    const record: ImageRecord = {
      version: RECORD_VERSION,
      digest: descriptor.digest,
      manifest: loaded.manifestDescriptor,
      config: loaded.config,
      diffIds,
      chainIds,
    };
    // The fast path serves this host's platform only.
    if (options.platform === undefined) await this.#saveRecord(record);
    return this.#snapshotOf(record, variant);
  }

  /** See {@link ImageStoreCore.snapshotPaths}. */
  async snapshotPaths(image: string, options: Pick<SnapshotOptions, 'rootless' | 'userns'> = {}): Promise<ImageSnapshot | undefined> {
    const { variant } = chooseVariant(options);
    const parsed = parseImageRef(image);
    let digest = parsed.digest;
    if (digest === undefined) {
      const key = parsed.ref!.toString();
      const entry = (await this.#images.targets()).get(key);
      if (entry === undefined) throw new NotFoundError(`image ${key}: not found`);
      digest = entry.digest;
    }
    let record = this.#records.get(digest);
    if (record === undefined) {
      try {
        record = JSON.parse(await readFile(this.#paths.image(digest), 'utf8')) as ImageRecord;
      } catch {
        return undefined;
      }
      if (record.version !== RECORD_VERSION || record.digest !== digest) return undefined;
      this.#records.set(digest, record);
    }
    for (const chainId of record.chainIds) {
      const dir = this.#paths.snapshot(chainId, variant);
      // Synchronous stats: a few microseconds each, cheaper than a thread-pool round trip;
      // the marker itself is read once per process (see snapshotTrustedSync).
      if (statSync(join(dir, SNAPSHOT_MARKER), { throwIfNoEntry: false }) === undefined || !snapshotTrustedSync(dir)) {
        return undefined;
      }
    }
    return this.#snapshotOf(record, variant);
  }

  #snapshotOf(record: ImageRecord, variant: SnapshotVariant): ImageSnapshot {
    return {
      digest: record.manifest.digest,
      config: record.config,
      diffIds: record.diffIds,
      chainIds: record.chainIds,
      lowerDirs: record.chainIds.map((c) => this.#paths.snapshotFs(c, variant)).reverse(),
    };
  }

  async #saveRecord(record: ImageRecord): Promise<void> {
    this.#records.set(record.digest, record);
    try {
      await writeFileAtomic(this.#paths.image(record.digest), `${JSON.stringify(record)}\n`, this.#paths.tmp);
    } catch (err) {
      debug('image record %s: not written: %s', shortDigest(record.digest), (err as Error).message);
    }
  }
}
