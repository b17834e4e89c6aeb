/**
 * {@link Network}: a user-defined network, as `runtime.createNetwork()`
 * returns it.
 *
 * @module
 */

import { InvalidStateError } from '../errors.js';
import { shown } from '../helper/index.js';
import type { Container, ContainerPaths } from '../runtime/index.js';
import type { NetworkEngine } from './network-engine.js';
import type { NetworkRecord } from './network-state.js';

/** What a {@link Network} needs of its runtime; the `Runtime` dockless exports is one. */
export interface NetworkHost {
  /** Finds a container by id, id prefix or name. */
  get(ref: string): Promise<Container>;
  /** The paths of a container. @internal */
  pathsOf(id: string): ContainerPaths;
  /** The runtime's network engine. @internal */
  readonly networkEngine: NetworkEngine;
}

/** Options of {@link Network.connect}. */
export interface ConnectOptions {
  /** More names the other members resolve the container by. @default [] */
  aliases?: readonly string[];
}

/** Options of {@link Network.remove}. */
export interface RemoveNetworkOptions {
  /** Disconnect the containers on it first, instead of failing. @default false */
  force?: boolean;
}

/**
 * A bridge network: containers on it get an address from its subnet, reach
 * each other by name and alias, reach the host as `host.dockless.internal`
 * and, unless it is internal, the outside through the host (masqueraded).
 * Containers on different networks cannot reach each other. A network lives
 * in the state directory until removed, and is used from any process.
 *
 * @example
 * ```ts
 * const net = await runtime.createNetwork({ name: 'app' });
 * await runtime.run({ rootfs, cmd: ['db-server'], name: 'db', network: net, detached: true });
 * await runtime.output({ rootfs, cmd: ['ping', '-c1', 'db'], network: net });
 * ```
 */
export class Network {
  /** Its name. */
  readonly name: string;
  /** 64 hex. */
  readonly id: string;
  /** Its IPv4 subnet, `a.b.c.d/n`. */
  readonly subnet: string;
  /** The host's address on it. */
  readonly gateway: string;
  /** Whether traffic in and out of it is blocked. */
  readonly internal: boolean;
  /** Its IPv6 subnet, when it has one. */
  readonly subnet6: string | undefined;
  /** Its Linux bridge on the host. */
  readonly bridge: string;
  /** When it was created. */
  readonly created: Date;
  readonly #host: NetworkHost;

  /** @internal */
  constructor(host: NetworkHost, record: NetworkRecord) {
    this.#host = host;
    this.name = record.name;
    this.id = record.id;
    this.subnet = record.subnet;
    this.gateway = record.gateway;
    this.internal = record.internal;
    this.subnet6 = record.subnet6;
    this.bridge = record.bridge;
    this.created = new Date(record.created);
  }

  /** Every network of `runtime`'s state directory. */
  static async list(runtime: NetworkHost): Promise<Network[]> {
    return (await runtime.networkEngine.list()).map((r) => new Network(runtime, r));
  }

  /**
   * A network by name.
   *
   * @throws {@link NotFoundError} when there is none.
   */
  static async get(runtime: NetworkHost, name: string): Promise<Network> {
    return new Network(runtime, await runtime.networkEngine.get(name));
  }

  /** The ids of the containers on it now. */
  async containers(): Promise<string[]> {
    return Object.keys((await this.#host.networkEngine.get(this.name)).members);
  }

  /**
   * Connects a running or created container (or a container id or name): a
   * new interface (`eth1`, …) with an address on this network, and its name
   * and aliases in every member's `/etc/hosts`.
   *
   * @throws {@link NotFoundError} when the network or container does not exist.
   * @throws {@link AlreadyExistsError} when it is connected already.
   * @throws {@link InvalidStateError} when the container does not run.
   */
  async connect(container: Container | string, options: ConnectOptions = {}): Promise<void> {
    const c = typeof container === 'string' ? await this.#host.get(container) : container;
    if (c.status !== 'running' && c.status !== 'created') {
      throw new InvalidStateError(`connect container ${c.id.slice(0, 12)} to network ${shown(this.name)}: container is ${c.status}`);
    }
    const paths = this.#host.pathsOf(c.id);
    const inspect = await c.inspect();
    await this.#host.networkEngine.connect(
      this.name,
      {
        id: c.id,
        pid: c.pid,
        ...(c.name !== undefined ? { name: c.name } : {}),
        hostname: inspect.Config.Hostname || c.id.slice(0, 12),
        hostsPath: paths.hosts,
        settingsPath: paths.networks,
      },
      options.aliases ?? [],
    );
  }

  /**
   * Disconnects a container (or a container id): its interface on this
   * network is deleted and its names leave the members' `/etc/hosts`.
   *
   * @throws {@link NotFoundError} when it is not connected.
   */
  async disconnect(container: Container | string): Promise<void> {
    const id = typeof container === 'string' ? (await this.#host.get(container)).id : container.id;
    await this.#host.networkEngine.disconnect(this.name, id);
  }

  /**
   * Removes the network: its bridge, its firewall elements, its state.
   *
   * @throws {@link InvalidStateError} when containers are on it, unless `force`.
   * @throws {@link NotFoundError} when it was removed already.
   */
  async remove(options: RemoveNetworkOptions = {}): Promise<void> {
    await this.#host.networkEngine.remove(this.name, options.force === true);
  }
}
