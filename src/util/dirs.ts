/**
 * Dockless's default directories, and the checks of a directory given as an
 * option, shared by `ImageStore.open()` and `new Runtime()`.
 *
 * @module
 */

import { lstat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { InvalidArgumentError, PermissionError } from '../errors.js';
import { fsError, isErrno } from './errno.js';
import { ensureDir } from './fs.js';

/**
 * The default persistent data directory: `/var/lib/dockless` for root, else
 * `$XDG_DATA_HOME/dockless` (or `~/.local/share/dockless`). The store's
 * default root is its `store/` subdirectory.
 */
export function defaultDataRoot(): string {
  if (process.getuid?.() === 0) return '/var/lib/dockless';
  const base = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(base, 'dockless');
}

/**
 * The default state directory (what does not outlive a reboot):
 * `/run/dockless` for root, else `$XDG_RUNTIME_DIR/dockless`, or
 * `/tmp/dockless-<uid>` without one.
 */
export function defaultStateDir(): string {
  if (process.getuid?.() === 0) return '/run/dockless';
  if (process.env.XDG_RUNTIME_DIR) return join(process.env.XDG_RUNTIME_DIR, 'dockless');
  return join('/tmp', `dockless-${process.getuid?.() ?? 'user'}`);
}

/**
 * Checks a directory given as an option: a non-empty absolute path without a
 * NUL byte (which no path can hold). Whether it exists, and who owns it, is
 * checked when it is first used. `new Runtime()` and `ImageStore.open()`
 * check theirs with this, so that each refuses a bad one the same way.
 *
 * @param what names the option in the error (`open store: root`).
 * @returns the path, normalised.
 * @throws {InvalidArgumentError} when it is not such a string.
 * @example
 * ```ts
 * const root = checkDirOption(options.root ?? defaultDataRoot(), 'runtime options: root');
 * ```
 */
export function checkDirOption(value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '') {
    throw new InvalidArgumentError(`${what}: expected a directory path, got ${value === '' ? 'an empty string' : typeof value}`);
  }
  if (value.includes('\0')) throw new InvalidArgumentError(`${what}: the path contains a NUL byte`);
  if (!isAbsolute(value)) throw new InvalidArgumentError(`${what}: \`${value}\` must be an absolute path`, { path: value });
  return resolve(value);
}

/**
 * Creates a directory given as an option, with its parents.
 *
 * @throws {InvalidArgumentError} when a file is in the way.
 * @throws {PermissionError} when it cannot be created or is read-only.
 * @throws {IOError} for any other failure.
 */
export async function createDirOption(path: string, what: string, mode?: number): Promise<void> {
  try {
    await ensureDir(path, mode);
  } catch (err) {
    if (isErrno(err, 'EEXIST', 'ENOTDIR')) {
      throw new InvalidArgumentError(`${what} \`${path}\`: not a directory`, { cause: err, path });
    }
    throw fsError(err, `${what}: mkdir \`${path}\``, path);
  }
}

/**
 * Refuses a directory that is not the caller's own or that another user may
 * write: a data or state directory's records decide which pids get signalled
 * and which cgroups get emptied.
 *
 * @throws {@link PermissionError} when `path` is not a directory owned by the caller, writable by nobody else.
 */
export async function checkOwnDirectory(path: string): Promise<void> {
  const info = await lstat(path);
  const uid = process.getuid?.() ?? 0;
  if (!info.isDirectory() || info.uid !== uid || (info.mode & 0o022) !== 0) {
    throw new PermissionError(
      `directory \`${path}\` must be a directory owned by uid ${uid} and writable by nobody else (owner ${info.uid}, mode ${(info.mode & 0o7777).toString(8)})`,
      { path },
    );
  }
}
