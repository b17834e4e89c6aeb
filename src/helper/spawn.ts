import { spawn, type ChildProcess, type StdioNull, type StdioPipe } from 'node:child_process';
import { closeSync, constants as fsConstants, openSync, writeSync } from 'node:fs';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import createDebug from 'debug';
import type { EventEmitter } from 'node:events';
import { HelperError, InvalidArgumentError, UnsafeContentError } from '../errors.js';
import { ForkServer, type ForkedChild } from './fork-server.js';
import { locateHelper } from './locate.js';
import { processStartTime } from '../util/index.js';
import {
  CONFIG_FD_OPTION,
  HELPER_EXIT_USAGE,
  HELPER_STEP_MOUNT_TARGET,
  StatusLineDecoder,
  encodeConfig,
  type ErrorStatus,
  type HelperOp,
  type HelperStatus,
} from './protocol.js';

const debug = createDebug('dockless:helper');

/** What one of the helper's stdio descriptors is connected to. */
export type HelperStdio = StdioPipe | StdioNull | number;

/** Options of {@link spawnHelper}. */
export interface SpawnHelperOptions {
  /** The helper's fds 0, 1 and 2 (for `run`, the container's stdio). */
  stdio: [HelperStdio, HelperStdio, HelperStdio];
  /** Start the helper in its own session so that it outlives the caller. */
  detached?: boolean;
  /** Path of the helper binary; defaults to {@link locateHelper}. */
  helperPath?: string;
  /** Context put before every error message, e.g. `run container 3f2a…`. */
  context: string;
  /**
   * Data the helper reads on extra descriptors: `inputs[0]` on fd 4, `inputs[1]` on
   * fd 5, …, each an unnamed tmpfs file holding it from the helper's start (else a pipe
   * written at once and closed; see `filledInputs`) (for `run`, the seccomp program).
   * The op's arguments come the same way on the descriptor after them (`--config-fd`).
   */
  inputs?: readonly Buffer[];
  /**
   * A pipe kept open to the helper, on the descriptor after the arguments' (`--config-fd` + 1),
   * readable as {@link HelperProcess.control}: for `exec --tty`'s `--control-fd`.
   */
  control?: boolean;
}

/** How the helper process ended. */
export interface HelperExit {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * The helper process as its callers use it: a Node `ChildProcess`, or an op forked
 * by the fork server (`run` and `exec`, see {@link startHelper}) that behaves the same
 * in these respects.
 */
export interface HelperChild extends EventEmitter {
  /** The helper's pid. */
  readonly pid?: number | undefined;
  /** Its fd 0, when a pipe. */
  readonly stdin: Writable | null;
  /** Its fd 1, when a pipe. */
  readonly stdout: Readable | null;
  /** Its fd 2, when a pipe. */
  readonly stderr: Readable | null;
  /** Its descriptors as this process holds them, by number. */
  readonly stdio: readonly (Readable | Writable | null | undefined)[];
  /** Its exit code, once it exited normally. */
  readonly exitCode: number | null;
  /** The signal that ended it. */
  readonly signalCode: NodeJS.Signals | null;
  /** Sends it `signal` (SIGTERM); false when it is gone. */
  kill(signal?: NodeJS.Signals | number): boolean;
  /** Keeps the event loop alive until it exits (the default). */
  ref(): void;
  /** Lets the event loop end while it runs. */
  unref(): void;
}

type Waiter = {
  type: HelperStatus['type'];
  resolve: (status: HelperStatus) => void;
  reject: (error: Error) => void;
};

/**
 * One running helper process with its status descriptor (fd 3) decoded into
 * status objects. The only place in dockless that spawns the helper.
 */
export class HelperProcess {
  /** The helper process. */
  readonly child: HelperChild;
  /** Every status line received so far, in order. */
  readonly statuses: HelperStatus[] = [];
  /** Resolves when the helper process has exited and its status descriptor is drained. */
  readonly exit: Promise<HelperExit>;
  /**
   * For `run` and `exec` with piped stdio: the container's (or exec'd process's) stdout and stderr, held
   * until read, however late (see the constructor).
   */
  readonly stdout: Readable | null = null;
  readonly stderr: Readable | null = null;
  /** The control pipe, with {@link SpawnHelperOptions.control}; its descriptor is {@link HelperProcess.controlFd}. */
  readonly control: Writable | null = null;
  /** The helper's descriptor number of {@link HelperProcess.control}, or -1. */
  readonly controlFd: number = -1;
  readonly #op: HelperOp;
  readonly #context: string;
  #waiters: Waiter[] = [];
  #ended: HelperExit | undefined;
  #stderrTail = '';
  #failure: HelperError | UnsafeContentError | undefined;

  /** @internal `forked`: the op, already forked by the fork server with `options.inputs` and the arguments (see {@link startHelper}). */
  constructor(op: HelperOp, args: readonly string[], options: SpawnHelperOptions, forked?: ForkedChild) {
    this.#op = op;
    this.#context = options.context;
    const path = locateHelper(options.helperPath);
    if (forked === undefined && debug.enabled) debug('%s %s', op, redact(args).join(' '));
    const inputs = [...(options.inputs ?? [])];
    let argv: string[] = [op, ...args];
    if (op !== 'version') {
      // The arguments go over a pipe, written asynchronously however large: argv is world-readable.
      argv = [op, CONFIG_FD_OPTION, String(4 + inputs.length)];
      // Forked, the server holds them already: only their place counts here.
      inputs.push(forked === undefined ? encodeConfig(args) : Buffer.alloc(0));
    }
    const filled = forked === undefined ? filledInputs(inputs) : undefined;
    if (forked !== undefined) this.child = forked;
    else try {
      this.child = spawn(path, argv, {
        stdio: [...options.stdio, 'pipe', ...(filled ?? inputs.map(() => 'pipe' as const)), ...(options.control === true ? ['pipe' as const] : [])],
        detached: options.detached ?? false,
        // The helper takes everything from its arguments; the caller's environment is none of its business.
        env: {},
      });
    } catch (cause) {
      // Node throws (rather than emitting 'error') for E2BIG and a few other errnos of the spawn itself.
      const code = (cause as NodeJS.ErrnoException).code;
      const message = `${options.context}: spawn \`${path}\`: ${code ?? (cause as Error).message}`;
      if (code === 'E2BIG') throw new InvalidArgumentError(message, { cause });
      throw new HelperError(message, { op, cause, step: 'spawn', ...(code !== undefined ? { errnoCode: code } : {}) });
    } finally {
      // The helper holds its own; the files go with the last holder.
      for (const fd of filled ?? []) closeSync(fd);
    }
    if (forked === undefined && filled === undefined) inputs.forEach((data, i) => {
      const pipe = this.child.stdio[4 + i] as Writable | null;
      // A helper that fails before reading says why on its status fd; EPIPE here adds nothing.
      pipe?.on('error', () => undefined);
      pipe?.end(data);
    });
    if (options.control === true) {
      this.controlFd = 4 + inputs.length;
      this.control = this.child.stdio[this.controlFd] as Writable;
      // A helper that is gone has nothing to resize; the caller learns it from its exit.
      this.control.on('error', () => undefined);
    }
    if (op === 'run' || op === 'exec') {
      // Node drains a child's unread stdio when the child exits; a container that ends
      // before its Container object exists (a quick command on a busy machine) would lose
      // its output. A PassThrough attached now holds it until it is read.
      this.stdout = this.child.stdout?.pipe(new PassThrough()) ?? null;
      this.stderr = this.child.stderr?.pipe(new PassThrough()) ?? null;
    }
    const statusStream = this.child.stdio[3] as Readable;
    const decoder = new StatusLineDecoder();
    statusStream.on('data', (chunk: Buffer) => {
      for (const status of decoder.push(chunk)) this.#onStatus(status);
    });
    if (options.stdio[2] === 'pipe' && op !== 'run' && op !== 'exec') {
      this.child.stderr?.on('data', (chunk: Buffer) => {
        this.#stderrTail = (this.#stderrTail + chunk.toString()).slice(-4096);
      });
    }
    this.exit = new Promise<HelperExit>((resolve) => {
      let spawnError: Error | undefined;
      this.child.once('error', (error) => {
        spawnError = error;
      });
      this.child.once('close', (exitCode, signal) => {
        const ended: HelperExit = { exitCode, signal };
        this.#ended = ended;
        if (spawnError !== undefined && this.#failure === undefined) {
          const code = (spawnError as NodeJS.ErrnoException).code;
          this.#failure = new HelperError(`${this.#context}: spawn \`${path}\`: ${code ?? spawnError.message}`, {
            op,
            cause: spawnError,
            step: 'spawn',
            path,
            ...(code !== undefined ? { errnoCode: code } : {}),
          });
        } else if (this.#failure === undefined && exitCode !== 0) {
          this.#failure = this.#crashError(ended);
        }
        this.#flushWaiters();
        resolve(ended);
      });
    });
  }

  /** The failure this helper reported or died with, if any. */
  get failure(): HelperError | UnsafeContentError | undefined {
    return this.#failure;
  }

  /** The helper's pid (the shim for `run`). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * Resolves with the first status line of `type`; rejects with a
   * {@link HelperError} if the helper reports an error or exits first
   * ({@link UnsafeContentError} for a refused mount target; see {@link errorFromStatus}).
   */
  next<T extends HelperStatus['type']>(type: T): Promise<Extract<HelperStatus, { type: T }>> {
    const seen = this.statuses.find((s) => s.type === type);
    if (seen !== undefined) return Promise.resolve(seen as Extract<HelperStatus, { type: T }>);
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#ended !== undefined) return Promise.reject(this.#crashError(this.#ended, type));
    return new Promise((resolve, reject) => {
      this.#waiters.push({ type, resolve: resolve as (s: HelperStatus) => void, reject });
    });
  }

  /** Stops listening to the helper so that it does not keep the event loop alive. */
  unref(): void {
    this.child.unref();
    (this.child.stdio[3] as (Readable & { unref?: () => void }) | null | undefined)?.unref?.();
    for (const stream of [this.child.stdin, this.child.stdout, this.child.stderr]) {
      (stream as unknown as { unref?: () => void } | null)?.unref?.();
    }
  }

  #onStatus(status: HelperStatus): void {
    this.statuses.push(status);
    if (status.type === 'error') {
      this.#failure ??= errorFromStatus(this.#op, this.#context, status);
      this.#flushWaiters();
      return;
    }
    const still: Waiter[] = [];
    for (const waiter of this.#waiters) {
      if (waiter.type === status.type) waiter.resolve(status);
      else still.push(waiter);
    }
    this.#waiters = still;
  }

  #flushWaiters(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) {
      if (this.#failure !== undefined) waiter.reject(this.#failure);
      else if (this.#ended !== undefined) waiter.reject(this.#crashError(this.#ended, waiter.type));
    }
  }

  #crashError(ended: HelperExit, waitingFor?: string): HelperError {
    const how = ended.signal !== null ? `killed by ${ended.signal}` : `exited with code ${ended.exitCode}`;
    const usage = ended.exitCode === HELPER_EXIT_USAGE ? ' (usage error)' : '';
    const what = waitingFor !== undefined ? ` before reporting \`${waitingFor}\`` : '';
    const tail = this.#stderrTail.trim();
    return new HelperError(`${this.#context}: helper ${how}${usage}${what}${tail ? `: ${tail}` : ''}`, {
      op: this.#op,
      exitCode: ended.exitCode,
      signal: ended.signal,
      stderr: tail,
    });
  }
}

// O_TMPFILE (`__O_TMPFILE | O_DIRECTORY`; Node does not export it): a file with no name, which no other
// process can open but through a holder's /proc/PID/fd, and, with O_EXCL, that nobody can link into view.
const O_TMPFILE = 0o20000000 | fsConstants.O_DIRECTORY;
/** Where the helper's inputs are written before its spawn; null once that was refused (no tmpfs there, an old kernel). */
let inputDir: string | null = '/dev/shm';

/**
 * The helper's inputs as descriptors already holding their bytes, from its first
 * instruction: written to pipes, they reach it only after the spawn returns, and
 * their end (the EOF it reads them to) only once this thread is back in its event loop,
 * which a first launch's cold code keeps it from for milliseconds that the helper
 * would only wait. Each is an unnamed file on a tmpfs (memory, as a pipe's
 * buffer is), owner-only, written at offset 0 with the offset left there so
 * that the helper reads it from its start. Undefined where no such file can be
 * had: the inputs then go over pipes.
 */
function filledInputs(inputs: readonly Buffer[]): number[] | undefined {
  if (inputs.length === 0 || inputDir === null) return undefined;
  const fds: number[] = [];
  try {
    for (const data of inputs) {
      fds.push(openSync(inputDir, O_TMPFILE | fsConstants.O_RDWR | fsConstants.O_EXCL, 0o600));
      for (let done = 0; done < data.length; ) done += writeSync(fds.at(-1)!, data, done, data.length - done, done);
    }
    return fds;
  } catch (error) {
    for (const fd of fds) closeSync(fd);
    const code = (error as NodeJS.ErrnoException).code;
    // A full tmpfs may have room next time; a directory that is not there or cannot hold such a file will not.
    if (code !== 'ENOSPC' && code !== 'EMFILE' && code !== 'ENFILE') inputDir = null;
    debug('helper inputs over pipes: %s: %s', inputDir ?? '/dev/shm', code ?? String(error));
    return undefined;
  }
}

/** The arguments with env values and the contents of `--write-file` and `--write-file-late` (`PATH MODE CONTENT`) hidden, for debug logs. */
function redact(args: readonly string[]): string[] {
  return args.map((a, i) => {
    if (args[i - 1] === '--env') return `${a.split('=')[0]}=…`;
    if (args[i - 3] === '--write-file' || args[i - 3] === '--write-file-late') return '…';
    return a;
  });
}

/**
 * Turns an `error` status line into a {@link HelperError}. One format, the
 * helper's own: `<context>: <message>: <ERRNO>`, where the helper's message
 * names the syscall and its argument (``run container 3f2a…: mount `tmpfs` on
 * `/proc`: EPERM``); without a message, the step and its path stand in for it,
 * and a failure that is not a syscall's has no errno part. A mount the helper
 * refused because the image put a symlink in its target (step
 * {@link HELPER_STEP_MOUNT_TARGET}) becomes an {@link UnsafeContentError} naming
 * the path, with the {@link HelperError} as its cause.
 */
export function errorFromStatus(op: HelperOp, context: string, status: ErrorStatus): HelperError | UnsafeContentError {
  const what = status.message || `${status.step}${status.path ? ` \`${status.path}\`` : ''}`;
  const error = new HelperError(`${context}: ${what}${status.code ? `: ${status.code}` : ''}`, {
    op,
    step: status.step,
    errno: status.errno,
    errnoCode: status.code,
    ...(status.path !== undefined ? { path: status.path } : {}),
  });
  if (status.step === HELPER_STEP_MOUNT_TARGET) {
    return new UnsafeContentError(`${context}: ${status.message}`, {
      cause: error,
      ...(status.path !== undefined ? { path: status.path } : {}),
    });
  }
  return error;
}

/**
 * Loads what a spawn from this process needs (`child_process`, which brings `net` and
 * `dgram`: ~3 ms on a process's first spawn; the bundle loads it on first use) now,
 * for a caller that would only wait meanwhile (on the thread pool, say). Later calls cost nothing.
 */
export function preloadSpawn(): void {
  process.getBuiltinModule?.('node:child_process');
}

/** Starts the helper for `op`, spawned from this process. */
export function spawnHelper(op: HelperOp, args: readonly string[], options: SpawnHelperOptions): HelperProcess {
  return new HelperProcess(op, args, options);
}

/** The option of `run` and `exec` naming the process they must die with. */
const DIE_WITH_PARENT = '--die-with-parent';

/**
 * Starts the helper for `op`: `run` and `exec` with piped or ignored stdio are
 * forked by the fork server of their helper (started on the first call; see
 * src/helper/fork-server.ts), everything else, or where no server can start, is
 * spawned as {@link spawnHelper} does. The result behaves the same either way.
 *
 * @throws {@link HelperError} when the server cannot fork the op (step `fork`, …).
 */
export async function startHelper(op: HelperOp, args: readonly string[], options: SpawnHelperOptions): Promise<HelperProcess> {
  const forkable = (op === 'run' || op === 'exec' || op === 'rm') && options.stdio.every((s) => s === 'pipe' || s === 'ignore');
  const server = forkable ? await ForkServer.for(locateHelper(options.helperPath)) : undefined;
  if (server === undefined) return new HelperProcess(op, args, options);
  // The argv of a run is long: joined only for a reader.
  if (debug.enabled) debug('%s %s (fork server %d)', op, redact(args).join(' '), server.pid);
  // The op's parent is the server, which dies with this process: the op dies with the server.
  const end = args.indexOf('--');
  const at = args.findIndex((a, i) => a === DIE_WITH_PARENT && (end < 0 || i < end));
  let own = args;
  if (at >= 0 && args[at + 1] === String(process.pid)) {
    own = args.slice();
    (own as string[])[at + 1] = String(server.pid);
  }
  let forked: ForkedChild;
  try {
    forked = await server.fork({
      op: op as 'run' | 'exec' | 'rm',
      inputs: options.inputs ?? [],
      args: own,
      pipes: options.stdio.map((s) => s === 'pipe') as [boolean, boolean, boolean],
      detached: options.detached ?? false,
      control: options.control === true,
    });
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new HelperError(`${options.context}: ${(cause as Error).message}`, {
      op,
      cause,
      step: 'fork',
      ...(code !== undefined ? { errnoCode: code } : {}),
    });
  }
  return new HelperProcess(op, own, options, forked);
}

/**
 * Runs a short helper op to completion, feeding `input` on its stdin.
 * `background`: the helper does not keep the event loop alive (a flush nobody
 * waits for must not hold a process that has finished its work).
 *
 * @throws {@link HelperError} when the op reports an error or the helper dies
 *   ({@link UnsafeContentError} for a refused mount target).
 */
export async function runHelperOp(
  op: HelperOp,
  args: readonly string[],
  options: { input?: Buffer | string; context: string; helperPath?: string; background?: boolean },
): Promise<HelperStatus[]> {
  const helper = spawnHelper(op, args, {
    stdio: ['pipe', 'ignore', 'pipe'],
    context: options.context,
    ...(options.helperPath !== undefined ? { helperPath: options.helperPath } : {}),
  });
  if (options.background === true) helper.unref();
  helper.child.stdin?.on('error', () => {
    /* the helper may exit before reading all input; its status says why */
  });
  helper.child.stdin?.end(options.input ?? '');
  await helper.exit;
  if (helper.failure !== undefined) throw helper.failure;
  return helper.statuses;
}

/**
 * Removes the directory trees `paths` (absolute) with the helper's `rm`, forked
 * by the fork server, when one is running; a removal of many small files costs
 * the helper one process, and this process none of its thread pool's round trips
 * (nor, through the server's own `rm` request, a socket).
 *
 * @returns false when no fork server is running (a spawn of the whole Node process
 *   would cost more than the removal it saves) or the `rm` failed: the caller removes
 *   what is left its own way (and meets the error itself); what was removed stays removed.
 */
export async function removeTreesForked(paths: readonly string[], options: { helperPath?: string } = {}): Promise<boolean> {
  const path = locateHelper(options.helperPath);
  if (paths.length === 0) return true;
  if (!ForkServer.running(path)) return false;
  const server = await ForkServer.for(path);
  // The server's own `rm` request: no socket for this process to make, read and close.
  return server !== undefined ? server.remove(paths) : false;
}

/**
 * Appends `event.line` to the events file `event.file`, then renames each
 * `[from, to]` of `moves`, in the fork server of the helper (see
 * {@link ForkServer.move}), when one is running: none of this process's thread
 * pool's round trips.
 *
 * @returns each rename's errno (0: done); undefined when no server is running
 *   or it failed: then nothing is known done, and the caller does it its own way.
 */
export async function moveForked(
  event: { file: string; line: string } | undefined,
  moves: readonly (readonly [string, string])[],
  options: { helperPath?: string | undefined } = {},
): Promise<number[] | undefined> {
  const path = locateHelper(options.helperPath);
  if (!ForkServer.running(path)) return undefined;
  const server = await ForkServer.for(path);
  return server?.move(event, moves);
}

/** A helper `rm` started by {@link startDetachedRemover}, waiting for its paths. */
export interface DetachedRemover {
  /** Its pid: with {@link DetachedRemover.start}, who owns what it is given (see `ownerToken`). */
  readonly pid: number;
  /** Its start time, as `/proc/PID/stat` gives it. */
  readonly start: number;
  /** Hands it `paths` (absolute) and lets it go; it removes them after this process may have ended. */
  remove(paths: readonly string[]): void;
}

/**
 * Spawns the helper's `rm` in a session of its own, with nothing of this
 * process's holding it: it reads its arguments from a pipe to their end, so it
 * waits until {@link DetachedRemover.remove} says what to remove, and this
 * process need not wait for it to end (nor hold its event loop open for it).
 * What it was given and could not remove (it was killed, it failed) is left
 * where it is; name those paths after its owner so that the next look at them
 * finds the owner gone.
 *
 * @returns undefined when it could not be spawned or has ended already.
 */
export function startDetachedRemover(options: { helperPath?: string | undefined } = {}): DetachedRemover | undefined {
  let child: ChildProcess;
  try {
    // fd 3 is the status fd, which nobody reads: the paths left say what failed.
    child = spawn(locateHelper(options.helperPath), ['rm', CONFIG_FD_OPTION, '4'], {
      stdio: ['ignore', 'ignore', 'ignore', 'ignore', 'pipe'],
      detached: true,
      env: {},
    });
  } catch (error) {
    debug('detached rm: spawn: %s', String(error));
    return undefined;
  }
  child.on('error', (error) => debug('detached rm: %s', String(error)));
  child.unref();
  const config = child.stdio[4] as (Writable & { unref?: () => void }) | null;
  const start = child.pid !== undefined ? processStartTime(child.pid) : undefined;
  if (config === null || child.pid === undefined || start === undefined) {
    config?.destroy();
    return undefined;
  }
  config.on('error', () => undefined);
  config.unref?.();
  return {
    pid: child.pid,
    start,
    remove(paths) {
      config.end(encodeConfig(['--', ...paths]));
    },
  };
}
