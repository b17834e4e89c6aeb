/**
 * The networks' part of `runtime.audit()`: each container's place on a
 * network (its address, kept while the container exists), the host ends of
 * the veths, and the bridges in our nftables table, each with whether it is
 * orphaned. `prune()` releases orphaned places; a veth goes with its
 * container's network namespace, a firewall element with its network.
 *
 * @module
 */

import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { podPaths, type AuditEntry } from '../runtime/index.js';
import { nftBridges } from './nft.js';
import type { NetworkRecord } from './network-state.js';

const exists = (path: string) => stat(path).then(() => true, () => false);

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
  const links = await readdir('/sys/class/net').catch(() => [] as string[]);
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
  for (const bridge of await nftBridges('audit networks')) {
    const ours = bridges.has(bridge);
    const present = links.includes(bridge);
    entries.push({
      kind: 'nft-element',
      what: `bridges ${bridge}`,
      orphaned: !ours && !present,
      reason: ours ? 'a network of this state directory' : present ? "another state directory's network" : 'its bridge is gone',
    });
  }
  return entries;
}
