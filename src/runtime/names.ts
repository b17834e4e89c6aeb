/**
 * Container names: one file per name in `<stateDir>/names`, shared by every
 * process. A claim is created whole and exclusively (written aside, then
 * `link(2)`ed into place), and names its container and the process launching
 * it, so that a holder whose launch is still in progress is never judged dead.
 * Anyone may create a claim where there is none, but a claim is only ever
 * removed under its name's lock (a release by its holder, a takeover or a
 * prune of a dead one): read under the lock, a claim stays the one read until
 * the lock's holder unlinks it. Without that, a takeover that judged claim A
 * dead (just released, its state directory gone) could unlink claim B, made
 * in between by another launch, and both launches would hold the name.
 *
 * @module
 */

import { link, readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AlreadyExistsError, InvalidStateError } from '../errors.js';
import { isAbandoned, isErrno, isProcessAlive, ownerToken, selfStartTime } from '../util/index.js';

/** What a name file holds: the container, and the process that launched it. */
export interface NameClaim {
  /** The container's id. */
  id: string;
  /** The launching process and its start time. */
  pid: number;
  start: number;
}

/** The directory of name files. */
export function namesDir(stateDir: string): string {
  return join(stateDir, 'names');
}

/** Reads the claim on `name`; `undefined` when the name is free. An unreadable claim names no process. */
export async function readNameClaim(stateDir: string, name: string): Promise<NameClaim | undefined> {
  let text;
  try {
    text = await readFile(join(namesDir(stateDir), name), 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    throw error;
  }
  return parseClaim(text);
}

function parseClaim(text: string): NameClaim {
  try {
    const value = JSON.parse(text) as Partial<NameClaim>;
    if (typeof value.id === 'string') {
      return { id: value.id, pid: Number(value.pid) || 0, start: Number(value.start) || 0 };
    }
  } catch {
    /* a bare id, as written before claims named their owner */
  }
  return { id: text.trim(), pid: 0, start: 0 };
}

/**
 * Whether a claim still holds its name: its container has a record (running
 * or stopped, until removed), or it has a state directory and the process that
 * launches it is alive. A launch makes the state directory before it claims,
 * and a removal gives the name up before it deletes the state directory, so a
 * claim without a state directory is dead.
 */
export async function isClaimLive(stateDir: string, claim: NameClaim): Promise<boolean> {
  if (!/^[0-9a-f]{64}$/.test(claim.id)) return false;
  const state = join(stateDir, claim.id);
  try {
    await stat(state);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return false;
    throw error;
  }
  if (await stat(join(state, 'state.json')).then(() => true, () => false)) return true;
  return claim.pid > 0 && isProcessAlive(claim.pid, claim.start);
}

/** Creates `path` holding `data`, or fails with EEXIST: never a partly written file. */
async function createWhole(dir: string, path: string, data: string): Promise<void> {
  const tmp = join(dir, `.tmp-${ownerToken()}`);
  await writeFile(tmp, data, { flag: 'wx', mode: 0o644 });
  try {
    await link(tmp, path);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

function claimText(id: string): string {
  return JSON.stringify({ id, pid: process.pid, start: selfStartTime() } satisfies NameClaim);
}

/** What a names directory names: containers (`<stateDir>/names`) or pods (`<stateDir>/pods/names`). */
export type NameKind = 'container' | 'pod';

function taken(name: string, holder: string, kind: NameKind, cause?: unknown): AlreadyExistsError {
  return new AlreadyExistsError(
    `${kind} name \`${name}\` is already used by ${kind} ${holder.slice(0, 12)}`,
    cause !== undefined ? { cause } : undefined,
  );
}

/**
 * Claims `name` for container `id`, whose state directory must exist already.
 *
 * @throws {@link AlreadyExistsError} when a live container (or launch) holds the name.
 */
export async function claimName(stateDir: string, name: string, id: string, kind: NameKind = 'container'): Promise<void> {
  const dir = namesDir(stateDir);
  const path = join(dir, name);
  try {
    await createWhole(dir, path, claimText(id));
    return;
  } catch (error) {
    if (!isErrno(error, 'EEXIST')) throw error;
  }
  const holder = await readNameClaim(stateDir, name);
  if (holder !== undefined && (await isClaimLive(stateDir, holder))) throw taken(name, holder.id, kind);
  await withNameLock(dir, name, kind, async () => {
    const current = await readNameClaim(stateDir, name);
    if (current !== undefined) {
      if (await isClaimLive(stateDir, current)) throw taken(name, current.id, kind);
      // Dead for good (its process or its state is gone), and only the holder
      // of this lock removes a claim: this unlink removes exactly the claim just judged.
      await unlink(path).catch((error) => {
        if (!isErrno(error, 'ENOENT')) throw error;
      });
    }
    try {
      await createWhole(dir, path, claimText(id));
    } catch (error) {
      if (!isErrno(error, 'EEXIST')) throw error;
      const winner = await readNameClaim(stateDir, name);
      throw taken(name, winner?.id ?? `another ${kind}`, kind, error);
    }
  });
}

/**
 * Gives up `name` if container `id` holds it, under the name's lock: a
 * takeover judging another claim (or a reap, which moves the state directory
 * away first) never has its new claim unlinked by this.
 */
export async function releaseName(stateDir: string, name: string, id: string, kind: NameKind = 'container'): Promise<void> {
  const dir = namesDir(stateDir);
  // Not ours (or gone): nothing to give up, and no lock to take.
  if ((await readNameClaim(stateDir, name).catch(() => undefined))?.id !== id) return;
  await withNameLock(dir, name, kind, async () => {
    const claim = await readNameClaim(stateDir, name).catch(() => undefined);
    if (claim?.id === id) await unlink(join(dir, name)).catch(() => undefined);
  }).catch((error: unknown) => {
    // The lock's wait ran out: not a name taken, a removal that cannot finish yet.
    throw error instanceof AlreadyExistsError ? new InvalidStateError(`give up ${error.message}`, { cause: error }) : error;
  });
}

/**
 * Removes the name files whose claims are dead (their container and launch
 * gone without giving the name up).
 *
 * @returns the names freed.
 */
export async function pruneNames(stateDir: string): Promise<string[]> {
  const dir = namesDir(stateDir);
  const freed: string[] = [];
  const entries = await readdir(dir).catch(() => [] as string[]);
  for (const entry of entries) {
    if (entry.startsWith('.')) {
      // A temporary or tombstone left by a process killed mid-claim.
      if (/^\.(tmp|tomb)-/.test(entry) && isAbandoned(entry)) await unlink(join(dir, entry)).catch(() => undefined);
      continue;
    }
    const claim = await readNameClaim(stateDir, entry).catch(() => undefined);
    if (claim === undefined || (await isClaimLive(stateDir, claim))) continue;
    await withNameLock(dir, entry, 'container', async () => {
      const current = await readNameClaim(stateDir, entry);
      if (current === undefined || (await isClaimLive(stateDir, current))) return;
      await unlink(join(dir, entry)).catch(() => undefined);
      freed.push(entry);
    }).catch(() => undefined);
  }
  return freed;
}

const LOCK_WAIT_MS = 10_000;

/**
 * Runs `fn` holding the lock of `name`, which every removal of its claim
 * holds: a file naming its holder process, held for a few filesystem calls. A
 * lock whose holder died is moved aside to a unique tombstone and checked to
 * be that same dead lock before it is deleted; a live lock moved aside by a
 * racing breaker is put back.
 */
async function withNameLock<T>(dir: string, name: string, kind: NameKind, fn: () => Promise<T>): Promise<T> {
  const lock = join(dir, `.lock-${name}`);
  const mine = JSON.stringify({ pid: process.pid, start: selfStartTime(), token: ownerToken() });
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      await createWhole(dir, lock, mine);
      break;
    } catch (error) {
      if (!isErrno(error, 'EEXIST')) throw error;
    }
    const held = await readFile(lock, 'utf8').catch(() => undefined);
    if (held !== undefined) {
      const owner = parseClaimOwner(held);
      if (owner !== undefined && !isProcessAlive(owner.pid, owner.start)) {
        await breakStaleLock(dir, lock, held);
        continue;
      }
      if (Date.now() > deadline) {
        throw new AlreadyExistsError(`${kind} name \`${name}\` is locked by another process (pid ${owner?.pid ?? '?'}) for over ${LOCK_WAIT_MS / 1000} s`);
      }
    }
    await sleep(2 + Math.random() * 5);
  }
  try {
    return await fn();
  } finally {
    const held = await readFile(lock, 'utf8').catch(() => undefined);
    if (held === mine) await unlink(lock).catch(() => undefined);
  }
}

async function breakStaleLock(dir: string, lock: string, stale: string): Promise<void> {
  const tomb = join(dir, `.tomb-${ownerToken()}`);
  try {
    await rename(lock, tomb);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return;
    throw error;
  }
  const moved = await readFile(tomb, 'utf8').catch(() => undefined);
  if (moved !== undefined && moved !== stale) await link(tomb, lock).catch(() => undefined);
  await unlink(tomb).catch(() => undefined);
}

function parseClaimOwner(text: string): { pid: number; start: number } | undefined {
  try {
    const value = JSON.parse(text) as { pid?: unknown; start?: unknown };
    if (typeof value.pid === 'number' && typeof value.start === 'number') return { pid: value.pid, start: value.start };
  } catch {
    /* unreadable: treated as held */
  }
  return undefined;
}
