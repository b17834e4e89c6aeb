/**
 * {@link ImageStoreCore}: the store side of `ImageStore` (blobs, images,
 * tags with history and rollback, leases, snapshots, GC and check), composed
 * from one class per concept. Registries and archives are not here: the
 * public `ImageStore` adds them on top, so that nothing in the store imports
 * transfer code.
 *
 * @module
 */

import type { Readable } from 'node:stream';
import createDebug from 'debug';
import type { Descriptor, Digest } from '../oci/index.js';
import type { BlobSource } from './blobs.js';
import { BuildCacheFiles, type BuildCacheStorage } from './build-cache.js';
import { checkStore } from './check.js';
import { ContentStore } from './content.js';
import { DocumentReader } from './documents.js';
import { collectGarbage } from './gc.js';
import { ImageCatalog } from './images.js';
import { IngestSession } from './ingest.js';
import type { ContentReader, ContentWriter, ImageReader, ImageWriter, Ingester, LeaseManager, Snapshotter } from './interfaces.js';
import type { Lease } from './lease.js';
import { LeaseStore } from './lease-store.js';
import type { LeaseInfo } from './leases.js';
import { openStore, type OpenedStore } from './open.js';
import type { StorePaths } from './paths.js';
import { SnapshotStore } from './snapshot-store.js';
import { TagStore } from './tags.js';
import type {
  GcOptions,
  GcResult,
  HistoryRetention,
  ImageDetails,
  ImageLayerInput,
  ImageSnapshot,
  ImageStoreOptions,
  ImageSummary,
  LeaseOptions,
  PutBlobOptions,
  PutImageInput,
  RollbackOptions,
  SnapshotOptions,
  StoreProblem,
  TagHistoryEntry,
} from './types.js';

const debug = createDebug('dockless:store');

/**
 * A content-addressed image store on disk, without registries and archives:
 * what the builder and the runtime need. Every method is documented on the
 * public `ImageStore`, which extends this class; see it for the terms and
 * the on-disk layout.
 */
export class ImageStoreCore
  implements ContentReader, ContentWriter, ImageReader, ImageWriter, LeaseManager, Snapshotter, Ingester
{
  /** The store's directory (absolute). */
  readonly root: string;
  /** Where the build cache keeps its records and files; see {@link BuildCacheStorage}. */
  readonly buildCache: BuildCacheStorage;
  readonly #paths: StorePaths;
  readonly #docs: DocumentReader;
  readonly #retention: Required<HistoryRetention>;
  readonly #content: ContentStore;
  readonly #images: ImageCatalog;
  readonly #tags: TagStore;
  readonly #leases: LeaseStore;
  readonly #snapshots: SnapshotStore;
  readonly #helperPath: string | undefined;

  /** @internal Use {@link ImageStoreCore.open} (or `ImageStore.open`). */
  protected constructor(opened: OpenedStore) {
    this.root = opened.paths.root;
    this.#paths = opened.paths;
    this.#retention = opened.retention;
    this.#docs = new DocumentReader(opened.paths);
    this.buildCache = new BuildCacheFiles(opened.paths);
    this.#content = new ContentStore(opened.paths);
    this.#images = new ImageCatalog(opened.paths, this.#docs, this.#content);
    this.#tags = new TagStore(opened.paths, this.#docs, this.#content, this.#images);
    this.#leases = new LeaseStore(opened.paths, this.#images);
    this.#helperPath = opened.helperPath;
    this.#snapshots = new SnapshotStore(opened.paths, this.#docs, this.#images, opened.helperPath);
  }

  /**
   * Opens the store at `options.root`; see `ImageStore.open`.
   *
   * @throws {InvalidStateError} when `root` holds an OCI layout of another version, or a corrupt `index.json`.
   * @throws {InvalidArgumentError} when an option is invalid.
   * @throws {PermissionError} when the store directory cannot be created or written.
   */
  static async open(options: ImageStoreOptions = {}): Promise<ImageStoreCore> {
    return new ImageStoreCore(await openStore(options));
  }

  /** {@inheritDoc ContentStore.putBlob} */
  putBlob(data: BlobSource, options: PutBlobOptions = {}): Promise<Descriptor> {
    return this.#content.putBlob(data, options);
  }

  /** {@inheritDoc ContentStore.getBlob} */
  getBlob(digest: string): Promise<Readable> {
    return this.#content.getBlob(digest);
  }

  /** {@inheritDoc ContentStore.readBlob} */
  readBlob(digest: string): Promise<Buffer> {
    return this.#content.readBlob(digest);
  }

  /** {@inheritDoc ContentStore.hasBlob} */
  hasBlob(digest: string): Promise<boolean> {
    return this.#content.hasBlob(digest);
  }

  /** {@inheritDoc ContentStore.blobPath} */
  blobPath(digest: string): string {
    return this.#content.blobPath(digest);
  }

  /** {@inheritDoc ImageCatalog.putImage} */
  putImage(input: PutImageInput): Promise<Descriptor> {
    return this.#images.putImage(input);
  }

  /** {@inheritDoc ImageCatalog.resolve} */
  resolve(image: string): Promise<Descriptor> {
    return this.#images.resolve(image);
  }

  /** {@inheritDoc ImageCatalog.list} */
  list(): Promise<ImageSummary[]> {
    return this.#images.list();
  }

  /** {@inheritDoc ImageCatalog.inspect} */
  inspect(image: string): Promise<ImageDetails> {
    return this.#images.inspect(image);
  }

  /** {@inheritDoc TagStore.tag} */
  tag(image: string, ref: string): Promise<Descriptor> {
    return this.#tags.tag(image, ref);
  }

  /** {@inheritDoc TagStore.untag} */
  untag(ref: string): Promise<void> {
    return this.#tags.untag(ref);
  }

  /** {@inheritDoc TagStore.remove} */
  remove(image: string): Promise<string[]> {
    return this.#tags.remove(image);
  }

  /** {@inheritDoc TagStore.history} */
  history(ref: string): Promise<TagHistoryEntry[]> {
    return this.#tags.history(ref);
  }

  /** {@inheritDoc TagStore.rollback} */
  rollback(ref: string, options: RollbackOptions = {}): Promise<Descriptor> {
    return this.#tags.rollback(ref, options);
  }

  /** {@inheritDoc LeaseStore.lease} */
  lease(id: string, targets: Iterable<string> = [], options: LeaseOptions = {}): Promise<Lease> {
    return this.#leases.lease(id, targets, options);
  }

  /** {@inheritDoc LeaseStore.getLease} */
  getLease(id: string): Promise<Lease> {
    return this.#leases.getLease(id);
  }

  /** {@inheritDoc LeaseStore.releaseLease} */
  releaseLease(id: string): Promise<boolean> {
    return this.#leases.releaseLease(id);
  }

  /** {@inheritDoc LeaseStore.leases} */
  leases(): Promise<LeaseInfo[]> {
    return this.#leases.leases();
  }

  /**
   * Removes what nothing needs: blobs and snapshots unreachable from the
   * tags (`index.json`), from the tag history within the retention setting,
   * and from live leases; expired leases and leases of ended processes; tag
   * history beyond retention. Never removes anything reachable, leased, or
   * written within `gracePeriod`.
   *
   * @returns what was removed (or would be, with `dryRun`).
   * @throws {InvalidStateError} when `index.json` or the history is corrupt (nothing is removed).
   * @example
   * ```ts
   * const { blobs, snapshots, reclaimedBytes } = await store.gc({ gracePeriod: 0 });
   * ```
   */
  async gc(options: GcOptions = {}): Promise<GcResult> {
    const result = await collectGarbage(
      { paths: this.#paths, docs: this.#docs, retention: this.#retention },
      options,
    );
    this.#snapshots.forget(result.blobs as Digest[]);
    debug(
      'gc: %d blobs, %d snapshots, %d leases, %d history entries, %d bytes',
      result.blobs.length,
      result.snapshots.length,
      result.leases.length,
      result.historyEntries,
      result.reclaimedBytes,
    );
    return result;
  }

  /**
   * Verifies the store: every blob's content against its digest, every
   * tag's, history entry's and lease's target and everything it refers to,
   * every snapshot's completion marker. Reads every blob, so it takes time
   * proportional to the store's size. Run it while no other process changes
   * the store for an exact answer.
   *
   * @returns the problems found; empty when the store is healthy.
   * @example
   * ```ts
   * const problems = await store.check();
   * for (const p of problems) console.error(p.kind, p.message);
   * ```
   */
  async check(): Promise<StoreProblem[]> {
    return checkStore({ paths: this.#paths, docs: this.#docs });
  }

  /** {@inheritDoc SnapshotStore.adoptSnapshot} */
  adoptSnapshot(layers: readonly ImageLayerInput[], dir: string, facts: { size: number; entries: number }): Promise<boolean> {
    return this.#snapshots.adoptSnapshot(layers, dir, facts);
  }

  /** {@inheritDoc SnapshotStore.snapshot} */
  snapshot(image: string, options: SnapshotOptions = {}): Promise<ImageSnapshot> {
    return this.#snapshots.snapshot(image, options);
  }

  /** {@inheritDoc SnapshotStore.snapshotPaths} */
  snapshotPaths(image: string): Promise<ImageSnapshot | undefined> {
    return this.#snapshots.snapshotPaths(image);
  }

  /**
   * A directory for temporary files on the store's filesystem (so that
   * what is made there can be renamed into the store, e.g. adopted as a
   * snapshot). It exists once the store is open. Name what you put there
   * with an owner token (`<pid>-<start time>-<random>`, see `ownerToken`),
   * so that opening the store removes what a crashed process left.
   */
  tmpDir(): string {
    return this.#paths.tmp;
  }

  /**
   * Starts an ingest session: blobs written to the ingest area and layers
   * unpacked as they are written, all invisible until
   * {@link IngestSession.commit} (or dropped by {@link IngestSession.discard}).
   * What pull and import write through.
   */
  ingest(): IngestSession {
    return new IngestSession(this.#paths, this.#helperPath);
  }
}
