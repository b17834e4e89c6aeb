/**
 * Checks of directory options (a data root, a state directory) shared by the
 * public classes, so that each refuses a bad one the same way.
 *
 * @module
 */

import { lstat } from 'node:fs/promises';
import { InvalidArgumentError, PermissionError } from '../errors.js';

/**
 * Checks that option `field` names a directory path: a non-empty absolute
 * path without NUL bytes. Whether it exists, and who owns it, is checked when
 * it is first used.
 *
 * @returns the path, unchanged.
 * @throws {@link InvalidArgumentError} otherwise.
 */
export function validateDirOption(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '') {
    throw new InvalidArgumentError(`${field}: expected a directory path, got ${value === '' ? 'an empty string' : typeof value}`);
  }
  if (value.includes('\0')) throw new InvalidArgumentError(`${field}: the path contains a NUL byte`);
  if (!value.startsWith('/')) throw new InvalidArgumentError(`${field}: \`${value}\` must be an absolute path`, { path: value });
  return value;
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
