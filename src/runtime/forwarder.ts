/**
 * A container's published ports: the helper's `forward` op (native/forward.c),
 * which binds the host sockets before the container exists, then joins the
 * container's network namespace and relays every TCP connection (splice) and
 * UDP datagram (a socket per client) to the container's 127.0.0.1. For a
 * rootless container it also starts the outbound helper (pasta or
 * slirp4netns) and waits until it has set the namespace's network up.
 *
 * @module
 */

import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { AlreadyExistsError, HelperError, PermissionError, UnavailableError } from '../errors.js';
import { spawnHelper, type HelperProcess } from '../helper/index.js';
import { processStartTime } from '../util/index.js';
import { forwardPortArgs, type PublishedPort } from './ports.js';

/** A helper process a container owns besides its shim, recorded so that any process can end it. */
export interface HelperPidRecord {
  pid: number;
  /** Its start time (`/proc/PID/stat` field 22), so that a reused pid is never signalled. */
  start: number;
}

/** How a forwarder is started. */
export interface ForwarderOptions {
  ports: readonly PublishedPort[];
  detached: boolean;
  context: string;
  helperPath?: string;
  /** The container's address to dial; by default 127.0.0.1 inside its network namespace. */
  targetIp?: string;
  /** How long the outbound helper may take to set the network up. @default 10 s */
  readyTimeoutMs?: number;
}

/** The container's namespaces, as the `run` helper reported them (`--report-netns`). */
export interface ForwardTarget {
  pid: number;
  pidStart: number;
  netns: string;
  userns?: string;
  /** The outbound helper's argv, when the container gets outbound access through one. */
  outbound?: readonly string[];
}

const DEFAULT_READY_TIMEOUT_MS = 10_000;

/** The forwarder of one container, from its bind to its end. */
export class Forwarder {
  readonly #helper: HelperProcess;
  readonly #context: string;
  /** The ports as bound: a host port 0 is replaced by the one the kernel chose. */
  readonly ports: readonly PublishedPort[];

  private constructor(helper: HelperProcess, ports: PublishedPort[], context: string) {
    this.#helper = helper;
    this.ports = ports;
    this.#context = context;
  }

  /**
   * Binds the host sockets. Nothing of the container exists yet.
   *
   * @throws {@link AlreadyExistsError} when a host port is in use.
   * @throws {@link PermissionError} when the caller may not bind a port.
   * @throws {@link HelperError} for any other failure.
   */
  static async bind(options: ForwarderOptions): Promise<Forwarder> {
    const args = [
      ...forwardPortArgs(options.ports),
      '--ready-timeout',
      String(options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS),
      ...(options.targetIp !== undefined ? ['--target-ip', options.targetIp] : []),
      ...(options.detached ? [] : ['--die-with-parent', String(process.pid)]),
    ];
    const helper = spawnHelper('forward', args, {
      stdio: ['pipe', 'ignore', 'pipe'],
      detached: options.detached,
      context: options.context,
      ...(options.helperPath !== undefined ? { helperPath: options.helperPath } : {}),
    });
    helper.child.stdin?.on('error', () => undefined);
    try {
      await helper.next('bound');
    } catch (error) {
      helper.child.kill('SIGKILL');
      await helper.exit;
      throw portError(error, options.context);
    }
    const ports = helper.statuses.flatMap((s) =>
      s.type === 'port' ? [{ container: s.container, protocol: s.protocol, hostIp: s.hostIp, host: s.host }] : [],
    );
    return new Forwarder(helper, ports, options.context);
  }

  /** The forwarder's pid and start time, for the container's record. */
  get record(): HelperPidRecord {
    const pid = this.#helper.pid ?? 0;
    return { pid, start: processStartTime(pid) ?? 0 };
  }

  /**
   * Hands the forwarder the container's namespaces; resolves once it serves
   * (and the outbound helper, if any, has set the network up).
   *
   * @throws {@link UnavailableError} when the outbound helper fails or hangs.
   * @throws {@link HelperError} when the namespaces cannot be joined.
   */
  async attach(target: ForwardTarget): Promise<void> {
    const fields = [String(target.pid), String(target.pidStart), target.netns, target.userns ?? '', ...(target.outbound ?? [])];
    this.#helper.child.stdin?.end(Buffer.from(fields.map((f) => `${f}\0`).join('')));
    try {
      await this.#helper.next('ready');
    } catch (error) {
      throw outboundError(error, this.#context, target.outbound?.[0]);
    }
    // The container decides how long the process lives; the forwarder follows it.
    this.#helper.unref();
  }

  /** Ends the forwarder (and its outbound helper) and waits for it. */
  async kill(): Promise<void> {
    this.#helper.child.kill('SIGTERM');
    const timer = setTimeout(() => this.#helper.child.kill('SIGKILL'), 1000);
    await this.#helper.exit;
    clearTimeout(timer);
  }
}

function portError(error: unknown, context: string): Error {
  if (!(error instanceof HelperError) || error.step !== 'bind') return error as Error;
  const what = /`([^`]*)`/.exec(error.message)?.[1] ?? 'a published port';
  if (error.errnoCode === 'EADDRINUSE') {
    return new AlreadyExistsError(`${context}: host port ${what} is already in use`, { cause: error });
  }
  if (error.errnoCode === 'EACCES' || error.errnoCode === 'EPERM') {
    return new PermissionError(`${context}: host port ${what} may not be bound by this user`, { cause: error });
  }
  if (error.errnoCode === 'EADDRNOTAVAIL') {
    return new PermissionError(`${context}: host port ${what}: the address is not one of this host's`, { cause: error });
  }
  return error;
}

function outboundError(error: unknown, context: string, tool: string | undefined): Error {
  if (!(error instanceof HelperError) || error.step !== 'outbound') return error as Error;
  return new UnavailableError(`${context}: outbound network through ${tool ?? 'its helper'}: ${error.message.slice(context.length + 2)}`, {
    cause: error,
  });
}

/**
 * Ends a recorded forwarder unless its pid now names another process: SIGTERM
 * (it reaps its outbound helper first), SIGKILL after a second; waits until it is gone.
 */
export async function endRecordedHelper(record: HelperPidRecord | undefined): Promise<void> {
  if (record === undefined || record.pid <= 0) return;
  for (let i = 0; i < 200; i++) {
    if (processStartTime(record.pid) !== record.start) return;
    try {
      process.kill(record.pid, i < 100 ? 'SIGTERM' : 'SIGKILL');
    } catch {
      return;
    }
    await sleep(10);
  }
}

/** The outbound helpers a rootless container's network can use, first found first. */
const OUTBOUND_TOOLS = ['slirp4netns', 'pasta'] as const;

/** Which outbound helper to use; see `RuntimeOptions.rootlessOutbound`. */
export type OutboundChoice = 'auto' | (typeof OUTBOUND_TOOLS)[number] | 'none';
const BIN_DIRS = ['/usr/bin', '/usr/sbin', '/usr/local/bin', '/bin', '/sbin'];

/**
 * The argv of the outbound helper for a container's namespaces: pasta (as
 * podman runs it, but with every port forwarding off: inbound is the
 * forwarder's, and pasta's own loses UDP replies to 127.0.0.1 and times out for
 * TCP to the host's own address on Debian 12) or slirp4netns; `'auto'` takes
 * slirp4netns first, as Debian 12's pasta (2023-03) hangs on connections to the
 * host's own addresses, which hairpin needs. The forwarder
 * hands it the namespaces as its fds 3 (net) and 4 (user, when `userns`).
 * Undefined when neither is installed.
 */
export function outboundArgv(userns: boolean, choice: OutboundChoice = 'auto'): string[] | undefined {
  const net = '/proc/self/fd/3';
  const user = '/proc/self/fd/4';
  if (choice === 'none') return undefined;
  for (const tool of choice === 'auto' ? OUTBOUND_TOOLS : [choice]) {
    const dir = BIN_DIRS.find((d) => existsSync(`${d}/${tool}`));
    if (dir === undefined) continue;
    const path = `${dir}/${tool}`;
    if (tool === 'pasta') {
      // Its own addresses, as slirp4netns's: with the host's copied in, the host's address
      // would be the container's own, and a container could not reach another's published port there.
      return [path, '--config-net', '--foreground', '--quiet', '--ipv4-only', '-a', '10.0.2.100', '-n', '24', '-g', '10.0.2.2',
        '-t', 'none', '-u', 'none', '-T', 'none', '-U', 'none',
        ...(userns ? ['--userns', user] : ['--netns-only']), '--netns', net];
    }
    return [path, '--configure', '--mtu=65520', '--disable-host-loopback', '--netns-type=path',
      ...(userns ? [`--userns-path=${user}`] : []), net, 'tap0'];
  }
  return undefined;
}
