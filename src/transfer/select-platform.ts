/**
 * Choosing the manifest for a platform from an image index or Docker
 * manifest list.
 *
 * @module
 */

import { NotFoundError } from '../errors.js';
import {
  type Descriptor,
  formatPlatform,
  type ImageIndex,
  isIndexMediaType,
  isManifestMediaType,
  type Platform,
  platformMatches,
} from '../oci/index.js';

/** BuildKit marks its provenance and SBOM manifests in an index with this annotation. */
const REFERENCE_TYPE_ANNOTATION = 'vnd.docker.reference.type';

/**
 * The entry of an index for `platform`: the first image manifest (or nested
 * index) whose platform matches (see `platformMatches`: same OS,
 * architecture and variant once normalised, so `linux/arm64` matches
 * `linux/arm64/v8`). BuildKit's attestation manifests are never chosen. An
 * index of one entry without a platform (as some tools write) means that
 * entry. The same rule as the store's, so that what a pull chose is what a
 * snapshot of the pulled image finds.
 *
 * @param where names the index in the error message, e.g. `pull alpine:3.20`.
 * @throws {NotFoundError} listing the platforms the index has, when none matches.
 * @example
 * ```ts
 * const entry = selectManifest(index, parsePlatform('linux/arm64'), 'pull alpine');
 * ```
 */
export function selectManifest(index: ImageIndex, platform: Platform, where: string): Descriptor {
  const manifests = Array.isArray(index.manifests) ? index.manifests : [];
  const candidates = manifests.filter(
    (m) =>
      typeof m === 'object' &&
      m !== null &&
      (isManifestMediaType(String(m.mediaType)) || isIndexMediaType(String(m.mediaType))) &&
      m.annotations?.[REFERENCE_TYPE_ANNOTATION] === undefined,
  );
  const match = candidates.find((m) => m.platform !== undefined && platformMatches(platform, m.platform));
  if (match !== undefined) return match;
  if (manifests.length === 1 && manifests[0]?.platform === undefined && candidates.length === 1) return candidates[0]!;
  const available = candidates
    .filter((m) => m.platform !== undefined)
    .map((m) => formatPlatform(m.platform!))
    .filter((p, i, all) => all.indexOf(p) === i);
  throw new NotFoundError(
    `${where}: no manifest for ${formatPlatform(platform)} in the image index` +
      (available.length > 0 ? ` (it has ${available.join(', ')})` : ' (it names no platforms)'),
  );
}
