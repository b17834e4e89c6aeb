/**
 * No reaper process, no leaks: a container that is not detached dies with the
 * process that owns it, even by SIGKILL (PR_SET_PDEATHSIG down the shim), but
 * its record, cgroups, upper directory, name and network place cannot go with
 * it. The next `Runtime` that opens the state directory takes them: a
 * container that is not detached and whose owner is dead (pid and start
 * time) is *orphaned*; its pid 1, if the parent-death signal has not reached
 * it yet, is killed (its own start time checked). It is claimed first by renaming its
 * state directory to `.reap-<id>-<owner token>` (one rename: of several
 * processes opening the directory at once, one wins), so that every other
 * process sees it gone at once; a reap that dies half-way is finished by the
 * next one (`.reap-` directories whose reaper is dead).
 *
 * @module
 */

import { readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import createDebug from 'debug';
import { isAbandoned, isErrno, isProcessAlive, ownerToken, processStartTime } from '../util/index.js';
import { CgroupSet } from './cgroups/cgroup-set.js';
import { appendEvent } from './events.js';
import { endRecordedHelper } from './forwarder.js';
import { releaseName } from './names.js';
import { containerPaths, readJson, type ContainerRecord } from './state.js';
import { removeContainerDir } from './userns.js';

const debug = createDebug('dockless:runtime');

const ID_RE = /^[0-9a-f]{64}$/;
const REAP_RE = /^\.reap-([0-9a-f]{64})-/;

/** What a reap needs besides the directories: the runtime's helper, and how to give up a container's network place and image lease. */
export interface ReapScope {
  root: string;
  stateDir: string;
  helperPath: string | undefined;
  /** Releases the container's network places (the network attacher's `detach`). */
  detach?: (id: string) => Promise<void>;
  /** Releases the container's image lease. */
  releaseLease?: (id: string) => Promise<void>;
}

/**
 * Why a recorded container is orphaned, or undefined when it is not: a
 * detached one belongs to nobody, and one whose owner lives is that
 * process's (running or stopped). One whose owner is gone is orphaned even
 * if its pid 1 has not died yet: the parent-death signal is on its way.
 */
export function orphanReason(record: ContainerRecord): string | undefined {
  if (record.detached) return undefined;
  if (isProcessAlive(record.ownerPid, record.ownerStart)) return undefined;
  return `its owner (pid ${record.ownerPid}) is gone and it is not detached`;
}

/** Removes what a claimed container (its state directory already renamed to `claimed`) still holds, then the directory. */
async function finish(scope: ReapScope, id: string, claimed: string): Promise<void> {
  const paths = containerPaths(scope.root, scope.stateDir, id);
  const record = await readJson<ContainerRecord>(join(claimed, 'state.json'));
  const short = id.slice(0, 12);
  const context = `reap container ${short}`;
  // Dying with its owner already (PR_SET_PDEATHSIG); the kill only spares the wait. The start time keeps a reused pid safe.
  if (record !== undefined && processStartTime(record.pid) === record.pidStart) {
    try {
      process.kill(record.pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
  const steps = await Promise.allSettled([
    endRecordedHelper(record?.forwarder),
    new CgroupSet(record?.cgroups ?? []).remove(context),
    record?.name !== undefined ? releaseName(scope.stateDir, record.name, id) : undefined,
    scope.detach?.(id),
    scope.releaseLease?.(id),
    removeContainerDir(paths.bundle, record?.userns, scope.helperPath),
  ]);
  const failed = steps.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
  for (const f of failed) debug('%s: %s', context, String(f.reason));
  // Left for the next reap (the claim names this process, soon dead) when a step failed.
  if (failed.length > 0) return;
  await rm(claimed, { recursive: true, force: true });
  // Its shim was killed with its owner before it could say so.
  const attributes = record?.name !== undefined ? { name: record.name } : {};
  await appendEvent(scope.stateDir, { action: 'die', id, attributes: { ...attributes, exitCode: 137 } }, { action: 'remove', id, attributes });
  debug('reaped %s (owner pid %s gone)', short, record?.ownerPid ?? '?');
}

/**
 * Removes every orphaned container of the state directory (see the module's
 * text) and finishes reaps that died half-way. Never touches a detached
 * container, or one whose owner lives (running or stopped).
 *
 * @returns the ids reaped.
 */
export async function reapOrphans(scope: ReapScope): Promise<string[]> {
  const reaped: string[] = [];
  for (const entry of await readdir(scope.stateDir).catch(() => [] as string[])) {
    const half = REAP_RE.exec(entry);
    if (half !== null) {
      if (isAbandoned(entry)) await finish(scope, half[1]!, join(scope.stateDir, entry));
      continue;
    }
    if (!ID_RE.test(entry)) continue;
    const state = join(scope.stateDir, entry);
    const record = await readJson<ContainerRecord>(join(state, 'state.json'));
    if (record === undefined || orphanReason(record) === undefined) continue;
    const claimed = join(scope.stateDir, `.reap-${entry}-${ownerToken()}`);
    try {
      await rename(state, claimed);
    } catch (error) {
      // Another process claimed it first.
      if (isErrno(error, 'ENOENT')) continue;
      throw error;
    }
    // Restarted by another process between the read and the claim: it is that process's again.
    const now = await readJson<ContainerRecord>(join(claimed, 'state.json'));
    if (now !== undefined && orphanReason(now) === undefined) {
      await rename(claimed, state);
      continue;
    }
    await finish(scope, entry, claimed);
    reaped.push(entry);
  }
  return reaped;
}
