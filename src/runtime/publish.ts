/**
 * What a launch does for a container's network beyond its own namespace:
 * published ports (the forwarder) and, rootless, outbound access (pasta or
 * slirp4netns, started by the forwarder). Decided before anything is made.
 *
 * @module
 */

import { constants as fsConstants, readFileSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import createDebug from 'debug';
import { InvalidArgumentError } from '../errors.js';
import type { NetnsStatus } from '../helper/index.js';
import { outboundArgv, type ForwardTarget, type OutboundChoice } from './forwarder.js';
import { checkPortPrivilege, parsePorts, type PublishedPort } from './ports.js';
import type { ContainerSpec } from './spec.js';

const debug = createDebug('dockless:runtime');

/** The network work of one launch. */
export interface PublishPlan {
  /** The ports to publish, host port 0 for any free one. */
  ports: PublishedPort[];
  /** Give the container outbound access through pasta or slirp4netns (rootless). */
  outbound: boolean;
  /** Which of them. */
  tool: OutboundChoice;
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
export function planPublish(spec: ContainerSpec, rootless: boolean, tool: OutboundChoice = 'auto'): PublishPlan | undefined {
  const ports = parsePorts(spec.ports);
  if (ports.length > 0) checkPortPrivilege(ports, process.geteuid?.() === 0, unprivilegedPortStart());
  // `network` belongs to the network modes (Namespace, bridge networks); read here only for the rootless default.
  const network = (spec as { network?: unknown }).network;
  const outbound = rootless && tool !== 'none' && (network === 'bridge' || (network === undefined && ports.length > 0));
  if (ports.length === 0 && !outbound) return undefined;
  return { ports, outbound, tool };
}

/** What the forwarder needs to join the container, from the shim's `netns` line. */
export function forwardTarget(plan: PublishPlan, pid: number, pidStart: number, ns: NetnsStatus): ForwardTarget {
  const target: ForwardTarget = { pid, pidStart, netns: ns.net, ...(ns.user !== undefined ? { userns: ns.user } : {}) };
  if (plan.outbound) {
    const argv = outboundArgv(ns.user !== undefined, plan.tool);
    if (argv !== undefined) target.outbound = argv;
    else debug('no %s installed: the container has no outbound network', plan.tool === 'auto' ? 'slirp4netns or pasta' : plan.tool);
  }
  return target;
}

/**
 * The runtime option `rootlessOutbound`, checked.
 *
 * @throws {@link InvalidArgumentError} for anything but the four choices.
 */
export function checkOutboundChoice(choice: OutboundChoice | undefined): OutboundChoice {
  const value = choice ?? 'auto';
  if (!['auto', 'slirp4netns', 'pasta', 'none'].includes(value)) {
    throw new InvalidArgumentError(`runtime options: rootlessOutbound must be 'auto', 'slirp4netns', 'pasta' or 'none'`);
  }
  return value;
}

/** Lets a container made to wait on its start fifo go on, as `container.start()` does. */
export async function openStartGate(fifo: string): Promise<void> {
  const handle = await open(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
  try {
    await handle.write(Buffer.from([1]));
  } finally {
    await handle.close();
  }
  await rm(fifo, { force: true });
}
