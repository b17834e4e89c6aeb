/**
 * Telling a corrupt blob from a valid blob with bad content, once a reader of
 * the blob (a decompressor, a tar parser) has failed before the blob's end,
 * so before its digest could be checked.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { DigestMismatchError } from '../errors.js';
import { digestAlgorithm, shortDigest, type Digest, type DigestAlgorithm } from '../oci/index.js';
import type { StorePaths } from './paths.js';

/** The size and digest, by `algorithm`, of the file at `path`. */
export async function hashFile(path: string, algorithm: DigestAlgorithm): Promise<{ size: number; actual: Digest }> {
  const hash = createHash(algorithm);
  let size = 0;
  await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), async function* (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) {
      size += chunk.length;
      hash.update(chunk);
    }
  });
  return { size, actual: `${algorithm}:${hash.digest('hex')}` as Digest };
}

/**
 * What a failure to read the stored blob `expected` as a layer stands for: a
 * {@link DigestMismatchError} (with `failure` as its cause) when the blob's
 * bytes do not match its digest or size, as corrupt bytes usually break
 * gunzip or tar parsing before the end of the blob where the digest is
 * checked; else `failure` itself, for a valid blob whose content is bad.
 * Hashes the whole blob again: for failure paths only.
 */
export async function explainReadFailure(
  paths: StorePaths,
  expected: { digest: Digest; size?: number | undefined },
  failure: unknown,
  context: string,
): Promise<unknown> {
  if (failure instanceof DigestMismatchError) return failure;
  let size: number;
  let actual: Digest;
  try {
    ({ size, actual } = await hashFile(paths.blob(expected.digest), digestAlgorithm(expected.digest)));
  } catch {
    return failure;
  }
  if (expected.size !== undefined && size !== expected.size) {
    return new DigestMismatchError(
      `${context}: blob ${shortDigest(expected.digest)}: size mismatch: expected ${expected.size} bytes, got ${size}`,
      { expected: expected.digest, actual, cause: failure },
    );
  }
  if (actual !== expected.digest) {
    return new DigestMismatchError(`${context}: blob ${shortDigest(expected.digest)}: digest mismatch: content is ${actual}`, {
      expected: expected.digest,
      actual,
      cause: failure,
    });
  }
  return failure;
}
