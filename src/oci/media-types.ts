/**
 * Media types of the OCI image specification and of Docker's image manifest
 * v2 schema 2, and helpers that classify them.
 *
 * A media type is compared on its base form: parameters (`; charset=utf-8`,
 * as a registry's `Content-Type` may carry) and surrounding whitespace are
 * ignored by every helper here.
 *
 * @module
 */

import { InvalidArgumentError } from '../errors.js';

/** An OCI image manifest. */
export const MEDIA_TYPE_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
/** An OCI image index (a list of manifests, usually one per platform). */
export const MEDIA_TYPE_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
/** An OCI image configuration. */
export const MEDIA_TYPE_OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
/** An uncompressed OCI layer tar. */
export const MEDIA_TYPE_OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';
/** A gzip-compressed OCI layer tar. */
export const MEDIA_TYPE_OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
/** A zstd-compressed OCI layer tar. */
export const MEDIA_TYPE_OCI_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
/** An uncompressed OCI layer that must not be pushed to other registries (deprecated by OCI 1.1, still met). */
export const MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE =
  'application/vnd.oci.image.layer.nondistributable.v1.tar';
/** A gzip-compressed non-distributable OCI layer. */
export const MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_GZIP =
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip';
/** A zstd-compressed non-distributable OCI layer. */
export const MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_ZSTD =
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd';
/** The OCI 1.1 empty descriptor's media type: the two-byte blob `{}`. */
export const MEDIA_TYPE_OCI_EMPTY = 'application/vnd.oci.empty.v1+json';

/** A Docker image manifest, v2 schema 2. */
export const MEDIA_TYPE_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
/** A Docker manifest list (Docker's counterpart of an OCI image index). */
export const MEDIA_TYPE_DOCKER_MANIFEST_LIST =
  'application/vnd.docker.distribution.manifest.list.v2+json';
/** A signed Docker v2 schema 1 manifest; obsolete, recognised only to be refused clearly. */
export const MEDIA_TYPE_DOCKER_MANIFEST_SCHEMA1_SIGNED =
  'application/vnd.docker.distribution.manifest.v1+prettyjws';
/** A Docker image configuration. */
export const MEDIA_TYPE_DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
/** A gzip-compressed Docker layer, the usual layer type of Docker images. */
export const MEDIA_TYPE_DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
/** An uncompressed Docker layer, as `docker save` archives hold them. */
export const MEDIA_TYPE_DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar';
/** A zstd-compressed Docker layer. */
export const MEDIA_TYPE_DOCKER_LAYER_ZSTD = 'application/vnd.docker.image.rootfs.diff.tar.zstd';
/** A gzip-compressed foreign Docker layer (fetched from its `urls`, e.g. Windows base layers). */
export const MEDIA_TYPE_DOCKER_LAYER_FOREIGN_GZIP =
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';
/** An uncompressed foreign Docker layer. */
export const MEDIA_TYPE_DOCKER_LAYER_FOREIGN = 'application/vnd.docker.image.rootfs.foreign.diff.tar';

/** How a layer blob is compressed. */
export type LayerCompression = 'none' | 'gzip' | 'zstd';

const LAYER_COMPRESSION: ReadonlyMap<string, LayerCompression> = new Map([
  [MEDIA_TYPE_OCI_LAYER, 'none'],
  [MEDIA_TYPE_OCI_LAYER_GZIP, 'gzip'],
  [MEDIA_TYPE_OCI_LAYER_ZSTD, 'zstd'],
  [MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE, 'none'],
  [MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_GZIP, 'gzip'],
  [MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_ZSTD, 'zstd'],
  [MEDIA_TYPE_DOCKER_LAYER, 'none'],
  [MEDIA_TYPE_DOCKER_LAYER_GZIP, 'gzip'],
  [MEDIA_TYPE_DOCKER_LAYER_ZSTD, 'zstd'],
  [MEDIA_TYPE_DOCKER_LAYER_FOREIGN, 'none'],
  [MEDIA_TYPE_DOCKER_LAYER_FOREIGN_GZIP, 'gzip'],
]);

const NONDISTRIBUTABLE: ReadonlySet<string> = new Set([
  MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE,
  MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_GZIP,
  MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_ZSTD,
  MEDIA_TYPE_DOCKER_LAYER_FOREIGN,
  MEDIA_TYPE_DOCKER_LAYER_FOREIGN_GZIP,
]);

/**
 * The media type without parameters or surrounding whitespace.
 *
 * @example
 * baseMediaType('application/vnd.oci.image.manifest.v1+json; charset=utf-8');
 * // 'application/vnd.oci.image.manifest.v1+json'
 */
export function baseMediaType(mediaType: string): string {
  const semicolon = mediaType.indexOf(';');
  return (semicolon === -1 ? mediaType : mediaType.slice(0, semicolon)).trim();
}

/** Whether the media type is a single-image manifest (OCI image manifest or Docker schema 2 manifest). */
export function isManifestMediaType(mediaType: string): boolean {
  const base = baseMediaType(mediaType);
  return base === MEDIA_TYPE_OCI_MANIFEST || base === MEDIA_TYPE_DOCKER_MANIFEST;
}

/** Whether the media type is a list of manifests (OCI image index or Docker manifest list). */
export function isIndexMediaType(mediaType: string): boolean {
  const base = baseMediaType(mediaType);
  return base === MEDIA_TYPE_OCI_INDEX || base === MEDIA_TYPE_DOCKER_MANIFEST_LIST;
}

/** Whether the media type is an image configuration (OCI or Docker). */
export function isConfigMediaType(mediaType: string): boolean {
  const base = baseMediaType(mediaType);
  return base === MEDIA_TYPE_OCI_CONFIG || base === MEDIA_TYPE_DOCKER_CONFIG;
}

/** Whether the media type is a filesystem layer of any kind this module knows (OCI or Docker, any compression). */
export function isLayerMediaType(mediaType: string): boolean {
  return LAYER_COMPRESSION.has(baseMediaType(mediaType));
}

/**
 * Whether the media type is a layer that must not be pushed to another
 * registry: OCI non-distributable layers and Docker foreign layers.
 */
export function isNondistributableMediaType(mediaType: string): boolean {
  return NONDISTRIBUTABLE.has(baseMediaType(mediaType));
}

/**
 * The compression of a layer blob, read from its media type.
 *
 * @throws {InvalidArgumentError} when the media type is not a known layer type.
 * @example
 * layerCompression('application/vnd.docker.image.rootfs.diff.tar.gzip'); // 'gzip'
 * layerCompression('application/vnd.oci.image.layer.v1.tar');            // 'none'
 */
export function layerCompression(mediaType: string): LayerCompression {
  const compression = LAYER_COMPRESSION.get(baseMediaType(mediaType));
  if (compression === undefined) {
    throw new InvalidArgumentError(`layer compression: unknown layer media type "${mediaType}"`);
  }
  return compression;
}

/**
 * The media type for a (distributable) layer with the given compression.
 *
 * @param compression how the layer blob is compressed.
 * @param flavour `'oci'` for OCI media types, `'docker'` for Docker schema 2 ones. @default 'oci'
 * @throws {InvalidArgumentError} when called (from untyped code) with an unknown compression or flavour.
 * @example
 * layerMediaType('gzip');           // 'application/vnd.oci.image.layer.v1.tar+gzip'
 * layerMediaType('gzip', 'docker'); // 'application/vnd.docker.image.rootfs.diff.tar.gzip'
 */
export function layerMediaType(
  compression: LayerCompression,
  flavour: 'oci' | 'docker' = 'oci',
): string {
  const byCompression = Object.hasOwn(LAYER_MEDIA_TYPES, flavour) ? LAYER_MEDIA_TYPES[flavour] : undefined;
  const mediaType =
    byCompression && Object.hasOwn(byCompression, compression) ? byCompression[compression] : undefined;
  if (mediaType === undefined) {
    throw new InvalidArgumentError(
      `layer media type: unknown compression "${compression}" or flavour "${flavour}"`,
    );
  }
  return mediaType;
}

const LAYER_MEDIA_TYPES: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  oci: { none: MEDIA_TYPE_OCI_LAYER, gzip: MEDIA_TYPE_OCI_LAYER_GZIP, zstd: MEDIA_TYPE_OCI_LAYER_ZSTD },
  docker: {
    none: MEDIA_TYPE_DOCKER_LAYER,
    gzip: MEDIA_TYPE_DOCKER_LAYER_GZIP,
    zstd: MEDIA_TYPE_DOCKER_LAYER_ZSTD,
  },
};

/**
 * Every media type above by a short name (`MediaType.OCI_LAYER_GZIP`): the
 * public surface groups them so, rather than exporting each constant.
 */
export const MediaType = Object.freeze({
  /** An OCI image manifest. */
  OCI_MANIFEST: MEDIA_TYPE_OCI_MANIFEST,
  /** An OCI image index (a list of manifests, usually one per platform). */
  OCI_INDEX: MEDIA_TYPE_OCI_INDEX,
  /** An OCI image configuration. */
  OCI_CONFIG: MEDIA_TYPE_OCI_CONFIG,
  /** An uncompressed OCI layer tar. */
  OCI_LAYER: MEDIA_TYPE_OCI_LAYER,
  /** A gzip-compressed OCI layer tar. */
  OCI_LAYER_GZIP: MEDIA_TYPE_OCI_LAYER_GZIP,
  /** A zstd-compressed OCI layer tar. */
  OCI_LAYER_ZSTD: MEDIA_TYPE_OCI_LAYER_ZSTD,
  /** An uncompressed OCI layer that must not be pushed to other registries (deprecated by OCI 1.1, still met). */
  OCI_LAYER_NONDISTRIBUTABLE: MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE,
  /** A gzip-compressed non-distributable OCI layer. */
  OCI_LAYER_NONDISTRIBUTABLE_GZIP: MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_GZIP,
  /** A zstd-compressed non-distributable OCI layer. */
  OCI_LAYER_NONDISTRIBUTABLE_ZSTD: MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_ZSTD,
  /** The OCI 1.1 empty descriptor's media type: the two-byte blob `{}`. */
  OCI_EMPTY: MEDIA_TYPE_OCI_EMPTY,
  /** A Docker image manifest, v2 schema 2. */
  DOCKER_MANIFEST: MEDIA_TYPE_DOCKER_MANIFEST,
  /** A Docker manifest list (Docker's counterpart of an OCI image index). */
  DOCKER_MANIFEST_LIST: MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  /** A signed Docker v2 schema 1 manifest; obsolete, recognised only to be refused clearly. */
  DOCKER_MANIFEST_SCHEMA1_SIGNED: MEDIA_TYPE_DOCKER_MANIFEST_SCHEMA1_SIGNED,
  /** A Docker image configuration. */
  DOCKER_CONFIG: MEDIA_TYPE_DOCKER_CONFIG,
  /** A gzip-compressed Docker layer, the usual layer type of Docker images. */
  DOCKER_LAYER_GZIP: MEDIA_TYPE_DOCKER_LAYER_GZIP,
  /** An uncompressed Docker layer, as `docker save` archives hold them. */
  DOCKER_LAYER: MEDIA_TYPE_DOCKER_LAYER,
  /** A zstd-compressed Docker layer. */
  DOCKER_LAYER_ZSTD: MEDIA_TYPE_DOCKER_LAYER_ZSTD,
  /** A gzip-compressed foreign Docker layer (fetched from its `urls`, e.g. Windows base layers). */
  DOCKER_LAYER_FOREIGN_GZIP: MEDIA_TYPE_DOCKER_LAYER_FOREIGN_GZIP,
  /** An uncompressed foreign Docker layer. */
  DOCKER_LAYER_FOREIGN: MEDIA_TYPE_DOCKER_LAYER_FOREIGN,
} as const);
