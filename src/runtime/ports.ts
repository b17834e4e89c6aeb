/**
 * Published ports: Docker's `-p` forms parsed into port bindings, and the
 * checks made before anything is bound. Pure: no I/O.
 *
 * @module
 */

import { isIP } from 'node:net';
import { InvalidArgumentError, PermissionError } from '../errors.js';

/** A transport protocol a port is published for. */
export type PortProtocol = 'tcp' | 'udp';

/**
 * A container port published on the host, as `docker run -p`. Docker's short
 * forms are accepted as strings: `'8080:80'`, `'127.0.0.1:8080:80'`,
 * `'127.0.0.1::5432/udp'` (any free host port), `'5432'` (any free host port on
 * every address), `'[::1]:8080:80'` (an IPv6 host address, in brackets), and
 * ranges: `'8000-8002:80-82'` (one host port per container port, in order),
 * `'127.0.0.1::80-82'` (a free host port for each), `'8000-8010:80'` (the
 * first host port of the range that is free, as Docker picks one).
 */
export interface PortSpec {
  /** The port the container listens on, 1 to 65535. */
  container: number;
  /** The host port, 1 to 65535; `0` or none: a free port the kernel picks (see `container.ports()`). @default 0 */
  host?: number;
  /** The host address to listen on, an IPv4 or IPv6 literal. @default '0.0.0.0' (every IPv4 address, as Docker) */
  hostIp?: string;
  /** @default 'tcp' */
  protocol?: PortProtocol;
}

/** A published port as it is bound: every field resolved, the host port the real one. */
export interface PublishedPort {
  /** The container's port. */
  container: number;
  /** The protocol. */
  protocol: PortProtocol;
  /** The host address the port is bound on. */
  hostIp: string;
  /** The host port; never 0 once the container runs. */
  host: number;
  /**
   * Before the bind only: the last port of a host range (`'8000-8010:80'`)
   * that starts at {@link PublishedPort.host}, of which the first free port is
   * bound. None once bound.
   */
  hostLast?: number;
}

/** The address a port is published on when the spec names none, as Docker's. */
export const DEFAULT_HOST_IP = '0.0.0.0';

function fail(spec: unknown, why: string): never {
  const shown = typeof spec === 'string' ? `\`${spec}\`` : JSON.stringify(spec);
  throw new InvalidArgumentError(`container spec: ports: ${shown}: ${why}`);
}

/** The most ports one spec may publish: the forwarder serves at most 256. */
export const MAX_PUBLISHED_PORTS = 256;

function portNumber(spec: unknown, text: string, what: string, min: number): number {
  if (!/^[0-9]{1,5}$/.test(text)) {
    if (/^[0-9]+-[0-9]+$/.test(text)) fail(spec, `${what} port range \`${text}\` is several ports: give it in a spec's \`ports\`, which expands it`);
    fail(spec, `${what} port \`${text}\` is not a number`);
  }
  const n = Number(text);
  if (n < min || n > 65535) fail(spec, `${what} port ${n} is out of range (${min} to 65535)`);
  return n;
}

/** Splits `hostIp:hostPort:container` where hostIp may be `[v6]`. */
function splitShort(spec: string): { ip?: string; host?: string; container: string } {
  let rest = spec;
  let ip: string | undefined;
  if (rest.startsWith('[')) {
    const end = rest.indexOf(']');
    if (end < 0 || rest[end + 1] !== ':') fail(spec, 'an IPv6 host address is written `[addr]:hostPort:containerPort`');
    ip = rest.slice(1, end);
    rest = rest.slice(end + 2);
    const parts = rest.split(':');
    if (parts.length !== 2) fail(spec, 'expected `[addr]:hostPort:containerPort`');
    return { ip, host: parts[0]!, container: parts[1]! };
  }
  const parts = rest.split(':');
  if (parts.length === 1) return { container: parts[0]! };
  if (parts.length === 2) return { host: parts[0]!, container: parts[1]! };
  if (parts.length === 3) return { ip: parts[0]!, host: parts[1]!, container: parts[2]! };
  fail(spec, 'expected `[hostIp:][hostPort:]containerPort[/protocol]` (an IPv6 address goes in brackets)');
}

/** `a-b` as its first and last port, or undefined when `text` is no range. */
function portRange(spec: string, text: string | undefined, what: string, min: number): [number, number] | undefined {
  const m = text === undefined ? null : /^([0-9]{1,5})-([0-9]{1,5})$/.exec(text);
  if (m === null) return undefined;
  const first = portNumber(spec, m[1]!, what, Math.max(min, 1));
  const last = portNumber(spec, m[2]!, what, Math.max(min, 1));
  if (last < first) fail(spec, `${what} port range \`${text!}\` ends before it starts`);
  return [first, last];
}

/**
 * Parses one port spec into the ports it publishes: one, or for a Docker
 * range (`'8000-8002:80-82'`, `'127.0.0.1::80-82/udp'`) one per container
 * port, host ports in the same order (or each a free one).
 *
 * A host range for one container port (`'8000-8010:80'`) is one port whose
 * host is the first free port of the range, picked when it is bound
 * ({@link PublishedPort.hostLast}).
 *
 * @throws {@link InvalidArgumentError} for a malformed spec, or ranges of
 *   different lengths.
 */
export function expandPortSpec(spec: PortSpec | string): PublishedPort[] {
  if (typeof spec !== 'string') return [parsePortSpec(spec)];
  const slash = spec.lastIndexOf('/');
  const parts = splitShort(slash >= 0 ? spec.slice(0, slash) : spec);
  const containers = portRange(spec, parts.container, 'container', 1);
  const hosts = portRange(spec, parts.host, 'host', 1);
  if (containers === undefined && hosts === undefined) return [parsePortSpec(spec)];
  if (containers === undefined) {
    const protocol = slash >= 0 ? spec.slice(slash + 1) : 'tcp';
    if (protocol !== 'tcp' && protocol !== 'udp') fail(spec, `protocol \`${protocol}\` is not tcp or udp`);
    if (parts.ip !== undefined && parts.ip !== '' && isIP(parts.ip) === 0) fail(spec, `host address \`${parts.ip}\` is not an IP address`);
    const [first, last] = hosts!;
    return [
      {
        container: portNumber(spec, parts.container, 'container', 1),
        protocol,
        hostIp: parts.ip === undefined || parts.ip === '' ? DEFAULT_HOST_IP : parts.ip,
        host: first,
        ...(last > first ? { hostLast: last } : {}),
      },
    ];
  }
  const count = containers[1] - containers[0] + 1;
  if (hosts !== undefined && hosts[1] - hosts[0] + 1 !== count) fail(spec, 'the host and container port ranges differ in length');
  if (count > MAX_PUBLISHED_PORTS) fail(spec, `a range of ${count} ports is more than ${MAX_PUBLISHED_PORTS}`);
  // Checked here, so that the error names the range, not one port of it.
  const protocol = slash >= 0 ? spec.slice(slash + 1) : 'tcp';
  if (protocol !== 'tcp' && protocol !== 'udp') fail(spec, `protocol \`${protocol}\` is not tcp or udp`);
  if (parts.ip !== undefined && parts.ip !== '' && isIP(parts.ip) === 0) fail(spec, `host address \`${parts.ip}\` is not an IP address`);
  const ip = parts.ip === undefined ? '' : parts.ip.includes(':') ? `[${parts.ip}]:` : `${parts.ip}:`;
  const proto = slash >= 0 ? spec.slice(slash) : '';
  const out: PublishedPort[] = [];
  for (let i = 0; i < count; i++) {
    const host = hosts !== undefined ? String(hosts[0] + i) : (parts.host ?? '');
    out.push(parsePortSpec(`${ip}${host}:${containers[0] + i}${proto}`));
  }
  return out;
}

/**
 * Parses one port spec (object or Docker short form) into a {@link PublishedPort}
 * whose `host` may still be 0 (any free port).
 *
 * @throws {@link InvalidArgumentError} for a malformed spec, naming it.
 */
export function parsePortSpec(spec: PortSpec | string): PublishedPort {
  if (typeof spec === 'string') {
    const slash = spec.lastIndexOf('/');
    const proto = slash >= 0 ? spec.slice(slash + 1) : 'tcp';
    if (proto !== 'tcp' && proto !== 'udp') fail(spec, `protocol \`${proto}\` is not tcp or udp`);
    const parts = splitShort(slash >= 0 ? spec.slice(0, slash) : spec);
    if (parts.ip !== undefined && isIP(parts.ip) === 0) fail(spec, `host address \`${parts.ip}\` is not an IP address`);
    return {
      container: portNumber(spec, parts.container, 'container', 1),
      protocol: proto,
      hostIp: parts.ip === undefined || parts.ip === '' ? DEFAULT_HOST_IP : parts.ip,
      host: parts.host === undefined || parts.host === '' ? 0 : portNumber(spec, parts.host, 'host', 0),
    };
  }
  if (typeof spec !== 'object' || spec === null) fail(spec, 'a port is an object `{ container, host?, hostIp?, protocol? }` or a string such as `8080:80`');
  const known = new Set(['container', 'host', 'hostIp', 'protocol']);
  for (const key of Object.keys(spec)) if (!known.has(key)) fail(spec, `unknown field \`${key}\``);
  const int = (v: unknown, what: string, min: number) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 65535) fail(spec, `${what} must be an integer from ${min} to 65535`);
    return v;
  };
  const protocol = spec.protocol ?? 'tcp';
  if (protocol !== 'tcp' && protocol !== 'udp') fail(spec, `protocol \`${String(protocol)}\` is not tcp or udp`);
  const hostIp = spec.hostIp ?? DEFAULT_HOST_IP;
  if (typeof hostIp !== 'string' || isIP(hostIp) === 0) fail(spec, `hostIp \`${String(hostIp)}\` is not an IP address`);
  return {
    container: int(spec.container, 'container', 1),
    protocol,
    hostIp,
    host: spec.host === undefined ? 0 : int(spec.host, 'host', 0),
  };
}

/**
 * Parses a spec's `ports`, ranges expanded ({@link expandPortSpec}). Two
 * entries for the same host address, port and protocol are refused (a free
 * port, `host: 0`, never collides).
 *
 * @throws {@link InvalidArgumentError} for a malformed entry or a duplicate.
 */
export function parsePorts(ports: readonly (PortSpec | string)[] | undefined): PublishedPort[] {
  if (ports === undefined) return [];
  if (!Array.isArray(ports)) throw new InvalidArgumentError('container spec: ports must be an array');
  const out = ports.flatMap((p) => expandPortSpec(p));
  if (out.length > MAX_PUBLISHED_PORTS) throw new InvalidArgumentError(`container spec: ports: ${out.length} ports are more than ${MAX_PUBLISHED_PORTS}`);
  const seen = new Set<string>();
  for (const p of out) {
    // A free port, or one of a range, is picked at the bind: it never collides.
    if (p.host === 0 || p.hostLast !== undefined) continue;
    const key = `${p.hostIp}|${p.host}|${p.protocol}`;
    if (seen.has(key)) fail(`${p.hostIp}:${p.host}/${p.protocol}`, 'published twice');
    seen.add(key);
  }
  return out;
}

/**
 * Refuses host ports below `ip_unprivileged_port_start` to a caller without
 * the right to bind them (`privileged`: root, or CAP_NET_BIND_SERVICE).
 *
 * @throws {@link PermissionError} naming the port and the limit.
 */
export function checkPortPrivilege(ports: readonly PublishedPort[], privileged: boolean, unprivilegedStart: number): void {
  if (privileged) return;
  for (const p of ports) {
    if (p.host !== 0 && p.host < unprivilegedStart) {
      throw new PermissionError(
        `container spec: ports: host port ${p.host}/${p.protocol} is privileged: only root binds ports below ${unprivilegedStart} (net.ipv4.ip_unprivileged_port_start)`,
      );
    }
  }
}

/** One host binding of a port in {@link InspectPorts}. */
export interface InspectPortBinding {
  /** The host address. */
  HostIp: string;
  /** The host port, as a string (Docker's). */
  HostPort: string;
}

/** Docker's `NetworkSettings.Ports` shape: `{ '5432/tcp': [{ HostIp, HostPort }] }`. */
export type InspectPorts = Record<string, InspectPortBinding[]>;

/** The published ports in the shape of `docker inspect`'s `NetworkSettings.Ports`. */
export function inspectPorts(ports: readonly PublishedPort[]): InspectPorts {
  const out: InspectPorts = {};
  for (const p of ports) {
    (out[`${p.container}/${p.protocol}`] ??= []).push({ HostIp: p.hostIp, HostPort: String(p.host) });
  }
  return out;
}

/**
 * The forwarder's `--port` arguments: `PROTO HOSTIP HOSTPORT CONTAINERPORT` per
 * port, HOSTPORT `FIRST-LAST` for a host range.
 */
export function forwardPortArgs(ports: readonly PublishedPort[]): string[] {
  return ports.flatMap((p) => ['--port', p.protocol, p.hostIp, p.hostLast !== undefined ? `${p.host}-${p.hostLast}` : String(p.host), String(p.container)]);
}
