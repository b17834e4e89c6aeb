/**
 * {@link importImage}: `docker load` and `docker import` for an
 * a store.
 *
 * @module
 */

import { progressEmitter, type WithoutOp } from '../../util/index.js';
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import createDebug from 'debug';
import { InvalidArgumentError, NotFoundError } from '../../errors.js';
import { type Digest, parseReference, shortDigest } from '../../oci/index.js';
import type { TransferStore } from '../types.js';
import type { Lease } from '../../store/index.js';
import { dockerManifest, importDockerArchive } from './docker-archive.js';
import {
  ArchiveLayoutSource,
  DirectoryLayoutSource,
  importLayout,
  type LayerCallback,
  type LayoutImage,
} from './oci-layout.js';
import { importRootfsTar } from './rootfs.js';
import { readArchive, sniffTarKind, type ArchiveContents } from './tar-read.js';
import type { ImportFormat, ImportedImage, ImportOptions, ArchiveProgress } from './types.js';
import { isErrno, throwIfAborted } from './util.js';

const debug = createDebug('dockless:transfer');

const FORMATS: readonly ImportFormat[] = ['auto', 'oci', 'oci-archive', 'docker-archive', 'rootfs'];

/**
 * Imports the images at `path` into the store and tags them, as
 * `docker load` (an OCI layout directory, an oci-archive, a docker-archive)
 * or `docker import` (a root filesystem tar) would; see {@link ImportFormat}
 * for how the format is chosen. Archives may be gzip- or zstd-compressed.
 *
 * The source is read once, streamed: each blob goes into the store as it is
 * read, verified against its digest (an OCI layout's blobs against their
 * names, a docker-archive's layers against the config's diffIDs).
 * docker-archive layers and root filesystem tars are stored as they are
 * (uncompressed tars stay uncompressed: no CPU spent, the blob digest is the
 * diffID, and a docker-archive export writes them back byte for byte);
 * docker-archive configs are stored byte for byte, so the image ID (the
 * config digest) is kept.
 *
 * Tags: an OCI layout's `io.containerd.image.name` annotations, else its
 * `org.opencontainers.image.ref.name` when that is a full reference (a bare
 * tag needs {@link ImportOptions.baseName}); a docker-archive's `RepoTags`;
 * and {@link ImportOptions.tag}. Tagging happens once everything is stored
 * and verified: an import that fails or is aborted tags nothing (blobs it
 * stored stay until GC).
 *
 * @returns one entry per tag given, and one without `reference` per image that got no tag.
 * @throws {NotFoundError} when `path` does not exist, or a blob the source's manifests need is not in it.
 * @throws {InvalidArgumentError} when the source is malformed (not a tar, truncated, no `manifest.json` or
 *   `index.json`, bad JSON), an option is (a bad `tag`, rootfs options for an archive), or `tag` is given
 *   for a source with several images.
 * @throws {DigestMismatchError} when a blob does not match its digest or a layer its diffID; nothing is tagged.
 * @throws {AbortError} when `signal` aborts; nothing is tagged.
 * @example
 * ```ts
 * const images = await importImage(store, 'alpine.tar');
 * // [{ reference: 'docker.io/library/alpine:3.20', digest: 'sha256:…', mediaType: '…' }]
 * await importImage(store, 'rootfs.tar.gz', { tag: 'mybase:1', changes: ['CMD ["/bin/sh"]'] });
 * ```
 */
export async function importImage(store: TransferStore, path: string, options: ImportOptions = {}): Promise<ImportedImage[]> {
  const format = options.format ?? 'auto';
  const source = resolvePath(path);
  const context = `import \`${source}\``;
  if (!FORMATS.includes(format)) {
    throw new InvalidArgumentError(`${context}: unknown format ${JSON.stringify(format)} (expected ${FORMATS.join(', ')})`);
  }
  const extraTag = options.tag === undefined ? undefined : tagReference(options.tag, context);
  const baseName = options.baseName === undefined ? undefined : repositoryName(options.baseName, context);
  const { signal } = options;
  throwIfAborted(signal, context);

  let isDirectory: boolean;
  try {
    isDirectory = (await stat(source)).isDirectory();
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) throw new NotFoundError(`${context}: no such file or directory`, { path: source, cause: err });
    throw err;
  }
  let kind: 'layout' | 'archive' | 'rootfs';
  if (isDirectory) {
    if (format !== 'auto' && format !== 'oci') {
      throw new InvalidArgumentError(`${context}: a directory is read as an OCI image layout, not as ${format}`, { path: source });
    }
    kind = 'layout';
  } else if (format === 'oci') {
    throw new InvalidArgumentError(`${context}: an OCI image layout is a directory; a tar of one is format 'oci-archive'`, {
      path: source,
    });
  } else if (format === 'rootfs') {
    kind = 'rootfs';
  } else if (format === 'auto') {
    kind = (await sniffTarKind(source, context)).kind;
  } else {
    kind = 'archive';
  }
  if (kind !== 'rootfs') {
    for (const key of ['config', 'changes', 'message', 'platform'] as const) {
      if (options[key] !== undefined) {
        throw new InvalidArgumentError(`${context}: option ${key} is for a root filesystem tar, and this is an image archive or layout`);
      }
    }
  }
  debug('%s: %s', context, kind === 'archive' && format !== 'auto' ? format : kind);

  const emit = progressEmitter<ArchiveProgress>('import', options.onProgress);
  let layersDone = 0;
  const onLayer: LayerCallback = (d, cached, total) => {
    layersDone++;
    const event: WithoutOp<ArchiveProgress> = { type: 'layer', digest: d.digest, size: d.size, done: layersDone, cached };
    if (total !== undefined) event.total = total;
    emit?.(event);
  };
  const onBytes = (bytes: number, total?: number): void => {
    emit?.(total === undefined ? { type: 'bytes', bytes } : { type: 'bytes', bytes, total });
  };

  const lease: Lease = await store.lease(`import-${process.pid}-${randomBytes(6).toString('hex')}`, [], { processBound: true });
  try {
    let images: LayoutImage[];
    switch (kind) {
      case 'layout':
        images = await importLayout(store, new DirectoryLayoutSource(store, source, lease, signal, (n) => onBytes(n), options.link ?? true), {
          context,
          baseName,
          signal,
          onLayer,
        });
        break;
      case 'rootfs': {
        const { manifest: descriptor, layer } = await importRootfsTar(store, source, {
          lease,
          context,
          config: options.config,
          changes: options.changes,
          message: options.message,
          platform: options.platform,
          signal,
          onBytes,
        });
        onLayer(layer, false, 1);
        images = [{ descriptor, references: [] }];
        break;
      }
      case 'archive': {
        const contents = await readArchive(store, source, {
          lease,
          signal,
          context,
          onBytes,
          onLayer: (blob, cached) => onLayer({ mediaType: '', digest: blob.digest, size: blob.size }, cached),
        });
        images = await interpretArchive(store, contents, format, { lease, context, baseName, signal });
        break;
      }
    }
    if (extraTag !== undefined) {
      const distinct = new Set(images.map((i) => i.descriptor.digest));
      if (distinct.size !== 1) {
        throw new InvalidArgumentError(`${context}: option tag needs exactly one image, and the source holds ${distinct.size}`);
      }
      images[0]!.references.push(extraTag);
    }
    throwIfAborted(signal, context);
    await tagAll(store, images, context);
    const result: ImportedImage[] = [];
    for (const image of mergeImages(images)) {
      const { digest, mediaType } = image.descriptor;
      if (image.references.length === 0) result.push({ digest, mediaType });
      for (const reference of image.references) result.push({ reference, digest, mediaType });
      emit?.({ type: 'image', digest, references: image.references });
    }
    debug('%s: %d images', context, result.length);
    return result;
  } finally {
    await lease.release().catch((err: unknown) => debug('%s: lease release: %s', context, (err as Error).message));
  }
}

/** An archive read in one pass, as an OCI layout or a docker-archive. */
async function interpretArchive(
  store: TransferStore,
  contents: ArchiveContents,
  format: ImportFormat,
  options: { lease: Lease; context: string; baseName: string | undefined; signal: AbortSignal | undefined },
): Promise<LayoutImage[]> {
  const { context } = options;
  const isLayout = contents.lookup('index.json')?.doc !== undefined && contents.lookup('oci-layout')?.doc !== undefined;
  const hasDockerManifest = contents.lookup('manifest.json')?.doc !== undefined;
  if (format === 'oci-archive' || (format === 'auto' && isLayout)) {
    const images = await importLayout(store, new ArchiveLayoutSource(store, contents, options.lease), {
      context,
      baseName: options.baseName,
      signal: options.signal,
    });
    if (hasDockerManifest) {
      // Docker 25+ archives are OCI layouts too, whose index may name images by tag only: take RepoTags then.
      const byConfig = new Map<string, string[]>();
      for (const entry of dockerManifest(contents, context)) {
        const config = contents.lookup(entry.Config);
        const digest = config?.blob?.digest;
        if (digest !== undefined) byConfig.set(digest, entry.RepoTags ?? []);
      }
      for (const image of images) {
        if (image.references.length > 0 || image.configDigest === undefined) continue;
        image.references = (byConfig.get(image.configDigest) ?? []).map((t) => tagReference(t, `${context}: manifest.json`));
      }
    }
    return images;
  }
  return importDockerArchive(store, contents, options);
}

/**
 * Tags every image with its references, in order. Should a tag fail, the
 * tags already changed are put back (a new tag removed, a moved one rolled
 * back), so the import leaves no half-done set of tags.
 */
async function tagAll(store: TransferStore, images: LayoutImage[], context: string): Promise<void> {
  const changed: Array<{ reference: string; previous: Digest | undefined }> = [];
  try {
    for (const image of images) {
      for (const reference of image.references) {
        const previous = await store.resolve(reference).then(
          (d) => d.digest,
          () => undefined,
        );
        await store.tag(image.descriptor.digest, reference);
        if (previous !== image.descriptor.digest) changed.push({ reference, previous });
        debug('%s: tagged %s -> %s', context, reference, shortDigest(image.descriptor.digest));
      }
    }
  } catch (err) {
    for (const { reference, previous } of changed.reverse()) {
      try {
        if (previous === undefined) await store.untag(reference);
        else await store.rollback(reference);
      } catch (undoErr) {
        debug('%s: undo tag %s: %s', context, reference, (undoErr as Error).message);
      }
    }
    throw err;
  }
}

/** The images with duplicates (the same digest under several index entries) merged, names deduplicated. */
function mergeImages(images: LayoutImage[]): LayoutImage[] {
  const byDigest = new Map<string, LayoutImage>();
  for (const image of images) {
    const seen = byDigest.get(image.descriptor.digest);
    if (seen === undefined) byDigest.set(image.descriptor.digest, { ...image, references: [...new Set(image.references)] });
    else seen.references = [...new Set([...seen.references, ...image.references])];
  }
  return [...byDigest.values()];
}

function tagReference(tag: string, context: string): string {
  const ref = parseReference(tag);
  if (ref.digest !== undefined) {
    throw new InvalidArgumentError(`${context}: ${JSON.stringify(tag)} is a digest reference, and a tag (name:tag) is needed`);
  }
  return ref.toString();
}

function repositoryName(name: string, context: string): string {
  const ref = parseReference(name, { defaultTag: false });
  if (ref.tag !== undefined || ref.digest !== undefined) {
    throw new InvalidArgumentError(`${context}: baseName ${JSON.stringify(name)} must be a repository name, without tag or digest`);
  }
  return ref.name;
}
