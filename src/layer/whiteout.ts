/**
 * Whiteouts: how a layer says "this path of the layers below is gone".
 *
 * In a layer tar (the OCI image spec's format) a deletion is an empty entry
 * named `.wh.<name>` beside the deleted path, and "this directory hides all of
 * the directory below it" is an entry named `.wh..wh..opq` inside it.
 *
 * On disk, as overlayfs lower and upper dirs need them, a deleted path is a
 * character device 0:0 with the deleted path's name, and an opaque directory
 * has the xattr `trusted.overlay.opaque=y` (`user.overlay.opaque=y` when the
 * overlay is mounted with `userxattr`, as rootless overlays are).
 *
 * @module
 */

/** The name prefix of a whiteout entry in a layer tar: `.wh.<name>` deletes `<name>`. */
export const WHITEOUT_PREFIX = '.wh.';

/** The entry name that marks its directory opaque in a layer tar. */
export const OPAQUE_WHITEOUT = '.wh..wh..opq';

/**
 * The prefix of whiteout *metadata* names (`.wh..wh.plnk`, `.wh..wh.aufs`, …)
 * that aufs-era tools wrote; they describe nothing in the image and are skipped.
 */
export const WHITEOUT_META_PREFIX = '.wh..wh.';

/** The overlayfs xattr namespace of a root-mounted overlay. */
export const OVERLAY_XATTR_PREFIX = 'trusted.overlay.';

/** The overlayfs xattr namespace of an overlay mounted with `userxattr` (rootless). */
export const OVERLAY_USER_XATTR_PREFIX = 'user.overlay.';

/** The value of the opaque xattr that marks an opaque directory. */
export const OPAQUE_XATTR_VALUE = 'y';

/** The device number of an overlayfs whiteout: a character device 0:0. */
export const WHITEOUT_DEVICE = { major: 0, minor: 0 } as const;

/** The name of the xattr that marks a directory opaque: `trusted.overlay.opaque`, or `user.overlay.opaque` when `rootless`. */
export function opaqueXattrName(rootless: boolean): string {
  return `${rootless ? OVERLAY_USER_XATTR_PREFIX : OVERLAY_XATTR_PREFIX}opaque`;
}

/** What the last component of a layer tar entry's name means. */
export type WhiteoutName =
  /** `.wh.<name>`: `<name>` in the same directory is deleted. */
  | { kind: 'whiteout'; name: string }
  /** `.wh..wh..opq`: the directory is opaque. */
  | { kind: 'opaque' }
  /** `.wh..wh.<other>`: aufs metadata, to be skipped. */
  | { kind: 'meta' };

/**
 * Classifies the last component of an entry name: a whiteout, an opaque
 * marker, aufs metadata, or `undefined` for an ordinary name.
 *
 * @example
 * parseWhiteout('.wh.passwd'); // { kind: 'whiteout', name: 'passwd' }
 * parseWhiteout('.wh..wh..opq'); // { kind: 'opaque' }
 * parseWhiteout('passwd'); // undefined
 */
export function parseWhiteout(basename: string): WhiteoutName | undefined {
  if (!basename.startsWith(WHITEOUT_PREFIX)) return undefined;
  if (basename === OPAQUE_WHITEOUT) return { kind: 'opaque' };
  if (basename.startsWith(WHITEOUT_META_PREFIX)) return { kind: 'meta' };
  return { kind: 'whiteout', name: basename.slice(WHITEOUT_PREFIX.length) };
}

/** The tar entry basename that deletes `name`: `.wh.<name>`. */
export function whiteoutEntryName(name: string): string {
  return `${WHITEOUT_PREFIX}${name}`;
}

/** Whether a stat result is an overlayfs whiteout (a character device 0:0). */
export function isOverlayWhiteout(stats: { isCharacterDevice(): boolean; rdev: number | bigint }): boolean {
  return stats.isCharacterDevice() && Number(stats.rdev) === 0;
}
