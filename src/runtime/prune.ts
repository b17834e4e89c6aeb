/**
 * What a crash leaves behind and `runtime.prune()` removes besides stopped
 * containers: state directories without a record whose launching process is
 * gone, their data directories, and empty `dockless-*` cgroups below the
 * runtime's cgroup parent that no container claims.
 *
 * @module
 */

import { readdir, readFile, rm, rmdir, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import createDebug from 'debug';
import { isAbandoned, isErrno, isProcessAlive } from '../util/index.js';
import type { CgroupHost } from './cgroups/detect.js';
import { parentDirs } from './cgroups/policy.js';
import { containerPaths, type LaunchOwner } from './state.js';
import { removeContainerDir } from './userns.js';

const debug = createDebug('dockless:runtime');

const ID_RE = /^[0-9a-f]{64}$/;
const CGROUP_RE = /^dockless-([0-9a-f]{64})$/;

/**
 * How old a leftover with no owner to ask (a cgroup or data directory without
 * a state directory) must be before it is taken: a launch makes them within a
 * second of its state directory.
 */
export const LEFTOVER_GRACE_MS = 60_000;

/** Where {@link pruneLeftovers} looks. */
export interface PruneScope {
  root: string;
  stateDir: string;
  cgroupHost: CgroupHost;
  cgroupParent: string | undefined;
  helperPath: string | undefined;
  /** @default {@link LEFTOVER_GRACE_MS} */
  graceMs?: number;
}

/** What {@link pruneLeftovers} removed. */
export interface PrunedLeftovers {
  /** Ids whose record-less state directory (and data directory) went. */
  containers: string[];
  /** Cgroup directories removed. */
  cgroups: string[];
}

/** Whether a record-less state directory belongs to a launch that can no longer finish. */
export async function isAbandonedLaunch(state: string, graceMs: number): Promise<boolean> {
  const owner = await readFile(join(state, 'owner.json'), 'utf8').then(
    (text) => JSON.parse(text) as LaunchOwner,
    () => undefined,
  );
  if (owner !== undefined && typeof owner.pid === 'number') return !isProcessAlive(owner.pid, owner.start);
  return isOlderThan(state, graceMs);
}

/** Whether `path` was last changed more than `ms` ago. */
export async function isOlderThan(path: string, ms: number): Promise<boolean> {
  const info = await stat(path).catch(() => undefined);
  return info !== undefined && Date.now() - Math.max(info.mtimeMs, info.ctimeMs) > ms;
}

/** Removes a cgroup and its child cgroups if no process is in any of them; never kills. */
async function removeIfEmpty(dir: string): Promise<boolean> {
  const children = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const child of children) {
    if (child.isDirectory() && !(await removeIfEmpty(posix.join(dir, child.name)))) return false;
  }
  try {
    await rmdir(dir);
    return true;
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return true;
    if (isErrno(error, 'EBUSY', 'ENOTEMPTY')) return false;
    throw error;
  }
}

/**
 * Removes what crashed launches and removals left behind. A state directory
 * with a record is a container (running or stopped) and is never touched here;
 * neither is anything of a launch whose process is alive.
 */
export async function pruneLeftovers(scope: PruneScope): Promise<PrunedLeftovers> {
  const grace = scope.graceMs ?? LEFTOVER_GRACE_MS;
  const result: PrunedLeftovers = { containers: [], cgroups: [] };
  const recorded = new Set<string>();
  const abandoned = new Set<string>();

  for (const entry of await readdir(scope.stateDir).catch(() => [] as string[])) {
    const state = join(scope.stateDir, entry);
    if (entry.startsWith('.new-')) {
      if (isAbandoned(entry)) await rm(state, { recursive: true, force: true });
      continue;
    }
    if (!ID_RE.test(entry)) continue;
    const hasRecord = await stat(join(state, 'state.json')).then(() => true, () => false);
    if (hasRecord) recorded.add(entry);
    else if (await isAbandonedLaunch(state, grace)) abandoned.add(entry);
    else recorded.add(entry);
  }

  // A launch makes its state directory before its cgroups; removals take the cgroups first.
  for (const h of scope.cgroupHost.hierarchies) {
    let parent;
    try {
      parent = parentDirs(h, scope.cgroupParent).parentDir;
    } catch {
      continue;
    }
    for (const entry of await readdir(parent).catch(() => [] as string[])) {
      const id = CGROUP_RE.exec(entry)?.[1];
      if (id === undefined || recorded.has(id)) continue;
      const dir = posix.join(parent, entry);
      if (!abandoned.has(id) && !(await isOlderThan(dir, grace))) continue;
      if (await stat(join(scope.stateDir, id, 'state.json')).then(() => true, () => false)) continue;
      if (await removeIfEmpty(dir).catch(() => false)) result.cgroups.push(dir);
      else debug('prune: cgroup %s is not empty, left in place', dir);
    }
  }

  for (const id of abandoned) {
    const paths = containerPaths(scope.root, scope.stateDir, id);
    try {
      await rm(paths.state, { recursive: true, force: true });
      await removeContainerDir(paths.bundle, undefined, scope.helperPath);
    } catch (error) {
      debug('prune: leftover %s: %s', id.slice(0, 12), (error as Error).message);
      continue;
    }
    result.containers.push(id);
  }

  const containers = join(scope.root, 'containers');
  for (const id of await readdir(containers).catch(() => [] as string[])) {
    if (!ID_RE.test(id) || recorded.has(id) || abandoned.has(id)) continue;
    const bundle = join(containers, id);
    if (await stat(join(scope.stateDir, id)).then(() => true, () => false)) continue;
    if (!(await isOlderThan(bundle, grace))) continue;
    await removeContainerDir(bundle, undefined, scope.helperPath).catch((error) => {
      debug('prune: data directory %s: %s', bundle, (error as Error).message);
    });
  }
  return result;
}
