/**
 * The files the runtime bind-mounts on a container's `/etc/hostname`,
 * `/etc/hosts` and `/etc/resolv.conf`.
 *
 * @module
 */

import { readFileSync } from 'node:fs';

let hostResolvConf: string | undefined;

/** The host's resolver configuration without loopback resolvers, read once. */
export function resolvConf(): string {
  if (hostResolvConf !== undefined) return hostResolvConf;
  let text = '';
  try {
    text = readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    /* no host resolver configuration: the container gets an empty one */
  }
  // Loopback resolvers of the host are unreachable from the container's own network namespace.
  hostResolvConf = text
    .split('\n')
    .filter((line) => !/^\s*nameserver\s+(127\.|::1\b)/.test(line))
    .join('\n');
  return hostResolvConf;
}

/** The container's `/etc/hosts`. */
export function hostsFile(hostname: string): string {
  return `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${hostname}\n`;
}
