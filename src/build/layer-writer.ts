/**
 * From an upper dir to a layer in the store: tidy what the runtime left in
 * it, diff it to a reproducible tar, gzip it and store the blob.
 *
 * @module
 */

import type { Stats } from 'node:fs';
import { lstat, readdir, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { MEDIA_TYPE_OCI_LAYER_GZIP } from '../oci/media-types.js';
import type { Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/types.js';
import { readXattrs } from '../helper/xattrs.js';
import { compressLayer, diffToTar } from '../layer/diff.js';
import { OPAQUE_XATTR_VALUE, OVERLAY_USER_XATTR_PREFIX, OVERLAY_XATTR_PREFIX } from '../layer/whiteout.js';
import { DEFAULT_MOUNTS } from '../runtime/defaults.js';
import type { ImageStore } from '../store/image-store.js';
import type { Lease } from '../store/lease.js';
import type { MergedView } from './merged-view.js';

/**
 * Paths the runtime mounts over in every container (`/proc`, `/dev`, `/sys`,
 * the generated /etc files): when an image lacks them, the runtime creates
 * them in the upper dir, and they are no change of the image.
 */
export const RUNTIME_MOUNT_POINTS: readonly string[] = Object.freeze([
  ...DEFAULT_MOUNTS.map((m) => m.target),
  '/etc/hostname',
  '/etc/hosts',
  '/etc/resolv.conf',
]);

/** xattrs that describe the host, not the image: never put in a layer. */
const HOST_XATTRS = new Set(['security.selinux']);

/**
 * `SOURCE_DATE_EPOCH` from the environment, in seconds, or `undefined` when unset.
 *
 * @throws {InvalidArgumentError} when it is not a whole number.
 */
export function sourceDateEpochFromEnv(context: string): number | undefined {
  const env = process.env['SOURCE_DATE_EPOCH'];
  if (env === undefined || env === '') return undefined;
  const n = Number(env);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${context}: SOURCE_DATE_EPOCH \`${env}\` is not a whole number of seconds`);
  return n;
}

/** What {@link storeLayer} stored. */
export interface StoredLayer {
  /** The gzip layer blob's descriptor. */
  descriptor: Descriptor;
  /** The digest of the uncompressed tar. */
  diffId: Digest;
  /** The size of the uncompressed tar. */
  uncompressedSize: number;
}

/** Options of {@link storeLayer}. */
export interface StoreLayerOptions {
  /** Holds the blob until an image or a cache entry refers to it. */
  lease: Lease;
  /** Clamp mtimes to this (seconds); see `diffToTar`. */
  sourceDateEpoch?: number | undefined;
  /** gzip level. @default 6 */
  compressionLevel?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Path of the native helper. */
  helperPath?: string | undefined;
}

/**
 * Stores the changes in `upper` (an overlay upper dir, or a directory laid
 * out as one) as a gzip layer: entries sorted, mtimes clamped to
 * `sourceDateEpoch`, overlay whiteouts and opaque directories as OCI
 * whiteouts, `security.capability` and other xattrs kept (not
 * `security.selinux`).
 */
export async function storeLayer(store: ImageStore, upper: string, options: StoreLayerOptions): Promise<StoredLayer> {
  const tar = diffToTar(upper, {
    readXattrs: async (paths) => {
      const map = await readXattrs(upper, paths, { context: `diff \`${upper}\``, ...(options.helperPath !== undefined ? { helperPath: options.helperPath } : {}) });
      for (const attrs of map.values()) for (const name of HOST_XATTRS) attrs.delete(name);
      return map;
    },
    ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
  });
  const { stream, result } = compressLayer(tar, 'gzip', { level: options.compressionLevel ?? 6 });
  const descriptor = await store.putBlob(stream, {
    mediaType: MEDIA_TYPE_OCI_LAYER_GZIP,
    lease: options.lease,
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
  });
  const info = await result;
  return { descriptor, diffId: info.diffId as Digest, uncompressedSize: info.uncompressedSize };
}

/**
 * Removes from a container's upper dir what is no change of the image:
 *
 * - `placeholders`: mount points the runtime created because the image
 *   lacked them (`/proc`, `/etc/hosts`, …): empty, and absent below;
 * - directories that were only copied up (same mode and owner as below, not
 *   opaque) and hold nothing once the above is gone: overlayfs copies a
 *   directory up when something in it is touched, even if nothing stays.
 *
 * So a `RUN` that changes nothing makes an empty layer, whatever the
 * runtime had to mount.
 */
export async function pruneUpper(upper: string, below: MergedView | undefined, placeholders: readonly string[], helperPath?: string): Promise<void> {
  const placeholderSet = new Set(placeholders.map((p) => p.replace(/^\/+/, '')));
  for (const rel of placeholderSet) {
    const host = path.join(upper, rel);
    const st = await lstat(host).catch(() => undefined);
    if (st === undefined || (await below?.lstat(rel)) !== undefined) continue;
    if (st.isFile() && st.size === 0) await rm(host, { force: true });
    else if (st.isDirectory() && (await readdir(host)).length === 0) await rmdir(host).catch(() => undefined);
  }
  // Empty directories, deepest first, and whether they could be dropped.
  const dirs: { rel: string; stats: Stats }[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of await readdir(path.join(upper, rel))) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const st = await lstat(path.join(upper, childRel));
      if (st.isDirectory()) {
        await walk(childRel);
        dirs.push({ rel: childRel, stats: st });
      }
    }
  };
  await walk('');
  if (dirs.length === 0) return;
  const xattrs = await readXattrs(
    upper,
    dirs.map((d) => d.rel),
    { context: `diff \`${upper}\``, ...(helperPath !== undefined ? { helperPath } : {}) },
  );
  const isOpaque = (rel: string): boolean => {
    const attrs = xattrs.get(rel);
    return [OVERLAY_XATTR_PREFIX, OVERLAY_USER_XATTR_PREFIX].some((p) => {
      const v = attrs?.get(`${p}opaque`);
      return v !== undefined && Buffer.from(v).toString() === OPAQUE_XATTR_VALUE;
    });
  };
  const isPlaceholderParent = (rel: string): boolean => [...placeholderSet].some((p) => p.startsWith(`${rel}/`));
  for (const { rel, stats } of dirs) {
    const host = path.join(upper, rel);
    if ((await readdir(host)).length > 0 || isOpaque(rel)) continue;
    const lower = await below?.lstat(rel);
    const unchanged =
      lower === undefined
        ? isPlaceholderParent(rel)
        : lower.stats.isDirectory() &&
          (lower.stats.mode & 0o7777) === (stats.mode & 0o7777) &&
          lower.stats.uid === stats.uid &&
          lower.stats.gid === stats.gid;
    if (unchanged) await rmdir(host).catch(() => undefined);
  }
}
