/**
 * What a launch does for a container's network beyond its own namespace:
 * published ports (the forwarder) and, rootless, outbound access (pasta or
 * slirp4netns, started by the forwarder). Decided before anything is made.
 *
 * @module
 */

import { readFileSync } from 'node:fs';
import createDebug from 'debug';
import type { NetnsStatus } from '../helper/index.js';
import { outboundArgv, type ForwardTarget } from './forwarder.js';
import { checkPortPrivilege, parsePorts, type PublishedPort } from './ports.js';
import type { ContainerSpec } from './spec.js';

const debug = createDebug('dockless:runtime');

/** The network work of one launch. */
export interface PublishPlan {
  /** The ports to publish, host port 0 for any free one. */
  ports: PublishedPort[];
  /** Give the container outbound access through pasta or slirp4netns (rootless). */
  outbound: boolean;
}

/** `net.ipv4.ip_unprivileged_port_start` of the caller's network namespace (1024 when unreadable). */
export function unprivilegedPortStart(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim());
  } catch {
    return 1024;
  }
}

/**
 * The launch's network work, or undefined when there is none (a container with
 * only its loopback). Published ports use the container's own network
 * namespace; a rootless container that publishes ports, or asks for the
 * `'bridge'` network, gets outbound access too.
 *
 * @throws {@link InvalidArgumentError} for a malformed port spec.
 * @throws {@link PermissionError} for a privileged host port asked for by a caller that is not root.
 */
export function planPublish(spec: ContainerSpec, rootless: boolean): PublishPlan | undefined {
  const ports = parsePorts(spec.ports);
  checkPortPrivilege(ports, process.geteuid?.() === 0, unprivilegedPortStart());
  // `network` belongs to the network modes (Namespace, bridge networks); read here only for the rootless default.
  const network = (spec as { network?: unknown }).network;
  const outbound = rootless && (network === 'bridge' || (network === undefined && ports.length > 0));
  if (ports.length === 0 && !outbound) return undefined;
  return { ports, outbound };
}

/** What the forwarder needs to join the container, from the shim's `netns` line. */
export function forwardTarget(plan: PublishPlan, pid: number, pidStart: number, ns: NetnsStatus): ForwardTarget {
  const target: ForwardTarget = { pid, pidStart, netns: ns.net, ...(ns.user !== undefined ? { userns: ns.user } : {}) };
  if (plan.outbound) {
    const argv = outboundArgv(ns.net, ns.user);
    if (argv !== undefined) target.outbound = argv;
    else debug('no pasta or slirp4netns installed: the container has no outbound network');
  }
  return target;
}
