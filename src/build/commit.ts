/**
 * `docker commit`: a container's changes become a new layer on its image.
 * Reached as `runtime.commit()`.
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { DocklessError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { isDigest, type Digest } from '../oci/digest.js';
import { parseReference } from '../oci/reference.js';
import type { ContainerConfig, ImageConfig } from '../oci/types.js';
import type { Container } from '../runtime/container.js';
import { ownerInContainer } from '../runtime/userns.js';
import type { ImageStoreCore as ImageStore } from '../store/index.js';
import { ownerToken } from '../util/index.js';
import { pruneUpper, RUNTIME_MOUNT_POINTS, sourceDateEpochFromEnv, storeLayer } from './layer-writer.js';
import { MergedView } from './merged-view.js';

const execFileAsync = promisify(execFile);

/** Options of `runtime.commit()`. */
export interface CommitOptions {
  /** A comment for the history entry (`docker commit -m`). */
  message?: string;
  /** The image's author (`docker commit -a`). */
  author?: string;
  /** Config fields to set on the new image (`docker commit -c`), e.g. `{ Cmd: ['serve'] }`. */
  config?: Partial<ContainerConfig>;
  /** Clamp file times to this (seconds). @default Number(process.env.SOURCE_DATE_EPOCH) when set */
  sourceDateEpoch?: number;
  /** gzip level, 1 (fast) to 9 (small). @default 1 */
  compressionLevel?: number;
  /** Path of the native helper. */
  helperPath?: string;
}

/** What `runtime.commit()` returns. */
export interface CommitResult {
  /** The new image's manifest digest. */
  digest: Digest;
  /** The tag, normalised, when one was given. */
  reference?: string;
}

/**
 * Commits a container of an image: its upper dir (less the mount points the
 * runtime made) becomes a layer on the image's layers, with a history entry
 * naming the container's command. A running container is read from a copy
 * of its upper dir, without pausing it: files it writes meanwhile may or may
 * not be in the layer.
 *
 * @throws {InvalidArgumentError} when the container was made from a rootfs directory, not an image.
 * @throws {NotFoundError} when its image is no longer in the store.
 */
export async function commitContainer(
  store: ImageStore,
  container: Container,
  upper: string,
  tag: string | undefined,
  options: CommitOptions = {},
): Promise<CommitResult> {
  const short = container.id.slice(0, 12);
  const context = `commit container ${short}`;
  const reference = tag !== undefined ? parseReference(tag) : undefined;
  if (reference?.digest !== undefined) throw new InvalidArgumentError(`${context}: tag \`${tag}\` must not have a digest`);
  const info = container.info();
  if (info.image === undefined) {
    throw new InvalidArgumentError(`${context}: the container runs on a rootfs directory, not an image; only containers of images can be committed`);
  }
  // The container's lease names the manifest it was made from, even if its tag has moved since.
  const leaseDigest = (await store.leases()).find((l) => l.id === `container-${container.id}`)?.digests[0];
  const image = leaseDigest !== undefined && isDigest(leaseDigest) ? leaseDigest : info.image;
  let details;
  try {
    details = await store.inspect(image);
  } catch (err) {
    if (err instanceof NotFoundError) throw new NotFoundError(`${context}: its image ${info.image} is no longer in the store`, { cause: err });
    throw err;
  }
  const digest = details.manifestDescriptor.digest;
  const lease = await store.lease(`commit-${process.pid}-${randomBytes(6).toString('hex')}`, [digest], { processBound: true });
  let copy: string | undefined;
  try {
    const snapshot = await store.snapshot(digest);
    const view = new MergedView(snapshot.lowerDirs, options.helperPath !== undefined ? { helperPath: options.helperPath } : {});
    let dir = upper;
    if (container.status !== 'stopped') {
      // Its mount points are live in its namespace: read a copy, never touch the upper dir itself.
      copy = path.join(store.tmpDir(), `commit-${ownerToken()}`);
      await mkdir(path.dirname(copy), { recursive: true, mode: 0o700 });
      try {
        await execFileAsync('cp', ['-a', '--', upper, copy]);
      } catch (cause) {
        throw new DocklessError(`${context}: copy \`${upper}\`: ${(cause as Error).message}`, { cause, path: upper });
      }
      dir = copy;
    }
    await pruneUpper(dir, view, RUNTIME_MOUNT_POINTS, options.helperPath);
    const epoch = options.sourceDateEpoch ?? sourceDateEpochFromEnv('commit');
    const layer = await storeLayer(store, dir, {
      lease,
      // A rootless container's upper dir holds host ids: the layer has the container's.
      mapOwner: info.userns?.rootless === true ? ownerInContainer(info.userns) : undefined,
      sourceDateEpoch: epoch,
      compressionLevel: options.compressionLevel,
      helperPath: options.helperPath,
    });
    const now = Math.floor(Date.now() / 1000);
    const created = new Date((epoch !== undefined && epoch < now ? epoch : now) * 1000).toISOString();
    const config: ImageConfig = {
      ...details.config,
      created,
      config: { ...details.config.config, ...options.config },
      rootfs: { type: 'layers', diff_ids: [...details.layers.map((l) => l.diffId), layer.diffId] },
      history: [
        ...(details.config.history ?? []),
        {
          created,
          created_by: info.cmd.join(' '),
          ...(options.message !== undefined ? { comment: options.message } : {}),
          ...(options.author !== undefined ? { author: options.author } : {}),
        },
      ],
    };
    if (options.author !== undefined) config.author = options.author;
    const manifest = await store.putImage({
      config,
      layers: [
        ...details.layers.map((l) => ({ descriptor: { mediaType: l.mediaType, digest: l.digest, size: l.size }, diffId: l.diffId })),
        { descriptor: layer.descriptor, diffId: layer.diffId },
      ],
      lease,
    });
    if (reference !== undefined) await store.tag(manifest.digest, reference.toString());
    return { digest: manifest.digest, ...(reference !== undefined ? { reference: reference.toString() } : {}) };
  } finally {
    if (copy !== undefined) await rm(copy, { recursive: true, force: true });
    await lease.release().catch(() => false);
  }
}

