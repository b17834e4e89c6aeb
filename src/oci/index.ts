/**
 * The OCI data model: media types, descriptors and the manifest, index and
 * config documents, digests and chainIDs, image references and platforms.
 * Pure: no I/O, and nothing of dockless's own but its error classes.
 *
 * @module
 */

export * from './media-types.js';
export * from './types.js';
export * from './digest.js';
export * from './reference.js';
export * from './platform.js';
export * from './descriptor.js';
