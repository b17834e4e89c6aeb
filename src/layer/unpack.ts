import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import createDebug from 'debug';
import {
  AbortError,
  DocklessError,
  InvalidArgumentError,
  IOError,
  NotFoundError,
  PermissionError,
} from '../errors.js';
import type { ApplierOptions } from './apply.js';
import { printable } from './entry-path.js';
import { tarSink } from './unpack-thread.js';
import { decompress, sniffCompression } from './streams.js';
import type { LayerCompression } from '../oci/index.js';
import type { UsernsMaps } from '../helper/index.js';

const debug = createDebug('dockless:layer');

/** A layer blob's compression. */
export type { LayerCompression };

/** Options of {@link unpackLayer}. */
export interface UnpackOptions {
  /**
   * The blob's compression, usually from its media type. The magic bytes are
   * sniffed in every case (gzip `1f 8b`, zstd `28 b5 2f fd` or a skippable
   * frame, anything else is a plain tar) and win over a named compression
   * that disagrees, as in containerd: mislabelled layers exist in the wild
   * (plain tars with a `+gzip` media type). A disagreement is logged.
   * @default 'auto'
   */
  compression?: 'auto' | LayerCompression;
  /** Cancels the unpack; the promise rejects with an {@link AbortError}. */
  signal?: AbortSignal;
  /** Called as uncompressed bytes flow: the total so far, and the entries applied so far. */
  onProgress?: (event: { bytes: number; entries: number }) => void;
  /**
   * How whiteouts are written in the target. `'overlay'`: a `.wh.<name>`
   * entry becomes a character device 0:0 named `<name>`, a `.wh..wh..opq`
   * entry the xattr `trusted.overlay.opaque=y` on its directory
   * (`user.overlay.opaque=y` when {@link UnpackOptions.rootless}), as
   * overlayfs lower dirs need them.
   * @default 'overlay'
   */
  whiteouts?: 'overlay';
  /**
   * Unpack without privileges: no chown (every file belongs to the caller and
   * the tar's ownership is recorded nowhere), character and block devices are
   * skipped with a debug line, only `user.*` xattrs are kept, and opaque
   * directories get `user.overlay.opaque` (the overlay `userxattr`
   * convention). Whiteouts are still character devices 0:0, which Linux ≥ 5.8
   * lets an unprivileged user create.
   * @default process.getuid() !== 0
   */
  rootless?: boolean;
  /**
   * With `rootless` (which it implies): give files the owners the layer gives
   * them after all, as ids of a user namespace with these maps, of which the
   * caller is root (its own uid and gid are the maps' 0): so the files of uid
   * 1000 in the layer are the host's subordinate id that is 1000 in such a
   * namespace, and containers with the same maps see the layer's owners, as
   * with podman. Ownership is applied last, through the helper, as root of
   * such a namespace; owners the maps leave out stay root's (the caller's),
   * as with podman's `ignore_chown_errors`. Device nodes and xattrs other than
   * `user.*` are still skipped.
   */
  userns?: UsernsMaps | undefined;
  /**
   * With `userns`: the maps the layer's owners are ids of, when not
   * `userns` itself: each file gets the id of `userns` that is the host id
   * these maps make of its owner (ids either leaves out stay the caller's).
   */
  owners?: Pick<UsernsMaps, 'uidMap' | 'gidMap'> | undefined;
  /** Path of the native helper, for device nodes, whiteouts and xattrs. @default the built helper, see locateHelper */
  helperPath?: string;
  /**
   * Where the tar is parsed and its entries written. `'worker'`: on a worker
   * thread of a small pool (as many as there are CPUs, ended after a few idle
   * seconds), while this thread reads, decompresses and hashes the blob, so
   * the two run side by side; several layers unpack in parallel on several
   * threads, and a layer that finds every thread busy is applied on this
   * thread. `'main'`: on this thread, which saves a thread's start (tens of
   * milliseconds, once) for a tiny layer.
   * `'helper'`: parsed on this thread, the files created by the native
   * helper in a process of its own (file creation is kernel time, which then
   * runs beside decompression and parsing, with no thread's heap to pay for);
   * where no helper is found, as `'worker'`.
   * @default 'worker'
   */
  thread?: 'worker' | 'main' | 'helper';
  /**
   * With `thread: 'helper'`: each time this many bytes of content were
   * written, start flushing the target's filesystem to disk in the background
   * (syncfs(2) in a child of the helper), for a caller that flushes at the
   * end anyway: its flush then waits for the last stretch only. Nothing is
   * flushed when unset.
   */
  writeback?: number;
}

/** What {@link unpackLayer} unpacked. */
export interface UnpackResult {
  /** The diffID: `sha256:<hex>` of the uncompressed tar. */
  diffId: string;
  /** Size of the uncompressed tar in bytes. */
  size: number;
  /** Number of tar entries (whiteouts and skipped entries included). */
  entries: number;
}


/**
 * Unpacks one OCI layer blob into `target`, in one streamed pass:
 * decompress → diffID hash → tar entries → filesystem.
 *
 * `target` must be an existing, empty directory that nothing else writes to
 * while the unpack runs. Regular files, directories, symlinks, hard links,
 * device nodes and fifos (as root), ownership (as root), modes, mtimes and
 * PAX xattrs (`security.capability` included) are kept; OCI whiteouts become
 * overlayfs whiteouts (see {@link UnpackOptions.whiteouts}). Device nodes,
 * whiteouts and xattrs are applied in one native-helper batch at the end, so
 * a layer with any of them needs the helper.
 *
 * Untrusted input is contained: leading `/` is dropped (`/etc/x` is the
 * layer's `etc/x`, as in Docker), and an entry whose `..` climbs above the
 * root, that would be written through a symlink of the layer, a hard link to
 * outside or through a symlink, or a name with a NUL byte is refused.
 *
 * @returns the diffID, the uncompressed size and the number of entries.
 * @throws {@link UnsafeContentError} naming the entry that tried to leave `target`.
 * @throws {@link InvalidArgumentError} for a corrupt stream, a malformed tar, or an entry that cannot be applied.
 * @throws {@link AbortError} when `signal` aborts.
 * @throws {@link HelperError} when the helper fails to apply the batch.
 * After any throw `target` holds a partial layer: the caller must discard it.
 *
 * @example
 * ```ts
 * import { createReadStream } from 'node:fs';
 * const dir = await fs.mkdtemp(path.join(store, 'unpack-'));
 * const { diffId } = await unpackLayer(createReadStream(blobPath), dir);
 * if (diffId !== expectedDiffId) throw new Error('diffID mismatch');
 * await fs.rename(dir, snapshotPath);
 * ```
 */
export async function unpackLayer(
  source: Readable | AsyncIterable<Uint8Array>,
  target: string,
  options: UnpackOptions = {},
): Promise<UnpackResult> {
  const { signal, onProgress } = options;
  const context = 'unpack layer';
  const destroySource = (): void => {
    if (source instanceof Readable) source.destroy();
  };
  if (signal?.aborted) {
    destroySource();
    throw abortError(context, signal);
  }
  const root = path.resolve(target);
  let stats;
  try {
    stats = await fs.lstat(root);
  } catch (cause) {
    destroySource();
    throw new NotFoundError(`${context}: target \`${root}\` does not exist`, { cause, path: root });
  }
  if (!stats.isDirectory()) {
    destroySource();
    throw new InvalidArgumentError(`${context}: target \`${root}\` is not a directory`, { path: root });
  }

  const rootless = options.userns !== undefined || (options.rootless ?? (process.getuid?.() ?? 0) !== 0);
  const applierOptions: ApplierOptions = {
    rootless,
    userns: options.userns,
    ...(options.owners !== undefined ? { owners: options.owners } : {}),
    context,
    ...(options.helperPath !== undefined ? { helperPath: options.helperPath } : {}),
    ...(options.writeback !== undefined ? { writeback: options.writeback } : {}),
  };
  const sink = tarSink(root, applierOptions, options.thread ?? 'worker');
  const hash = createHash('sha256');
  let bytes = 0;
  let entries: number;

  // Unblock a read that waits on a slow source: the decompressor ends with it.
  const onAbort = (): void => destroySource();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const input = await sniffCompression(source as AsyncIterable<Uint8Array>);
    const announced = options.compression ?? 'auto';
    if (announced !== 'auto' && announced !== input.compression) {
      debug('layer blob announced as %s is %s by its magic bytes; unpacking it as %s', announced, input.compression, input.compression);
    }
    debug('%s into %s: %s%s', context, root, input.compression, options.userns !== undefined ? ', in a user namespace' : rootless ? ', rootless' : '');
    // zlib hands out a full output buffer only once it has allocated the next one: such a chunk is ours to give away.
    const owned = input.compression === 'gzip';
    // Every sink copies what it keeps (or is given the chunk to own), and so does the hash: each output
    // buffer is freed once consumed, not left for a garbage collection (see releaseBuffer).
    for await (const chunk of decompress(input.chunks, input.compression, context, { consumed: true })) {
      if (signal?.aborted) break;
      hash.update(chunk);
      bytes += chunk.byteLength;
      await sink.write(chunk, owned);
      onProgress?.({ bytes, entries: sink.entries });
    }
    if (signal?.aborted) throw abortError(context, signal);
    entries = await sink.end();
    if (signal?.aborted) throw abortError(context, signal);
  } catch (error) {
    sink.abort();
    destroySource();
    throw wrapError(signal?.aborted === true ? abortError(context, signal) : error, context);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  const diffId = `sha256:${hash.digest('hex')}`;
  debug('%s: %s, %d bytes, %d entries', context, diffId, bytes, entries);
  return { diffId, size: bytes, entries };
}

function abortError(context: string, signal: AbortSignal): AbortError {
  return new AbortError(`${context}: aborted`, { cause: signal.reason });
}

function wrapError(error: unknown, context: string): Error {
  if (error instanceof DocklessError) return error;
  const code = (error as { code?: unknown } | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return new InvalidArgumentError(`${context}: corrupt gzip stream: ${message}`, { cause: error });
  }
  if (code === 'EACCES' || code === 'EPERM') return new PermissionError(`${context}: ${printable(message)}`, { cause: error });
  // The tar parser's errors are InvalidArgumentErrors already (`malformed tar`): what is left failed writing the snapshot.
  const errno = typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? { errnoCode: code } : {};
  return new IOError(`${context}: ${printable(message)}`, { cause: error, ...errno });
}

