/**
 * Pods in the state directory: one directory per pod under `<stateDir>/pods`,
 * holding its record (`state.json`: the holder process whose namespaces the
 * members join, and the process that owns it), and pod names in
 * `<stateDir>/pods/names`, claimed as container names are (names.ts). The
 * runtime reads these to join a pod and to prune dead ones; `Namespace` (src/ns)
 * writes them.
 *
 * @module
 */

import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isAbandoned, isProcessAlive } from '../util/index.js';
import { endRecordedHelper, type HelperPidRecord } from './forwarder.js';
import { pruneNames, releaseName } from './names.js';
import type { PublishedPort } from './ports.js';
import { readJson } from './state.js';
import type { UsernsRecord } from './userns.js';

/** One namespace a pod can share with its members: network, SysV IPC and POSIX message queues, hostname, process ids. */
export type PodShare = 'net' | 'ipc' | 'uts' | 'pid';

/** The namespaces a pod can hold for its members (the helper's names). */
export const POD_SHARES: readonly PodShare[] = ['net', 'ipc', 'uts', 'pid'];

/** The record of one pod in the state directory, readable by every process. */
export interface PodRecord {
  version: 1;
  id: string;
  name?: string;
  /** ISO time of creation. */
  created: string;
  /** The namespaces the holder holds. */
  share: PodShare[];
  /** The hostname set in the pod's uts namespace (when it has one). */
  hostname: string;
  /** Host pid of the holder (whose /proc/PID/ns/* the members join) and its start time. */
  pid: number;
  pidStart: number;
  /** Host pid of the helper that waits for the holder, and its start time. */
  keeperPid: number;
  keeperStart: number;
  /** The process that created the pod, and its start time. */
  ownerPid: number;
  ownerStart: number;
  detached: boolean;
  /** The pod's user namespace (rootless): every member joins it. */
  userns?: UsernsRecord;
  /** The network its namespace is on (`'bridge'` or a user-defined network's name); none: loopback only. */
  network?: string;
  /** Its published ports, as bound. */
  ports?: PublishedPort[];
  /** The forwarder of its ports (and, rootless, of its outbound access). */
  forwarder?: HelperPidRecord;
}

/** The directory of every pod: `<stateDir>/pods`; names live in its `names`. */
export function podsDir(stateDir: string): string {
  return join(stateDir, 'pods');
}

/** The paths of pod `id`. */
export function podPaths(
  stateDir: string,
  id: string,
): { state: string; record: string; owner: string; shm: string; hosts: string; resolv: string; settings: string } {
  const state = join(podsDir(stateDir), id);
  return {
    state,
    record: join(state, 'state.json'),
    owner: join(state, 'owner.json'),
    shm: join(state, 'shm'),
    // The members' /etc/hosts and /etc/resolv.conf when the pod is on a network: one pair, shared by all.
    hosts: join(state, 'hosts'),
    resolv: join(state, 'resolv.conf'),
    settings: join(state, 'network.json'),
  };
}

/** Reads pod `id`'s record; undefined when there is none (or it is torn). */
export function readPodRecord(stateDir: string, id: string): Promise<PodRecord | undefined> {
  return readJson<PodRecord>(podPaths(stateDir, id).record);
}

/** Whether the pod's holder (and so its namespaces) still lives. */
export function isPodAlive(record: Pick<PodRecord, 'pid' | 'pidStart'>): boolean {
  return isProcessAlive(record.pid, record.pidStart);
}

/** The ids of every pod directory, of this process and of others. */
export async function podIds(stateDir: string): Promise<string[]> {
  const entries = await readdir(podsDir(stateDir)).catch(() => [] as string[]);
  return entries.filter((e) => /^[0-9a-f]{64}$/.test(e));
}

/**
 * Removes the records (and names) of pods whose holder is dead: killed,
 * or gone with its owner. A directory without a record is taken once its
 * creating process is gone.
 *
 * @returns the ids of the pods removed.
 */
export async function prunePods(stateDir: string): Promise<string[]> {
  const removed: string[] = [];
  // A creation killed before it renamed its directory into place.
  for (const entry of await readdir(podsDir(stateDir)).catch(() => [] as string[])) {
    if (entry.startsWith('.new-') && isAbandoned(entry)) await rm(join(podsDir(stateDir), entry), { recursive: true, force: true });
  }
  for (const id of await podIds(stateDir)) {
    const paths = podPaths(stateDir, id);
    const record = await readPodRecord(stateDir, id);
    if (record !== undefined) {
      if (isPodAlive(record)) continue;
      await endRecordedHelper(record.forwarder);
      if (record.name !== undefined) await releaseName(podsDir(stateDir), record.name, id, 'pod');
    } else {
      const owner = await readJson<{ pid: number; start: number }>(paths.owner);
      if (owner !== undefined && isProcessAlive(owner.pid, owner.start)) continue;
    }
    await rm(paths.state, { recursive: true, force: true });
    removed.push(id);
  }
  await pruneNames(podsDir(stateDir));
  return removed;
}
