/**
 * A cross-process lock that survives SIGKILL of its holder without a timeout.
 *
 * The lock at `path` is held when `path` is a directory holding one file,
 * `owner-<pid>-<start>-<nonce>`. To take it, a process builds such a directory
 * under a private name and `rename(2)`s it onto `path`: the kernel lets that
 * replace an absent or *empty* directory and refuses a non-empty one, so
 * exactly one contender wins. A lock whose owner process is gone (its pid is
 * unused, or reused by a process with another start time) is broken by
 * unlinking that owner file by its unique name and removing the then empty
 * directory; every step names exactly the thing it inspected, so two
 * processes breaking the same stale lock at once cannot remove a fresh one.
 * Owners are judged by pid and start time, so locks are valid among processes
 * that share a pid namespace.
 *
 * Within one process, callers of the same lock are queued first, so a
 * process never polls against itself.
 *
 * @module
 */

import { mkdir, readdir, rename, rmdir, unlink, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { basename, dirname, join } from 'node:path';
import { AbortError, InvalidStateError } from '../errors.js';
import { isAbandoned, isErrno, ownerToken, parseOwnerToken, readdirOrEmpty, removeTree } from '../util/index.js';

/** Options of {@link withLock}. */
export interface LockOptions {
  /** Cancels waiting for the lock (not the work done under it). */
  signal?: AbortSignal | undefined;
  /**
   * How long to wait for a lock held by a live process before failing, in
   * milliseconds; `0` waits for ever.
   * @default 60000
   */
  timeoutMs?: number | undefined;
}

const OWNER_PREFIX = 'owner-';
const TMP_PREFIX = '.tmp-';
const MAX_DELAY_MS = 25;

const localQueues = new Map<string, Promise<void>>();

/**
 * Runs `fn` while holding the lock at `path` (an absolute path whose parent
 * exists), first against other callers in this process, then against other
 * processes.
 *
 * @throws {AbortError} when `signal` aborts while waiting.
 * @throws {InvalidStateError} when a live process holds the lock for longer than `timeoutMs`.
 */
export async function withLock<T>(path: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const releaseLocal = await acquireLocal(path, options.signal);
  try {
    const releaseFile = await acquireFile(path, options);
    try {
      return await fn();
    } finally {
      await releaseFile();
    }
  } finally {
    releaseLocal();
  }
}

async function acquireLocal(path: string, signal: AbortSignal | undefined): Promise<() => void> {
  const previous = localQueues.get(path) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((resolve) => (release = resolve));
  const tail = previous.then(() => mine);
  localQueues.set(path, tail);
  const done = (): void => {
    release();
    if (localQueues.get(path) === tail) localQueues.delete(path);
  };
  if (signal === undefined) {
    await previous;
    return done;
  }
  try {
    await raceAbort(previous, signal);
  } catch (err) {
    // Keep the queue's order: our turn passes on as soon as it comes.
    void previous.then(done);
    throw err;
  }
  return done;
}

async function acquireFile(path: string, options: LockOptions): Promise<() => Promise<void>> {
  const token = ownerToken();
  const tmp = join(dirname(path), `${TMP_PREFIX}${basename(path)}-${token}`);
  const ownerName = `${OWNER_PREFIX}${token}`;
  await mkdir(tmp);
  const timeout = options.timeoutMs ?? 60_000;
  const started = Date.now();
  let delay = 1;
  try {
    await writeFile(join(tmp, ownerName), '');
    for (;;) {
      try {
        await rename(tmp, path);
        break;
      } catch (err) {
        if (!isErrno(err, 'ENOTEMPTY', 'EEXIST')) throw err;
      }
      if (await breakIfStale(path)) continue;
      if (options.signal?.aborted) throw abortError(path, options.signal);
      if (timeout > 0 && Date.now() - started > timeout) {
        throw new InvalidStateError(
          `lock \`${path}\`: held by ${await describeHolder(path)} for more than ${timeout} ms`,
          { path },
        );
      }
      await sleep(delay, undefined, options.signal ? { signal: options.signal } : undefined).catch((err: unknown) => {
        if (options.signal?.aborted) throw abortError(path, options.signal);
        throw err;
      });
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
  } catch (err) {
    await removeTree(tmp);
    throw err;
  }
  const ownerFile = join(path, ownerName);
  return async () => {
    await unlink(ownerFile).catch(() => {});
    // Fails harmlessly (ENOTEMPTY) when the next holder has already renamed its directory in.
    await rmdir(path).catch(() => {});
  };
}

/**
 * Breaks the lock at `path` when its holder is gone. Returns true when the
 * lock is (or just became) free, so the caller should retry at once.
 */
async function breakIfStale(path: string): Promise<boolean> {
  let entries: string[];
  try {
    entries = await readdir(path);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return true;
    throw err;
  }
  if (entries.length === 0) return true;
  let broke = false;
  for (const entry of entries) {
    if (isAbandoned(entry)) {
      await unlink(join(path, entry)).catch(() => {});
      broke = true;
    }
  }
  if (broke) await rmdir(path).catch(() => {});
  return broke;
}

async function describeHolder(path: string): Promise<string> {
  try {
    const owner = (await readdir(path)).map(parseOwnerToken).find((o) => o !== undefined);
    return owner === undefined ? 'an unknown process' : `pid ${owner.pid}`;
  } catch {
    return 'an unknown process';
  }
}

/**
 * Removes the private directories of lock attempts whose process died between
 * creating one and renaming it into place.
 */
export async function cleanAbandonedLockAttempts(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return;
  }
  await Promise.all(
    entries
      .filter((e) => e.startsWith(TMP_PREFIX) && isAbandoned(e))
      .map((e) => removeTree(join(dir, e))),
  );
}

/**
 * Removes the lock directories in `dir` whose owners have all died, as a
 * killed holder leaves them (`snapshot-<chainID>.lock/owner-<dead pid>…`):
 * each is broken as a contender would break it, so a lock taken meanwhile is
 * never removed.
 *
 * @returns the number of locks removed.
 */
export async function removeStaleLocks(dir: string): Promise<number> {
  let removed = 0;
  for (const name of await readdirOrEmpty(dir)) {
    if (!name.endsWith('.lock') || name.startsWith(TMP_PREFIX)) continue;
    const path = join(dir, name);
    if (!(await breakIfStale(path).catch(() => false))) continue;
    // Fails harmlessly (ENOTEMPTY) when a contender has just renamed its directory in.
    await rmdir(path).then(
      () => removed++,
      () => {},
    );
  }
  return removed;
}

function abortError(path: string, signal: AbortSignal): AbortError {
  return new AbortError(`lock \`${path}\`: aborted while waiting`, { cause: signal.reason, path });
}

async function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) throw new AbortError('aborted', { cause: signal.reason });
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new AbortError('aborted', { cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
