/**
 * Image archives: importing OCI image layouts, oci-archives, docker-archives
 * and root filesystem tars into an `ImageStore`, and exporting images as
 * OCI layouts, oci-archives and docker-archives.
 *
 * @module
 */

export { importImage } from './import.js';
export { exportImage } from './export.js';
export { applyChanges, CHANGE_INSTRUCTIONS } from './changes.js';
export type {
  ExportFormat,
  ExportOptions,
  ExportResult,
  ImportedImage,
  ImportFormat,
  ImportOptions,
  ArchiveProgress,
} from './types.js';
