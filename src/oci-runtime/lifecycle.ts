/**
 * The container lifecycle of dockless-runtime, runc's model: `create` leaves
 * pid 1 set up and blocked on the start FIFO, its helper gone (so pid 1 is the
 * caller's subreaper's child); `start` opens the gate; `kill`, `delete`,
 * `pause`, `resume`, `state`, `list`, `ps` act on the process and cgroups the
 * state directory names. The run plan is the library's (run-args.ts), made
 * from config.json by translate.ts.
 *
 * @module
 */

import { execFile } from 'node:child_process';
import { constants as fsConstants, existsSync, readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { mkdir, open, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { promisify } from 'node:util';
import { AlreadyExistsError, InvalidArgumentError, InvalidStateError, NotFoundError, UnsupportedError } from '../errors.js';
import { sealedHelperPath, spawnHelper, type HelperProcess } from '../helper/index.js';
import {
  CgroupSet,
  cgroupPids,
  cgroupfsPlan,
  deviceCgroupWrites,
  detectCgroupMounts,
  detectCgroups,
  nativeSeccompArch,
  planCgroups,
  runArgs,
  setFrozen,
  type CgroupPlan,
  type HelperMount,
  type RunPlan,
} from '../runtime/index.js';
import { parseJsonObject, processStartTime } from '../util/index.js';
import type { OciConfig } from './config.js';
import { createHookArgs, runHooks, runHooksInContainer } from './hooks.js';
import { listIds, ociPaths, readRecord, stateOf, statusOf, writeRecord, type OciRecord, type OciState } from './state.js';
import { translateConfig, type OciHost, type OciPlan } from './translate.js';

/** Options every command gets from the global flags. */
export interface GlobalOptions {
  /** The state root (`--root`). */
  root: string;
}

/** Options of {@link createContainer}. */
export interface CreateOptions extends GlobalOptions {
  /** The bundle directory. @default the current directory */
  bundle?: string;
  /** The OCI console socket, for `process.terminal`. */
  consoleSocket?: string;
  /** Where to write pid 1's host pid. */
  pidFile?: string;
  /** Keep the caller's session keyring. */
  noNewKeyring?: boolean;
}

/** The host facts of this process, for the translation. */
export function thisHost(): OciHost {
  const mask = process.umask();
  return { uid: process.getuid?.() ?? 0, umask: mask, arch: nativeSeccompArch(), nestedUserns: inNestedUserns() };
}

let nested: boolean | undefined;

/** Whether this process runs in a user namespace other than the host's (whose uid_map maps every id to itself). */
export function inNestedUserns(): boolean {
  if (nested === undefined) {
    try {
      nested = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/).join(' ') !== '0 0 4294967295';
    } catch {
      nested = false;
    }
  }
  return nested;
}

/** Reads and translates a bundle's config.json. */
export async function loadBundle(bundleDir: string): Promise<{ config: OciConfig; plan: OciPlan; text: string }> {
  const path = resolve(bundleDir, 'config.json');
  const text = await readFile(path, 'utf8');
  const config = parseJsonObject<OciConfig>(text, 'config.json', { path });
  return { config, plan: translateConfig(config, resolve(bundleDir), thisHost()), text };
}

/** The cgroup (below the caller's own) of containers whose config names no cgroupsPath. */
const DEFAULT_CGROUP_PARENT = 'dockless-runtime';

async function makeCgroups(plan: OciPlan, id: string): Promise<[CgroupSet, CgroupPlan]> {
  const host = detectCgroups();
  const path = plan.cgroupsPath ?? `${DEFAULT_CGROUP_PARENT}/${id}`;
  const parent = dirname(path) === '.' ? undefined : dirname(path);
  const rootless = (process.getuid?.() ?? 0) !== 0 || inNestedUserns();
  const devices = rootless || plan.deviceRules === undefined ? undefined : deviceCgroupWrites(plan.deviceRules);
  const cgroupPlan = planCgroups(plan.resources, host, basename(path), parent, devices);
  return [await CgroupSet.create(cgroupPlan, `create container ${id}`), cgroupPlan];
}

function helperMounts(plan: OciPlan, cgroups: CgroupSet): { mounts: HelperMount[]; symlinks: [string, string][]; readonlyPaths: string[] } {
  const mounts: HelperMount[] = [];
  const symlinks: [string, string][] = [...plan.symlinks];
  const readonlyPaths = [...plan.readonlyPaths];
  for (const m of plan.mounts) {
    if (!('cgroupfs' in m)) {
      mounts.push(m);
      continue;
    }
    const callerCgroups = detectCgroups().hierarchies;
    const fs = cgroupfsPlan({
      hostMounts: detectCgroupMounts(),
      cgroups: cgroups.entries,
      callerCgroups,
      userns: plan.userns !== undefined || inNestedUserns(),
      readonly: m.readonly,
    });
    // Root of a user namespace not the host's mounts cgroup2 only in a cgroup namespace of its own: else the caller's v2 cgroup is bound.
    const v2 = [...cgroups.entries, ...callerCgroups].find((c) => c.version === 2)?.dir;
    const bindV2 = plan.userns === undefined && inNestedUserns() && !plan.namespaces.includes('cgroup');
    for (const mount of fs.mounts) {
      if (!bindV2 || mount.type !== 'cgroup2') mounts.push(mount);
      else if (v2 !== undefined) mounts.push({ ...mount, type: 'bind', source: v2, options: ['rbind', ...mount.options] });
    }
    symlinks.push(...fs.symlinks.map(([t, p]) => [t, p] as [string, string]));
    readonlyPaths.push(...fs.readonlyPaths);
  }
  return { mounts, symlinks, readonlyPaths };
}

/** What {@link launch} leaves: the record, and for a foreground `run` the helper that waits. */
interface Launched {
  record: OciRecord;
  helper: HelperProcess;
}

async function launch(id: string, options: CreateOptions, detach: boolean): Promise<Launched> {
  const bundle = resolve(options.bundle ?? '.');
  const { config, plan, text } = await loadBundle(bundle);
  if (plan.process.terminal && options.consoleSocket === undefined) {
    throw new InvalidArgumentError('`process.terminal` needs `--console-socket`');
  }
  if (!plan.process.terminal && options.consoleSocket !== undefined) {
    throw new InvalidArgumentError('`--console-socket` needs `process.terminal`');
  }
  const paths = ociPaths(options.root, id);
  // Searchable (not listable): in a user namespace, the container's root assembles its
  // rootfs on paths.target as an id the host does not know. What is secret is 0600.
  await mkdir(options.root, { recursive: true, mode: 0o711 });
  try {
    await mkdir(paths.dir, { mode: 0o711 });
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'EEXIST') throw new AlreadyExistsError(`container \`${id}\` already exists`, { cause, path: paths.dir });
    throw cause;
  }
  let cgroups: CgroupSet | undefined;
  let pid1 = 0;
  let made: OciRecord | undefined;
  try {
    await Promise.all([mkdir(paths.target, { mode: 0o755 }), writeFile(paths.config, text, { mode: 0o600 })]);
    const record: OciRecord = {
      id,
      bundle,
      rootfs: plan.rootfs,
      pid: 0,
      pidStart: 0,
      created: new Date().toISOString(),
      owner: process.getuid?.() ?? 0,
      annotations: config.annotations ?? {},
      cgroups: [],
      namespaces: [...plan.namespaces, ...plan.joins.map(([t]) => t)].filter((n) => n !== 'user'),
      userns: plan.userns !== undefined || plan.joins.some(([t]) => t === 'user'),
      hooks: (['startContainer', 'poststart', 'poststop'] as const).filter((h) => plan.hooks[h].length > 0),
    };
    await writeRecord(options.root, record);
    made = record;
    let cgroupPlan: CgroupPlan;
    [cgroups, cgroupPlan] = await makeCgroups(plan, id);
    record.cgroups = [...cgroups.entries];
    // What `update` starts from.
    record.cgroupPlan = cgroupPlan;
    record.resources = plan.resources;
    const { mounts, symlinks, readonlyPaths } = helperMounts(plan, cgroups);
    const p = plan.process;
    const run: RunPlan = {
      id,
      target: paths.target,
      lowers: [plan.rootfs],
      namespaces: plan.namespaces,
      joins: plan.joins,
      ...(plan.hostname !== undefined ? { hostname: plan.hostname } : {}),
      mounts,
      devices: plan.devices,
      symlinks,
      masked: plan.masked,
      readonlyPaths,
      readonlyRootfs: plan.readonlyRootfs,
      cwd: p.cwd,
      user: p.user,
      env: p.env,
      init: false,
      caps: p.caps,
      noNewPrivileges: p.noNewPrivileges,
      ...(plan.seccomp !== undefined ? { seccomp: plan.seccomp } : {}),
      rlimits: p.rlimits,
      startFifo: paths.fifo,
      cgroups: cgroups.dirs,
      ...(plan.userns !== undefined ? { userns: plan.userns } : {}),
      ...(detach ? { detach: true } : {}),
      ...(options.consoleSocket !== undefined ? { console: { socket: options.consoleSocket, ...(p.consoleSize ?? {}) } } : {}),
      sysctls: plan.sysctls,
      cmd: p.cmd,
    };
    const args = runArgs(run);
    if (options.noNewKeyring === true) args.splice(args.indexOf('--'), 0, '--no-new-keyring');
    const { prestart, createRuntime, createContainer } = plan.hooks;
    const hooked = prestart.length + createRuntime.length + createContainer.length > 0;
    const inputs = plan.seccomp !== undefined ? [plan.seccomp] : [];
    // The control pipe comes after the inputs and the arguments' descriptor (spawnHelper's layout).
    if (hooked) args.splice(args.indexOf('--'), 0, ...createHookArgs(createContainer, 4 + inputs.length + 1));
    const helper = spawnHelper('run', args, {
      stdio: [0, 1, 2],
      context: `create container ${id}`,
      inputs,
      ...(hooked ? { control: true } : {}),
      helperPath: await sealedHelperPath(),
    });
    const { pid } = await helper.next('pid');
    pid1 = pid;
    record.pid = pid;
    record.pidStart = processStartTime(pid) ?? 0;
    if (hooked) {
      // pid 1 waits here with its mounts made, before pivot_root: the runtime-spec's point for both kinds.
      await helper.next('hooks');
      const state: OciState = { ...stateOf(record, paths), status: 'creating' };
      await runHooks(prestart, 'prestart', state);
      await runHooks(createRuntime, 'createRuntime', state);
      helper.control!.end(JSON.stringify(state));
    }
    await helper.next('created');
    if (p.oomScoreAdj !== undefined) await writeFile(`/proc/${pid}/oom_score_adj`, String(p.oomScoreAdj));
    await writeRecord(options.root, record);
    if (options.pidFile !== undefined) await writeFile(resolve(options.pidFile), String(pid));
    return { record, helper };
  } catch (error) {
    if (pid1 > 0) killQuietly(pid1, 'SIGKILL');
    await cgroups?.remove().catch(() => undefined);
    const stopped = made !== undefined && pid1 > 0 ? { ...stateOf(made, paths), status: 'stopped' as const, pid: 0 } : undefined;
    await rm(paths.dir, { recursive: true, force: true });
    // The runtime-spec: a container whose create failed once it existed is destroyed, then its poststop hooks run.
    if (stopped !== undefined) await runHooks(plan.hooks.poststop, 'poststop', stopped, warning);
    throw error;
  }
}

/** The runtime-spec's "log a warning": a failed poststart or poststop hook, and the lifecycle goes on. */
function warning(message: string): void {
  process.stderr.write(`dockless-runtime: warning: ${message}\n`);
}

function killQuietly(pid: number, signal: NodeJS.Signals | number): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

/**
 * `create`: sets the container up and leaves pid 1 waiting for `start`.
 *
 * @throws {@link UnsupportedError} for a config field dockless cannot honour.
 * @throws {@link AlreadyExistsError} when the id is taken.
 */
export async function createContainer(id: string, options: CreateOptions): Promise<void> {
  const { helper } = await launch(id, options, true);
  const exit = await helper.exit;
  if (exit.exitCode !== 0) throw helper.failure ?? new InvalidStateError(`create container ${id}: the helper exited ${exit.exitCode ?? exit.signal}`);
}

/**
 * `start`: lets a created container's process run.
 *
 * @throws {@link InvalidStateError} unless the container is `created`.
 */
export async function startContainer(id: string, options: GlobalOptions): Promise<void> {
  const record = await readRecord(options.root, id);
  const paths = ociPaths(options.root, id);
  const status = statusOf(record, paths);
  if (status !== 'created') throw new InvalidStateError(`start container ${id}: the container is ${status}, not created`);
  const { plan } = await loadBundleFrom(paths.config, record.bundle);
  await runHooksInContainer(plan.hooks.startContainer, 'startContainer', stateOf(record, paths), record).catch((error: unknown) => {
    // The runtime-spec: a failed startContainer hook stops the container (its `delete` then runs poststop).
    killQuietly(record.pid, 'SIGKILL');
    throw error;
  });
  // O_NONBLOCK: pid 1 holds the FIFO open for reading, so this opens at once; if it died meanwhile, ENXIO.
  const fifo = await open(paths.fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
  try {
    await fifo.write(Buffer.from('1'));
  } finally {
    await fifo.close();
  }
  await rm(paths.fifo, { force: true });
  await runHooks(plan.hooks.poststart, 'poststart', stateOf(record, paths), warning);
}

async function loadBundleFrom(configPath: string, bundle: string): Promise<{ plan: OciPlan }> {
  const text = await readFile(configPath, 'utf8');
  return { plan: translateConfig(parseJsonObject<OciConfig>(text, 'config.json', { path: configPath }), bundle, thisHost()) };
}

const FORWARDED: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

/** Options of {@link runContainer}. */
export interface RunOptions extends CreateOptions {
  /** Return once the container runs (its process left to the caller's subreaper). */
  detach?: boolean;
}

/**
 * `run`: create and start; in the foreground, wait for the process and return its exit code.
 */
export async function runContainer(id: string, options: RunOptions): Promise<number> {
  if (options.detach === true) {
    await createContainer(id, options);
    await startContainer(id, options);
    return 0;
  }
  const { helper, record } = await launch(id, options, false);
  // As runc run: signals to this process go to the container's process.
  const forward = (signal: NodeJS.Signals) => killQuietly(record.pid, signal);
  for (const signal of FORWARDED) process.on(signal, forward);
  await startContainer(id, options);
  const exited = await helper.next('exited').finally(() => {
    for (const signal of FORWARDED) process.off(signal, forward);
  });
  await deleteContainer(id, { ...options, force: true });
  return exited.code;
}

/** The runtime-spec state of container `id`. */
export async function containerState(id: string, options: GlobalOptions): Promise<OciState> {
  return stateOf(await readRecord(options.root, id), ociPaths(options.root, id));
}

/** Signal numbers of the names `kill` takes (with or without `SIG`). */
export function parseSignal(value: string): NodeJS.Signals | number {
  if (/^\d+$/.test(value)) return Number(value);
  const name = (value.toUpperCase().startsWith('SIG') ? value.toUpperCase() : `SIG${value.toUpperCase()}`) as NodeJS.Signals;
  if (!(name in osConstants.signals)) throw new InvalidArgumentError(`unknown signal \`${value}\``);
  return name;
}

/**
 * `kill`: sends a signal to pid 1, or with `all` to every process of the container's cgroup.
 *
 * @throws {@link InvalidStateError} when the container is stopped.
 */
export async function killContainer(id: string, signal: string, options: GlobalOptions & { all?: boolean }): Promise<void> {
  const record = await readRecord(options.root, id);
  const paths = ociPaths(options.root, id);
  const status = statusOf(record, paths);
  const sig = parseSignal(signal);
  if (status === 'stopped' || status === 'creating') throw new InvalidStateError(`kill container ${id}: the container is ${status}`);
  if (options.all === true) {
    for (const pid of (await cgroupPids(record.cgroups)) ?? [record.pid]) killQuietly(pid, sig);
    return;
  }
  process.kill(record.pid, sig);
}

/**
 * `delete`: removes a stopped (or, with `force`, any) container's state and cgroups, then runs `poststop`.
 *
 * @throws {@link InvalidStateError} for a running container without `force`.
 */
export async function deleteContainer(id: string, options: GlobalOptions & { force?: boolean }): Promise<void> {
  const paths = ociPaths(options.root, id);
  let record: OciRecord;
  try {
    record = await readRecord(options.root, id);
  } catch (error) {
    // runc's rule: forcing the deletion of a container that is gone already is no error.
    if (error instanceof NotFoundError && options.force === true) return;
    throw error;
  }
  const status = statusOf(record, paths);
  if ((status === 'running' || status === 'paused') && options.force !== true) {
    throw new InvalidStateError(`delete container ${id}: the container is ${status}; stop it first or use --force`);
  }
  if (status !== 'stopped' && record.pid > 0) {
    for (const pid of (await cgroupPids(record.cgroups)) ?? []) killQuietly(pid, 'SIGKILL');
    killQuietly(record.pid, 'SIGKILL');
    const deadline = Date.now() + 10_000;
    while (isStillThere(record) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }
  let poststop: OciPlan['hooks']['poststop'] = [];
  if (existsSync(paths.config)) poststop = (await loadBundleFrom(paths.config, record.bundle).catch(() => undefined))?.plan.hooks.poststop ?? [];
  await new CgroupSet(record.cgroups).remove(`delete container ${id}`);
  // The default parent goes with its last container; a busy one stays (EBUSY, ENOTEMPTY).
  for (const c of record.cgroups) if (basename(dirname(c.dir)) === DEFAULT_CGROUP_PARENT) await rmdir(dirname(c.dir)).catch(() => undefined);
  const state = { ...stateOf(record, paths), status: 'stopped' as const, pid: 0 };
  await rm(paths.dir, { recursive: true, force: true });
  await runHooks(poststop, 'poststop', state, warning);
}

function isStillThere(record: OciRecord): boolean {
  return statusOf(record, { dir: '', state: '', nativeState: '', config: '', fifo: '/nonexistent', target: '' }) !== 'stopped';
}

/** `pause` / `resume`: freezes or thaws the container's cgroup. */
export async function freezeContainer(id: string, frozen: boolean, options: GlobalOptions): Promise<void> {
  const record = await readRecord(options.root, id);
  const status = statusOf(record, ociPaths(options.root, id));
  const want = frozen ? 'running' : 'paused';
  if (status !== want) throw new InvalidStateError(`${frozen ? 'pause' : 'resume'} container ${id}: the container is ${status}, not ${want}`);
  await setFrozen(record.cgroups, frozen, `${frozen ? 'pause' : 'resume'} container ${id}`);
}

/** Every container's state. */
export async function listContainers(options: GlobalOptions): Promise<OciState[]> {
  const states: OciState[] = [];
  for (const id of await listIds(options.root)) {
    const record = await readRecord(options.root, id).catch(() => undefined);
    if (record !== undefined) states.push(stateOf(record, ociPaths(options.root, id)));
  }
  return states;
}

/** The host pids of the container's processes. */
export async function containerPids(id: string, options: GlobalOptions): Promise<number[]> {
  const record = await readRecord(options.root, id);
  if (statusOf(record, ociPaths(options.root, id)) === 'stopped') return [];
  return (await cgroupPids(record.cgroups)) ?? [record.pid];
}

/** `ps`'s table: `ps` (with `psArgs`, default `-ef`) of the host, only the container's processes. */
export async function psTable(pids: readonly number[], psArgs: readonly string[]): Promise<string> {
  const { stdout } = await promisify(execFile)('ps', psArgs.length > 0 ? [...psArgs] : ['-ef']);
  const lines = stdout.split('\n');
  const header = lines[0] ?? '';
  const column = header.trim().split(/\s+/).indexOf('PID');
  if (column < 0) throw new InvalidArgumentError('ps: its output has no PID column');
  const set = new Set(pids);
  const kept = lines.slice(1).filter((line) => set.has(Number(line.trim().split(/\s+/)[column])));
  return [header, ...kept].join('\n') + '\n';
}

/** `events`, `checkpoint` and `restore` are not implemented: a clear error rather than a silent no-op. */
export function notImplemented(command: string): never {
  throw new UnsupportedError(`\`${command}\` is not supported by dockless-runtime yet`, { field: command });
}
