/**
 * What a caller asks for when creating a container.
 *
 * @module
 */

import type { ContainerResources } from './cgroups/resources.js';
import type { PortSpec } from './ports.js';
import type { SeccompProfile, SeccompSetting } from './seccomp/profile.js';
import type { UsernsSetting } from './userns.js';
import type { HealthcheckSpec, RestartPolicy } from './lifecycle-types.js';
import type { LogOptions } from './logs.js';

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
 *   exits. With the log on (the default) the container never waits for a
 *   reader: the helper holds up to {@link ContainerSpec.outputBuffer} bytes per
 *   stream for a reader that does not keep up, then ends that stream (the log
 *   keeps everything). With `log: false` a container that writes more than the
 *   pipes hold (about 80 KiB) waits until it is read. For a `detached`
 *   container there are no streams: output goes to the log, read with
 *   `container.logs()`, and stdin is empty unless {@link ContainerSpec.stdin}.
 * - `'inherit'`: the calling process's own stdio.
 * - `'ignore'`: `/dev/null`.
 */
export type StdioMode = 'pipe' | 'inherit' | 'ignore';

/** A user-defined network, as `runtime.createNetwork()` returns it (a `Network`), or its name. */
export interface NetworkRef {
  /** The network's id. */
  readonly id: string;
  /** The network's name. */
  readonly name: string;
}

/** A container, by the object `runtime.run()` returned or by id, unique id prefix or name. */
export type ContainerRef =
  | {
      /** The container's id. */
      readonly id: string;
    }
  | string;

/**
 * A set of namespaces that containers join: a `Namespace` (pod), made with `Namespace.create()`.
 * The runtime finds it by id in its state directory, so a pod of another process works too.
 */
export interface NamespaceRef {
  /** The pod's id. */
  readonly id: string;
}

/**
 * The network of a container, as `docker run --network`:
 *
 * - `'none'`: a network namespace of its own with only loopback (`lo`, up).
 * - `'host'`: no network namespace of its own: the container uses the caller's
 *   interfaces, addresses and ports, and gets the host's `/etc/hosts` and
 *   `/etc/resolv.conf` and, unless `hostname` is given, its hostname.
 * - `'bridge'`: the default bridge network, made at its first use: an address,
 *   a default route, outbound traffic masqueraded.
 * - a {@link NetworkRef}: a user-defined network (`runtime.createNetwork()`):
 *   members resolve each other by name and alias.
 *
 * For a caller that is not root, `'bridge'` and user-defined networks are in
 * the user's own network namespace, and the container joins its user
 * namespace (so `userns` cannot be given).
 * - `{ container }`: the network namespace of that running container, as
 *   `docker run --network container:X`: the same interfaces and ports
 *   (`127.0.0.1` reaches it), its hostname, `/etc/hosts` and `/etc/resolv.conf`;
 *   the uts namespace stays the container's own, as in Docker, so `hostname`
 *   cannot be given. A rootless container also joins the other's user namespace.
 */
export type NetworkSetting =
  | 'none'
  | 'host'
  | 'bridge'
  | NetworkRef
  | {
      /** The container whose network namespace is joined; it must be running. */
      readonly container: ContainerRef;
    };

/** A terminal's size in characters. */
export interface TerminalSize {
  /** Characters per line. */
  columns: number;
  /** Lines. */
  rows: number;
}

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
  /**
   * With `detached` and `stdio: 'pipe'`: this process is also attached to the
   * container's stdio, as a container that is not detached is
   * (`container.stdin`, `container.stdout`, `container.stderr`, live), until
   * it ends them or exits; the container then goes on, its output in its log.
   * What `docker run -it` is until ctrl-p ctrl-q. Without `detached`, ignored.
   * @default false
   */
  attach?: boolean;
  /** Where stdio goes; see {@link StdioMode}. @default 'pipe' */
  stdio?: StdioMode;
  /**
   * Give the container a terminal, as `docker run -t`: a pseudo-terminal of its
   * own devpts (its process's stdin, stdout and stderr are `/dev/pts/0`), so
   * stdout and stderr come merged on `container.stdout` (and as `stdout` in the
   * log), with the terminal's `\r\n` line ends. Bytes written to
   * `container.stdin` go through the terminal's line discipline: `\x03` (^C)
   * interrupts, `\x04` (^D) ends input. Resize it with `container.resize()`.
   * @default false
   */
  tty?: boolean;
  /** The terminal's size at start, with `tty`. @default { columns: 80, rows: 24 } */
  ttySize?: TerminalSize;
  /**
   * Keep stdin open for interactive use, as `docker run -i`: the container's
   * stdin is also fed by `container.attach()` from any process (a FIFO in the
   * state directory that the helper reads), also for a detached container.
   * Without it, an attached `'pipe'` container's stdin is the pipe itself and a
   * detached one's is empty.
   * @default false
   */
  stdin?: boolean;
  /**
   * The container's log (its stdout and stderr as json-lines with stream and
   * time, as Docker's json-file driver), kept for attached and detached
   * containers alike until `remove()` and read with `container.logs()`; `false`
   * keeps none (stdio is then passed straight through, and `logs()` and
   * `attach()` have nothing to read).
   * @default the runtime's `log`, else {@link DEFAULT_LOG_OPTIONS} (20 MiB × 5 files)
   */
  log?: LogOptions | false;
  /**
   * With the log on and `stdio: 'pipe'`: the bytes per stream the helper holds
   * for a reader of `container.stdout`/`stderr` that falls behind, before it
   * ends that stream so that the container goes on (the log has everything).
   * `'block'` never ends it: the container waits for the reader, as with a
   * plain pipe (what `runtime.output()` uses, to lose nothing).
   * @default 4194304 (4 MiB)
   */
  outputBuffer?: number | 'block';
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
   * The container's network; see {@link NetworkSetting}. The rule: the spec's
   * `network`, else the runtime's (`new Runtime({ network })`), else `'none'`.
   * On `'bridge'` and on a user-defined network the container gets an address,
   * a default route (none on an internal network), `/etc/resolv.conf` and
   * `/etc/hosts` entries for the host (`host.dockless.internal`) and, on a
   * user-defined network, for every other member by name and alias, kept
   * current as members come and go. A container in a pod that shares `net`
   * takes the pod's network, and cannot have one of its own.
   * @default the runtime's `network`, else 'none'
   */
  network?: NetworkSetting;
  /** More names the other members of a user-defined network resolve this container by (`docker run --network-alias`). @default [] */
  networkAliases?: readonly string[];
  /**
   * A pod (`Namespace.create()`) whose namespaces the container joins instead
   * of having its own: those of the pod's `share` (net, ipc, uts and
   * optionally pid). With `uts` shared the hostname is the pod's, so
   * `hostname` cannot be given; a rootless container joins the pod's user
   * namespace, so `userns` cannot be given.
   * @default none: every namespace is the container's own
   */
  namespace?: NamespaceRef;
  /**
   * The healthcheck: its fields over the image's `Healthcheck` (`test: 'none'`
   * disables it); see {@link HealthcheckSpec}. Its status is in
   * `inspect().State.Health`; `container.waitHealthy()` waits for `healthy`.
   * @default the image's
   */
  healthcheck?: HealthcheckSpec;
  /** When to start the command again after it ends; see {@link RestartPolicy}. @default 'no' */
  restart?: RestartPolicy;
  /** Labels, on top of the image's: in `inspect().Config.Labels` and the `label` filter of `runtime.events()`. @default {} */
  labels?: Readonly<Record<string, string>>;
  /**
   * Container ports published on the host, as `docker run -p`: objects, or Docker's
   * short forms (`'8080:80'`, `'127.0.0.1::5432/udp'`, `'5432'`, `'[::1]:8080:80'`);
   * see {@link PortSpec}. The host sockets are bound before the container starts
   * (a port in use fails the launch with an `AlreadyExistsError`, and nothing can
   * take it afterwards); a small forwarder process relays each connection (TCP)
   * or datagram (UDP, replies included) into the container's network namespace,
   * to its 127.0.0.1, so 127.0.0.1 on the host works, as does another container
   * reaching the host's address. `container.ports()` gives the ports bound.
   * A caller that is not root gets a `PermissionError` for a host port below
   * `net.ipv4.ip_unprivileged_port_start`, and (rootless, on no network)
   * outbound access through slirp4netns, else pasta. Docker's ranges
   * (`'8000-8002:80-82'`) publish one port per container port.
   * @default [] (nothing published)
   */
  ports?: readonly (PortSpec | string)[];
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
  /**
   * Remove the container once it exits (`docker create --rm`). Recorded, and
   * shown by `info().autoRemove` and `inspect().HostConfig.AutoRemove`; with no
   * daemon, the caller that starts the container acts on it (the `dockless`
   * command's `start` and `run` do).
   * @default false
   */
  autoRemove?: boolean;
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
