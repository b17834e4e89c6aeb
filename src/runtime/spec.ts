/**
 * What a caller asks for when creating a container.
 *
 * @module
 */

import type { ContainerResources } from './cgroups/resources.js';
import type { SeccompProfile, SeccompSetting } from './seccomp/profile.js';
import type { UsernsSetting } from './userns.js';

/** A host directory or file bind-mounted into the container. */
export interface BindMount {
  /** A bind mount. */
  type: 'bind';
  /** Absolute host path. It must exist. */
  source: string;
  /** Absolute path inside the container; created when missing. */
  target: string;
  /** Mount it read-only. @default false */
  readonly?: boolean;
}

/** A fresh tmpfs mounted into the container. */
export interface TmpfsMount {
  /** A tmpfs mount. */
  type: 'tmpfs';
  /** Absolute path inside the container; created when missing. */
  target: string;
  /** Mount it read-only. @default false */
  readonly?: boolean;
  /** Size limit in bytes. @default half of RAM (the kernel's default) */
  size?: number;
  /** Mode of the tmpfs root. @default 0o1777 */
  mode?: number;
}

/** One extra mount of a container. */
export type MountSpec = BindMount | TmpfsMount;

/**
 * Where a container's stdin, stdout and stderr go.
 *
 * - `'pipe'`: `container.stdin` is writable and `container.stdout` / `container.stderr`
 *   are readable streams. Output is kept until read, even after the container
 *   exits; a container that writes more than the pipes hold (about 80 KiB) waits
 *   until it is read, so read it or choose `'ignore'` / `'inherit'`. For a `detached` container, output goes to log files
 *   read with `container.logs()` and stdin is empty.
 * - `'inherit'`: the calling process's own stdio.
 * - `'ignore'`: `/dev/null`.
 */
export type StdioMode = 'pipe' | 'inherit' | 'ignore';

/** The description of a container, given to `runtime.create()` and `runtime.run()`. */
export interface ContainerSpec {
  /**
   * The container's root filesystem: a host directory. It is never modified;
   * the container writes to its own upper directory, discarded by `remove()`.
   * Give either `rootfs` or `image`.
   */
  rootfs?: string;
  /**
   * An image in the Runtime's `store` (`name:tag`, `name@digest` or a digest):
   * its unpacked layers are the container's lower dirs, and its config (Env,
   * Entrypoint, Cmd, WorkingDir, User) gives defaults that the spec overrides.
   * Give either `rootfs` or `image`.
   */
  image?: string;
  /**
   * The command and its arguments. A command without `/` is looked up in the container's `PATH`.
   * @default the image's Cmd (none when `entrypoint` is given)
   */
  cmd?: readonly string[];
  /** Replaces the image's Entrypoint; `cmd` follows it. @default the image's Entrypoint */
  entrypoint?: readonly string[];
  /**
   * Environment variables, `{ NAME: value }`, on top of the image's Env. `PATH`,
   * `HOSTNAME` and `HOME` get defaults unless given.
   * @default {}
   */
  env?: Readonly<Record<string, string>>;
  /** Working directory inside the container. @default the image's WorkingDir, else '/' */
  cwd?: string;
  /**
   * The user the command runs as: `uid`, `uid:gid`, `name` or `name:group`; names are
   * looked up in the rootfs' `/etc/passwd` and `/etc/group`.
   * @default the image's User, else 'root' (0:0)
   */
  user?: string;
  /** The container's hostname: letters, digits, `.` and `-`, at most 64 bytes (HOST_NAME_MAX). @default the first 12 characters of its id */
  hostname?: string;
  /** A name to find the container by with `runtime.get()`. Must be unique among existing containers. */
  name?: string;
  /** Run a small init as pid 1 that reaps zombies and forwards signals to the command. @default true */
  init?: boolean;
  /**
   * Let the container outlive the calling process. A detached container is
   * managed from any process through `runtime.list()` / `runtime.get()`.
   * A container that is not detached dies with the *thread* that started it
   * (the kernel's parent-death signal follows threads): started from a Node
   * worker thread, it dies when that worker ends.
   * @default false
   */
  detached?: boolean;
  /** Where stdio goes; see {@link StdioMode}. @default 'pipe' */
  stdio?: StdioMode;
  /** Extra bind and tmpfs mounts, applied in order after the defaults. @default [] */
  mounts?: readonly MountSpec[];
  /** Mount the root filesystem read-only (writes only to mounts and /dev, /tmp-like tmpfs you add). @default false */
  readonlyRootfs?: boolean;
  /**
   * Resource limits (memory, CPU, pids, block I/O) enforced through the
   * container's cgroups; see {@link ContainerResources}.
   * @default {} (no limits; the container still gets memory and pids cgroups for `stats()` and OOM reports)
   */
  resources?: ContainerResources;
  /**
   * The cgroup the container's cgroup is created in, in every hierarchy: a
   * relative path is below the calling process's own cgroup, an absolute one
   * from the hierarchy's root. Missing directories are created and left in place.
   * @default the runtime's `cgroupParent`
   */
  cgroupParent?: string;
  /**
   * Capabilities added to Docker's default 14 (`'NET_ADMIN'` or `'CAP_NET_ADMIN'`, any
   * case); `'ALL'` adds every capability this process holds. The seccomp policy
   * follows: Docker's default profile allows `mount` and `unshare` with
   * `SYS_ADMIN`, for example.
   * @default []
   */
  capAdd?: readonly string[];
  /** Capabilities removed from the default set; `'ALL'` starts from none. @default [] */
  capDrop?: readonly string[];
  /**
   * Lift the restrictions, as `docker run --privileged`: every capability this
   * process holds, no seccomp filter, no masked or read-only /proc and /sys
   * paths (and a writable /sys/fs/cgroup), and every device allowed by the devices cgroup. `capAdd`, `capDrop` and
   * `seccomp` are then ignored, as Docker ignores them. /dev still holds only the
   * safe nodes.
   * @default false
   */
  privileged?: boolean;
  /**
   * The seccomp policy: `'unconfined'` for none, a {@link SeccompProfile}, or a
   * profile in Docker's JSON format (the text of `--security-opt seccomp=file.json`).
   * @default Docker's default profile
   */
  seccomp?: SeccompSetting;
  /**
   * Set `no_new_privs`: nothing the container executes can gain privileges
   * (setuid binaries, file capabilities). Stricter than Docker's default.
   * @default true
   */
  noNewPrivileges?: boolean;
  /**
   * Resource limits (`setrlimit`), as `docker run --ulimit`: `{ nofile: { soft: 1024, hard: 4096 } }`.
   * `Infinity` means unlimited. A hard limit can only be raised above the
   * caller's with CAP_SYS_RESOURCE; without it, starting fails with a
   * `HelperError` whose step is `setrlimit`.
   * @default {} (the caller's limits)
   */
  rlimits?: Readonly<Partial<Record<RlimitName, Rlimit>>>;
  /**
   * Run the container in a user namespace, so that its root is an unprivileged
   * host id: `'auto'` (a range of 65536 ids, see {@link UsernsSetting}) or
   * explicit `{ uidMap, gidMap }`. The container's files keep their ids on disk
   * (the root is assembled from idmapped mounts; Linux 5.12+ and a filesystem
   * that supports them). In a user namespace no device node can be created, and
   * /dev holds bind mounts of the host's safe nodes instead; bind-mounted host
   * directories show ids outside the maps as `nobody`.
   * A caller that is not root always gets one (rootless); `'auto'` is its default.
   * @default none for root; for any other user, its /etc/subuid and /etc/subgid ranges, else its own uid alone
   */
  userns?: UsernsSetting;
  /**
   * Labels of the container (`docker run --label`), on top of the image's
   * `Labels`; shown by `inspect().Config.Labels` and `info().labels`.
   * @default {}
   */
  labels?: Readonly<Record<string, string>>;
  /**
   * The signal `stop()` sends first (`docker run --stop-signal`): a name
   * (`'SIGQUIT'`) or a number.
   * @default the image's StopSignal, else 'SIGTERM'
   */
  stopSignal?: NodeJS.Signals | number;
  /**
   * Milliseconds `stop()` waits after the stop signal before SIGKILL, when the
   * call gives no `timeoutMs` (`docker run --stop-timeout`, in seconds there).
   * @default 10000
   */
  stopTimeoutMs?: number;
}

/** The resources {@link ContainerSpec.rlimits} can limit (`RLIMIT_*`, lowercase, as `docker run --ulimit` names them). */
export type RlimitName =
  | 'as'
  | 'core'
  | 'cpu'
  | 'data'
  | 'fsize'
  | 'locks'
  | 'memlock'
  | 'msgqueue'
  | 'nice'
  | 'nofile'
  | 'nproc'
  | 'rss'
  | 'rtprio'
  | 'rttime'
  | 'sigpending'
  | 'stack';

/** One resource limit: non-negative integers, or `Infinity` for unlimited; `soft` ≤ `hard`. */
export interface Rlimit {
  /** The limit the kernel enforces. */
  soft: number;
  /** The ceiling up to which the process may raise `soft`. */
  hard: number;
}
