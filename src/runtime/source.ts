/**
 * A container's root: a rootfs directory, or an image's unpacked snapshots.
 *
 * @module
 */

import { statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { rootIsCaller } from '../helper/index.js';
import type { ContainerConfig } from '../oci/index.js';
import type { ImageStoreCore as ImageStore } from '../store/index.js';
import type { ContainerSpec } from './spec.js';
import type { UsernsPlan } from './userns.js';

/** Where a container's root comes from. */
export interface ContainerSource {
  /** Overlay lower dirs, top-most first. */
  lowers: string[];
  /** What the record names as the rootfs. */
  label: string;
  /** The image config's container part, for an image. */
  config?: ContainerConfig;
  /** What a lease must hold while the container exists: manifest digest and chainIDs. */
  targets?: string[];
}

/**
 * Where a container's root comes from: a rootfs directory, or an image's
 * snapshots in `store`. A rootless container's snapshots are those unpacked
 * with its own maps (owners as its ids; a copy of the image for maps whose
 * root is not the caller), or without owners under a single-id mapping.
 */
export async function containerSource(
  spec: ContainerSpec,
  store: ImageStore | undefined,
  root: string,
  userns?: UsernsPlan,
): Promise<ContainerSource> {
  if (spec.rootfs !== undefined) {
    const rootfs = spec.rootfs;
    let info;
    try {
      // On this thread: a directory every launch from it looks up (its inode cached), where a
      // thread-pool round trip costs more than the lookup.
      info = statSync(rootfs);
    } catch (cause) {
      throw new NotFoundError(`rootfs \`${rootfs}\` does not exist`, { cause, path: rootfs });
    }
    if (!info.isDirectory()) throw new InvalidArgumentError(`rootfs \`${rootfs}\` is not a directory`, { path: rootfs });
    return { lowers: [rootfs], label: rootfs };
  }
  const image = spec.image as string;
  if (store === undefined) {
    throw new InvalidArgumentError(`container spec: image ${image} needs a Runtime created with { store }`);
  }
  const snapshot = await store.snapshot(image, userns?.rootless === true ? { rootless: true, userns: snapshotUserns(userns) } : {});
  // overlayfs needs one lower dir at least; an image without layers gets an empty one.
  const lowers = snapshot.lowerDirs.length > 0 ? snapshot.lowerDirs : [await emptyDir(root)];
  return { lowers, label: lowers[0]!, config: snapshot.config.config, targets: [snapshot.digest, ...snapshot.chainIds] };
}

/**
 * The maps a rootless container's snapshots are unpacked with: its own, when
 * they map more than the caller and the caller is their root (the unpack
 * writes files as the caller); else none, every file the caller's (root inside).
 */
function snapshotUserns(userns: UsernsPlan): UsernsPlan | false {
  return userns.newuidmap !== undefined && (rootIsCaller(userns) || userns.mountUserns !== undefined) ? userns : false;
}

async function emptyDir(root: string): Promise<string> {
  const path = join(root, 'empty');
  await mkdir(path, { recursive: true, mode: 0o755 });
  return path;
}
