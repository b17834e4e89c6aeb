/**
 * The options, results and progress events of {@link ImageStore.pull} and
 * {@link ImageStore.push}.
 *
 * @module
 */

import type { ProgressBase } from '../util/index.js';
import type { Descriptor, Digest, Platform } from '../oci/index.js';

import type {
  ContentReader,
  ContentWriter,
  ImageReader,
  ImageWriter,
  Ingester,
  LeaseManager,
  Snapshotter,
} from '../store/index.js';
import type { RegistryCredentials } from './auth-config.js';

export type { RegistryCredentials } from './auth-config.js';

/** What transfer needs of a store: its interfaces, never its internals or its layout. */
export type TransferStore = ContentReader &
  ContentWriter &
  ImageReader &
  ImageWriter &
  LeaseManager &
  Snapshotter &
  Ingester;

/** Options of {@link ImageStore.pull}. */
export interface PullOptions {
  /**
   * The platform to pull from a multi-platform image (an image index or
   * Docker manifest list): a {@link Platform} or Docker's `os/arch[/variant]`
   * string. Ignored for a single-platform image.
   * @default this host's platform
   */
  platform?: Platform | string;
  /**
   * How many layers are downloaded (and unpacked) at once.
   * @default 3
   */
  concurrency?: number;
  /**
   * Credentials for the registry. When absent, the `auths` of
   * `$REGISTRY_AUTH_FILE`, `${XDG_RUNTIME_DIR}/containers/auth.json`,
   * `~/.config/containers/auth.json` and `~/.docker/config.json` are used, in
   * that order; else access is anonymous.
   */
  credentials?: RegistryCredentials;
  /**
   * Registries (`host` or `host:port`) that may be reached over plain HTTP,
   * or over HTTPS with a certificate that does not verify, as Docker's
   * `insecure-registries`. Loopback registries (`localhost`, `127.0.0.0/8`,
   * `[::1]`) always may.
   * @default []
   */
  insecure?: string[];
  /** Cancels the pull; nothing of it is left in the store. */
  signal?: AbortSignal;
  /** Receives progress events. */
  onProgress?: (event: PullProgress) => void;
}

/** What {@link ImageStore.pull} returns. */
export interface PullResult {
  /** The reference pulled, normalised: `docker.io/library/alpine:3.20`. */
  reference: string;
  /**
   * The digest the reference resolves to on the registry (an index's, for
   * a multi-platform image): pull `name@digest` to get exactly this again.
   */
  digest: Digest;
  /** The media type of what `digest` names. */
  mediaType: string;
  /** The descriptor of the platform's image manifest (equal to `digest`'s unless that is an index). */
  manifest: Descriptor;
  /** The platform of the image pulled, from its config. */
  platform: Platform;
  /** The tag the store now has for it, or `undefined` for a pull by digest. */
  tag?: string;
  /** The compressed bytes downloaded (layers, config, manifests); 0 when everything was present. */
  downloadedBytes: number;
}

/** The state of one layer in a pull. */
export type PullLayerState =
  /** Queued behind other downloads. */
  | 'waiting'
  /** The blob is in the store already: nothing to download. */
  | 'exists'
  /** Bytes are arriving (and being verified and unpacked); reported for each 256 KiB received and at the layer's end. */
  | 'downloading'
  /** The connection failed; trying again from where it stopped. */
  | 'retrying'
  /** Downloaded, verified and unpacked (not yet visible until the whole image is). */
  | 'done';

/** A progress event of {@link ImageStore.pull}. */
export type PullProgress = ProgressBase<'pull'> &
  (
  | {
      /** The manifest is resolved: what will be pulled is known. */
      type: 'resolved';
      /** The reference, normalised. */
      reference: string;
      /** What the reference resolves to on the registry. */
      digest: Digest;
      /** The media type of what `digest` names. */
      mediaType: string;
      /** The platform manifest chosen. */
      manifest: Descriptor;
      /** The number of layers. */
      layers: number;
      /** The compressed size of all layers. */
      size: number;
    }
  | {
      /** A layer changed state or received bytes. */
      type: 'layer';
      /** The layer's position, base layer 0. */
      index: number;
      /** The blob's digest. */
      digest: Digest;
      /** The blob's size. */
      size: number;
      /** Where the layer is. */
      state: PullLayerState;
      /** Bytes downloaded so far. */
      bytes: number;
      /** Why a `retrying` layer is retried. */
      error?: string;
    }
  | {
      /** The image is stored, unpacked and tagged. */
      type: 'done';
      /** The reference, normalised. */
      reference: string;
      /** What the reference resolves to on the registry. */
      digest: Digest;
      /** The compressed bytes downloaded. */
      downloadedBytes: number;
    }
  );

/** Options of {@link ImageStore.push}. */
export interface PushOptions {
  /**
   * Where to push: a reference (`registry.example.com/team/app:1.0`). A
   * reference with a digest and no tag pushes by digest only.
   * @default the image reference given to push
   */
  to?: string;
  /** Credentials for the destination registry; see {@link PullOptions.credentials}. */
  credentials?: RegistryCredentials;
  /**
   * Upload blobs in chunks of this many bytes (`PATCH` requests, then a
   * closing `PUT`), for registries or proxies that limit a request's size.
   * Without it each blob goes in one `PUT`.
   * @default undefined (monolithic uploads)
   */
  chunkSize?: number;
  /** Registries that may be reached over plain HTTP; see {@link PullOptions.insecure}. @default [] */
  insecure?: string[];
  /** How many blobs are uploaded at once. @default 3 */
  concurrency?: number;
  /**
   * For an image index whose manifests are not all in the store (a pull
   * takes one platform), the platform whose manifest is pushed instead of
   * the index.
   * @default this host's platform
   */
  platform?: Platform | string;
  /** Cancels the push. Blobs already uploaded stay on the registry (unreferenced). */
  signal?: AbortSignal;
  /** Receives progress events. */
  onProgress?: (event: PushProgress) => void;
}

/** What {@link ImageStore.push} returns. */
export interface PushResult {
  /** The reference pushed to, normalised: `registry.example.com/team/app:1.0`. */
  reference: string;
  /** The digest of the manifest (or index) pushed: `name@digest` names it on the registry. */
  digest: Digest;
  /** Its media type. */
  mediaType: string;
  /** Its size in bytes. */
  size: number;
  /** The tag pushed, or `undefined` for a push by digest. */
  tag?: string;
  /** The compressed bytes uploaded (blobs skipped or mounted do not count). */
  uploadedBytes: number;
}

/** The state of one blob in a push. */
export type PushBlobState =
  | 'waiting'
  /** The registry has it already (a `HEAD` said so). */
  | 'exists'
  /** Mounted from another repository of the same registry, without uploading. */
  | 'mounted'
  | 'uploading'
  /** The upload failed; starting it again. */
  | 'retrying'
  | 'done';

/** A progress event of {@link ImageStore.push}. */
export type PushProgress = ProgressBase<'push'> &
  (
  | {
      /** A blob changed state or sent bytes. */
      type: 'blob';
      /** The blob's digest. */
      digest: Digest;
      /** The blob's size. */
      size: number;
      /** What the blob is to the image. */
      kind: 'layer' | 'config';
      /** Where the blob is. */
      state: PushBlobState;
      /** Bytes uploaded so far. */
      bytes: number;
      /** The repository a `mounted` blob came from. */
      from?: string;
      /** Why a `retrying` blob is retried. */
      error?: string;
    }
  | {
      /** A manifest (or index) was pushed; the last one is the image's. */
      type: 'manifest';
      /** Its digest. */
      digest: Digest;
      /** Its media type. */
      mediaType: string;
      /** The reference it was pushed under, fully normalised (`registry.example.com/team/app:1.0`, or `…@sha256:…`). */
      reference: string;
    }
  );
