/**
 * Which ports a container listens on, read from the host in
 * `/proc/<pid>/net/{tcp,tcp6,udp,udp6}` of its processes: the kernel's socket
 * tables of the network namespace each process is in, so no shell, `ss` or
 * `nc` is needed inside the image.
 *
 * @module
 */

import { readFile, readlink } from 'node:fs/promises';

/** One socket of a `/proc/net/{tcp,tcp6,udp,udp6}` table. */
export interface ProcNetSocket {
  /** `tcp` or `udp`. */
  protocol: 'tcp' | 'udp';
  /** The local address, e.g. `127.0.0.1` or `::`. */
  address: string;
  /** The local port. */
  port: number;
  /** The kernel's TCP state number (`0x0A` LISTEN; `0x07` CLOSE, which an unconnected UDP socket shows). */
  state: number;
  /** A TCP socket in LISTEN, or a UDP socket bound to a port and not connected: one a client can reach. */
  listening: boolean;
}

const TCP_LISTEN = 0x0a;
const TCP_CLOSE = 0x07;

/** The kernel prints each 32-bit word of the address in host byte order (little-endian here). */
function decodeAddress(hex: string): string | undefined {
  if (!/^[0-9A-Fa-f]+$/.test(hex) || (hex.length !== 8 && hex.length !== 32)) return undefined;
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = hex.slice(w, w + 8);
    for (let b = 6; b >= 0; b -= 2) bytes.push(parseInt(word.slice(b, b + 2), 16));
  }
  if (bytes.length === 4) return bytes.join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // RFC 5952: the longest run of two or more zero groups (the first of equals) becomes `::`.
  let best = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [best, bestLength] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const join = (g: number[]) => g.map((n) => n.toString(16)).join(':');
  return best < 0 ? join(groups) : `${join(groups.slice(0, best))}::${join(groups.slice(best + bestLength))}`;
}

/**
 * Parses one `/proc/net/{tcp,tcp6,udp,udp6}` table (the header line and
 * malformed lines are skipped).
 *
 * @example
 * ```ts
 * parseProcNet('  sl  local_address rem_address   st ...\n   0: 0100007F:1F90 00000000:0000 0A ...', 'tcp');
 * // [{ protocol: 'tcp', address: '127.0.0.1', port: 8080, state: 10, listening: true }]
 * ```
 */
export function parseProcNet(text: string, protocol: 'tcp' | 'udp'): ProcNetSocket[] {
  const out: ProcNetSocket[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 4 || !/^\d+:$/.test(fields[0]!)) continue;
    const [localHex, localPort] = fields[1]!.split(':');
    const [, remotePort] = fields[2]!.split(':');
    const address = decodeAddress(localHex ?? '');
    const port = parseInt(localPort ?? '', 16);
    const state = parseInt(fields[3]!, 16);
    if (address === undefined || !Number.isInteger(port) || !Number.isInteger(state)) continue;
    const listening = protocol === 'tcp' ? state === TCP_LISTEN : state === TCP_CLOSE && port !== 0 && parseInt(remotePort ?? '', 16) === 0;
    out.push({ protocol, address, port, state, listening });
  }
  return out;
}

/**
 * The sockets that processes `pids` can be reached on, from the socket tables
 * of each distinct network namespace among them (read once per namespace). A
 * process that ended meanwhile is skipped.
 */
export async function listeningSockets(pids: readonly number[]): Promise<ProcNetSocket[]> {
  const seen = new Set<string>();
  const out: ProcNetSocket[] = [];
  for (const pid of pids) {
    const netns = await readlink(`/proc/${pid}/ns/net`).catch(() => undefined);
    if (netns === undefined || seen.has(netns)) continue;
    seen.add(netns);
    for (const [file, protocol] of [['tcp', 'tcp'], ['tcp6', 'tcp'], ['udp', 'udp'], ['udp6', 'udp']] as const) {
      const text = await readFile(`/proc/${pid}/net/${file}`, 'utf8').catch(() => '');
      out.push(...parseProcNet(text, protocol).filter((s) => s.listening));
    }
  }
  return out;
}
