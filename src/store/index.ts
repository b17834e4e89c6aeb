/**
 * The image store's public surface for the rest of dockless: the store
 * class without registries and archives ({@link ImageStoreCore}), the
 * interfaces transfer, the builder and the runtime are written against, and
 * their types. Only this folder knows the store's layout on disk.
 *
 * @module
 */

export { ImageStoreCore } from './store.js';
export { IngestSession, LayerIngest } from './ingest.js';
export type { BuildCacheRecord, BuildCacheStorage } from './build-cache.js';
export type { IngestSessionOptions, LayerFileOptions, LayerIngestOptions, PlacedBy, SnapshotTarget } from './ingest.js';
export type {
  ContentReader,
  ContentWriter,
  ImageReader,
  ImageWriter,
  Ingester,
  LeaseManager,
  Snapshotter,
} from './interfaces.js';
export { openStore, DEFAULT_HISTORY_RETENTION, type OpenedStore } from './open.js';
export { Lease } from './lease.js';
export { DEFAULT_GC_GRACE_PERIOD_MS } from './gc.js';
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
  SnapshotUserns,
  SnapshotProgress,
  StoreProblem,
  StoreProblemKind,
  TagAction,
  TagHistoryEntry,
} from './types.js';
export type { Owner as LeaseOwner } from '../util/index.js';
export { withLock } from './lock.js';
export { lowerDirUsable } from './durability.js';
export type { LockOptions } from './lock.js';
