/**
 * {@link ImageStore}: a crash-safe, multi-process OCI image store with tags,
 * tag history and rollback, snapshots (unpacked layers), leases and GC.
 *
 * @module
 */

import { statSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import type { Readable } from 'node:stream';
import createDebug from 'debug';
import PQueue from 'p-queue';
import {
  AbortError,
  AlreadyExistsError,
  InvalidArgumentError,
  InvalidStateError,
  NotFoundError,
  PermissionError,
} from '../errors.js';
import { chainIds, isDigest, parseDigest, shortDigest, type Digest } from '../oci/digest.js';
import {
  isIndexMediaType,
  isLayerMediaType,
  isManifestMediaType,
  MEDIA_TYPE_OCI_CONFIG,
  MEDIA_TYPE_OCI_MANIFEST,
} from '../oci/media-types.js';
import { parseReference, type Reference } from '../oci/reference.js';
import {
  OCI_LAYOUT_VERSION,
  type Descriptor,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
} from '../oci/types.js';
import { exportImage } from '../transfer/archive/export.js';
import { importImage } from '../transfer/archive/import.js';
import type { ExportOptions, ExportResult, ImportedImage, ImportOptions } from '../transfer/archive/types.js';
import { pullImage } from '../transfer/pull.js';
import { pushImage } from '../transfer/push.js';
import type { PullOptions, PullResult, PushOptions, PushResult } from '../transfer/types.js';
import { commitBlob, discardIngest, ingestBlob, openBlob, readBlobVerified, type BlobSource } from './blobs.js';
import { checkStore } from './check.js';
import { DocumentReader, type LoadedImage } from './documents.js';
import {
  ensureDir,
  isAbandoned,
  isErrno,
  removeTree,
  selfStartTime,
  touch,
  writeFileAtomic,
} from '../util/index.js';
import { collectGarbage } from './gc.js';
import { Lease } from './lease.js';
import { checkLeaseId, deleteLease, listLeases, readLease, writeLease, type LeaseInfo } from './leases.js';
import { cleanAbandonedLockAttempts, withLock } from './lock.js';
import { defaultStoreRoot, SNAPSHOT_MARKER, SNAPSHOT_TMP_PREFIX, StorePaths } from './paths.js';
import {
  currentTargets,
  emptyIndex,
  entryReference,
  indexTime,
  parseTagReference,
  readHistory,
  readIndex,
  reconciledChanges,
  recordChange,
  tagEntry,
  writeHistory,
  writeIndex,
  type HistoryFile,
  type TagChangeRecord,
} from './refs.js';
import { adoptSnapshot, SnapshotManager } from './snapshots.js';
import { snapshotVariant, type SnapshotVariant } from './snapshot-variant.js';
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

/** The tag history kept by default: 10 changes per tag, none older than 30 days. */
export const DEFAULT_HISTORY_RETENTION: Readonly<Required<HistoryRetention>> = Object.freeze({
  maxEntries: 10,
  maxAge: 30 * 24 * 60 * 60 * 1000,
});

const OCTET_STREAM = 'application/octet-stream';
const IMAGE_ID_RE = /^[a-f0-9]{64}$/;
const RECORD_VERSION = 1;

/** The state read and written under the store lock by a tag change. */
interface RefState {
  index: ImageIndex;
  history: HistoryFile;
  indexTime: string;
  indexDirty: boolean;
  historyDirty: boolean;
}

/** The fast-path record of an unpacked image, `dockless/images/<hex>.json`. */
interface ImageRecord {
  version: 1;
  digest: Digest;
  manifest: Descriptor;
  config: ImageConfig;
  diffIds: Digest[];
  chainIds: Digest[];
}

/** What an image reference given to the store names. */
interface ParsedImageRef {
  /** The digest it pins, when it pins one (bare digest, image id or `name@digest`). */
  digest?: Digest;
  /** The parsed reference, unless it was a bare digest or image id. */
  ref?: Reference;
}

/**
 * A content-addressed image store on disk: blobs, manifests and configs in a
 * standard OCI image layout (so skopeo, umoci and podman read it as it is),
 * tags with their history and rollback, layers unpacked once per chainID as
 * *snapshots*, leases, garbage collection and a consistency check.
 *
 * Several processes may use one store at once: tag changes are
 * read-modify-writes of `index.json` under a cross-process lock, every file
 * is written atomically, and a crash at any instant leaves a store that opens
 * clean, with no partial blob or snapshot visible.
 *
 * Terms: a *blob* is content named by its *digest*; a *descriptor* points to a
 * blob (media type, digest, size); a *reference* is `name:tag` or
 * `name@digest`, normalised as Docker does (`alpine` →
 * `docker.io/library/alpine:latest`); a layer's *diffID* is the digest of its
 * uncompressed tar and its *chainID* names it with every layer below it; a
 * *snapshot* is one layer unpacked, immutable, named by its chainID.
 *
 * Tags are stored in `index.json` as manifest descriptors whose
 * `org.opencontainers.image.ref.name` (and `io.containerd.image.name`)
 * annotation is the full reference, so other tools address an image as
 * `oci:<root>:docker.io/library/alpine:latest` (skopeo) or
 * `--image <root>:docker.io/library/alpine:latest` (umoci).
 *
 * @example
 * ```ts
 * const store = await ImageStore.open();
 * const layer = await store.putBlob(gzippedTar, { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' });
 * const image = await store.putImage({
 *   config: { architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [] } },
 *   layers: [{ descriptor: layer, diffId }],
 * });
 * await store.tag(image.digest, 'myapp:1.0');
 * const { lowerDirs, config } = await store.snapshot('myapp:1.0');
 * ```
 */
export class ImageStore {
  /** The store's directory (absolute). */
  readonly root: string;
  readonly #paths: StorePaths;
  readonly #docs: DocumentReader;
  readonly #snapshots: SnapshotManager;
  readonly #retention: Required<HistoryRetention>;
  readonly #records = new Map<Digest, ImageRecord>();
  #indexCache: { ino: number; mtimeMs: number; size: number; targets: Map<string, Descriptor> } | undefined;

  private constructor(paths: StorePaths, retention: Required<HistoryRetention>) {
    this.root = paths.root;
    this.#paths = paths;
    this.#docs = new DocumentReader(paths);
    this.#snapshots = new SnapshotManager(paths);
    this.#retention = retention;
  }

  /**
   * Opens the store at `root`, creating it when needed (an empty OCI image
   * layout plus dockless's state directory), and removes what crashed
   * processes left behind (partial blobs, snapshots being unpacked,
   * temporary files).
   *
   * @throws {InvalidStateError} when `root` holds an OCI layout of another version, or a corrupt `index.json`.
   * @throws {InvalidArgumentError} when a retention setting is not a non-negative number.
   * @throws {PermissionError} when the store directory cannot be created or written.
   * @example
   * ```ts
   * const store = await ImageStore.open({ root: '/srv/images', historyRetention: { maxEntries: 20 } });
   * ```
   */
  static async open(options: ImageStoreOptions = {}): Promise<ImageStore> {
    const retention = { ...DEFAULT_HISTORY_RETENTION, ...options.historyRetention };
    for (const [key, value] of Object.entries(retention)) {
      if (typeof value !== 'number' || !(value >= 0)) {
        throw new InvalidArgumentError(`open store: historyRetention.${key} must be a non-negative number`);
      }
    }
    const paths = new StorePaths(resolvePath(options.root ?? defaultStoreRoot()));
    try {
      await ensureDir(join(paths.blobs, 'sha256'));
    } catch (err) {
      if (isErrno(err, 'EACCES', 'EPERM', 'EROFS')) {
        throw new PermissionError(`open store \`${paths.root}\`: ${(err as NodeJS.ErrnoException).code}`, {
          cause: err,
          path: paths.root,
        });
      }
      throw err;
    }
    await Promise.all([
      ensureDir(paths.leases),
      ensureDir(paths.images),
      // Snapshots hold images' setuid binaries and device nodes: keep other users out.
      ensureDir(paths.snapshots, 0o700),
      ensureDir(paths.ingest, 0o700),
      ensureDir(paths.tmp, 0o700),
      ensureDir(paths.trash, 0o700),
      ensureDir(paths.locks),
    ]);
    await cleanAbandonedLockAttempts(paths.locks);
    if (!(await layoutReady(paths))) {
      await withLock(paths.storeLock, async () => {
        if (await layoutReady(paths)) return;
        await writeFileAtomic(paths.ociLayout, `${JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION })}\n`, paths.tmp);
        try {
          await stat(paths.index);
        } catch (err) {
          if (!isErrno(err, 'ENOENT')) throw err;
          await writeIndex(paths, emptyIndex());
        }
      });
    }
    await readIndex(paths);
    await cleanAbandoned(paths);
    debug('opened store %s', paths.root);
    return new ImageStore(paths, retention);
  }

  // ---------------------------------------------------------------- blobs

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
        if (options.lease !== undefined) await this.#addToLeaseLocked(leaseId(options.lease), [blob.digest]);
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
    return openBlob(this.#paths, d, await this.#blobSize(d));
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
    return (await this.#blobSize(parseDigest(digest))) !== undefined;
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

  // ---------------------------------------------------------------- images

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
  async putImage(input: PutImageInput): Promise<Descriptor> {
    const layers = input.layers.map((layer, i) => {
      const where = `put image: layer ${i}`;
      if (typeof layer?.descriptor !== 'object' || layer.descriptor === null) {
        throw new InvalidArgumentError(`${where}: missing descriptor`);
      }
      const { mediaType, size } = layer.descriptor;
      const digest = parseDigest(layer.descriptor.digest);
      const diffId = parseDigest(layer.diffId);
      if (typeof mediaType !== 'string' || !isLayerMediaType(mediaType)) {
        throw new InvalidArgumentError(`${where}: media type ${JSON.stringify(mediaType)} is not a layer media type`);
      }
      if (!Number.isSafeInteger(size) || size < 0) throw new InvalidArgumentError(`${where}: invalid size`);
      const descriptor: Descriptor = { mediaType, digest, size };
      if (layer.descriptor.annotations !== undefined) descriptor.annotations = layer.descriptor.annotations;
      if (layer.descriptor.urls !== undefined) descriptor.urls = layer.descriptor.urls;
      return { descriptor, diffId };
    });
    const diffIds = layers.map((l) => l.diffId);
    const config: ImageConfig = { ...input.config };
    if (config.rootfs === undefined || (config.rootfs.diff_ids?.length ?? 0) === 0) {
      config.rootfs = { type: 'layers', diff_ids: diffIds };
    } else if (
      config.rootfs.diff_ids.length !== diffIds.length ||
      config.rootfs.diff_ids.some((d, i) => d !== diffIds[i])
    ) {
      throw new InvalidArgumentError("put image: the config's rootfs.diff_ids differ from the layers' diffIDs");
    }
    if (typeof config.architecture !== 'string' || typeof config.os !== 'string') {
      throw new InvalidArgumentError('put image: the config needs architecture and os');
    }
    const configBytes = Buffer.from(JSON.stringify(config));
    const configBlob = await ingestBlob(this.#paths, configBytes, {});
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPE_OCI_MANIFEST,
      config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: configBlob.digest, size: configBlob.size },
      layers: layers.map((l) => l.descriptor),
    };
    if (input.annotations !== undefined && Object.keys(input.annotations).length > 0) {
      manifest.annotations = { ...input.annotations };
    }
    const manifestBlob = await ingestBlob(this.#paths, Buffer.from(JSON.stringify(manifest)), {});
    try {
      await withLock(this.#paths.storeLock, async () => {
        for (const [i, { descriptor }] of layers.entries()) {
          const size = await this.#blobSize(descriptor.digest);
          if (size === undefined) {
            throw new NotFoundError(`put image: layer ${i} blob ${descriptor.digest} is not in the store`, {
              path: this.#paths.blob(descriptor.digest),
            });
          }
          if (size !== descriptor.size) {
            throw new InvalidArgumentError(
              `put image: layer ${i} blob ${descriptor.digest} is ${size} bytes, its descriptor says ${descriptor.size}`,
            );
          }
        }
        await commitBlob(this.#paths, configBlob);
        await commitBlob(this.#paths, manifestBlob);
        if (input.lease !== undefined) {
          await this.#addToLeaseLocked(leaseId(input.lease), [configBlob.digest, manifestBlob.digest]);
        }
      });
    } catch (err) {
      await Promise.all([discardIngest(configBlob), discardIngest(manifestBlob)]);
      throw err;
    }
    debug('image %s: stored (%d layers)', shortDigest(manifestBlob.digest), layers.length);
    return { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: manifestBlob.digest, size: manifestBlob.size };
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
  async resolve(image: string): Promise<Descriptor> {
    const parsed = parseImageRef(image);
    if (parsed.digest !== undefined) return this.#resolveDigest(parsed.digest, image);
    const key = parsed.ref!.toString();
    const entry = (await this.#targets()).get(key);
    if (entry === undefined) throw new NotFoundError(`image ${key}: not found`);
    return plainDescriptor(entry);
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
  async tag(image: string, ref: string): Promise<Descriptor> {
    const target = parseTagReference(ref, 'tag');
    const descriptor = await this.resolve(image);
    await this.#withRefs(async (state) => {
      await this.#checkComplete(descriptor);
      this.#setTag(state, target, descriptor, { action: 'tag' });
    });
    debug('tag %s -> %s', target.toString(), shortDigest(descriptor.digest));
    return descriptor;
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
  async untag(ref: string): Promise<void> {
    const target = parseTagReference(ref, 'untag');
    await this.#withRefs((state) => {
      if (!this.#setTag(state, target, undefined, { action: 'untag' })) {
        throw new NotFoundError(`untag ${target.toString()}: no such tag`);
      }
    });
    debug('untag %s', target.toString());
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
  async remove(image: string): Promise<string[]> {
    const parsed = parseImageRef(image);
    const removed = await this.#withRefs((state) => {
      const refs: string[] = [];
      for (const entry of [...state.index.manifests]) {
        const ref = entryReference(entry);
        if (ref === undefined) continue;
        const matches =
          parsed.digest !== undefined ? entry.digest === parsed.digest : ref.toString() === parsed.ref!.toString();
        if (matches && this.#setTag(state, ref, undefined, { action: 'untag' })) refs.push(ref.toString());
      }
      return refs;
    });
    if (removed.length === 0) throw new NotFoundError(`remove ${image}: no tag matches`);
    debug('remove %s: untagged %s', image, removed.join(', '));
    return removed;
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
  async list(): Promise<ImageSummary[]> {
    const targets = await this.#targets(true);
    const summaries: ImageSummary[] = [];
    for (const [reference, entry] of [...targets].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const summary: ImageSummary = {
        reference,
        digest: entry.digest,
        mediaType: entry.mediaType,
        size: entry.size,
      };
      try {
        const image = await this.#docs.image(plainDescriptor(entry));
        summary.size = imageSize(image);
        if (image.config.created !== undefined) summary.created = image.config.created;
      } catch (err) {
        debug('list: %s: %s', reference, (err as Error).message);
      }
      summaries.push(summary);
    }
    return summaries;
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
  async inspect(image: string): Promise<ImageDetails> {
    const parsed = parseImageRef(image);
    const descriptor = await this.resolve(image);
    const loaded = await this.#docs.image(descriptor);
    const targets = await this.#targets();
    const tags = [...targets].filter(([, e]) => e.digest === descriptor.digest).map(([r]) => r).sort();
    return {
      reference: parsed.ref?.toString() ?? descriptor.digest,
      digest: descriptor.digest,
      mediaType: descriptor.mediaType,
      manifestDescriptor: loaded.manifestDescriptor,
      manifest: loaded.manifest,
      configDigest: loaded.manifest.config.digest,
      config: loaded.config,
      layers: loaded.manifest.layers.map((layer, i) => ({
        digest: layer.digest,
        size: layer.size,
        mediaType: layer.mediaType,
        diffId: loaded.diffIds[i]!,
        chainId: loaded.chainIds[i]!,
      })),
      history: loaded.config.history ?? [],
      size: imageSize(loaded),
      tags,
    };
  }

  // ---------------------------------------------------------------- import and export

  /**
   * Imports images, as `docker load` (an OCI image layout directory, an
   * oci-archive, a docker-archive, plain or gzip/zstd-compressed) or
   * `docker import` (a root filesystem tar, one layer) would, and tags them.
   * The format is sniffed unless `options.format` says it.
   *
   * The source is read once: each blob streams into the store verified
   * against its digest (an OCI layout's blobs against their names, a
   * docker-archive's layers against the config's diffIDs). docker-archive
   * layers and root filesystem tars are stored as they are (uncompressed
   * stays uncompressed, so the blob digest is the diffID); docker-archive
   * configs byte for byte, so the image ID is kept. Tags come from an OCI
   * layout's `io.containerd.image.name` (or a full
   * `org.opencontainers.image.ref.name`; a bare tag needs `options.baseName`),
   * a docker-archive's `RepoTags`, and `options.tag`. Tagging happens once
   * everything is stored and verified, so a failed or aborted import tags
   * nothing (blobs it stored stay until GC, as do imported images left
   * untagged).
   *
   * @returns one entry per tag given, and one without `reference` per untagged image.
   * @throws {NotFoundError} when `path` does not exist, or a blob its manifests need is not in it.
   * @throws {InvalidArgumentError} when the source is malformed (not a tar, truncated, no `manifest.json` or
   *   `index.json`) or an option is (rootfs options for an archive, `tag` for several images).
   * @throws {DigestMismatchError} when a blob does not match its digest or a layer its diffID; nothing is tagged.
   * @throws {AbortError} when `options.signal` aborts; nothing is tagged.
   * @example
   * ```ts
   * const [{ reference }] = await store.import('alpine.tar');
   * await store.import('rootfs.tar.gz', { tag: 'mybase:1', changes: ['CMD ["/bin/sh"]'] });
   * ```
   */
  async import(path: string, options: ImportOptions = {}): Promise<ImportedImage[]> {
    return importImage(this, path, options);
  }

  /**
   * Writes images to `path` as a docker-archive (`docker save`, the
   * default), an OCI layout directory or an oci-archive; see
   * {@link ExportOptions.format}. Every blob is verified as it is copied out,
   * and a layer written decompressed (docker-archive) against its diffID.
   * Archives are written beside `path` and renamed into place, so a failure
   * or abort leaves nothing there.
   *
   * @param images a reference or several; tags are written as the images' names, a digest unnamed.
   * @throws {NotFoundError} when an image, a blob of it, or its manifest for the platform is missing.
   * @throws {AlreadyExistsError} when `path` is a directory (archives), or one neither empty nor an OCI layout.
   * @throws {DigestMismatchError} when a blob in the store is corrupt; nothing is left at `path`.
   * @throws {AbortError} when `options.signal` aborts; nothing is left at `path`.
   * @example
   * ```ts
   * await store.export('alpine:3.20', 'alpine.tar');                          // docker load -i alpine.tar
   * await store.export(['app:1', 'app:2'], 'layout', { format: 'oci' });      // skopeo copy oci:layout:… …
   * ```
   */
  async export(images: string | readonly string[], path: string, options: ExportOptions = {}): Promise<ExportResult> {
    return exportImage(this, images, path, options);
  }

  // ---------------------------------------------------------------- registries

  /**
   * Pulls an image from its registry (`docker pull`): the manifest the
   * reference names (a tag, or `name@digest`), the platform's manifest when
   * that is an image index or Docker manifest list (this host's, or
   * `options.platform`), the config and the layers. Layers the store has are
   * skipped; the others are downloaded in parallel, verified against their
   * digests and unpacked as snapshots in the same pass, resumed with `Range`
   * requests when a connection drops, retried with backoff on 5xx. Nothing
   * becomes visible until the whole image has checked out; then the tag is
   * set (a pull by digest sets none and holds the image with the lease
   * `pull-sha256-<hex>` instead). Credentials come from `options.credentials`,
   * else from the Docker and Podman auth files; plain HTTP is used only for
   * loopback registries and those named in `options.insecure`.
   *
   * @returns the digest the reference resolves to, the platform manifest, and the bytes downloaded.
   * @throws {InvalidArgumentError} when the reference or an option is malformed, or the registry serves a
   *   malformed or Docker schema 1 manifest.
   * @throws {NotFoundError} when the registry has no such manifest or repository, or the index no manifest for the platform.
   * @throws {PermissionError} when the registry refuses access; the message names the credentials used or missing.
   * @throws {DigestMismatchError} when a manifest, config or layer does not match its digest or size, or a layer its
   *   diffID; nothing is stored.
   * @throws {UnavailableError} naming the registry when it cannot be reached or keeps failing.
   * @throws {AbortError} when `options.signal` aborts; nothing is stored.
   * @example
   * ```ts
   * const { digest } = await store.pull('ghcr.io/acme/app:1.4', {
   *   platform: 'linux/arm64',
   *   onProgress: (e) => { if (e.type === 'layer') console.log(e.index, e.state, e.bytes, '/', e.size); },
   * });
   * const { lowerDirs } = await store.snapshot('ghcr.io/acme/app:1.4', { platform: 'linux/arm64' });
   * ```
   */
  async pull(reference: string, options: PullOptions = {}): Promise<PullResult> {
    return pullImage(this, reference, options);
  }

  /**
   * Pushes an image to a registry (`docker push`): to `options.to`, else to
   * the reference given. Blobs the registry has are skipped (`HEAD`), blobs
   * another repository of the same registry is known to have are mounted,
   * the others uploaded whole or in `options.chunkSize` chunks; the
   * manifests go last (an index's manifests, then the index), so the tag
   * never names an incomplete image. An index of which the store holds one
   * platform (as a pull leaves it) is pushed as that platform's manifest.
   *
   * @returns the reference and digest pushed: `name@digest` names exactly this image on the registry.
   * @throws {InvalidArgumentError} when a reference or an option is malformed, or the registry refuses the manifest.
   * @throws {NotFoundError} when the image, or a blob it needs, is not in the store.
   * @throws {PermissionError} when the registry refuses access; the message names the credentials used or missing.
   * @throws {UnavailableError} naming the registry when it cannot be reached or keeps failing.
   * @throws {AbortError} when `options.signal` aborts; the manifest is not pushed.
   * @example
   * ```ts
   * await store.tag(built.digest, 'registry.example.com/team/app:2.0');
   * const { digest } = await store.push('registry.example.com/team/app:2.0', {
   *   credentials: { username: 'ci', password: process.env.REGISTRY_TOKEN ?? '' },
   * });
   * ```
   */
  async push(image: string, options: PushOptions = {}): Promise<PushResult> {
    return pushImage(this, image, options);
  }

  // ---------------------------------------------------------------- tag history

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
  async history(ref: string): Promise<TagHistoryEntry[]> {
    const key = parseTagReference(ref, 'history').toString();
    const [index, history, time] = await Promise.all([
      readIndex(this.#paths),
      readHistory(this.#paths),
      indexTime(this.#paths),
    ]);
    const changes = reconciledChanges(history, key, currentTargets(index).get(key), time);
    if (changes.length === 0) throw new NotFoundError(`history ${key}: no such tag`);
    return changes
      .slice()
      .reverse()
      .map((c, i) => ({ digest: c.digest, time: c.time, action: c.action, current: i === 0 }));
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
  async rollback(ref: string, options: RollbackOptions = {}): Promise<Descriptor> {
    const target = parseTagReference(ref, 'rollback');
    const key = target.toString();
    const steps = options.steps ?? 1;
    if (!Number.isSafeInteger(steps) || steps < 1) {
      throw new InvalidArgumentError(`rollback ${key}: steps must be a positive integer, got ${String(steps)}`);
    }
    const descriptor = await this.#withRefs(async (state) => {
      const changes = reconciledChanges(state.history, key, currentTargets(state.index).get(key), state.indexTime);
      if (changes.length === 0) throw new NotFoundError(`rollback ${key}: no such tag`);
      const chosen = rollbackTarget(changes, steps);
      if (chosen === undefined) {
        throw new InvalidStateError(`rollback ${key}: the history does not go back ${steps} target${steps === 1 ? '' : 's'}`);
      }
      const actual = await this.#blobSize(chosen.digest!);
      if (actual === undefined) {
        throw new NotFoundError(`rollback ${key}: image ${chosen.digest} has been garbage-collected`);
      }
      const size = chosen.size ?? actual;
      const descriptor =
        chosen.mediaType !== undefined
          ? { mediaType: chosen.mediaType, digest: chosen.digest!, size }
          : await this.#docs.describe(chosen.digest!, size);
      await this.#checkComplete(descriptor);
      this.#setTag(state, target, descriptor, { action: 'rollback', restores: chosen.seq });
      return descriptor;
    });
    debug('rollback %s -> %s', key, shortDigest(descriptor.digest));
    return descriptor;
  }

  // ---------------------------------------------------------------- leases

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
  async getLease(id: string): Promise<Lease> {
    checkLeaseId(id);
    if ((await readLease(this.#paths, id)) === undefined) throw new NotFoundError(`lease ${id}: not found`);
    return this.#leaseHandle(id);
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
  async releaseLease(id: string): Promise<boolean> {
    checkLeaseId(id);
    const existed = await withLock(this.#paths.storeLock, () => deleteLease(this.#paths, id));
    debug('lease %s: released', id);
    return existed;
  }

  /**
   * Every lease, sorted by id, including expired ones GC has not removed yet.
   *
   * @example
   * ```ts
   * const held = (await store.leases()).map((l) => l.id);
   * ```
   */
  async leases(): Promise<LeaseInfo[]> {
    return (await listLeases(this.#paths)).leases;
  }

  // ---------------------------------------------------------------- gc and check

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
    for (const digest of result.blobs) this.#records.delete(digest);
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

  // ---------------------------------------------------------------- snapshots

  /**
   * Makes `dir` (moved, not copied) the snapshot of the top layer of
   * `layers` (an image's layers, base first, blobs in the store), instead of
   * unpacking that layer's blob when a container first needs it. For
   * builders that made the layer's tar from `dir` itself: the caller vouches
   * that unpacking the blob would give the same tree (names, types, modes,
   * owners, whole-second mtimes, xattrs, overlayfs whiteouts and opaque
   * directories) as this process's default unpack (rootless unless root)
   * would make it.
   *
   * @returns whether `dir` was adopted; `false` (and `dir` left as it was)
   *   when the snapshot exists already or `dir` is on another filesystem.
   * @throws {InvalidArgumentError} when a diffID is malformed or `layers` is empty.
   * @internal
   */
  async adoptSnapshot(layers: readonly ImageLayerInput[], dir: string, facts: { size: number; entries: number }): Promise<boolean> {
    if (layers.length === 0) throw new InvalidArgumentError('adopt snapshot: no layers');
    const ids = chainIds(layers.map((l) => parseDigest(l.diffId)));
    const top = layers.at(-1)!;
    return adoptSnapshot(
      this.#paths,
      { chainId: ids.at(-1)!, diffId: parseDigest(top.diffId), parent: ids.at(-2) ?? null, descriptor: top.descriptor },
      dir,
      facts,
      snapshotVariant(undefined),
    );
  }

  /**
   * Makes sure every layer of an image is unpacked (once per chainID, shared
   * by every image that has it) and returns the snapshot directories to
   * stack as overlayfs lower dirs, top-most first, with the image config.
   * Missing layers are unpacked from their blobs, which are verified as they
   * stream; concurrent calls for the same layer, in this or another process,
   * do the work once. Hold a lease on the image while its snapshots are in
   * use, so GC keeps them.
   *
   * @throws {InvalidArgumentError} when `image` is malformed, a document is, or a layer tar is.
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
  async snapshot(image: string, options: SnapshotOptions = {}): Promise<ImageSnapshot> {
    const descriptor = await this.resolve(image);
    const loaded = await this.#docs.image(descriptor, options.platform);
    const { manifest, diffIds, chainIds } = loaded;
    const total = manifest.layers.length;
    const concurrency = options.concurrency ?? 3;
    if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
      throw new InvalidArgumentError(`snapshot ${image}: concurrency must be a positive integer`);
    }
    const queue = new PQueue({ concurrency });
    const emit = options.onProgress;
    const variant = snapshotVariant(options.rootless);
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

  /**
   * The snapshot of an image whose layers are all unpacked already, or
   * `undefined` when one is not (then call {@link ImageStore.snapshot}).
   * Cheap: it reads no blob, only `index.json` for a tag (a bare digest
   * skips that) and a small record written by `snapshot()` (cached in
   * memory), and stats each layer's marker. As with `snapshot()`, hold a
   * lease on the image while the directories are in use; `options.rootless`
   * picks the same snapshots as it does for `snapshot()`.
   *
   * @throws {InvalidArgumentError} when `image` is malformed.
   * @throws {NotFoundError} when a tag does not exist.
   * @example
   * ```ts
   * const snap = (await store.snapshotPaths(ref)) ?? (await store.snapshot(ref));
   * ```
   */
  async snapshotPaths(image: string, options: Pick<SnapshotOptions, 'rootless'> = {}): Promise<ImageSnapshot | undefined> {
    const variant = snapshotVariant(options.rootless);
    const parsed = parseImageRef(image);
    let digest = parsed.digest;
    if (digest === undefined) {
      const key = parsed.ref!.toString();
      const entry = (await this.#targets()).get(key);
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
      // Synchronous stats: a few microseconds each, cheaper than a thread-pool round trip.
      if (statSync(join(this.#paths.snapshot(chainId, variant), SNAPSHOT_MARKER), { throwIfNoEntry: false }) === undefined) {
        return undefined;
      }
    }
    return this.#snapshotOf(record, variant);
  }

  // ---------------------------------------------------------------- internals

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

  /** The current tags of `index.json`, re-parsed only when the file changed. */
  async #targets(fresh = false): Promise<Map<string, Descriptor>> {
    let st;
    try {
      st = await stat(this.#paths.index);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return new Map();
      throw err;
    }
    const cached = this.#indexCache;
    if (!fresh && cached && cached.ino === st.ino && cached.mtimeMs === st.mtimeMs && cached.size === st.size) {
      return cached.targets;
    }
    const targets = currentTargets(await readIndex(this.#paths));
    this.#indexCache = { ino: st.ino, mtimeMs: st.mtimeMs, size: st.size, targets };
    return targets;
  }

  async #resolveDigest(digest: Digest, input: string): Promise<Descriptor> {
    const index = await readIndex(this.#paths);
    const entry = index.manifests.find((e) => e.digest === digest);
    if (entry !== undefined) return plainDescriptor(entry);
    const size = await this.#blobSize(digest);
    if (size === undefined) throw new NotFoundError(`image ${input}: not found`);
    return this.#docs.describe(digest, size);
  }

  async #blobSize(digest: Digest): Promise<number | undefined> {
    try {
      return (await stat(this.#paths.blob(digest))).size;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  /**
   * Checks (under the store lock) that an image's blobs are all present, so
   * that a tag never points at an incomplete image. For an index, the
   * manifests present must be complete, and one at least must be.
   */
  async #checkComplete(descriptor: Descriptor): Promise<void> {
    const missing = async (d: Descriptor, what: string): Promise<void> => {
      const size = await this.#blobSize(d.digest);
      if (size === undefined) {
        throw new NotFoundError(`image ${shortDigest(descriptor.digest)}: ${what} ${d.digest} is missing`, {
          path: this.#paths.blob(d.digest),
        });
      }
    };
    await missing(descriptor, 'manifest');
    if (isIndexMediaType(descriptor.mediaType)) {
      const index = await this.#docs.json<ImageIndex>(descriptor.digest);
      let present = 0;
      for (const m of index.manifests ?? []) {
        if ((await this.#blobSize(m.digest)) === undefined) continue;
        present++;
        await this.#checkComplete(m);
      }
      if (present === 0) {
        throw new NotFoundError(`image ${shortDigest(descriptor.digest)}: none of its index's manifests is in the store`);
      }
      return;
    }
    if (!isManifestMediaType(descriptor.mediaType)) return;
    const manifest = await this.#docs.json<ImageManifest>(descriptor.digest);
    await missing(manifest.config, 'config');
    for (const layer of manifest.layers ?? []) await missing(layer, 'layer');
  }

  async #withRefs<T>(fn: (state: RefState) => Promise<T> | T): Promise<T> {
    return withLock(this.#paths.storeLock, async () => {
      const [index, history, time] = await Promise.all([
        readIndex(this.#paths),
        readHistory(this.#paths),
        indexTime(this.#paths),
      ]);
      const state: RefState = { index, history, indexTime: time, indexDirty: false, historyDirty: false };
      const result = await fn(state);
      // index.json first: it is the truth; a crash before the history write shows as an 'external' change.
      if (state.indexDirty) await writeIndex(this.#paths, state.index);
      if (state.historyDirty) await writeHistory(this.#paths, state.history);
      return result;
    });
  }

  /**
   * Points `ref` at `target` (or removes it) in `state`, recording the
   * change. Returns false when nothing changed.
   */
  #setTag(
    state: RefState,
    ref: Reference,
    target: Descriptor | undefined,
    change: Pick<TagChangeRecord, 'action' | 'restores'>,
  ): boolean {
    const key = ref.toString();
    const before = currentTargets(state.index).get(key);
    if (before?.digest === target?.digest && (target === undefined || before?.mediaType === target.mediaType)) {
      return false;
    }
    const manifests: Descriptor[] = [];
    let placed = false;
    for (const entry of state.index.manifests) {
      if (entryReference(entry)?.toString() !== key) {
        manifests.push(entry);
      } else if (target !== undefined && !placed) {
        manifests.push(tagEntry(ref, target));
        placed = true;
      }
    }
    if (target !== undefined && !placed) manifests.push(tagEntry(ref, target));
    state.index.manifests = manifests;
    state.indexDirty = true;
    const record: Omit<TagChangeRecord, 'seq' | 'time'> = { digest: target?.digest ?? null, action: change.action };
    if (target !== undefined) {
      record.mediaType = target.mediaType;
      record.size = target.size;
    }
    if (change.restores !== undefined) record.restores = change.restores;
    recordChange(state.history, key, before, state.indexTime, record);
    state.historyDirty = true;
    return true;
  }

  async #leaseTargets(targets: Iterable<string>): Promise<Digest[]> {
    const digests = new Set<Digest>();
    for (const target of targets) {
      if (typeof target !== 'string') throw new InvalidArgumentError('lease: targets must be strings');
      const parsed = parseImageRef(target);
      digests.add(parsed.digest ?? (await this.resolve(target)).digest);
    }
    return [...digests];
  }

  async #addToLeaseLocked(id: string, digests: Digest[]): Promise<Digest[]> {
    const info = await readLease(this.#paths, checkLeaseId(id));
    if (info === undefined) throw new NotFoundError(`lease ${id}: not found`);
    const merged = new Set(info.digests);
    const before = merged.size;
    for (const d of digests) merged.add(d);
    if (merged.size !== before) await writeLease(this.#paths, { ...info, digests: [...merged] });
    return digests;
  }

  #leaseHandle(id: string): Lease {
    return new Lease(id, {
      add: async (leaseIdArg, targets) => {
        const digests = await this.#leaseTargets(targets);
        return withLock(this.#paths.storeLock, () => this.#addToLeaseLocked(leaseIdArg, digests));
      },
      release: (leaseIdArg) => this.releaseLease(leaseIdArg),
    });
  }
}

/**
 * Parses what the store accepts as an image: a bare digest, a 64-hex image
 * id, or a reference.
 *
 * @throws {InvalidArgumentError} when it is none of these.
 */
function parseImageRef(image: string): ParsedImageRef {
  if (typeof image !== 'string') throw new InvalidArgumentError(`invalid image reference: expected a string, got ${typeof image}`);
  if (IMAGE_ID_RE.test(image)) return { digest: `sha256:${image}` };
  if (/^sha(256|512):/.test(image)) return { digest: parseDigest(image) };
  const ref = parseReference(image);
  return ref.digest !== undefined ? { digest: ref.digest, ref } : { ref };
}

function leaseId(lease: Lease | string): string {
  return typeof lease === 'string' ? lease : lease.id;
}

/** A descriptor without the index entry's name annotations. */
function plainDescriptor(entry: Descriptor): Descriptor {
  const d: Descriptor = { mediaType: entry.mediaType, digest: entry.digest, size: entry.size };
  if (entry.platform !== undefined) d.platform = entry.platform;
  return d;
}

function imageSize(image: LoadedImage): number {
  let size = image.manifestDescriptor.size + image.manifest.config.size;
  for (const layer of image.manifest.layers) size += layer.size;
  if (image.root.digest !== image.manifestDescriptor.digest) size += image.root.size;
  return size;
}

/**
 * The change a rollback of `steps` goes back to, or `undefined` when the
 * history is too short. Counting starts from the current change, or, when
 * that is itself a rollback, from the change it restored.
 */
function rollbackTarget(changes: TagChangeRecord[], steps: number): TagChangeRecord | undefined {
  let pos = changes.length - 1;
  const seen = new Set<number>();
  for (;;) {
    const change = changes[pos]!;
    if (change.action !== 'rollback' || change.restores === undefined || seen.has(change.seq)) break;
    seen.add(change.seq);
    const restored = changes.findIndex((c) => c.seq === change.restores);
    if (restored < 0) break;
    pos = restored;
  }
  let remaining = steps;
  for (let i = pos - 1; i >= 0; i--) {
    const change = changes[i]!;
    if (change.digest === null || !isDigest(change.digest)) continue;
    if (--remaining === 0) return change;
  }
  return undefined;
}

async function layoutReady(paths: StorePaths): Promise<boolean> {
  let layout: unknown;
  try {
    layout = JSON.parse(await readFile(paths.ociLayout, 'utf8'));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw new InvalidStateError(`open store: \`${paths.ociLayout}\` is not valid JSON`, { cause: err, path: paths.ociLayout });
  }
  const version = (layout as { imageLayoutVersion?: unknown } | null)?.imageLayoutVersion;
  if (version !== OCI_LAYOUT_VERSION) {
    throw new InvalidStateError(
      `open store: \`${paths.ociLayout}\` has imageLayoutVersion ${JSON.stringify(version)}, expected "${OCI_LAYOUT_VERSION}"`,
      { path: paths.ociLayout },
    );
  }
  try {
    await stat(paths.index);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}

/**
 * Removes what processes that no longer exist left behind: ingest files,
 * atomic-write temporaries, snapshots being unpacked, GC trash.
 */
export async function cleanAbandoned(paths: StorePaths): Promise<number> {
  let removed = 0;
  const sweep = async (dir: string, select: (name: string) => boolean): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (!select(name) || !isAbandoned(name)) continue;
      await removeTree(join(dir, name));
      removed++;
    }
  };
  await sweep(paths.ingest, () => true);
  await sweep(paths.tmp, () => true);
  await sweep(paths.trash, () => true);
  await sweep(paths.snapshots, (name) => name.startsWith(SNAPSHOT_TMP_PREFIX));
  if (removed > 0) debug('cleaned %d abandoned temporary files', removed);
  return removed;
}
