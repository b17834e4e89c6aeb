/**
 * docker-archive, the `docker save` / `docker load` tarball: reading the
 * images its `manifest.json` lists into the store, and writing images as one.
 *
 * An archive holds `manifest.json` (`[{ Config, RepoTags, Layers }]`), each
 * image's config, and its layers as tars (uncompressed, as Docker writes
 * them): `<id>/layer.tar` in the legacy layout, `<digest>.tar` as skopeo
 * writes it, `blobs/sha256/<digest>` as Docker 25+ writes it (that one is an
 * OCI layout as well). A `repositories` file maps names to top layers for
 * Docker's pre-1.10 loader.
 *
 * @module
 */

import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import createDebug from 'debug';
import { DigestMismatchError, InvalidArgumentError, NotFoundError } from '../../errors.js';
import {
  checkDescriptor,
  type Descriptor,
  type Digest,
  digestHex,
  hostPlatform,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  isDigest,
  isIndexMediaType,
  isLayerMediaType,
  layerCompression,
  layerMediaType,
  MEDIA_TYPE_OCI_CONFIG,
  MEDIA_TYPE_OCI_MANIFEST,
  parseReference,
  type Platform,
  platformMatches,
  sha256Digest,
  shortDigest,
} from '../../oci/index.js';
import type { TransferStore } from '../types.js';
import type { Lease } from '../../store/index.js';
import { decompress } from './codec.js';
import { LayerTap } from './layer-tap.js';
import type { LayoutImage } from './oci-layout.js';
import { MAX_DOCUMENT_SIZE, type ArchiveBlob, type ArchiveContents } from './tar-read.js';
import type { TarOutput } from './tar-write.js';
import { explainBlobFailure, removeQuietly, siblingTemp, throwIfAborted } from './util.js';
import { parseJsonObject } from '../../util/index.js';

const debug = createDebug('dockless:transfer');

/** The name of a docker-archive's image list. */
export const DOCKER_MANIFEST_FILE = 'manifest.json';
/** The name of a docker-archive's legacy name → top layer map. */
export const DOCKER_REPOSITORIES_FILE = 'repositories';

/** One image of a docker-archive's `manifest.json`. */
export interface DockerArchiveManifestEntry {
  /** The path of the image config in the archive. */
  Config: string;
  /** The image's tags, as Docker shows them (`alpine:latest`); `null` for an untagged image. */
  RepoTags: string[] | null;
  /** The paths of the layer tars in the archive, base first. */
  Layers: string[];
}

/** Options of {@link importDockerArchive}. */
export interface DockerImportOptions {
  /** The lease the config and manifest blobs are added to as they are stored. */
  lease: Lease;
  /** The operation, for error messages. */
  context: string;
  /** Cancels the import between images and layers. */
  signal?: AbortSignal | undefined;
}

/**
 * Puts the images of a docker-archive (read by `readArchive`) into the
 * store: each config as it is (so the image ID, its digest, is kept), each
 * layer as it is (uncompressed, media type
 * `application/vnd.oci.image.layer.v1.tar`, its digest its diffID), checked
 * against the config's `rootfs.diff_ids`, and an OCI manifest for them.
 * Tags nothing.
 *
 * @returns the images with their `RepoTags` as full references.
 * @throws {InvalidArgumentError} when `manifest.json` is missing or malformed, or a config is.
 * @throws {NotFoundError} when a config or layer it names is not in the archive.
 * @throws {DigestMismatchError} when a layer does not match its diffID.
 */
export async function importDockerArchive(
  store: TransferStore,
  contents: ArchiveContents,
  options: DockerImportOptions,
): Promise<LayoutImage[]> {
  const { context, lease, signal } = options;
  const list = dockerManifest(contents, context);
  const images: LayoutImage[] = [];
  for (const [i, entry] of list.entries()) {
    throwIfAborted(signal, context);
    const where = `${context}: manifest.json image ${i}`;
    const references = (entry.RepoTags ?? []).map((tag) => {
      const ref = parseReference(tag);
      if (ref.digest !== undefined) throw new InvalidArgumentError(`${where}: RepoTag ${JSON.stringify(tag)} is not a tag`);
      return ref.toString();
    });

    const configFile = contents.lookup(entry.Config);
    if (configFile === undefined) throw new NotFoundError(`${where}: config \`${entry.Config}\` is not in the archive`);
    let configBytes: Buffer;
    let configDigest: Digest;
    if (configFile.doc !== undefined) {
      configBytes = configFile.doc;
      configDigest = sha256Digest(configBytes);
      const named = /^([a-f0-9]{64})\.json$/.exec(configFile.name.split('/').at(-1)!);
      if (named !== null && `sha256:${named[1]}` !== configDigest) {
        throw new DigestMismatchError(`${where}: config \`${configFile.name}\` does not match its name: content is ${configDigest}`, {
          expected: `sha256:${named[1]}`,
          actual: configDigest,
        });
      }
      await store.putBlob(configBytes, { digest: configDigest, lease, signal });
    } else {
      const blob = configFile.blob!;
      if (blob.size > MAX_DOCUMENT_SIZE) throw new InvalidArgumentError(`${where}: config is too big (${blob.size} bytes)`);
      configBytes = await store.readBlob(blob.digest);
      configDigest = blob.digest;
    }
    const config = parseJsonObject<ImageConfig>(configBytes, `${where}: config`);
    const diffIds = config.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || !diffIds.every((d) => isDigest(d))) {
      throw new InvalidArgumentError(`${where}: config has no valid rootfs.diff_ids`);
    }
    if (diffIds.length !== entry.Layers.length) {
      throw new InvalidArgumentError(`${where}: ${entry.Layers.length} layers but the config lists ${diffIds.length} diffIDs`);
    }

    const layers: Descriptor[] = [];
    for (const [j, layerPath] of entry.Layers.entries()) {
      throwIfAborted(signal, context);
      const found = contents.lookup(layerPath);
      if (found?.blob === undefined) throw new NotFoundError(`${where}: layer \`${layerPath}\` is not in the archive`);
      const facts = await layerFacts(store, found.blob, context);
      if (facts.diffId === undefined) {
        // Corrupt bytes break gunzip before anything else can tell: the diffID is the only promise there is.
        throw new DigestMismatchError(
          `${where}: layer \`${layerPath}\` cannot be decompressed, so it cannot have the config's diffID ${diffIds[j]}`,
          { expected: diffIds[j]!, cause: facts.failure },
        );
      }
      if (facts.diffId !== diffIds[j]) {
        throw new DigestMismatchError(
          `${where}: layer \`${layerPath}\` has diffID ${facts.diffId}, the config says ${diffIds[j]}`,
          { expected: diffIds[j]!, actual: facts.diffId },
        );
      }
      layers.push({ mediaType: layerMediaType(facts.compression), digest: found.blob.digest, size: found.blob.size });
    }

    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPE_OCI_MANIFEST,
      config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: configDigest, size: configBytes.byteLength },
      layers,
    };
    const descriptor = await store.putBlob(JSON.stringify(manifest), { mediaType: MEDIA_TYPE_OCI_MANIFEST, lease, signal });
    debug('%s: image %s (config %s): %d layers', context, shortDigest(descriptor.digest), shortDigest(configDigest), layers.length);
    images.push({ descriptor, references, configDigest });
  }
  return images;
}

/**
 * `manifest.json`, checked. Exported for the OCI reading of a Docker 25+
 * archive, which takes names from it.
 *
 * @throws {InvalidArgumentError} when it is missing or malformed.
 */
export function dockerManifest(contents: ArchiveContents, context: string): DockerArchiveManifestEntry[] {
  const doc = contents.lookup(DOCKER_MANIFEST_FILE)?.doc;
  if (doc === undefined) {
    throw new InvalidArgumentError(`${context}: not a docker-archive: no \`manifest.json\` (and not an OCI layout: no \`index.json\`)`);
  }
  let list: unknown;
  try {
    list = JSON.parse(doc.toString('utf8'));
  } catch (cause) {
    throw new InvalidArgumentError(`${context}: \`manifest.json\` is not valid JSON`, { cause });
  }
  if (!Array.isArray(list)) throw new InvalidArgumentError(`${context}: \`manifest.json\` is not a list`);
  return list.map((e: unknown, i) => {
    const entry = e as Partial<DockerArchiveManifestEntry> | null;
    const where = `${context}: manifest.json image ${i}`;
    if (typeof entry !== 'object' || entry === null) throw new InvalidArgumentError(`${where}: not an object`);
    if (typeof entry.Config !== 'string') throw new InvalidArgumentError(`${where}: no Config`);
    if (!Array.isArray(entry.Layers) || !entry.Layers.every((l) => typeof l === 'string')) {
      throw new InvalidArgumentError(`${where}: Layers is not a list of paths`);
    }
    const tags = entry.RepoTags ?? null;
    if (tags !== null && (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string'))) {
      throw new InvalidArgumentError(`${where}: RepoTags is not a list of names`);
    }
    return { Config: entry.Config, RepoTags: tags, Layers: entry.Layers };
  });
}

/** A layer's compression and diffID: learnt while it was read, or (for a `blobs/` entry) from the store. */
async function layerFacts(
  store: TransferStore,
  blob: ArchiveBlob,
  context: string,
): Promise<{ compression: 'gzip' | 'zstd' | 'none'; diffId?: Digest; failure?: unknown }> {
  if (blob.compression !== undefined && blob.failure !== undefined) return { compression: blob.compression, failure: blob.failure };
  if (blob.compression !== undefined && blob.diffId !== undefined) return { compression: blob.compression, diffId: blob.diffId };
  // A `blobs/sha256/…` entry: read it again from the store (Docker writes these uncompressed, so this is rare).
  const tap = new LayerTap({ context: `${context}: layer ${shortDigest(blob.digest)}` });
  for await (const _ of tap.tap(await store.getBlob(blob.digest))) {
    // The tap computes as the blob flows.
  }
  const facts = tap.facts();
  return { compression: facts.compression, diffId: facts.diffId! };
}

// ---------------------------------------------------------------- export

/** One image to write to a docker-archive: a single-platform manifest and its names. */
export interface DockerArchiveImage {
  /** The manifest (a platform's, when the image is an index). */
  manifest: Descriptor;
  /** Full tag references. */
  references: string[];
}

/**
 * The manifest for `platform` behind a descriptor: the descriptor itself, or
 * the matching entry of an index (or an index's only entry without a platform).
 *
 * @throws {NotFoundError} when the index has no manifest for the platform, or it is not in the store.
 */
export async function platformManifest(store: TransferStore, root: Descriptor, platform: Platform = hostPlatform()): Promise<Descriptor> {
  let d = root;
  for (let depth = 0; isIndexMediaType(d.mediaType); depth++) {
    if (depth >= 4) throw new InvalidArgumentError(`image ${root.digest}: indexes nested too deeply`);
    const index = parseJsonObject<ImageIndex>(await store.readBlob(d.digest), `index ${shortDigest(d.digest)}`);
    const manifests = (index.manifests ?? []).map((m) => checkDescriptor(m, `index ${shortDigest(d.digest)}`));
    const candidates = manifests.filter((m) => m.platform !== undefined && platformMatches(platform, m.platform));
    if (candidates.length === 0 && manifests.length === 1 && manifests[0]!.platform === undefined) candidates.push(manifests[0]!);
    let match: Descriptor | undefined;
    for (const c of candidates) {
      if (await store.hasBlob(c.digest)) {
        match = c;
        break;
      }
    }
    if (match === undefined) {
      throw new NotFoundError(`image ${root.digest}: no manifest for ${platform.os}/${platform.architecture} in the store`);
    }
    d = match;
  }
  return d;
}

/** Options of {@link writeDockerArchive}. */
export interface DockerWriteOptions {
  /** The operation, for error messages. */
  context: string;
  /** Cancels the export between entries and while a layer is decompressed. */
  signal?: AbortSignal | undefined;
  /** Where temporary files (decompressed layers) go: a path in the output's directory. */
  scratch: string;
  /** Called as each layer has been written. */
  onLayer?: ((d: Descriptor, cached: boolean) => void) | undefined;
}

/**
 * Writes images as a docker-archive into `out`: each config as
 * `<hex>.json`, each layer once as an uncompressed `<diffID hex>/layer.tar`
 * (gzip and zstd layers are decompressed through a temporary file, since a
 * tar entry needs its size first, and checked against their diffIDs), then
 * `manifest.json` and `repositories`.
 *
 * @throws {DigestMismatchError} when a layer or blob does not match its diffID or digest.
 * @throws {InvalidArgumentError} when a manifest is not an image's.
 */
export async function writeDockerArchive(
  store: TransferStore,
  images: DockerArchiveImage[],
  out: TarOutput,
  options: DockerWriteOptions,
): Promise<void> {
  const { context, signal } = options;
  const written = new Set<string>();
  const list: DockerArchiveManifestEntry[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const image of images) {
    const where = `${context}: image ${shortDigest(image.manifest.digest)}`;
    const manifest = parseJsonObject<ImageManifest>(await store.readBlob(image.manifest.digest), `${where}: manifest`);
    const configDescriptor = checkDescriptor(manifest.config, `${where}: manifest`);
    const configBytes = await store.readBlob(configDescriptor.digest);
    const config = parseJsonObject<ImageConfig>(configBytes, `${where}: config`);
    const layers = (manifest.layers ?? []).map((l) => checkDescriptor(l, `${where}: manifest`));
    const diffIds = config.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || diffIds.length !== layers.length || !diffIds.every((d) => isDigest(d))) {
      throw new InvalidArgumentError(`${where}: the config's rootfs.diff_ids do not match the manifest's layers`);
    }
    const configName = `${digestHex(configDescriptor.digest)}.json`;
    if (!written.has(configName)) {
      written.add(configName);
      await out.file(configName, configBytes);
    }
    const layerPaths: string[] = [];
    for (const [i, layer] of layers.entries()) {
      throwIfAborted(signal, context);
      if (!isLayerMediaType(layer.mediaType)) {
        throw new InvalidArgumentError(`${where}: layer ${i} has media type ${layer.mediaType}, not a layer's`);
      }
      const diffId = diffIds[i]!;
      const dir = digestHex(diffId);
      const path = `${dir}/layer.tar`;
      layerPaths.push(path);
      if (written.has(path)) continue;
      written.add(path);
      await out.directory(dir);
      await writeLayer(store, layer, diffId, path, out, options);
      options.onLayer?.(layer, false);
    }
    const repoTags = image.references.map((r) => parseReference(r));
    list.push({ Config: configName, RepoTags: repoTags.length > 0 ? repoTags.map((r) => r.familiar) : null, Layers: layerPaths });
    const top = layerPaths.at(-1)?.split('/')[0];
    if (top !== undefined) {
      for (const ref of repoTags) (repositories[ref.familiarName] ??= {})[ref.tag!] = top;
    }
  }
  throwIfAborted(signal, context);
  await out.file(DOCKER_MANIFEST_FILE, `${JSON.stringify(list)}\n`);
  if (Object.keys(repositories).length > 0) await out.file(DOCKER_REPOSITORIES_FILE, `${JSON.stringify(repositories)}\n`);
}

/** Writes one layer, uncompressed, checked against its diffID. */
async function writeLayer(
  store: TransferStore,
  layer: Descriptor,
  diffId: Digest,
  name: string,
  out: TarOutput,
  options: DockerWriteOptions,
): Promise<void> {
  const compression = layerCompression(layer.mediaType);
  const where = `${options.context}: layer ${shortDigest(layer.digest)}`;
  if (compression === 'none') {
    if (layer.digest !== diffId) {
      throw new DigestMismatchError(`${where}: an uncompressed layer whose digest is not its diffID ${diffId}`, {
        expected: diffId,
        actual: layer.digest,
      });
    }
    await out.stream(name, layer.size, await store.getBlob(layer.digest));
    return;
  }
  const tmp = siblingTemp(options.scratch, 'layer');
  const handle = await open(tmp, 'wx', 0o600);
  try {
    const hash = createHash('sha256');
    try {
      for await (const chunk of decompress(await store.getBlob(layer.digest), compression, where)) {
        throwIfAborted(options.signal, options.context);
        hash.update(chunk);
        await handle.write(chunk);
      }
    } catch (err) {
      throw await explainBlobFailure(store, layer.digest, err);
    }
    await handle.close();
    const actual: Digest = `sha256:${hash.digest('hex')}`;
    if (actual !== diffId) {
      throw new DigestMismatchError(`${where}: uncompressed content is ${actual}, the config's diffID is ${diffId}`, {
        expected: diffId,
        actual,
      });
    }
    const { size } = await stat(tmp);
    const stream = createReadStream(tmp, { highWaterMark: 1 << 20 });
    try {
      await out.stream(name, size, stream);
    } finally {
      stream.destroy();
    }
  } finally {
    await handle.close().catch(() => {});
    await removeQuietly(tmp);
  }
}
