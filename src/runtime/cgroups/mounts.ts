/**
 * The container's `/sys/fs/cgroup`, as Docker gives it on v1, v2 and hybrid
 * hosts: read-only, and through the container's cgroup namespace showing its
 * own cgroups as the root. Runtimes size themselves from it (the JVM's heap,
 * Go's GOMAXPROCS, Node's heap limit). Decided here, mounted by the helper.
 *
 * - v2 (no v1 hierarchy, or the host's cgroup2 on `/sys/fs/cgroup`): `cgroup2` on `/sys/fs/cgroup`.
 * - v1 and hybrid: a tmpfs on `/sys/fs/cgroup` (made read-only once filled),
 *   one `cgroup` mount per v1 hierarchy of the host, named as the host names
 *   it (`memory`, `cpu,cpuacct`, `systemd` for `name=systemd`) with its
 *   controllers as options, a symlink per controller of a co-mounted hierarchy
 *   (`cpu -> cpu,cpuacct`), and on a hybrid host `cgroup2` on `unified`.
 * - In a user namespace cgroup v1 cannot be mounted (it is not
 *   `FS_USERNS_MOUNT`): each v1 hierarchy is a read-only bind of the host
 *   directory of the cgroup the container is in there instead, which is what a
 *   mount in its cgroup namespace would show: its own cgroup, or where it has
 *   none, the caller's. Hierarchies whose directory is unknown (named ones such
 *   as `name=systemd`) are left out. cgroup2 mounts there.
 *
 * Every hierarchy is there, not only those with a cgroup of the container's
 * own: the JVM's container support gives up (and sizes its heap from the
 * host's memory) unless cpu, cpuacct, cpuset and memory are all mounted.
 *
 * @module
 */

import { posix } from 'node:path';
import type { HelperMount } from '../defaults.js';
import type { CgroupRecord } from './cgroup-set.js';
import type { CgroupHierarchy, CgroupMount } from './detect.js';

/** Where the container's cgroup filesystems go. */
export const CGROUPFS = '/sys/fs/cgroup';

/** What {@link cgroupfsPlan} needs to know. */
export interface CgroupfsOptions {
  /** The host's cgroup and cgroup2 mounts (`parseCgroupMounts` of `/proc/self/mountinfo`). */
  hostMounts: readonly CgroupMount[];
  /** The container's own cgroups: the bind sources in a user namespace. */
  cgroups: readonly CgroupRecord[];
  /** The caller's own cgroups (`CgroupHost.hierarchies`): the bind sources in a user namespace where the container has none. */
  callerCgroups: readonly CgroupHierarchy[];
  /** The container has a user namespace of its own (rootless, or `userns`). */
  userns: boolean;
  /** Read-only, as for every container but a privileged one. */
  readonly: boolean;
}

/** The helper's part of the container's `/sys/fs/cgroup`. */
export interface CgroupfsPlan {
  /** Mounts, in order, after `/sys`. */
  mounts: HelperMount[];
  /** Symlinks, `[target, path]`. */
  symlinks: (readonly [string, string])[];
  /** Paths to make read-only after the mounts (the tmpfs holding the hierarchies). */
  readonlyPaths: string[];
  /** v1 hierarchies left out (in a user namespace, those whose directory is unknown), for a debug line. */
  skipped: string[];
}

const FLAGS = ['nosuid', 'noexec', 'nodev'];

/** The one mount per hierarchy: the host may mount one several times; a mount under /sys/fs/cgroup wins. */
function hierarchies(mounts: readonly CgroupMount[]): { v1: CgroupMount[]; v2: CgroupMount | undefined } {
  const under = (m: CgroupMount) => posix.dirname(m.mountPoint) === CGROUPFS || m.mountPoint === CGROUPFS;
  const sorted = [...mounts].sort((a, b) => Number(under(b)) - Number(under(a)));
  const v1 = new Map<string, CgroupMount>();
  let v2: CgroupMount | undefined;
  for (const m of sorted) {
    if (m.fstype === 'cgroup2') {
      v2 ??= m;
    } else if (m.controllers.length > 0) {
      const key = [...m.controllers].sort().join(',');
      if (!v1.has(key)) v1.set(key, m);
    }
  }
  // Byte order, not localeCompare: its first call loads ICU's collator, ~5 ms of a process's first container.
  const byPath = (a: CgroupMount, b: CgroupMount) => (a.mountPoint < b.mountPoint ? -1 : a.mountPoint > b.mountPoint ? 1 : 0);
  return { v1: [...v1.values()].sort(byPath), v2 };
}

/** A v1 hierarchy's name under /sys/fs/cgroup: the host's, else its controllers (`name=` dropped). */
function nameOf(m: CgroupMount): string {
  const base = posix.basename(m.mountPoint);
  if (posix.dirname(m.mountPoint) === CGROUPFS && base !== '' && base !== '.' && base !== '..') return base;
  return m.controllers.map((c) => c.replace(/^name=/, '')).join(',');
}

/**
 * Decides the mounts, symlinks and read-only paths of a container's
 * `/sys/fs/cgroup` from the host's cgroup mounts; see the module comment.
 * Nothing when the host has no cgroup filesystem mounted.
 *
 * @example
 * ```ts
 * const plan = cgroupfsPlan({
 *   hostMounts: parseCgroupMounts(mountinfo),
 *   cgroups: set.entries,
 *   callerCgroups: detectCgroups().hierarchies,
 *   userns: false,
 *   readonly: true,
 * });
 * ```
 */
export function cgroupfsPlan(options: CgroupfsOptions): CgroupfsPlan {
  const { v1, v2 } = hierarchies(options.hostMounts);
  const ro = options.readonly ? ['ro'] : [];
  const plan: CgroupfsPlan = { mounts: [], symlinks: [], readonlyPaths: [], skipped: [] };
  const cgroup2 = (target: string): HelperMount => ({ type: 'cgroup2', source: 'cgroup2', target, options: [...ro, ...FLAGS], nofollow: true });

  // A v2 host may still mount a named v1 hierarchy somewhere (for an old systemd in a container): still v2.
  if (v1.length === 0 || v2?.mountPoint === CGROUPFS) {
    if (v2 !== undefined) plan.mounts.push(cgroup2(CGROUPFS));
    return plan;
  }
  plan.mounts.push({ type: 'tmpfs', source: 'tmpfs', target: CGROUPFS, options: [...FLAGS, 'mode=755'], nofollow: true });
  const names = new Set<string>();
  for (const m of v1) {
    const name = nameOf(m);
    const target = posix.join(CGROUPFS, name);
    if (names.has(name)) continue;
    if (!options.userns) {
      plan.mounts.push({ type: 'cgroup', source: 'cgroup', target, options: [...ro, ...FLAGS, ...m.controllers], nofollow: true });
    } else {
      const on = (c: { version: 1 | 2; controllers: readonly string[] }) => c.version === 1 && c.controllers.some((k) => m.controllers.includes(k));
      const dir = options.cgroups.find(on)?.dir ?? options.callerCgroups.find(on)?.dir;
      if (dir === undefined) {
        plan.skipped.push(name);
        continue;
      }
      plan.mounts.push({ type: 'bind', source: dir, target, options: ['rbind', ...ro, ...FLAGS], nofollow: true });
    }
    names.add(name);
    const parts = name.split(',');
    if (parts.length > 1) {
      for (const part of parts) if (!names.has(part)) plan.symlinks.push([name, posix.join(CGROUPFS, part)]);
    }
  }
  if (v2 !== undefined && !names.has('unified')) plan.mounts.push(cgroup2(posix.join(CGROUPFS, 'unified')));
  if (options.readonly) plan.readonlyPaths.push(CGROUPFS);
  return plan;
}
