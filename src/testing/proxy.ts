/**
 * Fault injection on the wire: a TCP proxy in the test process, put between
 * the test and a container's published port, with Toxiproxy's toxics
 * (latency with jitter, bandwidth, timeout, reset, slicer) added and removed
 * while connections are open, and `cut()`/`heal()` of the whole link.
 *
 * @module
 */

import { createServer, Socket, type AddressInfo, type Server } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { AlreadyExistsError, InvalidArgumentError, InvalidStateError, NotFoundError } from '../index.js';

/** The direction a toxic acts on: `upstream` is client → server, `downstream` server → client. */
export type ToxicStream = 'upstream' | 'downstream';

/** Delays each chunk by `latency` ms, plus or minus up to `jitter` ms, counted from when it arrived. */
export interface LatencyToxic {
  /** The kind. */
  type: 'latency';
  /** Milliseconds added. */
  latency: number;
  /** The most milliseconds added or taken off at random per chunk. @default 0 */
  jitter?: number;
}

/** Limits the throughput to `rate` KB/s (1 KB = 1000 bytes). */
export interface BandwidthToxic {
  /** The kind. */
  type: 'bandwidth';
  /** Kilobytes per second. */
  rate: number;
}

/**
 * Stops all data (it is dropped), and closes the connection after `timeout`
 * ms; with 0 the connection stays open, silent, until the toxic is removed.
 */
export interface TimeoutToxic {
  /** The kind. */
  type: 'timeout';
  /** Milliseconds until the connection is closed; 0: never. */
  timeout: number;
}

/** Resets the connection (TCP RST: the client sees `ECONNRESET`), at once or after `timeout` ms. */
export interface ResetPeerToxic {
  /** The kind. */
  type: 'reset_peer';
  /** Milliseconds to wait first. @default 0 */
  timeout?: number;
}

/** Cuts the data into small pieces (`averageSize` ± `sizeVariation` bytes) sent `delay` µs apart. */
export interface SlicerToxic {
  /** The kind. */
  type: 'slicer';
  /** The average size of a piece, in bytes. */
  averageSize: number;
  /** How much a piece's size varies, in bytes. @default 0 */
  sizeVariation?: number;
  /** Microseconds between two pieces. @default 0 */
  delay?: number;
}

/** One of the toxics. */
export type ToxicKind = LatencyToxic | BandwidthToxic | TimeoutToxic | ResetPeerToxic | SlicerToxic;

/** What is common to every toxic as {@link Proxy.addToxic} takes it. */
export interface ToxicCommon {
  /** Its name, to remove it by. @default `<type>_<stream>` */
  name?: string;
  /** The direction it acts on. @default 'downstream' */
  stream?: ToxicStream;
  /** The probability (0 to 1) that it applies to a given connection. @default 1 */
  toxicity?: number;
}

/** A toxic as {@link Proxy.addToxic} takes it. */
export type Toxic = ToxicKind & ToxicCommon;

/** A toxic as the proxy holds it. */
export type ActiveToxic = ToxicKind & Required<Pick<ToxicCommon, 'name' | 'stream' | 'toxicity'>>;

/** Where a proxy forwards to. */
export interface ProxyUpstream {
  /** The host name or address. */
  readonly host: string;
  /** The TCP port. */
  readonly port: number;
}

/** Options of {@link createProxy}. */
export interface ProxyOptions {
  /** Where the proxy forwards to. */
  upstream: ProxyUpstream;
  /** The address it listens on. @default '127.0.0.1' */
  listenHost?: string;
  /** The port it listens on. @default 0 (a free one) */
  listenPort?: number;
}

/** One direction of one connection: a queue of chunks passed through the toxics in order. */
class Link {
  readonly #queue: { data: Buffer; at: number }[] = [];
  #pumping = false;

  constructor(
    readonly stream: ToxicStream,
    readonly from: Socket,
    readonly to: Socket,
    readonly connection: Connection,
  ) {
    from.on('data', (data: Buffer) => {
      this.#queue.push({ data, at: performance.now() });
      // Back-pressure: stop reading while chunks wait for their toxics.
      if (this.#queue.length > 64) from.pause();
      void this.#pump();
    });
    from.on('end', () => {
      this.#queue.push({ data: Buffer.alloc(0), at: performance.now() });
      void this.#pump();
    });
  }

  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#queue.length > 0 && !this.connection.closed) {
        const chunk = this.#queue.shift()!;
        if (this.#queue.length < 16 && this.from.isPaused()) this.from.resume();
        await this.#send(chunk);
      }
    } catch {
      this.connection.destroy();
    } finally {
      this.#pumping = false;
    }
  }

  async #send({ data, at }: { data: Buffer; at: number }): Promise<void> {
    const toxics = this.connection.proxy.toxicsFor(this.stream, this.connection);
    // A timeout toxic swallows what arrives while it is there.
    if (toxics.some((t) => t.type === 'timeout')) return;
    if (data.length === 0) {
      this.to.end();
      return;
    }
    let pieces = [data];
    let gapUs = 0;
    for (const toxic of toxics) {
      if (toxic.type === 'latency') {
        const jitter = toxic.jitter ?? 0;
        const wait = at + toxic.latency + (Math.random() * 2 - 1) * jitter - performance.now();
        if (wait > 0) await sleep(wait);
      } else if (toxic.type === 'bandwidth') {
        await sleep((data.length / (toxic.rate * 1000)) * 1000);
      } else if (toxic.type === 'slicer') {
        pieces = slice(data, toxic.averageSize, toxic.sizeVariation ?? 0);
        gapUs = toxic.delay ?? 0;
      }
    }
    for (const [i, piece] of pieces.entries()) {
      if (this.connection.closed) return;
      if (i > 0 && gapUs > 0) await sleep(gapUs / 1000);
      if (!this.to.write(piece)) await new Promise<void>((resolve) => this.to.once('drain', resolve).once('close', resolve));
    }
  }
}

function slice(data: Buffer, average: number, variation: number): Buffer[] {
  const out: Buffer[] = [];
  for (let offset = 0; offset < data.length; ) {
    const size = Math.max(1, Math.round(average + (Math.random() * 2 - 1) * variation));
    out.push(data.subarray(offset, offset + size));
    offset += size;
  }
  return out;
}

/** A client's connection and the proxy's connection upstream. */
class Connection {
  closed = false;
  /** Per toxic name, whether this connection drew it (toxicity). */
  readonly drawn = new Map<string, boolean>();
  readonly #timers = new Map<string, NodeJS.Timeout>();

  constructor(
    readonly proxy: Proxy,
    readonly client: Socket,
    readonly server: Socket,
  ) {
    new Link('upstream', client, server, this);
    new Link('downstream', server, client, this);
    for (const socket of [client, server]) {
      socket.on('error', () => this.destroy());
      socket.on('close', () => {
        if (client.destroyed && server.destroyed) this.destroy();
      });
    }
  }

  /** Starts the timers of the connection-level toxics (timeout, reset_peer) that apply to it. */
  arm(toxic: ActiveToxic): void {
    if (this.closed || !this.proxy.applies(toxic, this)) return;
    if (toxic.type === 'timeout' && toxic.timeout > 0) {
      this.#timers.set(toxic.name, setTimeout(() => this.destroy(), toxic.timeout));
    } else if (toxic.type === 'reset_peer') {
      // At once, not on the next tick: a request the test sends right after addToxic must meet the reset.
      if ((toxic.timeout ?? 0) === 0) return this.reset();
      this.#timers.set(toxic.name, setTimeout(() => this.reset(), toxic.timeout ?? 0));
    }
  }

  disarm(name: string): void {
    clearTimeout(this.#timers.get(name));
    this.#timers.delete(name);
    this.drawn.delete(name);
  }

  reset(): void {
    if (this.closed) return;
    this.client.resetAndDestroy();
    this.server.resetAndDestroy();
    this.destroy();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.client.destroy();
    this.server.destroy();
    this.proxy.forget(this);
  }
}

/**
 * A TCP proxy with toxics, as {@link createProxy} makes it: connect to
 * `host:port` instead of the upstream, then add and remove toxics, or cut and
 * heal the link, while the test runs. `await using` closes it.
 */
export class Proxy implements AsyncDisposable {
  /** The address it listens on. */
  readonly host: string;
  /** Where it forwards to. */
  readonly upstream: ProxyUpstream;
  #port = 0;
  #server: Server | undefined;
  #closed = false;
  readonly #toxics = new Map<string, ActiveToxic>();
  readonly #connections = new Set<Connection>();

  /** @internal */
  constructor(options: ProxyOptions) {
    this.host = options.listenHost ?? '127.0.0.1';
    this.upstream = { ...options.upstream };
    this.#port = options.listenPort ?? 0;
  }

  /** The port it listens on (the same after `heal()`). */
  get port(): number {
    return this.#port;
  }

  /** Whether it is cut (connections refused until `heal()`). */
  get isCut(): boolean {
    return this.#server === undefined && !this.#closed;
  }

  /** @internal */
  async listen(): Promise<void> {
    const server = createServer({ noDelay: true }, (client) => this.#accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.host, port: this.#port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  #accept(client: Socket): void {
    client.pause();
    const server = new Socket();
    server.setNoDelay(true);
    const connection = new Connection(this, client, server);
    this.#connections.add(connection);
    server.connect({ host: this.upstream.host, port: this.upstream.port }, () => {
      client.resume();
      for (const toxic of this.#toxics.values()) connection.arm(toxic);
    });
  }

  /** @internal */
  forget(connection: Connection): void {
    this.#connections.delete(connection);
  }

  /** @internal Whether `toxic` applies to `connection`, drawn once per connection by its toxicity. */
  applies(toxic: ActiveToxic, connection: Connection): boolean {
    let drawn = connection.drawn.get(toxic.name);
    if (drawn === undefined) {
      drawn = toxic.toxicity >= 1 || Math.random() < toxic.toxicity;
      connection.drawn.set(toxic.name, drawn);
    }
    return drawn;
  }

  /** @internal The toxics acting on `stream` of `connection`, in the order they were added. */
  toxicsFor(stream: ToxicStream, connection: Connection): ActiveToxic[] {
    const out: ActiveToxic[] = [];
    for (const toxic of this.#toxics.values()) {
      if (toxic.stream === stream && this.applies(toxic, connection)) out.push(toxic);
    }
    return out;
  }

  /** The toxics in place, in the order they were added. */
  toxics(): ActiveToxic[] {
    return [...this.#toxics.values()].map((t) => ({ ...t }));
  }

  /**
   * Adds a toxic; it acts on open connections at once (a `reset_peer` or
   * `timeout` starts its timer on each) and on every new one.
   *
   * @returns The toxic's name.
   * @throws `AlreadyExistsError` (from `dockless`) when a toxic of that name is in place.
   * @throws `InvalidArgumentError` (from `dockless`) for a toxic whose fields are not valid.
   * @example
   * ```ts
   * proxy.addToxic({ type: 'latency', latency: 200, jitter: 20 });
   * proxy.addToxic({ type: 'reset_peer', stream: 'upstream', timeout: 100 });
   * ```
   */
  addToxic(toxic: Toxic): string {
    const active = validateToxic(toxic);
    if (this.#toxics.has(active.name)) throw new AlreadyExistsError(`add toxic \`${active.name}\`: a toxic of that name is in place`);
    this.#toxics.set(active.name, active);
    for (const connection of this.#connections) connection.arm(active);
    return active.name;
  }

  /**
   * Removes a toxic; data held by a `timeout` toxic stays dropped.
   *
   * @throws `NotFoundError` (from `dockless`) when no toxic has that name.
   */
  removeToxic(name: string): void {
    if (!this.#toxics.delete(name)) throw new NotFoundError(`remove toxic \`${name}\`: no toxic of that name`);
    for (const connection of this.#connections) connection.disarm(name);
  }

  /** Removes every toxic. */
  removeAllToxics(): void {
    for (const name of [...this.#toxics.keys()]) this.removeToxic(name);
  }

  /**
   * Cuts the link, as Toxiproxy's `enabled: false`: open connections are
   * closed and new ones refused (the port stops listening) until `heal()`.
   */
  async cut(): Promise<void> {
    if (this.#closed) throw new InvalidStateError('cut proxy: it is closed');
    const server = this.#server;
    this.#server = undefined;
    for (const connection of [...this.#connections]) connection.destroy();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Listens again on the same port after `cut()`. */
  async heal(): Promise<void> {
    if (this.#closed) throw new InvalidStateError('heal proxy: it is closed');
    if (this.#server === undefined) await this.listen();
  }

  /** Closes the proxy and every connection through it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.cut();
    this.#closed = true;
  }

  /** Same as {@link Proxy.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function validateToxic(toxic: Toxic): ActiveToxic {
  const stream = toxic.stream ?? 'downstream';
  const context = `add toxic \`${toxic.name ?? `${String(toxic.type)}_${stream}`}\``;
  const number = (value: unknown, what: string, optional = false) => {
    if (optional && value === undefined) return;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new InvalidArgumentError(`${context}: ${what} must be a number, 0 or more`);
  };
  if (stream !== 'upstream' && stream !== 'downstream') throw new InvalidArgumentError(`${context}: stream must be 'upstream' or 'downstream'`);
  const toxicity = toxic.toxicity ?? 1;
  if (typeof toxicity !== 'number' || !(toxicity >= 0 && toxicity <= 1)) throw new InvalidArgumentError(`${context}: toxicity must be from 0 to 1`);
  switch (toxic.type) {
    case 'latency':
      number(toxic.latency, 'latency');
      number(toxic.jitter, 'jitter', true);
      break;
    case 'bandwidth':
      number(toxic.rate, 'rate');
      if (toxic.rate === 0) throw new InvalidArgumentError(`${context}: rate must be above 0 (use a timeout toxic to stop data)`);
      break;
    case 'timeout':
      number(toxic.timeout, 'timeout');
      break;
    case 'reset_peer':
      number(toxic.timeout, 'timeout', true);
      break;
    case 'slicer':
      number(toxic.averageSize, 'averageSize');
      if (toxic.averageSize < 1) throw new InvalidArgumentError(`${context}: averageSize must be 1 or more`);
      number(toxic.sizeVariation, 'sizeVariation', true);
      number(toxic.delay, 'delay', true);
      break;
    default:
      throw new InvalidArgumentError(`${context}: unknown toxic type \`${String((toxic as { type: unknown }).type)}\``);
  }
  const name = toxic.name ?? `${toxic.type}_${stream}`;
  if (typeof name !== 'string' || name === '') throw new InvalidArgumentError(`${context}: name must be a non-empty string`);
  return { ...toxic, name, stream, toxicity };
}

/**
 * Starts a TCP proxy to `upstream` with no toxic in place.
 *
 * @throws `InvalidArgumentError` (from `dockless`) when the upstream is not a host and a port.
 * @example
 * ```ts
 * await using proxy = await createProxy({ upstream: { host: db.host, port: db.port } });
 * proxy.addToxic({ type: 'latency', latency: 100 });
 * const client = new pg.Client({ host: proxy.host, port: proxy.port, user: 'test', password: 'test' });
 * ```
 */
export async function createProxy(options: ProxyOptions): Promise<Proxy> {
  const { host, port } = options.upstream ?? {};
  if (typeof host !== 'string' || host === '' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidArgumentError('createProxy: upstream must be { host, port } with a port from 1 to 65535');
  }
  const proxy = new Proxy(options);
  await proxy.listen();
  return proxy;
}
