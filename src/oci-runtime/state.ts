/**
 * dockless-runtime's state directory: one directory per container under
 * `--root`, holding `state.json` (the record below), `native-state` (the part
 * of it the native front end reads, in the line format of native/PROTOCOL.md),
 * a copy of the bundle's
 * config (for `exec`), the start FIFO (`exec.fifo`, removed by `start`) and the
 * empty directory the root is assembled on. The container's status is read
 * live: its pid 1 with its start time, the FIFO, the freezer.
 *
 * @module
 */

import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { isFrozen, writeJsonAtomic, type CgroupPlan, type CgroupRecord, type ContainerResources } from '../runtime/index.js';
import { isErrno, parseJsonObject, writeFileAtomic } from '../util/index.js';

/** The runtime-spec version dockless-runtime implements. */
export const OCI_VERSION = '1.0.2';

/** A container's status, as the runtime-spec names it (with runc's `paused`). */
export type OciStatus = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

/** What `state.json` holds. */
export interface OciRecord {
  /** The container's id. */
  id: string;
  /** The bundle directory. */
  bundle: string;
  /** The rootfs directory. */
  rootfs: string;
  /** Host pid of pid 1; 0 while creating. */
  pid: number;
  /** Its start time in clock ticks since boot, so that a reused pid is never taken for it. */
  pidStart: number;
  /** When it was created (ISO 8601). */
  created: string;
  /** The caller's uid. */
  owner: number;
  /** config.json's annotations. */
  annotations: Record<string, string>;
  /** The container's cgroups. */
  cgroups: CgroupRecord[];
  /** The plan its cgroups were made from, with the limits `update` wrote since (absent in records of older versions). */
  cgroupPlan?: CgroupPlan;
  /** Its limits, from config.json's `linux.resources` and `update`. */
  resources?: ContainerResources;
  /** The namespaces `exec` joins (the helper's names, user aside). */
  namespaces: string[];
  /** Whether it has a user namespace (made or joined). */
  userns: boolean;
  /** The hooks of config.json that run after `create` (the native front end hands `start` and `delete` to Node for them). */
  hooks?: ('startContainer' | 'poststart' | 'poststop')[];
}

const ID_RE = /^[\w+.-]+$/;

/** The paths of one container's state. */
export interface OciPaths {
  /** The container's directory. */
  dir: string;
  /** `state.json`. */
  state: string;
  /** `native-state`: what the native front end reads. */
  nativeState: string;
  /** The bundle's config.json, as it was at create. */
  config: string;
  /** The start FIFO. */
  fifo: string;
  /** The empty directory the root is assembled on. */
  target: string;
}

/**
 * The state paths of container `id`.
 *
 * @throws {@link InvalidArgumentError} for an id that is not a safe file name.
 */
export function ociPaths(root: string, id: string): OciPaths {
  if (!ID_RE.test(id) || id === '.' || id === '..') throw new InvalidArgumentError(`container id \`${id}\` must be letters, digits and \`_+.-\``);
  const dir = join(root, id);
  return {
    dir,
    state: join(dir, 'state.json'),
    nativeState: join(dir, 'native-state'),
    config: join(dir, 'config.json'),
    fifo: join(dir, 'exec.fifo'),
    target: join(dir, 'rootfs'),
  };
}

/**
 * Reads container `id`'s record.
 *
 * @throws {@link NotFoundError} when there is no such container.
 */
export async function readRecord(root: string, id: string): Promise<OciRecord> {
  const paths = ociPaths(root, id);
  let text: string;
  try {
    text = await readFile(paths.state, 'utf8');
  } catch (cause) {
    if (isErrno(cause, 'ENOENT', 'ENOTDIR')) throw new NotFoundError(`container \`${id}\` does not exist`, { cause, path: paths.dir });
    throw cause;
  }
  return parseJsonObject<OciRecord>(text, `state of container ${id}`, { path: paths.state });
}

/** The first line of `native-state`; a reader that does not know it hands the command to Node. */
export const NATIVE_STATE_FORMAT = 'dockless-runtime-state 1';

/**
 * The `native-state` text of `record`: one `key value` per line, strings as
 * JSON literals (so that the native front end prints them as Node would and
 * never parses JSON beyond a string), `annotations` as compact JSON.
 */
export function nativeStateText(record: OciRecord): string {
  const lines = [
    NATIVE_STATE_FORMAT,
    `id ${JSON.stringify(record.id)}`,
    `pid ${record.pid}`,
    `pidStart ${record.pidStart}`,
    `bundle ${JSON.stringify(record.bundle)}`,
    `rootfs ${JSON.stringify(record.rootfs)}`,
    `created ${JSON.stringify(record.created)}`,
    `owner ${record.owner}`,
    `annotations ${JSON.stringify(record.annotations)}`,
    ...record.cgroups.map((c) => `cgroup ${c.version} ${c.controllers.length > 0 ? c.controllers.join(',') : '-'} ${JSON.stringify(c.dir)}`),
    ...(record.hooks !== undefined && record.hooks.length > 0 ? [`hooks ${record.hooks.join(' ')}`] : []),
  ];
  return `${lines.join('\n')}\n`;
}

/** Writes container `id`'s record atomically: `state.json`, then `native-state`. */
export async function writeRecord(root: string, record: OciRecord): Promise<void> {
  const paths = ociPaths(root, record.id);
  await writeJsonAtomic(paths.state, record);
  await writeFileAtomic(paths.nativeState, nativeStateText(record), paths.dir, { sync: false });
}

/** The ids of every container under `root`. */
export async function listIds(root: string): Promise<string[]> {
  await mkdir(root, { recursive: true, mode: 0o711 });
  const names = await readdir(root);
  return names.filter((n) => ID_RE.test(n)).sort();
}

/** Whether `pid` is still the process that started at `start` and has not exited (a zombie has). */
export function isAlive(pid: number, start: number): boolean {
  if (pid <= 0) return false;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  // Fields after the command, which may itself hold spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[0] !== 'Z' && fields[0] !== 'X' && Number(fields[19]) === start;
}

/** The container's status, read live. */
export function statusOf(record: OciRecord, paths: OciPaths): OciStatus {
  if (record.pid === 0) return 'creating';
  if (!isAlive(record.pid, record.pidStart)) return 'stopped';
  // `start` removes the FIFO once it has opened the gate.
  if (existsSync(paths.fifo)) return 'created';
  return isFrozen(record.cgroups) ? 'paused' : 'running';
}

/** The runtime-spec state of a container (what `state` prints). */
export interface OciState {
  /** The runtime-spec version. */
  ociVersion: string;
  /** The container's id. */
  id: string;
  /** Its status. */
  status: OciStatus;
  /** pid 1's host pid; 0 once stopped. */
  pid: number;
  /** The bundle. */
  bundle: string;
  /** The rootfs (runc's extra field). */
  rootfs: string;
  /** When it was created (runc's extra field). */
  created: string;
  /** The caller's user name or uid (runc's extra field). */
  owner: string;
  /** config.json's annotations. */
  annotations: Record<string, string>;
}

/** The runtime-spec state of `record`. */
export function stateOf(record: OciRecord, paths: OciPaths): OciState {
  const status = statusOf(record, paths);
  return {
    ociVersion: OCI_VERSION,
    id: record.id,
    status,
    pid: status === 'stopped' ? 0 : record.pid,
    bundle: record.bundle,
    rootfs: record.rootfs,
    created: record.created,
    owner: record.owner === 0 ? 'root' : String(record.owner),
    annotations: record.annotations,
  };
}
