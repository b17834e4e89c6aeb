/**
 * `docker commit`: a container's changes become a new layer on its image.
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError, InvalidStateError, NotFoundError } from '../errors.js';
import { type ContainerConfig, type Digest, type ImageConfig, isDigest, parseReference } from '../oci/index.js';
import { MergedView, sourceDateEpochFromEnv } from '../layer/index.js';
import { type Container, ownerInContainer, type Runtime } from '../runtime/index.js';
import type { ImageStoreCore as ImageStore } from '../store/index.js';
import { ownerToken } from '../util/index.js';
import { copyTree } from './copy-tree.js';
import { pruneUpper, RUNTIME_MOUNT_POINTS, storeLayer, storeUpperInUserns } from './layer-from-upper.js';
import { mapsMoreThanRoot, rootIsCaller, withMappers } from '../helper/index.js';

/** Options of {@link commitContainer}. */
export interface CommitOptions {
  /** Tag the new image with this reference. @default untagged (`gc()` may take it) */
  tag?: string;
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

/** What {@link commitContainer} returns. */
export interface CommitResult {
  /** The new image's manifest digest. */
  digest: Digest;
  /** The tag, normalised, when one was given. */
  reference?: string;
}

/**
 * Makes a new image of a container's changes, as `docker commit` does: what
 * it wrote (its upper dir, less the mount points the runtime made) becomes
 * one layer on top of its image's layers, with a history entry naming its
 * command. Works on stopped and running containers (a running one is read
 * from a copy of its changes, without pausing it: files it writes meanwhile
 * may or may not be in the layer).
 *
 * @param store the store `runtime` was made with.
 * @param runtime the runtime that runs (or ran) the container.
 * @param container the container, or its id or name.
 * @returns the new image's digest, and its normalised reference when tagged.
 * @throws {InvalidArgumentError} when the container was made from a rootfs directory, not an image, or `tag` is malformed.
 * @throws {NotFoundError} when the container, or its image, is gone.
 * @throws {InvalidStateError} when the container runs on a snapshot (a clone, or a template after `runtime.snapshot()`).
 * @example
 * ```ts
 * const c = await runtime.run({ image: 'base:1', cmd: ['sh', '-c', 'echo hi > /greeting'] });
 * await c.wait();
 * const { digest } = await commitContainer(store, runtime, c, { tag: 'base:greeting', message: 'add a greeting' });
 * ```
 */
export async function commitContainer(store: ImageStore, runtime: Runtime, container: Container | string, options: CommitOptions = {}): Promise<CommitResult> {
  const tag = options.tag;
  const resolved = typeof container === 'string' ? await runtime.get(container) : container;
  const snapshots = await runtime.snapshotsOf(resolved.id);
  if (snapshots.length > 0) {
    // Its upper dir holds only what it wrote since; the snapshot's files are in a layer the image does not have.
    throw new InvalidStateError(
      `commit container ${resolved.id.slice(0, 12)}: it runs on snapshot ${snapshots[0]!.slice(0, 12)} (a clone, or a snapshot's template); committing it is not supported: commit the template before its snapshot`,
    );
  }
  return commitResolved(store, resolved, runtime.pathsOf(resolved.id).upper, tag, options);
}

async function commitResolved(store: ImageStore, container: Container, upper: string, tag: string | undefined, options: CommitOptions): Promise<CommitResult> {
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
    // The snapshots the container runs on: for a rootless one, those of its maps.
    const snapshot = await store.snapshot(
      digest,
      info.userns?.rootless === true ? { rootless: true, userns: rootIsCaller(info.userns) ? withMappers(info.userns) : false } : {},
    );
    const view = new MergedView(snapshot.lowerDirs, options.helperPath !== undefined ? { helperPath: options.helperPath } : {});
    const epoch = options.sourceDateEpoch ?? sourceDateEpochFromEnv('commit');
    const userns = info.userns;
    let layer;
    if (userns?.rootless === true && mapsMoreThanRoot(userns)) {
      // Files of its subordinate ids may be closed to the caller (0600): read as root of the container's namespace.
      layer = await storeUpperInUserns(store, upper, {
        lease,
        userns: withMappers(userns),
        lowers: view.layers,
        placeholders: RUNTIME_MOUNT_POINTS,
        ...(container.status !== 'stopped' ? { copyTo: await scratch(store) } : {}),
        sourceDateEpoch: epoch,
        compressionLevel: options.compressionLevel,
        helperPath: options.helperPath,
      });
    } else {
      let dir = upper;
      if (container.status !== 'stopped') {
        // Its mount points are live in its namespace: read a copy, never touch the upper dir itself.
        copy = await scratch(store);
        await copyTree(upper, copy, { context, helperPath: options.helperPath });
        dir = copy;
      }
      const xattrs = await pruneUpper(dir, view, RUNTIME_MOUNT_POINTS, options.helperPath);
      layer = await storeLayer(store, dir, {
        lease,
        xattrs,
        // A rootless container's upper dir holds host ids: the layer has the container's.
        mapOwner: userns?.rootless === true ? ownerInContainer(userns) : undefined,
        sourceDateEpoch: epoch,
        compressionLevel: options.compressionLevel,
        helperPath: options.helperPath,
      });
    }
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


/** A fresh path for a copy of an upper dir, in the store's scratch area; the caller removes it. */
async function scratch(store: ImageStore): Promise<string> {
  const copy = path.join(store.tmpDir(), `commit-${ownerToken()}`);
  await mkdir(path.dirname(copy), { recursive: true, mode: 0o700 });
  return copy;
}
