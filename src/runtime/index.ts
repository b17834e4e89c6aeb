/**
 * The runtime: {@link Runtime} and {@link Container}, their option and
 * result types, and what the builder needs of a container's filesystem
 * (the mount points it makes, its user resolution, its id maps).
 *
 * @module
 */

export { Runtime } from './runtime.js';
export type { RuntimeOptions } from './runtime.js';
export { Container } from './container.js';
export type { ContainerInfo, ContainerLogs, ContainerStatus, ExitStatus, RemoveOptions, StopOptions } from './container.js';
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
