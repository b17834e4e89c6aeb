/**
 * Healthchecks without a daemon. The check's command runs through
 * `container.exec`; its result and the container's health live in the state
 * directory (`health.json`), so every process sees the same `State.Health`.
 *
 * Who runs a check: whoever is looking when it is due. The process that
 * created the container runs every check on a timer for as long as it lives
 * (also for a detached container); a process in `waitHealthy()` runs those
 * that fall due while it waits; `inspect()` runs one that is overdue by more
 * than a second (so a live owner normally has it). A lock file
 * (`health.lock`, naming its process) makes sure one check runs at a time;
 * one whose process died is taken over. With nobody looking, no check runs,
 * and the status stays what the last check made it.
 *
 * Docker's semantics: `starting` until the first success (`healthy`);
 * `unhealthy` after `retries` consecutive failures, failures during the start
 * period not counted while still `starting`; a check that outlives `timeout`
 * is killed and fails; the last 5 results are kept.
 *
 * @module
 */

import { constants as fsConstants } from 'node:fs';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import createDebug from 'debug';
import { InvalidArgumentError, UnhealthyError } from '../errors.js';
import type { HealthConfig } from '../oci/index.js';
import { processStartTime, raceAbort, selfStartTime, throwIfAborted } from '../util/index.js';
import type { ExecProcess } from './exec.js';
import type { HealthcheckSpec, HealthPlan } from './lifecycle-types.js';
import { writeJsonAtomic, readJson } from './state.js';

export type { HealthcheckSpec, HealthPlan } from './lifecycle-types.js';

const debug = createDebug('dockless:health');

/** Docker's defaults, in milliseconds. */
const DEFAULT_INTERVAL_MS = 30_000;
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_START_INTERVAL_MS = 5_000;
const DEFAULT_RETRIES = 3;
/** Docker keeps this many results, and this much of each one's output. */
const LOG_ENTRIES = 5;
const OUTPUT_MAX = 4096;
/** How late a check must be before `inspect()` runs it itself. */
const OVERDUE_MS = 1000;
/** An empty lock file this old was left by a process that died taking it. */
const STALE_EMPTY_LOCK_MS = 10_000;

/** A container's health status, as Docker names it. */
export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

/** One check's result, in `State.Health.Log`. */
export interface HealthLogEntry {
  /** ISO time the check started. */
  Start: string;
  /** ISO time it ended. */
  End: string;
  /** Its exit code: 0 healthy; -1 when it timed out or could not run. */
  ExitCode: number;
  /** Its stdout and stderr, at most 4096 bytes. */
  Output: string;
}

/** `State.Health` of `inspect()`. */
export interface InspectHealth {
  /** `starting`, `healthy` or `unhealthy`. */
  Status: HealthStatus;
  /** Consecutive failures counted so far. */
  FailingStreak: number;
  /** The last 5 results, oldest first. */
  Log: HealthLogEntry[];
}

/** What `health.json` holds. */
export interface HealthRecord extends InspectHealth {
  /** When the current run of the command started (ms): the start period counts from it. */
  startedAt: number;
  /** The restart it belongs to: a restart starts over at `starting`. */
  restartCount: number;
  /** When the next check is due (ms). */
  nextCheck: number;
}

const nsToMs = (ns: number | undefined) => (ns !== undefined && ns > 0 ? Math.round(ns / 1e6) : undefined);

function checkDuration(value: unknown, field: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new InvalidArgumentError(`container spec: healthcheck.${field} must be a number of milliseconds, ${min} or more`);
  }
  return value;
}

function testOf(test: readonly string[] | undefined, shell: readonly string[]): string[] | 'none' | undefined {
  if (test === undefined || test.length === 0) return undefined;
  const [kind, ...rest] = test;
  if (kind === 'NONE') return 'none';
  if (kind === 'CMD') return rest.length > 0 ? [...rest] : undefined;
  if (kind === 'CMD-SHELL') return rest.length > 0 ? [...shell, rest.join(' ')] : undefined;
  return [...test];
}

/**
 * Resolves the container's healthcheck: the spec's fields over the image's
 * `Healthcheck` over Docker's defaults. Undefined when there is none or it is disabled.
 *
 * @throws {@link InvalidArgumentError} for a malformed `spec.healthcheck`.
 */
export function healthPlan(spec: HealthcheckSpec | undefined, image: HealthConfig | undefined, shell: readonly string[] | undefined): HealthPlan | undefined {
  const sh = shell !== undefined && shell.length > 0 ? shell : ['/bin/sh', '-c'];
  if (spec !== undefined && (typeof spec !== 'object' || spec === null)) {
    throw new InvalidArgumentError('container spec: healthcheck must be an object');
  }
  let cmd = testOf(image?.Test, sh);
  const test = spec?.test;
  if (test !== undefined) {
    if (test === 'none') cmd = 'none';
    else if (typeof test === 'string') {
      if (test === '') throw new InvalidArgumentError('container spec: healthcheck.test must not be empty');
      cmd = [...sh, test];
    } else if (Array.isArray(test) && test.length > 0 && test.every((a) => typeof a === 'string' && !a.includes('\0'))) {
      cmd = testOf(test, sh);
      if (cmd === undefined) throw new InvalidArgumentError('container spec: healthcheck.test has no command');
    } else {
      throw new InvalidArgumentError("container spec: healthcheck.test must be 'none', a shell command or a non-empty array of strings");
    }
  }
  const interval = checkDuration(spec?.interval, 'interval', 1) ?? nsToMs(image?.Interval) ?? DEFAULT_INTERVAL_MS;
  const timeout = checkDuration(spec?.timeout, 'timeout', 1) ?? nsToMs(image?.Timeout) ?? DEFAULT_TIMEOUT_MS;
  const startPeriod = checkDuration(spec?.startPeriod, 'startPeriod', 0) ?? nsToMs(image?.StartPeriod) ?? 0;
  const startInterval = checkDuration(spec?.startInterval, 'startInterval', 1) ?? nsToMs(image?.StartInterval) ?? DEFAULT_START_INTERVAL_MS;
  const retries = spec?.retries ?? (image?.Retries !== undefined && image.Retries > 0 ? image.Retries : DEFAULT_RETRIES);
  if (!Number.isSafeInteger(retries) || retries < 1) throw new InvalidArgumentError('container spec: healthcheck.retries must be an integer, 1 or more');
  if (cmd === undefined || cmd === 'none') return undefined;
  return { cmd, interval, timeout, retries, startPeriod, startInterval };
}

/** Pure: the record after one check's result. */
export function nextHealth(record: HealthRecord, plan: HealthPlan, entry: HealthLogEntry, now: number): HealthRecord {
  const log = [...record.Log, entry].slice(-LOG_ENTRIES);
  let { Status: status, FailingStreak: streak } = record;
  const inStartPeriod = now - record.startedAt < plan.startPeriod;
  if (entry.ExitCode === 0) {
    status = 'healthy';
    streak = 0;
  } else if (!(status === 'starting' && inStartPeriod)) {
    streak += 1;
    if (streak >= plan.retries) status = 'unhealthy';
  }
  const wait = status === 'starting' && inStartPeriod ? plan.startInterval : plan.interval;
  return { ...record, Status: status, FailingStreak: streak, Log: log, nextCheck: now + wait };
}

/** The record of a run of the command that started at `startedAt`: nothing checked yet. */
export function freshHealth(plan: HealthPlan, startedAt: number, restartCount: number, log: HealthLogEntry[] = []): HealthRecord {
  const first = plan.startPeriod > 0 ? Math.min(plan.startInterval, plan.interval) : plan.interval;
  return { Status: 'starting', FailingStreak: 0, Log: log, startedAt, restartCount, nextCheck: startedAt + first };
}

/** What a {@link HealthChecker} needs of its container. */
export interface HealthTarget {
  /** `<state>/health.json` and `<state>/health.lock`. */
  file: string;
  lock: string;
  plan: HealthPlan;
  /** When the command first started (ms). */
  startedAt(): number;
  /** Whether the container runs now (not paused, not stopped). */
  running(): boolean;
  /** Whether it may still run (running or paused). */
  alive(): boolean;
  /** The restart count and when the current run started, from the shim's record. */
  restarts(): Promise<{ count: number; since: number } | undefined>;
  exec(cmd: string[], signal: AbortSignal): Promise<ExecProcess>;
  /** Records a `health_status` event. */
  changed(status: HealthStatus): Promise<void>;
}

interface LockOwner {
  pid: number;
  start: number;
}

/** Takes the lock file, or takes over one whose process is gone; false when another live process holds it. */
async function takeLock(path: string): Promise<boolean> {
  const me: LockOwner = { pid: process.pid, start: selfStartTime() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o644);
      await handle.writeFile(JSON.stringify(me));
      await handle.close();
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') return false;
    }
    const text = await readFile(path, 'utf8').catch(() => undefined);
    let owner: LockOwner | undefined;
    try {
      owner = text !== undefined && text !== '' ? (JSON.parse(text) as LockOwner) : undefined;
    } catch {
      owner = undefined;
    }
    // Written right after the create: an empty file is a lock being taken, unless its taker died in between.
    if (owner === undefined) {
      const age = await stat(path).then((st) => Date.now() - st.mtimeMs, () => 0);
      if (age < STALE_EMPTY_LOCK_MS) return false;
      await unlink(path).catch(() => undefined);
      continue;
    }
    if (processStartTime(owner.pid) === owner.start) return false;
    await unlink(path).catch(() => undefined);
  }
  return false;
}

/** How long output may still come once the check's process has ended (from a child it left behind). */
const OUTPUT_GRACE_MS = 100;

/** The check's exit and its first 4096 bytes of output; a child it left holding the pipes is not waited for. */
async function outcome(p: ExecProcess): Promise<{ exit: { exitCode: number } | undefined; output: string }> {
  const chunks: Buffer[] = [];
  let size = 0;
  const read = async (stream: Readable | null) => {
    if (stream === null) return;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        if (size < OUTPUT_MAX) chunks.push(chunk.subarray(0, OUTPUT_MAX - size));
        size += chunk.length;
      }
    } catch {
      /* destroyed below */
    }
  };
  const reading = Promise.all([read(p.stdout), read(p.stderr)]);
  const exit = await p.wait().catch(() => undefined);
  await Promise.race([reading, sleep(OUTPUT_GRACE_MS)]);
  p.releaseStdio();
  return { exit, output: Buffer.concat(chunks).toString('utf8') };
}

/** Runs a container's healthchecks and keeps its health record; see the module's comment for who runs them. */
export class HealthChecker {
  readonly #t: HealthTarget;
  #monitoring = false;

  constructor(target: HealthTarget) {
    this.#t = target;
  }

  /** The health record, with a restart (seen in the shim's record) taken into account. */
  async read(): Promise<HealthRecord> {
    const { plan } = this.#t;
    const record = (await readJson<HealthRecord>(this.#t.file)) ?? freshHealth(plan, this.#t.startedAt(), 0);
    const restarts = await this.#t.restarts();
    if (restarts !== undefined && restarts.count !== record.restartCount) {
      return freshHealth(plan, restarts.since, restarts.count, record.Log);
    }
    return record;
  }

  /**
   * Runs a check when one is due (more than `lateMs` past due) and no other
   * process is running one. Resolves once it is recorded, or at once.
   */
  async runDue(lateMs = 0): Promise<void> {
    if (!this.#t.running()) return;
    const peek = await this.read();
    if (Date.now() < peek.nextCheck + lateMs) return;
    if (!(await takeLock(this.#t.lock))) return;
    try {
      const before = await this.read();
      if (Date.now() < before.nextCheck + lateMs || !this.#t.running()) return;
      const entry = await this.#check();
      if (entry === undefined) return;
      const after = nextHealth(before, this.#t.plan, entry, Date.now());
      await writeJsonAtomic(this.#t.file, after);
      if (after.Status !== before.Status) await this.#t.changed(after.Status);
      debug('check exit %d: %s (streak %d)', entry.ExitCode, after.Status, after.FailingStreak);
    } finally {
      await unlink(this.#t.lock).catch(() => undefined);
    }
  }

  /** One check; undefined when it could not run because the container is no longer running. */
  async #check(): Promise<HealthLogEntry | undefined> {
    const { plan } = this.#t;
    const start = new Date();
    const abort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, plan.timeout);
    try {
      const p = await this.#t.exec(plan.cmd, abort.signal);
      p.stdin?.end();
      const { exit, output } = await outcome(p);
      await p[Symbol.asyncDispose]();
      if (timedOut || exit === undefined) {
        return { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: -1, Output: `Health check exceeded timeout (${plan.timeout}ms)` };
      }
      return { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: exit.exitCode, Output: output };
    } catch (error) {
      if (!this.#t.running()) return undefined;
      if (timedOut) {
        return { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: -1, Output: `Health check exceeded timeout (${plan.timeout}ms)` };
      }
      return { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: -1, Output: error instanceof Error ? error.message : String(error) };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs checks as they fall due for as long as the container runs; never keeps the process alive. */
  monitor(): void {
    if (this.#monitoring) return;
    this.#monitoring = true;
    const loop = async () => {
      while (this.#t.alive()) {
        const record = await this.read().catch(() => undefined);
        if (record === undefined) break;
        const wait = Math.max(10, record.nextCheck - Date.now());
        await sleep(Math.min(wait, 1000), undefined, { ref: false });
        await this.runDue().catch((error: unknown) => debug('check failed: %s', String(error)));
      }
      this.#monitoring = false;
    };
    void loop();
  }

  /** inspect()'s part: a check overdue by more than a second is run now. */
  runOverdue(): Promise<void> {
    return this.runDue(OVERDUE_MS).catch((error: unknown) => debug('check failed: %s', String(error)));
  }
}

/**
 * `container.waitHealthy()`'s loop: reads the record, runs due checks, until
 * healthy, unhealthy, stopped or the timeout.
 */
export async function waitForHealthy(
  checker: HealthChecker,
  status: () => string,
  options: { timeout?: number | undefined; signal?: AbortSignal | undefined },
  context: string,
): Promise<void> {
  const { timeout, signal } = options;
  const deadline = timeout !== undefined ? Date.now() + timeout : Infinity;
  for (;;) {
    throwIfAborted(signal, context);
    const record = await checker.read();
    const last = record.Log.at(-1);
    const details = last !== undefined ? { exitCode: last.ExitCode, output: last.Output } : {};
    if (record.Status === 'healthy') return;
    if (record.Status === 'unhealthy') {
      throw new UnhealthyError(`${context}: container is unhealthy (${record.FailingStreak} failed checks)`, { reason: 'unhealthy', ...details });
    }
    const now = status();
    if (now === 'stopped' || now === 'removed') {
      throw new UnhealthyError(`${context}: container ${now === 'removed' ? 'was removed' : 'exited'}`, { reason: 'exited', ...details });
    }
    const left = deadline - Date.now();
    if (left <= 0) throw new UnhealthyError(`${context}: not healthy after ${timeout}ms`, { reason: 'timeout', ...details });
    // A check still running at the deadline is left to finish (and be recorded) on its own.
    const round = Promise.all([checker.runDue().catch(() => undefined), sleep(Math.min(left, 50))]);
    // No deadline: no timer for it (Node turns a delay of Infinity into 1 ms).
    await raceAbort(Number.isFinite(left) ? Promise.race([round, sleep(left)]) : round, signal, context);
  }
}
