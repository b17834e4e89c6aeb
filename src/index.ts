/**
 * dockless: Docker as an embeddable TypeScript library. Layered images,
 * builds with a cache, pull/push and isolated containers, with no daemon.
 *
 * The public surface, in groups: errors; containers (`Runtime`); images
 * (`ImageStore`, pull/push, archives); builds (`LayerBuilder`); the OCI data
 * model (references, documents, media types and annotation keys).
 *
 * @packageDocumentation
 */

// Errors: one base class with a stable `code`, one subclass per kind of failure.
export {
  AbortError,
  AlreadyExistsError,
  BuildError,
  DigestMismatchError,
  DocklessError,
  HelperError,
  InvalidArgumentError,
  InvalidStateError,
  IOError,
  NotFoundError,
  NotReadyError,
  OutputLimitError,
  PermissionError,
  UnavailableError,
  UnhealthyError,
  UnsafeContentError,
  UnsupportedError,
} from './errors.js';
export type {
  BuildErrorDetails,
  DigestMismatchDetails,
  DocklessErrorOptions,
  HelperErrorDetails,
  IOErrorDetails,
  NotReadyErrorDetails,
  OutputLimitErrorDetails,
  UnavailableErrorDetails,
  UnhealthyErrorDetails,
  UnsupportedErrorDetails,
} from './errors.js';

// Containers.
export {
  AUTO_USERNS_BASE,
  AUTO_USERNS_SIZE,
  AUTO_USERNS_USER,
  Container,
  DEFAULT_HOST_BINARIES,
  DEFAULT_MAX_BUFFER,
  ExecProcess,
  parseSeccompProfile,
  // Logs, TTY, attach.
  Attachment,
  ContainerLogReader,
  ContainerSnapshot,
  processStateSupport,
  DEFAULT_LOG_OPTIONS,
  DEFAULT_OUTPUT_BUFFER,
  DEFAULT_TERMINAL_SIZE,
  rootfsFromHost,
  rootlessUsernsMaps,
  Runtime as RuntimeCore,
  SECCOMP_ACTIONS,
  SECCOMP_ARCHES,
  SECCOMP_FLAGS,
  SECCOMP_OPERATORS,
  seccompUnconfined,
  parsePortSpec,
  expandPortSpec,
} from './runtime/index.js';
export type {
  BindMount,
  CloneOptions,
  ContainerSnapshotOptions,
  ContainerInfo,
  ContainerChange,
  ContainerInspect,
  ContainerLogs,
  ContainerProcess,
  ContainerResources,
  ContainerSpec,
  ContainerStats,
  ContainerStatus,
  AttachRequest,
  InspectNetwork,
  InspectNetworkSettings,
  LinkPlan,
  NetworkAttacher,
  NetworkAttachment,
  Relink,
  SharedNetns,
  UsernsRecord,
  NetworkSettingsRecord,
  CopyInOptions,
  CopyOutOptions,
  ExecExit,
  ExecOptions,
  ExecOutputOptions,
  ExitStatus,
  HostRootfs,
  HostRootfsOptions,
  IdMap,
  InspectConfig,
  InspectHostConfig,
  InspectMount,
  InspectPortBinding,
  InspectPorts,
  InspectState,
  LaunchOptions,
  MountSpec,
  OutputOptions,
  OutputResult,
  PortProtocol,
  PortSpec,
  PublishedPort,
  RemoveOptions,
  RootlessOutbound,
  Rlimit,
  RlimitName,
  RuntimeOptions,
  RuntimeInfo,
  AuditEntry,
  AuditKind,
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
  StdioMode,
  StopOptions,
  RestartOptions,
  TmpfsMount,
  UsernsSetting,
  WaitOptions,
  // Logs, TTY, attach.
  AttachOptions,
  LogLine,
  LogOptions,
  LogsOptions,
  TerminalSize,
} from './runtime/index.js';
export type { ContainerRef, NamespaceRef, NetworkRef, NetworkSetting, PodShare } from './runtime/index.js';

// Pods: namespaces several containers join.
export { Namespace } from './ns/index.js';
export type { NamespaceInfo, NamespaceOptions, NamespaceRemoveOptions } from './ns/index.js';

// Networks.
export { Runtime } from './networked-runtime.js';
export { Network, HOST_ALIAS } from './ns/index.js';
export type { ConnectOptions, CreateNetworkOptions, NetworkHost, RemoveNetworkOptions } from './ns/index.js';
// Healthchecks, restart policies and events.
export type {
  ContainerEvent,
  ContainerEventAction,
  ContainerEventAttributes,
  EventFilters,
  EventsOptions,
  HealthcheckSpec,
  HealthLogEntry,
  HealthStatus,
  InspectHealth,
  RestartPolicy,
  WaitHealthyOptions,
} from './runtime/index.js';

// Images: the store, registries and archives.
export { ImageStore } from './image-store.js';
export {
  ImageStoreCore,
  IngestSession,
  LayerIngest,
  Lease,
  DEFAULT_GC_GRACE_PERIOD_MS,
  DEFAULT_HISTORY_RETENTION,
  defaultStoreRoot,
} from './store/index.js';
export type {
  BlobSource,
  BuildCacheRecord,
  BuildCacheStorage,
  ContentReader,
  ContentWriter,
  ImageReader,
  ImageWriter,
  Ingester,
  LeaseManager,
  Snapshotter,
  IngestSessionOptions,
  LayerIngestOptions,
  LayerFileOptions,
  PlacedBy,
  SnapshotTarget,
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
  LeaseOwner,
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
} from './store/index.js';
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
} from './transfer/index.js';
export type {
  ArchiveProgress,
  ExportFormat,
  ExportOptions,
  ExportResult,
  ImportedImage,
  ImportFormat,
  ImportOptions,
} from './transfer/index.js';
// Registry logins, in the auth files pulls and pushes read.
export { login, logout } from './image-store.js';
export type { AuthFileOptions, LoginOptions, LoginResult } from './transfer/index.js';

// Builds.
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

// The OCI data model.
export { AnnotationKey, DEFAULT_SHELL, MediaType, parseReference, Reference } from './oci/index.js';
export type { Digest, DigestAlgorithm, ParseReferenceOptions, ReferenceParts } from './oci/index.js';
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
} from './oci/index.js';

export type { ProgressBase } from './util/index.js';
import type { BuildProgress } from './builder/index.js';
import type { SnapshotProgress } from './store/index.js';
import type { ArchiveProgress, PullProgress, PushProgress } from './transfer/index.js';

/**
 * A progress event of any long operation: `op` says which (`pull`, `push`,
 * `snapshot`, `import`, `export`, `build`), `type` what happened. One listener
 * can serve several operations:
 *
 * @example
 * ```ts
 * const log = (e: ProgressEvent) => console.log(e.op, e.type);
 * await store.pull('alpine:3', { onProgress: log });
 * ```
 */
export type ProgressEvent = PullProgress | PushProgress | SnapshotProgress | ArchiveProgress | BuildProgress;
