/**
 * Small filesystem helpers: atomic file replacement, directory fsync, tree
 * removal, errno checks.
 *
 * @module
 */

import { constants } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, rename, rm, rmdir, unlink, utimes } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { isErrno } from './errno.js';
import { ownerToken } from './process.js';

/** fsyncs a directory so that renames and creations in it are durable. */
export async function fsyncDir(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Options of {@link writeFileAtomic}. */
export interface WriteFileAtomicOptions {
  /**
   * fsync the file and its directory, so that the new content survives a power
   * loss; without it the replacement is atomic for other processes only.
   * @default true
   */
  sync?: boolean;
  /** The file's mode. @default 0o644 */
  mode?: number;
}

/**
 * Replaces `path` with `data` atomically: the bytes go to a temporary file in
 * `tmpDir` (same filesystem; by default a hidden sibling of `path`), are
 * fsynced, and the file is renamed over `path`; then the directory is
 * fsynced. A crash at any instant leaves either the old or the new content
 * at `path`, and at worst an abandoned temporary file (named with an owner
 * token, so that its leftovers can be recognised).
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  tmpDir?: string,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const sync = options.sync ?? true;
  const tmp =
    tmpDir === undefined ? join(dirname(path), `.${basename(path)}.${ownerToken()}`) : join(tmpDir, `${basename(path)}.${ownerToken()}`);
  const handle = await open(tmp, 'wx', options.mode ?? 0o644);
  try {
    try {
      await handle.writeFile(data);
      if (sync) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  if (sync) await fsyncDir(dirname(path));
}

/** Creates directories (recursively) and returns nothing; existing ones are fine. */
export async function ensureDir(path: string, mode?: number): Promise<void> {
  await mkdir(path, { recursive: true, ...(mode === undefined ? {} : { mode }) });
}

/**
 * Removes a file or directory tree; a missing one is fine. Directories that
 * an unpacked layer made read-only (mode 0555 and the like) are made writable
 * first when that is what stops the removal, as it does for a non-root owner.
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch (err) {
    if (!isErrno(err, 'EACCES', 'EPERM')) throw err;
    await makeWritable(path);
    await rm(path, { recursive: true, force: true });
  }
}

/**
 * Removes a directory whose entries are mostly files, as `rm -rf` does, in
 * three rounds (list; unlink the files and remove the subtrees at once; rmdir)
 * rather than the lstat-then-act walk of `fs.rm`, which costs a thread-pool
 * round trip per step of every entry. A missing directory is fine; errors are
 * those of `fs.rm`.
 */
export async function removeDir(path: string): Promise<void> {
  let entries;
  try {
    entries = await readdir(path, { withFileTypes: true });
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return;
    // Not a directory, or not listable: fs.rm says which.
    return rm(path, { recursive: true, force: true });
  }
  await Promise.all(
    entries.map((e) => {
      const child = join(path, e.name);
      return e.isDirectory()
        ? rm(child, { recursive: true, force: true })
        : unlink(child).catch((err: unknown) => {
            if (!isErrno(err, 'ENOENT')) throw err;
          });
    }),
  );
  try {
    await rmdir(path);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return;
    // Something was made meanwhile.
    if (!isErrno(err, 'ENOTEMPTY', 'EEXIST')) throw err;
    await rm(path, { recursive: true, force: true });
  }
}

async function makeWritable(path: string): Promise<void> {
  let stats;
  try {
    stats = await lstat(path);
  } catch {
    return;
  }
  if (!stats.isDirectory()) return;
  if ((stats.mode & 0o700) !== 0o700) await chmod(path, (stats.mode & 0o7777) | 0o700).catch(() => {});
  const entries = await readdir(path).catch(() => [] as string[]);
  for (const entry of entries) await makeWritable(join(path, entry));
}

/** Sets a path's access and modification times to now; `false` when it does not exist. */
export async function touch(path: string): Promise<boolean> {
  const now = new Date();
  try {
    await utimes(path, now, now);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}

/** The names in directory `dir`, or none when it does not exist. */
export async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
}

/**
 * Flushes `root` and every regular file and directory below it to disk,
 * children before their directory, with a few fsyncs in flight at once.
 * Node has no syncfs(2), and one fsync per file costs less than flushing the
 * whole filesystem on a busy host. Symlinks, devices, fifos and sockets
 * cannot (or must not) be opened: they are metadata only, which the fsync of
 * their directory commits on a journalling filesystem. A file or directory
 * its owner cannot read (mode 0000, as a rootless unpack can leave) is made
 * readable for the moment of its fsync, its mode then restored.
 */
export async function syncTree(root: string, concurrency = 16): Promise<void> {
  let active = 0;
  const waiting: Array<() => void> = [];
  const slot = async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= concurrency) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
  const visit = async (path: string): Promise<void> => {
    await withAccess(path, true, async () => {
      const names = await readdir(path, { withFileTypes: true });
      await Promise.all(
        names.map(async (entry) => {
          const child = join(path, entry.name);
          if (entry.isDirectory()) await visit(child);
          else if (entry.isFile()) await slot(() => syncPath(child, false));
        }),
      );
      await slot(() => syncPath(path, true));
    });
  };
  await visit(root);
}

async function syncPath(path: string, dir: boolean): Promise<void> {
  const flags = constants.O_RDONLY | constants.O_NOFOLLOW;
  const handle = dir ? await open(path, flags) : await withAccess(path, false, () => open(path, flags));
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Runs `fn`, and on EACCES runs it again with the owner's read bit (and for a
 * directory, search bit) set for the moment, the mode restored afterwards.
 */
async function withAccess<T>(path: string, dir: boolean, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!isErrno(err, 'EACCES')) throw err;
    const { mode } = await lstat(path);
    const wanted = dir ? 0o500 : 0o400;
    if ((mode & wanted) === wanted) throw err;
    await chmod(path, (mode & 0o7777) | wanted);
    try {
      return await fn();
    } finally {
      await chmod(path, mode & 0o7777);
    }
  }
}
