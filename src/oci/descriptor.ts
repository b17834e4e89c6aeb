/**
 * Checking descriptors read from untrusted documents (manifests, indexes,
 * layouts, archives).
 *
 * @module
 */

import { InvalidArgumentError } from '../errors.js';
import { parseDigest } from './digest.js';
import type { Descriptor } from './types.js';

/**
 * Checks the fields of a descriptor read from an untrusted document: an
 * object with a string media type, a safe non-negative size and a
 * well-formed digest.
 *
 * @throws {InvalidArgumentError} naming `where`.
 * @example
 * ```ts
 * const layers = manifest.layers.map((l) => checkDescriptor(l, `manifest ${digest}`));
 * ```
 */
export function checkDescriptor(d: unknown, where: string): Descriptor {
  if (typeof d !== 'object' || d === null) throw new InvalidArgumentError(`${where}: descriptor is not an object`);
  const { mediaType, digest, size } = d as Partial<Descriptor>;
  if (typeof mediaType !== 'string') throw new InvalidArgumentError(`${where}: descriptor has no mediaType`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new InvalidArgumentError(`${where}: descriptor ${String(digest)} has an invalid size`);
  }
  try {
    parseDigest(digest as string);
  } catch (cause) {
    throw new InvalidArgumentError(`${where}: ${(cause as Error).message}`, { cause });
  }
  return d as Descriptor;
}
