import { createHash } from 'node:crypto';
import { type BigIntStats, closeSync, constants, lstatSync, openSync, promises as fs, readdirSync, readSync } from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable, Transform, pipeline } from 'node:stream';
import createDebug from 'debug';
import { AbortError, InvalidArgumentError, InvalidStateError } from '../errors.js';
import { MEDIA_TYPE_OCI_LAYER, MEDIA_TYPE_OCI_LAYER_GZIP } from '../oci/index.js';
import { printable } from './entry-path.js';
import { END_OF_ARCHIVE, encodeHeader, padding, type TarEntryHeader } from './tar-header.js';
import { OPAQUE_WHITEOUT, OPAQUE_XATTR_VALUE, OVERLAY_USER_XATTR_PREFIX, OVERLAY_XATTR_PREFIX, WHITEOUT_PREFIX } from './whiteout.js';
import { fsError, lazyRequire } from '../util/index.js';

// Loaded at first use: only a layer's diff deflates, and Node's zlib costs ~0.5 ms to load.
const zlib = lazyRequire<typeof import('node:zlib')>('node:zlib');

const debug = createDebug('dockless:layer');

/**
 * Reads the xattrs of many paths at once. Node cannot read xattrs, so the
 * caller supplies a reader (backed by the native helper); `paths` are relative
 * to the upper dir.
 */
export type XattrReader = (paths: readonly string[]) => Promise<ReadonlyMap<string, ReadonlyMap<string, Uint8Array>>>;

/** Options of {@link diffToTar}. */
export interface DiffOptions {
  /**
   * Reads xattrs: needed to find opaque directories (`*.overlay.opaque=y`)
   * and to keep xattrs such as `security.capability`. Without one, the tar
   * has no xattrs and no `.wh..wh..opq` entries, which is only right for an
   * upper dir that has neither.
   */
  readXattrs?: XattrReader;
  /**
   * Clamp every mtime to at most this many seconds since the epoch, for
   * reproducible layers.
   * @default Number(process.env.SOURCE_DATE_EPOCH) when it is set, else no clamping
   */
  sourceDateEpoch?: number;
  /**
   * Maps the owner of each file (for example from a user namespace's ids back
   * to the container's); `rel` is the entry's path in the layer (`etc/passwd`).
   * @default identity
   */
  mapOwner?: (owner: { uid: number; gid: number }, rel: string) => { uid: number; gid: number };
  /** Cancels the walk and the stream. */
  signal?: AbortSignal;
}

interface WalkEntry {
  rel: string;
  stats: BigIntStats;
}

const READ_CHUNK = 1 << 20;
/** Files up to this size are read in one synchronous call. */
const SMALL_FILE = 256 * 1024;

/**
 * Produces an OCI layer tar (uncompressed) from an overlayfs upper dir: the
 * changes of one container or build step.
 *
 * Entries come in a stable order (depth first, names in byte order), with
 * uid/gid/mode kept, whole-second mtimes (clamped to `sourceDateEpoch`), no
 * user/group names and xattrs as `SCHILY.xattr.*` PAX records, so that the
 * same tree gives the same bytes. Overlay whiteouts (character devices 0:0)
 * become `.wh.<name>` entries, opaque directories get a `.wh..wh..opq` entry,
 * files with several names in the tree become hard links to the first one.
 * Overlay xattrs themselves are never copied. Sockets are skipped.
 *
 * The upper dir must not change while the stream is read; a file that does
 * makes the stream fail with {@link InvalidStateError}.
 *
 * @throws (as the stream's error) {@link InvalidArgumentError} for an upper
 *   dir using overlay `redirect_dir` or `metacopy`, which a layer cannot express.
 *
 * @example
 * ```ts
 * const { stream, result } = compressLayer(diffToTar(upper, { readXattrs }), 'gzip');
 * await pipeline(stream, createWriteStream(tmp));
 * const { digest, diffId, size } = await result;
 * ```
 */
export function diffToTar(upperDir: string, options: DiffOptions = {}): Readable {
  return Readable.from(generateTar(path.resolve(upperDir), options), { objectMode: false });
}

async function* generateTar(root: string, options: DiffOptions): AsyncGenerator<Buffer> {
  const { signal } = options;
  const epoch = options.sourceDateEpoch ?? sourceDateEpochFromEnv();
  const check = (): void => {
    if (signal?.aborted) throw new AbortError('diff layer: aborted', { cause: signal.reason });
  };
  check();
  const entries = walk(root, check);
  const xattrs = options.readXattrs ? await options.readXattrs(entries.map((e) => e.rel)) : undefined;
  if (!options.readXattrs) debug('diff layer %s: no xattr reader: xattrs and opaque directories are not written', root);
  const firstNameOf = new Map<string, string>();

  for (const { rel, stats } of entries) {
    check();
    const mode = Number(stats.mode);
    const type = mode & constants.S_IFMT;
    const { header, opaque } = layerEntryHeader(rel, stats, { epoch, mapOwner: options.mapOwner, xattrs: xattrs?.get(rel), root });
    const { mtime } = header;
    const slash = rel.lastIndexOf('/');
    const dir = slash === -1 ? '' : rel.slice(0, slash + 1);
    const base = rel.slice(slash + 1);

    if (type === constants.S_IFCHR && stats.rdev === 0n) {
      yield encodeHeader({ name: `${dir}${WHITEOUT_PREFIX}${base}`, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime });
      continue;
    }
    if (type === constants.S_IFDIR) {
      yield encodeHeader({ ...header, type: 'directory' });
      if (opaque) yield encodeHeader({ name: `${rel}/${OPAQUE_WHITEOUT}`, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime });
      continue;
    }
    if (type === constants.S_IFSOCK) {
      debug('diff layer: skipping socket `%s`', printable(rel));
      continue;
    }
    if (stats.nlink > 1n) {
      const key = `${stats.dev}:${stats.ino}`;
      const first = firstNameOf.get(key);
      if (first !== undefined) {
        yield encodeHeader({ ...header, type: 'link', linkname: first, xattrs: undefined });
        continue;
      }
      firstNameOf.set(key, rel);
    }
    const abs = path.join(root, rel);
    switch (type) {
      case constants.S_IFLNK:
        yield encodeHeader({ ...header, type: 'symlink', linkname: await fs.readlink(abs) });
        break;
      case constants.S_IFCHR:
      case constants.S_IFBLK: {
        const rdev = stats.rdev;
        yield encodeHeader({
          ...header,
          type: type === constants.S_IFCHR ? 'character-device' : 'block-device',
          devmajor: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
          devminor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
        });
        break;
      }
      case constants.S_IFIFO:
        yield encodeHeader({ ...header, type: 'fifo' });
        break;
      case constants.S_IFREG: {
        const size = Number(stats.size);
        yield encodeHeader({ ...header, size });
        if (size <= SMALL_FILE) yield readSmallFile(abs, rel, size);
        else yield* readFile(abs, rel, size, check);
        yield padding(size);
        break;
      }
      default:
        debug('diff layer: skipping `%s` of unknown type %o', printable(rel), type);
    }
  }
  yield END_OF_ARCHIVE;
}

/**
 * The tar header {@link diffToTar} writes for the upper-dir entry `rel`
 * with `stats` (type `'file'` and size 0: the caller sets what its type
 * needs), and whether the entry is an opaque directory. `xattrs` are the
 * entry's own, host ones already left out; overlay ones are dropped here.
 *
 * @throws {InvalidArgumentError} for the overlay xattrs `redirect` and `metacopy`, which a layer cannot express.
 */
export function layerEntryHeader(
  rel: string,
  stats: BigIntStats,
  options: { epoch: number | undefined; mapOwner?: DiffOptions['mapOwner'] | undefined; xattrs?: ReadonlyMap<string, Uint8Array> | undefined; root?: string },
): { header: TarEntryHeader; opaque: boolean } {
  const owner = (options.mapOwner ?? ((o) => o))({ uid: Number(stats.uid), gid: Number(stats.gid) }, rel);
  let mtime = Number(stats.mtimeMs / 1000n);
  if (options.epoch !== undefined && mtime > options.epoch) mtime = options.epoch;
  const kept = new Map<string, Uint8Array>();
  let opaque = false;
  for (const [name, value] of options.xattrs ?? []) {
    if (name.startsWith(OVERLAY_XATTR_PREFIX) || name.startsWith(OVERLAY_USER_XATTR_PREFIX)) {
      const key = name.slice(name.indexOf('.overlay.') + '.overlay.'.length);
      if (key === 'opaque' && Buffer.from(value).toString() === OPAQUE_XATTR_VALUE) opaque = true;
      else if (key === 'redirect' || key === 'metacopy') {
        throw new InvalidArgumentError(
          `diff layer: \`${printable(rel)}\` has the overlay xattr ${name}: a layer cannot express redirect_dir or metacopy; mount the overlay without them`,
          { path: options.root !== undefined ? path.join(options.root, rel) : rel },
        );
      }
      continue;
    }
    kept.set(name, value);
  }
  const header: TarEntryHeader = {
    name: rel,
    type: 'file',
    mode: Number(stats.mode) & 0o7777,
    uid: owner.uid,
    gid: owner.gid,
    size: 0,
    mtime,
    ...(kept.size > 0 ? { xattrs: kept } : {}),
  };
  return { header, opaque };
}

/**
 * The order of {@link diffToTar}'s entries, as a comparison of two of their
 * paths: depth first, the names of a directory in byte order.
 */
export function compareLayerPaths(a: string, b: string): number {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return compareBytes(x[i]!, y[i]!);
  }
  return x.length - y.length;
}

/**
 * A small file's content, read synchronously: four thread-pool round trips
 * (open, read, read, close) cost far more than the copy for the many small
 * files of a typical layer. Same contract as {@link readFile}.
 */
function readSmallFile(abs: string, rel: string, size: number): Buffer {
  const fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const buf = Buffer.allocUnsafe(size + 1);
    let done = 0;
    for (let n = -1; n !== 0 && done <= size; done += n) n = readSync(fd, buf, done, size + 1 - done, done);
    if (done !== size) {
      throw new InvalidStateError(`diff layer: \`${printable(rel)}\` changed size while it was being written`, { path: abs });
    }
    return buf.subarray(0, size);
  } finally {
    closeSync(fd);
  }
}

/** The content of one file, exactly `size` bytes; the file must not change while it is read. */
async function* readFile(abs: string, rel: string, size: number, check: () => void): AsyncGenerator<Buffer> {
  const handle = await fs.open(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    let done = 0;
    while (done < size) {
      check();
      const want = Math.min(READ_CHUNK, size - done);
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await handle.read(buf, 0, want, done);
      if (bytesRead === 0) break;
      done += bytesRead;
      yield bytesRead === want ? buf : buf.subarray(0, bytesRead);
    }
    const extra = await handle.read(Buffer.alloc(1), 0, 1, done);
    if (done !== size || extra.bytesRead !== 0) {
      throw new InvalidStateError(`diff layer: \`${printable(rel)}\` changed size while it was being written`, { path: abs });
    }
  } finally {
    await handle.close();
  }
}

/**
 * Every path below `root` (not `root` itself), depth first, names in byte
 * order. Synchronously, as the small files are read: an upper dir was just
 * written (its entries are cached), and a thread-pool round trip per entry
 * costs more than the stat, more still while the pool is busy elsewhere.
 */
function walk(root: string, check: () => void): WalkEntry[] {
  const out: WalkEntry[] = [];
  const visit = (rel: string): void => {
    check();
    const abs = rel === '' ? root : path.join(root, rel);
    let names: string[];
    try {
      names = readdirSync(abs);
    } catch (cause) {
      throw fsError(cause, `diff layer: readdir \`${printable(abs)}\``, abs);
    }
    names.sort(compareBytes);
    for (const name of names) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(path.join(abs, name), { bigint: true });
      out.push({ rel: childRel, stats: st });
      if (st.isDirectory()) visit(childRel);
    }
  };
  visit('');
  return out;
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/**
 * `SOURCE_DATE_EPOCH` from the environment, in seconds, or `undefined` when unset.
 *
 * @param context put before the error message.
 * @throws {InvalidArgumentError} when it is not a whole number.
 */
export function sourceDateEpochFromEnv(context = 'diff layer'): number | undefined {
  const value = process.env['SOURCE_DATE_EPOCH'];
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    throw new InvalidArgumentError(`${context}: SOURCE_DATE_EPOCH \`${value}\` is not a whole number of seconds`);
  }
  return n;
}

/** A layer blob's compression, as {@link compressLayer} writes it. */
export type LayerBlobCompression = 'gzip' | 'none';

/** The digests and sizes of a layer, known once its compressed stream has been read to the end. */
export interface CompressedLayerInfo {
  /** Digest of the blob (the compressed bytes): the descriptor's `digest`. */
  digest: string;
  /** Size of the blob in bytes: the descriptor's `size`. */
  size: number;
  /** Digest of the uncompressed tar: the config's `rootfs.diff_ids` entry. */
  diffId: string;
  /** Size of the uncompressed tar in bytes. */
  uncompressedSize: number;
  /** The OCI media type of the blob. */
  mediaType: string;
}

/**
 * Compresses a layer tar, computing its diffID on the way in and its digest on
 * the way out. Read `stream` to its end (store it), then `result` resolves;
 * if the stream fails, `result` rejects with the same error.
 *
 * zstd is not offered: Node 20 has no zstd compressor.
 *
 * @param level gzip level, 1 (fast) to 9 (small). @default 6, as Docker's
 */
export function compressLayer(
  tar: Readable,
  compression: LayerBlobCompression = 'gzip',
  options: { level?: number } = {},
): { stream: Readable; result: Promise<CompressedLayerInfo> } {
  if ((compression as string) !== 'gzip' && compression !== 'none') {
    throw new InvalidArgumentError(`compress layer: unsupported compression \`${String(compression)}\` (gzip or none)`);
  }
  const diff = createHash('sha256');
  const blob = createHash('sha256');
  let uncompressedSize = 0;
  let size = 0;
  const tapIn = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      diff.update(chunk);
      uncompressedSize += chunk.length;
      callback(null, chunk);
    },
  });
  const tapOut = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      blob.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  const out = new PassThrough();
  const result = new Promise<CompressedLayerInfo>((resolve, reject) => {
    const stages: NodeJS.ReadWriteStream[] =
      compression === 'gzip' ? [tapIn, zlib().createGzip({ level: options.level ?? 6, chunkSize: 256 * 1024 }), tapOut] : [tapIn, tapOut];
    pipeline([tar, ...stages, out] as unknown as [Readable, PassThrough], (error) => {
      if (error) {
        reject(error);
        return;
      }
      const diffId = `sha256:${diff.digest('hex')}`;
      resolve({
        digest: compression === 'gzip' ? `sha256:${blob.digest('hex')}` : diffId,
        size,
        diffId,
        uncompressedSize,
        mediaType: compression === 'gzip' ? MEDIA_TYPE_OCI_LAYER_GZIP : MEDIA_TYPE_OCI_LAYER,
      });
    });
  });
  // A caller that only reads the stream must not see an unhandled rejection.
  result.catch(() => {});
  return { stream: out, result };
}
