/**
 * The {@link Container} class: one running (or stopped) container and
 * everything done to it. Past ~600 lines on purpose: it is the one public face
 * of a container's whole life (start, restart, wait, signals, exec, logs, attach,
 * inspect, files, pause, health, ports, diff, rename, removal), each method a thin,
 * documented entry point that hands the work to its own file (exec.ts,
 * logs.ts, attach.ts, container-files.ts, inspect.ts, top.ts, health.ts,
 * events.ts, cgroups/); splitting the class would split its TSDoc.
 *
 * @module
 */

import { constants as fsConstants, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { open, readFile, stat, unlink, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { constants as osConstants } from 'node:os';
import type { PassThrough, Readable, Writable } from 'node:stream';
import createDebug from 'debug';
import { InvalidArgumentError, InvalidStateError, NotFoundError } from '../errors.js';
import { shown, type HelperProcess } from '../helper/index.js';
import type { ExitedStatus, TeardownStatus } from '../helper/index.js';
import { CgroupSet } from './cgroups/cgroup-set.js';
import { cgroupPids, isFrozen, setFrozen } from './cgroups/freezer.js';
import { copyInto, copyOutOf, reachable, type ContainerFiles, type CopyInOptions, type CopyOutOptions } from './container-files.js';
import { inspectOf, type ContainerInspect, type NetworkSettingsRecord } from './inspect.js';
import { listProcesses, type ContainerProcess } from './top.js';
import type { ContainerResources, ContainerStats } from './cgroups/resources.js';
import { isoTime, processStartTime, raceAbort, removeDir, throwIfAborted } from '../util/index.js';
import {
  readJson,
  writeJsonAtomic,
  type ContainerConfigRecord,
  type ContainerPaths,
  type ContainerRecord,
  type ExitRecord,
} from './state.js';
import { removeContainerDir, type IdMap } from './userns.js';
import { beforeForkServer, discard, discardForked } from './trash.js';
import { noteTeardown } from './teardowns.js';
import { claimName, releaseName } from './names.js';
import { diffUpper, type ContainerChange } from './container-diff.js';
import { NAME_RE } from './spec-check.js';
import { exitFromStatus } from './exit-status.js';
import { endRecordedHelper } from './forwarder.js';
import type { PublishedPort } from './ports.js';
import { startExec, type ExecOptions, type ExecProcess } from './exec.js';
import { updateResources } from './update.js';
import { collectOutput, encodeOutput, maxBufferOf, type OutputOptions, type OutputResult } from './output.js';
import { appendEvent, appendEventLineSync, eventLine, eventsFile, type ContainerEventAction, type ContainerEventAttributes, type NewEvent } from './events.js';
import { HealthChecker, waitForHealthy, type HealthPlan, type HealthRecord, type HealthStatus } from './health.js';
import { readRestartRecord, type RestartRecord } from './restart.js';

import { ContainerLogReader, type LogsOptions } from './logs.js';
import { Attachment, type AttachOptions } from './attach.js';
import { checkSize, resizeRecord } from './io-plan.js';
import type { TerminalSize } from './spec.js';


const debug = createDebug('dockless:runtime');

export type { ExecOutputOptions, ContainerStatus, ExitStatus, ContainerInfo, RemoveOptions, WaitOptions, StopOptions, RestartOptions, ContainerLogs, WaitHealthyOptions } from './container-types.js';
import type { ExecOutputOptions, ContainerStatus, ExitStatus, ContainerInfo, RemoveOptions, WaitOptions, StopOptions, RestartOptions, WaitHealthyOptions } from './container-types.js';

/** @internal What a {@link Container} is made from. */
export interface ContainerInit {
  record: ContainerRecord;
  paths: ContainerPaths;
  helper?: HelperProcess;
  status: ContainerStatus;
  onRemove: (container: Container, record: ContainerRecord) => Promise<void>;
  /** The Runtime's helper, for removing a rootless container's files. */
  helperPath?: string;
  /** Delete the removed container's directories in a detached helper process ({@link RuntimeOptions.detachRemoval}). */
  detachRemoval?: boolean;
  /** Starts the stopped container again (see relaunch.ts); the runtime's, which knows its helper and owner. */
  relaunch?: (container: Container, record: ContainerRecord, paths: ContainerPaths, context: string) => Promise<{ record: ContainerRecord; helper: HelperProcess }>;
  /** The health check as launched (`null`: none); when given, config.json is not read for it. */
  healthcheck?: HealthPlan | null;
}

const POLL_MS = 20;
/** Polls (of POLL_MS) for the exit record of a stopped container before taking its shim for killed: about a second. */
const EXIT_RECORD_POLLS = 50;

/**
 * Resolves with `exit` once the event loop has run its pending I/O callbacks
 * and queued ticks. The exit line and the container's last output reach this
 * process on different pipes, and a quick container may end before `run()`
 * resolves: its output then waits in `container.stdout`, and a `'data'`
 * listener added just before `await container.wait()` starts the flow only on
 * the next tick, after a promise resolved at once would have run the caller's
 * code. Resolving from `setImmediate` lets that output (and output read in the
 * same poll as the exit line) be delivered first, as it is by `child_process`'s
 * `'close'`.
 */
function afterQueuedOutput(exit: ExitStatus): Promise<ExitStatus> {
  return new Promise((resolve) => setImmediate(resolve, exit));
}

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
  /**
   * The container's stdout, under the same conditions as {@link Container.stdin}
   * (with `tty`, all its output). With the log on, a reader that falls more than
   * `outputBuffer` bytes behind sees this stream end early; `logs()` has it all.
   */
  readonly stdout: Readable | null;
  /** The container's stderr, under the same conditions as {@link Container.stdin} (empty with `tty`). */
  readonly stderr: Readable | null;
  #record: ContainerRecord;
  readonly #paths: ContainerPaths;
  #helper: HelperProcess | undefined;
  #status: ContainerStatus;
  #exit: ExitStatus | undefined;
  #waiting: Promise<ExitStatus> | undefined;
  #finishedAt: string | undefined;
  readonly #onRemove: (container: Container, record: ContainerRecord) => Promise<void>;
  readonly #helperPath: string | undefined;
  readonly #detachRemoval: boolean;
  #cgroups: CgroupSet | undefined;
  readonly #relaunch: ContainerInit['relaunch'];
  #health: Promise<HealthChecker | undefined> | undefined;
  readonly #healthcheck: HealthPlan | null | undefined;
  #deadSince: number | undefined;

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
    this.#detachRemoval = init.detachRemoval === true;
    this.#relaunch = init.relaunch;
    this.#healthcheck = init.healthcheck;
    this.#cgroups = init.record.cgroups !== undefined ? new CgroupSet(init.record.cgroups) : undefined;
    const child = init.helper?.child;
    // A detached container has streams only when its creator attached (spec.attach): then the helper's stdio are pipes.
    const piped = init.record.stdio === 'pipe' && child !== undefined && (!init.record.detached || child.stdout !== null);
    this.stdin = piped ? child.stdin : null;
    // The helper holds the output from its spawn on, until it is read (Node drains
    // a child's unread stdio when it exits).
    this.stdout = piped ? init.helper!.stdout : null;
    this.stderr = piped ? init.helper!.stderr : null;
    // The process that made the container runs its healthchecks while it lives.
    if (init.helper !== undefined && init.status === 'running') this.#monitorHealth();
    if (init.helper !== undefined) this.#watch(init.helper);
  }

  #watch(helper: HelperProcess): void {
    helper.next('exited').then(
      (status) => {
        if (this.#helper !== helper) return;
        this.#finishedAt = isoTime();
        this.#exit = this.#exitFrom(status);
        if (this.#status !== 'removed') this.#status = 'stopped';
        debug('%s exited %o', this.id.slice(0, 12), this.#exit);
      },
      () => {
        if (this.#helper === helper && this.#status !== 'removed') this.#status = 'stopped';
      },
    );
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
      ...(this.#record.namespace !== undefined ? { namespace: this.#record.namespace } : {}),
      restartCount: this.#restartCountSync(),
      labels: { ...(this.#record.labels ?? {}) },
      ...((this.#record.ports?.length ?? 0) > 0 ? { ports: this.#record.ports!.map((p) => ({ ...p })) } : {}),
      ...(this.#record.autoRemove === true ? { autoRemove: true } : {}),
      ...(this.#record.healthcheck === true && (status === 'running' || status === 'paused') ? { health: this.#healthSync() } : {}),
    };
  }

  /** The recorded health, as {@link HealthChecker.read} has it: no record yet, or a restart since, is `starting`. */
  #healthSync(): HealthStatus {
    try {
      const record = JSON.parse(readFileSync(this.#paths.health, 'utf8')) as HealthRecord;
      return record.restartCount === this.#restartCountSync() ? record.Status : 'starting';
    } catch {
      return 'starting';
    }
  }

  #restartCountSync(): number {
    try {
      return (JSON.parse(readFileSync(this.#paths.restart, 'utf8')) as RestartRecord).restartCount ?? 0;
    } catch {
      return 0;
    }
  }

  /** @internal Appends one of this container's events to the state directory's events file. */
  async recordEvent(action: ContainerEventAction, attributes: ContainerEventAttributes = {}): Promise<void> {
    // A container this process launched has its labels in its record already: no read on every event.
    const labels = this.#helper !== undefined ? this.#record.labels : (await readJson<ContainerConfigRecord>(this.#paths.config))?.labels;
    await appendEvent(dirname(this.#paths.state), this.#event(action, attributes, labels));
  }

  #event(action: ContainerEventAction, attributes: ContainerEventAttributes, labels: Record<string, string> | undefined): NewEvent {
    return {
      action,
      id: this.id,
      attributes: {
        ...(this.name !== undefined ? { name: this.name } : {}),
        ...(this.#record.image !== undefined ? { image: this.#record.image } : {}),
        ...attributes,
        ...(labels !== undefined ? { labels } : {}),
      },
    };
  }

  #healthChecker(): Promise<HealthChecker | undefined> {
    const known = this.#healthcheck;
    this.#health ??=
      known !== undefined
        ? Promise.resolve(known === null ? undefined : this.#newHealthChecker(known))
        : readJson<ContainerConfigRecord>(this.#paths.config).then((config) =>
            config?.healthcheck !== undefined ? this.#newHealthChecker(config.healthcheck) : undefined,
          );
    return this.#health;
  }

  #newHealthChecker(plan: HealthPlan): HealthChecker {
    return new HealthChecker({
      file: this.#paths.health,
      lock: this.#paths.healthLock,
      plan,
      startedAt: () => Date.parse(this.#record.started ?? this.#record.created),
      running: () => this.status === 'running',
      alive: () => this.status === 'running' || this.status === 'paused',
      restarts: async () => {
        const r = await readRestartRecord(this.#paths.restart);
        return r !== undefined ? { count: r.restartCount, since: r.time } : undefined;
      },
      exec: (cmd, signal) => this.exec(cmd, { stdio: 'pipe', signal }),
      changed: (status) => this.recordEvent('health_status', { healthStatus: status }),
    });
  }

  #monitorHealth(): void {
    void this.#healthChecker().then(
      (checker) => checker?.monitor(),
      (error: unknown) => debug('%s healthcheck: %s', this.id.slice(0, 12), String(error)),
    );
  }

  /**
   * Waits until the container's healthcheck reports it `healthy`. While
   * waiting, this process runs the checks that fall due (with the process
   * that made the container, if it still lives: one check at a time).
   *
   * @throws {@link UnhealthyError} when it becomes `unhealthy` (`reason: 'unhealthy'`),
   *   stops (`'exited'`) or is not healthy within `timeout` (`'timeout'`), with
   *   the last check's exit code and output.
   * @throws {@link InvalidStateError} when the container has no healthcheck.
   * @throws {@link AbortError} when `options.signal` aborts first.
   * @example
   * ```ts
   * const c = await runtime.run({ image: 'redis:7', healthcheck: { test: 'redis-cli ping', interval: 500 } });
   * await c.waitHealthy({ timeout: 30_000 });
   * ```
   */
  async waitHealthy(options: WaitHealthyOptions = {}): Promise<void> {
    const context = `wait for container ${this.id.slice(0, 12)} to be healthy`;
    const { timeout, signal } = options;
    if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout >= 0))) {
      throw new InvalidArgumentError(`${context}: timeout must be a number of milliseconds, 0 or more`);
    }
    throwIfAborted(signal, context);
    const checker = await this.#healthChecker();
    if (checker === undefined) throw new InvalidStateError(`${context}: container has no healthcheck`);
    await waitForHealthy(checker, () => this.status, { timeout, signal }, context);
  }

  /** The published ports as bound (for a host port 0, the one the kernel chose), also for containers of other processes: `const [{ hostIp, host }] = c.ports()`. */
  ports(): PublishedPort[] {
    return (this.#record.ports ?? []).map((p) => ({ ...p }));
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
    // Before the command runs: the shim may record its end (`die`) before this process hears it started.
    await this.recordEvent('start');
    try {
      await fifo.write(Buffer.from([1]));
    } finally {
      await fifo.close();
    }
    // A quick command may have ended, and been seen to, while the fifo was closing.
    if (this.#status === 'created') this.#status = 'running';
    if (this.#helper !== undefined) {
      // A detached container's helper is unref'd: with nothing else pending, Node would exit (code 13) while this awaits its word.
      const holdLoop = this.#record.detached === true;
      if (holdLoop) {
        this.#helper.child.ref();
        (this.#helper.child.stdio[3] as unknown as { ref?: () => void } | null)?.ref?.();
      }
      try {
        await this.#helper.next('started');
      } catch (error) {
        // The workload never ran (a bad cwd or user): the container is over, and removable as such.
        await this.#helper.exit;
        this.#status = 'stopped';
        throw error;
      } finally {
        if (holdLoop) this.#helper.unref();
      }
    }
    this.#record = { ...this.#record, started: isoTime() };
    await writeJsonAtomic(this.#paths.record, this.#record);
    await unlink(this.#paths.fifo).catch(() => undefined);
    if (this.#helper !== undefined) this.#monitorHealth();
  }

  /**
   * Waits for the container's command to end.
   *
   * @returns its exit code, the signal that ended it, and whether it was OOM-killed.
   * @throws {@link InvalidStateError} when the container was removed before it was seen to stop.
   * @throws {@link AbortError} when `options.signal` aborts first.
   */
  wait(options: WaitOptions = {}): Promise<ExitStatus> {
    if (this.#exit !== undefined) return afterQueuedOutput(this.#exit);
    this.#waiting ??= this.#helper !== undefined ? this.#waitOwned(this.#helper) : this.#waitForeign();
    return raceAbort(this.#waiting.then(afterQueuedOutput), options.signal, `wait container ${this.id}`);
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
        // The shim writes the exit record just after it reaps pid 1: give it that moment.
        let record = await readJson<ExitRecord>(this.#paths.exit);
        for (let i = 0; record === undefined && i < EXIT_RECORD_POLLS; i++) {
          await sleep(POLL_MS);
          record = await readJson<ExitRecord>(this.#paths.exit);
        }
        // Without an exit record the shim itself was killed (its owner died, so
        // PR_SET_PDEATHSIG sent SIGKILL down the chain).
        this.#exit = record !== undefined ? this.#exitFrom(record) : { exitCode: 137, signal: 'SIGKILL', oomKilled: false };
        return this.#exit;
      }
      await sleep(POLL_MS);
    }
  }

  /** The exit status; `oomKilled` as the shim read it from the memory cgroup's OOM count (its `oom`), not read again here. */
  #exitFrom(status: ExitedStatus | ExitRecord): ExitStatus {
    return exitFromStatus(status);
  }

  #probeForeign(): ContainerStatus {
    const alive = processStartTime(this.#record.pid) === this.#record.pidStart;
    if (alive) return this.#record.started !== undefined ? 'running' : 'created';
    return 'stopped';
  }

  /** For the audit: the process that drops the exited shim's mount namespace, if it reported one. */
  #noteTeardown(helper: HelperProcess): void {
    const teardown = helper.statuses.find((s): s is TeardownStatus => s.type === 'teardown');
    // Forked, the shim is its own teardown: its exit, which the fork server reports once it reaped it, ends it. Not an
    // exit by a signal: a server that dies reports its ops killed, and a detached one lives on. A spawned shim's
    // teardown child may outlive a shim that is killed while it waits for it.
    const exited = teardown !== undefined && teardown.pid === helper.child.pid ? helper.exit.then((e) => e.exitCode !== null) : undefined;
    noteTeardown(dirname(this.#paths.state), this.id, teardown, exited);
  }

  /** Whether pid 1 is known gone: once it is reaped its pid may be reused, so it is never signalled then. */
  #pid1Gone(): boolean {
    if (this.#helper !== undefined && this.#helper.statuses.some((s) => s.type === 'exited')) return true;
    return processStartTime(this.#record.pid) !== this.#record.pidStart;
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
    if (this.#pid1Gone()) return;
    // Appended before the signal: the shim appends `die` as soon as pid 1 is reaped (its mount
    // namespace's teardown no longer comes first), which would otherwise often precede `kill`.
    await this.recordEvent('kill', { signal: typeof signal === 'number' ? signal : osConstants.signals[signal] });
    if (this.#pid1Gone()) return; // again: it may have exited meanwhile
    try {
      process.kill(this.#record.pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
    // A frozen process acts on SIGKILL only once thawed (cgroup v1); other signals wait for unpause(), as with Docker.
    if (status === 'paused' && (signal === 'SIGKILL' || signal === osConstants.signals.SIGKILL)) {
      // The kernel may deliver it to the frozen pid 1 at once (Linux 6.1+'s freezer), and the shim
      // then removes the cgroups as it reaps it: a freezer gone by now has nothing left to thaw.
      await setFrozen(this.#cgroups!.entries, false, `kill container ${this.id}`).catch((error: unknown) => {
        if (!(error instanceof NotFoundError)) throw error;
      });
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
   * Restarts the container as `docker restart` does: stops it if it runs (as
   * {@link Container.stop}, with `timeoutMs`), then starts the same container
   * again: same id, name, written files, mounts, network address and published
   * host ports, with new namespaces, a new pid 1 and its cgroups made afresh.
   * Works on a stopped (exited, killed) container too, and from any process
   * (a detached container found with `runtime.get()`); the process that
   * restarts a container that is not detached becomes its owner (it dies
   * with that process). Nobody is attached afterwards: the restarted
   * command's output is in {@link Container.logs}, and `stdin`/`stdout`/`stderr`
   * stay those of the first run. Records a `restart` event.
   *
   * @throws {@link InvalidStateError} when the container was removed, has no
   *   launch record (made by an older version, or by another user), or joins
   *   the namespaces of a pod or container that is gone.
   * @throws {@link AlreadyExistsError} when a published host port was taken meanwhile.
   * @throws {@link HelperError} when a setup step fails; the container is then stopped.
   * @example
   * ```ts
   * await container.restart({ timeoutMs: 2000 });
   * console.log(container.status, container.pid); // 'running', a new pid
   * ```
   */
  async restart(options: RestartOptions = {}): Promise<void> {
    const context = `restart container ${this.id}`;
    if (this.status === 'removed') throw new InvalidStateError(`${context}: container was removed`);
    if (this.#relaunch === undefined) throw new InvalidStateError(`${context}: container has no runtime to start it`);
    const status = this.status;
    if (status === 'running' || status === 'paused' || status === 'created') {
      await this.stop({ ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}), ...(options.signal !== undefined ? { signal: options.signal } : {}) });
    } else {
      await this.wait().catch(() => undefined);
    }
    // The old shim's word (its exit line, its pipes) is over before the new one is listened to.
    if (this.#helper !== undefined) {
      await this.#helper.exit;
      this.#noteTeardown(this.#helper);
    }
    throwIfAborted(options.signal, context);
    if ((this.#status as ContainerStatus) === 'removed') throw new InvalidStateError(`${context}: container was removed`);
    const { record, helper } = await this.#relaunch(this, this.#record, this.#paths, context);
    this.#record = record;
    this.#helper = helper;
    this.#cgroups = record.cgroups !== undefined ? new CgroupSet(record.cgroups) : undefined;
    this.#exit = undefined;
    this.#waiting = undefined;
    this.#finishedAt = undefined;
    this.#deadSince = undefined;
    this.#status = 'running';
    this.#watch(helper);
    await this.recordEvent('start');
    await this.recordEvent('restart');
    this.#monitorHealth();
  }

  /**
   * The container's log, as `docker logs`: the lines it wrote on stdout and
   * stderr (attached or detached), with their stream and time, from this or any
   * other process, until `remove()`. Iterate it with `for await`; with `follow`
   * the iteration goes on with new lines and ends once the container has exited
   * and its last line is read. `collect()` gives `{ stdout, stderr }` Buffers.
   *
   * @throws {@link InvalidStateError} when the container keeps no log (`log: false`) or was removed.
   * @throws {@link InvalidArgumentError} for a malformed `tail`, `since` or `until`.
   * @example
   * ```ts
   * for await (const line of container.logs({ follow: true, tail: 10, timestamps: true })) process.stdout.write(line.text);
   * const { stdout } = await container.logs().collect();
   * ```
   */
  logs(options: LogsOptions = {}): ContainerLogReader {
    if (this.#status === 'removed') throw new InvalidStateError(`logs of container ${this.id}: container was removed`);
    if (this.#record.log === undefined) {
      throw new InvalidStateError(`logs of container ${this.id}: container keeps no log (it was created with log: false)`);
    }
    return new ContainerLogReader({ path: this.#paths.log, ended: () => this.#logEnded() }, options);
  }

  /** Whether the container is over and its log complete: the shim writes `exited` (and the exit file) after the last line. */
  async #logEnded(): Promise<boolean> {
    const helper = this.#helper;
    if (helper !== undefined) {
      return helper.statuses.some((s) => s.type === 'exited') || helper.child.exitCode !== null || helper.child.signalCode !== null;
    }
    const status = this.status;
    if (status === 'removed') return true;
    if (status !== 'stopped') return false;
    if ((await stat(this.#paths.exit).catch(() => undefined)) !== undefined) return true;
    // A shim killed from outside writes no exit file; an io process (a kernel without pidfd_open) drains what is left at once.
    this.#deadSince ??= Date.now();
    return Date.now() - this.#deadSince > 1000;
  }

  /**
   * Attaches to the running container's stdio, as `docker attach`, from this
   * or any other process: its output from now on (read from its log as it is
   * written, so it needs the log on), and its stdin when it was created with
   * `stdin: true`. Detaching (`close()`) leaves the container running.
   *
   * @throws {@link InvalidStateError} when the container is not running, or keeps no log.
   * @example
   * ```ts
   * await using a = await container.attach();
   * a.stdout.pipe(process.stdout);
   * a.stdin?.write('ls\n');
   * ```
   */
  async attach(options: AttachOptions = {}): Promise<Attachment> {
    const context = `attach to container ${this.id}`;
    const status = this.status;
    if (status !== 'running' && status !== 'paused') throw new InvalidStateError(`${context}: container is ${status}, not running`);
    if (this.#record.log === undefined) throw new InvalidStateError(`${context}: container keeps no log (it was created with log: false)`);
    // Taken now, before anything the caller writes to stdin can be answered.
    const start = (await stat(this.#paths.log).catch(() => undefined))?.size ?? 0;
    return new Attachment(
      { path: this.#paths.log, ended: () => this.#logEnded() },
      start,
      this.#record.openStdin === true ? this.#paths.stdinFifo : undefined,
      options,
      context,
    );
  }

  /**
   * Resizes the container's terminal (`tty: true`); its foreground process gets
   * SIGWINCH. Works from any process.
   *
   * @throws {@link InvalidStateError} when the container has no TTY or is not running.
   * @throws {@link InvalidArgumentError} for a size that is not 1 to 65535 each way.
   */
  async resize(size: TerminalSize): Promise<void> {
    const context = `resize container ${this.id}`;
    const checked = checkSize(size, context);
    if (this.#record.tty !== true) throw new InvalidStateError(`${context}: container has no TTY`);
    const status = this.status;
    if (status !== 'running' && status !== 'paused' && status !== 'created') {
      throw new InvalidStateError(`${context}: container is ${status}, not running`);
    }
    let fifo: FileHandle;
    try {
      fifo = await open(this.#paths.control, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
    } catch (cause) {
      throw new InvalidStateError(`${context}: container is not running`, { cause });
    }
    try {
      // 8 bytes, below PIPE_BUF: written whole, never interleaved with another writer's.
      await fifo.write(resizeRecord(checked));
    } finally {
      await fifo.close();
    }
  }

  /**
   * The container's resource usage now, from its cgroups: memory, CPU time, pids.
   * A stopped container with `resources` keeps its cgroups (and its figures) until it
   * is removed; one without reads zeros once stopped (its cgroups go at its exit).
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
    const [config, networks] = await Promise.all([readJson<ContainerConfigRecord>(this.#paths.config), readJson<NetworkSettingsRecord>(this.#paths.networks)]);
    const exit = status === 'stopped' ? await this.wait().catch(() => undefined) : undefined;
    const finished =
      exit !== undefined ? await stat(this.#paths.exit).then((s) => s.mtime.toISOString(), () => this.#finishedAt) : undefined;
    const checker = await this.#healthChecker();
    if (checker !== undefined && status === 'running') await checker.runOverdue();
    const health = checker !== undefined ? await checker.read() : undefined;
    const restart = await readRestartRecord(this.#paths.restart);
    return inspectOf({
      ...(health !== undefined ? { health: { Status: health.Status, FailingStreak: health.FailingStreak, Log: health.Log } } : {}),
      restartCount: restart?.restartCount ?? 0,
      restarting: status === 'running' && restart?.restarting === true,
      record: this.#record,
      config,
      status,
      ...(exit !== undefined ? { exit } : {}),
      ...(finished !== undefined ? { finishedAt: finished } : {}),
      upper: this.#paths.upper,
      work: this.#paths.work,
      networks,
      logPath: this.#paths.log,
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
    await this.recordEvent('pause');
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
    await this.recordEvent('unpause');
  }

  /**
   * Changes the container's resource limits, as `docker update`: the fields
   * given replace those of {@link ContainerSpec.resources} (same names, units
   * and checks), the others are kept. They are written into the container's
   * cgroups at once (a running container is limited from now on), and into
   * its records: {@link Container.inspect} shows them and
   * {@link Container.restart} makes its cgroups with them. Works from any
   * process (a detached container found with `runtime.get()`). Records an
   * `update` event.
   *
   * @returns every limit the container now has.
   * @throws {@link InvalidStateError} when the container was removed.
   * @throws {@link InvalidArgumentError} for a bad value, or one the kernel refuses
   *   (a memory limit below what the container uses and the kernel cannot reclaim);
   *   the previous limits are then written back.
   * @throws {@link NotFoundError} for a limit whose controller the container has no
   *   cgroup for (`cpuset` or `ioWeight` on a container created without them).
   * @example
   * ```ts
   * await container.update({ memory: 256 * 1024 * 1024, pids: 100 });
   * ```
   */
  async update(resources: ContainerResources): Promise<ContainerResources> {
    const context = `update container ${this.id}`;
    if (this.status === 'removed') throw new InvalidStateError(`${context}: container was removed`);
    const updated = await updateResources(this.#record, this.#paths, resources, context);
    await this.recordEvent('update');
    return updated;
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
    if (this.#helper !== undefined) {
      // Output nobody read keeps the helper's pipes (and so its exit) open: once removed, it is not
      // wanted. What the streams already hold stays readable, then they end.
      const helper = this.#helper;
      for (const [raw, held] of [
        [helper.child.stdout, helper.stdout],
        [helper.child.stderr, helper.stderr],
      ] as const) {
        if (raw === null || held === null || raw.readableEnded) continue;
        raw.unpipe(held as unknown as PassThrough);
        (held as unknown as PassThrough).end();
        raw.resume();
      }
      // The exit may have been seen already (wait() returned at once) with the helper unref'd, as a
      // detached container's is: what is awaited must hold the event loop, or Node ends the process here.
      helper.child.ref();
      (helper.child.stdio[3] as unknown as { ref?: () => void } | null)?.ref?.();
      // A shim ends with its `teardown` line: after it, it touches nothing of the container's (its exit
      // file and cgroups are done), and only its exit is left: at once when the fork server forked it
      // (the server reaps it and reports a hop later), after its teardown child's unmounts when this
      // process spawned it (it waits for that child). Neither holds this process's loop any more.
      // Without that line (the fork failed, or the shim did), its exit.
      await helper.next('teardown').then(
        () => helper.unref(),
        () => helper.exit,
      );
      this.#noteTeardown(helper);
    }
    await endRecordedHelper(this.#record.forwarder);
    // Unless the shim removed them after the exit (`cgroups-removed`, read by now: its helper has closed) and
    // nobody made them again since (a restart from another process does, and this object's shim never hears
    // of it: a stat per directory says); a shim killed before it could, or another process's container, leaves them to this side.
    const shimRemoved = this.#helper?.statuses.some((s) => s.type === 'cgroups-removed') === true && this.#cgroups?.madeAgain() !== true;
    if (!shimRemoved) await this.#cgroups?.remove(`remove container ${this.id}`);
    this.#status = 'removed';
    // Launched here (its labels are in its record) and deleted in batches: the fork server appends the
    // event and moves both directories into the trash, with none of this thread pool's round trips.
    const forked = this.#helper !== undefined && this.#record.userns?.rootless !== true && !this.#detachRemoval;
    const removeBundle = (path: string) => removeContainerDir(path, this.#record.userns, this.#helperPath);
    // Both before the state directory goes: the event reads nothing from it then, and what
    // onRemove gives up (the name, clone holds) must not look abandoned while still ours.
    await Promise.all([forked ? undefined : this.recordEvent('remove'), this.#onRemove(this, this.#record)]);
    let now = false;
    if (forked) {
      const entries = [
        { path: this.#paths.state, remove: removeDir },
        { path: this.#paths.bundle, remove: removeBundle },
      ];
      const event = { file: eventsFile(dirname(this.#paths.state)), line: eventLine(this.#event('remove', {}, this.#record.labels)) };
      if (await discardForked(entries, event, this.#helperPath)) {
        debug('%s removed', this.id.slice(0, 12));
        return;
      }
      now = beforeForkServer(this.#helperPath);
      if (now) appendEventLineSync(event.file, event.line);
      else await this.recordEvent('remove');
    }
    await Promise.all([
      discard(this.#paths.state, removeDir, { helperPath: this.#helperPath, detached: this.#detachRemoval, now }),
      discard(
        this.#paths.bundle,
        removeBundle,
        // A rootless container's upper directory holds files of ids the helper cannot remove on the host.
        this.#record.userns?.rootless === true ? undefined : { helperPath: this.#helperPath, detached: this.#detachRemoval, now },
      ),
    ]);
    debug('%s removed', this.id.slice(0, 12));
  }

  /** Kills (if needed) and removes the container; for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove({ force: true });
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
