/**
 * Snapshots: layers unpacked once per chainID and variant (root, rootless, or
 * rootless with a user namespace's owners, see snapshot-variant.ts) into
 * `dockless/snapshots/<chainID hex>[-rootless|-userns-<maps hash>]/fs`,
 * each holding only its own layer's files (with overlayfs whiteouts), to be
 * stacked as overlayfs lower dirs.
 *
 * A snapshot is made in `snapshots/tmp-<owner>/` (unpacked from its blob,
 * adopted from a builder's directory, or unpacked as a pull streams it) and
 * made visible by {@link publishSnapshot}, the one way a snapshot appears:
 * under the chainID's snapshot lock, its completion marker (`snapshot.json`)
 * is written and the directory renamed into place; its files are flushed to
 * disk in the background afterwards (see durability.ts for why a crash still
 * leaves nothing partial visible). So a snapshot exists when, and only when,
 * its directory holds a trusted marker, and a trusted snapshot is whole even
 * after a power loss.
 * Concurrent requests for one chainID share one unpack in a process and wait
 * on the snapshot lock across processes.
 *
 * @module
 */

import { mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import createDebug from 'debug';
import { AbortError, DigestMismatchError, NotFoundError } from '../errors.js';
import { type LayerCompression, unpackLayer, unpackThreadFor } from '../layer/index.js';
import { type Descriptor, type Digest, layerCompression, shortDigest } from '../oci/index.js';
import { explainReadFailure } from './blob-verify.js';
import { openBlob } from './blobs.js';
import { fsyncDir, isErrno, ownerToken, removeTree, syncTree } from '../util/index.js';
import { withLock } from './lock.js';
import { SNAPSHOT_FS_DIR, SNAPSHOT_MARKER, SNAPSHOT_TMP_PREFIX, type StorePaths } from './paths.js';
import { locateHelper, readUsernsHost, runHelperOp, spreadSubdirs, subordinateUserns, usernsArgs, type UsernsMaps } from '../helper/index.js';
import { chooseVariant, type SnapshotVariant, type VariantChoice } from './snapshot-variant.js';
import { bootId, forgetTrusted, noteTrusted, scheduleFlush, snapshotTrustedSync } from './durability.js';

const debug = createDebug('dockless:store');

/**
 * Bytes of a snapshot's content after which its filesystem starts flushing in
 * the background while the unpack goes on (see `UnpackOptions.writeback`):
 * every snapshot is flushed soon after it is published (see durability.ts),
 * and a flush that starts only then waits for the whole layer's writeback.
 */
export const SNAPSHOT_WRITEBACK = 32 << 20;

/** The completion marker of a snapshot, `snapshot.json`. */
export interface SnapshotMarker {
  version: 1;
  /** The snapshot's name: the chainID of its layer and every layer below. */
  chainId: Digest;
  /** The diffID of its layer (the digest of the uncompressed tar). */
  diffId: Digest;
  /** The chainID of the layer below, `null` for a base layer. */
  parent: Digest | null;
  /** The compressed blob it was unpacked from. */
  layer: { digest: Digest; mediaType: string; size: number };
  /** The uncompressed tar's size in bytes. */
  size: number;
  /** The number of tar entries. */
  entries: number;
  /** When it was unpacked, ISO 8601. */
  created: string;
  /** How it was unpacked; absent in markers written before variants existed, which are `'root'`. */
  variant?: SnapshotVariant;
  /** `false` until its files are known to be on disk; absent in markers written before deferred flushing (flushed). */
  flushed?: boolean;
  /** The boot id of the kernel that wrote it unflushed (see durability.ts); kept once it is flushed. */
  boot?: string;
}

/** One layer to unpack as a snapshot. */
export interface SnapshotLayer {
  chainId: Digest;
  diffId: Digest;
  parent: Digest | null;
  descriptor: Descriptor;
}

/** Options of {@link SnapshotManager.ensure}. */
export interface EnsureOptions {
  signal?: AbortSignal | undefined;
  /** Called with the compressed bytes read so far. */
  onBytes?: ((bytes: number) => void) | undefined;
  rootless?: boolean | undefined;
  /** See {@link VariantOptions.userns}. */
  userns?: UsernsMaps | false | undefined;
}

interface SharedUnpack {
  /** Resolves true when this process unpacked the layer, false when another process had. */
  promise: Promise<boolean>;
  controller: AbortController;
  waiters: number;
  settled: boolean;
  listeners: Set<(bytes: number) => void>;
}

// Shared by every store instance in the process, keyed by snapshot directory.
const inflight = new Map<string, SharedUnpack>();

/** Creates and inspects snapshots. */
export class SnapshotManager {
  readonly #paths: StorePaths;
  readonly #helperPath: string | undefined;

  constructor(paths: StorePaths, helperPath?: string) {
    this.#paths = paths;
    this.#helperPath = helperPath;
  }

  /** Whether the snapshot of `chainId` in `variant` is complete (its marker exists). */
  async exists(chainId: Digest, variant: SnapshotVariant): Promise<boolean> {
    return snapshotExists(this.#paths, chainId, variant);
  }

  /** The marker of a snapshot; `undefined` when it is absent or unreadable. */
  async marker(chainId: Digest, variant: SnapshotVariant): Promise<SnapshotMarker | undefined> {
    try {
      return JSON.parse(await readFile(join(this.#paths.snapshot(chainId, variant), SNAPSHOT_MARKER), 'utf8')) as SnapshotMarker;
    } catch {
      return undefined;
    }
  }

  /**
   * Makes sure the snapshot of `layer.chainId` in the variant of
   * `options.rootless` and `options.userns` exists, unpacking it when it does not. Returns `true`
   * when this process unpacked it (in this call or one it joined), `false`
   * when it was already there.
   *
   * @throws {DigestMismatchError} when the blob does not match its digest or the tar its diffID.
   * @throws {AbortError} when `signal` aborts this caller's wait.
   */
  async ensure(layer: SnapshotLayer, options: EnsureOptions = {}): Promise<boolean> {
    const choice = chooseVariant(options);
    const { variant } = choice;
    if (await this.exists(layer.chainId, variant)) return false;
    const key = this.#paths.snapshot(layer.chainId, variant);
    let shared = inflight.get(key);
    // An unpack whose every waiter has gone is being cancelled: start afresh
    // rather than inherit its AbortError (the snapshot lock orders the two).
    if (shared?.controller.signal.aborted === true) shared = undefined;
    if (shared === undefined) {
      const controller = new AbortController();
      const entry: SharedUnpack = {
        controller,
        waiters: 0,
        settled: false,
        listeners: new Set(),
        promise: Promise.resolve(false),
      };
      entry.promise = this.#unpack(layer, controller.signal, choice, (bytes) => {
        for (const listener of entry.listeners) listener(bytes);
      }).finally(() => {
        entry.settled = true;
        if (inflight.get(key) === entry) inflight.delete(key);
      });
      // Every waiter may have gone (aborted) by the time it settles.
      entry.promise.catch(() => {});
      inflight.set(key, entry);
      shared = entry;
    }
    shared.waiters++;
    if (options.onBytes) shared.listeners.add(options.onBytes);
    try {
      return await waitFor(shared.promise, options.signal, `unpack layer ${shortDigest(layer.descriptor.digest)}`);
    } finally {
      shared.waiters--;
      if (options.onBytes) shared.listeners.delete(options.onBytes);
      if (shared.waiters === 0 && !shared.settled) shared.controller.abort(options.signal?.reason);
    }
  }

  async #unpack(
    layer: SnapshotLayer,
    signal: AbortSignal,
    choice: VariantChoice,
    onBytes: (bytes: number) => void,
  ): Promise<boolean> {
    const paths = this.#paths;
    const { variant } = choice;
    return withLock(
      paths.snapshotLock(layer.chainId, variant),
      async () => {
        if (await this.exists(layer.chainId, variant)) return false;
        const label = `unpack layer ${shortDigest(layer.descriptor.digest)}`;
        const tmp = await makeSnapshotTmp(paths, this.#helperPath);
        try {
          const fsDir = join(tmp, SNAPSHOT_FS_DIR);
          const started = Date.now();
          const blob = await openBlob(paths, layer.descriptor.digest, layer.descriptor.size, onBytes);
          let result;
          try {
            result = await unpackLayer(blob, fsDir, {
              compression: compressionOf(layer.descriptor.mediaType),
              thread: unpackThreadFor(layer.descriptor.size),
              writeback: SNAPSHOT_WRITEBACK,
              signal,
              rootless: choice.rootless,
              userns: choice.userns,
              ...(choice.owners !== undefined ? { owners: choice.owners } : {}),
              ...(this.#helperPath === undefined ? {} : { helperPath: this.#helperPath }),
            });
          } catch (err) {
            if (blob.verified || signal.aborted) throw err;
            throw await explainReadFailure(paths, layer.descriptor, err, label);
          }
          if (!blob.verified) {
            // The unpacker stopped before EOF, so the blob's digest was never checked.
            throw new DigestMismatchError(`${label}: blob was not read to the end, its digest is unverified`, {
              expected: layer.descriptor.digest,
            });
          }
          if (result.diffId !== layer.diffId) {
            throw new DigestMismatchError(
              `${label}: diffID mismatch: the layer's tar is ${result.diffId}, the image config says ${layer.diffId}`,
              { expected: layer.diffId, actual: result.diffId },
            );
          }
          if (signal.aborted) throw new AbortError(`${label}: aborted`, { cause: signal.reason });
          await publishSnapshot(paths, layer, tmp, result, variant, { locked: true, helperPath: this.#helperPath });
          debug(
            'snapshot %s (%s): unpacked %s (%d bytes, %d entries) in %d ms',
            shortDigest(layer.chainId),
            variant,
            shortDigest(layer.descriptor.digest),
            result.size,
            result.entries,
            Date.now() - started,
          );
          return true;
        } catch (err) {
          await removeSnapshotTree(tmp, this.#helperPath);
          throw err;
        }
      },
      { signal, timeoutMs: 0 },
    );
  }
}

// The snapshot directories of stores marked FS_TOPDIR_FL in this process, or being marked.
const spreadDirs = new Map<string, Promise<void>>();

/**
 * Makes the directory of a snapshot about to be unpacked, `snapshots/tmp-<owner>/` with an empty
 * `fs/`, to unpack a layer into. Before the first in a process, `snapshots/`
 * is marked `chattr +T` (see `spreadSubdirs`), which also covers stores made
 * before this rule: ext4 then places each snapshot's tree in a block group of
 * its own choosing, not in the group where the last pulls' trees were
 * unpacked and removed. Without a journal, every inode allocated in such a
 * group passes over each inode freed there in the last minutes: that was 40 %
 * of an unpack's CPU after an image was removed (issue 13).
 */
export async function makeSnapshotTmp(paths: StorePaths, helperPath: string | undefined): Promise<string> {
  let spread = spreadDirs.get(paths.snapshots);
  if (spread === undefined) {
    spread = spreadSubdirs([paths.snapshots], `prepare snapshots \`${paths.snapshots}\``, helperPath);
    spreadDirs.set(paths.snapshots, spread);
  }
  await spread;
  const tmp = join(paths.snapshots, `${SNAPSHOT_TMP_PREFIX}${ownerToken()}`);
  await mkdir(tmp, { mode: 0o700 });
  try {
    await mkdir(join(tmp, SNAPSHOT_FS_DIR), { mode: 0o755 });
  } catch (err) {
    await removeTree(tmp);
    throw err;
  }
  return tmp;
}

/**
 * Whether the snapshot of `chainId` in `variant` under `paths` is complete:
 * its marker exists and is trusted (see `markerTrusted` in durability.ts).
 */
export async function snapshotExists(paths: StorePaths, chainId: Digest, variant: SnapshotVariant): Promise<boolean> {
  const dir = paths.snapshot(chainId, variant);
  try {
    await stat(join(dir, SNAPSHOT_MARKER));
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return false;
    throw err;
  }
  return snapshotTrustedSync(dir);
}

/**
 * Writes the {@link SnapshotMarker} of `layer` into `tmp`, a snapshot being
 * made. A flushed snapshot's marker is synced with `tmp`, so that the rename
 * that publishes `tmp` comes after the marker is on disk; an unflushed one
 * (`boot` given) is not: the deferred flush's syncfs covers it, and until then
 * a reboot makes it untrusted anyway. Fails if `tmp` has a marker already.
 */
async function writeSnapshotMarker(
  tmp: string,
  layer: SnapshotLayer,
  facts: { size: number; entries: number },
  variant: SnapshotVariant,
  boot: string | undefined,
): Promise<void> {
  // `flushed` first: the deferred flush overwrites its value in place (see durability.ts).
  const marker: SnapshotMarker = {
    ...(boot !== undefined ? { flushed: false, boot } : {}),
    version: 1,
    chainId: layer.chainId,
    diffId: layer.diffId,
    parent: layer.parent,
    layer: { digest: layer.descriptor.digest, mediaType: layer.descriptor.mediaType, size: layer.descriptor.size },
    size: facts.size,
    entries: facts.entries,
    created: new Date().toISOString(),
    variant,
  };
  const handle = await open(join(tmp, SNAPSHOT_MARKER), 'wx', 0o644);
  try {
    await handle.writeFile(`${JSON.stringify(marker)}\n`);
    if (boot === undefined) await handle.sync();
  } finally {
    await handle.close();
  }
  if (boot === undefined) await fsyncDir(tmp);
}

/**
 * Makes `dir` the snapshot of `layer` by moving it into place instead of
 * unpacking the layer's blob: for a builder that made the layer's tar from
 * `dir` itself, so that unpacking it would give the same tree. Same
 * all-or-nothing rename as an unpack. `variant` is how `dir`'s files were
 * written (owners and `trusted.overlay.*` for `'root'`).
 * *
 * @returns `true` when `dir` became the snapshot; `false` when the snapshot
 *   existed already or `dir` is on another filesystem (`dir` is then left as it was).
 */
export async function adoptSnapshot(
  paths: StorePaths,
  layer: SnapshotLayer,
  dir: string,
  facts: { size: number; entries: number },
  variant: SnapshotVariant,
  helperPath?: string,
): Promise<boolean> {
  return withLock(paths.snapshotLock(layer.chainId, variant), async () => {
    if (await snapshotExists(paths, layer.chainId, variant)) return false;
    const tmp = join(paths.snapshots, `${SNAPSHOT_TMP_PREFIX}${ownerToken()}`);
    await mkdir(tmp, { mode: 0o700 });
    try {
      await rename(dir, join(tmp, SNAPSHOT_FS_DIR));
    } catch (err) {
      await removeTree(tmp);
      if (isErrno(err, 'EXDEV')) return false;
      throw err;
    }
    await publishSnapshot(paths, layer, tmp, facts, variant, { locked: true, helperPath });
    debug(
      'snapshot %s (%s): adopted for %s (%d bytes, %d entries)',
      shortDigest(layer.chainId),
      variant,
      shortDigest(layer.descriptor.digest),
      facts.size,
      facts.entries,
    );
    return true;
  }, { timeoutMs: 0 });
}

/** Options of {@link publishSnapshot}. */
export interface PublishOptions {
  /** The caller holds the snapshot's lock (its chainID's, in its variant) already. */
  locked?: boolean | undefined;
  /** The helper that flushes the files; `undefined` for the default one. */
  helperPath?: string | undefined;
}

/**
 * Makes `tmp` (a `snapshots/tmp-<owner>/` directory whose `fs/` holds the
 * layer's files, written as `variant` makes them) the snapshot of `layer` in
 * `variant`. Under that snapshot's lock: when a complete snapshot (one with a
 * trusted marker) is there already, `tmp` is dropped; otherwise the marker is
 * written into `tmp`, `tmp` renamed into place, and its files flushed to disk
 * in the background (see durability.ts; before it is published where the
 * kernel has no boot id). A directory at the
 * snapshot's name without a trusted marker is not a snapshot (a hand edit,
 * what a version without this rule left, or an unflushed snapshot from before
 * a reboot) and is replaced: under the lock, and with the marker inside the
 * directory that the rename publishes, no snapshot being made can look like
 * that. `tmp` is gone when this returns or throws.
 *
 * @returns `true` when `tmp` became the snapshot, `false` when one was there already.
 */
export async function publishSnapshot(
  paths: StorePaths,
  layer: SnapshotLayer,
  tmp: string,
  facts: { size: number; entries: number },
  variant: SnapshotVariant,
  options: PublishOptions = {},
): Promise<boolean> {
  const publish = async (): Promise<boolean> => {
    try {
      if (await snapshotExists(paths, layer.chainId, variant)) {
        await removeSnapshotTree(tmp, options.helperPath);
        return false;
      }
      const boot = bootId();
      if (boot === undefined) await flushToDisk(join(tmp, SNAPSHOT_FS_DIR), options.helperPath);
      await writeSnapshotMarker(tmp, layer, facts, variant, boot);
      const final = paths.snapshot(layer.chainId, variant);
      forgetTrusted(final);
      try {
        await rename(tmp, final);
      } catch (err) {
        if (!isErrno(err, 'ENOTEMPTY', 'EEXIST')) throw err;
        const broken = join(paths.trash, `snapshot-${ownerToken()}`);
        // GC (under the store lock, not this one) may have swept the marker-less directory meanwhile.
        const moved = await rename(final, broken).then(
          () => true,
          (e: unknown) => {
            if (isErrno(e, 'ENOENT')) return false;
            throw e;
          },
        );
        await rename(tmp, final);
        if (moved) await removeSnapshotTree(broken, options.helperPath);
      }
      noteTrusted(final);
      if (boot === undefined) await fsyncDir(paths.snapshots);
      else scheduleFlush(paths.root, final, options.helperPath);
      return true;
    } catch (err) {
      await removeSnapshotTree(tmp, options.helperPath);
      throw err;
    }
  };
  if (options.locked) return publish();
  return withLock(paths.snapshotLock(layer.chainId, variant), publish, { timeoutMs: 0 });
}

/**
 * Flushes a snapshot's files to disk: one syncfs(2) through the helper, or,
 * where no helper is installed and none was named (a store used without
 * containers), an fsync of each file and directory.
 */
async function flushToDisk(dir: string, helperPath: string | undefined): Promise<void> {
  let helper: string;
  try {
    helper = locateHelper(helperPath);
  } catch (err) {
    if (!(err instanceof NotFoundError) || helperPath !== undefined) throw err;
    debug('flush `%s`: no helper, an fsync per file', dir);
    await syncTree(dir);
    return;
  }
  await runHelperOp('syncfs', ['--', dir], { context: `flush snapshot \`${dir}\``, helperPath: helper });
}

/**
 * Removes a snapshot's directory (or one being made, or trash holding
 * them); a missing one is fine. A caller that is not root cannot remove the
 * files of its subordinate ids that a `'userns-…'` snapshot holds: those are
 * removed by the helper as root of a user namespace that maps every
 * subordinate id of the caller, whichever maps the snapshot was made with.
 */
export async function removeSnapshotTree(path: string, helperPath?: string): Promise<void> {
  try {
    await removeTree(path);
    return;
  } catch (err) {
    if (!isErrno(err, 'EACCES', 'EPERM')) throw err;
    const userns = subordinateUserns(readUsernsHost(), true);
    if (userns === undefined) throw err;
    debug('remove `%s` in a user namespace of every subordinate id: %s', path, (err as NodeJS.ErrnoException).code);
    await runHelperOp('rm', [...usernsArgs(userns), '--', path], {
      context: `remove \`${path}\``,
      ...(helperPath !== undefined ? { helperPath } : {}),
    });
  }
}

/** The compression a layer's media type announces, or `'auto'` for a type we do not know. */
export function compressionOf(mediaType: string): LayerCompression | 'auto' {
  try {
    return layerCompression(mediaType);
  } catch {
    return 'auto';
  }
}

async function waitFor<T>(promise: Promise<T>, signal: AbortSignal | undefined, label: string): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) throw new AbortError(`${label}: aborted`, { cause: signal.reason });
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new AbortError(`${label}: aborted`, { cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
