import { isAbsolute } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { constants as osConstants } from 'node:os';
import createDebug from 'debug';
import { HelperError, InvalidArgumentError, InvalidStateError, NotFoundError } from '../errors.js';
import { sealedHelperPath, shown, startHelper, type HelperProcess } from '../helper/index.js';
import { processStartTime, raceAbort, throwIfAborted } from '../util/index.js';
import { execArgs, type ExecPlan } from './exec-args.js';
import { readJson, type ContainerConfigRecord, type ContainerPaths, type ContainerRecord } from './state.js';
import { resolveUserInLayers } from './user.js';
import { checkSize, DEFAULT_TERMINAL_SIZE, resizeRecord } from './io-plan.js';
import type { StdioMode, TerminalSize } from './spec.js';

const debug = createDebug('dockless:runtime');

/** Options of {@link Container.exec}. */
export interface ExecOptions {
  /** Variables set on top of the container's environment (the image's and the spec's). */
  env?: Record<string, string>;
  /** The working directory, an absolute path in the container. @default the container's */
  cwd?: string;
  /**
   * The user, as `docker exec --user`: `uid`, `uid:gid`, `name` or `name:group`,
   * looked up in the container's /etc/passwd and /etc/group. With it, `HOME` is
   * that user's unless `env` sets it. @default the container's
   */
  user?: string;
  /** The process's stdin, stdout and stderr. @default 'pipe' */
  stdio?: StdioMode;
  /**
   * Let the process outlive this Node process (it is killed with the container,
   * not with its caller). With `stdio: 'pipe'` this process is attached to it
   * until it ends the streams or exits; the process then goes on, what it
   * writes lost (what `docker exec -it` is until ctrl-p ctrl-q).
   * @default false
   */
  detached?: boolean;
  /**
   * Run with every capability the helper holds, no seccomp filter and without
   * `no_new_privs`, as `docker exec --privileged` (rlimits stay).
   * @default false
   */
  privileged?: boolean;
  /** Kills the process (SIGKILL); a pending `exec()` or `wait()` rejects with {@link AbortError}. */
  signal?: AbortSignal;
  /**
   * Give the process a terminal of the container's devpts, as `docker exec -t`:
   * its stdout and stderr come merged on `stdout`, and `stdin` goes through the
   * line discipline (`\x03` is ^C, `\x04` ^D). With `stdio: 'pipe'` (or `'inherit'`). Resize it with
   * {@link ExecProcess.resize}.
   * @default false
   */
  tty?: boolean;
  /** The terminal's size at start, with `tty`. @default { columns: 80, rows: 24 } */
  ttySize?: TerminalSize;
}

/** How an exec'd process ended. */
export interface ExecExit {
  /** The exit code; 128 + the signal number for a process ended by a signal (137 for SIGKILL). */
  exitCode: number;
  /** The signal that ended it, or null. */
  signal: NodeJS.Signals | null;
}

function signalName(signo: number | undefined): NodeJS.Signals | null {
  if (signo === undefined || signo === 0) return null;
  for (const [name, value] of Object.entries(osConstants.signals)) if (value === signo) return name as NodeJS.Signals;
  return null;
}

/**
 * A process exec'd into a running container by {@link Container.exec}. It is
 * `AsyncDisposable`: `await using p = await c.exec(…)` kills it (if still
 * running) and waits for it at the end of the scope.
 */
export class ExecProcess implements AsyncDisposable {
  /** Host pid of the process. */
  readonly pid: number;
  /** Its stdin, with `stdio: 'pipe'`; end it to send EOF. */
  readonly stdin: Writable | null;
  /** Its stdout, with `stdio: 'pipe'`. */
  readonly stdout: Readable | null;
  /** Its stderr, with `stdio: 'pipe'` (empty with `tty`: all output is on stdout). */
  readonly stderr: Readable | null;
  readonly #helper: HelperProcess;
  readonly #pidStart: number | undefined;
  readonly #context: string;
  readonly #signal: AbortSignal | undefined;
  #waiting: Promise<ExecExit> | undefined;

  /** @internal Use {@link Container.exec}. */
  constructor(helper: HelperProcess, pid: number, context: string, signal: AbortSignal | undefined) {
    this.#helper = helper;
    this.pid = pid;
    this.#pidStart = processStartTime(pid);
    this.#context = context;
    this.#signal = signal;
    this.stdin = helper.child.stdin;
    this.stdout = helper.stdout;
    this.stderr = helper.stderr;
  }

  /**
   * Waits for the process to end.
   *
   * @throws {@link AbortError} when the exec's `signal` (which also killed it) aborts first.
   */
  wait(): Promise<ExecExit> {
    this.#waiting ??= this.#helper.next('exited').then(
      // From setImmediate, as Container.wait(): the exit line and the last output come on different
      // pipes, and the output read in the same poll is delivered before the caller's code runs (a
      // caller that unpipes once wait() resolves would lose it: `exec -t … tty` printed nothing).
      (status) => new Promise<ExecExit>((resolve) => setImmediate(resolve, { exitCode: status.code, signal: signalName(status.signal) })),
      async (error: unknown) => {
        await this.#helper.exit;
        // A shim killed from outside takes the process with it (PR_SET_PDEATHSIG).
        if (this.#helper.statuses.some((s) => s.type === 'started')) return { exitCode: 137, signal: 'SIGKILL' as const };
        throw error;
      },
    );
    return raceAbort(this.#waiting, this.#signal, this.#context);
  }

  /**
   * Resizes the process's terminal (`tty: true`); its foreground process gets SIGWINCH.
   *
   * @throws {@link InvalidStateError} when it has no TTY or has ended.
   * @throws {@link InvalidArgumentError} for a size that is not 1 to 65535 each way.
   */
  async resize(size: TerminalSize): Promise<void> {
    const checked = checkSize(size, `${this.#context}: resize`);
    const control = this.#helper.control;
    if (control === null) throw new InvalidStateError(`${this.#context}: resize: the process has no TTY`);
    if (this.#helper.statuses.some((s) => s.type === 'exited') || control.destroyed) {
      throw new InvalidStateError(`${this.#context}: resize: the process has ended`);
    }
    await new Promise<void>((resolve, reject) =>
      control.write(resizeRecord(checked), (error) => (error ? reject(new InvalidStateError(`${this.#context}: resize: the process has ended`, { cause: error })) : resolve())),
    );
  }

  /**
   * Sends a signal to the process; a no-op once it has ended. It goes through
   * the exec shim, the process's parent, which forwards it to the child it
   * alone reaps, so it never reaches a process that reused the pid; SIGKILL
   * kills the shim, and the process with it.
   *
   * @param signal - @default 'SIGTERM'
   */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): void {
    if (this.#helper.statuses.some((s) => s.type === 'exited') || this.#helper.child.exitCode !== null) return;
    const number = typeof signal === 'number' ? signal : osConstants.signals[signal];
    if (number !== osConstants.signals.SIGSTOP) {
      this.#helper.child.kill(signal);
      return;
    }
    // SIGSTOP cannot be forwarded. Its parent reaps it: once reaped, its pid may be another's.
    if (this.#pidStart === undefined || processStartTime(this.pid) !== this.#pidStart) return;
    try {
      process.kill(this.pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }

  /**
   * @internal Closes this side of the process's pipes, so that a child it left
   * holding them (`cmd &`) keeps neither the output nor {@link ExecProcess}'s end waiting.
   */
  releaseStdio(): void {
    for (const stream of [this.#helper.child.stdin, this.#helper.child.stdout, this.#helper.child.stderr]) stream?.destroy();
    this.stdout?.destroy();
    this.stderr?.destroy();
  }

  /** Kills the process (SIGKILL) if it still runs and waits for it; for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.kill('SIGKILL');
    await this.#waiting?.catch(() => undefined);
    await this.#helper.exit;
  }
}

/** @internal What {@link startExec} needs of a container. */
export interface ExecTarget {
  record: ContainerRecord;
  paths: ContainerPaths;
  helperPath: string | undefined;
}

const ENV_KEY = /^[^=\0]+$/;

function checkOptions(cmd: readonly string[], options: ExecOptions, context: string): void {
  if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every((a) => typeof a === 'string') || cmd[0] === '') {
    throw new InvalidArgumentError(`${context}: cmd must be a non-empty array of strings`);
  }
  if (options.tty !== undefined && typeof options.tty !== 'boolean') throw new InvalidArgumentError(`${context}: tty must be a boolean`);
  if (options.ttySize !== undefined) checkSize(options.ttySize, `${context}: ttySize`);
  if (options.cwd !== undefined && (typeof options.cwd !== 'string' || !isAbsolute(options.cwd))) {
    throw new InvalidArgumentError(`${context}: cwd must be an absolute path, got ${shown(String(options.cwd))}`);
  }
  if (options.stdio !== undefined && !['pipe', 'inherit', 'ignore'].includes(options.stdio)) {
    throw new InvalidArgumentError(`${context}: stdio must be 'pipe', 'inherit' or 'ignore'`);
  }
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (!ENV_KEY.test(key) || typeof value !== 'string' || value.includes('\0')) {
      throw new InvalidArgumentError(`${context}: env ${shown(key)} is not a valid variable`);
    }
  }
  if (options.user !== undefined && (typeof options.user !== 'string' || options.user === '')) {
    throw new InvalidArgumentError(`${context}: user must be a user spec like \`1000:1000\` or \`app\``);
  }
}

/** @internal Starts `cmd` in the running container `target`; resolves once it is being executed. */
export async function startExec(target: ExecTarget, cmd: readonly string[], options: ExecOptions): Promise<ExecProcess> {
  const { record, paths } = target;
  const context = `exec in container ${record.id.slice(0, 12)}`;
  checkOptions(cmd, options, context);
  throwIfAborted(options.signal, context);
  const proc = (await readJson<ContainerConfigRecord>(paths.config))?.process;
  if (proc === undefined) throw new NotFoundError(`${context}: no process record (a container of an older dockless?)`, { path: paths.config });
  const env = new Map(proc.env.map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]));
  let user: ExecPlan['user'] = proc.user;
  if (options.user !== undefined) {
    const resolved = await resolveUserInLayers([paths.upper, ...proc.lowers], options.user);
    user = resolved;
    if (options.env?.HOME === undefined) env.set('HOME', resolved.home || '/');
  }
  for (const [key, value] of Object.entries(options.env ?? {})) env.set(key, value);
  const privileged = options.privileged === true;
  const detached = options.detached === true;
  const plan: ExecPlan = {
    id: record.id,
    pid: record.pid,
    pidStart: record.pidStart,
    namespaces: proc.namespaces,
    userns: record.userns !== undefined,
    cgroups: (record.cgroups ?? []).map((c) => c.dir),
    cwd: options.cwd ?? proc.cwd,
    user,
    env: [...env].map(([k, v]) => `${k}=${v}`),
    noNewPrivileges: !privileged && proc.noNewPrivileges,
    ...(!privileged && proc.caps !== undefined ? { caps: BigInt(`0x${proc.caps}`) } : {}),
    ...(!privileged && proc.seccomp !== undefined ? { seccomp: Buffer.from(proc.seccomp, 'base64') } : {}),
    rlimits: proc.rlimits,
    ...(detached ? {} : { dieWithParent: process.pid }),
    cmd,
  };
  const stdio = options.stdio ?? 'pipe';
  const tty = options.tty === true ? (options.ttySize ?? DEFAULT_TERMINAL_SIZE) : undefined;
  // The control pipe comes after the inputs and the arguments' descriptor (spawnHelper's order).
  if (tty !== undefined) plan.tty = { ...tty, controlFd: 4 + (plan.seccomp !== undefined ? 1 : 0) + 1 };
  const helper = await startHelper('exec', execArgs(plan), {
    stdio: [stdio, stdio, stdio],
    detached,
    context,
    control: tty !== undefined,
    ...(plan.seccomp !== undefined ? { inputs: [plan.seccomp] } : {}),
    helperPath: await sealedHelperPath(target.helperPath),
  });
  const abort = () => helper.child.kill('SIGKILL');
  try {
    const [{ pid }] = await raceAbort(Promise.all([helper.next('pid'), helper.next('started')]), options.signal, context);
    const exec = new ExecProcess(helper, pid, context, options.signal);
    if (options.signal !== undefined) {
      const kill = () => exec.kill('SIGKILL');
      options.signal.addEventListener('abort', kill, { once: true });
      void helper.exit.then(() => options.signal?.removeEventListener('abort', kill));
    }
    if (detached) helper.unref();
    debug('%s exec pid %d', record.id.slice(0, 12), pid);
    return exec;
  } catch (error) {
    abort();
    await helper.exit;
    // The target is gone: the container stopped between the status check and the join.
    if (helper.failure instanceof HelperError && helper.failure.step === 'exec target') {
      throw new InvalidStateError(`${context}: container is not running`, { cause: helper.failure });
    }
    throw error;
  }
}
