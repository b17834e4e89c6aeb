/**
 * dockless: Docker as an embeddable TypeScript library. Layered images,
 * builds with a cache, pull/push and isolated containers, with no daemon.
 *
 * @packageDocumentation
 */
export {
  AbortError,
  AlreadyExistsError,
  DigestMismatchError,
  DocklessError,
  HelperError,
  InvalidArgumentError,
  InvalidStateError,
  IOError,
  NotFoundError,
  PermissionError,
  UnsafeContentError,
} from './errors.js';
export type { DigestMismatchDetails, DocklessErrorOptions, HelperErrorDetails, IOErrorDetails } from './errors.js';
export { Runtime } from './runtime/runtime.js';
export type { LaunchOptions, RuntimeOptions } from './runtime/runtime.js';
export { Container } from './runtime/container.js';
export type {
  ContainerInfo,
  ContainerLogs,
  ContainerStatus,
  ExitStatus,
  RemoveOptions,
  StopOptions,
  WaitOptions,
} from './runtime/container.js';
export type { ContainerInspect, InspectConfig, InspectHostConfig, InspectMount, InspectState } from './runtime/inspect.js';
export type { ContainerProcess } from './runtime/top.js';
export type { CopyInOptions, CopyOutOptions } from './runtime/container-files.js';
export type { BindMount, ContainerSpec, MountSpec, StdioMode, TmpfsMount } from './runtime/spec.js';
export type { Rlimit, RlimitName } from './runtime/spec.js';
export type {
  SeccompAction,
  SeccompArch,
  SeccompArchMap,
  SeccompArg,
  SeccompFilter,
  SeccompFlag,
  SeccompOperator,
  SeccompProfile,
  SeccompSetting,
  SeccompSyscall,
  SeccompValue,
} from './runtime/seccomp/profile.js';
export {
  parseSeccompProfile,
  SECCOMP_ACTIONS,
  SECCOMP_ARCHES,
  SECCOMP_FLAGS,
  SECCOMP_OPERATORS,
  seccompUnconfined,
} from './runtime/seccomp/profile.js';
export type { ContainerResources, ContainerStats } from './runtime/cgroups/resources.js';
export type { IdMap, UsernsSetting } from './runtime/userns.js';
export { AUTO_USERNS_BASE, AUTO_USERNS_SIZE, AUTO_USERNS_USER } from './runtime/userns.js';
export { DEFAULT_HOST_BINARIES, rootfsFromHost } from './runtime/host-rootfs.js';
export type { HostRootfs, HostRootfsOptions } from './runtime/host-rootfs.js';
export * from './store/index.js';
export type {
  Annotations,
  ContainerConfig,
  Descriptor,
  HealthConfig,
  HistoryEntry,
  ImageConfig,
  ImageIndex,
  ImageManifest,
  Platform,
  RootFs,
} from './oci/types.js';
export {
  ANNOTATION_AUTHORS,
  ANNOTATION_BASE_DIGEST,
  ANNOTATION_BASE_NAME,
  ANNOTATION_CONTAINERD_IMAGE_NAME,
  ANNOTATION_CREATED,
  ANNOTATION_DESCRIPTION,
  ANNOTATION_DOCUMENTATION,
  ANNOTATION_LICENSES,
  ANNOTATION_REF_NAME,
  ANNOTATION_REVISION,
  ANNOTATION_SOURCE,
  ANNOTATION_TITLE,
  ANNOTATION_URL,
  ANNOTATION_VENDOR,
  ANNOTATION_VERSION,
} from './oci/types.js';
export {
  MEDIA_TYPE_DOCKER_CONFIG,
  MEDIA_TYPE_DOCKER_LAYER,
  MEDIA_TYPE_DOCKER_LAYER_FOREIGN,
  MEDIA_TYPE_DOCKER_LAYER_FOREIGN_GZIP,
  MEDIA_TYPE_DOCKER_LAYER_GZIP,
  MEDIA_TYPE_DOCKER_LAYER_ZSTD,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_DOCKER_MANIFEST_SCHEMA1_SIGNED,
  MEDIA_TYPE_OCI_CONFIG,
  MEDIA_TYPE_OCI_EMPTY,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_LAYER,
  MEDIA_TYPE_OCI_LAYER_GZIP,
  MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE,
  MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_GZIP,
  MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_ZSTD,
  MEDIA_TYPE_OCI_MANIFEST,
} from './oci/media-types.js';
export type { Digest, DigestAlgorithm } from './oci/digest.js';
export { parseReference, Reference } from './oci/reference.js';
export type { ParseReferenceOptions, ReferenceParts } from './oci/reference.js';
export type {
  ArchiveProgress,
  ExportFormat,
  ExportOptions,
  ExportResult,
  ImportedImage,
  ImportFormat,
  ImportOptions,
} from './transfer/archive/index.js';
export { UnavailableError } from './errors.js';
export type { UnavailableErrorDetails } from './errors.js';
export type {
  PullLayerState,
  PullOptions,
  PullProgress,
  PullResult,
  PushBlobState,
  PushOptions,
  PushProgress,
  PushResult,
  RegistryCredentials,
} from './transfer/types.js';
export { BuildError } from './errors.js';
export type { BuildErrorDetails } from './errors.js';
export { LayerBuilder, commitContainer, importRootfs, parseDockerfile } from './builder/index.js';
export type {
  AddStepOptions,
  BuildProgress,
  BuildResult,
  BuildSettings,
  BuildStepInfo,
  CommitOptions,
  CommitResult,
  CopyStepOptions,
  DockerfileBuildOptions,
  DockerfileHeredoc,
  DockerfileInstruction,
  DockerfileStage,
  HealthcheckOptions,
  ImportRootfsOptions,
  ImportRootfsResult,
  LayerBuilderOptions,
  ParsedDockerfile,
  RunStepOptions,
  StepLayer,
} from './builder/index.js';
