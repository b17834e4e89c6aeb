/**
 * Which namespaces a container makes and which it joins, decided from its
 * `network` and `namespace` (pod): `'none'` (its own network namespace,
 * loopback only), `'host'` (none), `{ container }` (another container's, as
 * `docker run --network container:X`), a pod's shared namespaces, or a
 * network namespace of its own wired to `'bridge'` or a user-defined network;
 * and which network the attacher is asked for.
 *
 * @module
 */

import { readFileSync } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { InvalidArgumentError, InvalidStateError, NotFoundError } from '../errors.js';
import { shown } from '../helper/index.js';
import { isProcessAlive, processStartTime } from '../util/index.js';
import { DEFAULT_NAMESPACES } from './defaults.js';
import { isPodAlive, podPaths, readPodRecord } from './pods.js';
import type { ContainerSpec, NetworkRef, NetworkSetting } from './spec.js';
import type { HelperMount } from './defaults.js';
import { readJson, type ContainerPaths, type ContainerRecord } from './state.js';
import { hostIdOf, type UsernsPlan, type UsernsRecord } from './userns.js';

/** A process whose namespaces a container joins through /proc/PID/ns. */
export interface NamespaceHolder {
  pid: number;
  start: number;
  /** What it is, for messages: `pod 3f2a…`, `container 3f2a…`. */
  what: string;
}

/** The /etc files a container gets. */
export type EtcFiles =
  /** Its own, generated. */
  | { kind: 'own' }
  /** Copies of the host's /etc/hosts and /etc/resolv.conf. */
  | { kind: 'host'; hosts: string; resolv: string }
  /** Another container's, bind-mounted: they are shared, as Docker shares them. */
  | { kind: 'shared'; hostname: string; hosts: string; resolv: string };

/** How a container's namespaces are made, decided from its network and pod. */
export interface NamespacePlan {
  /** The network mode, for the record: `none`, `host`, `container:<id>`, `pod`. */
  mode: string;
  /** Namespaces it makes of its own (the helper's names). */
  namespaces: string[];
  /** Namespaces it joins: `[type, /proc/PID/ns/type]`. */
  joins: [string, string][];
  /** A hostname it must have (the pod's, the other container's, the host's); none: the spec's or its short id. */
  hostname?: string;
  /** The helper must not set the hostname: the uts namespace is joined. */
  utsJoined: boolean;
  /** The /etc files. */
  etc: EtcFiles;
  /** A user namespace it joins (rootless: the pod's, the other container's), and its maps. */
  userns?: UsernsRecord;
  /**
   * The network namespace is neither its own nor owned by its user namespace:
   * sysfs cannot be mounted there (the kernel asks for CAP_SYS_ADMIN over the
   * network namespace), so /sys is a read-only bind of the host's, as runc does.
   */
  hostSys: boolean;
  /** The pod it is in. */
  pod?: string;
  /**
   * A directory bind-mounted on /dev/shm instead of a tmpfs of its own: the
   * pod's, when it shares `ipc`, so that POSIX shared memory is shared as SysV's is.
   */
  shm?: string;
  /** The processes whose namespaces it joins: checked alive again once the helper holds them. */
  holders: NamespaceHolder[];
}

/** What resolving a plan needs of the runtime. */
export interface NamespaceContext {
  stateDir: string;
  /** The runtime's default network. */
  network: NetworkSetting | undefined;
  /** Whether the container gets a user namespace (the runtime's or the spec's). */
  userns: boolean;
  /** The paths of a container, by the reference a user gave. */
  containerPaths: (ref: string) => Promise<ContainerPaths>;
}

function isNetworkRef(value: Exclude<NetworkSetting, string>): value is NetworkRef {
  return !('container' in value);
}

/**
 * Checks the shape of `network` (of a spec or of the runtime options).
 *
 * @throws {@link InvalidArgumentError} naming the field.
 */
export function validateNetwork(network: unknown, field: string): asserts network is NetworkSetting | undefined {
  if (network === undefined) return;
  if (network === 'none' || network === 'host' || network === 'bridge') return;
  if (typeof network === 'object' && network !== null) {
    if ('container' in network) {
      const c = (network as { container: unknown }).container;
      if ((typeof c === 'string' && c !== '') || (typeof c === 'object' && c !== null && typeof (c as { id?: unknown }).id === 'string')) return;
      throw new InvalidArgumentError(`${field}.container must be a container or its id or name`);
    }
    if (typeof (network as { name?: unknown }).name === 'string') return;
  }
  throw new InvalidArgumentError(`${field} must be 'none', 'host', 'bridge', a network or { container }`);
}

/** The namespaces of a container that shares none: {@link DEFAULT_NAMESPACES}. */
function own(except: readonly string[]): string[] {
  return DEFAULT_NAMESPACES.filter((ns) => !except.includes(ns));
}

function nsPath(pid: number, type: string): string {
  return `/proc/${pid}/ns/${type}`;
}

/**
 * A process of the container whose namespace files its owner may open: pid 1,
 * or where pid 1 is the helper's non-dumpable init (which only CAP_SYS_PTRACE
 * on the host may open, and a rootless caller lacks), the init's first child,
 * the container's command, executed in the container's user namespace. As
 * `exec` does (native/PROTOCOL.md).
 */
async function openablePid(record: ContainerRecord): Promise<NamespaceHolder> {
  const what = `container ${record.id.slice(0, 12)}`;
  const found = await openableNetnsPid(record.pid);
  if (found === undefined) throw new InvalidStateError(`${what}: no process of it whose namespaces can be joined`);
  return { ...found, what };
}

/**
 * The container process whose `ns/net` this caller may open: `pid` (a
 * container's pid 1) or, where that is the helper's non-dumpable init, its
 * first child; undefined when neither can be opened (or both are gone).
 * As `exec` finds it (native/PROTOCOL.md).
 */
export async function openableNetnsPid(pid: number): Promise<{ pid: number; start: number } | undefined> {
  const candidates = [pid];
  const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  for (const word of children.split(/\s+/)) if (/^\d+$/.test(word)) candidates.push(Number(word));
  for (const p of candidates) {
    const start = processStartTime(p);
    if (start === undefined) continue;
    const handle = await open(nsPath(p, 'net'), 'r').catch(() => undefined);
    if (handle === undefined) continue;
    await handle.close();
    return { pid: p, start };
  }
  return undefined;
}

/**
 * Decides a container's namespaces from its `network` and `namespace`.
 *
 * @throws {@link InvalidArgumentError} for a `hostname` or `userns` that the joined
 *   namespaces rule out, `network` with a pod that shares `net`.
 * @throws {@link NotFoundError} when the pod or the other container does not exist.
 * @throws {@link InvalidStateError} when the pod's holder or the other container is not running.
 */
export async function planNamespaces(spec: ContainerSpec, ctx: NamespaceContext): Promise<NamespacePlan> {
  if (spec.namespace !== undefined) return planPod(spec, ctx);
  const network = spec.network ?? ctx.network ?? 'none';
  const base = { utsJoined: false, hostSys: false, holders: [] as NamespaceHolder[], joins: [] as [string, string][] };
  if (network === 'none') return { ...base, mode: 'none', namespaces: own([]), etc: { kind: 'own' } };
  if (network === 'host') {
    return {
      ...base,
      mode: 'host',
      namespaces: own(['net']),
      hostname: spec.hostname ?? osHostname(),
      etc: { kind: 'host', hosts: readHostFile('/etc/hosts'), resolv: readHostFile('/etc/resolv.conf') },
      // The host's network namespace is the initial user namespace's.
      hostSys: ctx.userns,
    };
  }
  if (network === 'bridge' || isNetworkRef(network)) {
    return { ...base, mode: network === 'bridge' ? 'bridge' : network.name, namespaces: own([]), etc: { kind: 'own' } };
  }
  if (spec.hostname !== undefined) {
    throw new InvalidArgumentError('container spec: conflicting options: hostname and network { container } (the other container gives it)');
  }
  const ref = typeof network.container === 'string' ? network.container : network.container.id;
  const other = await peer(ref, await ctx.containerPaths(ref));
  const what = `container ${other.record.id.slice(0, 12)}`;
  if (!isProcessAlive(other.record.pid, other.record.pidStart) || (await stat(other.exit).then(() => true, () => false))) {
    throw new InvalidStateError(`container spec: network: cannot join the network of ${what}: it is not running`);
  }
  const rootless = other.record.userns?.rootless === true;
  if (rootless && spec.userns !== undefined) {
    throw new InvalidArgumentError(`container spec: userns: a rootless container joining the network of ${what} takes its user namespace`);
  }
  const holder = rootless ? await openablePid(other.record) : { pid: other.record.pid, start: other.record.pidStart, what };
  return {
    ...base,
    mode: `container:${other.record.id}`,
    namespaces: own(['net']),
    joins: [...(rootless ? ([['user', nsPath(holder.pid, 'user')]] as [string, string][]) : []), ['net', nsPath(holder.pid, 'net')]],
    hostname: other.hostname,
    etc: { kind: 'shared', hostname: other.hostname, hosts: other.hosts, resolv: other.resolv },
    ...(rootless ? { userns: other.record.userns! } : {}),
    hostSys: !rootless && ctx.userns,
    holders: [holder],
  };
}

/** What joining a container's network namespace needs of it. */
async function peer(ref: string, paths: ContainerPaths) {
  const record = await readJson<ContainerRecord>(paths.record);
  if (record === undefined) throw new NotFoundError(`no such container: ${ref}`);
  const hostname = (await readFile(paths.hostname, 'utf8').catch(() => '')).trim() || record.id.slice(0, 12);
  return { record, hostname, hosts: paths.hosts, resolv: paths.resolv, exit: paths.exit };
}

async function planPod(spec: ContainerSpec, ctx: NamespaceContext): Promise<NamespacePlan> {
  const id = spec.namespace?.id;
  if (typeof id !== 'string' || !/^[0-9a-f]{64}$/.test(id)) throw new InvalidArgumentError('container spec: namespace must be a Namespace');
  const pod = await readPodRecord(ctx.stateDir, id);
  const what = `pod ${id.slice(0, 12)}`;
  if (pod === undefined) throw new NotFoundError(`container spec: namespace: no ${what} in \`${ctx.stateDir}\``);
  if (!isPodAlive(pod)) throw new InvalidStateError(`container spec: namespace: ${what} is not running (its holder is gone)`);
  const shared = pod.share as string[];
  if (shared.includes('net') && spec.network !== undefined) {
    throw new InvalidArgumentError(`container spec: network cannot be given for a container in ${what}, which shares its network namespace`);
  }
  if (shared.includes('uts') && spec.hostname !== undefined) {
    throw new InvalidArgumentError(`container spec: hostname cannot be given for a container in ${what}, which shares its uts namespace`);
  }
  if (pod.userns !== undefined && spec.userns !== undefined) {
    throw new InvalidArgumentError(`container spec: userns cannot be given for a container in ${what}: it joins the pod's user namespace`);
  }
  if (pod.userns === undefined && ctx.userns) {
    // The pod's namespaces are the host's user namespace's: a container root of its
    // own user namespace could mount neither /proc nor mqueue in them.
    throw new InvalidArgumentError(`container spec: userns: a container in ${what} cannot have a user namespace of its own`);
  }
  if (!shared.includes('net') && spec.network !== undefined && spec.network !== 'none') {
    throw new InvalidArgumentError(`container spec: network: only 'none' for a container in ${what}`);
  }
  const joins: [string, string][] = [];
  if (pod.userns !== undefined) joins.push(['user', nsPath(pod.pid, 'user')]);
  for (const ns of shared) joins.push([ns, nsPath(pod.pid, ns)]);
  return {
    mode: shared.includes('net') ? `pod:${id}` : 'none',
    namespaces: own(shared),
    joins,
    ...(shared.includes('uts') ? { hostname: pod.hostname } : {}),
    utsJoined: shared.includes('uts'),
    // A pod on a network: its address is in the pod's /etc/hosts, which the network engine keeps current.
    etc:
      pod.network !== undefined && shared.includes('net')
        ? { kind: 'shared', hostname: pod.hostname, hosts: podPaths(ctx.stateDir, id).hosts, resolv: podPaths(ctx.stateDir, id).resolv }
        : { kind: 'own' },
    ...(pod.userns !== undefined ? { userns: pod.userns } : {}),
    hostSys: false,
    pod: id,
    ...(shared.includes('ipc') ? { shm: podPaths(ctx.stateDir, id).shm } : {}),
    holders: [{ pid: pod.pid, start: pod.pidStart, what }],
  };
}

function readHostFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Once the helper has opened the namespace files: every holder is still the
 * process it was before (a pid is not reused while its process lives, so the
 * files opened in between were its).
 *
 * @throws {@link InvalidStateError} when one has gone meanwhile.
 */
export function checkHolders(holders: readonly NamespaceHolder[]): void {
  for (const h of holders) {
    if (!isProcessAlive(h.pid, h.start)) throw new InvalidStateError(`${h.what} ended while a container was joining its namespaces`);
  }
}

/** The mounts of /etc/hostname, /etc/hosts and /etc/resolv.conf: the container's own files, or those it shares. */
export function etcMounts(plan: NamespacePlan, paths: ContainerPaths): HelperMount[] {
  const files = plan.etc.kind === 'shared' ? plan.etc : { hostname: paths.hostname, hosts: paths.hosts, resolv: paths.resolv };
  return [
    { type: 'bind', source: paths.hostname, target: '/etc/hostname', options: [], nofollow: true },
    { type: 'bind', source: files.hosts, target: '/etc/hosts', options: [], nofollow: true },
    { type: 'bind', source: files.resolv, target: '/etc/resolv.conf', options: [], nofollow: true },
  ];
}

/** sysfs, where it cannot be mounted, as a read-only bind of the host's (runc's fallback). */
export function hostSysfs(m: HelperMount): HelperMount {
  return m.type === 'sysfs' ? { ...m, type: 'bind', source: '/sys', options: ['rbind', ...m.options] } : m;
}

/** The runtime's own mounts as a plan changes them: /sys bound from the host's, /dev/shm from the pod's. */
export function defaultMounts(plan: NamespacePlan, mounts: readonly HelperMount[]): HelperMount[] {
  return mounts.map((m) => {
    if (m.type === 'sysfs' && plan.hostSys) return hostSysfs(m);
    if (m.target === '/dev/shm' && plan.shm !== undefined) {
      return { type: 'bind', source: plan.shm, target: m.target, options: ['nosuid', 'noexec', 'nodev'], nofollow: true };
    }
    return m;
  });
}

/** The container's user namespace when it joins another's: that one's maps. */
export function joinedUserns(plan: UsernsPlan, joined: UsernsRecord): UsernsPlan {
  const root = { uid: hostIdOf(joined.uidMap, 0) ?? plan.hostRoot.uid, gid: hostIdOf(joined.gidMap, 0) ?? plan.hostRoot.gid };
  return { ...plan, uidMap: joined.uidMap, gidMap: joined.gidMap, rootless: joined.rootless, idmapRoot: false, hostRoot: root };
}

const ALIAS_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

/**
 * The network to attach `spec`'s container to (the spec's, else the
 * runtime's default), or `undefined` when it gets no link: `'none'`, `'host'`,
 * `{ container }`, a pod's network.
 *
 * @throws {@link InvalidArgumentError} for a malformed alias, aliases without a
 *   network, or a network without an attacher.
 */
export function networkOf(spec: ContainerSpec, fallback: NetworkSetting | undefined, hasAttacher: boolean): 'bridge' | NetworkRef | undefined {
  const aliases = spec.networkAliases ?? [];
  if (!Array.isArray(aliases) || !aliases.every((a) => typeof a === 'string' && ALIAS_RE.test(a))) {
    throw new InvalidArgumentError(`container spec: networkAliases must be names matching ${ALIAS_RE.source}`);
  }
  const network = spec.namespace !== undefined ? (spec.network ?? 'none') : (spec.network ?? fallback ?? 'none');
  if (network === 'bridge' || (typeof network === 'object' && network !== null && isNetworkRef(network))) {
    if (!hasAttacher) {
      throw new InvalidArgumentError(`container spec: network ${shown(typeof network === 'string' ? network : network.name)} is not available: this runtime has no network attacher`);
    }
    return network;
  }
  if (aliases.length > 0) throw new InvalidArgumentError("container spec: networkAliases needs 'bridge' or a user-defined network");
  return undefined;
}
