/**
 * `runtime.audit()`: everything dockless made on this host for one state
 * directory, each thing with whether it is *orphaned* (nothing will ever use
 * or remove it but `prune()`) and why. The rules are those `prune()` and the
 * reap at open (reap.ts) act on, so that what the audit calls orphaned is what
 * `prune()` removes (`prune()` also takes a `dockless-<id>` cgroup that no
 * container of its state directory has once it is empty and a minute old,
 * which the audit cannot call orphaned: it may be another state directory's
 * stopped container); a test suite asserts that nothing is orphaned at its end.
 * Networks (places, veths, firewall elements) are audited by the network
 * attacher, one level up.
 *
 * @module
 */

import { execFile } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join, posix } from 'node:path';
import { isAbandoned, isProcessAlive, processStartTime } from '../util/index.js';
import type { CgroupHost } from './cgroups/detect.js';
import { parentDirs } from './cgroups/policy.js';
import { isClaimLive, namesDir, readNameClaim } from './names.js';
import { isPodAlive, podIds, podPaths, readPodRecord } from './pods.js';
import { isAbandonedLaunch, isOlderThan, LEFTOVER_GRACE_MS } from './prune.js';
import { orphanReason } from './reap.js';
import { readJson, type ContainerRecord } from './state.js';
import { settleTeardowns, TEARDOWN_WAIT_MS } from './teardowns.js';
import { TRASH_DIR } from './trash.js';

/** What kind of thing an {@link AuditEntry} is. */
export type AuditKind =
  | 'container'
  | 'launch'
  | 'data'
  | 'cgroup'
  | 'mount'
  | 'name'
  | 'pod'
  | 'process'
  | 'lease'
  | 'network-place'
  | 'veth'
  | 'bridge'
  | 'nft-element';

/** One thing dockless made on the host, as {@link Runtime.audit} finds it. */
export interface AuditEntry {
  /** What it is: a container's state record, a launch's state directory without one, a data directory, a cgroup, a mount, a name, a pod, a helper process, an image lease, a network place, a veth, a network's bridge, a firewall set element. */
  kind: AuditKind;
  /** Which one: a path, a name, a pid, a lease id, an interface name. */
  what: string;
  /** The container (or pod) it belongs to, when it belongs to one. */
  id?: string;
  /** Nothing will use or remove it but `prune()`. */
  orphaned: boolean;
  /** Why it is orphaned, or what keeps it. */
  reason: string;
}

/** Where {@link auditRuntime} looks. */
export interface AuditScope {
  root: string;
  stateDir: string;
  cgroupHost: CgroupHost;
  cgroupParent: string | undefined;
  /** The image leases of the runtime's store, when it has one. */
  leases?: () => Promise<{ id: string; created: string; owner?: { pid: number; start: number } }[]>;
  /** @default {@link LEFTOVER_GRACE_MS} */
  graceMs?: number;
  /** How long to wait for the mount namespace teardowns of containers removed by this process. @default {@link TEARDOWN_WAIT_MS} */
  teardownWaitMs?: number;
}

const ID_RE = /^[0-9a-f]{64}$/;
const CGROUP_RE = /^dockless-([0-9a-f]{64})$/;
const LEASE_RE = /^container-([0-9a-f]{64})$/;

function containerState(record: ContainerRecord): { orphaned: boolean; reason: string } {
  const orphan = orphanReason(record);
  if (orphan !== undefined) return { orphaned: true, reason: orphan };
  const running = processStartTime(record.pid) === record.pidStart;
  if (record.detached) return { orphaned: false, reason: running ? 'detached, running' : 'detached, stopped: kept until removed' };
  return { orphaned: false, reason: `owned by pid ${record.ownerPid}, ${running ? 'running' : 'stopped: kept until removed'}` };
}

/** Mount points of this mount namespace, from `/proc/self/mountinfo` (octal escapes decoded). */
async function mountPoints(): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => (line.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}

/** The parent of `pid` (`/proc/PID/stat` field 4), or undefined. */
async function parentPid(pid: number): Promise<number | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  const ppid = text?.slice(text.lastIndexOf(')') + 2).split(' ')[1];
  return ppid !== undefined ? Number(ppid) : undefined;
}

function isUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/** Audits the containers, launches, data directories, cgroups, mounts, names, pods, their processes and image leases of a state directory. */
export async function auditRuntime(scope: AuditScope): Promise<AuditEntry[]> {
  const grace = scope.graceMs ?? LEFTOVER_GRACE_MS;
  const entries: AuditEntry[] = [];
  /** Containers by id: whether the container (or launch) is orphaned. */
  const known = new Map<string, boolean>();

  // First, so that what follows sees a settled host: a removed container's mount namespace
  // (with its mounts) goes a moment after remove() returns, in a process of the shim's.
  for (const t of await settleTeardowns(scope.stateDir, scope.teardownWaitMs ?? TEARDOWN_WAIT_MS)) {
    entries.push({ kind: 'process', what: String(t.pid), id: t.id, orphaned: false, reason: "dropping a removed container's mount namespace: it ends by itself" });
  }

  for (const entry of await readdir(scope.stateDir).catch(() => [] as string[])) {
    const path = join(scope.stateDir, entry);
    if (entry.startsWith('.new-') || entry.startsWith('.reap-')) {
      const abandoned = isAbandoned(entry);
      const id = /^\.reap-([0-9a-f]{64})-/.exec(entry)?.[1];
      if (id !== undefined) known.set(id, true);
      entries.push({
        kind: entry.startsWith('.new-') ? 'launch' : 'container',
        what: path,
        ...(id !== undefined ? { id } : {}),
        orphaned: abandoned,
        reason: abandoned ? 'the process that was making or removing it died half-way' : 'being made or removed by a live process',
      });
      continue;
    }
    if (!ID_RE.test(entry)) continue;
    const record = await readJson<ContainerRecord>(join(path, 'state.json'));
    if (record === undefined) {
      const abandoned = await isAbandonedLaunch(path, grace);
      known.set(entry, abandoned);
      entries.push({ kind: 'launch', what: path, id: entry, orphaned: abandoned, reason: abandoned ? 'a launch whose process died before it finished' : 'a launch in progress' });
      continue;
    }
    const state = containerState(record);
    known.set(entry, state.orphaned);
    entries.push({ kind: 'container', what: path, id: entry, ...state });
    const running = processStartTime(record.pid) === record.pidStart;
    if (running) {
      entries.push({ kind: 'process', what: String(record.pid), id: entry, orphaned: false, reason: "the container's pid 1" });
      const shim = await parentPid(record.pid);
      if (shim !== undefined && shim > 1) entries.push({ kind: 'process', what: String(shim), id: entry, orphaned: false, reason: "the container's shim" });
    }
    if (record.forwarder !== undefined && processStartTime(record.forwarder.pid) === record.forwarder.start) {
      entries.push({
        kind: 'process',
        what: String(record.forwarder.pid),
        id: entry,
        orphaned: !running,
        reason: running ? "the container's port forwarder" : 'the port forwarder of a container that is not running',
      });
    }
  }

  const dataDir = join(scope.root, 'containers');
  for (const trash of [join(scope.stateDir, TRASH_DIR), join(dataDir, TRASH_DIR)]) {
    for (const name of await readdir(trash).catch(() => [] as string[])) {
      const abandoned = isAbandoned(name);
      const id = /^([0-9a-f]{64})-/.exec(name)?.[1];
      entries.push({
        kind: trash.startsWith(dataDir) ? 'data' : 'container',
        what: join(trash, name),
        ...(id !== undefined ? { id } : {}),
        orphaned: abandoned,
        reason: abandoned ? 'the process that was removing it died half-way' : 'being removed by a live process',
      });
    }
  }
  for (const id of await readdir(dataDir).catch(() => [] as string[])) {
    if (!ID_RE.test(id)) continue;
    const path = join(dataDir, id);
    const owner = known.get(id);
    if (owner !== undefined) {
      entries.push({ kind: 'data', what: path, id, orphaned: owner, reason: owner ? 'its container is orphaned' : 'its container\'s files' });
      continue;
    }
    const old = await isOlderThan(path, grace);
    entries.push({ kind: 'data', what: path, id, orphaned: old, reason: old ? 'no container has it' : 'no container yet (a launch may be making it)' });
  }

  for (const h of scope.cgroupHost.hierarchies) {
    let parent: string;
    try {
      parent = parentDirs(h, scope.cgroupParent).parentDir;
    } catch {
      continue;
    }
    for (const name of await readdir(parent).catch(() => [] as string[])) {
      const id = CGROUP_RE.exec(name)?.[1];
      if (id === undefined) continue;
      const path = posix.join(parent, name);
      const owner = known.get(id);
      if (owner !== undefined) {
        entries.push({ kind: 'cgroup', what: path, id, orphaned: owner, reason: owner ? 'its container is orphaned' : "the container's cgroup" });
        continue;
      }
      // Runtimes with other state directories share the cgroup parent: a stopped container of
      // theirs keeps an empty cgroup too, so one that is not ours is never called orphaned here.
      entries.push({ kind: 'cgroup', what: path, id, orphaned: false, reason: 'no container of this state directory has it (another state directory\'s?)' });
    }
  }

  for (const point of await mountPoints()) {
    if (!isUnder(point, join(scope.root, 'containers')) && !isUnder(point, scope.stateDir)) continue;
    const id = /\/([0-9a-f]{64})(\/|$)/.exec(point)?.[1];
    entries.push({
      kind: 'mount',
      what: point,
      ...(id !== undefined ? { id } : {}),
      // A container's mounts live in its own mount namespace: one in ours outlives it.
      orphaned: true,
      reason: "mounted in the caller's mount namespace, where dockless mounts nothing",
    });
  }

  for (const name of await readdir(namesDir(scope.stateDir)).catch(() => [] as string[])) {
    if (name.startsWith('.')) continue;
    const claim = await readNameClaim(scope.stateDir, name).catch(() => undefined);
    if (claim === undefined) continue;
    const live = await isClaimLive(scope.stateDir, claim);
    entries.push({ kind: 'name', what: name, id: claim.id, orphaned: !live, reason: live ? 'claimed by its container' : 'its container is gone' });
  }

  for (const id of await podIds(scope.stateDir)) {
    const record = await readPodRecord(scope.stateDir, id);
    const path = podPaths(scope.stateDir, id).state;
    if (record === undefined) {
      const owner = await readJson<{ pid: number; start: number }>(podPaths(scope.stateDir, id).owner);
      const alive = owner !== undefined && isProcessAlive(owner.pid, owner.start);
      entries.push({ kind: 'pod', what: path, id, orphaned: !alive, reason: alive ? 'a pod being made' : 'a pod whose maker died before it finished' });
      continue;
    }
    const alive = isPodAlive(record);
    entries.push({ kind: 'pod', what: path, id, orphaned: !alive, reason: alive ? 'its holder runs' : 'its holder is gone' });
    if (alive) entries.push({ kind: 'process', what: String(record.pid), id, orphaned: false, reason: "the pod's namespace holder" });
    if (processStartTime(record.keeperPid) === record.keeperStart) {
      entries.push({ kind: 'process', what: String(record.keeperPid), id, orphaned: !alive, reason: alive ? "the pod's keeper" : 'the keeper of a pod whose holder is gone' });
    }
    if (record.forwarder !== undefined && processStartTime(record.forwarder.pid) === record.forwarder.start) {
      entries.push({ kind: 'process', what: String(record.forwarder.pid), id, orphaned: !alive, reason: alive ? "the pod's port forwarder" : 'the port forwarder of a pod that is gone' });
    }
  }

  for (const lease of (await scope.leases?.().catch(() => [])) ?? []) {
    const id = LEASE_RE.exec(lease.id)?.[1];
    if (id === undefined) continue;
    const exists = await stat(join(scope.stateDir, id)).then(() => true, () => false);
    // A launch takes the lease just before it makes its state directory.
    const launching =
      !exists && (lease.owner !== undefined ? isProcessAlive(lease.owner.pid, lease.owner.start) : Date.now() - Date.parse(lease.created) < grace);
    const orphaned = known.get(id) === true || (!exists && !launching);
    entries.push({
      kind: 'lease',
      what: lease.id,
      id,
      orphaned,
      reason: orphaned ? 'the image lease of a container that is gone' : launching ? 'taken by a launch in progress' : "its container's image",
    });
  }
  return entries;
}

/**
 * Unmounts `path` lazily (`umount -l`, MNT_DETACH: whoever still uses it
 * keeps it until done), for `prune()` of a mount the audit found orphaned.
 * util-linux's `umount` rather than a helper op: a mount in the caller's
 * namespace is a crash's leftover, never the normal path, as nft is for networks.
 */
export async function unmountDetached(path: string): Promise<void> {
  await promisify(execFile)('umount', ['-l', '--', path]);
}
