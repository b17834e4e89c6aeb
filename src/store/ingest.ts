/**
 * An ingest session: a pull's or an import's writes into the store, held back until the whole
 * image is verified: blobs wait in the store's ingest area and unpacked
 * layers in temporary snapshot directories, and {@link IngestSession.commit}
 * makes them all visible at once (or {@link IngestSession.discard} drops
 * them). A layer is written and unpacked from one stream, so its bytes are
 * read once, as they arrive.
 *
 * Ingest files and `tmp-<owner>` snapshot directories are what opening a
 * store cleans up after a crash.
 *
 * @module
 */

import { constants, createReadStream } from 'node:fs';
import { copyFile, link, lstat, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import createDebug from 'debug';
import { DigestMismatchError, InvalidStateError, NotFoundError } from '../errors.js';
import { drained, unpackLayer, unpackThreadFor, type UnpackResult } from '../layer/index.js';
import { type Descriptor, type Digest, shortDigest } from '../oci/index.js';
import { isErrno, ownerToken, removeTree, shareBuffer, touch } from '../util/index.js';
import { commitBlob, discardIngest, ingestBlob, syncBlobDirs, verifyPlacedBlob, type IngestedBlob } from './blobs.js';
import { withLock } from './lock.js';
import { SNAPSHOT_FS_DIR, type StorePaths } from './paths.js';
import { SNAPSHOT_WRITEBACK, compressionOf, makeSnapshotTmp, publishSnapshot, removeSnapshotTree, snapshotExists, type SnapshotLayer } from './snapshots.js';
import { chooseVariant, type VariantChoice } from './snapshot-variant.js';
import type { SnapshotUserns } from './types.js';

const debug = createDebug('dockless:store');

/**
 * High-water mark of the streams feeding the ingest file and the unpacker:
 * a few network chunks, enough to keep both busy; each layer pulled at once
 * holds up to twice as much.
 */
const PIPE_BUFFER = 256 << 10;
/**
 * The pipes hand their reader one chunk at a time, as written (a byte-mode
 * pipe joins what it holds into a fresh buffer on each read: a copy, and a
 * chunk that cannot be freed when its readers are done, see shareBuffer);
 * this many chunks wait on the reading side, PIPE_BUFFER bytes on the
 * writing side. One: a chunk may be large (a layout's 1 MiB reads).
 */
const PIPE_CHUNKS = 1;
/** A pipe from the layer's writer to one of its readers. */
const pipe = (): PassThrough =>
  new PassThrough({ writableHighWaterMark: PIPE_BUFFER, readableObjectMode: true, readableHighWaterMark: PIPE_CHUNKS });
/** Read size of {@link IngestSession.layerFile}. */
const READ_CHUNK = 1 << 20;

/** Where a layer's snapshot goes, when the layer is to be unpacked as it is written. */
export interface SnapshotTarget {
  /** The snapshot's name: the layer's chainID. */
  chainId: Digest;
  /** The layer's diffID, which the unpacked tar must match. */
  diffId: Digest;
  /** The chainID of the layer below, `null` for the base layer. */
  parent: Digest | null;
}

/** Options of {@link IngestSession.layer}. */
export interface LayerIngestOptions {
  /** Unpack the layer into this snapshot as it is written; omit to store the blob only. */
  snapshot?: SnapshotTarget | undefined;
  /** Cancels the write and the unpack. */
  signal?: AbortSignal | undefined;
  /** The helper for device nodes, whiteouts and xattrs. @default the session's store's */
  helperPath?: string | undefined;
}

/** Options of {@link IngestSession.layerFile}. */
export interface LayerFileOptions extends LayerIngestOptions {
  /**
   * Whether the file may become the store's blob by a hard link when it
   * cannot be reflinked: only a regular file on the store's filesystem,
   * owned by the calling user and writable by no one else (who could write
   * it could write the store), is linked. The blob then shares the file's
   * inode: it must not be rewritten in place afterwards.
   * @default true
   */
  link?: boolean | undefined;
  /** Called with the bytes of the file read so far. */
  onBytes?: ((bytes: number) => void) | undefined;
}

/**
 * How {@link IngestSession.layerFile} put a file into the store: a reflink
 * (a copy-on-write clone), a hard link, or a copy written as it was read.
 */
export type PlacedBy = 'reflink' | 'link' | 'copy';

/** Options of `ImageStoreCore.ingest()`. */
export interface IngestSessionOptions {
  /** Unpack layers without privileges, as rootless snapshots. @default process.getuid() !== 0 */
  rootless?: boolean | undefined;
  /** Owners as ids of a user namespace; see `SnapshotOptions.userns`. @default as for `ImageStore.snapshot` */
  userns?: SnapshotUserns | false | undefined;
}

interface PendingSnapshot {
  layer: SnapshotLayer;
  tmp: string;
  facts: { size: number; entries: number };
}

/**
 * Blobs and snapshots written for one image, invisible until
 * {@link IngestSession.commit}.
 */
export class IngestSession {
  readonly #paths: StorePaths;
  readonly #choice: VariantChoice;
  readonly #blobs: IngestedBlob[] = [];
  readonly #snapshots: PendingSnapshot[] = [];
  readonly #present = new Set<Digest>();
  readonly #writers = new Set<LayerIngest>();
  #closed = false;

  readonly #helperPath: string | undefined;

  /** @internal Use `ImageStoreCore.ingest()`. */
  constructor(paths: StorePaths, helperPath?: string, options: IngestSessionOptions = {}) {
    this.#paths = paths;
    this.#helperPath = helperPath;
    this.#choice = chooseVariant(options);
  }

  /** Whether the snapshot of `chainId`, in this session's variant, exists in the store (complete, with its marker). */
  async hasSnapshot(chainId: Digest): Promise<boolean> {
    return snapshotExists(this.#paths, chainId, this.#choice.variant);
  }

  /**
   * Notes a blob the image needs that is already in the store: the commit
   * renews it (so GC's grace period covers it until the image is tagged) and
   * fails if it has vanished meanwhile.
   */
  keep(digest: Digest): void {
    this.#present.add(digest);
  }

  /**
   * Writes a small blob (manifest, config) to the ingest area, verified.
   *
   * @throws {DigestMismatchError} when it does not match `digest` or `size`.
   */
  async addBytes(bytes: Uint8Array, digest: Digest, size: number): Promise<void> {
    this.#checkOpen();
    this.#blobs.push(await ingestBlob(this.#paths, bytes, { digest, size }));
  }

  /**
   * Opens a writer for a layer blob: what is written to it goes to the
   * ingest area, verified against the descriptor, and (with
   * `options.snapshot`) is unpacked at the same time into a temporary
   * snapshot directory.
   */
  async layer(descriptor: Descriptor, options: LayerIngestOptions = {}): Promise<LayerIngest> {
    this.#checkOpen();
    return this.#open(descriptor, options, undefined);
  }

  /** A layer writer; `placed` is an ingest file holding the blob already, to be verified rather than written. */
  async #open(descriptor: Descriptor, options: LayerIngestOptions, placed: string | undefined): Promise<LayerIngest> {
    let tmp: string | undefined;
    if (options.snapshot !== undefined) {
      tmp = await makeSnapshotTmp(this.#paths, this.#helperPath);
    }
    const writer = new LayerIngest(
      this.#paths,
      descriptor,
      tmp,
      this.#choice,
      { helperPath: this.#helperPath, ...options },
      (result) => {
        this.#writers.delete(writer);
        if (result.blob !== undefined) this.#blobs.push(result.blob);
        if (result.snapshot !== undefined) this.#snapshots.push(result.snapshot);
      },
      placed,
    );
    this.#writers.add(writer);
    return writer;
  }

  /**
   * Takes a blob from a file on disk (an OCI layout's `blobs/<alg>/<hex>`),
   * reading it once: it is reflinked into the ingest area where the
   * filesystem can, else hard-linked (see {@link LayerFileOptions.link}),
   * else copied as it is read; in the same pass it is verified against
   * `descriptor` and, with `options.snapshot`, unpacked. Like {@link layer},
   * nothing is visible before {@link commit}; a failure leaves nothing behind.
   *
   * @returns how the file was put into the store.
   * @throws {NotFoundError} when `file` does not exist.
   * @throws {DigestMismatchError} when the file does not match `descriptor`, or the unpacked tar its diffID.
   */
  async layerFile(descriptor: Descriptor, file: string, options: LayerFileOptions = {}): Promise<PlacedBy> {
    this.#checkOpen();
    const { link: mayLink = true, onBytes, ...layerOptions } = options;
    let stats;
    try {
      stats = await lstat(file);
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) throw new NotFoundError(`blob ${descriptor.digest}: \`${file}\` does not exist`, { path: file, cause: err });
      throw err;
    }
    if (!stats.isFile()) throw new NotFoundError(`blob ${descriptor.digest}: \`${file}\` is not a regular file`, { path: file });
    const tmp = join(this.#paths.ingest, ownerToken());
    let placed: PlacedBy = 'copy';
    try {
      await copyFile(file, tmp, constants.COPYFILE_FICLONE_FORCE);
      placed = 'reflink';
    } catch (err) {
      debug('blob %s: no reflink (%s)', shortDigest(descriptor.digest), (err as NodeJS.ErrnoException).code);
      await unlink(tmp).catch(() => {});
      const owned = stats.uid === (process.geteuid?.() ?? 0) && (stats.mode & 0o022) === 0;
      if (mayLink && owned) {
        try {
          await link(file, tmp);
          placed = 'link';
        } catch (linkErr) {
          // EXDEV (another filesystem), EPERM (protected_hardlinks, a filesystem without links), EMLINK: copy.
          debug('blob %s: no hard link (%s)', shortDigest(descriptor.digest), (linkErr as NodeJS.ErrnoException).code);
        }
      }
    }
    let writer: LayerIngest;
    try {
      writer = await this.#open(descriptor, layerOptions, placed === 'copy' ? undefined : tmp);
    } catch (err) {
      if (placed !== 'copy') await unlink(tmp).catch(() => {});
      throw err;
    }
    const handle = await open(placed === 'copy' ? file : tmp, 'r').catch(async (err: unknown) => {
      await writer.abort(err);
      throw err;
    });
    const stream = createReadStream('', { fd: handle.fd, autoClose: false, highWaterMark: READ_CHUNK });
    try {
      for await (const chunk of stream) {
        await writer.write(chunk as Buffer);
        onBytes?.(writer.written);
      }
    } catch (err) {
      stream.destroy();
      await writer.abort(err);
      throw err;
    } finally {
      await handle.close().catch(() => {});
    }
    await writer.finish();
    debug('blob %s: %s from `%s`', shortDigest(descriptor.digest), placed, file);
    return placed;
  }

  /**
   * Makes everything written visible: the blobs under the store lock (with
   * the kept ones renewed, so that a concurrent GC cannot take them before
   * the image is tagged), then each snapshot under its snapshot lock through
   * the store's one snapshot publisher, which keeps a complete snapshot another process
   * made meanwhile and replaces a directory without a marker. After a crash
   * half-way, the visible part is consistent (complete blobs, complete
   * snapshots) and unreferenced until tagged.
   *
   * @throws {InvalidStateError} when a layer writer is still open, or a kept blob vanished (a concurrent GC).
   */
  async commit(): Promise<void> {
    this.#checkOpen();
    if (this.#writers.size > 0) throw new InvalidStateError('commit pull: a layer is still being written');
    this.#closed = true;
    const paths = this.#paths;
    try {
      await withLock(paths.storeLock, async () => {
        for (const digest of this.#present) {
          if (!(await touch(paths.blob(digest)))) {
            throw new InvalidStateError(`commit pull: blob ${digest} was removed meanwhile (a concurrent gc); pull again`);
          }
        }
        // One fsync of blobs/sha256 for all the renames, before the snapshots and the tag can name them.
        const dirs = new Set<string>();
        for (const blob of this.#blobs) await commitBlob(paths, blob, dirs);
        await syncBlobDirs(dirs);
      });
    } catch (err) {
      await this.#dropAll();
      throw err;
    }
    const snapshots = this.#snapshots.splice(0);
    try {
      // Published unflushed: one deferred flush covers them all (see durability.ts).
      while (snapshots.length > 0) {
        const snapshot = snapshots[0]!;
        await publishSnapshot(paths, snapshot.layer, snapshot.tmp, snapshot.facts, this.#choice.variant, {
          helperPath: this.#helperPath,
        });
        snapshots.shift();
      }
    } catch (err) {
      for (const snapshot of snapshots) await removeSnapshotTree(snapshot.tmp, this.#helperPath);
      throw err;
    }
    debug('commit: %d blobs', this.#blobs.length);
    this.#blobs.length = 0;
  }

  /** Drops everything written; nothing of it was ever visible. Idempotent. */
  async discard(): Promise<void> {
    this.#closed = true;
    for (const writer of [...this.#writers]) await writer.abort(new InvalidStateError('pull discarded'));
    await this.#dropAll();
  }

  async #dropAll(): Promise<void> {
    for (const blob of this.#blobs.splice(0)) await discardIngest(blob);
    for (const snapshot of this.#snapshots.splice(0)) await removeSnapshotTree(snapshot.tmp, this.#helperPath);
  }

  #checkOpen(): void {
    if (this.#closed) throw new InvalidStateError('pull: the ingest session is closed');
  }
}

/**
 * Writes one layer blob to the ingest area and, when asked, unpacks it into
 * a temporary snapshot at the same time. Feed it with {@link LayerIngest.write}
 * (honouring the returned promise, which is the backpressure), then call
 * {@link LayerIngest.finish} or {@link LayerIngest.abort}.
 */
export class LayerIngest {
  readonly #descriptor: Descriptor;
  readonly #tmp: string | undefined;
  readonly #snapshot: SnapshotTarget | undefined;
  readonly #done: (result: { blob?: IngestedBlob; snapshot?: PendingSnapshot }) => void;
  readonly #ingestIn = pipe();
  readonly #unpackIn: PassThrough | undefined;
  readonly #ingest: Promise<IngestedBlob>;
  readonly #unpack: Promise<UnpackResult> | undefined;
  #ingestError: unknown;
  #unpackError: unknown;
  readonly #options: LayerIngestOptions;
  #written = 0;
  #settled = false;
  /** The blob is in place already and only verified. */
  readonly #placed: boolean;

  /** @internal Use {@link IngestSession.layer}. */
  constructor(
    paths: StorePaths,
    descriptor: Descriptor,
    tmp: string | undefined,
    choice: VariantChoice,
    options: LayerIngestOptions,
    done: (result: { blob?: IngestedBlob; snapshot?: PendingSnapshot }) => void,
    placed?: string,
  ) {
    this.#descriptor = descriptor;
    this.#placed = placed !== undefined;
    this.#tmp = tmp;
    this.#options = options;
    this.#snapshot = options.snapshot;
    this.#done = done;
    // Failures surface through the ingest and unpack promises; a destroyed pipe must not also throw as an event.
    this.#ingestIn.on('error', () => {});
    this.#ingest =
      placed === undefined
        ? ingestBlob(paths, this.#ingestIn, { digest: descriptor.digest, size: descriptor.size }, options.signal)
        : verifyPlacedBlob(placed, this.#ingestIn, { digest: descriptor.digest, size: descriptor.size }, options.signal);
    this.#ingest.catch((err: unknown) => {
      this.#ingestError ??= err;
    });
    if (tmp !== undefined) {
      this.#unpackIn = pipe();
      this.#unpackIn.on('error', () => {});
      this.#unpack = unpackLayer(this.#unpackIn, join(tmp, SNAPSHOT_FS_DIR), {
        compression: compressionOf(descriptor.mediaType),
        thread: unpackThreadFor(descriptor.size),
        writeback: SNAPSHOT_WRITEBACK,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        rootless: choice.rootless,
        userns: choice.userns,
        ...(choice.owners !== undefined ? { owners: choice.owners } : {}),
        ...(options.helperPath === undefined ? {} : { helperPath: options.helperPath }),
      });
      this.#unpack.catch((err: unknown) => {
        // A broken tar stops the unpack, not the download: the digest check decides which error is reported.
        this.#unpackError ??= err;
        this.#unpackIn?.resume();
      });
    }
  }

  /** Bytes written so far. */
  get written(): number {
    return this.#written;
  }

  /**
   * The error that ended the blob's ingest (a digest or size mismatch, an
   * abort, a disk error), once it has happened.
   */
  get failure(): unknown {
    return this.#ingestError;
  }

  /**
   * Writes the next bytes of the blob; resolves when both consumers can take
   * more.
   *
   * @param owned - the caller owns the chunk's whole buffer and will not read it again (a
   *   network read's buffer): it is freed as soon as both consumers are done with it.
   * @throws the ingest's error (e.g. a {@link DigestMismatchError} when more bytes arrive than the descriptor's size).
   */
  async write(chunk: Buffer, owned = false): Promise<void> {
    if (this.#ingestError !== undefined) throw this.#ingestError;
    this.#written += chunk.length;
    const unpacking = this.#unpackIn !== undefined && this.#unpackError === undefined && !this.#unpackIn.destroyed;
    // Only the blob writer and gunzip say when they are done with a chunk (a placed blob's verifier does not).
    if (owned && !this.#placed && !this.#ingestIn.destroyed) shareBuffer(chunk, unpacking ? 2 : 1);
    const waits: Promise<void>[] = [];
    if (!this.#ingestIn.destroyed && !this.#ingestIn.write(chunk)) waits.push(drained(this.#ingestIn));
    const unpackIn = this.#unpackIn;
    if (unpackIn !== undefined && this.#unpackError === undefined && !unpackIn.destroyed && !unpackIn.write(chunk)) {
      waits.push(drained(unpackIn));
    }
    if (waits.length > 0) await Promise.all(waits);
    if (this.#ingestError !== undefined) throw this.#ingestError;
  }

  /**
   * Ends the blob and waits for its verification and unpack; on success the
   * blob and snapshot are handed to the session for its commit.
   *
   * @throws {DigestMismatchError} when the blob does not match its digest or size, or the unpacked tar its diffID.
   * @throws the unpacker's error for a blob that matches its digest but is not a valid layer.
   */
  async finish(): Promise<void> {
    this.#ingestIn.end();
    this.#unpackIn?.end();
    const [ingest, unpack] = await Promise.allSettled([this.#ingest, this.#unpack ?? Promise.resolve(undefined)]);
    try {
      // The digest is the registry's promise: its mismatch explains any unpack failure too.
      if (ingest.status === 'rejected') throw explained(ingest.reason, unpack.status === 'rejected' ? unpack.reason : undefined);
      if (unpack.status === 'rejected') throw unpack.reason;
      const blob = ingest.value;
      const result = unpack.value;
      if (this.#tmp === undefined || result === undefined || this.#snapshot === undefined) {
        this.#settle({ blob });
        return;
      }
      const snapshot = this.#snapshot;
      if (result.diffId !== snapshot.diffId) {
        throw new DigestMismatchError(
          `unpack layer ${shortDigest(this.#descriptor.digest)}: diffID mismatch: the layer's tar is ${result.diffId}, the image config says ${snapshot.diffId}`,
          { expected: snapshot.diffId, actual: result.diffId },
        );
      }
      this.#settle({
        blob,
        snapshot: {
          layer: { chainId: snapshot.chainId, diffId: snapshot.diffId, parent: snapshot.parent, descriptor: this.#descriptor },
          tmp: this.#tmp,
          facts: { size: result.size, entries: result.entries },
        },
      });
    } catch (err) {
      if (ingest.status === 'fulfilled') await discardIngest(ingest.value);
      await this.#cleanup();
      throw err;
    }
  }

  /** Stops the writer and drops what it wrote. Idempotent. */
  async abort(reason: unknown): Promise<void> {
    if (this.#settled) return;
    this.#ingestError ??= reason;
    const error = reason instanceof Error ? reason : new Error(String(reason));
    this.#ingestIn.destroy(error);
    this.#unpackIn?.destroy(error);
    const [ingest] = await Promise.allSettled([this.#ingest, this.#unpack ?? Promise.resolve(undefined)]);
    if (ingest.status === 'fulfilled') await discardIngest(ingest.value);
    await this.#cleanup();
  }

  async #cleanup(): Promise<void> {
    if (this.#tmp !== undefined) await removeSnapshotTree(this.#tmp, this.#options.helperPath);
    this.#settle({});
  }

  #settle(result: { blob?: IngestedBlob; snapshot?: PendingSnapshot }): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#done(result);
  }
}

/** A digest mismatch with the unpack failure it explains as its cause. */
function explained(ingestError: unknown, unpackError: unknown): unknown {
  if (!(ingestError instanceof DigestMismatchError) || unpackError === undefined || ingestError.cause !== undefined) return ingestError;
  return new DigestMismatchError(ingestError.message, {
    expected: ingestError.expected,
    ...(ingestError.actual === undefined ? {} : { actual: ingestError.actual }),
    cause: unpackError,
  });
}
