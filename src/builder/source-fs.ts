/**
 * Where `COPY`/`ADD` read from: the build context (a host directory filtered
 * by `.dockerignore`) or another image or stage (a {@link MergedView}); and
 * the content digest of what is copied, for the build cache.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import { close as closeFd, lstatSync, open as openFd, read as readFd, readdirSync, type Stats } from 'node:fs';
import { readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import createDebug from 'debug';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import type { Digest } from '../oci/index.js';
import { ensureDir, writeFileAtomic } from '../util/index.js';
import { contextual } from './error-context.js';
import { cleanRelPath as clean, type MergedView } from '../layer/index.js';
import { DockerIgnore, globToRegExp, hasWildcards } from './patterns.js';

const debug = createDebug('dockless:build');

const MAX_SYMLINKS = 40;
/** How long after a file changed its cached digest is trusted: clocks tick coarsely (git's "racy" files). */
const RACY_MS = 1000;

/** One file, directory or symlink of a {@link SourceFs}. */
export interface SourceEntry {
  stats: Stats;
  /** Where to read it on the host. */
  hostPath: string;
}

/** A tree `COPY`/`ADD` read from. Paths are root-relative, `/`-separated. */
export interface SourceFs {
  /** What it is, for messages: `build context \`/src\``, `stage build`. */
  readonly label: string;
  /** The entry at `rel`, not following a final symlink. */
  lstat(rel: string): Promise<SourceEntry | undefined>;
  /** The visible names in the directory `rel`, sorted. */
  readdir(rel: string): Promise<string[] | undefined>;
  /**
   * {@link SourceFs.lstat} and {@link SourceFs.readdir} as synchronous calls, when they
   * are (the build context): a walk then makes no promise per entry.
   */
  readonly sync?: { lstat(rel: string): SourceEntry | undefined; readdir(rel: string): string[] | undefined };
  /** `rel` with its symlinks resolved inside the tree. */
  resolve(rel: string, followLast: boolean): Promise<string>;
  /** The digest of a regular file's content. */
  fileDigest(rel: string, entry: SourceEntry): Promise<string>;
  /** The digest of a regular file's content when it is known without reading the file, else undefined. */
  knownDigest?(rel: string, entry: SourceEntry): string | undefined;
  /** Readies {@link SourceFs.knownDigest}. */
  loadDigests?(): Promise<void>;
  /**
   * The digests of source lists already taken in this build, by their paths: a
   * `COPY` meets the one that the build's look-ahead started (the same walk and
   * stats, done once).
   */
  readonly sourceDigests?: Map<string, Promise<Digest>>;
  /**
   * The walks of sources already taken in this build, by path (see
   * {@link listSource}): the look-ahead's digest and the `COPY` then stat
   * each file once, not twice.
   */
  readonly sourceWalks?: Map<string, Promise<WalkedEntry[]>>;
}

/** One entry of a source's walk ({@link walkSource}): its path relative to the source (`''` for the source itself) and what it is. */
export interface WalkedEntry {
  rel: string;
  entry: SourceEntry;
}

/** The build context: a host directory, less what `.dockerignore` excludes. */
export class ContextFs implements SourceFs {
  readonly label: string;
  /** The context directory (absolute). */
  readonly dir: string;
  /** The `.dockerignore` rules. */
  readonly ignore: DockerIgnore;
  readonly #digests: FileDigestCache | undefined;
  readonly sourceDigests = new Map<string, Promise<Digest>>();
  readonly sourceWalks = new Map<string, Promise<WalkedEntry[]>>();
  /** `dir` and a slash: a host path is this and a clean relative path (no `path.join`, which normalises again, per file). */
  readonly #prefix: string;

  /**
   * @param dir the context directory.
   * @param ignore what to leave out.
   * @param digestCache where to keep file digests between builds (keyed by path, size, times and
   *   inode), and the directory for its atomic writes (on the same filesystem).
   */
  constructor(dir: string, ignore: DockerIgnore, digestCache?: { dir: string; tmpDir: string }) {
    this.dir = path.resolve(dir);
    this.ignore = ignore;
    this.label = `build context \`${this.dir}\``;
    this.#prefix = this.dir.endsWith('/') ? this.dir : `${this.dir}/`;
    this.#digests = digestCache !== undefined ? new FileDigestCache(digestCache.dir, digestCache.tmpDir, this.dir) : undefined;
  }

  // Synchronous stats and listings: a few microseconds each, where a thread-pool round trip
  // costs tens; a cached rebuild stats every file of what it copies.
  readonly sync = { lstat: (rel: string) => this.#lstat(rel), readdir: (rel: string) => this.#readdir(rel) };

  async lstat(rel: string): Promise<SourceEntry | undefined> {
    return this.#lstat(rel);
  }

  async readdir(rel: string): Promise<string[] | undefined> {
    return this.#readdir(rel);
  }

  #lstat(rel: string): SourceEntry | undefined {
    const r = clean(rel);
    if (r !== '' && this.ignore.excludes(r)) return undefined;
    const hostPath = r === '' ? this.dir : `${this.#prefix}${r}`;
    const stats = lstatSync(hostPath, { throwIfNoEntry: false });
    return stats === undefined ? undefined : { stats, hostPath };
  }

  #readdir(rel: string): string[] | undefined {
    const r = clean(rel);
    let names: string[];
    try {
      names = readdirSync(path.join(this.dir, r));
    } catch {
      return undefined;
    }
    if (this.ignore.empty) return names.sort();
    const out: string[] = [];
    for (const name of names) {
      const child = r === '' ? name : `${r}/${name}`;
      if (!this.ignore.excludes(child)) out.push(name);
      // A `!` rule may re-include something below an excluded directory.
      else if (this.ignore.hasExceptions && lstatSync(path.join(this.dir, child), { throwIfNoEntry: false })?.isDirectory()) out.push(name);
    }
    return out.sort();
  }

  async resolve(rel: string, followLast: boolean): Promise<string> {
    return resolveIn(this, rel, followLast);
  }

  async fileDigest(_rel: string, entry: SourceEntry): Promise<string> {
    return this.#digests !== undefined ? this.#digests.digest(entry) : hashFile(entry.hostPath);
  }

  knownDigest(_rel: string, entry: SourceEntry): string | undefined {
    return this.#digests?.known(entry);
  }

  /** Loads the remembered file digests, so that {@link ContextFs.knownDigest} can answer. */
  async loadDigests(): Promise<void> {
    await this.#digests?.load();
  }

  /** Saves file digests computed since the last save, for the next build. */
  async saveDigests(): Promise<void> {
    await this.#digests?.save();
  }
}

/** An image's or stage's root filesystem, read through a {@link MergedView}. */
export class ViewFs implements SourceFs {
  readonly label: string;
  readonly #view: MergedView;

  constructor(view: MergedView, label: string) {
    this.#view = view;
    this.label = label;
  }

  async lstat(rel: string): Promise<SourceEntry | undefined> {
    const entry = await this.#view.lstat(rel);
    return entry === undefined ? undefined : { stats: entry.stats, hostPath: entry.hostPath };
  }

  readdir(rel: string): Promise<string[] | undefined> {
    return this.#view.readdir(rel);
  }

  resolve(rel: string, followLast: boolean): Promise<string> {
    return this.#view.resolve(rel, { followLast });
  }

  fileDigest(_rel: string, entry: SourceEntry): Promise<string> {
    return hashFile(entry.hostPath);
  }
}

async function resolveIn(fs: SourceFs, p: string, followLast: boolean): Promise<string> {
  let pending = clean(p).split('/').filter(Boolean);
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const name = pending.shift()!;
    if (name === '.') continue;
    if (name === '..') {
      done.pop();
      continue;
    }
    const rel = [...done, name].join('/');
    const entry = await fs.lstat(rel);
    if (entry !== undefined && entry.stats.isSymbolicLink() && (pending.length > 0 || followLast)) {
      if (++links > MAX_SYMLINKS) throw new InvalidArgumentError(`${fs.label}: \`${p}\`: too many levels of symbolic links`);
      const target = await readlink(entry.hostPath);
      if (target.startsWith('/')) done.length = 0;
      pending = [...target.split('/').filter(Boolean), ...pending];
      continue;
    }
    done.push(name);
  }
  return done.join('/');
}

/** One source of a `COPY`: a path of a {@link SourceFs} that exists. */
export interface CopySource {
  /** Its path in the source tree, symlinks resolved. */
  rel: string;
  entry: SourceEntry;
}

/**
 * Expands `COPY`/`ADD` source paths in `fs`: wildcards (`*`, `?`, `[…]`, per
 * path component) match names, a final symlink is followed, and every path
 * must match something.
 *
 * @throws {NotFoundError} naming the source that matches nothing.
 */
export async function expandSources(fs: SourceFs, sources: readonly string[], context: string): Promise<CopySource[]> {
  const out: CopySource[] = [];
  for (const source of sources) {
    const rel = clean(source);
    const matches = hasWildcards(rel) ? await glob(fs, rel) : [rel];
    const found: CopySource[] = [];
    for (const match of matches) {
      const resolved = await fs.resolve(match, true);
      const entry = await fs.lstat(resolved);
      if (entry !== undefined) found.push({ rel: resolved, entry });
    }
    if (found.length === 0) {
      throw contextual(new NotFoundError(
        hasWildcards(rel)
          ? `${context}: no source files were specified: \`${source}\` matches nothing in the ${fs.label}`
          : `${context}: \`${source}\` not found in the ${fs.label} (or excluded by .dockerignore)`,
      ));
    }
    out.push(...found);
  }
  return out;
}

async function glob(fs: SourceFs, pattern: string): Promise<string[]> {
  let current = [''];
  for (const part of pattern.split('/')) {
    const next: string[] = [];
    for (const dir of current) {
      if (!hasWildcards(part)) {
        next.push(dir === '' ? part : `${dir}/${part}`);
        continue;
      }
      const re = globToRegExp(part);
      for (const name of (await fs.readdir(await fs.resolve(dir, true))) ?? []) {
        if (re.test(name)) next.push(dir === '' ? name : `${dir}/${name}`);
      }
    }
    current = next;
  }
  return current.sort();
}

/**
 * Every entry of a source and, for a directory, everything below it, depth
 * first, names sorted; `rel` is relative to the source (`''` for the source
 * itself). Synchronously when `fs` can ({@link SourceFs.sync}).
 */
export async function walkSource(fs: SourceFs, source: CopySource): Promise<WalkedEntry[]> {
  const out: WalkedEntry[] = [];
  const below = (rel: string): string => (rel === '' ? source.rel : source.rel === '' ? rel : `${source.rel}/${rel}`);
  const childOf = (full: string, name: string): string => (full === '' ? name : `${full}/${name}`);
  const sync = fs.sync;
  if (sync !== undefined) {
    const recurse = (rel: string, entry: SourceEntry): void => {
      out.push({ rel, entry });
      if (!entry.stats.isDirectory()) return;
      const full = below(rel);
      for (const name of sync.readdir(full) ?? []) {
        const child = sync.lstat(childOf(full, name));
        if (child !== undefined) recurse(rel === '' ? name : `${rel}/${name}`, child);
      }
    };
    recurse('', source.entry);
    return out;
  }
  const recurse = async (rel: string, entry: SourceEntry): Promise<void> => {
    out.push({ rel, entry });
    if (!entry.stats.isDirectory()) return;
    const full = below(rel);
    for (const name of (await fs.readdir(full)) ?? []) {
      const child = await fs.lstat(childOf(full, name));
      if (child !== undefined) await recurse(rel === '' ? name : `${rel}/${name}`, child);
    }
  };
  await recurse('', source.entry);
  return out;
}

/**
 * Every entry of a source, as {@link walkSource} visits them, in its order:
 * walked once per source path and build when `fs` keeps walks
 * ({@link SourceFs.sourceWalks}), so that a `COPY` copies what its digest
 * was taken of. A failed walk is not remembered.
 */
export function listSource(fs: SourceFs, source: CopySource): Promise<WalkedEntry[]> {
  const memo = fs.sourceWalks;
  let list = memo?.get(source.rel);
  if (list === undefined) {
    list = walkSource(fs, source);
    if (memo !== undefined) {
      memo.set(source.rel, list);
      list.catch(() => memo.delete(source.rel));
    }
  }
  return list;
}

/**
 * The content digest of sources, for the cache key: each source's path and,
 * for every entry it copies, its relative name, type, permission bits, and
 * its content digest (files) or target (symlinks). Owners and times are left
 * out: `COPY` sets the owner, and touching a file does not change it.
 */
export async function sourcesDigest(fs: SourceFs, sources: readonly CopySource[]): Promise<Digest> {
  const memo = fs.sourceDigests;
  if (memo === undefined) return digestSources(fs, sources);
  const key = sources.map((s) => s.rel).join('\0');
  let digest = memo.get(key);
  if (digest === undefined) {
    digest = digestSources(fs, sources);
    memo.set(key, digest);
    // A failed walk is not remembered: the step's own try reports its error.
    digest.catch(() => memo.delete(key));
  }
  return digest;
}

async function digestSources(fs: SourceFs, sources: readonly CopySource[]): Promise<Digest> {
  const hash = createHash('sha256');
  for (const source of sources) {
    hash.update(`source\0${source.rel}\0`);
    const files: { line: string; rel: string; entry: SourceEntry }[] = [];
    const lines: (string | { index: number })[] = [];
    for (const { rel, entry } of await listSource(fs, source)) {
      const { stats } = entry;
      const mode = (stats.mode & 0o7777).toString(8);
      if (stats.isFile()) {
        lines.push({ index: files.length });
        files.push({ line: `f\0${rel}\0${mode}\0${stats.size}\0`, rel, entry });
      } else if (stats.isSymbolicLink()) {
        lines.push(`l\0${rel}\0${mode}\0${await readlink(entry.hostPath)}\n`);
      } else if (stats.isDirectory()) {
        lines.push(`d\0${rel}\0${mode}\n`);
      } else {
        lines.push(`o\0${rel}\0${mode}\0${stats.rdev}\n`);
      }
    }
    // Most files of a rebuild's context are known by their stats: only the others are read, at most 16 at once.
    await fs.loadDigests?.();
    const digests = files.map((f) => fs.knownDigest?.(f.rel, f.entry));
    const missing = digests.flatMap((d, i) => (d === undefined ? [i] : []));
    if (missing.length > 0) {
      const read = await mapLimit(missing, 16, (i) => fs.fileDigest(files[i]!.rel, files[i]!.entry));
      missing.forEach((fileIndex, k) => (digests[fileIndex] = read[k]));
    }
    for (const line of lines) {
      if (typeof line === 'string') hash.update(line);
      else hash.update(`${files[line.index]!.line}${digests[line.index]}\n`);
    }
  }
  return `sha256:${hash.digest('hex')}`;
}

/**
 * Read through the thread pool, several at once (the callers' `mapLimit`):
 * the files a build hashes are those not hashed before, often cold, and
 * synchronous reads would wait on the disk one at a time. With callbacks,
 * not `fs/promises`: a `FileHandle` and a promise and result object per
 * call made about 8 KiB of garbage per file, which is what grew a cold
 * build's young generation (and so its RSS).
 */
function hashFile(file: string): Promise<string> {
  // Through a buffer kept for the next file, not a new one the size of each: a context's
  // bytes would otherwise all pass through memory that the GC frees only later, in bulk.
  const buffer = hashBuffers.pop() ?? Buffer.allocUnsafe(HASH_CHUNK);
  return new Promise((resolve, reject) => {
    const settle = (err: NodeJS.ErrnoException | null, digest?: string): void => {
      if (hashBuffers.length < HASH_BUFFERS) hashBuffers.push(buffer);
      if (err !== null) reject(err);
      else resolve(digest!);
    };
    openFd(file, 'r', (openErr, fd) => {
      if (openErr !== null) return settle(openErr);
      const hash = createHash('sha256');
      const next = (): void =>
        readFd(fd, buffer, 0, buffer.length, null, (readErr, bytesRead) => {
          if (readErr === null && bytesRead > 0) {
            hash.update(buffer.subarray(0, bytesRead));
            return next();
          }
          closeFd(fd, (closeErr) => {
            const err = readErr ?? closeErr;
            if (err !== null) settle(err);
            else settle(null, `sha256:${hash.digest('hex')}`);
          });
        });
      next();
    });
  });
}

/** The read size of {@link hashFile}. */
const HASH_CHUNK = 64 * 1024;
/** Buffers {@link hashFile} keeps between files: as many as it reads at once. */
const HASH_BUFFERS = 16;
const hashBuffers: Buffer[] = [];

/** Runs `fn` over `items` with at most `limit` at once, keeping the order of results. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** [size, mtime (ms), ctime (ms), inode, when hashed (ms), digest] */
type DigestRecord = [number, string, string, number, number, string];

/**
 * File digests remembered between builds, per context directory, as git's
 * index and BuildKit do: a file whose size, mtime, ctime and inode are all
 * unchanged is not read again, unless it changed less than a second before
 * it was hashed (a second write in the same clock tick would not show in its
 * times). An edit that keeps the size and puts the mtime back (`touch -d`,
 * `cp -p`, a checkout) still moves ctime, which no one can set, and a file
 * replaced by a rename has another inode; so the remembered digest is
 * trusted only for a file no one has written since it was hashed.
 */
class FileDigestCache {
  readonly #file: string;
  readonly #dir: string;
  readonly #tmpDir: string;
  readonly #root: string;
  /** `#root` and a slash: what a host path of the context starts with. */
  readonly #prefix: string;
  #records: Map<string, DigestRecord> | undefined;
  #loading: Promise<void> | undefined;
  #dirty = false;

  constructor(dir: string, tmpDir: string, root: string) {
    this.#dir = dir;
    this.#tmpDir = tmpDir;
    this.#root = root;
    this.#prefix = root.endsWith('/') ? root : `${root}/`;
    this.#file = path.join(dir, `${createHash('sha256').update(root).digest('hex')}.json`);
  }

  async load(): Promise<Map<string, DigestRecord>> {
    this.#loading ??= (async () => {
      try {
        const data = JSON.parse(await readFile(this.#file, 'utf8')) as { root?: string; files?: Record<string, DigestRecord> };
        this.#records = data.root === this.#root ? new Map(Object.entries(data.files ?? {})) : new Map();
      } catch {
        this.#records = new Map();
      }
    })();
    await this.#loading;
    return this.#records!;
  }

  /** The remembered digest of `entry`, when its stats say it has not been written since it was hashed; needs {@link load} first. */
  known(entry: SourceEntry): string | undefined {
    const known = this.#records?.get(this.#rel(entry.hostPath));
    // The walk's lstat, not a second one: a cached rebuild pays one per file. Milliseconds with a
    // fraction suffice, since any write after the hash moves ctime past it by more than RACY_MS.
    const st = entry.stats;
    if (
      known !== undefined &&
      known[0] === st.size &&
      known[3] === st.ino &&
      st.ctimeMs < known[4] - RACY_MS &&
      known[1] === String(st.mtimeMs) &&
      known[2] === String(st.ctimeMs)
    ) {
      return known[5];
    }
    return undefined;
  }

  async digest(entry: SourceEntry): Promise<string> {
    const records = await this.load();
    const cached = this.known(entry);
    if (cached !== undefined) return cached;
    const st = entry.stats;
    const hashedAt = Date.now();
    const digest = await hashFile(entry.hostPath);
    records.set(this.#rel(entry.hostPath), [st.size, String(st.mtimeMs), String(st.ctimeMs), st.ino, hashedAt, digest]);
    this.#dirty = true;
    return digest;
  }

  #rel(hostPath: string): string {
    return hostPath.startsWith(this.#prefix) ? hostPath.slice(this.#prefix.length) : path.relative(this.#root, hostPath);
  }

  async save(): Promise<void> {
    if (!this.#dirty || this.#records === undefined) return;
    this.#dirty = false;
    try {
      await Promise.all([ensureDir(this.#dir), ensureDir(this.#tmpDir, 0o700)]);
      const data = { root: this.#root, files: Object.fromEntries(this.#records) };
      // Not fsynced: a cache. A crash can leave it missing, empty or cut short, which `load`
      // reads as empty (every file hashed again), or as it was before, whose records are
      // trusted only for files whose size, times and inode still match.
      await writeFileAtomic(this.#file, JSON.stringify(data), this.#tmpDir, { sync: false });
    } catch (err) {
      debug('file digest cache %s: not saved: %s', this.#file, (err as Error).message);
    }
  }
}
