/**
 * The {@link Container} handle: status, start, wait, signals, stop, remove, and
 * the entry points of everything done to a living container (exec, output,
 * inspect, top, pause, copies, diff, rename). Past ~600 lines: it is one public
 * class whose methods are the API's documentation; each delegates its work to a
 * module of its own (exec.ts, container-files.ts, inspect.ts, top.ts,
 * container-diff.ts, names.ts).
 *
 * @module
 */
import { constants as fsConstants } from 'node:fs';
import { open, readFile, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { constants as osConstants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import createDebug from 'debug';
import { InvalidArgumentError, InvalidStateError, NotFoundError } from '../errors.js';
import { shown, type HelperProcess } from '../helper/index.js';
import type { ExitedStatus } from '../helper/index.js';
import { CgroupSet } from './cgroups/cgroup-set.js';
import { cgroupPids, isFrozen, setFrozen } from './cgroups/freezer.js';
import { copyInto, copyOutOf, type ContainerFiles, type CopyInOptions, type CopyOutOptions } from './container-files.js';
import { inspectOf, type ContainerInspect } from './inspect.js';
import { listProcesses, type ContainerProcess } from './top.js';
import type { ContainerStats } from './cgroups/resources.js';
import { processStartTime, raceAbort, throwIfAborted } from '../util/index.js';
import {
  readJson,
  writeJsonAtomic,
  type ContainerConfigRecord,
  type ContainerPaths,
  type ContainerRecord,
  type ExitRecord,
} from './state.js';
import { removeContainerDir, type IdMap } from './userns.js';
import { claimName, releaseName } from './names.js';
import { diffUpper, type ContainerChange } from './container-diff.js';
import { NAME_RE } from './spec-check.js';
import { exitFromStatus } from './exit-status.js';
import { startExec, type ExecOptions, type ExecProcess } from './exec.js';
import { collectOutput, encodeOutput, maxBufferOf, type OutputOptions, type OutputResult } from './output.js';

const debug = createDebug('dockless:runtime');

export type { ExecOutputOptions, ContainerStatus, ExitStatus, ContainerInfo, RemoveOptions, WaitOptions, StopOptions, ContainerLogs } from './container-types.js';
import type { ExecOutputOptions, ContainerStatus, ExitStatus, ContainerInfo, RemoveOptions, WaitOptions, StopOptions, ContainerLogs } from './container-types.js';

/** @internal What a {@link Container} is made from. */
export interface ContainerInit {
  record: ContainerRecord;
  paths: ContainerPaths;
  helper?: HelperProcess;
  status: ContainerStatus;
  onRemove: (container: Container) => Promise<void>;
  /** The Runtime's helper, for removing a rootless container's files. */
  helperPath?: string;
}

const POLL_MS = 20;

/**
 * A container: a process tree in its own namespaces on its own root filesystem.
 * Made by `runtime.create()` / `runtime.run()`, or found with `runtime.get()`.
 * It is `AsyncDisposable`: `await using c = await runtime.run(…)` kills and
 * removes it at the end of the scope.
 */
export class Container implements AsyncDisposable {
  /** The container's id: 64 hex characters. */
  readonly id: string;
  /** The container's name, when it was given one. */
  name?: string;
  /**
   * The container's stdin, when it was created with `stdio: 'pipe'` by this
   * process (and is not detached). End it to send EOF.
   */
  readonly stdin: Writable | null;
  /** The container's stdout, under the same conditions as {@link Container.stdin}. */
  readonly stdout: Readable | null;
  /** The container's stderr, under the same conditions as {@link Container.stdin}. */
  readonly stderr: Readable | null;
  #record: ContainerRecord;
  readonly #paths: ContainerPaths;
  readonly #helper: HelperProcess | undefined;
  #status: ContainerStatus;
  #exit: ExitStatus | undefined;
  #waiting: Promise<ExitStatus> | undefined;
  #finishedAt: string | undefined;
  readonly #onRemove: (container: Container) => Promise<void>;
  readonly #helperPath: string | undefined;
  readonly #cgroups: CgroupSet | undefined;

  /** @internal Use `runtime.create()`, `runtime.run()` or `runtime.get()`. */
  constructor(init: ContainerInit) {
    this.#record = init.record;
    this.id = init.record.id;
    if (init.record.name !== undefined) this.name = init.record.name;
    this.#paths = init.paths;
    this.#helper = init.helper;
    this.#status = init.status;
    this.#onRemove = init.onRemove;
    this.#helperPath = init.helperPath;
    this.#cgroups = init.record.cgroups !== undefined ? new CgroupSet(init.record.cgroups) : undefined;
    const child = init.helper?.child;
    const piped = init.record.stdio === 'pipe' && !init.record.detached && child !== undefined;
    this.stdin = piped ? child.stdin : null;
    // The helper holds the output from its spawn on, until it is read (Node drains
    // a child's unread stdio when it exits).
    this.stdout = piped ? init.helper!.stdout : null;
    this.stderr = piped ? init.helper!.stderr : null;
    if (init.helper !== undefined) {
      init.helper.next('exited').then(
        (status) => {
          this.#finishedAt = new Date().toISOString();
          this.#exit = this.#exitFrom(status);
          if (this.#status !== 'removed') this.#status = 'stopped';
          debug('%s exited %o', this.id.slice(0, 12), this.#exit);
        },
        () => {
          if (this.#status !== 'removed') this.#status = 'stopped';
        },
      );
    }
  }

  /** The host pid of the container's pid 1 (the init, or the command with `init: false`). */
  get pid(): number {
    return this.#record.pid;
  }

  /** The container's current status. For a container of another process it is read afresh from the state directory. */
  get status(): ContainerStatus {
    if (this.#helper === undefined && this.#status !== 'removed' && this.#status !== 'stopped') {
      this.#status = this.#probeForeign();
    }
    if (this.#status === 'running' && this.#cgroups !== undefined && isFrozen(this.#cgroups.entries)) return 'paused';
    return this.#status;
  }

  /** When the container was created. */
  get created(): Date {
    return new Date(this.#record.created);
  }

  /** How the command ended, once it has. */
  get exit(): ExitStatus | undefined {
    return this.#exit;
  }

  /** A summary of the container, as `runtime.list()` gives it. */
  info(): ContainerInfo {
    const status = this.status;
    return {
      id: this.id,
      ...(this.name !== undefined ? { name: this.name } : {}),
      status: status === 'removed' ? 'stopped' : status,
      pid: this.#record.pid,
      created: this.created,
      detached: this.#record.detached,
      cmd: this.#record.cmd,
      rootfs: this.#record.rootfs,
      ...(this.#record.image !== undefined ? { image: this.#record.image } : {}),
      ...(this.#exit !== undefined ? { exit: this.#exit } : {}),
      ...(this.#record.userns !== undefined ? { userns: this.#record.userns } : {}),
      labels: { ...(this.#record.labels ?? {}) },
    };
  }

  /**
   * Gives the container a new name, as `docker rename`: the new name is
   * claimed first (so it is never without one), then the record says it, then
   * the old name is given up. Other processes see the new name from then on.
   *
   * @throws {@link InvalidArgumentError} for a name that is not valid.
   * @throws {@link AlreadyExistsError} when another container holds the name.
   * @throws {@link InvalidStateError} when the container was removed.
   */
  async rename(name: string): Promise<void> {
    const context = `rename container ${this.id}`;
    if (typeof name !== 'string' || !NAME_RE.test(name)) throw new InvalidArgumentError(`${context}: name ${shown(String(name))} must match ${NAME_RE.source}`);
    if (this.status === 'removed') throw new InvalidStateError(`${context}: container was removed`);
    const old = this.#record.name;
    if (old === name) return;
    const stateDir = dirname(this.#paths.state);
    await claimName(stateDir, name, this.id);
    try {
      this.#record = { ...this.#record, name };
      await writeJsonAtomic(this.#paths.record, this.#record);
    } catch (error) {
      await releaseName(stateDir, name, this.id);
      throw error;
    }
    this.name = name;
    if (old !== undefined) await releaseName(stateDir, old, this.id);
  }

  /**
   * What the container changed in its root filesystem, as `docker diff`:
   * `A` added, `C` changed, `D` deleted, sorted by path. Mounts (binds,
   * tmpfs, /dev, /proc) are not part of it.
   *
   * @throws {@link InvalidStateError} when the container was removed.
   */
  async diff(): Promise<ContainerChange[]> {
    if (this.status === 'removed') throw new InvalidStateError(`diff of container ${this.id}: container was removed`);
    const config = await readJson<ContainerConfigRecord>(this.#paths.config);
    return diffUpper(this.#paths.upper, config?.process.lowers ?? []);
  }

  /**
   * Starts a container made by `runtime.create()`.
   *
   * @throws {@link InvalidStateError} unless the container is `created`.
   * @throws {@link HelperError} when the command could not be started.
   */
  async start(): Promise<void> {
    if (this.status !== 'created') {
      throw new InvalidStateError(`start container ${this.id}: container is ${this.#status}, not created`);
    }
    let fifo;
    try {
      fifo = await open(this.#paths.fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
    } catch (cause) {
      this.#status = 'stopped';
      throw new InvalidStateError(`start container ${this.id}: container is no longer waiting to start`, { cause });
    }
    try {
      await fifo.write(Buffer.from([1]));
    } finally {
      await fifo.close();
    }
    // A quick command may have ended, and been seen to, while the fifo was closing.
    if (this.#status === 'created') this.#status = 'running';
    if (this.#helper !== undefined) {
      try {
        await this.#helper.next('started');
      } catch (error) {
        // The workload never ran (a bad cwd or user): the container is over, and removable as such.
        await this.#helper.exit;
        this.#status = 'stopped';
        throw error;
      }
    }
    this.#record = { ...this.#record, started: new Date().toISOString() };
    await writeJsonAtomic(this.#paths.record, this.#record);
    await unlink(this.#paths.fifo).catch(() => undefined);
  }

  /**
   * Waits for the container's command to end.
   *
   * @returns its exit code, the signal that ended it, and whether it was OOM-killed.
   * @throws {@link InvalidStateError} when the container was removed before it was seen to stop.
   * @throws {@link AbortError} when `options.signal` aborts first.
   */
  wait(options: WaitOptions = {}): Promise<ExitStatus> {
    if (this.#exit !== undefined) return Promise.resolve(this.#exit);
    this.#waiting ??= this.#helper !== undefined ? this.#waitOwned(this.#helper) : this.#waitForeign();
    return raceAbort(this.#waiting, options.signal, `wait container ${this.id}`);
  }

  async #waitOwned(helper: HelperProcess): Promise<ExitStatus> {
    helper.child.ref();
    (helper.child.stdio[3] as unknown as { ref?: () => void } | null)?.ref?.();
    let status: ExitedStatus | undefined;
    try {
      status = await helper.next('exited');
    } catch (error) {
      // A shim that ended without an exit line was killed from outside, and
      // pid 1 with it (PR_SET_PDEATHSIG): report it as a container killed by
      // SIGKILL, as for containers of other processes.
      if (helper.statuses.some((s) => s.type === 'started' || s.type === 'created')) {
        this.#exit = { exitCode: 137, signal: 'SIGKILL', oomKilled: false };
        if (this.#status !== 'removed') this.#status = 'stopped';
        return this.#exit;
      }
      throw error;
    }
    // The constructor's own listener on `exited` ran first and already read the OOM count.
    this.#exit ??= this.#exitFrom(status);
    if (this.#status !== 'removed') this.#status = 'stopped';
    return this.#exit;
  }

  async #waitForeign(): Promise<ExitStatus> {
    for (;;) {
      if (this.#status === 'removed') throw new InvalidStateError(`wait container ${this.id}: container was removed`);
      const status = this.#probeForeign();
      if (status === 'stopped') {
        this.#status = 'stopped';
        const record = await readJson<ExitRecord>(this.#paths.exit);
        // Without an exit record the shim itself was killed (its owner died, so
        // PR_SET_PDEATHSIG sent SIGKILL down the chain).
        this.#exit = record !== undefined ? this.#exitFrom(record) : { exitCode: 137, signal: 'SIGKILL', oomKilled: false };
        return this.#exit;
      }
      await sleep(POLL_MS);
    }
  }

  /** The exit status, with `oomKilled` from the container's memory cgroup, which outlives its processes until `remove()`. */
  #exitFrom(status: ExitedStatus | ExitRecord): ExitStatus {
    const exit = exitFromStatus(status);
    if (!exit.oomKilled && this.#cgroups?.oomKilled() === true) exit.oomKilled = true;
    return exit;
  }

  #probeForeign(): ContainerStatus {
    const alive = processStartTime(this.#record.pid) === this.#record.pidStart;
    if (alive) return this.#record.started !== undefined ? 'running' : 'created';
    return 'stopped';
  }

  /**
   * Sends a signal to the container's pid 1 (the init forwards it to the command).
   *
   * A paused container is thawed after SIGKILL, so that it dies; other signals
   * reach it when it is unpaused.
   *
   * @param signal - the signal. @default 'SIGKILL' (as `docker kill`)
   * @throws {@link InvalidStateError} when the container is not running, paused or created.
   */
  async kill(signal: NodeJS.Signals | number = 'SIGKILL'): Promise<void> {
    const status = this.status;
    if (status !== 'running' && status !== 'created' && status !== 'paused') {
      throw new InvalidStateError(`kill container ${this.id}: container is ${status}`);
    }
    // Once pid 1 is reaped its pid may be reused: never signal it then.
    if (this.#helper !== undefined && this.#helper.statuses.some((s) => s.type === 'exited')) return;
    if (processStartTime(this.#record.pid) !== this.#record.pidStart) return;
    try {
      process.kill(this.#record.pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
    // A frozen process acts on SIGKILL only once thawed (cgroup v1); other signals wait for unpause(), as with Docker.
    if (status === 'paused' && (signal === 'SIGKILL' || signal === osConstants.signals.SIGKILL)) {
      await setFrozen(this.#cgroups!.entries, false, `kill container ${this.id}`);
    }
  }

  /**
   * Stops the container as `docker stop` does: SIGTERM, then SIGKILL after `timeoutMs`.
   * A paused container is unpaused first.
   *
   * @returns how the command ended.
   * @throws {@link InvalidArgumentError} for a negative or non-numeric `timeoutMs`, or the seconds-based `timeout` of earlier versions.
   * @throws {@link AbortError} when `options.signal` aborts first.
   * @example
   * ```ts
   * const { exitCode } = await container.stop({ timeoutMs: 2000 });
   * ```
   */
  async stop(options: StopOptions = {}): Promise<ExitStatus> {
    const context = `stop container ${this.id}`;
    if ('timeout' in options) {
      throw new InvalidArgumentError(`${context}: \`timeout\` (seconds) is now \`timeoutMs\` (milliseconds)`);
    }
    const timeout = options.timeoutMs ?? this.#record.stopTimeoutMs ?? 10_000;
    if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout < 0) {
      throw new InvalidArgumentError(`${context}: timeoutMs must be a number of milliseconds, 0 or more`);
    }
    throwIfAborted(options.signal, context);
    if (this.status === 'paused') await setFrozen(this.#cgroups!.entries, false, context);
    const status = this.status;
    if (status === 'created') {
      // pid 1 waiting to start has no handlers yet, so the kernel drops SIGTERM from outside its namespace.
      await this.kill('SIGKILL');
    } else if (status === 'running') {
      await this.kill(stopSignalOf(this.#record.stopSignal));
      const timer = sleep(timeout, 'timeout' as const, { ref: false });
      const ended = await raceAbort(Promise.race([this.wait(), timer]), options.signal, context);
      if (ended !== 'timeout') return ended;
      if (this.status === 'running' || this.status === 'created') await this.kill('SIGKILL');
    }
    return this.wait({ ...(options.signal !== undefined ? { signal: options.signal } : {}) });
  }

  /**
   * The output of a detached container started with `stdio: 'pipe'`, from its log files.
   *
   * @throws {@link InvalidStateError} for a container whose output is streamed, not logged.
   */
  async logs(): Promise<ContainerLogs> {
    if (!this.#record.detached || this.#record.stdio !== 'pipe') {
      throw new InvalidStateError(
        `logs of container ${this.id}: only a detached container with stdio 'pipe' keeps logs; read container.stdout instead`,
      );
    }
    const read = (p: string) => readFile(p).catch(() => Buffer.alloc(0));
    const [stdout, stderr] = await Promise.all([read(this.#paths.stdoutLog), read(this.#paths.stderrLog)]);
    return { stdout, stderr };
  }

  /**
   * The container's resource usage now, from its cgroups: memory, CPU time, pids.
   * A stopped container keeps its cgroups (and its figures) until it is removed.
   *
   * @throws {@link InvalidStateError} when the container was removed.
   * @throws {@link NotFoundError} when the container has no cgroups (cgroups were not available to the process that created it).
   * @example
   * ```ts
   * const { memory, cpu, pids } = await container.stats();
   * console.log(memory.usage, cpu.usageNanos / 1e9, pids.current);
   * ```
   */
  async stats(): Promise<ContainerStats> {
    if (this.status === 'removed') throw new InvalidStateError(`stats of container ${this.id}: container was removed`);
    return (this.#cgroups ?? new CgroupSet([])).stats(`stats of container ${this.id}`);
  }

  /**
   * Runs another command in the running container, as `docker exec`: in all
   * its namespaces and cgroups, with its environment, user and working
   * directory unless `options` give others, and with the capabilities, seccomp
   * filter, `no_new_privs` and rlimits its own process got (`privileged` lifts
   * all but the rlimits). Works on containers of other processes too (found
   * with `runtime.get()`), with or without a user namespace. Resolves once the
   * command is being executed; a command that does not exist exits 127.
   *
   * @throws {@link InvalidStateError} when the container is not running.
   * @throws {@link InvalidArgumentError} for a malformed command or option, and for `tty` (not supported yet).
   * @throws {@link NotFoundError} when `options.user` names a user the container does not have.
   * @throws {@link HelperError} when a step fails (a `cwd` that does not exist: step `chdir`).
   * @throws {@link AbortError} when `options.signal` aborts first.
   * @example
   * ```ts
   * await using p = await container.exec(['sh', '-c', 'echo $HOSTNAME'], { env: { A: '1' } });
   * p.stdout?.pipe(process.stdout);
   * const { exitCode } = await p.wait();
   * ```
   */
  async exec(cmd: readonly string[], options: ExecOptions = {}): Promise<ExecProcess> {
    const status = this.status;
    if (status !== 'running') throw new InvalidStateError(`exec in container ${this.id}: container is ${status}, not running`);
    return startExec({ record: this.#record, paths: this.#paths, helperPath: this.#helperPath }, cmd, options);
  }

  /**
   * {@link Container.exec} with its output collected: resolves when the command
   * has ended, with what it wrote (strings, or Buffers with `encoding: 'buffer'`)
   * and how it ended. Its stdin is closed at once. A non-zero exit is a result, not an error.
   *
   * @throws what {@link Container.exec} throws, and {@link OutputLimitError} when
   *   the command writes more than `maxBuffer` bytes on a stream (it is killed).
   * @example
   * ```ts
   * const { stdout, exitCode } = await container.output(['cat', '/etc/hostname']);
   * ```
   */
  output(cmd: readonly string[], options?: ExecOutputOptions & { encoding?: 'utf8' }): Promise<OutputResult<string>>;
  output(cmd: readonly string[], options: ExecOutputOptions & { encoding: 'buffer' }): Promise<OutputResult<Buffer>>;
  async output(cmd: readonly string[], options: ExecOutputOptions = {}): Promise<OutputResult<string> | OutputResult<Buffer>> {
    const context = `exec in container ${this.id.slice(0, 12)}`;
    const max = maxBufferOf(options, context);
    const { maxBuffer: _max, encoding, ...execOptions } = options;
    await using p = await this.exec(cmd, { ...execOptions, stdio: 'pipe' });
    p.stdin?.end();
    const out = await collectOutput(p, max, context, () => p.kill('SIGKILL'));
    return encodeOutput(out, await p.wait(), encoding);
  }

  /**
   * The container described in the shape of `docker inspect`: state, command,
   * configuration, mounts, limits. Works for containers of other processes too
   * (read from the state directory).
   *
   * @throws {@link InvalidStateError} when the container was removed.
   * @example
   * ```ts
   * const { State, Config, HostConfig } = await container.inspect();
   * console.log(State.Status, State.Pid, Config.Env, HostConfig.Memory);
   * ```
   */
  async inspect(): Promise<ContainerInspect> {
    const status = this.status;
    if (status === 'removed') throw new InvalidStateError(`inspect container ${this.id}: container was removed`);
    const config = await readJson<ContainerConfigRecord>(this.#paths.config);
    const exit = status === 'stopped' ? await this.wait().catch(() => undefined) : undefined;
    const finished =
      exit !== undefined ? await stat(this.#paths.exit).then((s) => s.mtime.toISOString(), () => this.#finishedAt) : undefined;
    return inspectOf({
      record: this.#record,
      config,
      status,
      ...(exit !== undefined ? { exit } : {}),
      ...(finished !== undefined ? { finishedAt: finished } : {}),
      upper: this.#paths.upper,
      work: this.#paths.work,
    });
  }

  /**
   * The container's processes, read from the host's `/proc` (nothing runs in the
   * container): those in its cgroup, or without cgroups the process tree below its pid 1.
   *
   * @throws {@link InvalidStateError} unless the container is running or paused.
   * @example
   * ```ts
   * for (const p of await container.top()) console.log(p.pid, p.containerPid, p.uid, p.command.join(' '));
   * ```
   */
  async top(): Promise<ContainerProcess[]> {
    const status = this.status;
    if (status !== 'running' && status !== 'paused') {
      throw new InvalidStateError(`top of container ${this.id}: container is ${status}, not running`);
    }
    const pids = this.#cgroups !== undefined ? await cgroupPids(this.#cgroups.entries) : undefined;
    return listProcesses(this.#record.pid, pids);
  }

  /**
   * Freezes every process of the container (its freezer cgroup: v1 `freezer.state`,
   * v2 `cgroup.freeze`) and waits until the kernel reports them frozen.
   *
   * @throws {@link InvalidStateError} unless the container is running.
   * @throws {@link NotFoundError} when the container has no freezer cgroup (cgroups were not
   *   available to the process that created it, as rootless without delegation).
   */
  async pause(): Promise<void> {
    const status = this.status;
    if (status !== 'running') throw new InvalidStateError(`pause container ${this.id}: container is ${status}, not running`);
    await setFrozen(this.#cgroups?.entries ?? [], true, `pause container ${this.id}`);
  }

  /**
   * Thaws a paused container.
   *
   * @throws {@link InvalidStateError} unless the container is paused.
   */
  async unpause(): Promise<void> {
    const status = this.status;
    if (status !== 'paused') throw new InvalidStateError(`unpause container ${this.id}: container is ${status}, not paused`);
    await setFrozen(this.#cgroups!.entries, false, `unpause container ${this.id}`);
  }

  /**
   * Copies into the container directory `containerPath`, as `docker cp` does: the
   * entries of a tar stream, or a host file or directory (which lands as
   * `containerPath/<its name>`). Works on running and stopped containers, from any
   * process: a running container's files are written through its mounted root
   * (`/proc/<pid>/root`, so also into its tmpfs and bind mounts), a stopped one's into
   * its upper dir; never through a symlink out of its root. Files belong to the
   * container's root unless `options.archive`. Device nodes and fifos are refused.
   *
   * @throws {@link NotFoundError} when `containerPath` does not exist in the container.
   * @throws {@link InvalidArgumentError} when it is not a directory, or an entry would replace a directory by a file.
   * @throws {@link UnsafeContentError} for a tar entry that climbs out with `..`.
   * @throws {@link InvalidStateError} when the container was removed.
   * @example
   * ```ts
   * await container.copyIn('/tmp/app', '/srv'); // the container now has /srv/app
   * ```
   */
  async copyIn(source: Readable | string, containerPath: string, options: CopyInOptions = {}): Promise<void> {
    const context = `copy into container ${this.id}`;
    await copyInto(await this.#files(context), source, containerPath, options, context);
  }

  /**
   * A tar stream of the container path `containerPath` (a file, or a directory and
   * everything below it), named by its last component, as `docker cp` gives it.
   * A running container is read through its mounted root (its mounts included), a
   * stopped one from its image and what it wrote (no mounts). A symlink in the
   * container is resolved inside its root, never on the host.
   *
   * @throws {@link NotFoundError} when the path does not exist in the container.
   * @throws {@link InvalidStateError} when the container was removed.
   * @example
   * ```ts
   * const tar = await container.copyOut('/etc/os-release');
   * tar.pipe(createWriteStream('/tmp/os-release.tar'));
   * ```
   */
  async copyOut(containerPath: string, options: CopyOutOptions = {}): Promise<Readable> {
    const context = `copy from container ${this.id}`;
    return copyOutOf(await this.#files(context), containerPath, options, context);
  }

  async #files(context: string): Promise<ContainerFiles> {
    const status = this.status;
    if (status === 'removed') throw new InvalidStateError(`${context}: container was removed`);
    const config = await readJson<ContainerConfigRecord>(this.#paths.config);
    const userns = this.#record.userns;
    return {
      upper: this.#paths.upper,
      lowers: config?.process.lowers ?? [this.#record.rootfs],
      ...(this.#helperPath !== undefined ? { helperPath: this.#helperPath } : {}),
      ...(userns?.rootless === true ? { rootlessMaps: { uidMap: userns.uidMap, gidMap: userns.gidMap } } : {}),
      // A running container's files go through its mounted overlay: written to the upper dir underneath it,
      // they may stay hidden behind what the kernel has cached (a path the container looked up and did not find).
      // A rootless caller may not reach it (its pid 1 is not dumpable): then the layers it is.
      ...((status === 'running' || status === 'paused') && (await reachable(`/proc/${this.#record.pid}/root`))
        ? { live: { root: `/proc/${this.#record.pid}/root`, verify: (root: FileHandle) => this.#verifyRoot(root, context) } }
        : {}),
    };
  }

  /** Checks that an open `/proc/<pid>/root` is the container's: the pid not reused, and its root already the container's own. */
  async #verifyRoot(root: FileHandle, context: string): Promise<void> {
    const [st, host] = await Promise.all([root.stat(), stat('/')]);
    if (processStartTime(this.#record.pid) !== this.#record.pidStart) {
      throw new InvalidStateError(`${context}: container is no longer running`);
    }
    if (st.dev === host.dev && st.ino === host.ino) throw new InvalidStateError(`${context}: container is not set up yet`);
  }

  /**
   * Removes the container: its upper directory (all it wrote), generated files
   * and state. Removing a removed container is a no-op.
   *
   * @throws {@link InvalidStateError} when the container is running and `force` is not set.
   */
  async remove(options: RemoveOptions = {}): Promise<void> {
    const status = this.status;
    if (status === 'removed') return;
    if (status === 'running' || status === 'created' || status === 'paused') {
      if (options.force !== true) {
        throw new InvalidStateError(`remove container ${this.id}: container is ${status}; stop it or pass { force: true }`);
      }
      await this.kill('SIGKILL');
      await this.wait();
    }
    if (this.#helper !== undefined) await this.#helper.exit;
    await this.#cgroups?.remove(`remove container ${this.id}`);
    this.#status = 'removed';
    await this.#onRemove(this);
    await Promise.all([
      rm(this.#paths.state, { recursive: true, force: true }),
      removeContainerDir(this.#paths.bundle, this.#record.userns, this.#helperPath),
    ]);
    debug('%s removed', this.id.slice(0, 12));
  }

  /** Kills (if needed) and removes the container; for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove({ force: true });
  }
}

/** Whether a directory can be opened (`/proc/<pid>/root` needs ptrace access to the process). */
async function reachable(dir: string): Promise<boolean> {
  try {
    await (await open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY)).close();
    return true;
  } catch {
    return false;
  }
}

/** @internal Throws the not-found error for a container reference. */
export function containerNotFound(ref: string): NotFoundError {
  return new NotFoundError(`container \`${ref}\` not found`);
}

/** The record's stop signal as `kill()` takes it: a number, or a name with its `SIG` prefix. */
function stopSignalOf(signal: string | number | undefined): NodeJS.Signals | number {
  if (signal === undefined) return 'SIGTERM';
  if (typeof signal === 'number') return signal;
  if (/^\d+$/.test(signal)) return Number(signal);
  const upper = signal.toUpperCase();
  return (upper.startsWith('SIG') ? upper : `SIG${upper}`) as NodeJS.Signals;
}
