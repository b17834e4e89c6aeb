/**
 * {@link importRootfs}: a root filesystem directory becomes a one-layer image
 * (as `docker import` does for a tar).
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { type ContainerConfig, type Digest, hostPlatform, type ImageConfig, parseReference } from '../oci/index.js';
import { sourceDateEpochFromEnv } from '../layer/index.js';
import type { ImageStoreCore as ImageStore } from '../store/index.js';
import { callerAsRoot, storeLayer } from './layer-from-upper.js';

/** Options of {@link importRootfs}. */
export interface ImportRootfsOptions {
  /** Tag the image with this reference. */
  tag?: string;
  /** The image's execution defaults. @default `{ Cmd: ['/bin/sh'] }` */
  config?: ContainerConfig;
  /**
   * Dockerfile instructions applied to {@link ImportRootfsOptions.config}, as
   * `docker import --change` does: `CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`,
   * `LABEL`, `ONBUILD`, `STOPSIGNAL`, `USER`, `VOLUME`, `WORKDIR`.
   * @default []
   */
  changes?: readonly string[];
  /** The history entry's `created_by`. @default `import <dir>` */
  createdBy?: string;
  /** Clamp file times and the creation time to this (seconds). @default Number(process.env.SOURCE_DATE_EPOCH) when set */
  sourceDateEpoch?: number;
  /** gzip level, 1 (fast) to 9 (small). @default 1 */
  compressionLevel?: number;
  /** Path of the native helper. */
  helperPath?: string;
}

/** What {@link importRootfs} returns. */
export interface ImportRootfsResult {
  /** The image manifest's digest. */
  digest: Digest;
  /** The tag, normalised, when one was given. */
  reference?: string;
}

/**
 * Stores a root filesystem directory (for example one made by
 * `rootfsFromHost()`) as a one-layer image of this host's platform: the
 * layer is the directory's tree as a reproducible tar (sorted entries,
 * owners, modes and xattrs kept, times clamped to `SOURCE_DATE_EPOCH` when
 * set; a caller that is not root has its own uid and gid recorded as 0:0, as
 * a rootless `docker import` does). Read as an overlay layer, so character devices 0:0 in it would be
 * whiteouts. For a rootfs *tar*, use the store's archive import.
 *
 * @returns the manifest digest and, when tagged, the normalised reference.
 * @throws {NotFoundError} when `dir` does not exist.
 * @throws {InvalidArgumentError} when it is not a directory, or `tag` or a change is malformed.
 * @example
 * ```ts
 * const rootfs = await rootfsFromHost('/tmp/base-rootfs', { overwrite: true });
 * await importRootfs(store, rootfs.path, { tag: 'base:1' });
 * ```
 */
export async function importRootfs(store: ImageStore, dir: string, options: ImportRootfsOptions = {}): Promise<ImportRootfsResult> {
  const root = path.resolve(dir);
  const context = `import rootfs \`${root}\``;
  const reference = options.tag !== undefined ? parseReference(options.tag) : undefined;
  const info = await stat(root).catch((cause: unknown) => {
    throw new NotFoundError(`${context}: no such directory`, { cause, path: root });
  });
  if (!info.isDirectory()) throw new InvalidArgumentError(`${context}: not a directory`, { path: root });
  // Checked before the tree is read: a bad change fails at once.
  const containerConfig =
    (options.changes?.length ?? 0) > 0
      ? (await import('../transfer/index.js')).applyChanges(options.config ?? { Cmd: ['/bin/sh'] }, options.changes!)
      : (options.config ?? { Cmd: ['/bin/sh'] });
  const epoch = options.sourceDateEpoch ?? sourceDateEpochFromEnv('import rootfs');
  const lease = await store.lease(`import-rootfs-${process.pid}-${randomBytes(6).toString('hex')}`, [], { processBound: true });
  try {
    const layer = await storeLayer(store, root, {
      lease,
      sourceDateEpoch: epoch,
      compressionLevel: options.compressionLevel,
      helperPath: options.helperPath,
      mapOwner: callerAsRoot(),
    });
    const platform = hostPlatform();
    const created = new Date((epoch ?? Math.floor(Date.now() / 1000)) * 1000).toISOString();
    const config: ImageConfig = {
      created,
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
      config: containerConfig,
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      history: [{ created, created_by: options.createdBy ?? `import ${root}` }],
    };
    const manifest = await store.putImage({ config, layers: [{ descriptor: layer.descriptor, diffId: layer.diffId }], lease });
    if (reference !== undefined) await store.tag(manifest.digest, reference.toString());
    return { digest: manifest.digest, ...(reference !== undefined ? { reference: reference.toString() } : {}) };
  } finally {
    await lease.release().catch(() => false);
  }
}

