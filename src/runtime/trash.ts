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

import { mkdirSync, renameSync } from 'node:fs';
import { mkdir, readdir, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import createDebug from 'debug';
import { ForkServer, locateHelper, moveForked, removeTreesForked, startDetachedRemover, type DetachedRemover } from '../helper/index.js';
import { isAbandoned, ownerToken, ownerTokenOf, withOwnerToken } from '../util/index.js';

const debug = createDebug('dockless:runtime');

/** The name of the trash directory in the state directory and in the runtime's `containers` directory. */
export const TRASH_DIR = '.trash';

/** Deletions still running in this process. */
const pending = new Set<Promise<void>>();
/** Trash directories known to exist. */
const made = new Set<string>();

/** A batch of trash entries: those discarded within {@link BATCH_MS} of the first, or while the batch before ran. */
interface Batch {
  paths: string[];
  done: Promise<boolean>;
  /** Set once the process's loop emptied before the batch ran: its entries went to a detached `rm`. */
  handedOff?: boolean;
  /** Marks it handed off, and settles `done` with true (its entries are the detached `rm`'s). */
  handOff: () => void;
  /** The batch's wait: unreferenced, and referenced again by {@link settleTrash}, which is waited for. */
  timer: NodeJS.Timeout;
}
/** Per helper binary: the batch still taking entries, and the end of the last one started. */
const collecting = new Map<string, Batch>();
const lastBatch = new Map<string, Promise<unknown>>();
/**
 * How long a batch takes entries. A forked `rm` made at once for each removal
 * met the next container's start at the fork server and cost it ~5 ms (one at a
 * time, measured): entries wait a little, and few go the thread pool's way.
 */
const BATCH_MS = 25;
/**
 * Below this many entries a batch is deleted here (the thread pool); from it on, by one forked `rm`.
 * One: the server's `rm` request costs this process one write and one reply, where
 * deleting a container's two trees here takes ~30 thread-pool round trips.
 */
const BATCH_MIN = 1;

/**
 * Deletes `path` with the next batch: true once it is gone through the
 * helper's `rm` (one forked process for the whole batch); false when the
 * caller is to delete it (a small batch, no fork server, or the batch failed).
 */
function removeInBatch(path: string, helperPath: string | undefined): Promise<boolean> {
  const key = helperPath ?? '';
  let batch = collecting.get(key);
  if (batch === undefined) {
    const paths: string[] = [];
    const previous = lastBatch.get(key) ?? Promise.resolve();
    let handedOff!: (gone: boolean) => void;
    let timer!: NodeJS.Timeout;
    // The wait does not hold the process: when nothing else does, `beforeExit` hands the batch over.
    const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, BATCH_MS).unref()));
    const started: Batch = {
      paths,
      timer,
      handOff: () => {
        started.handedOff = true;
        handedOff(true);
      },
      done: Promise.all([previous, waited]).then(() => {
        if (collecting.get(key) === started) collecting.delete(key);
        if (started.handedOff === true) return true;
        if (paths.length < BATCH_MIN) return false;
        return removeTreesForked(paths, helperPath !== undefined ? { helperPath } : {});
      }),
    };
    started.done = Promise.race([
      started.done.catch((error: unknown) => {
        debug('trash: helper rm of %d entries: %s', paths.length, String(error));
        return false;
      }),
      new Promise<boolean>((resolve) => (handedOff = resolve)),
    ]);
    if (!exitHooked) {
      exitHooked = true;
      process.on('beforeExit', handOffBatches);
    }
    lastBatch.set(key, started.done);
    collecting.set(key, started);
    batch = started;
  }
  batch.paths.push(path);
  return batch.done;
}

let exitHooked = false;

/**
 * Once the process has nothing left to do but wait for a batch, gives what
 * the batches still hold to one detached helper `rm` per helper binary (as
 * `RuntimeOptions.detachRemoval` does), so that neither the wait nor the
 * deletion delays the process's exit. Each entry is renamed after that `rm`
 * first: while it runs the entries are its own, and once it has gone what it
 * left is the next reap's. An entry that cannot be renamed stays named after
 * this process, which is about to end: the next reap takes it.
 */
function handOffBatches(): void {
  for (const [key, batch] of collecting) {
    collecting.delete(key);
    if (batch.paths.length === 0) continue;
    const ready = standby.get(key);
    standby.delete(key);
    const remover = ready ?? startDetachedRemover({ helperPath: key === '' ? undefined : key });
    if (remover === undefined) continue;
    const token = ownerTokenOf(remover.pid, remover.start);
    const moved = batch.paths.flatMap((path) => {
      const target = withOwnerToken(path, token);
      try {
        renameSync(path, target);
        return [target];
      } catch {
        return [];
      }
    });
    remover.remove(moved);
    batch.handOff();
  }
}

/** Per helper binary: the detached `rm` started ahead for the exit's hand-off (see {@link standbyRemover}). */
const standby = new Map<string, DetachedRemover>();

/**
 * Starts, once per helper binary (until the exit hands it a batch), the detached
 * `rm` that {@link handOffBatches} gives the trash to when the process is about
 * to end: called while this thread only waits (a launch waiting on its helper),
 * the fork of this whole process it costs (~3 ms) is then not paid between the
 * program's last `remove()` and its exit. Unused, it reads the end of its
 * arguments when this process ends, and ends having removed nothing.
 */
export function standbyRemover(helperPath: string | undefined): void {
  const key = helperPath ?? '';
  if (standby.has(key)) return;
  const remover = startDetachedRemover({ helperPath });
  if (remover !== undefined) standby.set(key, remover);
}

/** A detached `rm` taking the entries discarded in the same turn, and how many of them are still being moved. */
interface Handoff {
  remover: DetachedRemover;
  paths: string[];
  moving: number;
}
const handoffs = new Map<string, Handoff>();

/** The detached `rm` for `helperPath` that entries discarded now join; undefined if none can start. */
function joinHandoff(helperPath: string | undefined): Handoff | undefined {
  const key = helperPath ?? '';
  let handoff = handoffs.get(key);
  if (handoff === undefined) {
    const remover = startDetachedRemover({ helperPath });
    if (remover === undefined) return undefined;
    handoff = { remover, paths: [], moving: 0 };
    handoffs.set(key, handoff);
  }
  handoff.moving++;
  return handoff;
}

function leaveHandoff(helperPath: string | undefined, handoff: Handoff): void {
  if (--handoff.moving > 0) return;
  if (handoffs.get(helperPath ?? '') === handoff) handoffs.delete(helperPath ?? '');
  handoff.remover.remove(handoff.paths);
}

/**
 * Moves `path` into the trash beside it and deletes it there in the
 * background with `remove`; when it cannot be moved, deletes it in place
 * before returning. A missing `path` is fine.
 *
 * @param batched - delete it, among others discarded meanwhile, with the helper's
 *   `rm` through the fork server of `batched.helperPath` when one runs and the batch
 *   is large enough (`remove` otherwise): for trees any user may remove on the host,
 *   never a rootless container's upper directory. With `detached`, by a helper `rm`
 *   in a session of its own that this process does not wait for (nor
 *   {@link settleTrash}): the entry is named after that process, so that while it runs
 *   the entry is its own, and once it is gone what it left is the next reap's. With
 *   `now`, the move (a mkdir and a rename) is made on this thread (see {@link beforeForkServer}).
 */
export async function discard(
  path: string,
  remove: (path: string) => Promise<void>,
  batched?: { helperPath?: string | undefined; detached?: boolean | undefined; now?: boolean | undefined },
): Promise<void> {
  const now = batched?.now === true;
  const handoff = batched?.detached === true ? joinHandoff(batched.helperPath) : undefined;
  if (handoff !== undefined) {
    try {
      await discardTo(path, ownerTokenOf(handoff.remover.pid, handoff.remover.start), remove, (target) => handoff.paths.push(target), now);
    } finally {
      leaveHandoff(batched?.helperPath, handoff);
    }
    return;
  }
  await discardTo(path, ownerToken(), remove, (target) => removeLater(target, remove, batched), now);
}

/**
 * Whether no fork server of `helperPath` runs yet while one will (this process's
 * first op was spawned in its stead): a removal now is one of the process's first,
 * which {@link discardForked} cannot take. Its event and moves are then best made
 * on this thread, a few syscalls, rather than as round trips to the thread pool in
 * a row, each a wake-up of this thread that a busy machine delays: a one-container
 * program's only removal is one of them. Later removals are the server's.
 */
export function beforeForkServer(helperPath: string | undefined): boolean {
  const path = locateHelper(helperPath);
  return ForkServer.expected(path) && !ForkServer.running(path);
}

/** Deletes `target`, in the trash already, in the background: with the next batch when `batched`, else with `remove`. */
function removeLater(target: string, remove: (path: string) => Promise<void>, batched: { helperPath?: string | undefined } | undefined): void {
  const removing = batched !== undefined ? removeInBatch(target, batched.helperPath).then((gone) => (gone ? undefined : remove(target))) : remove(target);
  const done: Promise<void> = removing
    .catch((error: unknown) => debug('%s: left for the next prune: %s', target, String(error)))
    .finally(() => pending.delete(done));
  pending.add(done);
}

/**
 * {@link discard} of each of `entries` (batched, not detached), with `event`
 * appended to its events file first, in one request to the fork server of
 * `helperPath` (see `moveForked`): the append and the moves into the trash are
 * the server's, not this process's thread pool's. An entry the server could not
 * move is removed in place before this returns, as {@link discard} does.
 *
 * @returns false when no fork server runs, or a trash directory was not made yet
 *   in this process: nothing was done, and the caller goes {@link discard}'s way.
 */
export async function discardForked(
  entries: readonly { path: string; remove: (path: string) => Promise<void> }[],
  event: { file: string; line: string } | undefined,
  helperPath: string | undefined,
): Promise<boolean> {
  const token = ownerToken();
  const moves = entries.map((e) => [e.path, trashPathOf(e.path, token)] as const);
  if (moves.some(([, target]) => !made.has(dirname(target)))) return false;
  const errnos = await moveForked(event, moves, { helperPath });
  if (errnos === undefined) return false;
  await Promise.all(
    entries.map(async (entry, i) => {
      const [path, target] = moves[i]!;
      if (errnos[i] === 0) return removeLater(target, entry.remove, { helperPath });
      // Gone already, or the trash was taken away: the removal in place says which.
      made.delete(dirname(target));
      debug('%s not moved to the trash (errno %d): removed in place', path, errnos[i]);
      await entry.remove(path);
    }),
  );
  return true;
}

/** Where `path` goes in the trash beside it: `<trash>/<name>-<token>`, the token naming the process that moved it. */
function trashPathOf(path: string, token: string): string {
  return join(dirname(path), TRASH_DIR, `${basename(path)}-${token}`);
}

/**
 * Renames `path` into the trash as `<name>-<token>` and gives the new path to `moved`; removes it in place with `remove`
 * when it cannot be moved. With `now`, the mkdir and the rename are this thread's.
 */
async function discardTo(path: string, token: string, remove: (path: string) => Promise<void>, moved: (target: string) => void, now = false): Promise<void> {
  const target = trashPathOf(path, token);
  const trash = dirname(target);
  try {
    if (!made.has(trash)) {
      if (now) mkdirSync(trash, { recursive: true, mode: 0o700 });
      else await mkdir(trash, { recursive: true, mode: 0o700 });
      made.add(trash);
    }
    if (now) renameSync(path, target);
    else await rename(path, target);
  } catch (error) {
    // Gone already, or the trash was taken away: the removal in place says which.
    made.delete(trash);
    debug('%s not moved to the trash (%s): removed in place', path, (error as NodeJS.ErrnoException).code ?? String(error));
    await remove(path);
    return;
  }
  moved(target);
}

/** Resolves once every deletion this process started has ended. */
export async function settleTrash(): Promise<void> {
  // Waited for, a batch's wait holds the process again (or it would end with this promise pending).
  for (const batch of collecting.values()) batch.timer.ref();
  while (pending.size > 0) {
    await Promise.all([...pending]);
    for (const batch of collecting.values()) batch.timer.ref();
  }
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
