/**
 * The fork server: one helper process (`dockless-helper fork-server`) per helper
 * binary and Node process, that forks `run` and `exec` on request. A spawn from
 * Node forks the whole Node process, at a cost that grows with its heap; the
 * server is a small process whose fork costs little, and its children are sealed
 * copies already (it seals itself once), so `run` need not. Each op is still a
 * process of its own with its own arguments; the server only replaces Node's
 * fork+exec. Contract: `fork-server` in native/PROTOCOL.md.
 *
 * The server talks back on Node's IPC channel (its `'ipc'` descriptor, inherited,
 * never a path: nobody else can reach it), which is also how the ops' descriptors
 * arrive here (SCM_RIGHTS, as `net.Socket`s); requests go the other way on a pipe
 * in a binary framing (the helper parses no JSON).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { constants as osConstants } from 'node:os';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import createDebug from 'debug';
import { encodeConfig } from './protocol.js';

const debug = createDebug('dockless:helper');

const REQ_FORK = 1;
const REQ_KILL = 2;
const REQ_RM = 3;
const REQ_MOVE = 4;
const FLAG_DETACHED = 0x1;
const FLAG_STDIN = 0x2;
const FLAG_CONTROL = 0x10;

/**
 * The environment variable that turns the fork server off (`0`: every op is
 * then spawned from Node) or starts it for the first op too (`1`; by default
 * the first op is spawned and the second starts it).
 */
export const FORK_SERVER_ENV = 'DOCKLESS_FORK_SERVER';

type ServerMessage =
  | { t: 'ready'; pid: number }
  | { t: 'failed'; errno: number }
  | { t: 'fd'; id: number; fd: number; pid: number }
  | { t: 'exit'; id: number; code: number; signal: number }
  | { t: 'moved'; id: number; errnos: number[] }
  | { t: 'error'; id: number; errno: number; step: string };

/** What {@link ForkServer.fork} needs of an op. */
export interface ForkRequest {
  op: 'run' | 'exec' | 'rm';
  /** The op's input descriptors' contents, from fd 4 on. */
  inputs: readonly Buffer[];
  /** Its arguments, on the descriptor after the inputs (`--config-fd`). */
  args: readonly string[];
  /** Whether each of fds 0, 1, 2 is a pipe (else /dev/null). */
  pipes: readonly [boolean, boolean, boolean];
  detached: boolean;
  /** A control pipe after the inputs. */
  control: boolean;
}

const signalNames = new Map<number, NodeJS.Signals>(
  Object.entries(osConstants.signals).map(([name, n]) => [n, name as NodeJS.Signals]),
);

/**
 * One op forked by the server, shaped as much like a `ChildProcess` as the
 * helper's callers use: pid, stdio, `kill`, `ref`/`unref`, `exitCode`/`signalCode`,
 * and the `exit`, `close` and `error` events.
 */
export class ForkedChild extends EventEmitter {
  /** The op's pid. */
  pid: number | undefined;
  /** Its descriptors as Node holds them, by the op's descriptor number (`null` where Node has none). */
  readonly stdio: (Socket | null)[];
  /** Its exit code, once it exited normally. */
  exitCode: number | null = null;
  /** The signal that ended it. */
  signalCode: NodeJS.Signals | null = null;
  readonly #server: ForkServer;
  readonly #id: number;
  #refd = true;
  #exited = false;
  #reported = false;
  #closed = false;
  #open = 0;

  /** @internal */
  constructor(server: ForkServer, id: number, slots: number) {
    super();
    this.#server = server;
    this.#id = id;
    this.stdio = Array.from({ length: slots }, () => null);
  }

  /** Its fd 0, when a pipe. */
  get stdin(): Writable | null {
    return this.stdio[0] ?? null;
  }

  /** Its fd 1, when a pipe. */
  get stdout(): Readable | null {
    return this.stdio[1] ?? null;
  }

  /** Its fd 2, when a pipe. */
  get stderr(): Readable | null {
    return this.stdio[2] ?? null;
  }

  /** Sends `signal` through the server, which signals only a child it has not reaped (no reused pid). */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    if (this.#exited) return false;
    const n = typeof signal === 'number' ? signal : osConstants.signals[signal];
    if (n === undefined) return false;
    return this.#server.kill(this.#id, n);
  }

  /** Keeps the event loop alive until it exits (the default). */
  ref(): void {
    if (this.#refd || this.#exited) return;
    this.#refd = true;
    this.#server.hold(1);
  }

  /** Lets the event loop end while it runs. */
  unref(): void {
    if (!this.#refd || this.#exited) return;
    this.#refd = false;
    this.#server.hold(-1);
  }

  /** @internal */
  onFd(fd: number, socket: Socket): void {
    this.stdio[fd] = socket;
    // As for a ChildProcess, `close` waits for every descriptor but stdin, which only this side ends.
    if (fd === 0) return;
    this.#open++;
    // Stdout, stderr and the status pipe are only read here: at their end they are closed at once. Left to
    // the stream, each would first be shut down for writing (a syscall, a request and its callback per launch).
    if (fd <= 3) socket.once('end', () => socket.destroy());
    socket.once('close', () => {
      this.#open--;
      this.#maybeClose();
    });
  }

  /** @internal */
  onExit(code: number, signal: number): void {
    if (this.#exited) return;
    this.#exited = true;
    if (this.#refd) this.#server.hold(-1);
    // Later, as a ChildProcess's are: the exit may be read with the op's descriptors, before
    // its caller has them or listens (they come a tick after it, see ForkServer.#settle).
    setImmediate(() => {
      this.exitCode = code >= 0 ? code : null;
      this.signalCode = signal > 0 ? (signalNames.get(signal) ?? null) : null;
      this.#reported = true;
      this.emit('exit', this.exitCode, this.signalCode);
      // As Node does for a ChildProcess: what nobody reads (a control pipe) drains, so that it closes.
      for (const socket of this.stdio.slice(1)) {
        if (socket !== null && socket.readable && socket.readableFlowing === null && socket.listenerCount('data') === 0) socket.resume();
      }
      this.#maybeClose();
    });
  }

  #maybeClose(): void {
    if (this.#reported && this.#open === 0 && !this.#closed) {
      this.#closed = true;
      this.emit('close', this.exitCode, this.signalCode);
    }
  }
}

type Pending = {
  child: ForkedChild;
  fds: number;
  pid?: number;
  resolve: (child: ForkedChild) => void;
  reject: (error: Error) => void;
};

/** Per helper path: the server, or undefined where none could start (then ops are spawned). */
const servers = new Map<string, Promise<ForkServer | undefined>>();
/** The helper paths whose server is up. */
const live = new Set<string>();
/** The helper paths whose first op was spawned: the next one starts the server. */
const spawnedFirst = new Set<string>();

/** One fork server process; see the module's comment. */
export class ForkServer {
  /** The server's pid: what a forked op's `--die-with-parent` names. */
  readonly pid: number;
  readonly #process: ChildProcess;
  readonly #requests: Writable;
  readonly #path: string;
  #nextId = 1;
  #holds = 0;
  #dead: Error | undefined;
  /** Whether requests are being gathered for one write at the end of this tick (see #send). */
  #corked = false;
  readonly #pending = new Map<number, Pending>();
  readonly #running = new Map<number, ForkedChild>();
  /** The `rm`s of {@link ForkServer.remove} still running, by id: each one's end. */
  readonly #removals = new Map<number, (gone: boolean) => void>();
  /** The moves of {@link ForkServer.move} not answered yet, by id. */
  readonly #moves = new Map<number, (errnos: number[] | undefined) => void>();

  private constructor(path: string, process: ChildProcess, pid: number) {
    this.#path = path;
    this.#process = process;
    this.pid = pid;
    this.#requests = process.stdio[4] as Writable;
    // A request to a server that is gone fails on its 'exit' below; EPIPE adds nothing.
    this.#requests.on('error', () => undefined);
    process.on('message', (message: ServerMessage, handle?: Socket) => this.#onMessage(message, handle));
    process.once('exit', (code, signal) => this.#onGone(new Error(`fork server exited (${signal ?? `code ${code}`})`)));
    live.add(path);
    this.#process.unref();
    this.#unrefChannel();
    (this.#requests as unknown as { unref?: () => void }).unref?.();
  }

  /**
   * The running server of the helper at `path`, started on the second call; `undefined`
   * on the first call, when it is turned off ({@link FORK_SERVER_ENV}) or cannot start,
   * and the caller spawns instead.
   */
  static for(path: string): Promise<ForkServer | undefined> {
    const setting = process.env[FORK_SERVER_ENV];
    if (setting === '0') return Promise.resolve(undefined);
    let server = servers.get(path);
    if (server === undefined) {
      // A server costs a spawn of its own (of the whole Node process), the helper's
      // sealed re-exec and a handshake before the op's fork: more than spawning the op.
      // A program that starts one container never gets that back, so its first op is spawned.
      if (setting !== '1' && !spawnedFirst.has(path)) {
        spawnedFirst.add(path);
        return Promise.resolve(undefined);
      }
      server = ForkServer.#start(path);
      servers.set(path, server);
    }
    return server;
  }

  /** The server of `path` if one is running: its children need no sealed copy made for them. */
  static running(path: string): boolean {
    return live.has(path);
  }

  /** True once an op of `path` was spawned in the server's stead: the next one starts it (no sealed copy is worth making meanwhile). */
  static expected(path: string): boolean {
    return spawnedFirst.has(path) && process.env[FORK_SERVER_ENV] !== '0';
  }

  static #start(path: string): Promise<ForkServer | undefined> {
    return new Promise((resolve) => {
      let child: ChildProcess;
      try {
        child = spawn(path, ['fork-server', '--ipc-fd', '3', '--request-fd', '4', '--parent-pid', String(process.pid)], {
          stdio: ['ignore', 'ignore', 'ignore', 'ipc', 'pipe'],
          env: {},
        });
      } catch (error) {
        debug('no fork server for %s, ops are spawned: %s', path, (error as Error).message);
        resolve(undefined);
        return;
      }
      // Only our own listeners go: Node's internal ones carry the descriptors.
      const settle = () => {
        child.off('error', onError);
        child.off('exit', onExit);
        child.off('message', onMessage);
      };
      const fail = (why: string) => {
        debug('no fork server for %s, ops are spawned: %s', path, why);
        settle();
        child.kill('SIGKILL');
        resolve(undefined);
      };
      const onError = (error: Error) => fail(error.message);
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => fail(`it exited (${signal ?? `code ${code}`})`);
      const onMessage = (message: ServerMessage) => {
        if (message.t !== 'ready') return fail(`it said ${JSON.stringify(message)}`);
        settle();
        resolve(new ForkServer(path, child, message.pid));
      };
      child.on('error', onError);
      child.on('exit', onExit);
      child.on('message', onMessage);
    });
  }

  /** Forks `request.op`; resolves once its pid and descriptors are here. */
  fork(request: ForkRequest): Promise<ForkedChild> {
    if (this.#dead !== undefined) return Promise.reject(this.#dead);
    const id = this.#nextId++;
    const slots = 5 + request.inputs.length + (request.control ? 1 : 0);
    const child = new ForkedChild(this, id, slots);
    const fds = 1 + request.pipes.filter(Boolean).length + (request.control ? 1 : 0);
    let flags = request.detached ? FLAG_DETACHED : 0;
    request.pipes.forEach((pipe, k) => {
      if (pipe) flags |= FLAG_STDIN << k;
    });
    if (request.control) flags |= FLAG_CONTROL;
    // One buffer, the arguments encoded into it after the header, the op's name and the other inputs.
    const inputs = request.inputs.length + 1;
    let at = 4 * (6 + inputs);
    const lead = at + request.op.length + request.inputs.reduce((n, b) => n + b.length, 0);
    const frame = encodeConfig(request.args, lead);
    const header = [frame.length - 4, REQ_FORK, id, flags, inputs, request.op.length, ...request.inputs.map((b) => b.length), frame.length - lead];
    header.forEach((v, i) => frame.writeUInt32LE(v, 4 * i));
    at += frame.write(request.op, at, 'latin1');
    for (const input of request.inputs) at += input.copy(frame, at);
    const promise = new Promise<ForkedChild>((resolve, reject) => {
      this.#pending.set(id, { child, fds, resolve, reject });
    });
    this.#running.set(id, child);
    this.hold(1);
    this.#send(frame);
    return promise;
  }

  /**
   * Has the server fork the helper's `rm` of `paths` (absolute): one request and
   * one reply, with no descriptor for this process to take, unlike {@link ForkServer.fork}.
   * Holds the event loop while it runs, as a spawned `rm` would.
   *
   * @returns true once they are gone; false when it failed (or the server went):
   *   the caller removes what is left its own way.
   */
  remove(paths: readonly string[]): Promise<boolean> {
    if (this.#dead !== undefined || paths.length === 0) return Promise.resolve(paths.length === 0);
    return this.#ask(REQ_RM, paths, this.#removals);
  }

  /**
   * Has the server append `event.line` to the events file `event.file` (when
   * given), then rename each `[from, to]` of `moves` in order, in its own
   * process: one request and one reply, no thread-pool trip here.
   *
   * @returns each rename's errno (0: done), in order; undefined when the server
   *   went or refused the request (nothing is known to have been done).
   */
  move(event: { file: string; line: string } | undefined, moves: readonly (readonly [string, string])[]): Promise<number[] | undefined> {
    if (this.#dead !== undefined) return Promise.resolve(undefined);
    return this.#ask(REQ_MOVE, [event?.file ?? '', event?.line ?? '', ...moves.flat()], this.#moves);
  }

  /** Sends a request of `kind` whose rest is `strings`, each ended by a NUL; its answer, through `answers`, settles it (the event loop is held meanwhile). */
  #ask<T>(kind: number, strings: readonly string[], answers: Map<number, (answer: T) => void>): Promise<T> {
    const id = this.#nextId++;
    const frame = encodeConfig(strings, 12);
    frame.writeUInt32LE(frame.length - 4, 0);
    frame.writeUInt32LE(kind, 4);
    frame.writeUInt32LE(id, 8);
    this.hold(1);
    const done = new Promise<T>((resolve) => {
      answers.set(id, (answer) => {
        answers.delete(id);
        this.hold(-1);
        resolve(answer);
      });
    });
    this.#send(frame);
    return done;
  }

  /** @internal Asks the server to signal op `id`. */
  kill(id: number, signal: number): boolean {
    if (this.#dead !== undefined || !this.#running.has(id)) return false;
    const frame = Buffer.alloc(16);
    [12, REQ_KILL, id, signal].forEach((v, i) => frame.writeUInt32LE(v, 4 * i));
    this.#send(frame);
    return true;
  }

  /**
   * Writes a request. The requests of one tick (ops whose answers arrived in one read of the
   * channel, launches and removals resumed together) go in one `writev`: one syscall, and one
   * wake-up of the server, for all of them.
   */
  #send(frame: Buffer): void {
    if (!this.#corked) {
      this.#corked = true;
      this.#requests.cork();
      process.nextTick(() => {
        this.#corked = false;
        this.#requests.uncork();
      });
    }
    this.#requests.write(frame);
  }

  /** @internal Counts the ops that keep the event loop alive, as a spawned child would. */
  hold(delta: number): void {
    const before = this.#holds;
    this.#holds += delta;
    if (this.#dead !== undefined) return;
    if (before === 0 && this.#holds > 0) (this.#process.channel as unknown as { ref(): void } | undefined)?.ref();
    else if (before > 0 && this.#holds === 0) this.#unrefChannel();
  }

  #unrefChannel(): void {
    (this.#process.channel as unknown as { unref(): void } | undefined)?.unref();
  }

  #onMessage(message: ServerMessage, handle: Socket | undefined): void {
    switch (message.t) {
      case 'fd': {
        const pending = this.#pending.get(message.id);
        if (handle === undefined) return;
        if (pending === undefined) {
          handle.destroy();
          return;
        }
        pending.child.onFd(message.fd, handle);
        // Each descriptor's message carries the op's pid (its status pipe is always one).
        pending.pid = message.pid;
        pending.child.pid = message.pid;
        pending.fds--;
        this.#settle(message.id, pending);
        return;
      }
      case 'moved': {
        this.#moves.get(message.id)?.(Array.isArray(message.errnos) ? message.errnos : undefined);
        return;
      }
      case 'exit': {
        const removal = this.#removals.get(message.id);
        if (removal !== undefined) {
          removal(message.code === 0);
          return;
        }
        const child = this.#running.get(message.id);
        this.#running.delete(message.id);
        child?.onExit(message.code, message.signal);
        return;
      }
      case 'error': {
        const move = this.#moves.get(message.id);
        if (move !== undefined) {
          debug('fork server: move: %s: errno %d', message.step, message.errno);
          move(undefined);
          return;
        }
        const removal = this.#removals.get(message.id);
        if (removal !== undefined) {
          debug('fork server: rm: %s: errno %d', message.step, message.errno);
          removal(false);
          return;
        }
        const pending = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        const child = this.#running.get(message.id);
        this.#running.delete(message.id);
        if (child !== undefined) this.hold(-1);
        const code = Object.entries(osConstants.errno).find(([, n]) => n === message.errno)?.[0];
        const error = Object.assign(new Error(`fork server: ${message.step}: ${code ?? message.errno}`), { code, errno: message.errno });
        pending?.reject(error);
        return;
      }
    }
  }

  // Descriptors are delivered a tick after the messages read with them.
  #settle(id: number, pending: Pending): void {
    if (pending.pid === undefined || pending.fds > 0) return;
    this.#pending.delete(id);
    pending.resolve(pending.child);
  }

  #onGone(error: Error): void {
    debug('%s: %s', this.#path, error.message);
    this.#dead = error;
    // The next op starts another.
    live.delete(this.#path);
    servers.delete(this.#path);
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
    // The ops went with it (PR_SET_PDEATHSIG) or, detached, live on unwatched: as a killed spawn looks.
    for (const child of this.#running.values()) child.onExit(-1, osConstants.signals.SIGKILL);
    this.#running.clear();
    for (const removal of [...this.#removals.values()]) removal(false);
    for (const move of [...this.#moves.values()]) move(undefined);
  }
}
