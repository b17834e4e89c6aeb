/**
 * Where the store keeps things. The store root is a standard OCI image layout
 * that other tools can read as it is; dockless's own state lives beside it in
 * `<root>/dockless/`:
 *
 * ```
 * <root>/
 *   oci-layout                      {"imageLayoutVersion":"1.0.0"}
 *   index.json                      one manifest descriptor per tag (ref.name annotation)
 *   blobs/sha256/<hex>              content-addressed blobs
 *   dockless/
 *     history.json                  every change of every tag, with times
 *     leases/<id>.json              content that GC must keep (running containers, imports)
 *     build-cache/<key hex>.json    build cache entries; GC keeps the blobs each lists in `blobs`
 *     images/<manifest hex>.json    cached manifest → config + chainIDs, for the fast snapshot path
 *     snapshots/<chainID hex>/      one unpacked layer: snapshot.json (completion marker) and fs/ (the files)
 *     snapshots/<chainID hex>-rootless/  the same layer unpacked without privileges (see snapshot-variant.ts)
 *     snapshots/<chainID hex>-userns-<maps hash>/  unpacked without privileges, owners as ids of a user namespace
 *     snapshots/tmp-<owner>/        a snapshot being unpacked (never visible as a snapshot)
 *     ingest/<owner>                a blob being written
 *     tmp/<name>.<owner>            atomic-write temporaries
 *     trash/<owner>/                what GC is deleting
 *     locks/                        cross-process locks
 * ```
 *
 * `<owner>` is `<pid>-<start time>-<random>`, so that the leftovers of a
 * process that died are recognised and removed.
 *
 * @module
 */

import { join } from 'node:path';
import { type Digest, digestAlgorithm, digestHex } from '../oci/index.js';
import { defaultDataRoot } from '../util/index.js';
import { snapshotDirName, type SnapshotVariant } from './snapshot-variant.js';

/**
 * The default store root: `<data root>/store`, where the data root is
 * `/var/lib/dockless` for root and `$XDG_DATA_HOME/dockless` (else
 * `~/.local/share/dockless`) for other users.
 */
export function defaultStoreRoot(): string {
  return join(defaultDataRoot(), 'store');
}

/** The name of the completion marker inside a snapshot directory. */
export const SNAPSHOT_MARKER = 'snapshot.json';
/** The directory inside a snapshot directory that holds the layer's files (the overlayfs lower dir). */
export const SNAPSHOT_FS_DIR = 'fs';
/** The name prefix of snapshot directories still being unpacked. */
export const SNAPSHOT_TMP_PREFIX = 'tmp-';

/** The absolute paths of one store. */
export class StorePaths {
  readonly root: string;
  readonly ociLayout: string;
  readonly index: string;
  readonly blobs: string;
  readonly state: string;
  readonly history: string;
  readonly leases: string;
  readonly buildCache: string;
  readonly images: string;
  readonly snapshots: string;
  readonly ingest: string;
  readonly tmp: string;
  readonly trash: string;
  readonly locks: string;
  /** The lock guarding index.json, history.json, leases, blob commits and GC decisions. */
  readonly storeLock: string;

  constructor(root: string) {
    this.root = root;
    this.ociLayout = join(root, 'oci-layout');
    this.index = join(root, 'index.json');
    this.blobs = join(root, 'blobs');
    this.state = join(root, 'dockless');
    this.history = join(this.state, 'history.json');
    this.leases = join(this.state, 'leases');
    this.buildCache = join(this.state, 'build-cache');
    this.images = join(this.state, 'images');
    this.snapshots = join(this.state, 'snapshots');
    this.ingest = join(this.state, 'ingest');
    this.tmp = join(this.state, 'tmp');
    this.trash = join(this.state, 'trash');
    this.locks = join(this.state, 'locks');
    this.storeLock = join(this.locks, 'store.lock');
  }

  /** `blobs/<algorithm>/<hex>` of a digest. */
  blob(digest: Digest): string {
    return join(this.blobs, digestAlgorithm(digest), digestHex(digest));
  }

  /** The directory of the snapshot named by a chainID, in one variant. */
  snapshot(chainId: Digest, variant: SnapshotVariant): string {
    return join(this.snapshots, snapshotDirName(chainId, variant));
  }

  /** The overlayfs lower dir of the snapshot named by a chainID, in one variant. */
  snapshotFs(chainId: Digest, variant: SnapshotVariant): string {
    return join(this.snapshot(chainId, variant), SNAPSHOT_FS_DIR);
  }

  /** The lock serialising the unpacking of one chainID in one variant across processes. */
  snapshotLock(chainId: Digest, variant: SnapshotVariant): string {
    return join(this.locks, `snapshot-${snapshotDirName(chainId, variant)}.lock`);
  }

  /** The cached image record of a manifest. */
  image(manifest: Digest): string {
    return join(this.images, `${digestHex(manifest)}.json`);
  }

  /** A lease's record. */
  lease(id: string): string {
    return join(this.leases, `${id}.json`);
  }
}
