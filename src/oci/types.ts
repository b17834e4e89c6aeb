/**
 * The JSON documents of the OCI image specification (v1.1) and of Docker's
 * image manifest v2 schema 2, as TypeScript types, plus the annotation keys and
 * the OCI image layout's fixed names.
 *
 * The types describe the shape of well-formed documents; parsed JSON is
 * untrusted until checked, and its digests, sizes and media types are verified
 * by whoever reads it. Docker documents share these shapes: a Docker schema 2
 * manifest is an {@link ImageManifest} with its `mediaType` set, a Docker
 * manifest list is an {@link ImageIndex}, a Docker image config is an
 * {@link ImageConfig}.
 *
 * @module
 */

import type { Digest } from './digest.js';
import { MEDIA_TYPE_OCI_EMPTY } from './media-types.js';

/** String-to-string metadata on descriptors, manifests and indexes. Keys are reverse-domain names. */
export type Annotations = Record<string, string>;

/**
 * The platform an image runs on, as in an index entry or an image config.
 * Values use Go's names: `os` is `linux`, `windows`, …; `architecture` is
 * `amd64`, `arm64`, `arm`, `386`, `ppc64le`, `s390x`, `riscv64`, ….
 */
export interface Platform {
  /** The CPU architecture, e.g. `amd64` or `arm64`. */
  architecture: string;
  /** The operating system, e.g. `linux`. */
  os: string;
  /** The operating system version (Windows build numbers). */
  'os.version'?: string;
  /** Operating system features required (Windows). */
  'os.features'?: string[];
  /** The CPU variant, e.g. `v7` for `arm` or `v8` for `arm64`. */
  variant?: string;
  /** Reserved by the OCI spec; unused. */
  features?: string[];
}

/**
 * A *descriptor*: a typed, sized pointer to a blob by its digest. Every
 * reference from one OCI document to another is a descriptor.
 */
export interface Descriptor {
  /** The media type of the blob it points at, e.g. `MediaType.OCI_LAYER_GZIP`; see {@link MediaType}. */
  mediaType: string;
  /** The digest of the blob's exact bytes. */
  digest: Digest;
  /** The blob's length in bytes. */
  size: number;
  /** Other places the blob may be fetched from (foreign / non-distributable layers). */
  urls?: string[];
  /** Arbitrary metadata, e.g. `AnnotationKey.REF_NAME` in an OCI layout's `index.json`. */
  annotations?: Annotations;
  /** The blob's content inlined as base64 (OCI 1.1); must match `digest` and `size`. */
  data?: string;
  /** The platform the manifest is for, on entries of an image index. */
  platform?: Platform;
  /** The artifact type of the manifest pointed at, when it is an artifact (OCI 1.1). */
  artifactType?: string;
}

/** An image manifest: one image for one platform, a config and an ordered list of layers. */
export interface ImageManifest {
  /** Always 2. */
  schemaVersion: 2;
  /** `application/vnd.oci.image.manifest.v1+json` or Docker's schema 2 type; optional in OCI, required by Docker. */
  mediaType?: string;
  /** The type of artifact, when the manifest is an artifact rather than an image (OCI 1.1). */
  artifactType?: string;
  /** The image configuration blob. */
  config: Descriptor;
  /** The layers, base layer first. */
  layers: Descriptor[];
  /** The manifest this one refers to, e.g. the image a signature is for (OCI 1.1). */
  subject?: Descriptor;
  /** Arbitrary metadata. */
  annotations?: Annotations;
}

/** An image index: a list of manifests, usually the same image for several platforms. */
export interface ImageIndex {
  /** Always 2. */
  schemaVersion: 2;
  /** `application/vnd.oci.image.index.v1+json` or Docker's manifest list type. */
  mediaType?: string;
  /** The type of artifact, when the index is an artifact (OCI 1.1). */
  artifactType?: string;
  /** The manifests (or nested indexes), each with its `platform` when it is platform-specific. */
  manifests: Descriptor[];
  /** The manifest this one refers to (OCI 1.1). */
  subject?: Descriptor;
  /** Arbitrary metadata. */
  annotations?: Annotations;
}

/**
 * A healthcheck, as Docker writes it into an image config. Durations are in
 * nanoseconds.
 */
export interface HealthConfig {
  /**
   * The test: `[]` inherits, `["NONE"]` disables, `["CMD", arg…]` runs a command,
   * `["CMD-SHELL", command]` runs it with the image's shell.
   */
  Test?: string[];
  /** Time between checks, in nanoseconds; 0 inherits. */
  Interval?: number;
  /** Time a check may take before it counts as failed, in nanoseconds; 0 inherits. */
  Timeout?: number;
  /** Start-up time during which failures do not count, in nanoseconds; 0 inherits. */
  StartPeriod?: number;
  /** Time between checks during the start period, in nanoseconds; 0 inherits. */
  StartInterval?: number;
  /** Consecutive failures needed to report unhealthy; 0 inherits. */
  Retries?: number;
}

/**
 * The execution defaults of an image: the `config` member of an
 * {@link ImageConfig}. Field names are Docker's (PascalCase). Docker writes
 * `null` for some empty fields, hence the `| null`s.
 */
export interface ContainerConfig {
  /** The user (and group) the process runs as: `name`, `uid`, `name:group` or `uid:gid`. */
  User?: string;
  /** Ports the image listens on, as keys `port/proto` (`80/tcp`) with empty objects as values. */
  ExposedPorts?: Record<string, Record<string, never>>;
  /** Environment, each entry `NAME=value`. */
  Env?: string[] | null;
  /** The executable and its leading arguments. */
  Entrypoint?: string[] | null;
  /** The default arguments (to the entrypoint, or the command when there is none). */
  Cmd?: string[] | null;
  /** Paths that are volumes, as keys with empty objects as values. */
  Volumes?: Record<string, Record<string, never>> | null;
  /** The working directory of the process; absolute. */
  WorkingDir?: string;
  /** Image labels. */
  Labels?: Record<string, string> | null;
  /** The signal that stops the container, e.g. `SIGTERM` or `15`. */
  StopSignal?: string;
  /** Whether `Cmd` is already escaped for Windows' command line (Windows only). */
  ArgsEscaped?: boolean;
  /** The healthcheck (Docker extension). */
  Healthcheck?: HealthConfig;
  /** The shell for shell-form commands (Docker extension); default {@link DEFAULT_SHELL}. */
  Shell?: string[];
  /** Build instructions that run when this image is used as a base (Docker extension). */
  OnBuild?: string[] | null;
}

/** The layers of an image's root filesystem, by diffID. */
export interface RootFs {
  /** Always `layers`. */
  type: 'layers';
  /** The digest of each layer's *uncompressed* tar (its *diffID*), base layer first. */
  diff_ids: Digest[];
}

/** One step in the history of an image. */
export interface HistoryEntry {
  /** When the step was made, RFC 3339. */
  created?: string;
  /** The command that made the step, e.g. `/bin/sh -c #(nop)  CMD ["sh"]`. */
  created_by?: string;
  /** Who made the step. */
  author?: string;
  /** A free-form comment. */
  comment?: string;
  /** True when the step made no layer (it changed only the config); such steps have no entry in `rootfs.diff_ids`. */
  empty_layer?: boolean;
}

/** The image configuration blob: platform, execution defaults, layers (by diffID) and history. */
export interface ImageConfig {
  /** When the image was created, RFC 3339. */
  created?: string;
  /** Who created the image. */
  author?: string;
  /** The CPU architecture the binaries are built for, e.g. `amd64`. */
  architecture: string;
  /** The operating system, e.g. `linux`. */
  os: string;
  /** The operating system version (Windows). */
  'os.version'?: string;
  /** Operating system features required (Windows). */
  'os.features'?: string[];
  /** The CPU variant, e.g. `v8` for `arm64`. */
  variant?: string;
  /** The defaults a container started from the image uses. */
  config?: ContainerConfig;
  /** The image's layers, by diffID. */
  rootfs: RootFs;
  /** The steps that made the image, oldest first; one per layer plus one per `empty_layer` step. */
  history?: HistoryEntry[];
}

/** The `oci-layout` file at the root of an OCI image layout. */
export interface OciLayout {
  /** The layout version; `1.0.0`. */
  imageLayoutVersion: string;
}

/** The name of the file marking a directory as an OCI image layout. */
export const OCI_LAYOUT_FILE = 'oci-layout';
/** The image layout version dockless writes. */
export const OCI_LAYOUT_VERSION = '1.0.0';
/** The name of an OCI image layout's top-level index. */
export const OCI_LAYOUT_INDEX_FILE = 'index.json';
/** The directory of an OCI image layout holding `<algorithm>/<hex>` blobs. */
export const OCI_LAYOUT_BLOBS_DIR = 'blobs';

/** The name (usually the tag, or a full reference) of a manifest in an OCI layout's `index.json`. */
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
/** When the image was built, RFC 3339. */
export const ANNOTATION_CREATED = 'org.opencontainers.image.created';
/** Contact details of the people or organisation responsible for the image. */
export const ANNOTATION_AUTHORS = 'org.opencontainers.image.authors';
/** A URL for more information about the image. */
export const ANNOTATION_URL = 'org.opencontainers.image.url';
/** A URL of documentation for the image. */
export const ANNOTATION_DOCUMENTATION = 'org.opencontainers.image.documentation';
/** A URL of the source the image was built from. */
export const ANNOTATION_SOURCE = 'org.opencontainers.image.source';
/** The version of the packaged software. */
export const ANNOTATION_VERSION = 'org.opencontainers.image.version';
/** The source control revision the image was built from. */
export const ANNOTATION_REVISION = 'org.opencontainers.image.revision';
/** The distributing entity. */
export const ANNOTATION_VENDOR = 'org.opencontainers.image.vendor';
/** The licence(s) of the software, as an SPDX expression. */
export const ANNOTATION_LICENSES = 'org.opencontainers.image.licenses';
/** A human-readable title. */
export const ANNOTATION_TITLE = 'org.opencontainers.image.title';
/** A human-readable description. */
export const ANNOTATION_DESCRIPTION = 'org.opencontainers.image.description';
/** The digest of the image this one was built on. */
export const ANNOTATION_BASE_DIGEST = 'org.opencontainers.image.base.digest';
/** The reference of the image this one was built on. */
export const ANNOTATION_BASE_NAME = 'org.opencontainers.image.base.name';
/**
 * The full reference of a manifest in an OCI layout, as containerd and
 * `docker save` write it beside `org.opencontainers.image.ref.name`.
 */
export const ANNOTATION_CONTAINERD_IMAGE_NAME = 'io.containerd.image.name';

/** The OCI 1.1 empty descriptor: the two-byte JSON blob `{}`, used as the config of artifacts. */
export const EMPTY_JSON_DESCRIPTOR: Readonly<Descriptor> = Object.freeze({
  mediaType: MEDIA_TYPE_OCI_EMPTY,
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
  data: 'e30=',
});

/** The shell of shell-form commands (`RUN`, `CMD`, `ENTRYPOINT`, …) when an image sets no `Shell`, as in Docker. */
export const DEFAULT_SHELL: readonly string[] = Object.freeze(['/bin/sh', '-c']);

/**
 * Every annotation key above by a short name (`AnnotationKey.REF_NAME`): the
 * public surface groups them so, rather than exporting each constant.
 */
export const AnnotationKey = Object.freeze({
  /** The name (usually the tag, or a full reference) of a manifest in an OCI layout's `index.json`. */
  REF_NAME: ANNOTATION_REF_NAME,
  /** When the image was built, RFC 3339. */
  CREATED: ANNOTATION_CREATED,
  /** Contact details of the people or organisation responsible for the image. */
  AUTHORS: ANNOTATION_AUTHORS,
  /** A URL for more information about the image. */
  URL: ANNOTATION_URL,
  /** A URL of documentation for the image. */
  DOCUMENTATION: ANNOTATION_DOCUMENTATION,
  /** A URL of the source the image was built from. */
  SOURCE: ANNOTATION_SOURCE,
  /** The version of the packaged software. */
  VERSION: ANNOTATION_VERSION,
  /** The source control revision the image was built from. */
  REVISION: ANNOTATION_REVISION,
  /** The distributing entity. */
  VENDOR: ANNOTATION_VENDOR,
  /** The licence(s) of the software, as an SPDX expression. */
  LICENSES: ANNOTATION_LICENSES,
  /** A human-readable title. */
  TITLE: ANNOTATION_TITLE,
  /** A human-readable description. */
  DESCRIPTION: ANNOTATION_DESCRIPTION,
  /** The digest of the image this one was built on. */
  BASE_DIGEST: ANNOTATION_BASE_DIGEST,
  /** The reference of the image this one was built on. */
  BASE_NAME: ANNOTATION_BASE_NAME,
  /**
   * The full reference of a manifest in an OCI layout, as containerd and
   * `docker save` write it beside `org.opencontainers.image.ref.name`.
   */
  CONTAINERD_IMAGE_NAME: ANNOTATION_CONTAINERD_IMAGE_NAME,
} as const);
