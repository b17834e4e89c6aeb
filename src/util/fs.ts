/**
 * Small filesystem helpers: atomic file replacement, directory fsync, tree
 * removal, errno checks.
 *
 * @module
 */

import { chmod, lstat, mkdir, open, readdir, rename, rm, unlink, utimes } from 'node:fs/promises';
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
 * `tmpDir` (same filesystem), are fsynced, and the file is renamed over
 * `path`; then the directory is fsynced. A crash at any instant leaves either
 * the old or the new content at `path`, and at worst an abandoned temporary
 * file in `tmpDir`.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  tmpDir: string,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const sync = options.sync ?? true;
  const tmp = join(tmpDir, `${basename(path)}.${ownerToken()}`);
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
