/**
 * Snapshot variants: the unpack options that change what a snapshot's files
 * look like on disk, and so are part of its identity beside its chainID.
 *
 * - `'root'`: the layer's owners, device nodes and xattrs, opaque directories
 *   marked with `trusted.overlay.opaque`; directory `<chainID hex>` (the name
 *   snapshots had before variants existed).
 * - `'rootless'`: every file the caller's, no device nodes, only `user.*`
 *   xattrs, `user.overlay.opaque`; directory `<chainID hex>-rootless`. What a
 *   caller that is not root gets when it has no subordinate ids (no
 *   /etc/subuid and /etc/subgid ranges, or no newuidmap/newgidmap).
 * - `'userns-<hash>'`: as `'rootless'`, but files get the layer's owners as
 *   ids of a user namespace with given maps (the caller its root, its
 *   subordinate ids 1…), which are host ids of those maps on disk;
 *   directory `<chainID hex>-userns-<hash>`, the hash that of the maps. What
 *   a caller that is not root gets when it has subordinate ids, so that its
 *   containers (with the same maps) see the owners the image gives, as with
 *   podman.
 *
 * None may be used in place of another: a root overlay ignores
 * `user.overlay.*` (deleted files come back), a rootless caller cannot read or
 * remove files of other owners, and under other maps the same host id is
 * another container id.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';
import { callerSubordinateUserns, mapsMoreThanRoot, rootIsCaller, type UsernsMaps } from '../helper/index.js';
import { DIGEST_HEX_LENGTH, digestHex, isDigest, type Digest } from '../oci/index.js';

/**
 * How a snapshot was unpacked: `'root'` with owners, device nodes and
 * `trusted.*` xattrs, `'rootless'` without, `'userns-<hash>'` with owners as
 * ids of a user namespace whose maps hash to `<hash>` (see the layer
 * unpacker's `rootless` and `userns` options).
 */
export type SnapshotVariant = 'root' | 'rootless' | `userns-${string}`;

/** How the snapshots of a variant are unpacked. */
export interface VariantChoice {
  /** The variant, part of the snapshot directory's name. */
  variant: SnapshotVariant;
  /** Unpack without privileges. */
  rootless: boolean;
  /** With a `'userns-…'` variant: the namespace whose ids the files get (the unpack runs as its root). */
  userns?: UsernsMaps;
  /**
   * With a `'userns-…'` variant whose maps' root is not the caller (podman's
   * `keep-id`, `nomap`): those maps. The unpack runs in the caller's own
   * namespace (`userns`), giving each file the id of `userns` that is the
   * host id these maps make of the layer's owner: a copy of the image as
   * containers with these maps must see it.
   */
  owners?: Pick<UsernsMaps, 'uidMap' | 'gidMap'>;
}

/** What decides a snapshot's variant; see {@link chooseVariant}. */
export interface VariantOptions {
  /** Unpack as an unprivileged user would. @default process.getuid() !== 0 */
  rootless?: boolean | undefined;
  /**
   * Owners as ids of a user namespace with these maps, or `false` for none.
   * @default for a caller that is not root, its subordinate ids (see the helper's `callerSubordinateUserns`); none for root
   */
  userns?: UsernsMaps | false | undefined;
}

const ROOTLESS = 'rootless';
const USERNS_PREFIX = 'userns-';
const USERNS_HASH_LENGTH = 16;

/** The name part of a `'userns-…'` variant: a hash of the maps (which host id is which id inside). */
export function usernsVariant(maps: Pick<UsernsMaps, 'uidMap' | 'gidMap'>): SnapshotVariant {
  const line = (m: UsernsMaps['uidMap']) => m.map((r) => `${r.containerId}:${r.hostId}:${r.size}`).join(',');
  const hash = createHash('sha256').update(`uid ${line(maps.uidMap)}\ngid ${line(maps.gidMap)}\n`).digest('hex');
  return `${USERNS_PREFIX}${hash.slice(0, USERNS_HASH_LENGTH)}`;
}

/**
 * The variant an unpack with `options` makes, and how to make it. Maps of
 * the caller's own ids only give `'rootless'` (its unpack is that already).
 *
 * @throws {@link InvalidArgumentError} for maps whose 0 is not the caller's
 *   own uid and gid: the unpack writes files as the caller, who must be the
 *   namespace's root.
 */
export function chooseVariant(options: VariantOptions = {}): VariantChoice {
  const uid = process.getuid?.() ?? 0;
  const rootless = options.rootless ?? uid !== 0;
  let userns = options.userns;
  if (userns === undefined) userns = rootless && uid !== 0 ? callerSubordinateUserns() : undefined;
  if (userns !== undefined && userns !== false && mapsMoreThanRoot(userns)) {
    if (!rootIsCaller(userns)) {
      const own = callerSubordinateUserns();
      if (own === undefined || !hostIdsWithin(userns.uidMap, own.uidMap) || !hostIdsWithin(userns.gidMap, own.gidMap)) {
        throw new InvalidArgumentError(
          `snapshot: userns maps must map 0 to the caller's own uid ${uid} and gid ${process.getgid?.() ?? 0}, or only ids of its own and subordinate ids`,
        );
      }
      return { variant: usernsVariant(userns), rootless: true, userns: own, owners: { uidMap: userns.uidMap, gidMap: userns.gidMap } };
    }
    return { variant: usernsVariant(userns), rootless: true, userns };
  }
  const unprivileged = rootless || (userns !== undefined && userns !== false);
  return { variant: unprivileged ? 'rootless' : 'root', rootless: unprivileged };
}

/** Whether every host id of `inner` is a host id of `outer`. */
function hostIdsWithin(inner: UsernsMaps['uidMap'], outer: UsernsMaps['uidMap']): boolean {
  for (const m of inner) {
    let start = m.hostId;
    let left = m.size;
    while (left > 0) {
      const o = outer.find((r) => start >= r.hostId && start < r.hostId + r.size);
      if (o === undefined) return false;
      const take = Math.min(left, o.hostId + o.size - start);
      start += take;
      left -= take;
    }
  }
  return true;
}

/**
 * The variant an unpack with the given `rootless` option makes, with the
 * caller's default user namespace (see {@link chooseVariant}); `undefined`
 * means the unpacker's default, rootless unless the process is root.
 */
export function snapshotVariant(rootless: boolean | undefined): SnapshotVariant {
  return chooseVariant({ rootless }).variant;
}

/** The name of the directory, under `snapshots/`, of a chainID's snapshot in `variant`. */
export function snapshotDirName(chainId: Digest, variant: SnapshotVariant): string {
  return variant === 'root' ? digestHex(chainId) : `${digestHex(chainId)}-${variant}`;
}

function isVariantSuffix(suffix: string): suffix is SnapshotVariant {
  if (suffix === ROOTLESS) return true;
  return suffix.startsWith(USERNS_PREFIX) && /^[0-9a-f]+$/.test(suffix.slice(USERNS_PREFIX.length)) && suffix.length === USERNS_PREFIX.length + USERNS_HASH_LENGTH;
}

/**
 * The chainID and variant a snapshot directory's name stands for, or
 * `undefined` for a name that is not a snapshot's (a temporary directory,
 * anything else).
 */
export function parseSnapshotDirName(name: string): { chainId: Digest; variant: SnapshotVariant } | undefined {
  const dash = name.indexOf('-');
  const hex = dash === -1 ? name : name.slice(0, dash);
  const suffix = dash === -1 ? undefined : name.slice(dash + 1);
  if (suffix !== undefined && !isVariantSuffix(suffix)) return undefined;
  const variant: SnapshotVariant = suffix ?? 'root';
  for (const [algorithm, length] of Object.entries(DIGEST_HEX_LENGTH)) {
    if (hex.length !== length) continue;
    const chainId = `${algorithm}:${hex}`;
    if (isDigest(chainId)) return { chainId, variant };
  }
  return undefined;
}
