/**
 * The user namespaces the helper makes for a rootless caller outside of
 * containers: their id maps (the caller as root, its /etc/subuid and
 * /etc/subgid ranges as 1…, as podman maps them), and running a helper op or a
 * program as root of such a namespace, so that files get, keep or lose
 * subordinate owners. Containers' own namespaces are decided in
 * runtime/userns.ts from the same pieces.
 *
 * @module
 */

import { accessSync, constants as fsConstants, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { spawnHelper, type HelperProcess } from './spawn.js';

/** One range of a user namespace's id map: `size` ids from `containerId` are host ids from `hostId`. */
export interface IdMap {
  /** The first id inside the container. */
  containerId: number;
  /** The host id it is. */
  hostId: number;
  /** How many consecutive ids the range covers. */
  size: number;
}

/** A user namespace's maps, and the setuid programs that write them for a caller that is not root. */
export interface UsernsMaps {
  /** Namespace uids to host uids. */
  uidMap: readonly IdMap[];
  /** Namespace gids to host gids. */
  gidMap: readonly IdMap[];
  /** newuidmap, for maps beyond the caller's own uid. */
  newuidmap?: string | undefined;
  /** newgidmap, for maps beyond the caller's own gid. */
  newgidmap?: string | undefined;
}

/** One range of /etc/subuid or /etc/subgid. */
export interface SubIdRange {
  /** The first host id of the range. */
  start: number;
  /** How many ids it holds. */
  count: number;
}

/** What deciding a user namespace needs to know of the host. */
export interface UsernsHost {
  /** The caller's uid. */
  uid: number;
  /** The caller's gid. */
  gid: number;
  /** The caller's user name, for /etc/subuid lookups. */
  user: string;
  /** The text of /etc/subuid ('' when missing). */
  subuid: string;
  /** The text of /etc/subgid ('' when missing). */
  subgid: string;
  /** newuidmap (package uidmap), when installed. */
  newuidmap?: string;
  /** newgidmap (package uidmap), when installed. */
  newgidmap?: string;
}

/** How many subordinate ids a rootless namespace maps: 65536, as Docker and podman do. */
export const SUBORDINATE_IDS = 65536;
const MAX_ID = 0xffff_fffe;
/** The kernel's limit on the lines of one uid_map or gid_map. */
const MAX_MAP_LINES = 340;

/** The ranges /etc/subuid (or /etc/subgid) text gives `user` (by name or uid), in file order. */
export function parseSubIds(text: string, user: string, uid: number): SubIdRange[] {
  const out: SubIdRange[] = [];
  for (const line of text.split('\n')) {
    const [name, start, count] = line.trim().split(':');
    if (name === undefined || start === undefined || count === undefined) continue;
    if (name !== user && name !== String(uid)) continue;
    const s = Number(start);
    const c = Number(count);
    if (!Number.isSafeInteger(s) || !Number.isSafeInteger(c) || s < 0 || c <= 0 || s + c - 1 > MAX_ID) continue;
    out.push({ start: s, count: c });
  }
  return out;
}

/**
 * `own` as id 0, then the subordinate `ranges` as 1…: at most `limit` of them
 * ({@link SUBORDINATE_IDS} by default, as podman maps them).
 */
export function subordinateMaps(own: number, ranges: readonly SubIdRange[], limit = SUBORDINATE_IDS): IdMap[] {
  const out: IdMap[] = [{ containerId: 0, hostId: own, size: 1 }];
  let next = 1;
  for (const r of ranges) {
    if (next > limit || out.length === MAX_MAP_LINES) break;
    const size = Math.min(r.count, limit + 1 - next);
    out.push({ containerId: next, hostId: r.start, size });
    next += size;
  }
  return out;
}

function findOnPath(name: string): string | undefined {
  for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin', ...(process.env.PATH ?? '').split(':')]) {
    if (!dir.startsWith('/')) continue;
    const path = join(dir, name);
    try {
      accessSync(path, fsConstants.X_OK);
      return path;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** This host as user namespace decisions see it: the caller, its subordinate ids, the setuid mappers. */
export function readUsernsHost(): UsernsHost {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  let user = String(uid);
  try {
    user = userInfo().username;
  } catch {
    /* a uid without a passwd entry: /etc/subuid may still list it by number */
  }
  const newuidmap = findOnPath('newuidmap');
  const newgidmap = findOnPath('newgidmap');
  return {
    uid,
    gid,
    user,
    subuid: readOrEmpty('/etc/subuid'),
    subgid: readOrEmpty('/etc/subgid'),
    ...(newuidmap !== undefined ? { newuidmap } : {}),
    ...(newgidmap !== undefined ? { newgidmap } : {}),
  };
}

/**
 * The maps of a non-root caller's default user namespace: its own ids as 0,
 * its first {@link SUBORDINATE_IDS} subordinate ids as 1…, written by
 * newuidmap/newgidmap; the maps rootless containers get by default.
 * `undefined` for root, and for a caller without /etc/subuid and /etc/subgid
 * ranges or without newuidmap/newgidmap (its namespaces can map only itself).
 * `all`: every subordinate id instead of the first 65536 (to remove files that
 * any namespace of the caller made).
 */
export function subordinateUserns(host: UsernsHost, all = false): UsernsMaps | undefined {
  if (host.uid === 0 || host.newuidmap === undefined || host.newgidmap === undefined) return undefined;
  const subuids = parseSubIds(host.subuid, host.user, host.uid);
  const subgids = parseSubIds(host.subgid, host.user, host.uid);
  if (subuids.length === 0 || subgids.length === 0) return undefined;
  const limit = all ? MAX_ID : SUBORDINATE_IDS;
  return {
    uidMap: subordinateMaps(host.uid, subuids, limit),
    gidMap: subordinateMaps(host.gid, subgids, limit),
    newuidmap: host.newuidmap,
    newgidmap: host.newgidmap,
  };
}

let callerDefault: { maps: UsernsMaps | undefined } | undefined;

/**
 * {@link subordinateUserns} of this process, read once: /etc/subuid is not
 * read again on every snapshot lookup.
 */
export function callerSubordinateUserns(): UsernsMaps | undefined {
  callerDefault ??= { maps: subordinateUserns(readUsernsHost()) };
  return callerDefault.maps;
}

/**
 * `maps` with the setuid mappers a caller that is not root needs for them
 * (none for root, which writes maps itself).
 */
export function withMappers(maps: Pick<UsernsMaps, 'uidMap' | 'gidMap'>, host: Pick<UsernsHost, 'uid' | 'newuidmap' | 'newgidmap'> = readUsernsHost()): UsernsMaps {
  const out: UsernsMaps = { uidMap: maps.uidMap, gidMap: maps.gidMap };
  if (host.uid !== 0 && mapsMoreThanRoot(maps)) {
    out.newuidmap = host.newuidmap;
    out.newgidmap = host.newgidmap;
  }
  return out;
}

/** The helper's options (`run`, `rm`, `meta`, `userns-exec`) for a user namespace with these maps. */
export function usernsArgs(maps: UsernsMaps): string[] {
  const args: string[] = [];
  for (const m of maps.uidMap) args.push('--userns-uid', String(m.containerId), String(m.hostId), String(m.size));
  for (const m of maps.gidMap) args.push('--userns-gid', String(m.containerId), String(m.hostId), String(m.size));
  if (maps.newuidmap !== undefined) args.push('--newuidmap', maps.newuidmap);
  if (maps.newgidmap !== undefined) args.push('--newgidmap', maps.newgidmap);
  return args;
}

/** Whether `maps` hold more than one id each side, i.e. files may get owners other than the namespace's root. */
export function mapsMoreThanRoot(maps: Pick<UsernsMaps, 'uidMap' | 'gidMap'>): boolean {
  const one = (m: readonly IdMap[]) => m.length === 1 && m[0]!.size === 1;
  return !one(maps.uidMap) || !one(maps.gidMap);
}

/**
 * Whether the maps make this process's own uid and gid the namespace's root:
 * then what it writes as itself is root's inside, and it may give its
 * files the namespace's other ids (as root of such a namespace).
 */
export function rootIsCaller(maps: Pick<UsernsMaps, 'uidMap' | 'gidMap'>): boolean {
  const rootOf = (m: readonly IdMap[]) => m.find((r) => r.containerId === 0)?.hostId;
  return rootOf(maps.uidMap) === (process.getuid?.() ?? 0) && rootOf(maps.gidMap) === (process.getgid?.() ?? 0);
}

/** Options of {@link spawnInUserns}. */
export interface SpawnInUsernsOptions {
  /** Context put before every error message. */
  context: string;
  /** Path of the helper binary. @default the one `npm install` built */
  helperPath?: string | undefined;
  /** The program's environment, `K=V` each. @default none */
  env?: readonly string[];
}

/**
 * Starts `argv` (an absolute program path first) as root of a new user
 * namespace with `maps` (the helper's `userns-exec`), with piped stdin,
 * stdout and stderr. Its `exited` status line carries the program's exit;
 * killing the helper kills the program.
 */
export function spawnInUserns(maps: UsernsMaps, argv: readonly string[], options: SpawnInUsernsOptions): HelperProcess {
  const env = (options.env ?? []).flatMap((e) => ['--env', e]);
  return spawnHelper('userns-exec', [...usernsArgs(maps), ...env, '--', ...argv], {
    stdio: ['pipe', 'pipe', 'pipe'],
    context: options.context,
    ...(options.helperPath !== undefined ? { helperPath: options.helperPath } : {}),
  });
}
