/**
 * The small interfaces the store offers the code above it (transfer, the
 * builder, the runtime), as containerd's content, images and leases services
 * do: each names one job, and {@link ImageStoreCore} implements them all.
 *
 * @module
 */

import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/index.js';
import type { BlobSource } from './blobs.js';
import type { IngestSession, IngestSessionOptions } from './ingest.js';
import type { Lease } from './lease.js';
import type {
  ImageDetails,
  ImageSnapshot,
  ImageSummary,
  LeaseOptions,
  PutBlobOptions,
  PutImageInput,
  RollbackOptions,
  SnapshotOptions,
} from './types.js';

/** Reads blobs by digest. */
export interface ContentReader {
  /** Whether a blob is in the store. */
  hasBlob(digest: string): Promise<boolean>;
  /** A stream of a blob that fails at EOF when the content does not match its digest. */
  getBlob(digest: string): Promise<Readable>;
  /** A small blob, whole and verified. */
  readBlob(digest: string): Promise<Buffer>;
}

/** Writes blobs, verified and committed one by one. */
export interface ContentWriter {
  /** Stores a blob; idempotent. */
  putBlob(data: BlobSource, options?: PutBlobOptions): Promise<Descriptor>;
}

/** Finds images. */
export interface ImageReader {
  /** The descriptor an image reference resolves to. */
  resolve(image: string): Promise<Descriptor>;
  /** Every tag, sorted by reference. */
  list(): Promise<ImageSummary[]>;
  /** Everything about an image. */
  inspect(image: string): Promise<ImageDetails>;
}

/** Writes images and points tags at them. */
export interface ImageWriter {
  /** Writes an image's config and manifest for stored layers. */
  putImage(input: PutImageInput): Promise<Descriptor>;
  /** Points a tag at an image. */
  tag(image: string, ref: string): Promise<Descriptor>;
  /** Removes a tag. */
  untag(ref: string): Promise<void>;
  /** Points a tag back at an earlier target. */
  rollback(ref: string, options?: RollbackOptions): Promise<Descriptor>;
}

/** Takes leases, which keep content from GC. */
export interface LeaseManager {
  /** Takes a lease on `targets`. */
  lease(id: string, targets?: Iterable<string>, options?: LeaseOptions): Promise<Lease>;
}

/** Unpacks an image's layers as snapshots. */
export interface Snapshotter {
  /** The snapshots of an image, unpacked when missing. */
  snapshot(image: string, options?: SnapshotOptions): Promise<ImageSnapshot>;
}

/** Starts ingest sessions: blobs written and layers unpacked in one pass, visible together on commit. */
export interface Ingester {
  /** A new session; commit or discard it. */
  ingest(options?: IngestSessionOptions): IngestSession;
}
