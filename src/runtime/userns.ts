/**
 * User namespaces: which host ids a container's ids are, decided here and
 * applied by the helper (native/userns.c).
 *
 * - A caller that is root runs containers without a user namespace unless the
 *   spec asks for one: `userns: 'auto'` or explicit maps. The container's root
 *   is then an unprivileged host id. Its root filesystem is assembled by the
 *   helper from *idmapped mounts* of the layers and of the upper directory
 *   (`mount_setattr(MOUNT_ATTR_IDMAP)`, Linux 5.12+ and a filesystem that
 *   supports them: ext4, xfs, btrfs, tmpfs, …), so the ids on disk stay the
 *   container's own (0 for its root): snapshots are shared with containers
 *   without a user namespace, and an upper directory diffs as it would without one.
 * - A caller that is not root (rootless) always gets a user namespace: its
 *   /etc/subuid and /etc/subgid ranges through newuidmap/newgidmap when it has
 *   them (container root is the user, 1… the subordinate ids, as podman does),
 *   else a single-id mapping (container root is the user, and no other id exists).
 *   The overlay is mounted inside the namespace with `userxattr`.
 *
 * @module
 */

import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import createDebug from 'debug';
import { DocklessError, InvalidArgumentError, NotFoundError, PermissionError } from '../errors.js';
import {
  parseSubIds,
  readUsernsHost,
  runHelperOp,
  SUBORDINATE_IDS,
  subordinateMaps,
  subordinateUserns,
  usernsArgs,
  type IdMap,
  type SubIdRange,
  type UsernsHost,
  type UsernsMaps,
} from '../helper/index.js';
import { removeDir } from '../util/index.js';
import type { HelperDevice, HelperMount } from './defaults.js';
import type { ResolvedUser } from './user.js';

const debug = createDebug('dockless:userns');

export { parseSubIds, readUsernsHost, usernsArgs };
export type { IdMap, SubIdRange, UsernsHost };

/**
 * A container's user namespace: `'auto'`, or explicit uid and gid maps (each
 * must map container id 0).
 *
 * `'auto'` as root takes the first range of the user `dockless` in /etc/subuid
 * and /etc/subgid ({@link AUTO_USERNS_USER}), else the first block of
 * {@link AUTO_USERNS_SIZE} ids from {@link AUTO_USERNS_BASE} on that no
 * /etc/subuid or /etc/subgid entry overlaps. Every `'auto'` container of a host
 * shares that range, as with Docker's `userns-remap`: they are isolated from the
 * host, not from each other (give each its own maps for that). For a caller that
 * is not root, `'auto'` is the rootless default.
 */
export type UsernsSetting =
  | 'auto'
  | {
      /** Container uids to host uids; must map container uid 0. */
      uidMap: readonly IdMap[];
      /** Container gids to host gids; must map container gid 0. */
      gidMap: readonly IdMap[];
    };

/** The user whose /etc/subuid and /etc/subgid ranges `userns: 'auto'` uses when root. */
export const AUTO_USERNS_USER = 'dockless';
/** Where `userns: 'auto'` looks for a free range when the user `dockless` has none: 2^30, far above useradd's SUB_UID_MAX. */
export const AUTO_USERNS_BASE = 0x4000_0000;
/** How many ids `userns: 'auto'` and the rootless default map: 65536, as Docker and podman do. */
export const AUTO_USERNS_SIZE = SUBORDINATE_IDS;

const MAX_ID = 0xffff_fffe;
/** The kernel's limit on the lines of one uid_map or gid_map. */
const MAX_MAP_LINES = 340;

/** What the helper is told of a container's user namespace. */
export interface UsernsPlan {
  uidMap: IdMap[];
  gidMap: IdMap[];
  /** The caller is not root: the overlay is mounted inside the namespace (with `userxattr`). */
  rootless: boolean;
  /** The helper (root) mounts the root from idmapped layers and hands it to the container. */
  idmapRoot: boolean;
  /** Setuid helpers writing maps the caller may not write itself. */
  newuidmap?: string;
  newgidmap?: string;
  /** The host uid and gid of the container's root. */
  hostRoot: { uid: number; gid: number };
  /**
   * Rootless, with maps whose root is not the caller (`keep-id`, `nomap`): the
   * caller's own namespace (its ids as 0, its subordinate ids 1…), in which
   * the helper mounts the root (every owner of the store's files is mapped
   * there) before handing it to the container's namespace.
   */
  mountUserns?: UsernsMaps;
  /**
   * With `mountUserns`, when the maps leave the caller out (`nomap`): the top
   * of the upper directory is given to the container's root, or it could make
   * no mount point in its root directory. Not otherwise: the caller writes
   * there (`copyIn`) as itself.
   */
  rootOwnsUpper?: boolean;
}

/** What a container's record keeps of its user namespace (to remove its files later). */
export interface UsernsRecord {
  /** Its uid map. */
  uidMap: IdMap[];
  /** Its gid map. */
  gidMap: IdMap[];
  /** Made by a caller that is not root (with its subordinate ids). */
  rootless: boolean;
}

/** Every range of /etc/subuid or /etc/subgid text, whoever it belongs to. */
function allSubIds(text: string): SubIdRange[] {
  const out: SubIdRange[] = [];
  for (const line of text.split('\n')) {
    const [, start, count] = line.trim().split(':');
    const s = Number(start);
    const c = Number(count);
    if (Number.isSafeInteger(s) && Number.isSafeInteger(c) && c > 0) out.push({ start: s, count: c });
  }
  return out;
}

function validateMaps(maps: unknown, field: string): IdMap[] {
  if (!Array.isArray(maps) || maps.length === 0 || maps.length > MAX_MAP_LINES) {
    throw new InvalidArgumentError(`container spec: userns.${field} must be an array of 1 to ${MAX_MAP_LINES} { containerId, hostId, size }`);
  }
  const out: IdMap[] = [];
  for (const [i, m] of maps.entries()) {
    const ok =
      m !== null &&
      typeof m === 'object' &&
      [m.containerId, m.hostId, m.size].every((n) => Number.isSafeInteger(n) && n >= 0) &&
      m.size > 0 &&
      m.containerId + m.size - 1 <= MAX_ID &&
      m.hostId + m.size - 1 <= MAX_ID;
    if (!ok) {
      throw new InvalidArgumentError(
        `container spec: userns.${field}[${i}] must be { containerId, hostId, size } of non-negative integers, size > 0, ids below 2^32-1`,
      );
    }
    out.push({ containerId: m.containerId, hostId: m.hostId, size: m.size });
  }
  const overlaps = (key: 'containerId' | 'hostId') => {
    const sorted = [...out].sort((a, b) => a[key] - b[key]);
    return sorted.some((m, i) => i > 0 && sorted[i - 1]![key] + sorted[i - 1]!.size > m[key]);
  };
  if (overlaps('containerId') || overlaps('hostId')) {
    throw new InvalidArgumentError(`container spec: userns.${field}: ranges overlap`);
  }
  if (!out.some((m) => m.containerId === 0)) {
    throw new InvalidArgumentError(`container spec: userns.${field} must map container id 0 (the container's root)`);
  }
  return out;
}

/** The host id container id `id` is, or undefined when the map leaves it out. */
export function hostIdOf(maps: readonly IdMap[], id: number): number | undefined {
  for (const m of maps) if (id >= m.containerId && id < m.containerId + m.size) return m.hostId + (id - m.containerId);
  return undefined;
}

/** The container id host id `id` is, or undefined when the map leaves it out. */
export function containerIdOf(maps: readonly IdMap[], id: number): number | undefined {
  for (const m of maps) if (id >= m.hostId && id < m.hostId + m.size) return m.containerId + (id - m.hostId);
  return undefined;
}

/**
 * The owner a file of a rootless container's upper directory has inside the
 * container, for a layer made of it (`diffToTar`'s `mapOwner`): its upper
 * directory holds host ids. Ids the maps leave out become 0 (they can only be
 * files the user put there from outside).
 */
export function ownerInContainer(userns: Pick<UsernsRecord, 'uidMap' | 'gidMap'>): (owner: { uid: number; gid: number }) => {
  uid: number;
  gid: number;
} {
  return ({ uid, gid }) => ({ uid: containerIdOf(userns.uidMap, uid) ?? 0, gid: containerIdOf(userns.gidMap, gid) ?? 0 });
}

/** `'auto'` for root: the `dockless` user's range, else the first free block from {@link AUTO_USERNS_BASE}. */
export function autoRange(host: Pick<UsernsHost, 'subuid' | 'subgid'>): { uid: SubIdRange; gid: SubIdRange } {
  const pick = (ranges: SubIdRange[]) => ranges.find((r) => r.count >= AUTO_USERNS_SIZE);
  const uid = pick(parseSubIds(host.subuid, AUTO_USERNS_USER, -1));
  const gid = pick(parseSubIds(host.subgid, AUTO_USERNS_USER, -1));
  if (uid !== undefined && gid !== undefined) {
    return { uid: { start: uid.start, count: AUTO_USERNS_SIZE }, gid: { start: gid.start, count: AUTO_USERNS_SIZE } };
  }
  const taken = [...allSubIds(host.subuid), ...allSubIds(host.subgid)];
  for (let start = AUTO_USERNS_BASE; start + AUTO_USERNS_SIZE - 1 <= MAX_ID; start += AUTO_USERNS_SIZE) {
    if (!taken.some((r) => r.start < start + AUTO_USERNS_SIZE && start < r.start + r.count)) {
      const range = { start, count: AUTO_USERNS_SIZE };
      return { uid: range, gid: range };
    }
  }
  throw new NotFoundError('userns auto: no free block of host ids above 2^30 outside /etc/subuid and /etc/subgid');
}

function single(id: number): IdMap[] {
  return [{ containerId: 0, hostId: id, size: 1 }];
}

/**
 * Decides a container's user namespace from its spec's `userns` and the host;
 * `undefined` for none (root, without `userns`).
 *
 * @throws {@link InvalidArgumentError} for malformed maps.
 * @throws {@link NotFoundError} when a non-root caller's explicit maps need newuidmap/newgidmap and they are not installed.
 * @example
 * ```ts
 * planUserns('auto', { uid: 0, gid: 0, user: 'root', subuid: '', subgid: '' })?.uidMap;
 * // [{ containerId: 0, hostId: 1073741824, size: 65536 }]
 * ```
 */
export function planUserns(setting: UsernsSetting | undefined, host: UsernsHost): UsernsPlan | undefined {
  if (setting !== undefined && setting !== 'auto' && (setting === null || typeof setting !== 'object')) {
    throw new InvalidArgumentError(`container spec: userns must be 'auto' or { uidMap, gidMap }, got \`${String(setting)}\``);
  }
  const explicit =
    typeof setting === 'object' ? { uid: validateMaps(setting.uidMap, 'uidMap'), gid: validateMaps(setting.gidMap, 'gidMap') } : undefined;
  let uidMap: IdMap[];
  let gidMap: IdMap[];
  if (host.uid === 0) {
    if (setting === undefined) return undefined;
    if (explicit !== undefined) {
      uidMap = explicit.uid;
      gidMap = explicit.gid;
    } else {
      const { uid, gid } = autoRange(host);
      uidMap = [{ containerId: 0, hostId: uid.start, size: uid.count }];
      gidMap = [{ containerId: 0, hostId: gid.start, size: gid.count }];
    }
    return {
      uidMap,
      gidMap,
      rootless: false,
      idmapRoot: true,
      hostRoot: { uid: hostIdOf(uidMap, 0)!, gid: hostIdOf(gidMap, 0)! },
    };
  }

  const mappers = host.newuidmap !== undefined && host.newgidmap !== undefined;
  if (explicit !== undefined) {
    uidMap = explicit.uid;
    gidMap = explicit.gid;
  } else {
    const subuids = parseSubIds(host.subuid, host.user, host.uid);
    const subgids = parseSubIds(host.subgid, host.user, host.uid);
    const useSub = mappers && subuids.length > 0 && subgids.length > 0;
    uidMap = useSub ? subordinateMaps(host.uid, subuids) : single(host.uid);
    gidMap = useSub ? subordinateMaps(host.gid, subgids) : single(host.gid);
  }
  // The kernel lets a process map its own id alone; anything more takes the setuid helpers.
  const selfOnly = (maps: IdMap[], own: number) => maps.length === 1 && maps[0]!.hostId === own && maps[0]!.size === 1;
  const needMappers = !selfOnly(uidMap, host.uid) || !selfOnly(gidMap, host.gid);
  if (needMappers && !mappers) {
    throw new NotFoundError(
      'container spec: userns maps beyond your own uid and gid need newuidmap and newgidmap (Debian/Ubuntu package uidmap), which are not installed',
    );
  }
  const hostRoot = { uid: hostIdOf(uidMap, 0)!, gid: hostIdOf(gidMap, 0)! };
  // The store's files are the caller's and its subordinate ids': a namespace whose root is not the caller cannot mount them.
  const own = subordinateUserns(host);
  const mountUserns = hostRoot.uid !== host.uid || hostRoot.gid !== host.gid ? own : undefined;
  return {
    uidMap,
    gidMap,
    rootless: true,
    idmapRoot: false,
    ...(needMappers ? { newuidmap: host.newuidmap!, newgidmap: host.newgidmap! } : {}),
    hostRoot,
    ...(mountUserns !== undefined ? { mountUserns, rootOwnsUpper: containerIdOf(uidMap, host.uid) === undefined } : {}),
  };
}

/**
 * Podman's rootless `--userns` modes, as the explicit maps of a
 * {@link UsernsSetting}, from the caller's /etc/subuid and /etc/subgid ranges
 * ({@link AUTO_USERNS_SIZE} ids in all):
 *
 * - `'keep-id'`: the caller's uid and gid are the same ids in the container
 *   (what it writes to a bind mount is the caller's, and the caller's files
 *   there are its own); root and every other id are subordinate ids.
 * - `'nomap'`: subordinate ids only; the caller's own ids are not in the
 *   container at all (its files in a bind mount belong to nobody there).
 *
 * @throws {@link InvalidArgumentError} for a caller that is root (its containers use `'auto'` or maps of its choosing).
 * @throws {@link NotFoundError} when the caller has no subordinate ranges, or fewer ids than needed.
 * @example
 * ```ts
 * const c = await runtime.run({ image: 'alpine', userns: rootlessUsernsMaps('keep-id'), user: `${process.getuid!()}` });
 * ```
 */
export function rootlessUsernsMaps(mode: 'keep-id' | 'nomap'): Exclude<UsernsSetting, 'auto'> {
  return rootlessMapsFor(mode, readUsernsHost());
}

/** @internal {@link rootlessUsernsMaps} for this host. */
export function rootlessMapsFor(mode: 'keep-id' | 'nomap', host: UsernsHost): { uidMap: IdMap[]; gidMap: IdMap[] } {
  const context = `userns ${mode}`;
  if (mode !== 'keep-id' && mode !== 'nomap') throw new InvalidArgumentError(`${context}: expected 'keep-id' or 'nomap'`);
  if (host.uid === 0) throw new InvalidArgumentError(`${context}: only for a caller that is not root (root's containers use 'auto' or explicit maps)`);
  const maps = (own: number, text: string, kind: string): IdMap[] => {
    const ranges = parseSubIds(text, host.user, host.uid);
    const out: IdMap[] = [];
    let next = 0;
    let r = 0;
    let used = 0;
    // Container ids [from, to) from the subordinate ranges, in file order.
    const fill = (to: number): void => {
      while (next < to) {
        const range = ranges[r];
        if (range === undefined) throw new NotFoundError(`${context}: /etc/sub${kind} gives ${host.user} fewer than the ${AUTO_USERNS_SIZE} ids a container needs`);
        const size = Math.min(range.count - used, to - next);
        out.push({ containerId: next, hostId: range.start + used, size });
        next += size;
        used += size;
        if (used === range.count) {
          r++;
          used = 0;
        }
      }
    };
    if (mode === 'keep-id' && own < AUTO_USERNS_SIZE) {
      fill(own);
      out.push({ containerId: own, hostId: own, size: 1 });
      next = own + 1;
      fill(AUTO_USERNS_SIZE);
    } else {
      fill(mode === 'keep-id' ? AUTO_USERNS_SIZE - 1 : AUTO_USERNS_SIZE);
      if (mode === 'keep-id') out.push({ containerId: own, hostId: own, size: 1 });
    }
    if (out.length > MAX_MAP_LINES) throw new InvalidArgumentError(`${context}: /etc/sub${kind} ranges need more than ${MAX_MAP_LINES} map lines`);
    return out;
  };
  return { uidMap: maps(host.uid, host.subuid, 'uid'), gidMap: maps(host.gid, host.subgid, 'gid') };
}

/**
 * Device nodes as bind mounts of the host's: in a user namespace mknod of a
 * device is not allowed, and a node on a filesystem mounted there would not work anyway.
 */
export function deviceBindMounts(devices: readonly HelperDevice[]): HelperMount[] {
  return devices.map((d) => ({ type: 'bind', source: d.path, target: d.path, options: [], nofollow: true }));
}

/**
 * Checks that the container's user and groups exist in its user namespace.
 *
 * @throws {@link InvalidArgumentError} naming the id the maps leave out.
 */
export function checkUserMapped(user: ResolvedUser, plan: UsernsPlan): void {
  const what = plan.uidMap.length === 1 && plan.uidMap[0]!.size === 1 ? ' (a single-id mapping has only root; add /etc/subuid and /etc/subgid ranges for more)' : '';
  if (hostIdOf(plan.uidMap, user.uid) === undefined) {
    throw new InvalidArgumentError(`container spec: user: uid ${user.uid} is not mapped in the container's user namespace${what}`);
  }
  for (const gid of [user.gid, ...user.groups]) {
    if (hostIdOf(plan.gidMap, gid) === undefined) {
      throw new InvalidArgumentError(`container spec: user: gid ${gid} is not mapped in the container's user namespace${what}`);
    }
  }
}

/**
 * A cgroup failure of a rootless container with `resources`: limits need cgroups
 * delegated to the user (systemd `Delegate=yes`, or a writable `cgroupParent`),
 * and are not silently dropped.
 */
export function rootlessCgroupError(error: unknown, uid: number): unknown {
  if (!(error instanceof PermissionError)) return error;
  return new PermissionError(
    `${error.message} (rootless: the cgroups are not delegated to uid ${uid}, so resource limits cannot be enforced;` +
      ' run without resources, or set cgroupParent to a cgroup delegated to you)',
    { cause: error, ...(error.path !== undefined ? { path: error.path } : {}) },
  );
}

/**
 * Removes a container's directory. A rootless container's directory may hold
 * files of its subordinate ids, and overlayfs leaves `work/work` without
 * permissions: what the user cannot remove is removed by the helper as root of
 * a user namespace with the container's maps (or the caller's own, with all
 * its subordinate ids, when the container's root is not the caller).
 */
export async function removeContainerDir(dir: string, userns: UsernsRecord | undefined, helperPath?: string): Promise<void> {
  if (userns?.rootless === true) await chmod(join(dir, 'work', 'work'), 0o700).catch(() => undefined);
  try {
    await removeDir(dir);
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (userns?.rootless !== true || (code !== 'EACCES' && code !== 'EPERM')) throw error;
    debug('remove %s in the container user namespace: %s', dir, code);
  }
  const host = readUsernsHost();
  const plan = planUserns({ uidMap: userns.uidMap, gidMap: userns.gidMap }, host)!;
  // Maps that leave the caller out cannot remove its directories: its own namespace holds every id of both.
  const maps = plan.mountUserns !== undefined ? (subordinateUserns(host, true) ?? plan) : plan;
  try {
    await runHelperOp('rm', [...usernsArgs(maps), '--', dir], {
      context: `remove \`${dir}\``,
      ...(helperPath !== undefined ? { helperPath } : {}),
    });
  } catch (error) {
    if (error instanceof DocklessError) throw error;
    throw new PermissionError(`remove \`${dir}\`: ${(error as Error).message}`, { cause: error, path: dir });
  }
}
