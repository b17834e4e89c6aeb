/**
 * A container's cgroups: one directory per hierarchy it needs, created (with
 * its limits written) before the helper starts, joined by the container's pid 1
 * before its first setup step (see native/cgroup.c), read for statistics and OOM
 * reports, and removed with the container.
 *
 * @module
 */

import { accessSync, closeSync, constants as fsConstants, existsSync, mkdirSync, openSync, readFileSync, rmdirSync, writeSync } from 'node:fs';
import { readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import createDebug from 'debug';
import {
  AlreadyExistsError,
  DocklessError,
  InvalidArgumentError,
  InvalidStateError,
  NotFoundError,
  PermissionError,
} from '../../errors.js';
import type { CgroupPlan, CgroupWrite, HierarchyPlan } from './policy.js';
import type { ContainerStats } from './resources.js';

const debug = createDebug('dockless:cgroups');

/** One cgroup of a container, as the container's record keeps it. */
export interface CgroupRecord {
  /** The cgroup's directory. */
  dir: string;
  /** 1 for a v1 hierarchy, 2 for the unified one. */
  version: 1 | 2;
  /** The controllers the container uses there. */
  controllers: string[];
}

/** How long {@link CgroupSet.remove} keeps killing lingering processes before it gives up. */
const REMOVE_TIMEOUT_MS = 5000;
/** memory.limit_in_bytes reads as PAGE_COUNTER_MAX pages when unlimited; anything this large is "no limit". */
const UNLIMITED = 2 ** 60;

type Errno = NodeJS.ErrnoException;

function errnoOf(error: unknown): string {
  return (error as Errno)?.code ?? 'EIO';
}

/** A failed cgroup file operation as a typed error naming the file. */
export function cgroupError(context: string, what: string, path: string, cause: unknown, extra = ''): DocklessError {
  const code = errnoOf(cause);
  const message = `${context}: ${what} \`${path}\`: ${code}${extra}`;
  switch (code) {
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new PermissionError(message, { cause, path });
    case 'ENOENT':
      return new NotFoundError(message, { cause, path });
    case 'EEXIST':
      return new AlreadyExistsError(message, { cause, path });
    case 'EBUSY':
      if (what.startsWith('rmdir')) return new InvalidStateError(message, { cause, path });
      return new InvalidArgumentError(message, { cause, path });
    default:
      // EINVAL, ERANGE, ENOSPC, EOPNOTSUPP: the kernel refused the value.
      return new InvalidArgumentError(message, { cause, path });
  }
}

/**
 * Writes an existing cgroup file: O_WRONLY without O_CREAT, so that a missing
 * file is ENOENT (and a write-only file such as cgroup.kill can be opened).
 */
function writeCgroupFile(path: string, value: string): Promise<void> {
  return writeFile(path, value, { flag: fsConstants.O_WRONLY });
}

// Creating a container's cgroups is on the start path of every container, and
// cgroupfs operations are in-memory and take microseconds: done synchronously they
// cost less than the thread-pool round trips of their async forms.
function writeCgroupFileSync(path: string, value: string): void {
  const fd = openSync(path, fsConstants.O_WRONLY);
  try {
    writeSync(fd, value);
  } finally {
    closeSync(fd);
  }
}

function readTrimmedSync(path: string): string {
  return readFileSync(path, 'utf8').trim();
}

async function readTrimmed(path: string): Promise<string> {
  return (await readFile(path, 'utf8')).trim();
}

function readSyncOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The directories from `base` (included) down to `dir` (included). */
function chain(base: string, dir: string): string[] {
  const out = [base];
  if (dir === base) return out;
  const rest = posix.relative(base, dir).split('/');
  let cur = base;
  for (const seg of rest) {
    cur = posix.join(cur, seg);
    out.push(cur);
  }
  return out;
}

/** v1 cpuset: a new cgroup's `cpuset.cpus` and `cpuset.mems` are empty, and no task may join it until both are set. */
function copyCpusetDown(dirs: string[], context: string, skipCpusAt?: string): void {
  for (let i = 1; i < dirs.length; i++) {
    for (const file of ['cpuset.mems', 'cpuset.cpus']) {
      if (file === 'cpuset.cpus' && dirs[i] === skipCpusAt) continue;
      const path = posix.join(dirs[i]!, file);
      let current = '';
      try {
        current = readTrimmedSync(path);
      } catch {
        /* missing: the write below names it */
      }
      if (current !== '') continue;
      const from = posix.join(dirs[i - 1]!, file);
      let value: string;
      try {
        value = readTrimmedSync(from);
      } catch (cause) {
        throw cgroupError(context, 'read', from, cause);
      }
      try {
        writeCgroupFileSync(path, value);
      } catch (cause) {
        throw cgroupError(context, `write \`${value}\` to`, path, cause);
      }
    }
  }
}

/** v2: enables `controllers` for the children of each directory in `dirs`; returns the ones that could not be. */
function enableControllers(dirs: string[], controllers: string[]): Map<string, { path: string; cause: unknown }> {
  const failed = new Map<string, { path: string; cause: unknown }>();
  for (const dir of dirs) {
    const path = posix.join(dir, 'cgroup.subtree_control');
    let enabled = new Set<string>();
    try {
      enabled = new Set(readTrimmedSync(path).split(/\s+/));
    } catch {
      /* unreadable: every write below fails and says why */
    }
    for (const c of controllers) {
      if (enabled.has(c) || failed.has(c)) continue;
      // One at a time, so that one refused controller does not take the others with it.
      try {
        writeCgroupFileSync(path, `+${c}`);
      } catch (cause) {
        failed.set(c, { path, cause });
      }
    }
  }
  return failed;
}

function applyWrite(dir: string, w: CgroupWrite, context: string): void {
  let missing: unknown;
  for (const { file, value } of w.candidates) {
    const path = posix.join(dir, file);
    try {
      writeCgroupFileSync(path, value);
      return;
    } catch (cause) {
      const code = errnoOf(cause);
      // v1 memory.limit_in_bytes: EBUSY when the kernel could not reclaim the container's memory down to the new limit.
      const busy = code === 'EBUSY' ? ': the container uses more memory than that and the kernel could not reclaim it' : '';
      if (code !== 'ENOENT') throw cgroupError(context, `write \`${value}\` to`, path, cause, ` (${w.field}${busy})`);
      missing ??= cause;
    }
  }
  if (w.optional === true) return;
  const files = w.candidates.map((c) => `\`${posix.join(dir, c.file)}\``).join(' or ');
  throw new NotFoundError(`${context}: ${w.field} is not supported here: no ${files}`, {
    cause: missing,
    path: posix.join(dir, w.candidates[0]!.file),
  });
}

/**
 * Applies `writes` in order. A run of writes to one file with no alternative
 * (the device allow-list: a dozen rules, one per write) shares one descriptor:
 * each write() is parsed as a rule of its own.
 */
function applyWrites(dir: string, writes: readonly CgroupWrite[], context: string): void {
  for (let i = 0; i < writes.length; ) {
    const w = writes[i]!;
    let end = i + 1;
    const only = w.candidates.length === 1 ? w.candidates[0]!.file : undefined;
    while (only !== undefined && end < writes.length && writes[end]!.candidates.length === 1 && writes[end]!.candidates[0]!.file === only) end++;
    if (end - i < 2) {
      applyWrite(dir, w, context);
      i = end;
      continue;
    }
    const path = posix.join(dir, only!);
    let fd: number;
    try {
      fd = openSync(path, fsConstants.O_WRONLY);
    } catch {
      // applyWrite names the file and the field in its error.
      applyWrite(dir, w, context);
      i = end;
      continue;
    }
    try {
      for (; i < end; i++) {
        const { value } = writes[i]!.candidates[0]!;
        try {
          writeSync(fd, value);
        } catch (cause) {
          throw cgroupError(context, `write \`${value}\` to`, path, cause, ` (${writes[i]!.field})`);
        }
      }
    } finally {
      closeSync(fd);
    }
  }
}

/** Creates one hierarchy's cgroup; returns its record, or undefined when an optional-only hierarchy is unusable. */
function createOne(p: HierarchyPlan, context: string): CgroupRecord | undefined {
  const h = p.hierarchy;
  const required = p.controllers.filter((c) => !p.optional.includes(c));
  let controllers = [...p.controllers];
  const ancestors = chain(p.baseDir, p.parentDir);
  try {
    if (p.parentDir !== p.baseDir) mkdirSync(p.parentDir, { recursive: true });
    if (h.version === 2) {
      const failed = enableControllers(ancestors, controllers);
      for (const [c, { path, cause }] of failed) {
        if (required.includes(c)) {
          throw cgroupError(
            context,
            `enable the \`${c}\` controller in`,
            path,
            cause,
            errnoOf(cause) === 'EBUSY'
              ? ' (a cgroup with processes cannot hand controllers to children: set cgroupParent to a cgroup without processes)'
              : '',
          );
        }
        debug('%s: no %s controller for the container: %s', context, c, errnoOf(cause));
      }
      controllers = controllers.filter((c) => !failed.has(c));
    } else if (p.copyCpuset && ancestors.length > 1) {
      copyCpusetDown(ancestors, context);
    }
  } catch (error) {
    const dl = error instanceof DocklessError ? error : cgroupError(context, 'mkdir', p.parentDir, error);
    // Stats-only cgroups are a convenience: without permission (rootless, not delegated) the container runs without them.
    if (required.length === 0 && dl instanceof PermissionError) {
      debug('%s: skipping %s cgroup: %s', context, h.controllers.join(','), dl.message);
      return undefined;
    }
    throw dl;
  }

  try {
    mkdirSync(p.dir);
  } catch (cause) {
    if (required.length === 0 && ['EACCES', 'EPERM', 'EROFS'].includes(errnoOf(cause))) {
      debug('%s: skipping %s cgroup: %s', context, h.controllers.join(','), errnoOf(cause));
      return undefined;
    }
    throw cgroupError(context, 'mkdir', p.dir, cause);
  }
  const record: CgroupRecord = { dir: p.dir, version: h.version, controllers };
  try {
    if (p.copyCpuset) {
      const setsCpus = p.writes.some((w) => w.candidates.some((c) => c.file === 'cpuset.cpus'));
      copyCpusetDown([p.parentDir, p.dir], context, setsCpus ? p.dir : undefined);
    }
    applyWrites(p.dir, p.writes, context);
  } catch (error) {
    try {
      rmdirSync(p.dir);
    } catch {
      /* nothing joined it yet; at worst an empty directory is left */
    }
    throw error;
  }
  return record;
}

/** A container's cgroups. */
export class CgroupSet {
  /** One entry per hierarchy. */
  readonly entries: readonly CgroupRecord[];

  constructor(entries: readonly CgroupRecord[]) {
    this.entries = entries;
  }

  /**
   * Creates the cgroups of `plan` and writes their limits; on failure removes
   * whatever it created and throws.
   *
   * @param context - put before error messages, e.g. `run container 3f2a…`.
   * @throws {@link PermissionError}, {@link InvalidArgumentError}, {@link NotFoundError} naming the file that failed.
   */
  static async create(plan: CgroupPlan, context: string): Promise<CgroupSet> {
    const made: CgroupRecord[] = [];
    try {
      for (const p of plan.hierarchies) {
        const record = createOne(p, context);
        if (record !== undefined) made.push(record);
      }
    } catch (error) {
      await new CgroupSet(made).remove().catch(() => undefined);
      throw error;
    }
    return new CgroupSet(made);
  }

  /**
   * Writes the limits of `plan` (made by `replanResources`) into these existing
   * cgroups, while the container runs; the device rules are left as they are.
   *
   * @throws {@link InvalidArgumentError} naming the file when the kernel refuses a
   *   value (a memory limit below what the container uses and cannot give back).
   * @throws {@link NotFoundError} when a limit's cgroup or file is not there.
   */
  update(plan: CgroupPlan, context: string): void {
    for (const p of plan.hierarchies) {
      const writes = p.writes.filter((w) => w.field !== 'devices');
      if (writes.length === 0) continue;
      if (!this.entries.some((e) => e.dir === p.dir)) {
        throw new NotFoundError(`${context}: the container has no cgroup \`${p.dir}\` for ${writes.map((w) => w.field).join(', ')}`, { path: p.dir });
      }
      // Removed by the shim at the container's exit (shimCgroups): the limits go to the records only, and a restart makes the cgroup with them.
      if (!existsSync(p.dir)) continue;
      if (p.hierarchy.version === 1) {
        // memsw may never be below memory.limit_in_bytes: when the limit grows, memsw has to grow first.
        const mem = writes.findIndex((w) => w.field === 'resources.memory');
        const swap = writes.findIndex((w) => w.field === 'resources.memorySwap');
        const current = Number(readSyncOrUndefined(posix.join(p.dir, 'memory.limit_in_bytes')) ?? NaN);
        if (mem >= 0 && swap > mem && Number(writes[mem]!.candidates[0]!.value) > current) {
          [writes[mem], writes[swap]] = [writes[swap]!, writes[mem]!];
        }
      }
      for (const w of writes) applyWrite(p.dir, w, context);
    }
  }

  /**
   * Whether its directories were made again (by a restart from another process, say) after they were removed:
   * whether the first exists. Every maker (the shim, {@link CgroupSet.create}, a relaunch) makes a plan's
   * directories in its order, the first first; a stat of each (six on a v1 host) cost a remove ~0.1 ms of this
   * thread under load, cgroupfs lookups being the slowest of its syscalls.
   */
  madeAgain(): boolean {
    const first = this.entries[0];
    return first !== undefined && existsSync(first.dir);
  }

  /** The cgroup directories, for the helper's `--cgroup`. */
  get dirs(): string[] {
    return this.entries.map((e) => e.dir);
  }

  /**
   * The file that counts the container's OOM kills (`oom_kill`), for the helper's `--oom-file`: v1's
   * `memory.oom_control` or v2's `memory.events` in the memory hierarchy; undefined without one. The shim reads
   * just this one at the exit rather than try both names in every hierarchy (a dozen failed cgroupfs lookups on a
   * v1 host, on the path to the caller hearing of the exit).
   */
  get oomFile(): string | undefined {
    const memory = this.#with('memory');
    if (memory === undefined) return undefined;
    return posix.join(memory.dir, memory.version === 1 ? 'memory.oom_control' : 'memory.events');
  }

  #with(controller: string): CgroupRecord | undefined {
    return this.entries.find((e) => e.controllers.includes(controller));
  }

  /**
   * The container's memory, CPU and pids usage.
   *
   * @throws {@link NotFoundError} when the container has no cgroup for one of them.
   */
  async stats(context: string): Promise<ContainerStats> {
    const mem = this.#with('memory');
    const pids = this.#with('pids');
    const cpuacct = this.#with('cpuacct');
    const v2 = this.entries.find((e) => e.version === 2);
    const missing = [mem === undefined && 'memory', pids === undefined && 'pids', cpuacct === undefined && v2 === undefined && 'cpu'].filter(
      Boolean,
    );
    if (missing.length > 0) {
      throw new NotFoundError(`${context}: the container has no cgroup for ${missing.join(', ')} (cgroups not available to this process)`);
    }
    const num = async (dir: string, file: string): Promise<number | undefined> => {
      const path = posix.join(dir, file);
      let text: string;
      try {
        text = await readTrimmed(path);
      } catch (cause) {
        if (errnoOf(cause) === 'ENOENT') return undefined;
        throw cgroupError(context, 'read', path, cause);
      }
      if (text === 'max') return Infinity;
      const n = Number(text);
      return Number.isFinite(n) ? n : undefined;
    };
    const limit = (n: number | undefined) => (n === undefined || n >= UNLIMITED ? undefined : n);
    const m = mem!;
    const p = pids!;
    const cpuUsage = async (): Promise<number> => {
      if (cpuacct !== undefined) return (await num(cpuacct.dir, 'cpuacct.usage')) ?? 0;
      const stat = await readFile(posix.join(v2!.dir, 'cpu.stat'), 'utf8').catch(() => '');
      const usec = /^usage_usec (\d+)$/m.exec(stat);
      return usec !== null ? Number(usec[1]) * 1000 : 0;
    };
    const [usage, memLimit, maxUsage, cpu, current, pidsMax] = await Promise.all([
      num(m.dir, m.version === 1 ? 'memory.usage_in_bytes' : 'memory.current'),
      num(m.dir, m.version === 1 ? 'memory.limit_in_bytes' : 'memory.max'),
      num(m.dir, m.version === 1 ? 'memory.max_usage_in_bytes' : 'memory.peak'),
      cpuUsage(),
      num(p.dir, 'pids.current'),
      num(p.dir, 'pids.max'),
    ]);
    const memoryLimit = limit(memLimit);
    const pidsLimit = limit(pidsMax);
    return {
      memory: {
        usage: usage ?? 0,
        ...(memoryLimit !== undefined ? { limit: memoryLimit } : {}),
        ...(maxUsage !== undefined ? { maxUsage } : {}),
      },
      cpu: { usageNanos: cpu },
      pids: { current: current ?? 0, ...(pidsLimit !== undefined ? { limit: pidsLimit } : {}) },
    };
  }

  /**
   * Removes the cgroups. Processes still in them (there should be none once
   * the container's pid 1 is gone) are killed first; only processes in these
   * cgroups, never others.
   *
   * @throws {@link InvalidStateError} when a cgroup cannot be removed in time.
   */
  async remove(context = 'remove cgroups'): Promise<void> {
    // Frozen (v1) processes act on SIGKILL only once thawed: first, or every other rmdir waits for them in vain.
    const freezer = this.entries.find((e) => e.version === 1 && e.controllers.includes('freezer'));
    // A thawed cgroup (the common case) needs no thaw: its processes die of the SIGKILL of removeTree's retries.
    if (freezer !== undefined && readSyncOrUndefined(posix.join(freezer.dir, 'freezer.state'))?.trim() !== 'THAWED') await killMembers(freezer);
    for (const e of this.entries) await removeTree(e, context);
  }
}

/** Removes a cgroup directory and any cgroups below it (made inside the container), deepest first. */
async function removeTree(entry: CgroupRecord, context: string): Promise<void> {
  // The common case, an empty cgroup without children, without a thread-pool round trip.
  try {
    rmdirSync(entry.dir);
    return;
  } catch (cause) {
    const code = errnoOf(cause);
    if (code === 'ENOENT') return;
    if (code !== 'EBUSY' && code !== 'ENOTEMPTY') throw cgroupError(context, 'rmdir', entry.dir, cause);
  }
  const children = await readdir(entry.dir, { withFileTypes: true }).catch(() => []);
  await Promise.all(
    children.filter((d) => d.isDirectory()).map((d) => removeTree({ ...entry, dir: posix.join(entry.dir, d.name) }, context)),
  );
  const deadline = Date.now() + REMOVE_TIMEOUT_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      await rmdir(entry.dir);
      return;
    } catch (cause) {
      const code = errnoOf(cause);
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || Date.now() > deadline) throw cgroupError(context, 'rmdir', entry.dir, cause);
    }
    await killMembers(entry);
    await sleep(Math.min(1 << attempt, 50));
  }
}

/** SIGKILLs every process in the cgroup (its own members only). */
async function killMembers(entry: CgroupRecord): Promise<void> {
  if (entry.version === 2) {
    // cgroup.kill (Linux 5.14) kills the whole subtree atomically, forks included.
    const ok = await writeCgroupFile(posix.join(entry.dir, 'cgroup.kill'), '1').then(
      () => true,
      () => false,
    );
    if (ok) return;
  }
  const procs = await readFile(posix.join(entry.dir, 'cgroup.procs'), 'utf8').catch(() => '');
  for (const pid of procs.split('\n').filter(Boolean).map(Number)) {
    if (!Number.isInteger(pid) || pid <= 0) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone already */
    }
  }
  if (entry.version === 1 && entry.controllers.includes('freezer')) {
    await writeCgroupFile(posix.join(entry.dir, 'freezer.state'), 'THAWED').catch(() => undefined);
  }
}

/**
 * The shim's option that removes the cgroups it put the container in once the
 * container has exited for good (it reports `cgroups-removed`), whoever made them.
 */
export const CGROUP_RMDIR_AT_EXIT = '--cgroup-rmdir-at-exit';

/**
 * The `run` arguments that have the helper's shim make the cgroups of `plan`
 * (`--cgroup-mkdir`, `--cgroup-write[-optional]`: off this process's thread, in
 * the op the container starts with anyway), and the set they make. Undefined for
 * a plan that needs this side's care: a v2 hierarchy (controllers enabled level
 * by level), a `cgroupParent` still to create, cpuset values to copy down, or a
 * limit with alternative files. Stats-only cgroups are not skipped there when
 * permission is lacking (rootless): the caller passes only plans it has seen made whole.
 * With `rmdirAtExit` the shim also removes them once the container has exited
 * (`--cgroup-rmdir-at-exit`; its `exited` line then says `cgroupsRemoved`), so that
 * `remove()` does not rmdir each hierarchy on this process's thread.
 */
export function shimCgroups(plan: CgroupPlan, options: { rmdirAtExit?: boolean } = {}): { set: CgroupSet; args: string[] } | undefined {
  const args: string[] = [];
  const entries: CgroupRecord[] = [];
  for (const p of plan.hierarchies) {
    if (p.hierarchy.version !== 1 || p.parentDir !== p.baseDir || p.copyCpuset) return undefined;
    args.push('--cgroup-mkdir', p.dir);
    for (const w of p.writes) {
      if (w.candidates.length !== 1) return undefined;
      const { file, value } = w.candidates[0]!;
      // A plan's directories are joined paths and its files plain names: no join (a dozen a launch) is needed.
      args.push(w.optional === true ? '--cgroup-write-optional' : '--cgroup-write', `${p.dir}/${file}`, value);
    }
    entries.push({ dir: p.dir, version: 1, controllers: [...p.controllers] });
  }
  if (options.rmdirAtExit === true && entries.length > 0) args.push(CGROUP_RMDIR_AT_EXIT);
  return { set: new CgroupSet(entries), args };
}

/**
 * Whether the shim may make the cgroups of `plan` before this process has seen
 * them made whole ({@link shimCgroups}'s callers wait for that): where
 * {@link CgroupSet.create} would skip a hierarchy of stats-only controllers it
 * may not write (and the shim would fail), that hierarchy's directory must be
 * writable here. A limit's hierarchy fails either way, so it is not looked at.
 */
export function shimMayMake(plan: CgroupPlan): boolean {
  return plan.hierarchies.every((p) => {
    if (p.optional.length < p.controllers.length) return true;
    try {
      accessSync(p.parentDir, fsConstants.W_OK | fsConstants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * The error {@link CgroupSet.create} would have thrown, for the shim's failure
 * (step `make cgroup`) at `path` with `errnoCode`, made while following `plan`.
 */
export function shimCgroupError(plan: CgroupPlan, context: string, path: string, errnoCode: string | undefined, helperError: Error): DocklessError {
  const cause = Object.assign(new Error(helperError.message, { cause: helperError }), { code: errnoCode ?? 'EIO' });
  for (const p of plan.hierarchies) {
    if (path === p.dir) return cgroupError(context, 'mkdir', path, cause);
    for (const w of p.writes) {
      const { file, value } = w.candidates[0]!;
      if (`${p.dir}/${file}` !== path) continue;
      if (cause.code === 'ENOENT') {
        return new NotFoundError(`${context}: ${w.field} is not supported here: no \`${path}\``, { cause, path });
      }
      const busy = cause.code === 'EBUSY' ? ': the container uses more memory than that and the kernel could not reclaim it' : '';
      return cgroupError(context, `write \`${value}\` to`, path, cause, ` (${w.field}${busy})`);
    }
  }
  return cgroupError(context, 'make cgroup', path, cause);
}
