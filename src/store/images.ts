/**
 * Images: manifests and configs written for stored layers, references
 * resolved to descriptors, and what `list` and `inspect` show.
 *
 * @module
 */

import { stat } from 'node:fs/promises';
import createDebug from 'debug';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import {
  type Descriptor,
  type Digest,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  isIndexMediaType,
  isLayerMediaType,
  isManifestMediaType,
  MEDIA_TYPE_OCI_CONFIG,
  MEDIA_TYPE_OCI_MANIFEST,
  parseDigest,
  parseReference,
  type Reference,
  shortDigest,
} from '../oci/index.js';
import { isErrno } from '../util/index.js';
import { commitBlob, discardIngest, ingestBlob, syncBlobDirs } from './blobs.js';
import type { ContentStore } from './content.js';
import type { DocumentReader, LoadedImage } from './documents.js';
import { addToLeaseLocked, leaseId } from './leases.js';
import { withLock } from './lock.js';
import type { StorePaths } from './paths.js';
import { currentTargets, readIndex } from './refs.js';
import type { ImageDetails, ImageSummary, PutImageInput } from './types.js';

const debug = createDebug('dockless:store');

const IMAGE_ID_RE = /^[a-f0-9]{64}$/;

/** What an image reference given to the store names. */
export interface ParsedImageRef {
  /** The digest it pins, when it pins one (bare digest, image id or `name@digest`). */
  digest?: Digest;
  /** The parsed reference, unless it was a bare digest or image id. */
  ref?: Reference;
}

/** The images of one store; see {@link ImageStoreCore}'s image methods. */
export class ImageCatalog {
  readonly #paths: StorePaths;
  readonly #docs: DocumentReader;
  readonly #content: ContentStore;
  #indexCache: { ino: number; mtimeMs: number; size: number; targets: Map<string, Descriptor> } | undefined;

  constructor(paths: StorePaths, docs: DocumentReader, content: ContentStore) {
    this.#paths = paths;
    this.#docs = docs;
    this.#content = content;
  }

  /** See {@link ImageStoreCore.putImage}. */
  async putImage(input: PutImageInput): Promise<Descriptor> {
    const layers = input.layers.map((layer, i) => {
      const where = `put image: layer ${i}`;
      if (typeof layer?.descriptor !== 'object' || layer.descriptor === null) {
        throw new InvalidArgumentError(`${where}: missing descriptor`);
      }
      const { mediaType, size } = layer.descriptor;
      const digest = parseDigest(layer.descriptor.digest);
      const diffId = parseDigest(layer.diffId);
      if (typeof mediaType !== 'string' || !isLayerMediaType(mediaType)) {
        throw new InvalidArgumentError(`${where}: media type ${JSON.stringify(mediaType)} is not a layer media type`);
      }
      if (!Number.isSafeInteger(size) || size < 0) throw new InvalidArgumentError(`${where}: invalid size`);
      const descriptor: Descriptor = { mediaType, digest, size };
      if (layer.descriptor.annotations !== undefined) descriptor.annotations = layer.descriptor.annotations;
      if (layer.descriptor.urls !== undefined) descriptor.urls = layer.descriptor.urls;
      return { descriptor, diffId };
    });
    const diffIds = layers.map((l) => l.diffId);
    const config: ImageConfig = { ...input.config };
    if (config.rootfs === undefined || (config.rootfs.diff_ids?.length ?? 0) === 0) {
      config.rootfs = { type: 'layers', diff_ids: diffIds };
    } else if (
      config.rootfs.diff_ids.length !== diffIds.length ||
      config.rootfs.diff_ids.some((d, i) => d !== diffIds[i])
    ) {
      throw new InvalidArgumentError("put image: the config's rootfs.diff_ids differ from the layers' diffIDs");
    }
    if (typeof config.architecture !== 'string' || typeof config.os !== 'string') {
      throw new InvalidArgumentError('put image: the config needs architecture and os');
    }
    const configBytes = Buffer.from(JSON.stringify(config));
    const configBlob = await ingestBlob(this.#paths, configBytes, {});
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPE_OCI_MANIFEST,
      config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: configBlob.digest, size: configBlob.size },
      layers: layers.map((l) => l.descriptor),
    };
    if (input.annotations !== undefined && Object.keys(input.annotations).length > 0) {
      manifest.annotations = { ...input.annotations };
    }
    const manifestBlob = await ingestBlob(this.#paths, Buffer.from(JSON.stringify(manifest)), {});
    try {
      await withLock(this.#paths.storeLock, async () => {
        for (const [i, { descriptor }] of layers.entries()) {
          const size = await this.#content.size(descriptor.digest);
          if (size === undefined) {
            throw new NotFoundError(`put image: layer ${i} blob ${descriptor.digest} is not in the store`, {
              path: this.#paths.blob(descriptor.digest),
            });
          }
          if (size !== descriptor.size) {
            throw new InvalidArgumentError(
              `put image: layer ${i} blob ${descriptor.digest} is ${size} bytes, its descriptor says ${descriptor.size}`,
            );
          }
        }
        const dirs = new Set<string>();
        await commitBlob(this.#paths, configBlob, dirs);
        await commitBlob(this.#paths, manifestBlob, dirs);
        await syncBlobDirs(dirs);
        if (input.lease !== undefined) {
          await addToLeaseLocked(this.#paths, leaseId(input.lease), [configBlob.digest, manifestBlob.digest]);
        }
      });
    } catch (err) {
      await Promise.all([discardIngest(configBlob), discardIngest(manifestBlob)]);
      throw err;
    }
    debug('image %s: stored (%d layers)', shortDigest(manifestBlob.digest), layers.length);
    return { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: manifestBlob.digest, size: manifestBlob.size };
  }


  /** See {@link ImageStoreCore.resolve}. */
  async resolve(image: string): Promise<Descriptor> {
    const parsed = parseImageRef(image);
    if (parsed.digest !== undefined) return this.#resolveDigest(parsed.digest, image);
    const key = parsed.ref!.toString();
    const entry = (await this.targets()).get(key);
    if (entry === undefined) throw new NotFoundError(`image ${key}: not found`);
    return plainDescriptor(entry);
  }


  /** See {@link ImageStoreCore.list}. */
  async list(): Promise<ImageSummary[]> {
    const targets = await this.targets(true);
    const summaries: ImageSummary[] = [];
    for (const [reference, entry] of [...targets].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const summary: ImageSummary = {
        reference,
        digest: entry.digest,
        mediaType: entry.mediaType,
        size: entry.size,
      };
      try {
        const image = await this.#docs.image(plainDescriptor(entry));
        summary.size = imageSize(image);
        if (image.config.created !== undefined) summary.created = image.config.created;
      } catch (err) {
        debug('list: %s: %s', reference, (err as Error).message);
      }
      summaries.push(summary);
    }
    return summaries;
  }

  /** See {@link ImageStoreCore.inspect}. */
  async inspect(image: string): Promise<ImageDetails> {
    const parsed = parseImageRef(image);
    const descriptor = await this.resolve(image);
    const loaded = await this.#docs.image(descriptor);
    const targets = await this.targets();
    const tags = [...targets].filter(([, e]) => e.digest === descriptor.digest).map(([r]) => r).sort();
    return {
      ...(parsed.ref !== undefined ? { reference: parsed.ref.toString() } : {}),
      digest: descriptor.digest,
      mediaType: descriptor.mediaType,
      manifestDescriptor: loaded.manifestDescriptor,
      manifest: loaded.manifest,
      configDigest: loaded.manifest.config.digest,
      config: loaded.config,
      layers: loaded.manifest.layers.map((layer, i) => ({
        digest: layer.digest,
        size: layer.size,
        mediaType: layer.mediaType,
        diffId: loaded.diffIds[i]!,
        chainId: loaded.chainIds[i]!,
      })),
      history: loaded.config.history ?? [],
      size: imageSize(loaded),
      tags,
    };
  }


  async targets(fresh = false): Promise<Map<string, Descriptor>> {
    let st;
    try {
      st = await stat(this.#paths.index);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return new Map();
      throw err;
    }
    const cached = this.#indexCache;
    if (!fresh && cached && cached.ino === st.ino && cached.mtimeMs === st.mtimeMs && cached.size === st.size) {
      return cached.targets;
    }
    const targets = currentTargets(await readIndex(this.#paths));
    this.#indexCache = { ino: st.ino, mtimeMs: st.mtimeMs, size: st.size, targets };
    return targets;
  }

  async #resolveDigest(digest: Digest, input: string): Promise<Descriptor> {
    const index = await readIndex(this.#paths);
    const entry = index.manifests.find((e) => e.digest === digest);
    if (entry !== undefined) return plainDescriptor(entry);
    const size = await this.#content.size(digest);
    if (size === undefined) throw new NotFoundError(`image ${input}: not found`);
    return this.#docs.describe(digest, size);
  }

  /**
   * Checks (under the store lock) that an image's blobs are all present, so
   * that a tag never points at an incomplete image. For an index, the
   * manifests present must be complete, and one at least must be.
   */
  async checkComplete(descriptor: Descriptor): Promise<void> {
    const missing = async (d: Descriptor, what: string): Promise<void> => {
      const size = await this.#content.size(d.digest);
      if (size === undefined) {
        throw new NotFoundError(`image ${shortDigest(descriptor.digest)}: ${what} ${d.digest} is missing`, {
          path: this.#paths.blob(d.digest),
        });
      }
    };
    await missing(descriptor, 'manifest');
    if (isIndexMediaType(descriptor.mediaType)) {
      const index = await this.#docs.json<ImageIndex>(descriptor.digest);
      let present = 0;
      for (const m of index.manifests ?? []) {
        if ((await this.#content.size(m.digest)) === undefined) continue;
        present++;
        await this.checkComplete(m);
      }
      if (present === 0) {
        throw new NotFoundError(`image ${shortDigest(descriptor.digest)}: none of its index's manifests is in the store`);
      }
      return;
    }
    if (!isManifestMediaType(descriptor.mediaType)) return;
    const manifest = await this.#docs.json<ImageManifest>(descriptor.digest);
    await missing(manifest.config, 'config');
    for (const layer of manifest.layers ?? []) await missing(layer, 'layer');
  }
}

/**
 * Parses what the store accepts as an image: a bare digest, a 64-hex image
 * id, or a reference.
 *
 * @throws {InvalidArgumentError} when it is none of these.
 */
export function parseImageRef(image: string): ParsedImageRef {
  if (typeof image !== 'string') throw new InvalidArgumentError(`invalid image reference: expected a string, got ${typeof image}`);
  if (IMAGE_ID_RE.test(image)) return { digest: `sha256:${image}` };
  if (/^sha(256|512):/.test(image)) return { digest: parseDigest(image) };
  const ref = parseReference(image);
  return ref.digest !== undefined ? { digest: ref.digest, ref } : { ref };
}

/** A descriptor without the index entry's name annotations. */
export function plainDescriptor(entry: Descriptor): Descriptor {
  const d: Descriptor = { mediaType: entry.mediaType, digest: entry.digest, size: entry.size };
  if (entry.platform !== undefined) d.platform = entry.platform;
  return d;
}

function imageSize(image: LoadedImage): number {
  let size = image.manifestDescriptor.size + image.manifest.config.size;
  for (const layer of image.manifest.layers) size += layer.size;
  if (image.root.digest !== image.manifestDescriptor.digest) size += image.root.size;
  return size;
}
