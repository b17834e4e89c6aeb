/**
 * `COPY`, `ADD` and `WORKDIR` without a container: the files go into a fresh
 * directory laid out as the overlay upper dir of the step would be (existing
 * parent directories "copied up" with their metadata, new ones created), so
 * that the layer differ turns it into the step's layer.
 *
 * @module
 */

import {
  chmodSync,
  closeSync,
  createReadStream,
  fchmodSync,
  fchownSync,
  fstatSync,
  constants as fsConstants,
  futimesSync,
  lchownSync,
  lstatSync,
  openSync,
  readFileSync,
  readSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import { chmod, copyFile, lchown, lstat, lutimes, mkdir, mkdtemp, readdir, readlink, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import createDebug from 'debug';
import { InvalidArgumentError } from '../errors.js';
import { cleanRelPath as clean, compareLayerPaths, joinRelPath as join, relParentOf as parentOf, unpackLayer, type MergedView } from '../layer/index.js';
import { contextual } from './error-context.js';
import { callerAsRoot } from './layer-from-upper.js';
import type { LayerStream } from './layer-stream.js';
import { listSource, mapLimit, type CopySource, type SourceFs } from './source-fs.js';

const debug = createDebug('dockless:build');

/** Files copied at once: enough to keep the thread pool busy. */
const COPY_CONCURRENCY = 16;
/** Files up to this size are copied with synchronous calls. */
const SMALL_FILE = 1 << 20;

/** An owner for copied files. */
export interface FileOwner {
  uid: number;
  gid: number;
}

/** How a `COPY`/`ADD` writes. */
export interface CopyOptions {
  /** Owner of everything copied and of the directories made for it. @default 0:0 (ADD from a tar: the tar's) */
  chown?: FileOwner;
  /** Permission bits of everything copied. @default the source's */
  chmod?: number;
  /** The destination is a directory (it ends with `/`, or there are several sources or wildcards). */
  destIsDir: boolean;
  /** Extract local tar archives (plain, gzip, zstd) instead of copying them (`ADD`). @default false */
  extractArchives?: boolean;
  /** mtime of the directories this step creates, in seconds. @default now */
  now?: number;
}

/** Options of {@link UpperDir}. */
export interface UpperDirOptions {
  /**
   * Record owners for the layer instead of setting them on disk, which a
   * caller that is not root cannot do (`lchown` fails with EPERM); the layer
   * then takes them from {@link UpperDir.mapOwner}.
   * @default process.getuid() !== 0
   */
  recordOwners?: boolean;
  /**
   * Where each entry written goes as it is written, for the layer's tar
   * (see {@link LayerStream}); a write it cannot take in order makes it
   * unusable. @default none
   */
  stream?: LayerStream | undefined;
}

/**
 * A fresh upper-like directory over a merged view of the state a step starts
 * from.
 */
export class UpperDir {
  /** The directory (host path). */
  readonly dir: string;
  readonly #view: MergedView | undefined;
  /** Directories whose mtime is set once everything is written: host path → seconds. */
  readonly #mtimes = new Map<string, number>();
  /** Owners recorded instead of set (see {@link UpperDirOptions.recordOwners}): root-relative path → owner. */
  readonly #owners: Map<string, FileOwner> | undefined;
  /** The owner on disk as the layer has it, when owners are recorded (the caller's ids are root's). */
  readonly #onDisk: (owner: FileOwner) => FileOwner;
  #readBuffer: Buffer | undefined;
  /** See {@link UpperDirOptions.stream}. */
  readonly stream: LayerStream | undefined;

  constructor(dir: string, view: MergedView | undefined, options: UpperDirOptions = {}) {
    this.dir = dir;
    this.#view = view;
    this.stream = options.stream;
    this.#owners = (options.recordOwners ?? (process.getuid?.() ?? 0) !== 0) ? new Map() : undefined;
    const asRoot = callerAsRoot();
    this.#onDisk = asRoot !== undefined ? (owner) => asRoot(owner, '') : (owner) => owner;
  }

  /**
   * The content of a small file (at most {@link SMALL_FILE} bytes when it
   * was listed), in a buffer this directory reuses for the next file: a
   * step's bytes then pass through one buffer, not a new one per file that
   * the GC frees only later. Valid until the next call.
   *
   * @param listed the size the file was listed with: a first read that
   *   returns exactly that much, less than it asked for, met the end of the
   *   file (a regular file's read is short only there), so no second read
   *   is made to see 0 bytes.
   */
  read(file: string, listed: number): Buffer {
    const fd = openSync(file, fsConstants.O_RDONLY);
    try {
      this.#readBuffer ??= Buffer.allocUnsafe(SMALL_FILE + 1);
      const buffer = this.#readBuffer;
      let done = readSync(fd, buffer, 0, buffer.length, null);
      if (done === listed) return buffer.subarray(0, done);
      for (let n = done; n !== 0 && done < buffer.length; done += n) n = readSync(fd, buffer, done, buffer.length - done, null);
      // It grew past the size it was listed with: read it whole.
      if (done === buffer.length) return readFileSync(file);
      return buffer.subarray(0, done);
    } finally {
      closeSync(fd);
    }
  }

  /** Whether owners are recorded for the layer rather than set on disk. */
  get recordsOwners(): boolean {
    return this.#owners !== undefined;
  }

  /** Gives `host` (a path in the directory) `owner`: on disk, or recorded for the layer. */
  async chown(host: string, owner: FileOwner): Promise<void> {
    if (this.#owners === undefined) await lchown(host, owner.uid, owner.gid);
    else this.#owners.set(path.relative(this.dir, host), owner);
  }

  /** {@link chown}, synchronously. */
  chownSync(host: string, owner: FileOwner): void {
    if (this.#owners === undefined) lchownSync(host, owner.uid, owner.gid);
    else this.#owners.set(path.relative(this.dir, host), owner);
  }

  /**
   * The owner each file gets in the layer (`storeLayer`'s `mapOwner`) when
   * owners are recorded: the recorded one, else the one on disk with the
   * caller's ids as root's. `undefined` when owners are set on disk.
   */
  mapOwner(): ((owner: FileOwner, rel: string) => FileOwner) | undefined {
    const owners = this.#owners;
    if (owners === undefined) return undefined;
    const onDisk = this.#onDisk;
    return (owner, rel) => owners.get(rel) ?? onDisk(owner);
  }

  /** Resolves a container path through the symlinks of the state below. */
  async resolve(p: string, followLast: boolean): Promise<string> {
    return this.#view !== undefined ? this.#view.resolve(p, { followLast }) : clean(p);
  }

  /** Whether `rel` is a directory in the state below. */
  async isDirBelow(rel: string): Promise<boolean> {
    return (await this.#view?.lstat(rel))?.stats.isDirectory() ?? false;
  }

  /**
   * Makes directory `rel` (root-relative, resolved) and its parents in the
   * upper dir: those that exist below are copied up (mode, owner, mtime),
   * the others are created with `mode` and `owner`.
   *
   * @throws {InvalidArgumentError} when a component exists below as a non-directory.
   */
  async ensureDir(rel: string, create: { mode: number; owner: FileOwner; mtime: number }, context: string): Promise<void> {
    const parts = clean(rel).split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      const host = path.join(this.dir, p);
      const here = await lstat(host).catch(() => undefined);
      if (here?.isDirectory()) continue;
      if (here !== undefined) {
        this.stream?.fail(`\`${p}\` replaced`);
        await rm(host, { recursive: true, force: true });
      }
      const below = await this.#view?.lstat(p);
      if (below !== undefined && !below.stats.isDirectory()) {
        throw contextual(new InvalidArgumentError(`${context}: cannot copy into \`/${p}\`: it is not a directory`));
      }
      if (below !== undefined) {
        await mkdir(host, { mode: below.stats.mode & 0o7777 });
        await chmod(host, below.stats.mode & 0o7777);
        // The state below is on disk too: as the layer has it when owners are recorded.
        await this.chown(host, this.#owners !== undefined ? this.#onDisk(below.stats) : below.stats);
        this.setDirMtime(host, Math.floor(below.stats.mtimeMs / 1000));
      } else {
        await mkdir(host, { mode: create.mode });
        await chmod(host, create.mode);
        await this.chown(host, create.owner);
        this.setDirMtime(host, create.mtime);
      }
    }
  }

  /**
   * Records the mtime a directory (just made, with its mode and owner set)
   * gets at the end (writing into it changes it meanwhile), and gives it to
   * the stream with that mtime.
   */
  setDirMtime(host: string, seconds: number): void {
    this.#mtimes.set(host, seconds);
    this.stream?.directory(path.relative(this.dir, host), lstatSync(host, { bigint: true }), seconds);
  }

  /** Sets the recorded directory mtimes, deepest first. */
  async finish(): Promise<void> {
    const dirs = [...this.#mtimes].sort(([a], [b]) => b.length - a.length);
    for (const [dir, seconds] of dirs) await utimes(dir, seconds, seconds).catch(() => undefined);
  }
}

/** Where a copy goes: the destination inside the upper dir, and the owner and time its new entries get. */
async function destinationOf(
  upper: UpperDir,
  dest: string,
  options: CopyOptions,
): Promise<{ owner: FileOwner; now: number; destRel: string; destIsDir: boolean }> {
  const destRel = await upper.resolve(dest, true);
  return {
    owner: options.chown ?? { uid: 0, gid: 0 },
    now: options.now ?? Math.floor(Date.now() / 1000),
    destRel,
    destIsDir: options.destIsDir || (await upper.isDirBelow(destRel)),
  };
}

/**
 * Copies `sources` from `fs` to `dest` (a container path) in `upper`, as
 * `COPY` does: a directory's contents (not the directory) are copied into
 * `dest`; a file goes to `dest` itself, or into it when it is a directory.
 * Symlinks below a source directory are copied as links. Owners become
 * `chown` (default root), permission bits `chmod` (default the source's);
 * mtimes are kept.
 */
export async function copySources(
  upper: UpperDir,
  fs: SourceFs,
  sources: readonly CopySource[],
  dest: string,
  options: CopyOptions,
  context: string,
): Promise<void> {
  const { owner, now, destRel, destIsDir } = await destinationOf(upper, dest, options);
  for (const source of sources) {
    const { stats } = source.entry;
    if (stats.isDirectory()) {
      await upper.ensureDir(parentOf(destRel), { mode: 0o755, owner, mtime: now }, context);
      const prefix = destRel === '' ? '' : `${destRel}/`;
      const entries = (await listSource(fs, source)).map(({ rel, entry }) => ({ target: rel === '' ? destRel : `${prefix}${rel}`, entry, root: rel === '' }));
      let copied = 0;
      if (upper.stream?.usable) {
        // One at a time, in the layer tar's order, so that the stream takes each entry as it is written.
        entries.sort((a, b) => compareLayerPaths(a.target, b.target));
        for (const e of entries) {
          await writeEntry(upper, e.target, e.entry, owner, options, context, e.root);
          await upper.stream.drained();
          // Small files are copied synchronously: let the event loop (the gzip's completions) breathe between them.
          if (++copied % 16 === 0) await new Promise((resolve) => setImmediate(resolve));
        }
        continue;
      }
      // Directories first, in order (parents before children); then the files, several at a time.
      for (const e of entries) if (e.entry.stats.isDirectory()) await writeEntry(upper, e.target, e.entry, owner, options, context, e.root);
      const rest = entries.filter((e) => !e.entry.stats.isDirectory());
      await mapLimit(rest, COPY_CONCURRENCY, async (e) => {
        await writeEntry(upper, e.target, e.entry, owner, options, context, e.root);
        // Small files are copied synchronously: let the event loop breathe between them.
        if (++copied % 64 === 0) await new Promise((resolve) => setImmediate(resolve));
      });
      continue;
    }
    if (options.extractArchives && stats.isFile() && (await isArchive(source.entry.hostPath))) {
      await upper.ensureDir(destRel, { mode: 0o755, owner, mtime: now }, context);
      await extractArchive(upper, source.entry.hostPath, destRel, options, context);
      continue;
    }
    const target = destIsDir ? join(destRel, path.posix.basename(source.rel)) : destRel;
    if (target === '') throw contextual(new InvalidArgumentError(`${context}: cannot copy a file onto the root directory`));
    await upper.ensureDir(parentOf(target), { mode: 0o755, owner, mtime: now }, context);
    await writeEntry(upper, target, source.entry, owner, options, context, false);
  }
}

/** Writes a file with the given content at `dest` (or into it, when a directory), as a `COPY <<EOF` heredoc does. */
export async function writeContent(
  upper: UpperDir,
  name: string,
  content: string,
  dest: string,
  options: CopyOptions,
  context: string,
): Promise<void> {
  const { owner, now, destRel, destIsDir } = await destinationOf(upper, dest, options);
  upper.stream?.fail('content is written');
  const target = destIsDir ? join(destRel, name) : destRel;
  await upper.ensureDir(parentOf(target), { mode: 0o755, owner, mtime: now }, context);
  const host = path.join(upper.dir, target);
  await rm(host, { recursive: true, force: true });
  const mode = options.chmod ?? 0o644;
  await writeFile(host, content, { mode });
  await chmod(host, mode);
  await upper.chown(host, owner);
  await utimes(host, now, now);
}

async function writeEntry(
  upper: UpperDir,
  target: string,
  entry: { stats: import('node:fs').Stats; hostPath: string },
  owner: FileOwner,
  options: CopyOptions,
  context: string,
  isSourceRoot: boolean,
): Promise<void> {
  const { stats } = entry;
  // `target` is clean (resolved, then names from listings): no `path.join` per file.
  const host = target === '' ? upper.dir : `${upper.dir}/${target}`;
  const mtime = Math.floor(stats.mtimeMs / 1000);
  if (stats.isDirectory()) {
    const existing = await lstat(host).catch(() => undefined);
    if (existing !== undefined && !existing.isDirectory()) {
      upper.stream?.fail(`\`${target}\` replaced`);
      await rm(host, { force: true });
    }
    if (existing?.isDirectory()) return;
    if (isSourceRoot && (await upper.isDirBelow(target))) {
      // Copying into a directory that exists keeps its metadata.
      await upper.ensureDir(target, { mode: 0o755, owner, mtime }, context);
      return;
    }
    const mode = options.chmod ?? stats.mode & 0o7777;
    if (target === '') return;
    await mkdir(host, { mode });
    await chmod(host, mode);
    await upper.chown(host, owner);
    upper.setDirMtime(host, mtime);
    return;
  }
  if (stats.isFile() && stats.size <= SMALL_FILE) {
    // Small files synchronously: a few quick syscalls, where each async call costs a thread-pool round trip.
    // Its O_EXCL open says whether something is there already, instead of an lstat per file.
    const mode = options.chmod ?? stats.mode & 0o7777;
    const size = stats.size;
    if (copySmallFile(upper, entry.hostPath, size, host, target, mode, owner, mtime)) return;
    await replaced(upper, host, target);
    if (!copySmallFile(upper, entry.hostPath, size, host, target, mode, owner, mtime)) {
      throw contextual(new InvalidArgumentError(`${context}: \`/${target}\` was made again while it was copied`, { path: host }));
    }
    return;
  }
  if (lstatSync(host, { throwIfNoEntry: false }) !== undefined) await replaced(upper, host, target);
  if (stats.isFile()) {
    await copyFile(entry.hostPath, host, fsConstants.COPYFILE_FICLONE);
    upper.chownSync(host, owner);
    // After the chown, which clears setuid and setgid bits.
    chmodSync(host, options.chmod ?? stats.mode & 0o7777);
    utimesSync(host, mtime, mtime);
    await upper.stream?.fileFrom(target, lstatSync(host, { bigint: true }), host);
  } else if (stats.isSymbolicLink()) {
    const to = await readlink(entry.hostPath);
    await symlink(to, host);
    await upper.chown(host, owner);
    await lutimes(host, mtime, mtime);
    upper.stream?.symlink(target, lstatSync(host, { bigint: true }), to);
  } else {
    debug('%s: skipping `%s`: not a file, directory or symlink', context, entry.hostPath);
  }
}

/** Removes what is at `host` (copied before in this step), which the layer stream cannot take back. */
async function replaced(upper: UpperDir, host: string, target: string): Promise<void> {
  upper.stream?.fail(`\`${target}\` replaced`);
  await rm(host, { recursive: true, force: true });
}

/** Copies a small file to `to`; false (nothing done) when something is at `to` already. */
function copySmallFile(upper: UpperDir, from: string, size: number, to: string, rel: string, mode: number, owner: FileOwner, mtime: number): boolean {
  let fd: number;
  try {
    fd = openSync(to, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  const data = upper.read(from, size);
  try {
    writeSync(fd, data);
    if (!upper.recordsOwners) fchownSync(fd, owner.uid, owner.gid);
    else upper.chownSync(to, owner);
    // After the chown, which clears setuid and setgid bits.
    fchmodSync(fd, mode);
    futimesSync(fd, mtime, mtime);
    // The data written, not the source read again: the tar has what the file has even if the source changes meanwhile.
    upper.stream?.file(rel, fstatSync(fd, { bigint: true }), data);
  } finally {
    closeSync(fd);
  }
  return true;
}

const TAR_MAGIC_OFFSET = 257;

/** Whether a file is a tar archive, plain or gzip/zstd-compressed (as `ADD` recognises them). */
async function isArchive(file: string): Promise<boolean> {
  const head = await readHead(file, 512);
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return true;
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return true;
  return head.length >= TAR_MAGIC_OFFSET + 5 && head.subarray(TAR_MAGIC_OFFSET, TAR_MAGIC_OFFSET + 5).toString('latin1') === 'ustar';
}

async function readHead(file: string, size: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of createReadStream(file, { start: 0, end: size - 1 })) {
    chunks.push(chunk as Buffer);
    total += (chunk as Buffer).length;
  }
  return Buffer.concat(chunks, total);
}

/** Extracts an archive into `destRel` of the upper dir, merging with what is there. */
async function extractArchive(upper: UpperDir, archive: string, destRel: string, options: CopyOptions, context: string): Promise<void> {
  const tmp = await mkdtemp(path.join(upper.dir, '.dockless-add-'));
  try {
    upper.stream?.fail('an archive is extracted');
    await unpackLayer(createReadStream(archive), tmp, { rootless: process.getuid?.() !== 0 });
    const destHost = path.join(upper.dir, destRel);
    await mergeInto(tmp, destHost);
    if (options.chown !== undefined || options.chmod !== undefined) await applyOwnerMode(upper, destHost, options);
  } catch (cause) {
    throw contextual(new InvalidArgumentError(`${context}: extract \`${archive}\`: ${(cause as Error).message}`, { cause, path: archive }));
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function mergeInto(from: string, to: string): Promise<void> {
  for (const name of await readdir(from)) {
    const src = path.join(from, name);
    const dst = path.join(to, name);
    const [s, d] = await Promise.all([lstat(src), lstat(dst).catch(() => undefined)]);
    if (s.isDirectory() && d?.isDirectory()) {
      await mergeInto(src, dst);
      continue;
    }
    if (d !== undefined) await rm(dst, { recursive: true, force: true });
    await rename(src, dst);
  }
}

async function applyOwnerMode(upper: UpperDir, dir: string, options: CopyOptions): Promise<void> {
  for (const name of await readdir(dir)) {
    const p = path.join(dir, name);
    const st = await lstat(p);
    if (options.chown !== undefined) await upper.chown(p, options.chown);
    if (options.chmod !== undefined && !st.isSymbolicLink()) await chmod(p, options.chmod);
    if (st.isDirectory()) await applyOwnerMode(upper, p, options);
  }
}

