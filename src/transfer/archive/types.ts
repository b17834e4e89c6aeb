/**
 * The option, result and progress types of image import and export
 * ({@link ImageStore.import}, {@link ImageStore.export}).
 *
 * @module
 */

import type { ProgressBase } from '../../util/index.js';
import type { ContainerConfig, Digest, Platform } from '../../oci/index.js';

/**
 * What {@link ImageStore.import} reads:
 *
 * - `'oci'`: an OCI image layout directory (`oci-layout`, `index.json`, `blobs/`);
 * - `'oci-archive'`: a tar of an OCI image layout;
 * - `'docker-archive'`: a `docker save` tarball (`manifest.json`, config, layer tars), the
 *   legacy layout (`<id>/layer.tar`), skopeo's (`<digest>.tar`) and Docker 25+'s (`blobs/sha256/…`);
 * - `'rootfs'`: a plain tar of a root filesystem, as `docker import` takes it: one layer;
 * - `'auto'`: decided from the path: a directory is `'oci'`; a tar (plain, gzip or zstd) whose
 *   first entry is an archive's (`oci-layout`, `index.json`, `manifest.json`, `repositories`,
 *   `blobs/…`, `<64 hex>…`) is read as an archive, and which kind is decided by its contents
 *   (`index.json` and `oci-layout` make it OCI, else `manifest.json` docker-archive); any other
 *   tar is a `'rootfs'`.
 */
export type ImportFormat = 'auto' | 'oci' | 'oci-archive' | 'docker-archive' | 'rootfs';

/** What {@link ImageStore.export} writes; see {@link ExportOptions.format}. */
export type ExportFormat = 'oci' | 'oci-archive' | 'docker-archive';

/**
 * A progress event of an import or export.
 *
 * - `bytes`: bytes of the source read so far (import: of the archive file, compressed as it is
 *   on disk; of the layout's blobs for a directory), or of the output written so far (export);
 *   `total` when known.
 * - `layer`: one more layer blob is in place (stored, or written to the output); `cached` when
 *   the store already had it and nothing was copied. `total` is the number of layers when known
 *   (a tar is read in one pass, before its manifests say which blobs are layers).
 * - `image`: an image is complete (imported and tagged, or written), with its references.
 */
export type ArchiveProgress = ProgressBase<'import' | 'export'> &
  (
  | {
      /** Bytes flowed. */
      type: 'bytes';
      /** Bytes read (import) or written (export) so far. */
      bytes: number;
      /** The bytes there are to read, when known (the size of an archive file). */
      total?: number;
    }
  | {
      /** A layer is in place. */
      type: 'layer';
      /** The layer blob's digest. */
      digest: Digest;
      /** The layer blob's size in bytes. */
      size: number;
      /** How many layers are in place so far, this one included. */
      done: number;
      /** How many layers the image has, when known. */
      total?: number;
      /** True when the layer was there already and nothing was copied. */
      cached: boolean;
    }
  | {
      /** An image is complete. */
      type: 'image';
      /** The digest of the image's manifest (or index). */
      digest: Digest;
      /** The tags it got (import) or was written with (export), full references. */
      references: string[];
    }
  );

/** Options of {@link ImageStore.import}. */
export interface ImportOptions {
  /** What the path holds; see {@link ImportFormat}. @default 'auto' */
  format?: ImportFormat;
  /**
   * A tag (`name[:tag]`) to give the imported image, besides the names the archive carries.
   * Needed for a `'rootfs'` import to be tagged at all. The import fails with an
   * `InvalidArgumentError` (tagging nothing) when the source holds more than one image.
   */
  tag?: string;
  /**
   * The repository a bare tag of an OCI layout belongs to. OCI tools (skopeo's `oci:<dir>:<tag>`)
   * often name a manifest by its tag alone (`org.opencontainers.image.ref.name: 1.0`); with
   * `baseName: 'example.com/app'` that manifest is tagged `example.com/app:1.0`. Without it,
   * such manifests are imported untagged (a full reference in `ref.name` or
   * `io.containerd.image.name` is always used).
   */
  baseName?: string;
  /**
   * Execution defaults of a `'rootfs'` import (Docker's field names: `Cmd`, `Env`, `WorkingDir`,
   * …); {@link ImportOptions.changes} apply on top of them. Refused for other formats.
   * @default {}
   */
  config?: Partial<ContainerConfig>;
  /**
   * Dockerfile instructions applied to the config of a `'rootfs'` import, as
   * `docker import --change` takes them: `CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`, `LABEL`,
   * `ONBUILD`, `STOPSIGNAL`, `USER`, `VOLUME`, `WORKDIR`, e.g. `['ENV DEBUG=1', 'CMD ["/app"]']`.
   * Refused for other formats.
   * @default []
   */
  changes?: readonly string[];
  /** The commit message of a `'rootfs'` import, the comment of its history entry (`docker import -m`). */
  message?: string;
  /**
   * The platform recorded in the config of a `'rootfs'` import (`docker import --platform`).
   * @default this host's
   */
  platform?: Platform | string;
  /**
   * How an OCI layout directory's blobs enter the store. Each is read once,
   * verified and (a layer of an image's manifest) unpacked in the same pass,
   * as a pull does, and reflinked into the store where the filesystem can
   * clone files. With `link: true`, where it cannot, a blob on the store's
   * filesystem that belongs to the calling user and that no one else may
   * write becomes the store's by a hard link: the layout's file is then
   * shared with the store, so it must not be rewritten in place (tools that
   * write layouts replace files, they do not rewrite them). `false` copies
   * such blobs. Archives are always copied.
   * @default true
   */
  link?: boolean;
  /** Cancels the import: nothing is tagged, and what was stored stays only until GC. */
  signal?: AbortSignal;
  /** Receives progress events. */
  onProgress?: (event: ArchiveProgress) => void;
}

/** One image {@link ImageStore.import} imported: one entry per tag it got, or one without `reference` when it got none. */
export interface ImportedImage {
  /** The tag, fully normalised (`docker.io/library/alpine:latest`); absent for an untagged image. */
  reference?: string;
  /** The digest of the image's manifest (or index, for a multi-platform image). */
  digest: Digest;
  /** The media type of what `digest` names. */
  mediaType: string;
}

/** Options of {@link ImageStore.export}. */
export interface ExportOptions {
  /**
   * What to write at the path:
   *
   * - `'oci'`: an OCI image layout directory. A new one (or an empty directory) is written
   *   whole and moved into place; an existing layout gets the images added, replacing
   *   manifests of the same name, as `skopeo copy … oci:<dir>:<name>` does.
   * - `'oci-archive'`: a tar of an OCI image layout.
   * - `'docker-archive'`: a `docker save` tarball, which `docker load` and `podman load` read:
   *   `manifest.json` (`Config`, `RepoTags`, `Layers`), `repositories`, the config as
   *   `<hex>.json`, each layer as an uncompressed `<diffID hex>/layer.tar` (gzip and zstd
   *   layers are decompressed while written, and checked against their diffIDs). One platform
   *   of a multi-platform image: {@link ExportOptions.platform}.
   *
   * The archives are written to a temporary file beside the path and renamed into place, so
   * the path never holds a partial archive.
   * @default 'docker-archive'
   */
  format?: ExportFormat;
  /**
   * The `org.opencontainers.image.ref.name` written for each tag in an OCI layout:
   * `'reference'`, the full reference (`docker.io/library/alpine:3.20`, as in the store's own
   * layout), or `'tag'`, only the tag (`3.20`, as Docker and containerd write it; skopeo then
   * addresses it as `oci:<dir>:3.20`). The full reference is always in `io.containerd.image.name`.
   * @default 'reference'
   */
  refName?: 'reference' | 'tag';
  /** The platform exported from a multi-platform image to a docker-archive. @default this host's */
  platform?: Platform | string;
  /** Cancels the export; nothing is left at the path. */
  signal?: AbortSignal;
  /** Receives progress events. */
  onProgress?: (event: ArchiveProgress) => void;
}

/** What {@link ImageStore.export} wrote. */
export interface ExportResult {
  /** The path written (absolute). */
  path: string;
  /** The format written. */
  format: ExportFormat;
  /** The images written, one per distinct image. */
  images: Array<{
    /** The digest of the manifest (or index) written; for a docker-archive, the platform's manifest. */
    digest: Digest;
    /** The tags written for it, full references. */
    references: string[];
  }>;
  /** Bytes written: the archive's size, or the bytes of the blobs and documents written to a layout. */
  bytes: number;
}
