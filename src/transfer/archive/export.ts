/**
 * {@link exportImage}: `docker save` for a store.
 *
 * @module
 */

import { progressEmitter } from '../../util/index.js';
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import createDebug from 'debug';
import { AlreadyExistsError, InvalidArgumentError } from '../../errors.js';
import { type Descriptor, parseReference, toPlatform } from '../../oci/index.js';
import type { TransferStore } from '../types.js';
import { platformManifest, writeDockerArchive, type DockerArchiveImage } from './docker-archive.js';
import { writeLayoutArchive, writeLayoutDirectory, type LayoutEntry } from './oci-layout.js';
import { TarOutput } from './tar-write.js';
import type { ArchiveProgress, ExportFormat, ExportOptions, ExportResult } from './types.js';
import { isErrno, throwIfAborted } from './util.js';

const debug = createDebug('dockless:transfer');

const FORMATS: readonly ExportFormat[] = ['oci', 'oci-archive', 'docker-archive'];

/**
 * Writes images from the store to `path`, as `docker save` (docker-archive)
 * or `skopeo copy … oci:` / `oci-archive:` would; see
 * {@link ExportOptions.format}. Every blob is verified against its digest as
 * it is copied out (a layer written decompressed, against its diffID); on any
 * failure or abort nothing is left at `path` (an existing OCI layout that was
 * being added to keeps its old `index.json`).
 *
 * @param images what to export: one image or several, each a tag, digest or
 *   any form `ImageStore.resolve` accepts. Tags are written as the images'
 *   names; an image given by digest is written unnamed.
 * @returns what was written.
 * @throws {InvalidArgumentError} when a reference or option is malformed, or no image is given.
 * @throws {NotFoundError} when an image, a blob of it, or (docker-archive) its manifest for the platform is missing.
 * @throws {AlreadyExistsError} when `path` is a directory (archives), or a directory that is neither empty nor an
 *   OCI layout (`'oci'`).
 * @throws {DigestMismatchError} when a blob in the store is corrupt.
 * @throws {AbortError} when `signal` aborts.
 * @example
 * ```ts
 * await exportImage(store, 'alpine:3.20', 'alpine.tar');                         // docker load -i alpine.tar
 * await exportImage(store, ['app:1', 'app:2'], 'out', { format: 'oci' });        // skopeo copy oci:out:… …
 * ```
 */
export async function exportImage(
  store: TransferStore,
  images: string | readonly string[],
  path: string,
  options: ExportOptions = {},
): Promise<ExportResult> {
  const format = options.format ?? 'docker-archive';
  const target = resolvePath(path);
  const context = `export to \`${target}\``;
  if (!FORMATS.includes(format)) {
    throw new InvalidArgumentError(`${context}: unknown format ${JSON.stringify(format)} (expected ${FORMATS.join(', ')})`);
  }
  const refName = options.refName ?? 'reference';
  if (refName !== 'reference' && refName !== 'tag') {
    throw new InvalidArgumentError(`${context}: refName must be 'reference' or 'tag', got ${JSON.stringify(refName)}`);
  }
  const refs = typeof images === 'string' ? [images] : [...images];
  if (refs.length === 0) throw new InvalidArgumentError(`${context}: no image given`);
  const { signal } = options;
  throwIfAborted(signal, context);

  const entries: LayoutEntry[] = [];
  for (const ref of refs) {
    const descriptor = await store.resolve(ref);
    const name = tagName(ref);
    const entry = entries.find((e) => e.descriptor.digest === descriptor.digest);
    if (entry === undefined) entries.push({ descriptor, references: name === undefined ? [] : [name] });
    else if (name !== undefined && !entry.references.includes(name)) entry.references.push(name);
  }

  if (format !== 'oci') {
    try {
      if ((await stat(target)).isDirectory()) throw new AlreadyExistsError(`${context}: \`${target}\` is a directory`, { path: target });
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
  }

  const emit = progressEmitter<ArchiveProgress>('export', options.onProgress);
  let layersDone = 0;
  const onLayer = (d: Descriptor, cached: boolean): void => {
    layersDone++;
    emit?.({ type: 'layer', digest: d.digest, size: d.size, done: layersDone, cached });
  };
  const onBytes = (bytes: number): void => emit?.({ type: 'bytes', bytes });

  // Keeps GC from taking the images while they are copied out, should their tags move meanwhile.
  const lease = await store.lease(
    `export-${process.pid}-${randomBytes(6).toString('hex')}`,
    entries.map((e) => e.descriptor.digest),
    { processBound: true },
  );
  let bytes: number;
  let written: Array<{ digest: Descriptor['digest']; references: string[] }>;
  try {
    if (format === 'oci') {
      bytes = await writeLayoutDirectory(store, entries, target, { refName, signal, context, onBytes, onLayer });
      written = entries.map((e) => ({ digest: e.descriptor.digest, references: e.references }));
    } else {
      const dockerImages: DockerArchiveImage[] = [];
      if (format === 'docker-archive') {
        for (const entry of entries) {
          const manifest = await platformManifest(
            store,
            entry.descriptor,
            options.platform === undefined ? undefined : toPlatform(options.platform, context),
          );
          const seen = dockerImages.find((i) => i.manifest.digest === manifest.digest);
          if (seen === undefined) dockerImages.push({ manifest, references: [...entry.references] });
          else seen.references.push(...entry.references.filter((r) => !seen.references.includes(r)));
        }
      }
      const out = await TarOutput.create(target, onBytes);
      try {
        if (format === 'oci-archive') {
          await writeLayoutArchive(store, entries, out, { refName, signal, context, onLayer });
          written = entries.map((e) => ({ digest: e.descriptor.digest, references: e.references }));
        } else {
          await writeDockerArchive(store, dockerImages, out, { context, signal, scratch: target, onLayer });
          written = dockerImages.map((i) => ({ digest: i.manifest.digest, references: i.references }));
        }
        throwIfAborted(signal, context);
        await out.commit();
      } catch (err) {
        await out.abort();
        throw err;
      }
      bytes = out.bytes;
    }
  } finally {
    await lease.release().catch((err: unknown) => debug('%s: lease release: %s', context, (err as Error).message));
  }
  for (const image of written) emit?.({ type: 'image', digest: image.digest, references: image.references });
  debug('%s: %s, %d images, %d bytes', context, format, written.length, bytes);
  return { path: target, format, images: written, bytes };
}

/** The full tag reference `ref` names, or `undefined` for a digest, an image id or a `name@digest`. */
function tagName(ref: string): string | undefined {
  if (/^(?:sha256|sha512):/.test(ref) || /^[a-f0-9]{64}$/.test(ref)) return undefined;
  const parsed = parseReference(ref);
  return parsed.digest === undefined ? parsed.toString() : undefined;
}
