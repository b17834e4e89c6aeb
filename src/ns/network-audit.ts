/**
 * The networks' part of `runtime.audit()`: each container's place on a
 * network (its address, kept while the container exists), the host ends of
 * the veths, and the bridges in our nftables table, each with whether it is
 * orphaned. `prune()` releases orphaned places; a veth goes with its
 * container's network namespace, a firewall element with its network; a
 * bridge (and its elements) whose state directory is gone, which the element's
 * comment names, is orphaned, and `prune()` removes it.
 *
 * @module
 */

import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { podPaths, type AuditEntry } from '../runtime/index.js';
import { hasMembers, nftBridges } from './nft.js';
import type { NetworkRecord } from './network-state.js';

const exists = (path: string) => stat(path).then(() => true, () => false);

/**
 * The interfaces of this process's network namespace. Not /sys/class/net: that
 * shows the namespace of whoever mounted /sys, which after `unshare --net` is
 * still the host's.
 */
async function netLinks(): Promise<string[]> {
  const dev = await readFile('/proc/self/net/dev', 'utf8').catch(() => '');
  return dev
    .split('\n')
    .slice(2)
    .map((l) => l.split(':')[0]!.trim())
    .filter((name) => name !== '');
}

/** Audits the places, veths and firewall elements of the networks `all` of state directory `stateDir`. */
export async function auditNetworks(stateDir: string, all: Map<string, NetworkRecord>): Promise<AuditEntry[]> {
  const entries: AuditEntry[] = [];
  const members = new Map<string, { id: string; gone: boolean }>();
  for (const record of all.values()) {
    for (const [id, member] of Object.entries(record.members)) {
      // A member is a container or a pod.
      const gone = !(await exists(join(stateDir, id))) && !(await exists(podPaths(stateDir, id).state));
      members.set(member.host, { id, gone });
      entries.push({
        kind: 'network-place',
        what: `${record.name} ${member.ip}`,
        id,
        orphaned: gone,
        reason: gone ? 'its container is gone' : `the address of a member of network ${record.name}`,
      });
    }
  }
  const links = await netLinks();
  for (const link of links.filter((l) => l.startsWith('dlv'))) {
    const member = members.get(link);
    entries.push({
      kind: 'veth',
      what: link,
      ...(member !== undefined ? { id: member.id } : {}),
      orphaned: member?.gone === true,
      reason: member === undefined ? "not on a network of this state directory (another state directory's?)" : member.gone ? 'its container is gone' : "the host end of a member's veth",
    });
  }
  const bridges = new Set([...all.values()].map((n) => n.bridge));
  for (const { name: bridge, network } of await nftBridges('audit networks')) {
    const ours = bridges.has(bridge);
    const present = links.includes(bridge);
    // The state directory that made it is gone: nothing but prune() will ever remove it.
    // A directory of another mount namespace looks gone too: a bridge with a member is in use, as prune() sees it.
    const ownerGone = !ours && network?.owner !== undefined && !(await exists(network.owner)) && !(present && (await hasMembers(bridge)));
    entries.push({
      kind: 'nft-element',
      what: `bridges ${bridge}`,
      orphaned: ownerGone || (!ours && !present),
      reason: ours
        ? 'a network of this state directory'
        : ownerGone
          ? `its state directory ${network.owner!} is gone`
          : present
            ? "another state directory's network"
            : 'its bridge is gone',
    });
    if (ownerGone && present) entries.push({ kind: 'bridge', what: bridge, orphaned: true, reason: `its state directory ${network.owner!} is gone` });
  }
  return entries;
}
