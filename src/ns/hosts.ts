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
 * bind mount of it sees the change) with one `pwrite` at offset 0 and no
 * truncate: a text shorter than the file is padded with a comment line of
 * spaces to the file's length, so a reader sees the old text or the new one,
 * never the new text followed by the old one's tail. A missing file (its
 * container was removed meanwhile) is no error.
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
    const size = (await handle.stat()).size;
    const data = Buffer.from(padded(text, size));
    await handle.write(data, 0, data.length, 0);
  } finally {
    await handle.close();
  }
}

/** `text`, padded to at least `size` bytes with a trailing comment line. */
export function padded(text: string, size: number): string {
  const missing = size - Buffer.byteLength(text);
  if (missing <= 0) return text;
  return text + (missing === 1 ? '\n' : `#${' '.repeat(missing - 2)}\n`);
}
