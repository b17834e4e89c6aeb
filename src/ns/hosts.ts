/**
 * Names on networks, daemonless: each member's `/etc/hosts` (a file the
 * runtime bind-mounts into the container) is rewritten in place, under the
 * networks' lock, whenever a member of one of its networks comes or goes, by
 * whichever process makes the change. Nothing runs per network (no resolver
 * process to keep alive, to kill with its owner, or to find again from
 * another process), and the C library reads `/etc/hosts` on every lookup, so
 * a change is seen at the next one, in every program, static or not.
 *
 * @module
 */

import { open } from 'node:fs/promises';
import { isErrno } from '../util/index.js';

/** The name containers reach the host by: the gateway of their network. */
export const HOST_ALIAS = 'host.dockless.internal';

/** One name-bearing address of a hosts file. */
export interface HostsEntry {
  /** The address. */
  ip: string;
  /** Its names, first the canonical one. */
  names: readonly string[];
}

/** The content of a member's `/etc/hosts`: loopback, its own names, the host, the other members. */
export function hostsContent(self: HostsEntry | undefined, entries: readonly HostsEntry[]): string {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];
  if (self !== undefined) lines.push(`${self.ip}\t${self.names.join(' ')}`);
  const seen = new Set<string>(self?.names ?? []);
  for (const e of entries) {
    // A name given twice (two members both aliased `db`) resolves to the first, as the C library would anyway.
    const names = e.names.filter((n) => !seen.has(n));
    for (const n of names) seen.add(n);
    if (names.length > 0) lines.push(`${e.ip}\t${names.join(' ')}`);
  }
  return lines.join('\n') + '\n';
}

/**
 * Replaces the content of the file at `path` in place (the inode stays, so a
 * bind mount of it sees the change): one `pwrite` of the whole text at offset
 * 0, then a truncate to its length. A reader racing the two may see the old
 * tail after the new text, never a torn line of the new text. A missing file
 * (its container was removed meanwhile) is no error.
 */
export async function rewriteInPlace(path: string, text: string): Promise<void> {
  let handle;
  try {
    handle = await open(path, 'r+');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return;
    throw error;
  }
  try {
    const data = Buffer.from(text);
    await handle.write(data, 0, data.length, 0);
    await handle.truncate(data.length);
  } finally {
    await handle.close();
  }
}
