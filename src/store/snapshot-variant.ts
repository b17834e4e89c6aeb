/**
 * Snapshot variants: the unpack options that change what a snapshot's files
 * look like on disk, and so are part of its identity beside its chainID.
 *
 * A rootless unpack keeps no owners (every file is the caller's), skips
 * device nodes and other than `user.*` xattrs, and marks opaque directories
 * with `user.overlay.opaque`; a root unpack keeps the layer's owners and
 * xattrs and uses `trusted.overlay.opaque`. Neither may be used in place of
 * the other: a root overlay ignores `user.overlay.*` (deleted files come
 * back) and a rootless caller cannot read or remove files of other owners.
 * So each variant is its own snapshot directory: `<chainID hex>` for the
 * root variant (the name snapshots had before variants existed) and
 * `<chainID hex>-rootless` for the rootless one.
 *
 * @module
 */

import { DIGEST_HEX_LENGTH, digestHex, isDigest, type Digest } from '../oci/index.js';

/**
 * How a snapshot was unpacked: `'root'` with owners, device nodes and
 * `trusted.*` xattrs, `'rootless'` without (see the layer unpacker's
 * `rootless` option).
 */
export type SnapshotVariant = 'root' | 'rootless';

const ROOTLESS_SUFFIX = '-rootless';

/**
 * The variant an unpack with the given `rootless` option makes; `undefined`
 * means the unpacker's default, rootless unless the process is root.
 */
export function snapshotVariant(rootless: boolean | undefined): SnapshotVariant {
  return (rootless ?? (process.getuid?.() ?? 0) !== 0) ? 'rootless' : 'root';
}

/** The name of the directory, under `snapshots/`, of a chainID's snapshot in `variant`. */
export function snapshotDirName(chainId: Digest, variant: SnapshotVariant): string {
  return variant === 'root' ? digestHex(chainId) : `${digestHex(chainId)}${ROOTLESS_SUFFIX}`;
}

/**
 * The chainID and variant a snapshot directory's name stands for, or
 * `undefined` for a name that is not a snapshot's (a temporary directory,
 * anything else).
 */
export function parseSnapshotDirName(name: string): { chainId: Digest; variant: SnapshotVariant } | undefined {
  const variant: SnapshotVariant = name.endsWith(ROOTLESS_SUFFIX) ? 'rootless' : 'root';
  const hex = variant === 'root' ? name : name.slice(0, -ROOTLESS_SUFFIX.length);
  for (const [algorithm, length] of Object.entries(DIGEST_HEX_LENGTH)) {
    if (hex.length !== length) continue;
    const chainId = `${algorithm}:${hex}`;
    if (isDigest(chainId)) return { chainId, variant };
  }
  return undefined;
}
