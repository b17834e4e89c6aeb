import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CgroupRecord } from './cgroups/cgroup-set.js';
import type { StdioMode } from './spec.js';
import type { UsernsRecord } from './userns.js';

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
}

/** What `exit.json` holds: the helper's `exited` status line. */
export interface ExitRecord {
  type: 'exited';
  code: number;
  signal?: number;
  oom?: boolean;
}

export { defaultDataRoot as defaultRoot, defaultStateDir } from '../util/index.js';

/** Writes `data` to `path` atomically: a temporary file, then rename. */
export async function writeJsonAtomic(path: string, data: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(data));
  await rename(tmp, path);
}

/** Reads and parses a JSON file; undefined when it does not exist or is not JSON. */
export async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** The directories of one container. */
export interface ContainerPaths {
  /** `<stateDir>/<id>`: record, exit file, start fifo, mount point. */
  state: string;
  record: string;
  exit: string;
  fifo: string;
  target: string;
  /** `<root>/containers/<id>`: upper and work dirs, generated /etc files, logs. */
  bundle: string;
  upper: string;
  work: string;
  hostname: string;
  hosts: string;
  resolv: string;
  stdoutLog: string;
  stderrLog: string;
}

/** The paths of container `id`. */
export function containerPaths(root: string, stateDir: string, id: string): ContainerPaths {
  const state = join(stateDir, id);
  const bundle = join(root, 'containers', id);
  return {
    state,
    record: join(state, 'state.json'),
    exit: join(state, 'exit.json'),
    fifo: join(state, 'start.fifo'),
    target: join(state, 'rootfs'),
    bundle,
    upper: join(bundle, 'upper'),
    work: join(bundle, 'work'),
    hostname: join(bundle, 'hostname'),
    hosts: join(bundle, 'hosts'),
    resolv: join(bundle, 'resolv.conf'),
    stdoutLog: join(bundle, 'stdout.log'),
    stderrLog: join(bundle, 'stderr.log'),
  };
}

/** Creates the directories a new container needs. */
export async function makeContainerDirs(paths: ContainerPaths): Promise<void> {
  await Promise.all([
    mkdir(paths.target, { recursive: true, mode: 0o711 }),
    mkdir(paths.upper, { recursive: true, mode: 0o755 }).then(() => mkdir(paths.work, { mode: 0o700 })),
  ]);
}
