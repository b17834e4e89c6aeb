import { readFileSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ownerToken, selfStartTime, writeFileAtomic } from '../util/index.js';
import type { CgroupRecord } from './cgroups/cgroup-set.js';
import type { HelperRlimit } from './security.js';
import type { ContainerResources } from './cgroups/resources.js';
import type { StdioMode } from './spec.js';
import type { UsernsRecord } from './userns.js';
import type { HealthPlan, RestartPlan } from './lifecycle-types.js';
import type { PublishedPort } from './ports.js';
import type { HelperPidRecord } from './forwarder.js';

/** The record of one container in the state directory, readable by every process. */
export interface ContainerRecord {
  version: 1;
  id: string;
  name?: string;
  /** ISO time of creation. */
  created: string;
  /** ISO time of start, once started. */
  started?: string;
  /** Host pid of the container's pid 1, and its start time (so a reused pid is never mistaken for it). */
  pid: number;
  pidStart: number;
  /** The process that created the container, and its start time. */
  ownerPid: number;
  ownerStart: number;
  detached: boolean;
  /** The rootfs directory, or the image's snapshot, the container was made from. */
  rootfs: string;
  /** The image reference, when the container was made from an image. */
  image?: string;
  cmd: string[];
  stdio: StdioMode;
  /** The container's cgroups, removed with it. */
  cgroups?: CgroupRecord[];
  /** The container's user namespace, when it has one. */
  userns?: UsernsRecord;
  /** Its network mode: `none`, `host`, `container:<id>`, `pod:<id>`. Absent: `none` (records written before modes). */
  network?: string;
  /** The pod (`Namespace`) it is in. */
  namespace?: string;
  /** Its published ports, as bound. */
  ports?: PublishedPort[];
  /** Its port forwarder (and outbound network) process, ended with the container. */
  forwarder?: HelperPidRecord;
  /** It has a TTY. */
  tty?: boolean;
  /** Its stdin is kept open, fed through `stdin.fifo`. */
  openStdin?: boolean;
  /** The rotation of its log (`json.log`), when it keeps one. */
  log?: { maxSize: number; maxFiles: number };
  /** The labels: the image's, then the spec's. */
  labels?: Record<string, string>;
  /** What `stop()` sends first, when not SIGTERM. */
  stopSignal?: string | number;
  /** How long `stop()` waits by default, when not 10 s. */
  stopTimeoutMs?: number;
  /** It has a healthcheck (its state in `health.json`). */
  healthcheck?: true;
  /** Remove it once it exits (`docker create --rm`). */
  autoRemove?: true;
}

/**
 * How the container's process was set up (in `config.json`), so that a process
 * exec'd into it later, from any process, gets the same.
 */
export interface ProcessRecord {
  /** `NAME=value` strings. */
  env: string[];
  cwd: string;
  user: { uid: number; gid: number; groups: number[] };
  /** The container's layers, top-most first, its upper directory not included: where a user name is looked up. */
  lowers: string[];
  /** The namespaces the container has (the helper's names). */
  namespaces: string[];
  /** Capabilities as 16 hex digits; absent: privileged. */
  caps?: string;
  noNewPrivileges: boolean;
  /** The seccomp program, base64; absent: unconfined. */
  seccomp?: string;
  rlimits: HelperRlimit[];
}

/**
 * What `config.json` holds: how the container was configured, for `inspect()` and
 * for reading its files. Written once at creation, readable by the owner only
 * (the environment may hold secrets).
 */
export interface ContainerConfigRecord {
  version: 1;
  hostname: string;
  /** The process as it was set up: environment, cwd, ids, layers, security; what `exec` repeats. */
  process: ProcessRecord;
  /** The image's or the spec's entrypoint, when there is one. */
  entrypoint?: string[];
  /** The command after the entrypoint. */
  cmd: string[];
  /** The user as given (`name`, `uid:gid`), when one was. */
  user?: string;
  labels?: Record<string, string>;
  mounts: { type: 'bind' | 'tmpfs'; source: string; target: string; readonly: boolean }[];
  resources?: ContainerResources;
  init: boolean;
  privileged: boolean;
  readonlyRootfs: boolean;
  cgroupParent?: string;
  capAdd?: string[];
  capDrop?: string[];
  /** The healthcheck, resolved; absent: none. */
  healthcheck?: HealthPlan;
  /** The restart policy, when there is one. */
  restart?: RestartPlan;
}

/** What `exit.json` holds: the helper's `exited` status line. */
export interface ExitRecord {
  type: 'exited';
  code: number;
  signal?: number;
  oom?: boolean;
}

export { defaultDataRoot as defaultRoot, defaultStateDir } from '../util/index.js';

/**
 * Writes `data` to `path` atomically (a temporary file, then rename), without
 * fsync: the state directory describes live processes, which a power loss
 * ends, and a record torn by one is read as missing, so that `prune()`
 * removes its directory.
 */
export async function writeJsonAtomic(path: string, data: unknown, mode?: number): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(data), dirname(path), { sync: false, ...(mode !== undefined ? { mode } : {}) });
}

/**
 * Writes a JSON file that does not exist yet, in place rather than through a
 * rename: for the files of a launch, which nobody reads before the launch's
 * record says the container exists, and which are complete before it is written.
 */
export async function writeJsonNew(path: string, data: unknown, mode?: number): Promise<void> {
  await writeFile(path, JSON.stringify(data), { flag: 'wx', ...(mode !== undefined ? { mode } : {}) });
}

/** Reads and parses a JSON file; undefined when it does not exist or is not JSON. */
export async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/**
 * {@link readJson} on this thread: for a small file just written (in the page
 * cache), where a thread-pool round trip costs more than the read.
 */
export function readJsonSync<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** The directories of one container. */
export interface ContainerPaths {
  /** `<stateDir>/<id>`: record, exit file, start fifo. */
  state: string;
  /** The launching process, for telling an abandoned launch (no record, owner dead) from one in progress. */
  owner: string;
  record: string;
  /** `config.json`: see {@link ContainerConfigRecord}. */
  config: string;
  exit: string;
  /** `restart.json`: the shim's record of restarts. */
  restart: string;
  /** `launch.json`: what the launch decided, for `restart()`, in a container made before it moved into `config.json` (see relaunch.ts). */
  launch: string;
  /** `health.json`: the healthcheck's state; `health.lock`: held while a check runs. */
  health: string;
  healthLock: string;
  fifo: string;
  /** Where the rootfs is mounted, in the container's mount namespace: {@link ROOTFS_MOUNT_POINT}, shared by every container. */
  target: string;
  /** `networks.json`: the container's networks (see `NetworkSettingsRecord`), written by the network attacher. */
  networks: string;
  /** `<root>/containers/<id>`: upper and work dirs, generated /etc files, logs. */
  bundle: string;
  upper: string;
  work: string;
  hostname: string;
  hosts: string;
  resolv: string;
  /** `json.log` in the bundle: the container's log; rotated files are `json.log.1` … */
  log: string;
  /** The FIFO the helper reads the container's stdin from, with `stdin: true`. */
  stdinFifo: string;
  /** The FIFO the helper reads TTY resize records from, with `tty: true`. */
  control: string;
}

/**
 * The directory (in the state directory) every container's rootfs is mounted on,
 * each in its own mount namespace, before it becomes the container's `/`: one
 * shared empty directory rather than one per container, which would be an inode
 * made and freed per launch (see etc-targets.ts for what that costs).
 */
export const ROOTFS_MOUNT_POINT = '.rootfs';

/** The paths of container `id`. */
export function containerPaths(root: string, stateDir: string, id: string): ContainerPaths {
  const state = join(stateDir, id);
  const bundle = join(root, 'containers', id);
  // Appended, not joined: both are normalized already (no trailing slash) and the names are plain; ~20
  // path.join calls per launch and per remove were a few per cent of this thread's time on the start path.
  return {
    state,
    owner: `${state}/owner.json`,
    record: `${state}/state.json`,
    config: `${state}/config.json`,
    exit: `${state}/exit.json`,
    restart: `${state}/restart.json`,
    launch: `${state}/launch.json`,
    health: `${state}/health.json`,
    healthLock: `${state}/health.lock`,
    fifo: `${state}/start.fifo`,
    // `state` ends in `/${id}` (a plain name appended by join): the directory beside it, with no join per launch.
    target: `${state.slice(0, state.length - id.length)}${ROOTFS_MOUNT_POINT}`,
    networks: `${state}/networks.json`,
    bundle,
    upper: `${bundle}/upper`,
    work: `${bundle}/work`,
    hostname: `${bundle}/hostname`,
    hosts: `${bundle}/hosts`,
    resolv: `${bundle}/resolv.conf`,
    log: `${bundle}/json.log`,
    stdinFifo: `${state}/stdin.fifo`,
    control: `${state}/control.fifo`,
  };
}

/** How {@link makeContainerDirs} makes the upper directory's root look like the image's. */
export interface RootLike {
  /** The top-most lower dir: its root's mode (and owner) become the upper's. */
  lower: string;
  /**
   * Copy the owner too. Ids on disk are the container's own without a user
   * namespace and with an idmapped root; a rootless caller can neither give its
   * upper another owner nor needs to (the upper is its own, the container's root).
   */
  owner: boolean;
}

/** What `owner.json` holds: the process launching the container, and its start time. */
export interface LaunchOwner {
  pid: number;
  start: number;
}

/**
 * Creates the directories a new container needs. The state directory appears
 * whole, already naming the launching process (made aside, then renamed), so
 * that no process ever sees it without its owner. The upper directory's root is
 * what the container sees at `/` (overlayfs takes the merged root's attributes
 * from it), so it gets the mode and owner of `like.lower`'s root: an image whose
 * root is 0700 or owned by 1000 shows that, not the 0755 the upper was made with.
 * With `options.shim` the upper and work directories are not made here but
 * returned, for the helper's shim to make.
 */
export async function makeContainerDirs(paths: ContainerPaths, like?: RootLike, options: { shim?: boolean } = {}): Promise<ShimDir[]> {
  const making = `${dirname(paths.state)}/.new-${ownerToken()}`;
  const makeState = async () => {
    await mkdir(making, { mode: 0o711 });
    try {
      await writeFile(join(making, 'owner.json'), JSON.stringify({ pid: process.pid, start: selfStartTime() } satisfies LaunchOwner));
      await rename(making, paths.state);
    } catch (error) {
      await rm(making, { recursive: true, force: true });
      throw error;
    }
  };
  const shimDirs: ShimDir[] = [];
  const upper = async (): Promise<void> => {
    // The bundle, then its upper: a recursive mkdir of the upper would try it first and fail.
    await mkdir(paths.bundle, { recursive: true, mode: 0o755 });
    const root = like !== undefined ? await stat(like.lower) : undefined;
    if (options.shim === true) {
      // The shim makes them, mode and owner included (`--make-dir`), before it mounts them.
      const owner = root !== undefined && like!.owner ? { uid: root.uid, gid: root.gid } : {};
      shimDirs.push({ path: paths.upper, mode: root !== undefined ? root.mode & 0o7777 : 0o755, ...owner }, { path: paths.work, mode: 0o700 });
      return;
    }
    await mkdir(paths.upper, { mode: 0o755 });
    await mkdir(paths.work, { mode: 0o700 });
    if (root === undefined) return;
    if (like!.owner) await chown(paths.upper, root.uid, root.gid);
    // After the chown, which clears the set-id bits.
    await chmod(paths.upper, root.mode & 0o7777);
  };
  await Promise.all([makeState(), upper()]);
  return shimDirs;
}

/**
 * A directory the shim makes: `--make-dir`, mode exactly and the owner when
 * given; or `--make-dir-as`, the mode (and with `owner` the owner) of `like`'s
 * root, read by the shim.
 */
export type ShimDir = { path: string; mode: number; uid?: number; gid?: number } | { path: string; like: string; owner: boolean };

/** The state directory the shim makes (`--make-state`): as {@link makeContainerDirs} does, through `.new-<token>` and a rename, with `owner` as `owner.json`. */
export interface ShimState {
  dir: string;
  token: string;
  owner: string;
}

/**
 * What {@link makeContainerDirs} makes, for the shim to make instead (no thread-pool
 * trip here): the bundle, upper and work directories, before pid 1 is cloned, and
 * the state directory, named after this process, while pid 1 sets up (a cgroup or data
 * directory without its state directory is a launch's for a while yet: prune.ts);
 * the token names the `.new-` directory a killed shim may leave.
 */
export function shimContainerDirs(paths: ContainerPaths, like: RootLike): { state: ShimState; dirs: ShimDir[] } {
  return {
    state: { dir: paths.state, token: ownerToken(), owner: JSON.stringify({ pid: process.pid, start: selfStartTime() } satisfies LaunchOwner) },
    dirs: [
      { path: paths.bundle, mode: 0o755 },
      { path: paths.upper, like: like.lower, owner: like.owner },
      { path: paths.work, mode: 0o700 },
    ],
  };
}
