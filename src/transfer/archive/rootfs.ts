/**
 * `docker import`: a plain tar of a root filesystem becomes a one-layer image.
 *
 * @module
 */

import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { stat } from 'node:fs/promises';
import createDebug from 'debug';
import { InvalidArgumentError } from '../../errors.js';
import {
  type ContainerConfig,
  type Descriptor,
  type ImageConfig,
  layerMediaType,
  type Platform,
  toPlatform,
} from '../../oci/index.js';
import type { TransferStore } from '../types.js';
import type { Lease } from '../../store/index.js';
import { applyChanges } from './changes.js';
import { LayerTap } from './layer-tap.js';
import { counted } from './util.js';

const debug = createDebug('dockless:transfer');

/** Options of {@link importRootfsTar}. */
export interface RootfsImportOptions {
  /** The lease the layer, config and manifest join as they are stored. */
  lease: Lease;
  /** The operation, for error messages. */
  context: string;
  /** Execution defaults; see `ImportOptions.config`. */
  config?: Partial<ContainerConfig> | undefined;
  /** Dockerfile instructions applied to `config`; see `ImportOptions.changes`. */
  changes?: readonly string[] | undefined;
  /** The history comment. @default `Imported from <file name>` */
  message?: string | undefined;
  /** The platform recorded in the config. @default this host's */
  platform?: Platform | string | undefined;
  /** Cancels the copy; nothing is stored. */
  signal?: AbortSignal | undefined;
  /** Called with the bytes of the file read so far and its size. */
  onBytes?: ((bytes: number, total: number) => void) | undefined;
}

/**
 * Stores a root filesystem tar (plain, gzip or zstd) as one layer, as it is
 * (its compression kept, so the file is read once), checking that it is a
 * well-formed tar while it streams, and writes an image for it: the host's
 * platform (or `platform`), `config` with `changes` applied, one history
 * entry. Tags nothing.
 *
 * @returns the image's manifest descriptor and its layer's.
 * @throws {InvalidArgumentError} when the file is empty, not a tar, truncated, or a change is malformed.
 * @throws {AbortError} when `signal` aborts.
 */
export async function importRootfsTar(
  store: TransferStore,
  path: string,
  options: RootfsImportOptions,
): Promise<{ manifest: Descriptor; layer: Descriptor }> {
  const { context, lease, signal } = options;
  // Checked first, so that a malformed change costs no copy.
  const containerConfig = applyChanges(options.config ?? {}, options.changes ?? []);
  const { size: total } = await stat(path);
  if (total === 0) throw new InvalidArgumentError(`${context}: \`${path}\` is empty, not a tar`, { path });
  const tap = new LayerTap({ context, validateTar: true, hashUncompressed: false });
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  let layer: Descriptor;
  try {
    layer = await store.putBlob(
      tap.tap(counted(stream, (n) => options.onBytes?.(n, total))),
      { size: total, lease, signal },
    );
  } finally {
    stream.destroy();
  }
  const facts = tap.facts();
  // An uncompressed tar's diffID is its digest, which the store computed.
  const diffId = facts.diffId ?? layer.digest;
  const platform = toPlatform(options.platform, options.context);
  const created = new Date().toISOString();
  const config: ImageConfig = {
    created,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
    ...(platform['os.version'] !== undefined ? { 'os.version': platform['os.version'] } : {}),
    config: containerConfig,
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [
      {
        created,
        created_by: `dockless import ${basename(path)}`,
        comment: options.message ?? `Imported from ${basename(path)}`,
      },
    ],
  };
  debug('%s: rootfs layer %s (%s, %d entries)', context, diffId, facts.compression, facts.entries ?? 0);
  const descriptor: Descriptor = { ...layer, mediaType: layerMediaType(facts.compression) };
  const manifest = await store.putImage({ config, layers: [{ descriptor, diffId }], lease });
  return { manifest, layer: descriptor };
}
