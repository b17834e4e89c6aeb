/**
 * Checks of directory options (a data root, a state directory) shared by the
 * public classes, so that each refuses a bad one the same way.
 *
 * @module
 */

import { InvalidArgumentError } from '../errors.js';

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
