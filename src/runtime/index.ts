/**
 * The runtime: {@link Runtime} and {@link Container}, their option and
 * result types, and what the builder needs of a container's filesystem
 * (the mount points it makes, its user resolution, its id maps).
 *
 * @module
 */

export { Runtime } from './runtime.js';
export type { LaunchOptions, RootlessOutbound, RuntimeOptions } from './runtime.js';
export type { RuntimeInfo } from './host-info.js';
export type { AuditEntry, AuditKind } from './audit.js';
export { Container } from './container.js';
export { ContainerSnapshot, processStateSupport } from './snapshot.js';
export type { CloneOptions, ContainerSnapshotOptions } from './snapshot.js';
export type { ExecOutputOptions } from './container.js';
export { ExecProcess } from './exec.js';
export type { ExecExit, ExecOptions } from './exec.js';
export { DEFAULT_MAX_BUFFER } from './output.js';
export type { OutputOptions, OutputResult } from './output.js';
export type { ContainerInfo, ContainerLogs, ContainerStatus, ExitStatus, RemoveOptions, RestartOptions, StopOptions, WaitHealthyOptions, WaitOptions } from './container.js';
export type { ContainerEvent, ContainerEventAction, ContainerEventAttributes, EventFilters, EventsOptions } from './events.js';
export type { HealthcheckSpec, HealthLogEntry, HealthStatus, InspectHealth } from './health.js';
export type { RestartPolicy } from './restart.js';
export type { ContainerChange } from './container-diff.js';
export type { ContainerInspect, InspectConfig, InspectHostConfig, InspectMount, InspectState } from './inspect.js';
export type { ContainerProcess } from './top.js';
export { ContainerLogReader, DEFAULT_LOG_OPTIONS } from './logs.js';
export type { LogLine, LogOptions, LogsOptions } from './logs.js';
export { Attachment } from './attach.js';
export type { AttachOptions } from './attach.js';
export { DEFAULT_OUTPUT_BUFFER, DEFAULT_TERMINAL_SIZE } from './io-plan.js';
export type { TerminalSize } from './spec.js';
export type { CopyInOptions, CopyOutOptions } from './container-files.js';
export type { BindMount, ContainerSpec, MountSpec, Rlimit, RlimitName, StdioMode, TmpfsMount } from './spec.js';
export type {
  AttachRequest,
  InspectNetwork,
  LinkPlan,
  NetworkAttacher,
  NetworkAttachment,
  NetworkSettingsRecord,
  Relink,
  SharedNetns,
} from './network-attach.js';
export type { InspectNetworkSettings } from './inspect.js';
export { linkArgs } from './run-args.js';
export { openableNetnsPid } from './network-mode.js';
export type { ContainerPaths } from './state.js';
export { DEFAULT_MOUNTS } from './defaults.js';
export { resolveUserFrom } from './user.js';
export type { ResolvedUser } from './user.js';
export { AUTO_USERNS_BASE, AUTO_USERNS_SIZE, AUTO_USERNS_USER, ownerInContainer, rootlessUsernsMaps } from './userns.js';
export type { IdMap, UsernsSetting } from './userns.js';
export { DEFAULT_HOST_BINARIES, rootfsFromHost } from './host-rootfs.js';
export type { HostRootfs, HostRootfsOptions } from './host-rootfs.js';
export {
  parseSeccompProfile,
  SECCOMP_ACTIONS,
  SECCOMP_ARCHES,
  SECCOMP_FLAGS,
  SECCOMP_OPERATORS,
  seccompUnconfined,
} from './seccomp/profile.js';
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
} from './seccomp/profile.js';
export type { ContainerResources, ContainerStats } from './cgroups/resources.js';
export type { ContainerRef, NamespaceRef, NetworkRef, NetworkSetting } from './spec.js';
export { NAME_RE } from './spec-check.js';
export { POD_SHARES, isPodAlive, podIds, podPaths, podsDir, readPodRecord } from './pods.js';
export type { PodRecord, PodShare } from './pods.js';
export { claimName, readNameClaim, releaseName } from './names.js';
export { writeJsonAtomic } from './state.js';
export type { LaunchOwner } from './state.js';
export { usernsArgs } from './userns.js';
export type { UsernsPlan, UsernsRecord } from './userns.js';
export { checkPortPrivilege, expandPortSpec, inspectPorts, parsePortSpec, parsePorts } from './ports.js';
export { endRecordedHelper, Forwarder, outboundArgv } from './forwarder.js';
export type { ForwardTarget, HelperPidRecord } from './forwarder.js';
export { unprivilegedPortStart } from './publish.js';
export { hostsFile, resolvConf } from './etc-files.js';
export type { InspectPortBinding, InspectPorts, PortProtocol, PortSpec, PublishedPort } from './ports.js';

// What dockless-runtime (src/oci-runtime/) builds its run plans from: the same policy code as the library's.
export { runArgs, SECCOMP_FD } from './run-args.js';
export type { RunPlan } from './run-args.js';
export { execArgs } from './exec-args.js';
export type { ExecPlan } from './exec-args.js';
export { DEFAULT_DEVICES, DEFAULT_DEV_SYMLINKS } from './defaults.js';
export type { HelperDevice, HelperMount } from './defaults.js';
export { capBitmask, capNumber, capsFromBitmask, capNames, ALL_CAPS } from './capabilities.js';
export { compileSeccomp, nativeSeccompArch } from './seccomp/compile.js';
export { DEFAULT_DEVICE_RULES, RLIMIT_NAMES, deviceCgroupWrites, formatDeviceRule } from './security.js';
export type { DeviceRule, HelperRlimit } from './security.js';
export { planCgroups, validateCgroupParent } from './cgroups/policy.js';
export { updateCgroupLimits } from './update.js';
export type { CgroupPlan } from './cgroups/policy.js';
export { CgroupSet } from './cgroups/cgroup-set.js';
export type { CgroupRecord } from './cgroups/cgroup-set.js';
export { detectCgroupMounts, detectCgroups } from './cgroups/detect.js';
export type { CgroupHost } from './cgroups/detect.js';
export { cgroupfsPlan } from './cgroups/mounts.js';
export { cgroupPids, isFrozen, setFrozen } from './cgroups/freezer.js';
