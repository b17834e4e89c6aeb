/**
 * Reading the JSON documents of an image (index, manifest, config) from the
 * store's blobs, verified, and walking from one to the blobs it refers to.
 *
 * @module
 */

import { InvalidArgumentError, NotFoundError } from '../errors.js';
import {
  chainIds,
  checkDescriptor,
  type Descriptor,
  type Digest,
  hostPlatform,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  isConfigMediaType,
  isDigest,
  isIndexMediaType,
  isManifestMediaType,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  type Platform,
  platformMatches,
  shortDigest,
} from '../oci/index.js';
import { readBlobVerified } from './blobs.js';
import type { StorePaths } from './paths.js';

const MAX_CACHED = 512;
const MAX_NESTING = 4;

/** An image for one platform: its manifest and config, as stored. */
export interface LoadedImage {
  /** The descriptor the image was resolved from (an index's, when it was an index). */
  root: Descriptor;
  /** The platform manifest's descriptor (equal to `root` unless `root` is an index). */
  manifestDescriptor: Descriptor;
  manifest: ImageManifest;
  config: ImageConfig;
  /** The config's `rootfs.diff_ids`, checked to be digests, one per layer. */
  diffIds: Digest[];
  /** The chainID of each layer, bottom first. */
  chainIds: Digest[];
}

/**
 * Reads and caches verified JSON documents. Content is immutable (it is named
 * by its digest), so the cache never needs invalidating.
 */
export class DocumentReader {
  readonly #paths: StorePaths;
  readonly #cache = new Map<Digest, unknown>();

  constructor(paths: StorePaths) {
    this.#paths = paths;
  }

  /**
   * A blob parsed as JSON, verified against its digest.
   *
   * @throws {NotFoundError} when the blob is missing.
   * @throws {DigestMismatchError} when the blob does not match its digest.
   * @throws {InvalidArgumentError} when it is not JSON.
   */
  async json<T>(digest: Digest): Promise<T> {
    const cached = this.#cache.get(digest);
    if (cached !== undefined) return cached as T;
    const data = await readBlobVerified(this.#paths, digest);
    let parsed: unknown;
    try {
      parsed = JSON.parse(data.toString('utf8'));
    } catch (err) {
      throw new InvalidArgumentError(`blob ${digest}: not valid JSON`, { cause: err, path: this.#paths.blob(digest) });
    }
    if (typeof parsed !== 'object' || parsed === null) {
      throw new InvalidArgumentError(`blob ${digest}: not a JSON object`, { path: this.#paths.blob(digest) });
    }
    if (this.#cache.size >= MAX_CACHED) this.#cache.delete(this.#cache.keys().next().value as Digest);
    this.#cache.set(digest, parsed);
    return parsed as T;
  }

  /**
   * The descriptor of a manifest or index blob known only by digest: its media
   * type is read from the document.
   *
   * @throws {NotFoundError} when the blob is missing or is not a manifest or index.
   */
  async describe(digest: Digest, size: number): Promise<Descriptor> {
    const doc = await this.json<{ mediaType?: unknown; manifests?: unknown; config?: unknown; layers?: unknown }>(digest);
    let mediaType: string;
    if (typeof doc.mediaType === 'string') mediaType = doc.mediaType;
    else if (Array.isArray(doc.manifests)) mediaType = MEDIA_TYPE_OCI_INDEX;
    else if (doc.config !== undefined && Array.isArray(doc.layers)) mediaType = MEDIA_TYPE_OCI_MANIFEST;
    else throw new NotFoundError(`image ${digest}: blob is not an image manifest or index`);
    if (!isManifestMediaType(mediaType) && !isIndexMediaType(mediaType)) {
      throw new NotFoundError(`image ${digest}: blob is a ${mediaType}, not an image manifest or index`);
    }
    return { mediaType, digest, size };
  }

  /**
   * The image for `platform` behind a descriptor: the manifest itself, or the
   * matching entry of an index.
   *
   * @throws {NotFoundError} when a blob is missing or an index has no manifest for the platform.
   * @throws {InvalidArgumentError} when a document is malformed or the config's diffIDs do not match the layers.
   */
  async image(root: Descriptor, platform: Platform = hostPlatform()): Promise<LoadedImage> {
    let descriptor = root;
    for (let depth = 0; isIndexMediaType(descriptor.mediaType); depth++) {
      if (depth >= MAX_NESTING) throw new InvalidArgumentError(`image ${root.digest}: indexes nested too deeply`);
      const index = await this.json<ImageIndex>(descriptor.digest);
      if (!Array.isArray(index.manifests)) {
        throw new InvalidArgumentError(`image index ${descriptor.digest}: no manifests list`);
      }
      const match = pickPlatform(index.manifests, platform);
      if (match === undefined) {
        throw new NotFoundError(
          `image ${root.digest}: no manifest for ${platform.os}/${platform.architecture} in its index`,
        );
      }
      descriptor = checkDescriptor(match, `image index ${descriptor.digest}`);
    }
    const manifest = await this.json<ImageManifest>(descriptor.digest);
    const where = `image manifest ${shortDigest(descriptor.digest)}`;
    if (typeof manifest.config !== 'object' || manifest.config === null || !Array.isArray(manifest.layers)) {
      throw new InvalidArgumentError(`${where}: not an image manifest (no config or layers)`);
    }
    const configDescriptor = checkDescriptor(manifest.config, where);
    if (!isConfigMediaType(configDescriptor.mediaType)) {
      throw new InvalidArgumentError(`${where}: config has media type ${configDescriptor.mediaType}, not an image config`);
    }
    manifest.layers.forEach((layer) => checkDescriptor(layer, where));
    const config = await this.json<ImageConfig>(configDescriptor.digest);
    const diffIds = config.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || !diffIds.every((d) => isDigest(d))) {
      throw new InvalidArgumentError(`image config ${shortDigest(configDescriptor.digest)}: rootfs.diff_ids missing or malformed`);
    }
    if (diffIds.length !== manifest.layers.length) {
      throw new InvalidArgumentError(
        `${where}: ${manifest.layers.length} layers but the config lists ${diffIds.length} diffIDs`,
      );
    }
    return { root, manifestDescriptor: descriptor, manifest, config, diffIds, chainIds: chainIds(diffIds) };
  }

  /**
   * Visits every blob and chainID reachable from a manifest or index, for GC
   * and `check()`. A missing or malformed document is reported through
   * `visit.problem` and ends that branch of the walk.
   */
  async walk(
    root: Descriptor,
    visit: { blob(d: Descriptor, parent: string): void; chainId(c: Digest): void; problem(d: Descriptor, err: unknown): void },
  ): Promise<void> {
    const seen = new Set<string>();
    const step = async (d: Descriptor, parent: string, depth: number): Promise<void> => {
      if (seen.has(d.digest)) return;
      seen.add(d.digest);
      visit.blob(d, parent);
      if (depth > MAX_NESTING) return;
      try {
        if (isIndexMediaType(d.mediaType)) {
          const index = await this.json<ImageIndex>(d.digest);
          for (const m of index.manifests ?? []) await step(checkDescriptor(m, d.digest), d.digest, depth + 1);
        } else if (isManifestMediaType(d.mediaType)) {
          const manifest = await this.json<ImageManifest>(d.digest);
          const config = checkDescriptor(manifest.config, d.digest);
          const layers = (manifest.layers ?? []).map((l) => checkDescriptor(l, d.digest));
          for (const l of layers) await step(l, d.digest, depth + 1);
          if (manifest.subject) await step(checkDescriptor(manifest.subject, d.digest), d.digest, depth + 1);
          seen.add(config.digest);
          visit.blob(config, d.digest);
          if (isConfigMediaType(config.mediaType)) {
            const doc = await this.json<ImageConfig>(config.digest);
            const diffIds = doc.rootfs?.diff_ids;
            if (Array.isArray(diffIds) && diffIds.every((x) => isDigest(x))) {
              for (const c of chainIds(diffIds)) visit.chainId(c);
            }
          }
        }
      } catch (err) {
        visit.problem(d, err);
      }
    };
    await step(root, 'index.json', 0);
  }
}

function pickPlatform(manifests: Descriptor[], platform: Platform): Descriptor | undefined {
  const match = manifests.find(
    (m) =>
      m.platform !== undefined &&
      (isManifestMediaType(m.mediaType) || isIndexMediaType(m.mediaType)) &&
      platformMatches(platform, m.platform),
  );
  if (match !== undefined) return match;
  // An index of one manifest with no platform (as some tools write) means "this image".
  return manifests.length === 1 && manifests[0]?.platform === undefined ? manifests[0] : undefined;
}
