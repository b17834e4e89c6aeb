/**
 * From an upper dir to a layer in the store: tidy what the runtime left in
 * it, diff it to a reproducible tar, gzip it and store the blob.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import { type BigIntStats, lstatSync, lutimesSync, readdirSync, unlinkSync, type Stats } from 'node:fs';
import { lstat, readdir, rm, rmdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { AbortError, InvalidArgumentError, InvalidStateError, IOError, NotFoundError, PermissionError, UnsafeContentError } from '../errors.js';
import { type Descriptor, type Digest, MEDIA_TYPE_OCI_LAYER_GZIP } from '../oci/index.js';
import { locateHelper, readXattrs, spawnInUserns, type UsernsMaps, type XattrMap } from '../helper/index.js';
import { lazyRequire, releaseBuffer } from '../util/index.js';
import { type DiffOptions, diffToTar, type MergedView, OPAQUE_XATTR_VALUE, OVERLAY_USER_XATTR_PREFIX, OVERLAY_XATTR_PREFIX } from '../layer/index.js';
import { DEFAULT_MOUNTS } from '../runtime/index.js';
import type { ImageStoreCore as ImageStore, Lease } from '../store/index.js';

/**
 * Paths the runtime mounts over in every container (`/proc`, `/dev`, `/sys`,
 * the generated /etc files): when an image lacks them, the runtime creates
 * them in the upper dir, and they are no change of the image.
 */
export const RUNTIME_MOUNT_POINTS: readonly string[] = Object.freeze([
  ...DEFAULT_MOUNTS.map((m) => m.target),
  '/etc/hostname',
  '/etc/hosts',
  '/etc/resolv.conf',
]);

// Loaded with the first layer a build makes: importing the library loads this file, and Node's zlib costs ~0.5 ms to load.
const zlib = lazyRequire<typeof import('node:zlib')>('node:zlib');

/** The overlayfs xattrs a directory may have and still become a snapshot (see {@link prepareForAdoption}). */
const ADOPTABLE_OVERLAY_XATTRS = new Set(['opaque', 'origin', 'impure']);

/** xattrs that describe the host, not the image: never put in a layer. */
const HOST_XATTRS = new Set(['security.selinux']);

/** What {@link storeLayer} stored. */
export interface StoredLayer {
  /** The gzip layer blob's descriptor. */
  descriptor: Descriptor;
  /** The digest of the uncompressed tar. */
  diffId: Digest;
  /** The size of the uncompressed tar. */
  uncompressedSize: number;
  /** The xattrs the layer was made with (all of them, overlay ones included), by path. */
  xattrs: XattrMap;
}

/** Options of {@link storeLayer}. */
export interface StoreLayerOptions {
  /** Holds the blob until an image or a cache entry refers to it. */
  lease: Lease;
  /** Clamp mtimes to this (seconds); see `diffToTar`. */
  sourceDateEpoch?: number | undefined;
  /** gzip level. @default {@link DEFAULT_COMPRESSION_LEVEL} */
  compressionLevel?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Path of the native helper. */
  helperPath?: string | undefined;
  /** The owner each file gets in the layer (see `diffToTar`). @default the owner on disk */
  mapOwner?: DiffOptions['mapOwner'] | undefined;
  /**
   * Every xattr of the files in `upper`, read already (what {@link pruneUpper}
   * returns), so that the diff need not read them again. @default read from disk
   */
  xattrs?: XattrMap | undefined;
}

/**
 * Stores the changes in `upper` (an overlay upper dir, or a directory laid
 * out as one) as a gzip layer: entries sorted, mtimes clamped to
 * `sourceDateEpoch`, overlay whiteouts and opaque directories as OCI
 * whiteouts, `security.capability` and other xattrs kept (not
 * `security.selinux`).
 */
export async function storeLayer(store: ImageStore, upper: string, options: StoreLayerOptions): Promise<StoredLayer> {
  const diffed = upperTar(upper, options);
  return { ...(await storeTar(store, diffed.tar, options)), xattrs: diffed.xattrs() };
}

/**
 * The layer tar of `upper` (see {@link storeLayer}) and, once it has been
 * read, every xattr of its files.
 */
export function upperTar(
  upper: string,
  options: Pick<StoreLayerOptions, 'sourceDateEpoch' | 'signal' | 'helperPath' | 'mapOwner' | 'xattrs'>,
): { tar: Readable; xattrs: () => XattrMap } {
  let xattrs: XattrMap = new Map();
  const known = options.xattrs;
  const tar = diffToTar(upper, {
    readXattrs: async (paths) => {
      xattrs =
        known !== undefined
          ? new Map(paths.flatMap((p) => (known.has(p) ? [[p, known.get(p)!] as const] : [])))
          : await readXattrs(upper, paths, { context: `diff \`${upper}\``, ...(options.helperPath !== undefined ? { helperPath: options.helperPath } : {}) });
      return layerXattrs(xattrs);
    },
    ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
    ...(options.mapOwner !== undefined ? { mapOwner: options.mapOwner } : {}),
  });
  return { tar, xattrs: () => xattrs };
}

/** The xattrs of `xattrs` (every path's, as read from disk) that a layer keeps: those that describe the host left out. */
export function layerXattrs(xattrs: XattrMap): XattrMap {
  const kept: XattrMap = new Map();
  for (const [p, attrs] of xattrs) {
    const copy = new Map([...attrs].filter(([name]) => !HOST_XATTRS.has(name)));
    if (copy.size > 0) kept.set(p, copy);
  }
  return kept;
}

/** gzips a layer tar into a blob of the store, computing its diffID on the way. */
export async function storeTar(
  store: ImageStore,
  tar: AsyncIterable<Buffer>,
  options: Pick<StoreLayerOptions, 'lease' | 'compressionLevel' | 'signal'>,
  release?: (chunk: Buffer) => void,
): Promise<Omit<StoredLayer, 'xattrs'>> {
  const diff = createHash('sha256');
  let uncompressedSize = 0;
  const gzip = gzipMembers(
    tar,
    options.compressionLevel ?? DEFAULT_COMPRESSION_LEVEL,
    (chunk) => {
      diff.update(chunk);
      uncompressedSize += chunk.length;
    },
    release,
    true,
  );
  // Iterated as it is, not through a Readable, which would read ahead of the blob writer: the writer
  // has copied a chunk once it asks for the next one, so gzipMembers may free it then.
  const descriptor = await store.putBlob(gzip, {
    mediaType: MEDIA_TYPE_OCI_LAYER_GZIP,
    lease: options.lease,
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
  });
  return { descriptor, diffId: `sha256:${diff.digest('hex')}`, uncompressedSize };
}

/** Options of {@link storeUpperInUserns}. */
export interface UsernsUpperOptions extends Omit<StoreLayerOptions, 'mapOwner'> {
  /** The container's user namespace, whose ids the upper dir's files have. */
  userns: UsernsMaps;
  /** The image's layers below the upper dir, top-most first (for {@link pruneUpper}). */
  lowers: readonly string[];
  /** What {@link pruneUpper} removes when the image lacks it. */
  placeholders: readonly string[];
  /**
   * Copy the upper dir here first and diff the copy (removed after): for a
   * running container, whose mount points are live in its namespace.
   */
  copyTo?: string | undefined;
}

/** What the userns worker is asked to do; it reads this as JSON on its stdin. */
export interface UsernsUpperJob {
  upper: string;
  lowers: readonly string[];
  placeholders: readonly string[];
  helperPath: string;
  sourceDateEpoch?: number | undefined;
  copyTo?: string | undefined;
}

/** The last line of the userns worker's stderr when it fails. */
export const USERNS_WORKER_ERROR = 'dockless-userns-worker-error ';

/**
 * {@link pruneUpper} and {@link storeLayer} for a rootless container's upper
 * dir, done by a Node process of ours that runs as root of a user namespace
 * with the container's maps (the helper's `userns-exec`): the container may
 * have left files of its subordinate ids that the caller cannot read (0600,
 * 0700 directories), which that namespace's root can. Inside it, files have
 * the container's own ids, which is what the layer records.
 *
 * @throws {@link HelperError} when the namespace cannot be set up; the worker's own failure as the class it had (`IOError` by default).
 */
export async function storeUpperInUserns(store: ImageStore, upper: string, options: UsernsUpperOptions): Promise<StoredLayer> {
  const context = `diff \`${upper}\` in the container's user namespace`;
  const job: UsernsUpperJob = {
    upper,
    lowers: options.lowers,
    placeholders: options.placeholders,
    helperPath: locateHelper(options.helperPath),
    ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}),
    ...(options.copyTo !== undefined ? { copyTo: options.copyTo } : {}),
  };
  const argv = [process.execPath, ...loaderArgs(process.execArgv), USERNS_WORKER];
  const env = process.env.DEBUG !== undefined ? [`DEBUG=${process.env.DEBUG}`] : [];
  const helper = spawnInUserns(options.userns, argv, { context, helperPath: job.helperPath, env });
  const onAbort = (): void => void helper.child.kill('SIGKILL');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let stderr = '';
  helper.child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-16384);
  });
  helper.child.stdin?.on('error', () => undefined);
  helper.child.stdin?.end(JSON.stringify(job));
  try {
    let stored: Omit<StoredLayer, 'xattrs'> | undefined;
    let storing: unknown;
    try {
      stored = await storeTar(store, helper.child.stdout as AsyncIterable<Buffer>, options);
    } catch (err) {
      storing = err;
      helper.child.kill('SIGKILL');
    }
    await helper.exit;
    if (options.signal?.aborted) throw new AbortError(`${context}: aborted`, { cause: options.signal.reason });
    if (helper.failure !== undefined) throw helper.failure;
    const exited = helper.statuses.find((s) => s.type === 'exited');
    if (exited?.type === 'exited' && exited.code !== 0) throw workerError(context, stderr, exited.code);
    if (storing !== undefined) throw storing;
    return { ...stored!, xattrs: new Map() };
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

const USERNS_WORKER = fileURLToPath(new URL(`./userns-worker${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url));

/** The options of Node's own command line that load code (a TypeScript loader in tests), for the worker to run the same way. */
function loaderArgs(execArgv: readonly string[]): string[] {
  const out: string[] = [];
  const withValue = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader']);
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i]!;
    if (withValue.has(a) && i + 1 < execArgv.length) out.push(a, execArgv[++i]!);
    else if ([...withValue].some((o) => a.startsWith(`${o}=`))) out.push(a);
  }
  return out;
}

function workerError(context: string, stderr: string, code: number): Error {
  const line = stderr.split('\n').reverse().find((l) => l.startsWith(USERNS_WORKER_ERROR));
  let reported: { name?: string; message?: string; path?: string; errnoCode?: string } = {};
  try {
    if (line !== undefined) reported = JSON.parse(line.slice(USERNS_WORKER_ERROR.length)) as typeof reported;
  } catch {
    /* a torn line: the stderr tail says it */
  }
  const message = `${context}: ${reported.message ?? `the worker exited with code ${code}: ${stderr.trim().slice(-2000)}`}`;
  const details = reported.path !== undefined ? { path: reported.path } : {};
  switch (reported.name) {
    case 'InvalidArgumentError':
      return new InvalidArgumentError(message, details);
    case 'InvalidStateError':
      return new InvalidStateError(message, details);
    case 'NotFoundError':
      return new NotFoundError(message, details);
    case 'PermissionError':
      return new PermissionError(message, details);
    case 'UnsafeContentError':
      return new UnsafeContentError(message, details);
    default:
      return new IOError(message, { ...details, ...(reported.errnoCode !== undefined ? { errnoCode: reported.errnoCode } : {}) });
  }
}

/**
 * For a caller that is not root, whose files cannot have other owners: its
 * own uid and gid become root's (0:0) in the layer, as a rootless
 * `docker import` makes them; other ids are kept. `undefined` for root.
 */
export function callerAsRoot(): DiffOptions['mapOwner'] {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  if (uid === 0) return undefined;
  return (owner) => ({ uid: owner.uid === uid ? 0 : owner.uid, gid: owner.gid === gid ? 0 : owner.gid });
}

/**
 * Readies a directory a layer was just made from to become that layer's
 * snapshot (`ImageStore.adoptSnapshot`), so the layer need not be unpacked
 * again: mtimes become what the tar says (whole seconds, clamped to
 * `sourceDateEpoch`), sockets (which the tar leaves out) go.
 *
 * A container's upper dir also has overlayfs's `origin` and `impure` xattrs
 * on what was copied up, which an unpack would not write: overlayfs reads
 * them on its upper layer only (a lower layer's are ignored) and hides
 * every `*.overlay.*` xattr from the container, so they change nothing. Any
 * other overlayfs xattr (`redirect`, `metacopy`, `nlink`, …) makes the
 * directory unfit.
 *
 * @returns the number of tar entries, or `undefined` when the directory cannot stand for the layer.
 */
export function prepareForAdoption(dir: string, xattrs: XattrMap, sourceDateEpoch: number | undefined): number | undefined {
  if (!adoptable(xattrs)) return undefined;
  return adoptionEntries(settleForAdoption(dir, sourceDateEpoch), xattrs);
}

/**
 * What {@link settleForAdoption} found: the entries of the directory and
 * which of them are directories.
 */
export interface SettledDir {
  /** Entries, sockets left out. */
  entries: number;
  /** Paths of its directories, relative to it. */
  dirs: Set<string>;
  /** Every entry (sockets left out) by path, relative to it, as found before its mtime was settled. */
  stats: Map<string, BigIntStats>;
}

/**
 * The part of {@link prepareForAdoption} that changes the directory (mtimes,
 * sockets), done before its layer's tar is made (the tar is the same either
 * way); its walk gives the entries a streamed tar is checked against.
 */
export function settleForAdoption(dir: string, sourceDateEpoch: number | undefined): SettledDir {
  const settled: SettledDir = { entries: 0, dirs: new Set(), stats: new Map() };
  const visit = (rel: string): void => {
    const abs = rel === '' ? dir : path.join(dir, rel);
    for (const name of readdirSync(abs)) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const child = path.join(dir, childRel);
      const st = lstatSync(child, { bigint: true });
      if (st.isSocket()) {
        unlinkSync(child);
        continue;
      }
      settled.entries++;
      settled.stats.set(childRel, st);
      if (st.isDirectory()) {
        visit(childRel);
        settled.dirs.add(childRel);
      }
      // After the children: writing them changes a directory's mtime.
      let seconds = Number(st.mtimeNs / 1_000_000_000n);
      if (sourceDateEpoch !== undefined && seconds > sourceDateEpoch) seconds = sourceDateEpoch;
      // A file a COPY wrote has its times set already (whole seconds, atime = mtime): one syscall less per file.
      const settledNs = BigInt(seconds) * 1_000_000_000n;
      if (st.isDirectory() || st.mtimeNs !== settledNs || st.atimeNs !== settledNs) lutimesSync(child, seconds, seconds);
    }
  };
  visit('');
  return settled;
}

/**
 * The tar entries of a directory {@link settleForAdoption} settled, given
 * the xattrs its layer was made with, or `undefined` when it cannot stand
 * for the layer (see {@link prepareForAdoption}).
 */
export function adoptionEntries(settled: SettledDir, xattrs: XattrMap): number | undefined {
  if (!adoptable(xattrs)) return undefined;
  let entries = settled.entries;
  for (const rel of settled.dirs) {
    if (xattrs.get(rel)?.has(`${OVERLAY_XATTR_PREFIX}opaque`) || xattrs.get(rel)?.has(`${OVERLAY_USER_XATTR_PREFIX}opaque`)) entries++;
  }
  return entries;
}

function adoptable(xattrs: XattrMap): boolean {
  for (const attrs of xattrs.values()) {
    for (const name of attrs.keys()) {
      const overlay = name.startsWith(OVERLAY_XATTR_PREFIX) || name.startsWith(OVERLAY_USER_XATTR_PREFIX);
      if (overlay && !ADOPTABLE_OVERLAY_XATTRS.has(name.slice(name.indexOf('.overlay.') + '.overlay.'.length))) return false;
    }
  }
  return true;
}

/** The gzip level of build layers: fast, since a build compresses every layer it makes. */
export const DEFAULT_COMPRESSION_LEVEL = 1;
/** The uncompressed bytes of each gzip member. */
export const GZIP_MEMBER_SIZE = 1 << 20;
const MEMBER_SIZE = GZIP_MEMBER_SIZE;

/**
 * gzip of a stream as a series of members (RFC 1952 §2.2: a gzip file is a
 * series of members, which every gzip reader, Go's and zlib's included,
 * reads as one stream), each of exactly {@link MEMBER_SIZE} uncompressed bytes
 * but the last, compressed in parallel on the thread pool, in order. The
 * output depends only on the input bytes and the level. Batching also spares
 * zlib a thread-pool round trip per small tar chunk. An input chunk of
 * exactly one member's size is compressed as it is, and handed to `release`
 * once compressed, for its producer to fill again.
 *
 * @param consumed - the reader is done with each output chunk once it asks
 *   for the next (it copies what it keeps): zlib's output buffers are then
 *   freed as soon as read, not at a later garbage collection.
 */
export async function* gzipMembers(
  input: AsyncIterable<Buffer>,
  level: number,
  onInput: (chunk: Buffer) => void,
  release?: (chunk: Buffer) => void,
  consumed = false,
): AsyncGenerator<Buffer> {
  const parallel = Math.max(2, availableParallelism());
  const queue: Promise<Buffer[]>[] = [];
  let pending: Buffer[] = [];
  let pendingSize = 0;
  const output = new OutputSizer();
  // Members cut from several input chunks are copied into these, used again once compressed.
  const spare: Buffer[] = [];
  const cut = (size: number): void => {
    let block: Buffer;
    let done: (() => void) | undefined;
    if (pending.length === 1 && pending[0]!.length === size) {
      block = pending[0]!;
      if (release !== undefined) done = () => release(block);
      pending = [];
      pendingSize = 0;
    } else {
      const into = spare.pop() ?? Buffer.allocUnsafe(MEMBER_SIZE);
      let filled = 0;
      while (filled < size) {
        const head = pending[0]!;
        const n = head.copy(into, filled, 0, size - filled);
        filled += n;
        if (n === head.length) pending.shift();
        else pending[0] = head.subarray(n);
      }
      pendingSize -= size;
      block = into.subarray(0, size);
      done = () => spare.push(into);
    }
    const member = gzipMember(block, level, output.guess(block.length));
    member.then((out) => {
      output.saw(block.length, out.reduce((n, c) => n + c.length, 0));
      done?.();
    }, () => undefined);
    queue.push(member);
  };
  for await (const chunk of input) {
    onInput(chunk);
    pending.push(chunk);
    pendingSize += chunk.length;
    while (pendingSize >= MEMBER_SIZE) {
      cut(MEMBER_SIZE);
      while (queue.length >= parallel) yield* handOut(await queue.shift()!, consumed);
    }
  }
  if (pendingSize > 0 || queue.length === 0) cut(pendingSize);
  while (queue.length > 0) yield* handOut(await queue.shift()!, consumed);
}

/**
 * The pieces of one member, in order; with `consumed` (the reader is done with
 * a piece once it asks for the next), zlib's output buffers behind them are
 * freed once all are read, not left for a garbage collection: each is a new
 * allocation of about the member's compressed size, and a build's young
 * generation let tens of MiB of them wait (see releaseBuffer).
 */
function* handOut(pieces: Buffer[], consumed: boolean): Generator<Buffer> {
  yield* pieces;
  if (!consumed) return;
  let last: ArrayBufferLike | undefined;
  for (const piece of pieces) {
    // Node's shared pool is never freed (zlib's buffers are at least 16 KiB, so never from it).
    if (piece.buffer !== last && piece.buffer.byteLength !== Buffer.poolSize) releaseBuffer(piece.buffer);
    last = piece.buffer;
  }
}

/**
 * One gzip member of `block`, as `zlib.gzip` makes it, in the pieces zlib
 * wrote it in (slices of its output buffers), not copied again into one.
 */
function gzipMember(block: Buffer, level: number, chunkSize: number): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const gzip = zlib().createGzip({ level, chunkSize });
    const out: Buffer[] = [];
    gzip.on('data', (chunk: Buffer) => out.push(chunk));
    gzip.on('end', () => resolve(out));
    gzip.on('error', reject);
    gzip.end(block);
  });
}

/** The smallest output buffer {@link OutputSizer} asks zlib for (its default chunk). */
const MIN_OUTPUT = 16 * 1024;

/**
 * The output buffer size (zlib's `chunkSize`) to compress a member with.
 * zlib's default, 16 KiB, costs a thread-pool round trip per 16 KiB of
 * output, each waiting for the main thread to hand out the next buffer: a
 * build's main thread, busy copying files, left the gzip threads idle most
 * of the time (50 ms for a 1 MiB member of 9 ms of work). One buffer that
 * holds the whole member makes it one trip; sized from the ratio of the
 * members compressed so far, plus a margin, it wastes little memory (each
 * member's buffer is a new allocation, freed only by the GC). A member whose
 * output does not fit takes more trips, with the same output.
 */
class OutputSizer {
  /** Output bytes per input byte, of the members seen; text compresses to about a third. */
  #ratio = 0.5;

  guess(input: number): number {
    const bound = input + (input >> 10) + 1024;
    return Math.max(MIN_OUTPUT, Math.min(bound, Math.ceil(input * this.#ratio * 1.125) + 1024));
  }

  saw(input: number, output: number): void {
    if (input >= MIN_OUTPUT) this.#ratio = output / input;
  }
}

/**
 * Removes from a container's upper dir what is no change of the image:
 *
 * - `placeholders`: mount points the runtime created because the image
 *   lacked them (`/proc`, `/etc/hosts`, …): empty, and absent below;
 * - directories that were only copied up (same mode and owner as below, not
 *   opaque) and hold nothing once the above is gone: overlayfs copies a
 *   directory up when something in it is touched, even if nothing stays.
 *
 * So a `RUN` that changes nothing makes an empty layer, whatever the
 * runtime had to mount.
 *
 * @returns every xattr of what is left in `upper`, by path: give it to
 *   {@link storeLayer} as `xattrs`.
 */
export async function pruneUpper(upper: string, below: MergedView | undefined, placeholders: readonly string[], helperPath?: string): Promise<XattrMap> {
  const placeholderSet = new Set(placeholders.map((p) => p.replace(/^\/+/, '')));
  for (const rel of placeholderSet) {
    const host = path.join(upper, rel);
    const st = await lstat(host).catch(() => undefined);
    if (st === undefined || (await below?.lstat(rel)) !== undefined) continue;
    if (st.isFile() && st.size === 0) await rm(host, { force: true });
    else if (st.isDirectory() && (await readdir(host)).length === 0) await rmdir(host).catch(() => undefined);
  }
  // Empty directories, deepest first, and whether they could be dropped.
  const dirs: { rel: string; stats: Stats }[] = [];
  const all: string[] = [];
  // Synchronously: the container has just written these entries (they are cached), and the
  // thread pool may be busy reading the build context for a later COPY.
  const walk = (rel: string): void => {
    for (const name of readdirSync(path.join(upper, rel))) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(path.join(upper, childRel));
      all.push(childRel);
      if (st.isDirectory()) {
        walk(childRel);
        dirs.push({ rel: childRel, stats: st });
      }
    }
  };
  walk('');
  // Every entry's, not only the directories': one helper run serves this and the diff after it.
  const xattrs = await readXattrs(upper, all, { context: `diff \`${upper}\``, ...(helperPath !== undefined ? { helperPath } : {}) });
  const isOpaque = (rel: string): boolean => {
    const attrs = xattrs.get(rel);
    return [OVERLAY_XATTR_PREFIX, OVERLAY_USER_XATTR_PREFIX].some((p) => {
      const v = attrs?.get(`${p}opaque`);
      return v !== undefined && Buffer.from(v).toString() === OPAQUE_XATTR_VALUE;
    });
  };
  const isPlaceholderParent = (rel: string): boolean => [...placeholderSet].some((p) => p.startsWith(`${rel}/`));
  for (const { rel, stats } of dirs) {
    const host = path.join(upper, rel);
    if ((await readdir(host)).length > 0 || isOpaque(rel)) continue;
    const lower = await below?.lstat(rel);
    const unchanged =
      lower === undefined
        ? isPlaceholderParent(rel)
        : lower.stats.isDirectory() &&
          (lower.stats.mode & 0o7777) === (stats.mode & 0o7777) &&
          lower.stats.uid === stats.uid &&
          lower.stats.gid === stats.gid;
    if (unchanged) await rmdir(host).then(() => xattrs.delete(rel), () => undefined);
  }
  return xattrs;
}
