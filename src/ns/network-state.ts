/**
 * Networks on disk, in the state directory: `networks/<name>.json` per
 * network (its settings and its members, with their addresses), a marker
 * `networks/members/<container id>` for every container on at least one
 * network (so that removing a container on none costs one `stat`), and
 * `networks/lock`, the cross-process lock every change is made under.
 *
 * @module
 */

import { mkdir, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withLock } from '../store/index.js';
import { isErrno, writeFileAtomic } from '../util/index.js';

/** One container on a network. */
export interface MemberRecord {
  /** The container's name, when it has one. */
  name?: string;
  /** Its hostname. */
  hostname: string;
  /** More names it is resolved by. */
  aliases: string[];
  /** Its IPv4 address. */
  ip: string;
  /** Its IPv6 address, on an IPv6 network. */
  ip6?: string;
  /** Its MAC address on the network. */
  mac: string;
  /** The host end of its veth pair. */
  host: string;
  /** Its interface name inside the container (`eth0`). */
  peer: string;
  /** Its `/etc/hosts` on the host. */
  hostsPath: string;
  /** Its network settings file. */
  settingsPath: string;
}

/** A network as stored. */
export interface NetworkRecord {
  /** Format version. */
  version: 1;
  /** 64 hex. */
  id: string;
  /** Its name. */
  name: string;
  /** Its Linux bridge. */
  bridge: string;
  /** `a.b.c.d/n`. */
  subnet: string;
  /** The bridge's (the host's) address on it. */
  gateway: string;
  /** No traffic in or out of the network, no default route. */
  internal: boolean;
  /** Its IPv6 `/64`, when it has one. */
  subnet6?: string;
  /** The bridge's IPv6 address. */
  gateway6?: string;
  /** ISO time of creation. */
  created: string;
  /** The next address to try, as a number. */
  next: number;
  /** Its members, by container id. */
  members: Record<string, MemberRecord>;
}

/** The paths of the networks' state. */
export class NetworkStateDir {
  /** `<stateDir>/networks`. */
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'networks');
  }

  /** Runs `fn` under the networks' lock. */
  async locked<T>(fn: () => Promise<T>): Promise<T> {
    await mkdir(join(this.dir, 'members'), { recursive: true, mode: 0o711 });
    return withLock(join(this.dir, 'lock'), fn);
  }

  /** Every network, by name. */
  async all(): Promise<Map<string, NetworkRecord>> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const map = new Map<string, NetworkRecord>();
    for (const file of names.filter((n) => n.endsWith('.json') && !n.startsWith('.')).sort()) {
      const record = await this.read(file.slice(0, -5));
      if (record !== undefined) map.set(record.name, record);
    }
    return map;
  }

  /** One network, or undefined. */
  async read(name: string): Promise<NetworkRecord | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dir, `${name}.json`), 'utf8')) as NetworkRecord;
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return undefined;
      throw error;
    }
  }

  /** Writes a network atomically. */
  async write(record: NetworkRecord): Promise<void> {
    await writeFileAtomic(join(this.dir, `${record.name}.json`), JSON.stringify(record), undefined, { sync: false });
  }

  /** Deletes a network's file. */
  async delete(name: string): Promise<void> {
    await unlink(join(this.dir, `${name}.json`)).catch((e) => (isErrno(e, 'ENOENT') ? undefined : Promise.reject(e)));
  }

  /** The marker of a container on some network. */
  marker(containerId: string): string {
    return join(this.dir, 'members', containerId);
  }

  /** Sets or clears a container's marker. */
  async mark(containerId: string, on: boolean): Promise<void> {
    if (on) await writeFile(this.marker(containerId), '');
    else await unlink(this.marker(containerId)).catch((e) => (isErrno(e, 'ENOENT') ? undefined : Promise.reject(e)));
  }

  /** Containers with a marker. */
  async marked(): Promise<string[]> {
    return readdir(join(this.dir, 'members')).catch(() => [] as string[]);
  }
}
