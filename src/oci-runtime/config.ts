/**
 * The part of the OCI runtime-spec (`config.json`, version 1.x) that
 * dockless-runtime reads. Fields are typed loosely on purpose: the translation
 * (translate.ts) checks every value and refuses what it cannot honour.
 *
 * @module
 */

/** `process.user`. */
export interface OciUser {
  /** Host-namespace numeric user id (inside the container). */
  uid: number;
  /** Numeric group id. */
  gid: number;
  /** The process's umask. */
  umask?: number;
  /** Supplementary groups. */
  additionalGids?: number[];
  /** Windows only. */
  username?: string;
}

/** `process.capabilities`: capability names (`CAP_CHOWN`) per set. */
export interface OciCapabilities {
  /** The bounding set. */
  bounding?: string[];
  /** The effective set. */
  effective?: string[];
  /** The inheritable set. */
  inheritable?: string[];
  /** The permitted set. */
  permitted?: string[];
  /** The ambient set. */
  ambient?: string[];
}

/** One `process.rlimits` entry. */
export interface OciRlimit {
  /** `RLIMIT_NOFILE`, …. */
  type: string;
  /** The soft limit. */
  soft: number;
  /** The hard limit. */
  hard: number;
}

/** `process` (also the `--process` file of `exec`). */
export interface OciProcess {
  /** Allocate a pseudo-terminal (sent over the console socket). */
  terminal?: boolean;
  /** The terminal's size. */
  consoleSize?: { height: number; width: number };
  /** The user the process runs as. */
  user: OciUser;
  /** The command and its arguments. */
  args?: string[];
  /** Windows only. */
  commandLine?: string;
  /** `NAME=value` strings. */
  env?: string[];
  /** Absolute working directory. */
  cwd: string;
  /** Capability sets. */
  capabilities?: OciCapabilities;
  /** Resource limits. */
  rlimits?: OciRlimit[];
  /** Set `no_new_privs`. */
  noNewPrivileges?: boolean;
  /** AppArmor profile name. */
  apparmorProfile?: string;
  /** `/proc/PID/oom_score_adj`. */
  oomScoreAdj?: number;
  /** SELinux label. */
  selinuxLabel?: string;
  /** I/O priority. */
  ioPriority?: unknown;
  /** Scheduler settings. */
  scheduler?: unknown;
  /** Memory policy. */
  execCPUAffinity?: unknown;
}

/** `root`. */
export interface OciRoot {
  /** The rootfs, relative to the bundle or absolute. */
  path: string;
  /** Mount it read-only. */
  readonly?: boolean;
}

/** One `mounts` entry. */
export interface OciMount {
  /** Absolute path inside the container. */
  destination: string;
  /** Filesystem type, or `bind`. */
  type?: string;
  /** Device, directory or filesystem name. */
  source?: string;
  /** mount(8) options. */
  options?: string[];
  /** Idmapped mount's uid mappings. */
  uidMappings?: OciIdMapping[];
  /** Idmapped mount's gid mappings. */
  gidMappings?: OciIdMapping[];
}

/** One uid or gid mapping. */
export interface OciIdMapping {
  /** First id inside the namespace. */
  containerID: number;
  /** First id on the host. */
  hostID: number;
  /** How many ids. */
  size: number;
}

/** One `linux.namespaces` entry. */
export interface OciNamespace {
  /** `pid`, `network`, `mount`, `ipc`, `uts`, `user`, `cgroup`, `time`. */
  type: string;
  /** Join this namespace file instead of making a new one. */
  path?: string;
}

/** One `linux.devices` entry. */
export interface OciDevice {
  /** `c`, `u`, `b` or `p`. */
  type: string;
  /** Path inside the container. */
  path: string;
  /** Major number. */
  major?: number;
  /** Minor number. */
  minor?: number;
  /** Permission bits. */
  fileMode?: number;
  /** Owner. */
  uid?: number;
  /** Group. */
  gid?: number;
}

/** One `linux.resources.devices` rule. */
export interface OciDeviceRule {
  /** Allow (true) or deny. */
  allow: boolean;
  /** `a`, `c` or `b`. */
  type?: string;
  /** Major number; any when omitted. */
  major?: number | null;
  /** Minor number; any when omitted. */
  minor?: number | null;
  /** `r`, `w`, `m` letters. */
  access?: string;
}

/** `linux.resources`. */
export interface OciResources {
  /** Device cgroup rules. */
  devices?: OciDeviceRule[];
  /** Memory limits. */
  memory?: Record<string, unknown>;
  /** CPU limits. */
  cpu?: Record<string, unknown>;
  /** Process count limit. */
  pids?: { limit?: number };
  /** Block I/O limits. */
  blockIO?: unknown;
  /** Huge page limits. */
  hugepageLimits?: unknown[];
  /** Network class and priorities. */
  network?: unknown;
  /** RDMA limits. */
  rdma?: unknown;
  /** cgroup v2 files. */
  unified?: Record<string, string>;
}

/** A syscall rule of `linux.seccomp`. */
export interface OciSeccompSyscall {
  /** Syscall names. */
  names: string[];
  /** `SCMP_ACT_*`. */
  action: string;
  /** The errno of `SCMP_ACT_ERRNO`. */
  errnoRet?: number;
  /** Argument conditions. */
  args?: { index: number; value: number; valueTwo?: number; op: string }[];
}

/** `linux.seccomp`. */
export interface OciSeccomp {
  /** `SCMP_ACT_*` for syscalls no rule matches. */
  defaultAction: string;
  /** The errno of an `SCMP_ACT_ERRNO` default. */
  defaultErrnoRet?: number;
  /** `SCMP_ARCH_*`. */
  architectures?: string[];
  /** `SECCOMP_FILTER_FLAG_*`. */
  flags?: string[];
  /** Notification listener socket. */
  listenerPath?: string;
  /** Notification listener metadata. */
  listenerMetadata?: string;
  /** The rules. */
  syscalls?: OciSeccompSyscall[];
}

/** `linux`. */
export interface OciLinux {
  /** Namespaces to make or join. */
  namespaces?: OciNamespace[];
  /** User namespace uid mappings. */
  uidMappings?: OciIdMapping[];
  /** User namespace gid mappings. */
  gidMappings?: OciIdMapping[];
  /** Device nodes to create. */
  devices?: OciDevice[];
  /** The container's cgroup. */
  cgroupsPath?: string;
  /** cgroup limits. */
  resources?: OciResources;
  /** Namespaced sysctls. */
  sysctl?: Record<string, string>;
  /** The seccomp profile. */
  seccomp?: OciSeccomp;
  /** Propagation of `/`. */
  rootfsPropagation?: string;
  /** Paths masked over. */
  maskedPaths?: string[];
  /** Paths made read-only. */
  readonlyPaths?: string[];
  /** SELinux mount label. */
  mountLabel?: string;
  /** Intel RDT. */
  intelRdt?: unknown;
  /** Execution domain. */
  personality?: unknown;
  /** Time namespace offsets. */
  timeOffsets?: unknown;
}

/** One hook. */
export interface OciHook {
  /** Absolute path of the program. */
  path: string;
  /** Its argv, argv[0] included. */
  args?: string[];
  /** Its environment. */
  env?: string[];
  /** Seconds before it is killed. */
  timeout?: number;
}

/** `hooks`. */
export interface OciHooks {
  /** Deprecated: after the namespaces are made, before pivot_root. */
  prestart?: OciHook[];
  /** In the runtime's namespaces, once the container's are made. */
  createRuntime?: OciHook[];
  /** In the container's namespaces, before pivot_root. */
  createContainer?: OciHook[];
  /** In the container, before the user process. */
  startContainer?: OciHook[];
  /** After the user process started. */
  poststart?: OciHook[];
  /** After the container is deleted. */
  poststop?: OciHook[];
}

/** A bundle's `config.json`. */
export interface OciConfig {
  /** The runtime-spec version, `1.0.2`. */
  ociVersion: string;
  /** The container's process. */
  process?: OciProcess;
  /** The root filesystem. */
  root?: OciRoot;
  /** The hostname (needs a uts namespace). */
  hostname?: string;
  /** The NIS domain name (needs a uts namespace). */
  domainname?: string;
  /** Mounts, in order. */
  mounts?: OciMount[];
  /** Hooks. */
  hooks?: OciHooks;
  /** Free annotations. */
  annotations?: Record<string, string>;
  /** Linux settings. */
  linux?: OciLinux;
  /** Other platforms: refused. */
  solaris?: unknown;
  /** Other platforms: refused. */
  windows?: unknown;
  /** Other platforms: refused. */
  vm?: unknown;
}
