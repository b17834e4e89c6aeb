/**
 * OCI image layouts (a directory, or a tar of one): reading one into the
 * store, and writing images out as one.
 *
 * Past ~600 lines: reading and writing share the layout's index walking and
 * its validation rules, which split apart would be written twice.
 *
 * @module
 */

import { mkdir, open, readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import createDebug from 'debug';
import { AlreadyExistsError, DigestMismatchError, InvalidArgumentError, NotFoundError } from '../../errors.js';
import {
  ANNOTATION_CONTAINERD_IMAGE_NAME,
  ANNOTATION_REF_NAME,
  chainIds,
  checkDescriptor,
  type Descriptor,
  type Digest,
  digestAlgorithm,
  digestHex,
  hostPlatform,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  isConfigMediaType,
  isDigest,
  isIndexMediaType,
  isLayerMediaType,
  isManifestMediaType,
  MEDIA_TYPE_OCI_INDEX,
  OCI_LAYOUT_BLOBS_DIR,
  OCI_LAYOUT_FILE,
  OCI_LAYOUT_INDEX_FILE,
  OCI_LAYOUT_VERSION,
  parseReference,
  platformMatches,
  shortDigest,
} from '../../oci/index.js';
import type { TransferStore } from '../types.js';
import type { IngestSession, Lease, SnapshotTarget } from '../../store/index.js';
import { MAX_DOCUMENT_SIZE, type ArchiveContents } from './tar-read.js';
import type { TarOutput } from './tar-write.js';
import { counted, isErrno, removeQuietly, renameDurably, siblingTemp, throwIfAborted } from './util.js';
import { parseJsonObject, writeFileAtomic } from '../../util/index.js';

const debug = createDebug('dockless:transfer');
const MAX_NESTING = 4;
/** Layers of one image imported at once. */
const LAYER_CONCURRENCY = 2;

/** Where the blobs and documents of a layout come from, and how they get into the store. */
export interface LayoutSource {
  /** A top-level file of the layout (`oci-layout`, `index.json`), or `undefined` when absent. */
  document(name: string): Promise<Buffer | undefined>;
  /** Whether the layout holds the blob. */
  has(digest: Digest): Promise<boolean>;
  /**
   * Makes sure the blob is in the store (a layer may wait for {@link commit}),
   * verified against `d` (digest and size), and held by the import's lease.
   *
   * @param snapshot where to unpack it, when it is a layer whose snapshot the store may lack;
   *   a source that cannot unpack as it reads leaves that to `store.snapshot()`.
   * @returns whether the store had it already (nothing was copied).
   */
  ensure(d: Descriptor, snapshot?: SnapshotTarget): Promise<boolean>;
  /**
   * Makes visible what `ensure` held back (layers and their snapshots, the
   * snapshots flushed to disk at once in the background); called when the walk ends, also when it
   * failed: the layers read whole are kept for the next attempt.
   */
  commit?(): Promise<void>;
  /** Drops what `ensure` held back; called when `commit` failed. */
  discard?(): Promise<void>;
}

/** Called as the walk puts each layer blob in place. */
export type LayerCallback = (d: Descriptor, cached: boolean, total?: number) => void;

/** An image found in a layout's `index.json`: its descriptor and the names the entry carries. */
export interface LayoutImage {
  /** The manifest's or index's descriptor, as the entry gives it (without annotations). */
  descriptor: Descriptor;
  /** Full references from the entry's annotations (bare tags resolved with `baseName`). */
  references: string[];
  /** The digest of its config (of the first manifest, for an index), to match `manifest.json` names. */
  configDigest?: Digest;
}

/**
 * A layout directory on disk: each blob of `blobs/<alg>/<hex>` is read once,
 * verified, and unpacked in the same pass when it is a layer, and reflinked,
 * hard-linked or copied into the store (see `IngestSession.layerFile`).
 */
export class DirectoryLayoutSource implements LayoutSource {
  readonly #store: TransferStore;
  readonly #dir: string;
  readonly #lease: Lease;
  readonly #signal: AbortSignal | undefined;
  readonly #onBytes: ((bytes: number) => void) | undefined;
  readonly #link: boolean;
  #bytes = 0;
  /** Every layer of the import, committed once at the end so its snapshots share one flush, as a pull's do. */
  #layers: IngestSession | undefined;

  /**
   * @param dir the layout directory.
   * @param lease the import's lease, which every blob joins.
   * @param onBytes called with the bytes read so far.
   * @param link whether blobs may be hard-linked into the store (see `ImportOptions.link`).
   */
  constructor(
    store: TransferStore,
    dir: string,
    lease: Lease,
    signal: AbortSignal | undefined,
    onBytes?: (bytes: number) => void,
    link = true,
  ) {
    this.#store = store;
    this.#dir = dir;
    this.#lease = lease;
    this.#signal = signal;
    this.#onBytes = onBytes;
    this.#link = link;
  }

  /** {@inheritDoc LayoutSource.document} */
  async document(name: string): Promise<Buffer | undefined> {
    const path = join(this.#dir, name);
    try {
      const { size } = await stat(path);
      if (size > MAX_DOCUMENT_SIZE) {
        throw new InvalidArgumentError(`\`${path}\`: ${size} bytes is too big for a document`, { path });
      }
      return await readFile(path);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  /** {@inheritDoc LayoutSource.has} */
  async has(digest: Digest): Promise<boolean> {
    try {
      return (await stat(this.#blobPath(digest))).isFile();
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return false;
      throw err;
    }
  }

  /** {@inheritDoc LayoutSource.ensure} */
  async ensure(d: Descriptor, snapshot?: SnapshotTarget): Promise<boolean> {
    // Held by the lease before it is looked at, so a concurrent GC cannot take it between the two.
    await this.#lease.add([d.digest]);
    if (await this.#store.hasBlob(d.digest)) return true;
    const path = this.#blobPath(d.digest);
    let read = 0;
    // Documents are read back from the store as the walk goes, so they are committed at once.
    const shared = isLayerMediaType(d.mediaType) || snapshot !== undefined;
    const session = shared ? (this.#layers ??= this.#store.ingest()) : this.#store.ingest();
    try {
      const unpack = snapshot !== undefined && !(await session.hasSnapshot(snapshot.chainId));
      await session.layerFile(d, path, {
        link: this.#link,
        snapshot: unpack ? snapshot : undefined,
        signal: this.#signal,
        onBytes: (n) => {
          // Layers are read side by side: each adds what it read since its last report.
          this.#bytes += n - read;
          read = n;
          this.#onBytes?.(this.#bytes);
        },
      });
      if (!shared) await session.commit();
    } catch (err) {
      if (!shared) await session.discard();
      if (err instanceof NotFoundError && err.path === path) {
        throw new NotFoundError(`blob ${d.digest} is not in the layout`, { path, cause: err });
      }
      throw err;
    }
    return false;
  }

  /** {@inheritDoc LayoutSource.commit} */
  async commit(): Promise<void> {
    await this.#layers?.commit();
    this.#layers = undefined;
  }

  /** {@inheritDoc LayoutSource.discard} */
  async discard(): Promise<void> {
    const session = this.#layers;
    this.#layers = undefined;
    await session?.discard();
  }

  #blobPath(digest: Digest): string {
    return join(this.#dir, OCI_LAYOUT_BLOBS_DIR, digestAlgorithm(digest), digestHex(digest));
  }
}

/** A layout read from a tar by `readArchive`: its blobs are in the store already. */
export class ArchiveLayoutSource implements LayoutSource {
  readonly #store: TransferStore;
  readonly #contents: ArchiveContents;
  readonly #lease: Lease;

  /**
   * @param contents what `readArchive` found.
   * @param lease the import's lease, which blobs the store had already join.
   */
  constructor(store: TransferStore, contents: ArchiveContents, lease: Lease) {
    this.#store = store;
    this.#contents = contents;
    this.#lease = lease;
  }

  /** {@inheritDoc LayoutSource.document} */
  async document(name: string): Promise<Buffer | undefined> {
    return this.#contents.lookup(name)?.doc;
  }

  /** {@inheritDoc LayoutSource.has} */
  async has(digest: Digest): Promise<boolean> {
    return this.#contents.layoutBlobs.has(digest);
  }

  /** {@inheritDoc LayoutSource.ensure} */
  async ensure(d: Descriptor): Promise<boolean> {
    const name = `${OCI_LAYOUT_BLOBS_DIR}/${digestAlgorithm(d.digest)}/${digestHex(d.digest)}`;
    const blob = this.#contents.blobs.get(name);
    if (blob !== undefined) {
      if (blob.size !== d.size) {
        throw new DigestMismatchError(`blob ${d.digest}: ${blob.size} bytes, its descriptor says ${d.size}`, {
          expected: d.digest,
        });
      }
      return false;
    }
    await this.#lease.add([d.digest]);
    if (await this.#store.hasBlob(d.digest)) return true;
    throw new NotFoundError(`blob ${d.digest} is not in the archive`);
  }
}

/**
 * Reads a layout's `oci-layout` and `index.json`, and puts every image its
 * index lists into the store (manifests, configs, layers; for an index, every
 * manifest of it the layout holds). Tags nothing.
 *
 * @returns the images of `index.json`, with the names their entries carry.
 * @throws {InvalidArgumentError} when `oci-layout` or `index.json` is missing or malformed, or a document is.
 * @throws {NotFoundError} when a blob a manifest needs is not in the layout.
 * @throws {DigestMismatchError} when a blob does not match its digest or size.
 * @throws {AbortError} when `signal` aborts.
 */
export async function importLayout(
  store: TransferStore,
  source: LayoutSource,
  options: { context: string; baseName?: string | undefined; signal?: AbortSignal | undefined; onLayer?: LayerCallback },
): Promise<LayoutImage[]> {
  const { context, signal } = options;
  const layoutDoc = await source.document(OCI_LAYOUT_FILE);
  if (layoutDoc === undefined) throw new InvalidArgumentError(`${context}: not an OCI image layout: no \`oci-layout\` file`);
  const layout = parseJsonObject<{ imageLayoutVersion?: unknown }>(layoutDoc, `${context}: \`oci-layout\``);
  if (typeof layout.imageLayoutVersion !== 'string' || !layout.imageLayoutVersion.startsWith('1.')) {
    throw new InvalidArgumentError(
      `${context}: unsupported OCI image layout version ${JSON.stringify(layout.imageLayoutVersion)}`,
    );
  }
  const indexDoc = await source.document(OCI_LAYOUT_INDEX_FILE);
  if (indexDoc === undefined) throw new InvalidArgumentError(`${context}: not an OCI image layout: no \`index.json\``);
  const index = parseJsonObject<ImageIndex>(indexDoc, `${context}: \`index.json\``);
  if (!Array.isArray(index.manifests)) throw new InvalidArgumentError(`${context}: \`index.json\` has no manifests list`);

  const done = new Set<Digest>();
  const ensure = async (d: Descriptor, snapshot?: SnapshotTarget): Promise<boolean> => {
    throwIfAborted(signal, context);
    const cached = await source.ensure(d, snapshot);
    done.add(d.digest);
    return cached;
  };
  const readDocument = async <T>(d: Descriptor, what: string): Promise<T> => {
    if (d.size > MAX_DOCUMENT_SIZE) {
      throw new InvalidArgumentError(`${context}: ${what} ${d.digest} is ${d.size} bytes, too big for a document`);
    }
    if (!done.has(d.digest)) await ensure(d);
    return parseJsonObject<T>(await store.readBlob(d.digest), `${context}: ${what} ${shortDigest(d.digest)}`);
  };

  /**
   * Imports what `d` names; returns the config digest of its (first) image.
   * `unpack`: whether its layers are unpacked as they are read (not those of
   * another platform's manifest in an index, which this host would never run).
   */
  const walk = async (d: Descriptor, depth: number, unpack = true): Promise<Digest | undefined> => {
    if (isIndexMediaType(d.mediaType)) {
      if (depth >= MAX_NESTING) throw new InvalidArgumentError(`${context}: indexes nested too deeply`);
      const child = await readDocument<ImageIndex>(d, 'index');
      if (!Array.isArray(child.manifests)) throw new InvalidArgumentError(`${context}: index ${d.digest} has no manifests list`);
      let present = 0;
      let configDigest: Digest | undefined;
      for (const m of child.manifests) {
        const entry = checkDescriptor(m, `${context}: index ${shortDigest(d.digest)}`);
        if (!(await source.has(entry.digest)) && !(await store.hasBlob(entry.digest))) {
          debug('%s: index %s: manifest %s not in the layout, skipped', context, shortDigest(d.digest), entry.digest);
          continue;
        }
        present++;
        const runsHere = entry.platform === undefined || platformMatches(hostPlatform(), entry.platform);
        configDigest ??= await walk(entry, depth + 1, unpack && runsHere);
      }
      if (present === 0) {
        throw new NotFoundError(`${context}: none of the manifests of index ${d.digest} is in the layout`);
      }
      return configDigest;
    }
    if (!isManifestMediaType(d.mediaType)) {
      throw new InvalidArgumentError(`${context}: ${d.digest} has media type ${d.mediaType}, not an image manifest or index`);
    }
    if (done.has(d.digest)) return undefined;
    const manifest = await readDocument<ImageManifest>(d, 'manifest');
    const where = `${context}: manifest ${shortDigest(d.digest)}`;
    if (typeof manifest.config !== 'object' || manifest.config === null || !Array.isArray(manifest.layers)) {
      throw new InvalidArgumentError(`${where}: not an image manifest (no config or layers)`);
    }
    const config = checkDescriptor(manifest.config, where);
    const layers = manifest.layers.map((l) => checkDescriptor(l, where));
    let snapshots: Array<SnapshotTarget | undefined> = [];
    if (isConfigMediaType(config.mediaType)) {
      const doc = await readDocument<ImageConfig>(config, 'config');
      const diffIds = doc.rootfs?.diff_ids;
      if (!Array.isArray(diffIds) || diffIds.length !== layers.length) {
        throw new InvalidArgumentError(
          `${where}: ${layers.length} layers but its config lists ${Array.isArray(diffIds) ? diffIds.length : 'no'} diffIDs`,
        );
      }
      if (unpack) snapshots = snapshotTargets(layers, diffIds);
    } else if (!done.has(config.digest)) {
      await ensure(config);
    }
    // Each layer is its own snapshot: they are read and unpacked side by side, a few at once (each unpack takes a thread).
    const pending = layers.flatMap((layer, i) => (done.has(layer.digest) ? [] : [{ layer, snapshot: snapshots[i] }]));
    const seen = new Set<Digest>();
    // Largest first, as a pull does: a large layer started last would unpack alone at the end while the other lane idles.
    const todo = pending.filter(({ layer }) => !seen.has(layer.digest) && seen.add(layer.digest)).sort((a, b) => b.layer.size - a.layer.size);
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < todo.length) {
        const { layer, snapshot } = todo[next++]!;
        const cached = await ensure(layer, snapshot);
        options.onLayer?.(layer, cached, layers.length);
      }
    };
    const settled = await Promise.allSettled(Array.from({ length: Math.min(LAYER_CONCURRENCY, todo.length) }, lane));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    return config.digest;
  };

  const images: LayoutImage[] = [];
  try {
    for (const m of index.manifests) {
      const d = checkDescriptor(m, `${context}: \`index.json\``);
      if (!isManifestMediaType(d.mediaType) && !isIndexMediaType(d.mediaType)) {
        debug('%s: index.json entry %s is a %s, skipped', context, d.digest, d.mediaType);
        continue;
      }
      const configDigest = await walk(d, 0);
      const descriptor: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
      if (d.platform !== undefined) descriptor.platform = d.platform;
      images.push({
        descriptor,
        references: entryReferences(d, options.baseName),
        ...(configDigest !== undefined ? { configDigest } : {}),
      });
    }
    throwIfAborted(signal, context);
  } catch (err) {
    await source.commit?.().catch(async (commitErr: unknown) => {
      debug('%s: commit of the layers read whole: %s', context, (commitErr as Error).message);
      await source.discard?.();
    });
    throw err;
  }
  await source.commit?.();
  return images;
}

/**
 * Where each layer of an image unpacks as it is imported: its chainID,
 * diffID and parent; `undefined` for a layer that is not a filesystem layer
 * (a foreign or unknown media type) or when a diffID is malformed, which
 * `store.snapshot()` then reports.
 */
function snapshotTargets(layers: readonly Descriptor[], diffIds: readonly unknown[]): Array<SnapshotTarget | undefined> {
  if (!diffIds.every((d) => typeof d === 'string' && isDigest(d))) return [];
  const chain = chainIds(diffIds as Digest[]);
  return layers.map((l, i) =>
    isLayerMediaType(l.mediaType) ? { chainId: chain[i]!, diffId: diffIds[i] as Digest, parent: i === 0 ? null : chain[i - 1]! } : undefined,
  );
}

/**
 * The full references an `index.json` entry names: `io.containerd.image.name`
 * when it is a tag reference, else `org.opencontainers.image.ref.name` when it
 * is a full reference (has `/`, `:` or `@`), else that bare tag in repository
 * `baseName` when one is given.
 */
export function entryReferences(entry: Descriptor, baseName?: string): string[] {
  const asTag = (s: string): string | undefined => {
    try {
      const ref = parseReference(s);
      return ref.digest === undefined ? ref.toString() : undefined;
    } catch {
      debug('index.json entry %s: name %s is not a reference, ignored', entry.digest, JSON.stringify(s));
      return undefined;
    }
  };
  const containerd = entry.annotations?.[ANNOTATION_CONTAINERD_IMAGE_NAME];
  if (typeof containerd === 'string') {
    const ref = asTag(containerd);
    if (ref !== undefined) return [ref];
  }
  const refName = entry.annotations?.[ANNOTATION_REF_NAME];
  if (typeof refName !== 'string' || refName === '') return [];
  if (/[/:@]/.test(refName)) {
    const ref = asTag(refName);
    return ref === undefined ? [] : [ref];
  }
  if (baseName === undefined) return [];
  const ref = asTag(`${baseName}:${refName}`);
  return ref === undefined ? [] : [ref];
}

// ---------------------------------------------------------------- export

/** One image to write to a layout: its root descriptor and its names. */
export interface LayoutEntry {
  /** The manifest's or index's descriptor. */
  descriptor: Descriptor;
  /** Full tag references; none for an image exported by digest. */
  references: string[];
}

/**
 * Every blob of an image, in the order a layout is best written in: layers,
 * then configs, then manifests, then indexes (children before parents), each
 * once. An index's manifests the store lacks are left out.
 *
 * @throws {NotFoundError} when a blob of a manifest is missing.
 * @throws {InvalidArgumentError} when a document is malformed.
 */
export async function imageBlobs(store: TransferStore, root: Descriptor): Promise<Descriptor[]> {
  const layers: Descriptor[] = [];
  const configs: Descriptor[] = [];
  const documents: Descriptor[] = [];
  const seen = new Set<Digest>();
  const add = (list: Descriptor[], d: Descriptor): void => {
    if (seen.has(d.digest)) return;
    seen.add(d.digest);
    list.push({ mediaType: d.mediaType, digest: d.digest, size: d.size });
  };
  const walk = async (d: Descriptor, depth: number): Promise<void> => {
    if (seen.has(d.digest)) return;
    if (isIndexMediaType(d.mediaType)) {
      if (depth >= MAX_NESTING) throw new InvalidArgumentError(`image ${d.digest}: indexes nested too deeply`);
      const index = parseJsonObject<ImageIndex>(await store.readBlob(d.digest), `index ${shortDigest(d.digest)}`);
      for (const m of index.manifests ?? []) {
        const child = checkDescriptor(m, `index ${shortDigest(d.digest)}`);
        if (!(await store.hasBlob(child.digest))) {
          debug('image %s: manifest %s not in the store, left out', shortDigest(d.digest), child.digest);
          continue;
        }
        await walk(child, depth + 1);
      }
      add(documents, d);
      return;
    }
    const manifest = parseJsonObject<ImageManifest>(await store.readBlob(d.digest), `manifest ${shortDigest(d.digest)}`);
    const where = `manifest ${shortDigest(d.digest)}`;
    if (typeof manifest.config !== 'object' || manifest.config === null || !Array.isArray(manifest.layers)) {
      throw new InvalidArgumentError(`${where}: not an image manifest (no config or layers)`);
    }
    for (const l of manifest.layers) add(layers, checkDescriptor(l, where));
    add(configs, checkDescriptor(manifest.config, where));
    add(documents, d);
  };
  await walk(root, 0);
  for (const d of [...layers, ...configs]) {
    if (!(await store.hasBlob(d.digest))) throw new NotFoundError(`image ${root.digest}: blob ${d.digest} is not in the store`);
  }
  return [...layers, ...configs, ...documents];
}

/** The `index.json` entries for the images: one per name, or one unnamed per image exported by digest. */
export function layoutIndex(entries: LayoutEntry[], refName: 'reference' | 'tag'): ImageIndex {
  const manifests: Descriptor[] = [];
  for (const { descriptor, references } of entries) {
    const base: Descriptor = { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size };
    if (descriptor.platform !== undefined) base.platform = descriptor.platform;
    if (references.length === 0) manifests.push(base);
    for (const reference of references) {
      const ref = parseReference(reference);
      manifests.push({
        ...base,
        annotations: {
          [ANNOTATION_CONTAINERD_IMAGE_NAME]: ref.toString(),
          [ANNOTATION_REF_NAME]: refName === 'tag' && ref.tag !== undefined ? ref.tag : ref.toString(),
        },
      });
    }
  }
  return { schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests };
}

/** Options of the layout writers. */
export interface LayoutWriteOptions {
  /** What `org.opencontainers.image.ref.name` holds; see `ExportOptions.refName`. */
  refName: 'reference' | 'tag';
  /** Cancels the export between blobs. */
  signal?: AbortSignal | undefined;
  /** The operation, for error messages. */
  context: string;
  /** Called with the bytes written so far (the directory writer; an archive counts its own). */
  onBytes?: ((bytes: number) => void) | undefined;
  /** Called as each layer blob is in place; `cached` when the layout had it already. */
  onLayer?: ((d: Descriptor, cached: boolean) => void) | undefined;
}

/**
 * Writes images as an OCI layout directory at `path`: a new directory (or
 * an empty one) is built beside it and renamed into place; an existing layout
 * gets the blobs it lacks and an `index.json` where entries of the same name
 * are replaced.
 *
 * @returns the bytes written.
 * @throws {AlreadyExistsError} when `path` exists and is neither an empty directory nor an OCI layout.
 */
export async function writeLayoutDirectory(
  store: TransferStore,
  entries: LayoutEntry[],
  path: string,
  options: LayoutWriteOptions,
): Promise<number> {
  const existing = await existingTarget(path, options.context);
  const dir = existing === 'layout' ? path : siblingTemp(path, 'tmp');
  let bytes = 0;
  try {
    if (existing !== 'layout') {
      await mkdir(join(dir, OCI_LAYOUT_BLOBS_DIR), { recursive: true, mode: 0o755 });
      await writeFileAtomic(join(dir, OCI_LAYOUT_FILE), `${JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION })}\n`);
    }
    const blobs = await allBlobs(store, entries);
    const layers = new Set(await layerDigests(store, entries));
    for (const d of blobs) {
      throwIfAborted(options.signal, options.context);
      const target = join(dir, OCI_LAYOUT_BLOBS_DIR, digestAlgorithm(d.digest), digestHex(d.digest));
      let present = false;
      try {
        present = (await stat(target)).size === d.size;
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
      if (!present) {
        await mkdir(join(dir, OCI_LAYOUT_BLOBS_DIR, digestAlgorithm(d.digest)), { recursive: true, mode: 0o755 });
        const start = bytes;
        await copyBlob(store, d.digest, target, (n) => {
          bytes = start + n;
          options.onBytes?.(bytes);
        });
      }
      if (layers.has(d.digest)) options.onLayer?.(d, present);
    }
    throwIfAborted(options.signal, options.context);
    const index = layoutIndex(entries, options.refName);
    if (existing === 'layout') {
      const current = parseJsonObject<ImageIndex>(await readFile(join(dir, OCI_LAYOUT_INDEX_FILE)), `${options.context}: \`index.json\``);
      const names = new Set(index.manifests.map((m) => m.annotations?.[ANNOTATION_REF_NAME]).filter((n) => n !== undefined));
      const kept = (current.manifests ?? []).filter((m) => {
        const name = m.annotations?.[ANNOTATION_REF_NAME];
        return name === undefined ? !index.manifests.some((n) => n.annotations === undefined && n.digest === m.digest) : !names.has(name);
      });
      index.manifests = [...kept, ...index.manifests];
    }
    const indexText = `${JSON.stringify(index)}\n`;
    await writeFileAtomic(join(dir, OCI_LAYOUT_INDEX_FILE), indexText);
    bytes += Buffer.byteLength(indexText);
    if (existing !== 'layout') await renameDurably(dir, path);
  } catch (err) {
    if (existing !== 'layout') await removeQuietly(dir);
    throw err;
  }
  return bytes;
}

/** Writes images as a tar of an OCI layout into `out`. */
export async function writeLayoutArchive(
  store: TransferStore,
  entries: LayoutEntry[],
  out: TarOutput,
  options: LayoutWriteOptions,
): Promise<void> {
  await out.file(OCI_LAYOUT_FILE, `${JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION })}\n`);
  await out.directory(OCI_LAYOUT_BLOBS_DIR);
  const blobs = await allBlobs(store, entries);
  const layers = new Set(await layerDigests(store, entries));
  const dirs = new Set<string>();
  for (const d of blobs) {
    throwIfAborted(options.signal, options.context);
    const dir = `${OCI_LAYOUT_BLOBS_DIR}/${digestAlgorithm(d.digest)}`;
    if (!dirs.has(dir)) {
      dirs.add(dir);
      await out.directory(dir);
    }
    await out.stream(`${dir}/${digestHex(d.digest)}`, d.size, await store.getBlob(d.digest));
    if (layers.has(d.digest)) options.onLayer?.(d, false);
  }
  throwIfAborted(options.signal, options.context);
  await out.file(OCI_LAYOUT_INDEX_FILE, `${JSON.stringify(layoutIndex(entries, options.refName))}\n`);
}

async function allBlobs(store: TransferStore, entries: LayoutEntry[]): Promise<Descriptor[]> {
  const seen = new Set<Digest>();
  const all: Descriptor[] = [];
  for (const { descriptor } of entries) {
    for (const d of await imageBlobs(store, descriptor)) {
      if (seen.has(d.digest)) continue;
      seen.add(d.digest);
      all.push(d);
    }
  }
  return all;
}

async function layerDigests(store: TransferStore, entries: LayoutEntry[]): Promise<Digest[]> {
  const digests: Digest[] = [];
  const walk = async (d: Descriptor, depth: number): Promise<void> => {
    if (depth > MAX_NESTING) return;
    const doc = parseJsonObject<ImageIndex & ImageManifest>(await store.readBlob(d.digest), `document ${shortDigest(d.digest)}`);
    if (isIndexMediaType(d.mediaType)) {
      for (const m of doc.manifests ?? []) if (await store.hasBlob(m.digest)) await walk(m, depth + 1);
    } else {
      for (const l of doc.layers ?? []) digests.push(l.digest);
    }
  };
  for (const { descriptor } of entries) await walk(descriptor, 0);
  return digests;
}

/** Copies a blob out of the store through a temporary file, verified as it streams, fsynced, renamed. */
async function copyBlob(store: TransferStore, digest: Digest, target: string, onBytes: (n: number) => void): Promise<void> {
  const tmp = siblingTemp(target, 'tmp');
  const handle = await open(tmp, 'wx', 0o644);
  try {
    for await (const chunk of counted(await store.getBlob(digest), onBytes)) await handle.write(chunk);
    await handle.sync();
    await handle.close();
    await renameDurably(tmp, target);
  } catch (err) {
    await handle.close().catch(() => {});
    await removeQuietly(tmp);
    throw err;
  }
}

/** What is at an export's destination: nothing (or an empty directory), or an OCI layout. */
async function existingTarget(path: string, context: string): Promise<'none' | 'layout'> {
  let entries: string[];
  try {
    entries = await readdir(path);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return 'none';
    if (isErrno(err, 'ENOTDIR')) throw new AlreadyExistsError(`${context}: \`${path}\` exists and is not a directory`, { path });
    throw err;
  }
  if (entries.length === 0) return 'none';
  if (entries.includes(OCI_LAYOUT_FILE) && entries.includes(OCI_LAYOUT_INDEX_FILE)) {
    const layout = parseJsonObject<{ imageLayoutVersion?: unknown }>(await readFile(join(path, OCI_LAYOUT_FILE)), `${context}: \`oci-layout\``);
    if (layout.imageLayoutVersion === OCI_LAYOUT_VERSION) return 'layout';
  }
  throw new AlreadyExistsError(`${context}: \`${path}\` is a directory that is neither empty nor an OCI image layout`, { path });
}

