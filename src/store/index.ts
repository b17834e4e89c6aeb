/**
 * The image store: {@link ImageStore} and its types.
 *
 * @module
 */

export { ImageStore, DEFAULT_HISTORY_RETENTION } from './image-store.js';
export { Lease } from './lease.js';
export { DEFAULT_GC_GRACE_PERIOD } from './gc.js';
export { defaultStoreRoot } from './paths.js';
export type {
  BlobSource,
  GcOptions,
  GcResult,
  HistoryRetention,
  ImageDetails,
  ImageLayerInput,
  ImageSnapshot,
  ImageStoreOptions,
  ImageSummary,
  LayerDetails,
  LeaseInfo,
  LeaseOptions,
  PutBlobOptions,
  PutImageInput,
  RollbackOptions,
  SnapshotOptions,
  SnapshotProgress,
  StoreProblem,
  StoreProblemKind,
  TagAction,
  TagHistoryEntry,
} from './types.js';
export type { Owner as LeaseOwner } from '../util/index.js';
