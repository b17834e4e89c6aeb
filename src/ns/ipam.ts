/**
 * Address management of networks, pure: subnets, overlap with each other and
 * with the host's routes, the next free address, a container's MAC address.
 * IPv4 addresses are unsigned 32-bit numbers here.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';

/** An IPv4 subnet: its first address and prefix length. */
export interface Subnet4 {
  /** The network address, host bits zero. */
  base: number;
  /** 8 to 30 for a network (`/31` and `/32` hold no container). */
  prefix: number;
}

/** The subnet the default network `'bridge'` takes unless the host routes it already. */
export const DEFAULT_BRIDGE_SUBNET = '10.88.0.0/16';

/** Parses `a.b.c.d`; undefined when malformed. */
export function parseIp4(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (m === null) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

/** `a.b.c.d` of a number. */
export function formatIp4(ip: number): string {
  return [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.');
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/**
 * Parses `a.b.c.d/n` as a network's subnet.
 *
 * @throws {@link InvalidArgumentError} when malformed, with host bits set, or too small for a container.
 */
export function parseSubnet4(text: string, what = 'subnet'): Subnet4 {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(text);
  const base = m !== null ? parseIp4(m[1]!) : undefined;
  const prefix = m !== null ? Number(m[2]) : NaN;
  if (base === undefined || !(prefix >= 8 && prefix <= 30)) {
    throw new InvalidArgumentError(`network: ${what} \`${text}\` must be an IPv4 subnet a.b.c.d/n with n from 8 to 30`);
  }
  if ((base & mask(prefix)) >>> 0 !== base) {
    throw new InvalidArgumentError(`network: ${what} \`${text}\` has host bits set (did you mean \`${formatIp4((base & mask(prefix)) >>> 0)}/${prefix}\`?)`);
  }
  return { base, prefix };
}

/** `a.b.c.d/n`. */
export function formatSubnet4(s: Subnet4): string {
  return `${formatIp4(s.base)}/${s.prefix}`;
}

/** Whether `ip` is in `s`. */
export function contains(s: Subnet4, ip: number): boolean {
  return (ip & mask(s.prefix)) >>> 0 === s.base;
}

/** Whether two subnets share an address. */
export function overlaps(a: Subnet4, b: Subnet4): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return (a.base & mask(p)) >>> 0 === (b.base & mask(p)) >>> 0;
}

/** The last address of `s` (its broadcast address). */
export function lastOf(s: Subnet4): number {
  return (s.base | ~mask(s.prefix)) >>> 0;
}

/** One IPv4 route of the host. */
export interface HostRoute {
  /** The interface it goes out of. */
  iface: string;
  /** Its destination. */
  dest: Subnet4;
}

/** The IPv4 routes in `/proc/net/route`'s text, without default routes. */
export function parseProcRoutes(text: string): HostRoute[] {
  const routes: HostRoute[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    // Little-endian hex, as the kernel prints them on every architecture we run on.
    const le = (h: string): number => {
      const n = parseInt(h, 16);
      return (((n & 255) << 24) | (((n >>> 8) & 255) << 16) | (((n >>> 16) & 255) << 8) | (n >>> 24)) >>> 0;
    };
    const m = le(f[7]!);
    if (m === 0) continue;
    let prefix = 0;
    for (let b = m; b !== 0; b = (b << 1) >>> 0) prefix++;
    routes.push({ iface: f[0]!, dest: { base: (le(f[1]!) & m) >>> 0, prefix } });
  }
  return routes;
}

/** The gateway a network gets unless given: its first host address. */
export function defaultGateway(s: Subnet4): number {
  return s.base + 1;
}

/**
 * Checks a gateway given for `s`.
 *
 * @throws {@link InvalidArgumentError} when malformed, outside `s`, or its network or broadcast address.
 */
export function parseGateway(text: string, s: Subnet4): number {
  const ip = parseIp4(text);
  if (ip === undefined || !contains(s, ip) || ip === s.base || ip === lastOf(s)) {
    throw new InvalidArgumentError(`network: gateway \`${text}\` must be a host address of ${formatSubnet4(s)}`);
  }
  return ip;
}

/**
 * The next free host address of `s` from `from` on (wrapping around), skipping
 * the gateway and `taken`; undefined when the subnet is full. Allocating
 * onwards rather than the lowest free keeps a just-released address from being
 * handed out again at once, while another member's hosts file may still name it.
 */
export function nextFree(s: Subnet4, gateway: number, taken: ReadonlySet<number>, from: number): number | undefined {
  const first = s.base + 1;
  const last = lastOf(s) - 1;
  const size = last - first + 1;
  const start = from >= first && from <= last ? from : first;
  for (let i = 0; i < size; i++) {
    const ip = first + ((start - first + i) % size);
    if (ip !== gateway && !taken.has(ip)) return ip;
  }
  return undefined;
}

/** A container's MAC address on a network, from its IPv4 address, locally administered as Docker's (`02:42:` + the address). */
export function macOf(ip: number): string {
  return ['02', '42', ...[ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/**
 * The first `10.X.0.0/16` from `10.<from>` on (wrapping around) that overlaps
 * neither `used` nor `routes`. User networks start at 89: 10.88 is the default
 * network's, made at its first use, which may come after theirs.
 */
export function pickSubnet(used: readonly Subnet4[], routes: readonly HostRoute[], from = 89): Subnet4 | undefined {
  for (let x = from; x < from + 256; x++) {
    const s = { base: parseIp4(`10.${x % 256}.0.0`)!, prefix: 16 };
    if (!used.some((u) => overlaps(u, s)) && !routes.some((r) => overlaps(r.dest, s))) return s;
  }
  return undefined;
}

/** A network's IPv6 subnet: a unique local `/64` named by the network's id. */
export function ula64(networkId: string): string {
  const h = createHash('sha256').update(networkId).digest('hex');
  const group = (from: number) => parseInt(h.slice(from, from + 4), 16).toString(16);
  return `fd${h.slice(0, 2)}:${group(2)}:${group(6)}:${group(10)}::`;
}

/** The IPv6 address of the host with index `n` (from the subnet's start) in a `/64` from {@link ula64}. */
export function ula64Host(prefix: string, n: number): string {
  return `${prefix}${n.toString(16)}`;
}
