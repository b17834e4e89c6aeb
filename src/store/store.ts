/**
 * {@link ImageStoreCore}: the store side of `ImageStore` (blobs, images,
 * tags with history and rollback, leases, snapshots, GC and check), composed
 * from one class per concept (content.ts, images.ts, tags.ts,
 * lease-store.ts, snapshot-store.ts, gc.ts, check.ts). Past ~600 lines only
 * because it carries the documentation of the public API: every method is
 * one line handing the call to its concept's class. Registries and archives are not here: the
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
import { IngestSession, type IngestSessionOptions } from './ingest.js';
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
 * what the builder and the runtime need. The public `ImageStore` extends it
 * with `pull`, `push`, `import` and `export`; see it for the terms and the
 * on-disk layout.
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
  putBlob(data: BlobSource, options: PutBlobOptions = {}): Promise<Descriptor> {
    return this.#content.putBlob(data, options);
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
  getBlob(digest: string): Promise<Readable> {
    return this.#content.getBlob(digest);
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
  readBlob(digest: string): Promise<Buffer> {
    return this.#content.readBlob(digest);
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
  hasBlob(digest: string): Promise<boolean> {
    return this.#content.hasBlob(digest);
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
    return this.#content.blobPath(digest);
  }

  /**
   * Writes an image's config and manifest (OCI media types) for layers whose
   * blobs are already in the store. Does not tag it.
   *
   * @returns the manifest's descriptor; tag it with {@link ImageStore.tag}.
   * @throws {NotFoundError} when a layer blob is missing, or `lease` names no lease.
   * @throws {InvalidArgumentError} when a layer descriptor or diffID is malformed, a media type is not a
   *   layer's, a blob's size differs from its descriptor, or the config's `rootfs.diff_ids` differ from the layers'.
   * @example
   * ```ts
   * const manifest = await store.putImage({
   *   config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: { Cmd: ['sh'] } },
   *   layers: [{ descriptor: layerDesc, diffId: 'sha256:…' }],
   * });
   * await store.tag(manifest.digest, 'example.com/app:1');
   * ```
   */
  putImage(input: PutImageInput): Promise<Descriptor> {
    return this.#images.putImage(input);
  }

  /**
   * Resolves an image reference to the descriptor of its manifest (or index).
   * Accepts `name:tag` (short forms normalised: `alpine` is
   * `docker.io/library/alpine:latest`), `name@sha256:…` and `name:tag@sha256:…`
   * (the digest wins, the name is not checked), a bare digest `sha256:…`, or
   * a 64-hex image id.
   *
   * @throws {InvalidArgumentError} when the reference is malformed.
   * @throws {NotFoundError} when no tag or manifest blob matches.
   * @example
   * ```ts
   * const { digest } = await store.resolve('alpine');
   * ```
   */
  resolve(image: string): Promise<Descriptor> {
    return this.#images.resolve(image);
  }

  /**
   * Every tag, sorted by reference, with its image's digest, creation time
   * and size.
   *
   * @throws {InvalidStateError} when `index.json` is corrupt.
   * @example
   * ```ts
   * for (const { reference, digest, size } of await store.list()) console.log(reference, digest, size);
   * ```
   */
  list(): Promise<ImageSummary[]> {
    return this.#images.list();
  }

  /**
   * Everything about an image: manifest, config, layers (with sizes,
   * diffIDs and chainIDs), the config's build history, total size and tags.
   *
   * @throws {InvalidArgumentError} when `image` is malformed, or a document is.
   * @throws {NotFoundError} when it does not resolve, or a document blob is missing.
   * @throws {DigestMismatchError} when a document blob is corrupt.
   * @example
   * ```ts
   * const { config, layers } = await store.inspect('alpine:3.20');
   * console.log(config.config?.Cmd, layers.length);
   * ```
   */
  inspect(image: string): Promise<ImageDetails> {
    return this.#images.inspect(image);
  }

  /**
   * Points tag `ref` at an image, recording the change in the tag's history.
   * Tagging a tag with the image it already points to changes nothing.
   *
   * @param image what to tag: any form {@link ImageStore.resolve} accepts.
   * @param ref the tag, `name[:tag]` (`latest` when omitted).
   * @returns the descriptor the tag now points to.
   * @throws {InvalidArgumentError} when either reference is malformed, or `ref` has a digest.
   * @throws {NotFoundError} when `image` does not resolve, or a blob it needs is missing.
   * @example
   * ```ts
   * await store.tag('sha256:…', 'registry.example.com/team/app:2.1');
   * ```
   */
  tag(image: string, ref: string): Promise<Descriptor> {
    return this.#tags.tag(image, ref);
  }

  /**
   * Removes a tag, recording the change in its history (so a
   * {@link ImageStore.rollback} can restore it). The image stays until GC.
   *
   * @throws {InvalidArgumentError} when `ref` is malformed or has a digest.
   * @throws {NotFoundError} when there is no such tag.
   * @example
   * ```ts
   * await store.untag('myapp:old');
   * ```
   */
  untag(ref: string): Promise<void> {
    return this.#tags.untag(ref);
  }

  /**
   * Removes an image from the tag list, as `docker rmi` does: a tag
   * reference removes that tag; a digest (bare, an image id or `name@digest`)
   * removes every tag that points to it. Content stays until GC.
   *
   * @returns the tags removed (full references).
   * @throws {InvalidArgumentError} when `image` is malformed.
   * @throws {NotFoundError} when no tag matches.
   * @example
   * ```ts
   * await store.remove('alpine');              // ['docker.io/library/alpine:latest']
   * await store.remove('sha256:…');            // every tag of that image
   * ```
   */
  remove(image: string): Promise<string[]> {
    return this.#tags.remove(image);
  }

  /**
   * A tag's history, newest first: every change of what it points to, with
   * times. The first entry is its current state (`digest: null` when the tag
   * is removed). Changes beyond the retention setting are dropped by GC.
   *
   * @throws {InvalidArgumentError} when `ref` is malformed or has a digest.
   * @throws {NotFoundError} when the tag neither exists nor has history.
   * @example
   * ```ts
   * const [current, previous] = await store.history('myapp:latest');
   * ```
   */
  history(ref: string): Promise<TagHistoryEntry[]> {
    return this.#tags.history(ref);
  }

  /**
   * Points a tag back at an earlier target from its history, and records
   * that as a change too. Steps count earlier targets, skipping removals;
   * successive rollbacks keep going back (like undo), and a new
   * {@link ImageStore.tag} starts afresh. A removed tag can be rolled back
   * to its last target.
   *
   * @returns the descriptor the tag now points to.
   * @throws {InvalidArgumentError} when `ref` is malformed or `steps` is not a positive integer.
   * @throws {NotFoundError} when the tag has no history, or the earlier image has been collected.
   * @throws {InvalidStateError} when the history does not go back `steps` targets.
   * @example
   * ```ts
   * await store.tag(v2.digest, 'myapp:latest');
   * await store.rollback('myapp:latest'); // back to what it was before v2
   * ```
   */
  rollback(ref: string, options: RollbackOptions = {}): Promise<Descriptor> {
    return this.#tags.rollback(ref, options);
  }

  /**
   * Takes a lease: GC keeps everything it names until it is released (or
   * expires, or its process ends when `processBound`). Targets are digests
   * of blobs or manifests (a manifest keeps its whole image, snapshots
   * included), chainIDs (keep those snapshots), or image references
   * (resolved to their manifest digest now).
   *
   * @returns a {@link Lease} handle; `AsyncDisposable`.
   * @throws {InvalidArgumentError} when `id` or a target is malformed, or `expiresIn` is negative.
   * @throws {AlreadyExistsError} when a lease with this id exists.
   * @throws {NotFoundError} when a reference target does not resolve.
   * @example
   * ```ts
   * await using lease = await store.lease(`container-${id}`, ['myapp:1.0'], { processBound: true });
   * ```
   */
  lease(id: string, targets: Iterable<string> = [], options: LeaseOptions = {}): Promise<Lease> {
    return this.#leases.lease(id, targets, options);
  }

  /**
   * A handle on an existing lease, e.g. one taken by another process.
   *
   * @throws {NotFoundError} when there is no such lease.
   * @throws {InvalidArgumentError} when `id` is malformed.
   * @example
   * ```ts
   * await (await store.getLease('container-0f3a')).release();
   * ```
   */
  getLease(id: string): Promise<Lease> {
    return this.#leases.getLease(id);
  }

  /**
   * Ends a lease. Releasing a lease that does not exist is not an error.
   *
   * @returns whether the lease existed.
   * @throws {InvalidArgumentError} when `id` is malformed.
   * @example
   * ```ts
   * await store.releaseLease('container-0f3a');
   * ```
   */
  releaseLease(id: string): Promise<boolean> {
    return this.#leases.releaseLease(id);
  }

  /**
   * Every lease, sorted by id, including expired ones GC has not removed yet.
   *
   * @example
   * ```ts
   * const held = (await store.leases()).map((l) => l.id);
   * ```
   */
  leases(): Promise<LeaseInfo[]> {
    return this.#leases.leases();
  }

  /**
   * Waits until every snapshot this process unpacked into the store is on
   * disk. Snapshots are usable as soon as they are published, before their
   * files are flushed (the flush runs in the background and never keeps the
   * process alive); one that a reboot catches unflushed is unpacked again on
   * its next use. Call this before exiting when a reboot should find them
   * in place, as `dockless pull` does.
   *
   * @throws {HelperError} when the flush fails (the snapshots stay usable until the next reboot).
   * @example
   * ```ts
   * await store.pull('docker.io/library/alpine:3.20');
   * await store.flush();
   * ```
   */
  flush(): Promise<void> {
    return this.#snapshots.flush();
  }

  /**
   * Removes what nothing needs: blobs and snapshots unreachable from the
   * tags (`index.json`), from the tag history within the retention setting,
   * and from live leases; expired leases and leases of ended processes; tag
   * history beyond retention. Never removes anything reachable, leased, or
   * written within `gracePeriodMs`.
   *
   * @returns what was removed (or would be, with `dryRun`).
   * @throws {InvalidStateError} when `index.json` or the history is corrupt (nothing is removed).
   * @example
   * ```ts
   * const { blobs, snapshots, reclaimedBytes } = await store.gc({ gracePeriodMs: 0 });
   * ```
   */
  async gc(options: GcOptions = {}): Promise<GcResult> {
    const result = await collectGarbage(
      { paths: this.#paths, docs: this.#docs, retention: this.#retention, helperPath: this.#helperPath },
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

  /**
   * Makes `dir` (moved, not copied) the snapshot of the top layer of
   * `layers` (an image's layers, base first, blobs in the store), instead of
   * unpacking that layer's blob when a container first needs it. For
   * builders that made the layer's tar from `dir` itself: the caller vouches
   * that unpacking the blob would give the same tree (names, types, modes,
   * owners, whole-second mtimes, xattrs, overlayfs whiteouts and opaque
   * directories) as this process's default unpack (rootless unless root)
   * would make it. It is published as an unpack publishes: its files are
   * flushed to disk in the background (see {@link flush}).
   *
   * @returns whether `dir` was adopted; `false` (and `dir` left as it was)
   *   when the snapshot exists already or `dir` is on another filesystem.
   * @throws {InvalidArgumentError} when a diffID is malformed or `layers` is empty.
   * @internal
   */
  adoptSnapshot(
    layers: readonly ImageLayerInput[],
    dir: string,
    facts: { size: number; entries: number },
  ): Promise<boolean> {
    return this.#snapshots.adoptSnapshot(layers, dir, facts);
  }

  /**
   * Makes sure every layer of an image is unpacked (once per chainID, shared
   * by every image that has it) and returns the snapshot directories to
   * stack as overlayfs lower dirs, top-most first, with the image config.
   * Missing layers are unpacked from their blobs, which are verified as they
   * stream; concurrent calls for the same layer, in this or another process,
   * do the work once. An image whose layers are all unpacked is answered
   * from {@link ImageStoreCore.snapshotPaths}'s fast path (no blob read, no
   * lock) unless `onProgress` or `platform` is given. Hold a lease on the image while its snapshots are in
   * use, so GC keeps them.
   *
   * A caller that is not root and has subordinate ids (/etc/subuid and
   * /etc/subgid ranges, newuidmap and newgidmap) gets by default snapshots
   * whose files have the layers' owners as its subordinate ids (see
   * {@link SnapshotOptions.userns}), as its rootless containers see them;
   * without subordinate ids, every file is its own.
   *
   * @throws {InvalidArgumentError} when `image` is malformed, a document is, or a layer tar is; or `userns` maps whose 0 is not the caller.
   * @throws {NotFoundError} when the image or a blob is missing.
   * @throws {DigestMismatchError} when a blob does not match its digest or a layer its diffID; nothing is kept.
   * @throws {UnsafeContentError} when a layer tries to write outside its snapshot; nothing is kept.
   * @throws {AbortError} when `signal` aborts.
   * @throws {HelperError} when the native helper fails to apply device nodes, whiteouts or xattrs.
   * @example
   * ```ts
   * const { lowerDirs, config } = await store.snapshot('alpine:3.20', {
   *   onProgress: (e) => { if (e.type === 'layer-done') console.log('layer', e.index, e.cached ? 'cached' : 'unpacked'); },
   * });
   * ```
   */
  snapshot(image: string, options: SnapshotOptions = {}): Promise<ImageSnapshot> {
    return this.#snapshots.snapshot(image, options);
  }

  /**
   * The snapshot of an image whose layers are all unpacked already, or
   * `undefined` when one is not. {@link ImageStore.snapshot} tries it first,
   * so call this only to know whether an image is unpacked.
   * Cheap: it reads no blob, only `index.json` for a tag (a bare digest
   * skips that) and a small record written by `snapshot()` (cached in
   * memory), and stats each layer's marker. As with `snapshot()`, hold a
   * lease on the image while the directories are in use; `options.rootless`
   * and `options.userns` pick the same snapshots as they do for `snapshot()`.
   *
   * @throws {InvalidArgumentError} when `image` is malformed.
   * @throws {NotFoundError} when a tag does not exist.
   * @example
   * ```ts
   * if ((await store.snapshotPaths(ref)) === undefined) console.log(`${ref}: not unpacked yet`);
   * ```
   */
  snapshotPaths(image: string, options: Pick<SnapshotOptions, 'rootless' | 'userns'> = {}): Promise<ImageSnapshot | undefined> {
    return this.#snapshots.snapshotPaths(image, options);
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
   * What pull and import write through. `options.rootless` and
   * `options.userns` pick the variant of the snapshots it unpacks, as for
   * {@link ImageStoreCore.snapshot}.
   */
  ingest(options: IngestSessionOptions = {}): IngestSession {
    return new IngestSession(this.#paths, this.#helperPath, options);
  }
}
