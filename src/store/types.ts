/**
 * The option and result types of {@link ImageStore}.
 *
 * @module
 */

import type { IdMap } from '../helper/index.js';
import type { ProgressBase } from '../util/index.js';
import type {
  Annotations,
  Descriptor,
  Digest,
  HistoryEntry,
  ImageConfig,
  ImageManifest,
  Platform,
} from '../oci/index.js';
import type { Lease } from './lease.js';
import type { TagAction } from './refs.js';

export type { TagAction } from './refs.js';
export type { LeaseInfo } from './leases.js';
export type { BlobSource } from './blobs.js';

/** Options of {@link ImageStore.open}. */
export interface ImageStoreOptions {
  /**
   * The store's directory: an OCI image layout plus dockless's state in
   * `<root>/dockless/`. Created when missing. Keep `:` out of it, since
   * skopeo's and umoci's `<path>:<tag>` arguments cannot carry it.
   * @default `/var/lib/dockless/store` for root, else `$XDG_DATA_HOME/dockless/store` (or `~/.local/share/dockless/store`)
   */
  root?: string;
  /** How much tag history {@link ImageStore.gc} keeps (and so how far {@link ImageStore.rollback} can go). */
  historyRetention?: HistoryRetention;
  /**
   * Path of the native helper, which unpacks device nodes, whiteouts and
   * xattrs and flushes snapshots to disk.
   * @default `$DOCKLESS_HELPER`, else the helper `npm install` built
   */
  helperPath?: string;
}

/**
 * How much of each tag's history GC keeps. A change is dropped when it is
 * beyond the newest `maxEntries` of its tag, or older than `maxAgeMs`; the
 * current target is always kept. Images that only dropped changes pointed
 * to become collectable.
 */
export interface HistoryRetention {
  /**
   * The most changes kept per tag, the current one included.
   * @default 10
   */
  maxEntries?: number;
  /**
   * The age in milliseconds beyond which a change is dropped.
   * @default 2592000000 (30 days)
   */
  maxAgeMs?: number;
}

/** Options of {@link ImageStore.putBlob}. */
export interface PutBlobOptions {
  /** The digest the content must have; a mismatch is a `DigestMismatchError` and nothing is stored. */
  digest?: string;
  /** The size in bytes the content must have. */
  size?: number;
  /**
   * The media type of the returned descriptor (not stored: a blob is bytes).
   * @default 'application/octet-stream'
   */
  mediaType?: string;
  /** Adds the blob to this lease as it is committed, so no concurrent GC can take it before it is referenced. */
  lease?: Lease | string;
  /** Cancels the write; nothing is stored. */
  signal?: AbortSignal;
}

/** One layer of {@link PutImageInput}. */
export interface ImageLayerInput {
  /** The descriptor of the layer blob (compressed as its media type says), already in the store. */
  descriptor: Descriptor;
  /** The layer's diffID: the digest of its uncompressed tar. */
  diffId: string;
}

/** The input of {@link ImageStore.putImage}. */
export interface PutImageInput {
  /**
   * The image config. Its `rootfs` is filled in from the layers' diffIDs when
   * absent, and must match them when present.
   */
  config: ImageConfig;
  /** The layers, base first; their blobs must be in the store. */
  layers: ImageLayerInput[];
  /** Annotations of the manifest. */
  annotations?: Annotations;
  /** Adds the config and manifest to this lease as they are committed. */
  lease?: Lease | string;
}

/** One image in {@link ImageStore.list}. */
export interface ImageSummary {
  /** The tag, fully normalised: `docker.io/library/alpine:latest`. */
  reference: string;
  /** The digest of the manifest (or index) the tag points to. */
  digest: Digest;
  /** The media type of that manifest or index. */
  mediaType: string;
  /** When the image was created, from its config; absent when unknown. */
  created?: string;
  /** The bytes of the image's blobs: manifest, config and compressed layers (for this platform). */
  size: number;
}

/** One layer in {@link ImageDetails}. */
export interface LayerDetails {
  /** The compressed blob's digest. */
  digest: Digest;
  /** The compressed blob's size. */
  size: number;
  /** The blob's media type. */
  mediaType: string;
  /** The digest of the uncompressed tar. */
  diffId: Digest;
  /** The chainID of this layer and those below it: the name of its snapshot. */
  chainId: Digest;
}

/** What {@link ImageStore.inspect} returns. */
export interface ImageDetails {
  /**
   * The reference, fully normalised (`docker.io/library/alpine:latest`), as in
   * every result; absent when the image was named by its bare digest.
   */
  reference?: string;
  /** The digest the reference resolves to (an index's, for a multi-platform image). */
  digest: Digest;
  /** The media type of what `digest` names. */
  mediaType: string;
  /** The platform manifest's descriptor (equal to `digest`'s unless that is an index). */
  manifestDescriptor: Descriptor;
  /** The image manifest for this host's platform. */
  manifest: ImageManifest;
  /** The config's digest. */
  configDigest: Digest;
  /** The image config. */
  config: ImageConfig;
  /** The layers, base first. */
  layers: LayerDetails[];
  /** The image's build history, from its config (`docker history`); see {@link ImageStore.history} for the tag's. */
  history: HistoryEntry[];
  /** Manifest, config and compressed layers, in bytes. */
  size: number;
  /** Every tag that points to `digest` now. */
  tags: string[];
}

/** One change of a tag, newest first, in {@link ImageStore.history}. */
export interface TagHistoryEntry {
  /** The manifest the tag pointed to after the change; `null` when the change removed the tag. */
  digest: Digest | null;
  /** When the change happened, ISO 8601. */
  time: string;
  /** What made the change. */
  action: TagAction;
  /** Whether this is the tag's current state (the first entry). */
  current: boolean;
}

/** Options of {@link ImageStore.rollback}. */
export interface RollbackOptions {
  /**
   * How many targets to go back. Successive rollbacks keep going back (a
   * rollback is undone by tagging again, not by rolling back).
   * @default 1
   */
  steps?: number;
}

/** Options of {@link ImageStore.gc}. */
export interface GcOptions {
  /**
   * Content written or touched less than this many milliseconds ago is kept
   * even when nothing refers to it yet, so that a `putBlob` → `putImage` →
   * `tag` sequence in another process is not collected half-way. Longer
   * operations should hold a lease.
   * @default 60000
   */
  gracePeriodMs?: number;
  /** Report what would be removed, and remove nothing. @default false */
  dryRun?: boolean;
}

/** What {@link ImageStore.gc} removed. */
export interface GcResult {
  /** Blobs removed. */
  blobs: Digest[];
  /** Snapshots removed, by chainID. */
  snapshots: Digest[];
  /** Leases removed because they had expired or their process had ended. */
  leases: string[];
  /** Tag history changes dropped by the retention setting. */
  historyEntries: number;
  /** Bytes freed: the blobs' sizes plus the snapshots' uncompressed sizes. */
  reclaimedBytes: number;
}

/** Options of {@link ImageStore.lease}. */
export interface LeaseOptions {
  /** The lease ends by itself this many milliseconds from now. @default never */
  expiresIn?: number;
  /**
   * The lease ends when this process ends (judged by pid and start time), so
   * a crash cannot leave it behind. @default false
   */
  processBound?: boolean;
}

/** The kind of a {@link StoreProblem}. */
export type StoreProblemKind =
  /** `oci-layout` is missing or not version 1.0.0. */
  | 'invalid-layout'
  /** `index.json` is not a valid image index. */
  | 'invalid-index'
  /** `dockless/history.json` is malformed. */
  | 'invalid-history'
  /** A blob's content does not match its name. */
  | 'corrupt-blob'
  /** A tag, a tag's history, a lease or a document refers to a blob that is not there. */
  | 'missing-blob'
  /** A manifest, index or config is malformed. */
  | 'invalid-document'
  /** A snapshot directory lacks its completion marker or files, or the marker is wrong. */
  | 'incomplete-snapshot'
  /** A lease record is unreadable. */
  | 'invalid-lease';

/** One problem {@link ImageStore.check} found. */
export interface StoreProblem {
  /** What sort of problem this is. */
  kind: StoreProblemKind;
  /** What is wrong, lowercase, naming the thing. */
  message: string;
  /** The file concerned. */
  path?: string;
  /** The blob digest or chainID concerned. */
  digest?: string;
  /** The tag concerned. */
  reference?: string;
}

/** The user namespace of {@link SnapshotOptions.userns}. */
export interface SnapshotUserns {
  /** Namespace uids to host uids; must map uid 0. */
  uidMap: readonly IdMap[];
  /** Namespace gids to host gids; must map gid 0. */
  gidMap: readonly IdMap[];
  /** newuidmap, for a caller that is not root. */
  newuidmap?: string | undefined;
  /** newgidmap, for a caller that is not root. */
  newgidmap?: string | undefined;
}

/** Options of {@link ImageStore.snapshot}. */
export interface SnapshotOptions {
  /** Cancels the wait; an unpack that no other caller waits for is cancelled and leaves nothing. */
  signal?: AbortSignal;
  /** Receives progress events. */
  onProgress?: (event: SnapshotProgress) => void;
  /**
   * Unpack as an unprivileged user would (no chown, no device nodes,
   * `user.overlay.*` xattrs); see the layer unpacker. Rootless and root
   * snapshots of one chainID are separate snapshots: neither is ever used
   * for the other.
   * @default process.getuid() !== 0
   */
  rootless?: boolean;
  /**
   * Unpack with the layers' owners as ids of a user namespace with these
   * maps (the caller being its root), as a rootless container with the same
   * maps sees them; `false` for none (every file the caller's, as
   * `rootless` alone makes it). Snapshots of other maps are other snapshots.
   * @default for a caller that is not root and has /etc/subuid and /etc/subgid
   *   ranges (and newuidmap/newgidmap), the maps its rootless containers get by
   *   default: its own ids as 0, its first 65536 subordinate ids as 1…; `false` otherwise
   * @throws {InvalidArgumentError} (from `snapshot`) for maps whose 0 is not the caller's own uid and gid.
   */
  userns?: SnapshotUserns | false;
  /**
   * How many layers to unpack at once (each snapshot holds one layer, so
   * they are independent).
   * @default 3
   */
  concurrency?: number;
  /** The platform to pick from a multi-platform image. @default this host's */
  platform?: Platform | string;
}

/** A progress event of {@link ImageStore.snapshot}. */
export type SnapshotProgress = ProgressBase<'snapshot'> &
  (
  | {
      /** A layer's snapshot is about to be looked up and, if missing, unpacked. */
      type: 'layer-start';
      /** The layer's position, base layer 0. */
      index: number;
      /** The number of layers. */
      total: number;
      /** The compressed blob's digest. */
      digest: Digest;
      /** The layer's chainID: the name of its snapshot. */
      chainId: Digest;
      /** The compressed blob's size. */
      size: number;
    }
  | {
      /** Compressed bytes of a layer were read while unpacking it. */
      type: 'layer-progress';
      /** The layer's position, base layer 0. */
      index: number;
      /** The compressed blob's digest. */
      digest: Digest;
      /** The layer's chainID: the name of its snapshot. */
      chainId: Digest;
      /** Compressed bytes read so far. */
      bytes: number;
      /** The compressed blob's size. */
      size: number;
    }
  | {
      /** A layer's snapshot is complete. */
      type: 'layer-done';
      /** The layer's position, base layer 0. */
      index: number;
      /** The compressed blob's digest. */
      digest: Digest;
      /** The layer's chainID: the name of its snapshot. */
      chainId: Digest;
      /** True when the snapshot already existed and nothing was unpacked. */
      cached: boolean;
    }
  );

/** The unpacked layers of an image, ready to be stacked by overlayfs. */
export interface ImageSnapshot {
  /** The digest of the platform manifest. */
  digest: Digest;
  /** The image config (Env, Entrypoint, Cmd, WorkingDir, User, ExposedPorts, …). */
  config: ImageConfig;
  /** The layers' diffIDs, base first. */
  diffIds: Digest[];
  /** The layers' chainIDs (snapshot names), base first. */
  chainIds: Digest[];
  /**
   * The snapshot directories to use as overlayfs lower dirs, **top-most
   * first** (the order of overlayfs's `lowerdir=` option). Each holds only its
   * own layer's files; empty for an image without layers.
   */
  lowerDirs: string[];
}
