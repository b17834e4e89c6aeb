/**
 * What the runtime asks of networks, without knowing them: the runtime is
 * below `ns/` (which holds the network engine), so it defines this small
 * interface and calls it; the public `Runtime` one level up hands it an
 * implementation. A container joining a network gets a *link plan* that the
 * helper's `run` op wires between the clone and the workload's start, and
 * its `/etc/hosts` written by the attacher under the networks' lock.
 *
 * @module
 */

import type { NetworkRef } from './spec.js';
import type { AuditEntry } from './audit.js';
import type { UsernsRecord } from './userns.js';

export type { NetworkRef };

/** One veth pair, as the helper's `--veth` wires it (native/PROTOCOL.md). */
export interface LinkPlan {
  /** The host end's interface name (at most 15 bytes). */
  host: string;
  /** The bridge the host end is attached to. */
  bridge: string;
  /** The interface name inside the container (`eth0`). */
  peer: string;
  /** The container end's MAC address, `aa:bb:cc:dd:ee:ff`. */
  mac: string;
  /** 0 for the kernel's default. */
  mtu: number;
  /** The container end's addresses, `10.88.0.2/16`. */
  addresses: readonly string[];
  /** Default routes via these (none for an internal network). */
  gateways: readonly string[];
}

/** What {@link NetworkAttacher.attach} is asked. */
export interface AttachRequest {
  /** The container's id. */
  id: string;
  /** Its name, resolvable by the other members. */
  name?: string;
  /** Its hostname. */
  hostname: string;
  /** The network: `'bridge'` for the default network, else a user-defined network. */
  network: 'bridge' | NetworkRef;
  /** More names the other members resolve it by. */
  aliases: readonly string[];
  /** The container's `/etc/hosts` on the host: the attacher writes it, and keeps it current. */
  hostsPath: string;
  /** The container's network settings file (see {@link NetworkSettingsRecord}): the attacher writes it. */
  settingsPath: string;
}

/** One network of a container, as `inspect().NetworkSettings.Networks` shows it. */
export interface InspectNetwork {
  /** The network's id (64 hex). */
  NetworkID: string;
  /** The container's IPv4 address. */
  IPAddress: string;
  /** The subnet's prefix length. */
  IPPrefixLen: number;
  /** The gateway (the host's address on the network); `''` for an internal network. */
  Gateway: string;
  /** The container's IPv6 address, or `''`. */
  GlobalIPv6Address: string;
  /** The IPv6 gateway, or `''`. */
  IPv6Gateway: string;
  /** The container end's MAC address. */
  MacAddress: string;
  /** The names other members resolve it by besides its name. */
  Aliases: string[];
}

/** A container's networks, by network name: the file the attacher keeps in its state directory. */
export interface NetworkSettingsRecord {
  /** Its networks, by name. */
  networks: Record<string, InspectNetwork>;
}

/**
 * A rootless user's network namespace, which holds the bridges of that
 * user's networks: a container on one of them joins its user namespace (and
 * makes its own network namespace there), so that a helper entered in it may
 * move a veth end into the container's.
 */
export interface SharedNetns {
  /** The holder: `/proc/PID/ns/user` and `/proc/PID/ns/net`. */
  pid: number;
  /** Its start time, so that a reused pid is never taken for it. */
  start: number;
  /** Its user namespace's maps. */
  userns: UsernsRecord;
}

/** A place on a network, allocated for a container about to start. */
export interface NetworkAttachment {
  /** The link `run` wires, or (with `enter`) the helper's `net veth` once the container's namespaces exist. */
  link: LinkPlan;
  /** Rootless: the namespace the link's host end is made in, entered by `net veth --in-userns --in-netns`. */
  enter?: SharedNetns;
}

/** The links of a container to wire again when it starts anew: see {@link NetworkAttacher.relink}. */
export interface Relink {
  /** One per network it is on now, with its address there, `eth0` first; only the first non-internal one has default routes. */
  links: LinkPlan[];
  /** Rootless: the namespace the links' host ends are made in, as {@link NetworkAttachment.enter}. */
  enter?: SharedNetns;
}

/**
 * How containers join networks; the public `Runtime` provides one. Every
 * method may be called from any process sharing the state directory.
 */
export interface NetworkAttacher {
  /**
   * Allocates the container's address on the network and writes its
   * `/etc/hosts` and settings; the other members' hosts files learn its names.
   */
  attach(request: AttachRequest): Promise<NetworkAttachment>;
  /** Releases every network place of a container (a removed one, or a failed launch); idempotent. */
  detach(containerId: string): Promise<void>;
  /**
   * The links of every network a stopped container is on, for its restart:
   * its network namespace, and its veths with it, went with its last run.
   */
  relink?(containerId: string): Promise<Relink>;
  /** Releases places whose container is gone without a `detach` (its owner was killed). */
  prune(): Promise<void>;
  /**
   * Root: removes the bridges (and firewall elements) of networks whose state
   * directory was deleted without a `prune()`, which the firewall table's
   * elements name; host-wide, so only `runtime.prune()` calls it. Returns the
   * bridges removed.
   */
  pruneBridges?(): Promise<string[]>;
  /** The places, veths and firewall elements of the networks, for `runtime.audit()`. */
  audit?(): Promise<AuditEntry[]>;
  /**
   * For a rootless caller: the user's network namespace (made at first use),
   * whose user namespace a container on `network` joins; undefined for root.
   */
  sharedNetns?(network: 'bridge' | NetworkRef): Promise<SharedNetns | undefined>;
}
