/**
 * Layers: tar ⇄ filesystem. {@link unpackLayer} turns a layer blob into a
 * snapshot directory with overlayfs whiteouts; {@link diffToTar} and
 * {@link compressLayer} turn an overlay upper dir back into a layer blob.
 *
 * @module
 */
export { unpackLayer } from './unpack.js';
export type { LayerCompression, UnpackOptions, UnpackResult } from './unpack.js';
export { unpackThreadFor } from './unpack-thread.js';
export { compareLayerPaths, compressLayer, diffToTar, layerEntryHeader, sourceDateEpochFromEnv } from './diff.js';
export type { CompressedLayerInfo, DiffOptions, LayerBlobCompression, XattrReader } from './diff.js';
export { normalizeEntryPath } from './entry-path.js';
export {
  OPAQUE_WHITEOUT,
  OPAQUE_XATTR_VALUE,
  OVERLAY_USER_XATTR_PREFIX,
  OVERLAY_XATTR_PREFIX,
  WHITEOUT_DEVICE,
  WHITEOUT_META_PREFIX,
  WHITEOUT_PREFIX,
  isOverlayWhiteout,
  opaqueXattrName,
  parseWhiteout,
  whiteoutEntryName,
} from './whiteout.js';
export type { WhiteoutName } from './whiteout.js';
export { PAX_LIBARCHIVE_XATTR_PREFIX, PAX_XATTR_PREFIX, decodePax, encodePax, paxXattrs } from './pax.js';
export { decompress, detectCompression, drained, MAGIC_LENGTH, sniffCompression, unzstd } from './streams.js';
export { createExtract } from './tar-extract.js';
export type { TarEntryStream, TarExtract, TarHeader } from './tar-extract.js';
export { BLOCK, END_OF_ARCHIVE, encodeHeader, padding } from './tar-header.js';
export type { TarEntryHeader, TarEntryType } from './tar-header.js';
export { resolveInTree } from './resolve-path.js';
export type { PathProbe } from './resolve-path.js';
export { MergedView, clean as cleanRelPath, join as joinRelPath, parentOf as relParentOf } from './merged-view.js';
export type { MergedEntry } from './merged-view.js';
