/**
 * Parsing JSON documents from outside (files, blobs, registry responses)
 * with a typed error.
 *
 * @module
 */

import { InvalidArgumentError } from '../errors.js';

/**
 * Parses `data` as a JSON object (an array is one too). The shape is the
 * caller's to check.
 *
 * @param what names the document in the error (`manifest sha256:ab12…`).
 * @throws {InvalidArgumentError} when it is not JSON, or not an object (with the parse error as `cause`).
 * @example
 * ```ts
 * const index = parseJsonObject<ImageIndex>(await readFile(path), '`index.json`');
 * ```
 */
export function parseJsonObject<T>(data: Uint8Array | string, what: string, details: { path?: string } = {}): T {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch (cause) {
    throw new InvalidArgumentError(`${what}: not valid JSON`, { cause, ...details });
  }
  if (typeof parsed !== 'object' || parsed === null) throw new InvalidArgumentError(`${what}: not a JSON object`, details);
  return parsed as T;
}
