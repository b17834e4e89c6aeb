/**
 * Removal that `remove()` does not wait for. A removed container's state and
 * data directories are renamed into a `.trash` directory beside them (one
 * rename each: for every process they are gone at once) and deleted after
 * `remove()` has returned; on a busy disk each unlink and rmdir waits on the
 * filesystem journal, and nothing needs them gone before the caller goes on.
 * Entries are named `<id>-<owner token>`: what a process that died half-way
 * left is taken by the next reap (a Runtime opening the state directory) or
 * prune ({@link emptyTrash}); the runtime's disposal waits for its own
 * ({@link settleTrash}).
 *
 * @module
 */

import { mkdir, readdir, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import createDebug from 'debug';
import { isAbandoned, ownerToken } from '../util/index.js';

const debug = createDebug('dockless:runtime');

/** The name of the trash directory in the state directory and in the runtime's `containers` directory. */
export const TRASH_DIR = '.trash';

/** Deletions still running in this process. */
const pending = new Set<Promise<void>>();
/** Trash directories known to exist. */
const made = new Set<string>();

/**
 * Moves `path` into the trash beside it and deletes it there in the
 * background with `remove`; when it cannot be moved, deletes it in place
 * before returning. A missing `path` is fine.
 */
export async function discard(path: string, remove: (path: string) => Promise<void>): Promise<void> {
  const trash = join(dirname(path), TRASH_DIR);
  const target = join(trash, `${basename(path)}-${ownerToken()}`);
  try {
    if (!made.has(trash)) {
      await mkdir(trash, { recursive: true, mode: 0o700 });
      made.add(trash);
    }
    await rename(path, target);
  } catch (error) {
    // Gone already, or the trash was taken away: the removal in place says which.
    made.delete(trash);
    debug('%s not moved to the trash (%s): removed in place', path, (error as NodeJS.ErrnoException).code ?? String(error));
    await remove(path);
    return;
  }
  const done: Promise<void> = remove(target)
    .catch((error: unknown) => debug('%s: left for the next prune: %s', target, String(error)))
    .finally(() => pending.delete(done));
  pending.add(done);
}

/** Resolves once every deletion this process started has ended. */
export async function settleTrash(): Promise<void> {
  while (pending.size > 0) await Promise.all([...pending]);
}

/**
 * Deletes what processes that died left in the trash of `dir` (the state
 * directory, or the `containers` directory); entries of live processes are
 * theirs to finish.
 *
 * @returns the paths removed.
 */
export async function emptyTrash(dir: string, remove: (path: string) => Promise<void>): Promise<string[]> {
  const trash = join(dir, TRASH_DIR);
  const names = await readdir(trash).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names.filter((n) => isAbandoned(n))) {
    const path = join(trash, name);
    try {
      await remove(path);
      removed.push(path);
    } catch (error) {
      debug('trash %s: %s', path, String(error));
    }
  }
  return removed;
}
