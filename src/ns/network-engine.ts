/**
 * The network engine: Linux bridges, addresses from each network's subnet,
 * veth pairs wired by the helper over netlink, one nftables table of ours,
 * and names through members' `/etc/hosts`. Every change is made under the
 * networks' cross-process lock, and a change that fails half-way is undone
 * before the error is thrown. For a rootless caller the same is done inside
 * that user's network namespace (rootless-netns.ts), made with the first
 * network and ended with the last. Past ~600 lines on purpose: every change
 * is one transaction under the lock over the records, the links and the
 * firewall together, and the root and rootless paths differ only in where
 * each step runs; split, each half would re-read and re-check the others' state.
 *
 * It is the runtime's {@link NetworkAttacher}: `run` gets a container's link
 * plan from {@link NetworkEngine.attach} and wires it itself, between the
 * clone and the workload's start, with no helper spawn of its own.
 *
 * @module
 */

import { existsSync } from 'node:fs';
import { readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import createDebug from 'debug';
import { AlreadyExistsError, InvalidArgumentError, InvalidStateError, NotFoundError, PermissionError, UnavailableError } from '../errors.js';
import { runHelperOp, shown } from '../helper/index.js';
import {
  linkArgs,
  openableNetnsPid,
  podPaths,
  type AttachRequest,
  type InspectNetwork,
  type LinkPlan,
  type NetworkAttacher,
  type NetworkAttachment,
  type NetworkSettingsRecord,
  type Relink,
  type AuditEntry,
  type SharedNetns,
} from '../runtime/index.js';
import { defaultStateDir, isErrno, randomHex, writeFileAtomic } from '../util/index.js';
import { hostsContent, HOST_ALIAS, rewriteInPlace, type HostsEntry } from './hosts.js';
import {
  contains,
  defaultGateway,
  DEFAULT_BRIDGE_SUBNET,
  formatIp4,
  formatSubnet4,
  macOf,
  nextFree,
  overlaps,
  parseGateway,
  parseIp4,
  parseProcRoutes,
  parseSubnet4,
  pickSubnet,
  ula64,
  ula64Host,
  type Subnet4,
} from './ipam.js';
import { auditNetworks } from './network-audit.js';
import { nftAddNetwork, nftPruneOrphans, nftRemoveNetwork, type NftNetwork } from './nft.js';
import { NetworkStateDir, type MemberRecord, type NetworkRecord } from './network-state.js';
import { enterArgs, ensureRootlessNetns, readRootlessNetns, stopRootlessNetns, type RootlessNetnsRecord, type RootlessNetnsSetup } from './rootless-netns.js';

const debug = createDebug('dockless:network');

/** The default network's name. */
export const DEFAULT_NETWORK = 'bridge';
const DEFAULT_BRIDGE = 'dockless0';
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;

/** Options of `runtime.createNetwork()`. */
export interface CreateNetworkOptions {
  /** The network's name: letters, digits, `_`, `.`, `-`, at most 64. */
  name: string;
  /**
   * Its IPv4 subnet, `a.b.c.d/n` (n from 8 to 30); it may overlap no other
   * network and no route of the host.
   * @default the first free `10.X.0.0/16` from `10.88.0.0/16` on
   */
  subnet?: string;
  /** The host's address on it: containers' default route and `host.dockless.internal`. @default the subnet's first address */
  gateway?: string;
  /** No traffic to or from outside the network: no masquerade, no default route in containers. @default false */
  internal?: boolean;
  /**
   * Also an IPv6 unique local `/64` (named by the network's id), with its own
   * masquerade. Rootless, members reach each other and the user's network
   * namespace over IPv6, but nothing outside: slirp4netns and pasta give that
   * namespace IPv4 only. @default false
   */
  ipv6?: boolean;
}

/** What a container is, to connect it to a network after it started. */
export interface ConnectTarget {
  /** Its id. */
  id: string;
  /** Host pid of its pid 1: its network namespace is `/proc/<pid>/ns/net`. */
  pid: number;
  /** Its name, if any. */
  name?: string;
  /** Its hostname. */
  hostname: string;
  /** Its `/etc/hosts` on the host. */
  hostsPath: string;
  /** Its network settings file. */
  settingsPath: string;
}

/** Options of {@link NetworkEngine}. */
export interface NetworkEngineOptions {
  /** The runtime's state directory. */
  stateDir: string;
  /** The native helper. */
  helperPath?: string;
  /**
   * For a caller that is not root: what its network namespace is made with
   * (its user namespace plan); undefined when the runtime has no rootless user namespace.
   */
  rootless?: () => RootlessNetnsSetup | undefined;
}

/** slirp4netns's and pasta's own network in a rootless network namespace: no subnet may overlap it. */
const OUTBOUND_SUBNET = '10.0.2.0/24';

const nftOf = (n: NetworkRecord): NftNetwork => ({
  bridge: n.bridge,
  subnet: n.subnet,
  internal: n.internal,
  ...(n.subnet6 !== undefined ? { subnet6: n.subnet6 } : {}),
});

/** Bridges, addresses, the firewall table and hosts files of root networks; see the module's text. */
export class NetworkEngine implements NetworkAttacher {
  readonly #state: NetworkStateDir;
  readonly #stateDir: string;
  readonly #helperPath: string | undefined;
  readonly #rootlessSetup: (() => RootlessNetnsSetup | undefined) | undefined;

  constructor(options: NetworkEngineOptions) {
    this.#stateDir = options.stateDir;
    this.#state = new NetworkStateDir(options.stateDir);
    this.#helperPath = options.helperPath;
    this.#rootlessSetup = options.rootless;
  }

  /** `inside`: a rootless user's network namespace, which the op enters first. */
  #helper(args: string[], context: string, inside?: RootlessNetnsRecord): Promise<unknown> {
    const [action, ...rest] = args;
    return runHelperOp('net', [action!, ...(inside !== undefined ? enterArgs(inside) : []), ...rest], {
      context,
      ...(this.#helperPath !== undefined ? { helperPath: this.#helperPath } : {}),
    });
  }

  /** Whether this caller's networks live in its own network namespace; `PermissionError` when it has none to make. */
  #isRootless(context: string): boolean {
    if (process.geteuid?.() === 0) return false;
    if (this.#rootlessSetup?.() === undefined) {
      throw new PermissionError(`${context}: a rootless network needs the runtime's rootless user namespace`);
    }
    return true;
  }

  /**
   * The rootless user's network namespace, made if there is none alive; a
   * new one gets the bridges and firewall elements of every recorded network
   * again (the old one's went with it). Under the lock.
   */
  async #netns(all: Map<string, NetworkRecord>, context: string): Promise<RootlessNetnsRecord> {
    const { record, fresh } = await ensureRootlessNetns(this.#state.dir, this.#rootlessSetup!()!, context);
    if (fresh) {
      try {
        for (const n of all.values()) await this.#makeBridge(n, context, record);
      } catch (error) {
        await stopRootlessNetns(this.#state.dir);
        throw error;
      }
    }
    return record;
  }

  /** The network's bridge and firewall elements (and forwarding); undone on failure. */
  async #makeBridge(record: NetworkRecord, context: string, inside?: RootlessNetnsRecord): Promise<void> {
    const prefix = parseSubnet4(record.subnet).prefix;
    const addrs = ['--addr', `${record.gateway}/${prefix}`];
    if (record.gateway6 !== undefined) addrs.push('--addr', `${record.gateway6}/64`);
    await this.#helper(['bridge', '--name', record.bridge, ...addrs], context, inside);
    let nft = false;
    try {
      // Root: the element names our state directory, for prune() once it is gone.
      await nftAddNetwork(inside === undefined ? { ...nftOf(record), owner: resolve(this.#stateDir) } : nftOf(record), context, inside?.pid);
      nft = true;
      if (!record.internal) {
        if (inside !== undefined) await this.#helper(['forwarding'], context, inside);
        else await enableForwarding(record.subnet6 !== undefined);
      }
    } catch (error) {
      await Promise.allSettled([
        this.#helper(['delete', '--name', record.bridge], `${context}: undo`, inside),
        nft ? nftRemoveNetwork(nftOf(record), `${context}: undo`, inside?.pid) : undefined,
      ]);
      throw error;
    }
  }

  /**
   * {@inheritDoc NetworkAttacher.sharedNetns}
   *
   * @throws {@link NotFoundError} when `network` is not `'bridge'` and does not exist.
   */
  async sharedNetns(network: 'bridge' | { name: string }): Promise<SharedNetns | undefined> {
    const name = network === 'bridge' ? DEFAULT_NETWORK : network.name;
    if (!this.#isRootless(`attach to network ${shown(name)}`)) return undefined;
    const record = await this.#state.locked(async () => {
      const all = await this.#state.all();
      // Before the namespace is made: an unknown network leaves nothing behind.
      if (name !== DEFAULT_NETWORK && !all.has(name)) throw new NotFoundError(`network ${shown(name)} not found`);
      return this.#netns(all, `attach to network ${shown(name)}`);
    });
    return { pid: record.pid, start: record.pidStart, userns: record.userns };
  }

  /**
   * Creates a network.
   *
   * @throws {@link InvalidArgumentError} for a malformed option, a subnet that overlaps another network's or a host route.
   * @throws {@link AlreadyExistsError} when the name is taken.
   * @throws {@link PermissionError} for a caller that is not root and has no rootless user namespace.
   * @throws {@link UnavailableError} rootless, when neither slirp4netns nor pasta can give the user's network namespace outbound access.
   * @throws {@link HelperError} when the bridge or the firewall table cannot be made; nothing is left.
   */
  create(options: CreateNetworkOptions): Promise<NetworkRecord> {
    checkCreateOptions(options);
    const rootless = this.#isRootless(`create network ${shown(options.name)}`);
    return this.#state.locked(async () => {
      const all = await this.#state.all();
      if (all.has(options.name)) throw new AlreadyExistsError(`create network ${shown(options.name)}: the name is taken`);
      const inside = rootless ? await this.#netns(all, `create network ${shown(options.name)}`) : undefined;
      try {
        return await this.#create(options, all, false, inside);
      } catch (error) {
        if (inside !== undefined && all.size === 0) await stopRootlessNetns(this.#state.dir);
        throw error;
      }
    });
  }

  async #create(options: CreateNetworkOptions, all: Map<string, NetworkRecord>, builtin: boolean, inside?: RootlessNetnsRecord): Promise<NetworkRecord> {
    const context = `create network ${shown(options.name)}`;
    const ours = new Set([...all.values()].map((n) => n.bridge));
    const routes = parseProcRoutes(await readFile('/proc/net/route', 'utf8').catch(() => '')).filter((r) => !ours.has(r.iface));
    // The namespace's own way out: a subnet over it would hide the outbound helper's gateway.
    if (inside !== undefined) routes.push({ dest: parseSubnet4(OUTBOUND_SUBNET), iface: 'tap0' });
    const used = [...all.values()].map((n) => parseSubnet4(n.subnet));
    let subnet: Subnet4;
    if (options.subnet !== undefined) {
      subnet = parseSubnet4(options.subnet);
      const other = [...all.values()].find((n) => overlaps(parseSubnet4(n.subnet), subnet));
      if (other !== undefined) {
        throw new InvalidArgumentError(`${context}: subnet ${options.subnet} overlaps network ${shown(other.name)} (${other.subnet})`);
      }
      const route = routes.find((r) => overlaps(r.dest, subnet));
      if (route !== undefined) {
        throw new InvalidArgumentError(`${context}: subnet ${options.subnet} collides with the host's route to ${formatSubnet4(route.dest)} on ${route.iface}`);
      }
    } else {
      const preferred = builtin ? parseSubnet4(DEFAULT_BRIDGE_SUBNET) : undefined;
      const free = (s: Subnet4) => !used.some((u) => overlaps(u, s)) && !routes.some((r) => overlaps(r.dest, s));
      const picked = preferred !== undefined && free(preferred) ? preferred : pickSubnet(used, routes);
      if (picked === undefined) throw new UnavailableError(`${context}: no free 10.X.0.0/16 subnet is left; give one`);
      subnet = picked;
    }
    const gateway = options.gateway !== undefined ? parseGateway(options.gateway, subnet) : defaultGateway(subnet);
    const id = randomHex(32);
    const record: NetworkRecord = {
      version: 1,
      id,
      name: options.name,
      // Bridges are host-wide and state directories are not: only the default state
      // directory's default network gets the well-known name.
      bridge: builtin && inside === undefined && resolve(this.#stateDir) === resolve(defaultStateDir()) ? DEFAULT_BRIDGE : `dl-${id.slice(0, 12)}`,
      subnet: formatSubnet4(subnet),
      gateway: formatIp4(gateway),
      internal: options.internal === true,
      created: new Date().toISOString(),
      next: gateway + 1,
      members: {},
    };
    if (options.ipv6 === true) {
      const prefix = ula64(id);
      record.subnet6 = `${prefix}/64`;
      record.gateway6 = ula64Host(prefix, gateway - subnet.base);
    }
    await this.#makeBridge(record, context, inside);
    try {
      await this.#state.write(record);
    } catch (error) {
      await Promise.allSettled([
        this.#helper(['delete', '--name', record.bridge], `${context}: undo`, inside),
        nftRemoveNetwork(nftOf(record), `${context}: undo`, inside?.pid),
      ]);
      throw error;
    }
    debug('created network %s (%s, bridge %s)', record.name, record.subnet, record.bridge);
    return record;
  }

  /** Every network. */
  async list(): Promise<NetworkRecord[]> {
    return [...(await this.#state.all()).values()];
  }

  /**
   * One network by name.
   *
   * @throws {@link NotFoundError} when there is none.
   */
  async get(name: string): Promise<NetworkRecord> {
    const record = NAME_RE.test(name) ? await this.#state.read(name) : undefined;
    if (record === undefined) throw new NotFoundError(`network ${shown(name)} not found`);
    return record;
  }

  /**
   * Removes a network: its bridge, its firewall elements (the table with the last network).
   *
   * @throws {@link NotFoundError} when there is no such network.
   * @throws {@link InvalidStateError} when containers are on it, unless `force` (then they are disconnected).
   */
  remove(name: string, force = false): Promise<void> {
    return this.#state.locked(async () => {
      const all = await this.#state.all();
      const record = all.get(name);
      if (record === undefined) throw new NotFoundError(`remove network ${shown(name)}: network not found`);
      const members = Object.keys(record.members);
      if (members.length > 0 && !force) {
        throw new InvalidStateError(`remove network ${shown(name)}: ${members.length} container(s) are on it (${members.map((m) => m.slice(0, 12)).join(', ')})`);
      }
      const inside = await this.#inside();
      for (const id of members) await this.#leave(all, record, id, true, inside);
      const context = `remove network ${shown(name)}`;
      if (inside !== null) {
        await nftRemoveNetwork(nftOf(record), context, inside?.pid);
        await this.#helper(['delete', '--name', record.bridge], context, inside);
      }
      await this.#state.delete(name);
      all.delete(name);
      await this.#refresh(all, members);
      if (inside !== undefined && all.size === 0) await stopRootlessNetns(this.#state.dir);
      debug('removed network %s', name);
    });
  }

  /**
   * Where this caller's links are: `undefined` for root (the caller's own
   * namespace), the rootless user's namespace when it is alive, `null` when
   * it is gone (and the links with it).
   */
  async #inside(): Promise<RootlessNetnsRecord | undefined | null> {
    if (process.geteuid?.() === 0) return undefined;
    return (await readRootlessNetns(this.#state.dir)) ?? null;
  }

  /** {@inheritDoc NetworkAttacher.attach} */
  attach(request: AttachRequest): Promise<NetworkAttachment> {
    const name = request.network === 'bridge' ? DEFAULT_NETWORK : request.network.name;
    const context = `attach container ${request.id.slice(0, 12)} to network ${shown(name)}`;
    const rootless = this.#isRootless(context);
    return this.#state.locked(async () => {
      const all = await this.#state.all();
      const inside = rootless ? await this.#netns(all, context) : undefined;
      let record = all.get(name);
      if (record === undefined && name === DEFAULT_NETWORK) {
        record = await this.#create({ name }, all, true, inside);
        all.set(name, record);
      }
      if (record === undefined) throw new NotFoundError(`network ${shown(name)} not found`);
      const link = await this.#join(all, record, {
        id: request.id,
        pid: 0,
        ...(request.name !== undefined ? { name: request.name } : {}),
        hostname: request.hostname,
        hostsPath: request.hostsPath,
        settingsPath: request.settingsPath,
      }, request.aliases);
      return { link, ...(inside !== undefined ? { enter: { pid: inside.pid, start: inside.pidStart, userns: inside.userns } } : {}) };
    });
  }

  /**
   * Connects a running (or created) container to a network: a new veth pair
   * (`eth0`, `eth1`, …) wired into its namespace by the helper (`net veth`).
   * Any namespace held by a process will do (a pod's, held by its `pause`
   * process: `target.id` is then the pod's). The default network is made at
   * its first use here too.
   *
   * @throws {@link NotFoundError} when the network does not exist.
   * @throws {@link AlreadyExistsError} when the container is on it already.
   * @throws {@link InvalidStateError} when the container has no network namespace of its own (`'host'`) or is gone.
   */
  connect(name: string, target: ConnectTarget, aliases: readonly string[] = []): Promise<void> {
    return this.#state.locked(async () => {
      // A rootless caller cannot open a non-dumpable pid 1's namespaces: its command's process is in the same one.
      const pid = (await openableNetnsPid(target.pid))?.pid ?? target.pid;
      const [theirs, ours] = await Promise.all([readlink(`/proc/${pid}/ns/net`).catch(() => ''), readlink('/proc/self/ns/net')]);
      // A container on `'host'` (or gone): the veth's end would land in the host's own namespace.
      if (theirs === '' || theirs === ours) {
        throw new InvalidStateError(`connect container ${target.id.slice(0, 12)} to network ${shown(name)}: it has no network namespace of its own`);
      }
      const all = await this.#state.all();
      const context = `connect container ${target.id.slice(0, 12)} to network ${shown(name)}`;
      const inside = this.#isRootless(context) ? await this.#netns(all, context) : undefined;
      let record = all.get(name);
      if (record === undefined && name === DEFAULT_NETWORK) {
        record = await this.#create({ name }, all, true, inside);
        all.set(name, record);
      }
      if (record === undefined) throw new NotFoundError(`connect to network ${shown(name)}: network not found`);
      const link = await this.#join(all, record, target, aliases);
      try {
        await this.#helper(['veth', '--netns', `/proc/${pid}/ns/net`, ...linkArgs(link)], context, inside);
      } catch (error) {
        await this.#leave(all, record, target.id, true, inside);
        await this.#refresh(all, Object.keys(record.members));
        throw error;
      }
    });
  }

  /**
   * Disconnects a container from a network: its veth pair is deleted, its address released.
   *
   * @throws {@link NotFoundError} when the network does not exist or the container is not on it.
   */
  disconnect(name: string, containerId: string): Promise<void> {
    return this.#state.locked(async () => {
      const all = await this.#state.all();
      const record = all.get(name);
      if (record?.members[containerId] === undefined) {
        throw new NotFoundError(`disconnect container ${containerId.slice(0, 12)} from network ${shown(name)}: not connected`);
      }
      await this.#leave(all, record, containerId, true, await this.#inside());
      await this.#refresh(all, [containerId, ...Object.keys(record.members)]);
    });
  }

  /** {@inheritDoc NetworkAttacher.detach} */
  async detach(containerId: string): Promise<void> {
    // On this thread: every removal asks, and a thread-pool round trip costs more than the lookup.
    if (!existsSync(this.#state.marker(containerId))) return;
    await this.#state.locked(async () => {
      const all = await this.#state.all();
      const touched = new Set<string>();
      for (const record of all.values()) {
        if (record.members[containerId] === undefined) continue;
        await this.#leave(all, record, containerId);
        for (const id of Object.keys(record.members)) touched.add(id);
      }
      await this.#state.mark(containerId, false);
      await this.#refresh(all, [...touched]);
    });
  }

  /** {@inheritDoc NetworkAttacher.relink} */
  async relink(containerId: string): Promise<Relink> {
    if (!(await exists(this.#state.marker(containerId)))) return { links: [] };
    return this.#state.locked(async () => {
      const all = await this.#state.all();
      const peerIndex = (n: NetworkRecord) => Number(n.members[containerId]!.peer.slice(3));
      const mine = [...all.values()].filter((n) => n.members[containerId] !== undefined).sort((a, b) => peerIndex(a) - peerIndex(b));
      if (mine.length === 0) return { links: [] };
      const context = `restart container ${containerId.slice(0, 12)}: wire its networks`;
      const inside = this.#isRootless(context) ? await this.#netns(all, context) : undefined;
      let routed = false;
      const links = mine.map((n) => {
        const link = linkOf(n, n.members[containerId]!, !routed);
        routed ||= !n.internal;
        return link;
      });
      return { links, ...(inside !== undefined ? { enter: { pid: inside.pid, start: inside.pidStart, userns: inside.userns } } : {}) };
    });
  }

  /** {@inheritDoc NetworkAttacher.audit} */
  async audit(): Promise<AuditEntry[]> {
    return auditNetworks(this.#stateDir, await this.#state.all());
  }

  /** {@inheritDoc NetworkAttacher.pruneBridges} */
  async pruneBridges(): Promise<string[]> {
    if (process.geteuid?.() !== 0) return [];
    const context = 'prune networks of removed state directories';
    const removed = await nftPruneOrphans(
      context,
      async (dir) => !(await exists(dir)),
      async (bridge) => void (await this.#helper(['delete', '--name', bridge], context)),
    );
    if (removed.length > 0) debug('prune: removed bridges %o of state directories that are gone', removed);
    return removed;
  }

  /** {@inheritDoc NetworkAttacher.prune} */
  async prune(): Promise<void> {
    // Every runtime prunes when it opens the state directory: one that never had a network makes none.
    if (!(await exists(this.#state.dir))) return;
    await this.#state.locked(async () => {
      const all = await this.#state.all();
      const gone = new Set<string>();
      // A member is a container or a pod (whose directory is under `pods/`, gone once prune took the dead pod).
      const isGone = async (id: string) => !(await exists(join(this.#stateDir, id))) && !(await exists(podPaths(this.#stateDir, id).state));
      for (const id of await this.#state.marked()) if (await isGone(id)) gone.add(id);
      for (const record of all.values()) for (const id of Object.keys(record.members)) if (await isGone(id)) gone.add(id);
      if (gone.size === 0) return this.#pruneRootless(all);
      const touched = new Set<string>();
      for (const record of all.values()) {
        for (const id of gone) {
          if (record.members[id] === undefined) continue;
          await this.#leave(all, record, id);
          for (const m of Object.keys(record.members)) touched.add(m);
        }
      }
      for (const id of gone) await this.#state.mark(id, false);
      await this.#refresh(all, [...touched]);
      debug('prune: released the network places of %o', [...gone].map((id) => id.slice(0, 12)));
      await this.#pruneRootless(all);
    });
  }

  /**
   * Rootless: the default network goes once no container is on it (it is
   * made again at its next use), and the user's network namespace with the
   * last network. Under the lock.
   */
  async #pruneRootless(all: Map<string, NetworkRecord>): Promise<void> {
    if (process.geteuid?.() === 0) return;
    const builtin = all.get(DEFAULT_NETWORK);
    if (builtin !== undefined && Object.keys(builtin.members).length === 0) {
      const inside = await this.#inside();
      if (inside !== null) {
        await nftRemoveNetwork(nftOf(builtin), `prune network ${shown(DEFAULT_NETWORK)}`, inside?.pid);
        await this.#helper(['delete', '--name', builtin.bridge], `prune network ${shown(DEFAULT_NETWORK)}`, inside);
      }
      await this.#state.delete(DEFAULT_NETWORK);
      all.delete(DEFAULT_NETWORK);
    }
    if (all.size === 0) await stopRootlessNetns(this.#state.dir);
  }

  /** Allocates `target`'s place on `record` and writes it; under the lock. */
  async #join(all: Map<string, NetworkRecord>, record: NetworkRecord, target: ConnectTarget, aliases: readonly string[]): Promise<LinkPlan> {
    if (record.members[target.id] !== undefined) {
      throw new AlreadyExistsError(`connect container ${target.id.slice(0, 12)} to network ${shown(record.name)}: already connected`);
    }
    const subnet = parseSubnet4(record.subnet);
    const gateway = parseIp4(record.gateway)!;
    const taken = new Set(Object.values(record.members).map((m) => parseIp4(m.ip)!));
    const ip = nextFree(subnet, gateway, taken, record.next);
    if (ip === undefined) throw new UnavailableError(`connect container ${target.id.slice(0, 12)} to network ${shown(record.name)}: no address left in ${record.subnet}`);
    const peers = new Set<string>();
    let routed = false;
    for (const n of all.values()) {
      const m = n.members[target.id];
      if (m !== undefined) peers.add(m.peer);
      if (m !== undefined && !n.internal) routed = true;
    }
    let k = 0;
    while (peers.has(`eth${k}`)) k++;
    const member: MemberRecord = {
      ...(target.name !== undefined ? { name: target.name } : {}),
      hostname: target.hostname,
      aliases: [...aliases],
      ip: formatIp4(ip),
      ...(record.subnet6 !== undefined ? { ip6: ula64Host(record.subnet6.slice(0, -3), ip - subnet.base) } : {}),
      mac: macOf(ip),
      host: `dlv${target.id.slice(0, 8)}${record.id.slice(0, 4)}`,
      peer: `eth${k}`,
      hostsPath: target.hostsPath,
      settingsPath: target.settingsPath,
    };
    record.members[target.id] = member;
    record.next = contains(subnet, ip + 1) ? ip + 1 : subnet.base + 1;
    await this.#state.mark(target.id, true);
    await this.#state.write(record);
    await this.#refresh(all, Object.keys(record.members));
    // One default route per family, as Docker: a second one would be EEXIST in the container.
    return linkOf(record, member, !routed);
  }

  /**
   * Takes `id` off `record` and writes it; under the lock. With `unlink`
   * (a container that may still run) its veth pair is deleted; a dead
   * container's pair goes with its network namespace.
   */
  async #leave(all: Map<string, NetworkRecord>, record: NetworkRecord, id: string, unlink = false, inside?: RootlessNetnsRecord | null): Promise<void> {
    const member = record.members[id];
    if (member === undefined) return;
    if (unlink && inside !== null) {
      await this.#helper(['delete', '--name', member.host], `disconnect container ${id.slice(0, 12)} from network ${shown(record.name)}`, inside);
    }
    delete record.members[id];
    await this.#state.write(record);
    // Its own settings, which #refresh cannot find once it is on no network.
    const settings: NetworkSettingsRecord = { networks: {} };
    for (const n of all.values()) if (n.members[id] !== undefined) settings.networks[n.name] = inspectOf(n, n.members[id]!);
    await writeSettings(member.settingsPath, settings);
  }

  /** Rewrites the hosts and settings files of the containers `ids`; under the lock. */
  async #refresh(all: Map<string, NetworkRecord>, ids: readonly string[]): Promise<void> {
    await Promise.all(
      [...new Set(ids)].map(async (id) => {
        const mine = [...all.values()].filter((n) => n.members[id] !== undefined);
        const first = mine[0]?.members[id];
        const settings: NetworkSettingsRecord = { networks: {} };
        for (const n of mine) settings.networks[n.name] = inspectOf(n, n.members[id]!);
        if (first === undefined) return;
        await writeSettings(first.settingsPath, settings);
        const entries: HostsEntry[] = [{ ip: mine[0]!.gateway, names: [HOST_ALIAS] }];
        for (const n of mine) {
          // The default network has no names, as Docker's.
          if (n.name === DEFAULT_NETWORK) continue;
          for (const [other, m] of Object.entries(n.members)) {
            if (other === id) continue;
            entries.push({ ip: m.ip, names: [...(m.name !== undefined ? [m.name] : []), ...m.aliases, m.hostname] });
          }
        }
        const text = hostsContent({ ip: first.ip, names: [first.hostname, ...(first.name !== undefined && first.name !== first.hostname ? [first.name] : [])] }, entries);
        if (await exists(first.hostsPath)) await rewriteInPlace(first.hostsPath, text);
        else await writeFile(first.hostsPath, text).catch((e) => (isErrno(e, 'ENOENT') ? undefined : Promise.reject(e)));
      }),
    );
  }
}

/** The veth `member` of `record` gets; `route`: with its default routes (unless the network is internal). */
function linkOf(record: NetworkRecord, member: MemberRecord, route: boolean): LinkPlan {
  return {
    host: member.host,
    bridge: record.bridge,
    peer: member.peer,
    mac: member.mac,
    mtu: 0,
    addresses: [`${member.ip}/${parseSubnet4(record.subnet).prefix}`, ...(member.ip6 !== undefined ? [`${member.ip6}/64`] : [])],
    gateways: record.internal || !route ? [] : [record.gateway, ...(record.gateway6 !== undefined ? [record.gateway6] : [])],
  };
}

function inspectOf(n: NetworkRecord, m: MemberRecord): InspectNetwork {
  return {
    NetworkID: n.id,
    IPAddress: m.ip,
    IPPrefixLen: parseSubnet4(n.subnet).prefix,
    Gateway: n.internal ? '' : n.gateway,
    GlobalIPv6Address: m.ip6 ?? '',
    IPv6Gateway: n.internal ? '' : (n.gateway6 ?? ''),
    MacAddress: m.mac,
    Aliases: [...m.aliases],
  };
}

async function writeSettings(path: string, settings: NetworkSettingsRecord): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(settings), undefined, { sync: false }).catch((e) =>
    isErrno(e, 'ENOENT') ? undefined : Promise.reject(e),
  );
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Sets `ip_forward` (and IPv6 forwarding) to 1: host-wide, and left so. */
async function enableForwarding(ipv6: boolean): Promise<void> {
  const set = async (path: string) => {
    const now = await readFile(path, 'utf8').catch(() => '');
    if (now.trim() !== '1') {
      debug('setting %s to 1 (host-wide)', path);
      await writeFile(path, '1\n');
    }
  };
  await set('/proc/sys/net/ipv4/ip_forward');
  if (ipv6) await set('/proc/sys/net/ipv6/conf/all/forwarding');
}

function checkCreateOptions(options: CreateNetworkOptions): void {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('create network: expected an options object');
  if (typeof options.name !== 'string' || !NAME_RE.test(options.name)) {
    throw new InvalidArgumentError(`create network: name ${shown(String(options.name))} must match ${NAME_RE.source}`);
  }
  if (options.subnet !== undefined && typeof options.subnet !== 'string') throw new InvalidArgumentError('create network: subnet must be a string');
  if (options.gateway !== undefined && options.subnet === undefined) throw new InvalidArgumentError('create network: gateway needs subnet');
  if (options.gateway !== undefined && typeof options.gateway !== 'string') throw new InvalidArgumentError('create network: gateway must be a string');
}
