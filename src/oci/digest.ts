/**
 * Content digests (`sha256:<hex>`), and the chainIDs that name a stack of
 * layers.
 *
 * A *digest* is `<algorithm>:<hex>`, the hash of a blob's exact bytes. A
 * *diffID* is the digest of a layer's uncompressed tar; a *chainID* names a
 * layer together with every layer below it, so one unpacked snapshot can be
 * shared by every image whose stack starts the same way.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';

/** A digest algorithm dockless accepts: the two the OCI image spec registers. */
export type DigestAlgorithm = 'sha256' | 'sha512';

/**
 * A content digest, `<algorithm>:<lowercase hex>`. The type says only that the
 * string has an algorithm prefix; dockless checks the rest (lowercase hex of
 * the algorithm's length) at run time where it parses one.
 */
export type Digest = `${DigestAlgorithm}:${string}`;

/** The number of hex characters of each algorithm's digest. */
export const DIGEST_HEX_LENGTH: Readonly<Record<DigestAlgorithm, number>> = Object.freeze({
  sha256: 64,
  sha512: 128,
});

/** The digest of the empty byte string, `sha256:e3b0c442…`. */
export const EMPTY_SHA256_DIGEST: Digest =
  'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

const HEX = /^[0-9a-f]+$/;

/**
 * Why `s` is not a valid digest, or `undefined` when it is one.
 */
function digestProblem(s: unknown): string | undefined {
  if (typeof s !== 'string') return `expected a string, got ${typeof s}`;
  if (s === '') return 'empty';
  const colon = s.indexOf(':');
  if (colon === -1) return 'missing algorithm prefix (expected "sha256:<hex>")';
  const algorithm = s.slice(0, colon);
  const hex = s.slice(colon + 1);
  if (!Object.hasOwn(DIGEST_HEX_LENGTH, algorithm)) {
    return `unsupported algorithm "${algorithm}" (supported: ${Object.keys(DIGEST_HEX_LENGTH).join(', ')})`;
  }
  const want = DIGEST_HEX_LENGTH[algorithm as DigestAlgorithm];
  if (!HEX.test(hex)) return 'hex part must be lowercase 0-9a-f';
  if (hex.length !== want) {
    return `${algorithm} needs ${want} hex characters, got ${hex.length}`;
  }
  return undefined;
}

/**
 * Checks that `s` is a well-formed digest and returns it typed as one.
 * Uppercase hex is refused, as the OCI spec and Docker refuse it.
 *
 * @throws {InvalidArgumentError} naming the input and what is wrong: no
 *   algorithm prefix, an unsupported algorithm, a character outside `0-9a-f`, or
 *   the wrong number of hex characters.
 * @example
 * const d = parseDigest('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
 * parseDigest('sha256:abc'); // throws: invalid digest "sha256:abc": sha256 needs 64 hex characters, got 3
 */
export function parseDigest(s: string): Digest {
  const problem = digestProblem(s);
  if (problem !== undefined) {
    throw new InvalidArgumentError(`invalid digest ${JSON.stringify(s)}: ${problem}`);
  }
  return s as Digest;
}

/** Whether `s` is a well-formed digest, as {@link parseDigest} would accept it. Never throws. */
export function isDigest(s: unknown): s is Digest {
  return digestProblem(s) === undefined;
}

/** The algorithm part of a digest, e.g. `sha256`. Pass it to `crypto.createHash`. */
export function digestAlgorithm(digest: Digest): DigestAlgorithm {
  return digest.slice(0, digest.indexOf(':')) as DigestAlgorithm;
}

/** The hex part of a digest, the file name of its blob under `blobs/<algorithm>/`. */
export function digestHex(digest: Digest): string {
  return digest.slice(digest.indexOf(':') + 1);
}

/**
 * The sha256 digest of some bytes; a string is hashed as its UTF-8 encoding.
 *
 * @example
 * sha256Digest('{}'); // 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'
 */
export function sha256Digest(data: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/**
 * The chainID of each layer of a stack, bottom first, from the layers' diffIDs,
 * as the OCI image spec defines it:
 * `ChainID(L0) = DiffID(L0)` and
 * `ChainID(L0…Ln) = sha256(ChainID(L0…Ln-1) + " " + DiffID(Ln))`.
 *
 * @param diffIds the digests of the uncompressed layer tars, bottom layer first.
 * @returns one chainID per layer; an empty array for an empty stack.
 * @throws {InvalidArgumentError} when a diffID is not a well-formed digest; the
 *   message gives its index.
 * @example
 * const [base, top] = chainIds(config.rootfs.diff_ids);
 */
export function chainIds(diffIds: readonly string[]): Digest[] {
  const result: Digest[] = [];
  for (const [i, diffId] of diffIds.entries()) {
    const problem = digestProblem(diffId);
    if (problem !== undefined) {
      throw new InvalidArgumentError(
        `chain ids: diffID ${i}: invalid digest ${JSON.stringify(diffId)}: ${problem}`,
      );
    }
    const previous = result.at(-1);
    result.push(previous === undefined ? (diffId as Digest) : sha256Digest(`${previous} ${diffId}`));
  }
  return result;
}

/**
 * The chainID of a whole stack of layers: the name of the snapshot holding all
 * of them applied in order.
 *
 * @throws {InvalidArgumentError} when the stack is empty or a diffID is malformed.
 * @example
 * const snapshotKey = chainId(config.rootfs.diff_ids);
 */
export function chainId(diffIds: readonly string[]): Digest {
  const top = chainIds(diffIds).at(-1);
  if (top === undefined) throw new InvalidArgumentError('chain id: no diffIDs (an empty stack has no chainID)');
  return top;
}

/**
 * The first 12 hex characters of a digest, as `docker images` shows image ids.
 * Does not validate: a string without an algorithm prefix is shortened as it
 * is, so this is safe to use in error messages about malformed input.
 *
 * @example
 * shortDigest('sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'); // '44136fa355b3'
 */
export function shortDigest(digest: Digest | string): string {
  return digest.slice(digest.indexOf(':') + 1, digest.indexOf(':') + 13);
}
