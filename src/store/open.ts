/**
 * Opening a store: its directories, an empty OCI image layout when there is
 * none, and the removal of what crashed processes left behind.
 *
 * @module
 */

import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import createDebug from 'debug';
import { InvalidArgumentError, InvalidStateError } from '../errors.js';
import { OCI_LAYOUT_VERSION } from '../oci/index.js';
import {
  checkDirOption,
  createDirOption,
  ensureDir,
  isAbandoned,
  isErrno,
  writeFileAtomic,
} from '../util/index.js';
import { cleanAbandonedLockAttempts, removeStaleLocks, withLock } from './lock.js';
import { defaultStoreRoot, SNAPSHOT_TMP_PREFIX, StorePaths } from './paths.js';
import { emptyIndex, readIndex, writeIndex } from './refs.js';
import { removeSnapshotTree } from './snapshots.js';
import type { HistoryRetention, ImageStoreOptions } from './types.js';

const debug = createDebug('dockless:store');

/** The tag history kept by default: 10 changes per tag, none older than 30 days. */
export const DEFAULT_HISTORY_RETENTION: Readonly<Required<HistoryRetention>> = Object.freeze({
  maxEntries: 10,
  maxAgeMs: 30 * 24 * 60 * 60 * 1000,
});

/** A store made ready by {@link openStore}: what its classes are built from. */
export interface OpenedStore {
  readonly paths: StorePaths;
  readonly retention: Required<HistoryRetention>;
  /** The helper to use; `undefined` for the default one. */
  readonly helperPath: string | undefined;
}

/**
 * Makes the store at `options.root` ready: creates it when needed (an empty
 * OCI image layout plus dockless's state directory) and removes what crashed
 * processes left behind (partial blobs, snapshots being unpacked, temporary
 * files).
 *
 * @throws {InvalidStateError} when `root` holds an OCI layout of another version, or a corrupt `index.json`.
 * @throws {InvalidArgumentError} when `root` or `helperPath` is not a path, `root` is a file, or a retention
 *   setting is not a non-negative number.
 * @throws {PermissionError} when the store directory cannot be created or written.
 */
export async function openStore(options: ImageStoreOptions = {}): Promise<OpenedStore> {
  const retention = { ...DEFAULT_HISTORY_RETENTION, ...options.historyRetention };
  for (const [key, value] of Object.entries(retention)) {
    if (typeof value !== 'number' || !(value >= 0)) {
      throw new InvalidArgumentError(`open store: historyRetention.${key} must be a non-negative number`);
    }
  }
  if (options.helperPath !== undefined) checkDirOption(options.helperPath, 'open store: helperPath');
  const paths = new StorePaths(checkDirOption(options.root ?? defaultStoreRoot(), 'open store: root'));
  await createDirOption(paths.root, 'open store: root');
  await createDirOption(join(paths.blobs, 'sha256'), 'open store');
  await Promise.all([
    ensureDir(paths.leases),
    ensureDir(paths.images),
    // Snapshots hold images' setuid binaries and device nodes: keep other users out.
    ensureDir(paths.snapshots, 0o700),
    ensureDir(paths.ingest, 0o700),
    ensureDir(paths.tmp, 0o700),
    ensureDir(paths.trash, 0o700),
    ensureDir(paths.locks),
  ]);
  await cleanAbandonedLockAttempts(paths.locks);
  await removeStaleLocks(paths.locks);
  if (!(await layoutReady(paths))) {
    await withLock(paths.storeLock, async () => {
      if (await layoutReady(paths)) return;
      await writeFileAtomic(paths.ociLayout, `${JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION })}\n`, paths.tmp);
      try {
        await stat(paths.index);
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
        await writeIndex(paths, emptyIndex());
      }
    });
  }
  await readIndex(paths);
  await cleanAbandoned(paths, options.helperPath);
  debug('opened store %s', paths.root);
  return { paths, retention, helperPath: options.helperPath };
}

async function layoutReady(paths: StorePaths): Promise<boolean> {
  let layout: unknown;
  try {
    layout = JSON.parse(await readFile(paths.ociLayout, 'utf8'));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw new InvalidStateError(`open store: \`${paths.ociLayout}\` is not valid JSON`, { cause: err, path: paths.ociLayout });
  }
  const version = (layout as { imageLayoutVersion?: unknown } | null)?.imageLayoutVersion;
  if (version !== OCI_LAYOUT_VERSION) {
    throw new InvalidStateError(
      `open store: \`${paths.ociLayout}\` has imageLayoutVersion ${JSON.stringify(version)}, expected "${OCI_LAYOUT_VERSION}"`,
      { path: paths.ociLayout },
    );
  }
  try {
    await stat(paths.index);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}

/**
 * Removes what processes that no longer exist left behind: ingest files,
 * atomic-write temporaries, snapshots being unpacked, GC trash.
 */
export async function cleanAbandoned(paths: StorePaths, helperPath?: string): Promise<number> {
  let removed = 0;
  const sweep = async (dir: string, select: (name: string) => boolean): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (!select(name) || !isAbandoned(name)) continue;
      await removeSnapshotTree(join(dir, name), helperPath);
      removed++;
    }
  };
  await sweep(paths.ingest, () => true);
  await sweep(paths.tmp, () => true);
  await sweep(paths.trash, () => true);
  await sweep(paths.snapshots, (name) => name.startsWith(SNAPSHOT_TMP_PREFIX));
  if (removed > 0) debug('cleaned %d abandoned temporary files', removed);
  return removed;
}
