/**
 * `Namespace`: a pod, a set of namespaces (net, ipc, uts, optionally pid)
 * that several containers join. The namespaces are held by the helper's
 * `pause` op (native/pause.c), not by files mounted in the caller's mount
 * namespace; the pod's record lives in the runtime's state directory
 * (`<stateDir>/pods/<id>`) so that every process can find, inspect and remove it.
 *
 * @module
 */

import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import createDebug from 'debug';
import { InvalidArgumentError, InvalidStateError, IOError, NotFoundError, PermissionError } from '../errors.js';
import { sealedHelperPath, shown, spawnHelper, type HelperProcess } from '../helper/index.js';
import {
  NAME_RE,
  POD_SHARES,
  Forwarder,
  checkPortPrivilege,
  claimName,
  endRecordedHelper,
  hostsFile,
  parsePorts,
  resolvConf,
  unprivilegedPortStart,
  isPodAlive,
  podIds,
  podPaths,
  podsDir,
  readNameClaim,
  readPodRecord,
  releaseName,
  usernsArgs,
  writeJsonAtomic,
  type ContainerInfo,
  type LaunchOwner,
  type NamespaceRef,
  type NetworkRef,
  type PodRecord,
  type PodShare,
  type PortSpec,
  type PublishedPort,
  type Runtime,
  type SharedNetns,
} from '../runtime/index.js';
import { isProcessAlive, ownerToken, processStartTime, randomHex, selfStartTime } from '../util/index.js';

import { DEFAULT_NETWORK, NetworkEngine } from './network-engine.js';

const debug = createDebug('dockless:ns');

const ID_RE = /^[0-9a-f]{64}$/;
const HOSTNAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9.-]{0,63}$/;

/** Options of {@link Namespace.create}. */
export interface NamespaceOptions {
  /** A name to find the pod by with {@link Namespace.get}; Docker's rules for names, unique among pods. */
  name?: string;
  /**
   * The namespaces the members share: any of `'net'`, `'ipc'`, `'uts'`, `'pid'`.
   * With `'ipc'` the members share SysV IPC and POSIX message queues, and one
   * `/dev/shm` (a directory of the pod's in the state directory, so on the
   * state directory's filesystem: a tmpfs by default). With `'pid'` the pod's
   * holder is the pid namespace's init, and `ps` in any member shows the
   * processes of every member.
   * @default ['net', 'ipc', 'uts']
   */
  share?: readonly PodShare[];
  /** The hostname of the pod's uts namespace (needs `'uts'` in `share`). @default the first 12 characters of its id */
  hostname?: string;
  /**
   * The network of the pod's network namespace (needs `'net'` in `share`):
   * `'none'`, loopback only; `'bridge'`, the default network; or a network
   * made with `runtime.createNetwork()`. On a network, the pod has an `eth0`
   * of its own, and its members share its address, its `/etc/hosts` (kept
   * current by the network engine: containers on a user-defined network reach
   * the pod by its name, and the pod reaches them by theirs) and its
   * `/etc/resolv.conf`. For a caller that is not root the pod's namespaces
   * belong to the user namespace of the user's network namespace (which holds
   * its networks' bridges and gives them outbound access through slirp4netns
   * or pasta: the runtime's `rootlessOutbound`), as a rootless container's on a network.
   * @default 'none'
   */
  network?: 'none' | 'bridge' | NetworkRef;
  /**
   * Ports published on the host and forwarded into the pod's network namespace
   * (to its `127.0.0.1`, where any member may listen), in the forms of a
   * container's `ports` (`'8080:80'`, `'127.0.0.1::5432/udp'`,
   * `{ container: 80 }`). Bound before the pod is made: a port in use is an
   * `AlreadyExistsError` and nothing is made. The forwarder lives as long as
   * the pod. Needs `'net'` in `share`.
   */
  ports?: readonly (PortSpec | string)[];
  /**
   * Let the pod outlive the calling process: it is then found, used and removed
   * from any process with {@link Namespace.get}. A pod that is not detached
   * ends when the calling process does, even by SIGKILL.
   * @default false
   */
  detached?: boolean;
}

/** Options of {@link Namespace.remove}. */
export interface NamespaceRemoveOptions {
  /** Kill and remove running members first instead of throwing. @default false */
  force?: boolean;
}

/** What {@link Namespace.inspect} and {@link Namespace.list} tell of a pod. */
export interface NamespaceInfo {
  /** The pod's id (64 hex digits). */
  id: string;
  /** Its name, when it was given one. */
  name?: string;
  /** When it was created. */
  created: Date;
  /** The namespaces its members share. */
  share: PodShare[];
  /** The hostname of its uts namespace. */
  hostname: string;
  /** `running` while its holder holds the namespaces; `stopped` once the holder is gone (killed, or with its owner). */
  status: 'running' | 'stopped';
  /** Host pid of the holder, the process whose namespaces the members join. */
  pid: number;
  /** Whether it outlives the process that created it. */
  detached: boolean;
  /** Made by a caller that is not root: its namespaces belong to a user namespace of the pod's, which every member joins. */
  rootless: boolean;
  /** The network its namespace is on (`'bridge'` or a user-defined network's name); none: loopback only. */
  network?: string;
  /** Its published ports, with the host ports as bound (a host port 0 replaced by the one chosen). */
  ports: PublishedPort[];
}

function podNotFound(ref: string): NotFoundError {
  return new NotFoundError(`no such pod: ${shown(ref)}`);
}

function validate(options: NamespaceOptions): PodShare[] {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('pod options must be an object');
  if (options.name !== undefined && (typeof options.name !== 'string' || !NAME_RE.test(options.name))) {
    throw new InvalidArgumentError(`pod options: name ${shown(String(options.name))} must match ${NAME_RE.source}`);
  }
  const share = options.share ?? ['net', 'ipc', 'uts'];
  if (!Array.isArray(share) || share.length === 0) throw new InvalidArgumentError('pod options: share must be a non-empty array');
  for (const ns of share) {
    if (!(POD_SHARES as readonly unknown[]).includes(ns)) {
      throw new InvalidArgumentError(`pod options: share: unknown namespace ${shown(String(ns))} (one of ${POD_SHARES.join(', ')})`);
    }
  }
  if (new Set(share).size !== share.length) throw new InvalidArgumentError('pod options: share names a namespace twice');
  if (options.hostname !== undefined) {
    if (typeof options.hostname !== 'string' || !HOSTNAME_RE.test(options.hostname)) {
      throw new InvalidArgumentError(`pod options: hostname ${shown(String(options.hostname))} is not a valid hostname`);
    }
    if (!share.includes('uts')) throw new InvalidArgumentError("pod options: hostname needs 'uts' in share");
  }
  if (options.detached !== undefined && typeof options.detached !== 'boolean') {
    throw new InvalidArgumentError('pod options: detached must be a boolean');
  }
  const network = options.network;
  if (
    network !== undefined &&
    network !== 'none' &&
    network !== 'bridge' &&
    (typeof network !== 'object' || network === null || typeof (network as { name?: unknown }).name !== 'string')
  ) {
    throw new InvalidArgumentError("pod options: network must be 'none', 'bridge' or a network");
  }
  if (network !== undefined && network !== 'none' && !share.includes('net')) {
    throw new InvalidArgumentError("pod options: network needs 'net' in share");
  }
  if (options.ports !== undefined && !Array.isArray(options.ports)) throw new InvalidArgumentError('pod options: ports must be an array');
  if ((options.ports?.length ?? 0) > 0 && !share.includes('net')) throw new InvalidArgumentError("pod options: ports needs 'net' in share");
  return [...share];
}

/** The network the pod is put on, by name; undefined for loopback only. */
function networkName(options: NamespaceOptions): string | undefined {
  const n = options.network;
  if (n === undefined || n === 'none') return undefined;
  return n === 'bridge' ? DEFAULT_NETWORK : n.name;
}

/**
 * A pod: namespaces (net, ipc, uts, optionally pid) held by a small helper
 * process, which containers join with `runtime.run({ …, namespace: pod })`:
 * they reach each other on `127.0.0.1`, share SysV IPC and POSIX shared
 * memory, have one hostname and, with `'pid'`, see each other's processes.
 * Rootless, the namespaces belong to a user namespace of the pod's (with the
 * caller's subordinate ids), which the members join.
 *
 * `AsyncDisposable`: `await using pod = await Namespace.create(runtime)`
 * removes it, and its members, at the end of the scope.
 *
 * @example
 * ```ts
 * import { Namespace, Runtime } from 'dockless';
 * await using runtime = new Runtime();
 * await using pod = await Namespace.create(runtime, { hostname: 'web' });
 * await using db = await runtime.run({ rootfs: '/tmp/rootfs', cmd: ['nc', '-l', '-p', '5432'], namespace: pod });
 * const { stdout } = await runtime.output({ rootfs: '/tmp/rootfs', cmd: ['hostname'], namespace: pod }); // 'web\n'
 * ```
 */
export class Namespace implements NamespaceRef, AsyncDisposable {
  /** The pod's id (64 hex digits). */
  readonly id: string;
  /** Its name, when it was given one. */
  readonly name: string | undefined;
  readonly #runtime: Runtime;
  #record: PodRecord;
  #removed = false;

  private constructor(runtime: Runtime, record: PodRecord) {
    this.#runtime = runtime;
    this.#record = record;
    this.id = record.id;
    this.name = record.name;
  }

  /**
   * Creates a pod: starts the process that holds its namespaces and records it
   * in the runtime's state directory.
   *
   * @throws {@link InvalidArgumentError} for bad options: an unknown `share` name, a bad name or hostname.
   * @throws {@link AlreadyExistsError} when the name is taken by another pod.
   * @throws {@link NotFoundError} when `network` names no network.
   * @throws {@link PermissionError} rootless on a network, when the runtime has no rootless user namespace.
   * @throws {@link UnavailableError} rootless on a network, when neither slirp4netns nor pasta gives the user's network namespace outbound access.
   * @throws {@link HelperError} when the namespaces cannot be made; nothing is left behind.
   */
  static async create(runtime: Runtime, options: NamespaceOptions = {}): Promise<Namespace> {
    const share = validate(options);
    const ports = parsePorts(options.ports);
    checkPortPrivilege(ports, process.geteuid?.() === 0, unprivilegedPortStart());
    const network = networkName(options);
    const { helperPath, userns, outbound: tool } = runtime.podSetup();
    const id = randomHex(32);
    const short = id.slice(0, 12);
    const context = `create pod ${short}`;
    const rootless = userns !== undefined || process.geteuid?.() !== 0;
    if (network !== undefined && rootless && userns === undefined) {
      throw new PermissionError(`${context}: network ${shown(network)}: a rootless pod on a network needs the runtime's rootless user namespace`);
    }
    // Rootless, the network's bridge is in the user's network namespace: the pod's namespaces are made in its user namespace.
    const shared =
      network !== undefined && rootless ? await podEngine(runtime).sharedNetns(network === DEFAULT_NETWORK ? 'bridge' : { name: network }) : undefined;
    const detached = options.detached === true;
    const hostname = options.hostname ?? short;
    // Bound first: a port in use fails the create before anything of the pod exists.
    const forwarder =
      ports.length > 0
        ? await Forwarder.bind({ ports, detached, context, ...(helperPath !== undefined ? { helperPath: await sealedHelperPath(helperPath) } : {}) })
        : undefined;
    try {
      return await Namespace.#make(runtime, options, { share, id, context, detached, hostname, network, forwarder, helperPath, userns, shared });
    } catch (error) {
      await forwarder?.kill();
      throw error;
    }
  }

  static async #make(
    runtime: Runtime,
    options: NamespaceOptions,
    made: {
      share: PodShare[];
      id: string;
      context: string;
      detached: boolean;
      hostname: string;
      network: string | undefined;
      forwarder: Forwarder | undefined;
      helperPath: string | undefined;
      userns: ReturnType<Runtime['podSetup']>['userns'];
      shared: SharedNetns | undefined;
    },
  ): Promise<Namespace> {
    const { share, id, context, detached, hostname, network, forwarder, helperPath, userns, shared } = made;
    const short = id.slice(0, 12);
    const dir = podsDir(runtime.stateDir);
    const paths = podPaths(runtime.stateDir, id);
    await mkdir(join(dir, 'names'), { recursive: true, mode: 0o711 });
    // Made aside and renamed, already naming its owner: prune never takes a pod being created.
    const making = join(dir, `.new-${ownerToken()}`);
    await mkdir(making, { mode: 0o711 });
    try {
      await writeFile(join(making, 'owner.json'), JSON.stringify({ pid: process.pid, start: selfStartTime() } satisfies LaunchOwner));
      if (share.includes('ipc')) {
        // The members' /dev/shm: POSIX shared memory is shared in the pod as SysV's is.
        await mkdir(join(making, 'shm'));
        await chmod(join(making, 'shm'), 0o1777);
      }
      await rename(making, paths.state);
    } catch (error) {
      await rm(making, { recursive: true, force: true });
      throw error;
    }
    let named = false;
    let connected = false;
    let helper: HelperProcess | undefined;
    const engine = podEngine(runtime);
    try {
      if (options.name !== undefined) {
        await claimName(dir, options.name, id, 'pod');
        named = true;
      }
      const args = ['--id', id, '--ns', share.join(',')];
      if (share.includes('uts')) args.push('--hostname', hostname);
      if (!detached) args.push('--die-with-parent', String(process.pid));
      if (shared !== undefined) args.push('--join-userns', `/proc/${shared.pid}/ns/user`);
      else if (userns !== undefined) args.push(...usernsArgs(userns));
      helper = spawnHelper('pause', args, {
        stdio: ['ignore', 'ignore', 'ignore'],
        detached,
        context,
        helperPath: await sealedHelperPath(helperPath),
      });
      const { pid } = await helper.next('pid');
      const keeperPid = helper.child.pid ?? 0;
      const pidStart = processStartTime(pid) ?? 0;
      // Its user namespace is the network namespace's: still the one joined, or the pod is made in a dead one's.
      if (shared !== undefined && !isProcessAlive(shared.pid, shared.start)) {
        throw new InvalidStateError(`${context}: the rootless network namespace ended while the pod was made`);
      }
      if (network !== undefined) {
        await writeFile(paths.hosts, hostsFile(hostname));
        await writeFile(paths.resolv, resolvConf());
      }
      if (network !== undefined) {
        connected = true;
        await engine.connect(network, {
          id,
          pid,
          ...(options.name !== undefined ? { name: options.name } : {}),
          hostname,
          hostsPath: paths.hosts,
          settingsPath: paths.settings,
        });
      }
      if (forwarder !== undefined) {
        await forwarder.attach({
          pid,
          pidStart,
          netns: `/proc/${pid}/ns/net`,
          ...(userns !== undefined || shared !== undefined ? { userns: `/proc/${pid}/ns/user` } : {}),
        });
      }
      const record: PodRecord = {
        version: 1,
        id,
        ...(options.name !== undefined ? { name: options.name } : {}),
        created: new Date().toISOString(),
        share,
        hostname,
        pid,
        pidStart,
        keeperPid,
        keeperStart: processStartTime(keeperPid) ?? 0,
        ownerPid: process.pid,
        ownerStart: selfStartTime(),
        detached,
        ...(shared !== undefined
          ? { userns: shared.userns }
          : userns !== undefined
            ? { userns: { uidMap: userns.uidMap, gidMap: userns.gidMap, rootless: userns.rootless } }
            : {}),
        ...(network !== undefined ? { network } : {}),
        ...(forwarder !== undefined ? { ports: [...forwarder.ports], forwarder: forwarder.record } : {}),
      };
      await writeJsonAtomic(paths.record, record).catch((cause: NodeJS.ErrnoException) => {
        throw new IOError(`${context}: write \`${paths.record}\`: ${cause.code ?? String(cause)}`, { cause, path: paths.record });
      });
      // The pod keeps nothing of the caller's alive: its members do, while they run, and it dies with the caller anyway.
      helper.unref();
      debug('%s created, holder pid %d, share %s', short, pid, share.join(','));
      return new Namespace(runtime, record);
    } catch (error) {
      if (connected) await unlinkPod(engine, network!, id);
      if (helper !== undefined) {
        helper.child.kill('SIGKILL');
        await helper.exit.catch(() => undefined);
      }
      if (named) await releaseName(dir, options.name!, id, 'pod');
      await rm(paths.state, { recursive: true, force: true });
      throw error;
    }
  }

  /**
   * Finds a pod by id, unique id prefix or name, also one made by another
   * process (through the state directory).
   *
   * @throws {@link NotFoundError} when no pod matches.
   */
  static async get(runtime: Runtime, ref: string): Promise<Namespace> {
    if (typeof ref !== 'string' || ref === '') throw podNotFound(String(ref));
    let id = ref;
    if (!ID_RE.test(ref)) {
      const claim = NAME_RE.test(ref) ? await readNameClaim(podsDir(runtime.stateDir), ref).catch(() => undefined) : undefined;
      if (claim !== undefined && ID_RE.test(claim.id)) id = claim.id;
      else {
        const ids = (await podIds(runtime.stateDir)).filter((x) => x.startsWith(ref));
        if (ids.length !== 1) throw podNotFound(ref);
        id = ids[0]!;
      }
    }
    const record = await readPodRecord(runtime.stateDir, id);
    if (record === undefined) throw podNotFound(ref);
    return new Namespace(runtime, record);
  }

  /** Every pod in the runtime's state directory, of this process and of others, oldest first. */
  static async list(runtime: Runtime): Promise<NamespaceInfo[]> {
    const records = await Promise.all((await podIds(runtime.stateDir)).map((id) => readPodRecord(runtime.stateDir, id)));
    return records
      .filter((r): r is PodRecord => r !== undefined)
      .map(infoOf)
      .sort((a, b) => a.created.getTime() - b.created.getTime());
  }

  /**
   * The pod as it is now: its status is read live (whether its holder still runs).
   *
   * @throws {@link NotFoundError} once the pod is removed.
   */
  async inspect(): Promise<NamespaceInfo> {
    const record = await readPodRecord(this.#runtime.stateDir, this.id);
    if (record === undefined) throw podNotFound(this.id);
    this.#record = record;
    return infoOf(record);
  }

  /** The containers in the pod (running or not), of this process and of others. */
  async members(): Promise<ContainerInfo[]> {
    return (await this.#runtime.list()).filter((c) => c.namespace === this.id);
  }

  /**
   * Removes the pod: its stopped members, then the process holding its
   * namespaces (with `'pid'` shared, the kernel kills every process in the pod
   * with it), then its record and name. Removing a removed pod does nothing.
   *
   * @throws {@link InvalidStateError} when members are running (or created) and `force` is not set; nothing is removed then.
   */
  async remove(options: NamespaceRemoveOptions = {}): Promise<void> {
    if (this.#removed) return;
    const what = `pod ${this.id.slice(0, 12)}`;
    const members = await this.members();
    const live = members.filter((c) => c.status !== 'stopped');
    if (live.length > 0 && options.force !== true) {
      throw new InvalidStateError(
        `remove ${what}: ${live.length} member${live.length > 1 ? 's are' : ' is'} running (${live.map((c) => c.id.slice(0, 12)).join(', ')}); stop them or remove with force`,
      );
    }
    const failures: unknown[] = [];
    for (const info of members) {
      try {
        await (await this.#runtime.get(info.id)).remove({ force: true });
      } catch (error) {
        if (!(error instanceof NotFoundError)) failures.push(error);
      }
    }
    if (failures.length > 0) throw new AggregateError(failures, `remove ${what}: ${failures.length} member(s) could not be removed`);
    const record = (await readPodRecord(this.#runtime.stateDir, this.id)) ?? this.#record;
    await endRecordedHelper(record.forwarder);
    if (record.network !== undefined) await unlinkPod(podEngine(this.#runtime), record.network, this.id);
    await killHolder(record);
    if (record.name !== undefined) await releaseName(podsDir(this.#runtime.stateDir), record.name, this.id, 'pod');
    await rm(podPaths(this.#runtime.stateDir, this.id).state, { recursive: true, force: true });
    this.#removed = true;
    debug('%s removed', this.id.slice(0, 12));
  }

  /** Removes the pod and its members, running or not (`remove({ force: true })`). For `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove({ force: true });
  }
}

function infoOf(record: PodRecord): NamespaceInfo {
  return {
    id: record.id,
    ...(record.name !== undefined ? { name: record.name } : {}),
    created: new Date(record.created),
    share: [...record.share],
    hostname: record.hostname,
    status: isPodAlive(record) ? 'running' : 'stopped',
    pid: record.pid,
    detached: record.detached,
    rootless: record.userns?.rootless === true,
    ...(record.network !== undefined ? { network: record.network } : {}),
    ports: (record.ports ?? []).map((p) => ({ ...p })),
  };
}

/**
 * Takes the pod off its network: its veth pair deleted now (not when the
 * kernel gets to the dead namespace), its address released.
 */
async function unlinkPod(engine: NetworkEngine, network: string, id: string): Promise<void> {
  await engine.disconnect(network, id).catch((error) => (error instanceof NotFoundError ? undefined : Promise.reject(error)));
  await engine.detach(id);
}

/** The network engine of `runtime`'s state directory, rootless ones' user namespace included. */
function podEngine(runtime: Runtime): NetworkEngine {
  const { helperPath } = runtime.podSetup();
  return new NetworkEngine({
    stateDir: runtime.stateDir,
    ...(helperPath !== undefined ? { helperPath } : {}),
    rootless: () => {
      const { userns, outbound } = runtime.podSetup();
      return userns === undefined ? undefined : { userns, outbound, ...(helperPath !== undefined ? { helperPath } : {}) };
    },
  });
}

const KILL_WAIT_MS = 5_000;

/**
 * Kills the holder, checked by start time so that a reused pid is never
 * signalled, and waits until it and its keeper (which exits once the holder
 * has) are gone: polled, as the keeper may be another process's child.
 */
async function killHolder(record: PodRecord): Promise<void> {
  if (isPodAlive(record)) {
    try {
      process.kill(record.pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
  const deadline = Date.now() + KILL_WAIT_MS;
  const alive = () => isProcessAlive(record.pid, record.pidStart) || isProcessAlive(record.keeperPid, record.keeperStart);
  while (alive() && Date.now() < deadline) await sleep(5);
}
