/**
 * The runtime: {@link Runtime} and {@link Container}, their option and
 * result types, and what the builder needs of a container's filesystem
 * (the mount points it makes, its user resolution, its id maps).
 *
 * @module
 */

export { Runtime } from './runtime.js';
export type { LaunchOptions, RuntimeOptions } from './runtime.js';
export type { RuntimeInfo } from './host-info.js';
export { Container } from './container.js';
export type { ExecOutputOptions } from './container.js';
export { ExecProcess } from './exec.js';
export type { ExecExit, ExecOptions } from './exec.js';
export { DEFAULT_MAX_BUFFER } from './output.js';
export type { OutputOptions, OutputResult } from './output.js';
export type { ContainerInfo, ContainerLogs, ContainerStatus, ExitStatus, RemoveOptions, StopOptions, WaitOptions } from './container.js';
export type { ContainerChange } from './container-diff.js';
export type { ContainerInspect, InspectConfig, InspectHostConfig, InspectMount, InspectState } from './inspect.js';
export type { ContainerProcess } from './top.js';
export type { CopyInOptions, CopyOutOptions } from './container-files.js';
export type { BindMount, ContainerSpec, MountSpec, Rlimit, RlimitName, StdioMode, TmpfsMount } from './spec.js';
export { DEFAULT_MOUNTS } from './defaults.js';
export { resolveUserFrom } from './user.js';
export type { ResolvedUser } from './user.js';
export { AUTO_USERNS_BASE, AUTO_USERNS_SIZE, AUTO_USERNS_USER, ownerInContainer } from './userns.js';
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
