/**
 * The public {@link Runtime}: the runtime of `runtime/` with networks. The
 * runtime sits below `ns/` (the network engine), so it only calls a
 * {@link NetworkAttacher} it is given; this class, one level above both,
 * gives it the engine and adds the network methods, as `image-store.ts`
 * composes the store and transfer.
 *
 * @module
 */

import { Runtime as RuntimeCore, type NetworkAttacher, type RuntimeOptions } from './runtime/index.js';
import { Network, NetworkEngine, type CreateNetworkOptions } from './ns/index.js';

/**
 * Creates and manages containers and their networks. No daemon: each
 * operation runs the native helper once, and containers and networks are
 * visible to every process through the state directory. Containers run on
 * `network: 'none'` (loopback only) unless their spec names a network:
 * `'bridge'` (the default network, made at first use) or one made with
 * {@link Runtime.createNetwork}.
 *
 * @example
 * ```ts
 * import { Runtime, rootfsFromHost } from 'dockless';
 * const rootfs = await rootfsFromHost('/tmp/demo-rootfs', { overwrite: true });
 * await using runtime = new Runtime(); // at the end of the scope, its containers are removed
 * await using c = await runtime.run({ rootfs: rootfs.path, cmd: ['hostname'], hostname: 'box' });
 * c.stdout?.pipe(process.stdout);
 * console.log(await c.wait()); // { exitCode: 0, signal: null, oomKilled: false }
 * ```
 */
export class Runtime extends RuntimeCore {
  /** The network engine; for `Network`. @internal */
  readonly networkEngine: NetworkEngine;

  /** {@inheritDoc RuntimeCore.constructor} */
  constructor(options: RuntimeOptions = {}) {
    // The engine needs the state directory the base class resolves, so the attacher given to it defers to the engine.
    const late: { engine?: NetworkEngine } = {};
    const attacher: NetworkAttacher = {
      attach: (request) => late.engine!.attach(request),
      detach: (id) => late.engine!.detach(id),
      prune: () => late.engine!.prune(),
      pruneBridges: () => late.engine!.pruneBridges(),
      audit: () => late.engine!.audit(),
      sharedNetns: (network) => late.engine!.sharedNetns(network),
      relink: (id) => late.engine!.relink(id),
    };
    super({ networkAttacher: attacher, ...options });
    this.networkEngine = new NetworkEngine({
      stateDir: this.stateDir,
      ...(options.helperPath !== undefined ? { helperPath: options.helperPath } : {}),
      rootless: () => {
        const { userns, outbound, helperPath } = this.podSetup();
        return userns === undefined ? undefined : { userns, outbound, ...(helperPath !== undefined ? { helperPath } : {}) };
      },
    });
    late.engine = this.networkEngine;
  }

  /**
   * Creates a bridge network: a Linux bridge with the gateway's
   * address, elements in dockless's nftables table (`inet dockless`, made
   * with the first network and deleted with the last) for isolation from
   * other networks and, unless `internal`, masquerade of outbound traffic.
   * As root, a non-internal network sets the host's `net.ipv4.ip_forward` to 1 (and
   * with `ipv6`, `net.ipv6.conf.all.forwarding`): host-wide, and left so.
   *
   * For a caller that is not root, the bridges and the table are in the
   * user's own network namespace (podman's "rootless netns"): held by a
   * detached helper process found again through the state directory, with
   * outbound access through slirp4netns or pasta (`rootlessOutbound`), made
   * with the user's first network and ended with the last (or by
   * `runtime.prune()`, which also drops an unused default network). Its
   * containers join that namespace's user namespace; published ports reach
   * them through the forwarder, as any container's.
   *
   * @throws {@link InvalidArgumentError} for a malformed option, or a subnet
   *   that overlaps another network's or a route of the host.
   * @throws {@link AlreadyExistsError} when the name is taken.
   * @throws {@link NotFoundError} when `nft` (rootless: `nsenter` too) is not installed.
   * @throws {@link PermissionError} for a caller that is not root and whose runtime has no rootless user namespace.
   * @throws {@link UnavailableError} rootless, when neither slirp4netns nor pasta is installed or works.
   * @throws {@link HelperError} when the bridge or the table cannot be made; nothing is left behind.
   * @example
   * ```ts
   * const net = await runtime.createNetwork({ name: 'backend', subnet: '10.90.0.0/24' });
   * await runtime.run({ rootfs, cmd: ['server'], name: 'api', network: net, networkAliases: ['api.local'] });
   * ```
   */
  async createNetwork(options: CreateNetworkOptions): Promise<Network> {
    return new Network(this, await this.networkEngine.create(options));
  }

  /**
   * A network by name (`'bridge'` once it was used).
   *
   * @throws {@link NotFoundError} when there is none.
   */
  getNetwork(name: string): Promise<Network> {
    return Network.get(this, name);
  }

  /** Every network of the state directory. */
  listNetworks(): Promise<Network[]> {
    return Network.list(this);
  }
}
