/**
 * Small filesystem helpers of the store: atomic file replacement, directory
 * fsync, and temporary names that carry their creator's pid and start time so
 * that leftovers of a crashed process can be told from work in progress.
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, rename, rm, unlink, utimes } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * The start time of a process (clock ticks since boot, field 22 of
 * `/proc/<pid>/stat`), or `undefined` when there is no such process.
 */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Field 3 (state) is fields[0]; a zombie has finished everything it will ever do.
    if (fields[0] === 'Z') return undefined;
    const start = Number(fields[19]);
    return Number.isFinite(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

let selfStart: number | undefined;

/** This process's start time, read once. */
export function selfStartTime(): number {
  selfStart ??= processStartTime(process.pid) ?? 0;
  return selfStart;
}

let procReadable: boolean | undefined;

/**
 * Whether process `pid` is alive and is the one that started at `start` (a
 * reused pid is not). Without a readable `/proc` (start times unknown) a
 * process counts as alive while its pid exists, so that locks are never
 * broken wrongly.
 */
export function isProcessAlive(pid: number, start: number): boolean {
  if (pid === process.pid) return start === selfStartTime();
  procReadable ??= processStartTime(process.pid) !== undefined;
  if (!procReadable) {
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      return isErrno(err, 'EPERM');
    }
  }
  const now = processStartTime(pid);
  return now !== undefined && now === start;
}

/**
 * A process, told from a later one that reuses its pid by its start time: the
 * creator of a temporary name (to judge whether it is abandoned), or the
 * process a `processBound` lease ends with.
 */
export interface Owner {
  /** The process id. */
  pid: number;
  /** The process's start time, in clock ticks since boot (field 22 of `/proc/<pid>/stat`). */
  start: number;
}

/**
 * A unique name part `<pid>-<start>-<random>` naming this process as the
 * creator; {@link parseOwnerToken} reads it back.
 */
export function ownerToken(): string {
  return `${process.pid}-${selfStartTime()}-${randomBytes(6).toString('hex')}`;
}

const OWNER_RE = /(\d+)-(\d+)-[0-9a-f]{12}$/;

/** The creator encoded at the end of a name made with {@link ownerToken}, or `undefined`. */
export function parseOwnerToken(name: string): Owner | undefined {
  const m = OWNER_RE.exec(name);
  if (m === null) return undefined;
  return { pid: Number(m[1]), start: Number(m[2]) };
}

/**
 * Whether a name made with {@link ownerToken} belongs to a process that no
 * longer exists. Names without an owner token count as abandoned.
 */
export function isAbandoned(name: string): boolean {
  const owner = parseOwnerToken(name);
  return owner === undefined || !isProcessAlive(owner.pid, owner.start);
}

/** fsyncs a directory so that renames and creations in it are durable. */
export async function fsyncDir(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `path` with `data` atomically: the bytes go to a temporary file in
 * `tmpDir` (same filesystem), are fsynced, and the file is renamed over
 * `path`; then the directory is fsynced. A crash at any instant leaves either
 * the old or the new content at `path`, and at worst an abandoned temporary
 * file in `tmpDir`.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, tmpDir: string): Promise<void> {
  const tmp = join(tmpDir, `${basename(path)}.${ownerToken()}`);
  const handle = await open(tmp, 'wx', 0o644);
  try {
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fsyncDir(dirname(path));
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

/** Whether `err` is a Node system error with the given `code`. */
export function isErrno(err: unknown, ...codes: string[]): boolean {
  return typeof err === 'object' && err !== null && codes.includes((err as NodeJS.ErrnoException).code ?? '');
}
