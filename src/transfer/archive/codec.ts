/**
 * Compression of archives and layer blobs: sniffing it from the magic
 * bytes, and decompressing a stream of chunks.
 *
 * @module
 */

export {
  MAGIC_LENGTH,
  decompress,
  detectCompression,
  sniffCompression,
} from '../../layer/index.js';
export type { LayerCompression as Compression } from '../../oci/index.js';
