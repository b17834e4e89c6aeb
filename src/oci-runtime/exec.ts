/**
 * `exec`: a new process in a running container, through the helper's `exec`
 * op (the library's), with the process's settings translated as config.json's
 * `process` is, and the container's seccomp profile compiled for its capabilities.
 *
 * @module
 */

import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { InvalidArgumentError, InvalidStateError } from '../errors.js';
import { sealedHelperPath, spawnHelper } from '../helper/index.js';
import { ALL_CAPS, execArgs, type ExecPlan } from '../runtime/index.js';
import { parseJsonObject } from '../util/index.js';
import type { OciConfig, OciProcess } from './config.js';
import { thisHost, type GlobalOptions } from './lifecycle.js';
import { ociPaths, readRecord, statusOf } from './state.js';
import { translateProcess, translateSeccomp } from './translate.js';

/** Options of {@link execInContainer}. */
export interface ExecOptions extends GlobalOptions {
  /** A process.json (the runtime-spec `process` object); replaces the flags below. */
  process?: string;
  /** Allocate a terminal, sent over `consoleSocket`. */
  tty?: boolean;
  /** The OCI console socket. */
  consoleSocket?: string;
  /** Return once the process runs, leaving it to the caller's subreaper. */
  detach?: boolean;
  /** Where to write the process's host pid. */
  pidFile?: string;
  /** Working directory. */
  cwd?: string;
  /** `NAME=value` to add. */
  env?: string[];
  /** `UID[:GID]`. */
  user?: string;
  /** Capabilities to add to the container's bounding set. */
  cap?: string[];
  /** Supplementary groups. */
  additionalGids?: number[];
  /** Set no_new_privs. */
  noNewPrivs?: boolean;
}

async function processOf(args: readonly string[], options: ExecOptions, config: OciConfig): Promise<OciProcess> {
  if (options.process !== undefined) {
    const path = resolve(options.process);
    return parseJsonObject<OciProcess>(await readFile(path, 'utf8'), 'process.json', { path });
  }
  if (args.length === 0) throw new InvalidArgumentError('exec: a command is required (or --process)');
  const base = config.process;
  const [uid, gid] = (options.user ?? `${base?.user.uid ?? 0}:${base?.user.gid ?? 0}`).split(':');
  const caps = [...(base?.capabilities?.bounding ?? []), ...(options.cap ?? [])];
  const user = { uid: Number(uid), gid: Number(gid ?? 0), ...(options.additionalGids !== undefined ? { additionalGids: options.additionalGids } : {}) };
  return {
    args: [...args],
    env: [...(base?.env ?? []), ...(options.env ?? [])],
    cwd: options.cwd ?? base?.cwd ?? '/',
    user,
    terminal: options.tty === true,
    capabilities: user.uid === 0 ? { bounding: caps, effective: caps, permitted: caps } : { bounding: caps },
    noNewPrivileges: options.noNewPrivs ?? base?.noNewPrivileges ?? false,
  };
}

/**
 * Runs a process in container `id`: in the foreground its exit code, with `detach` 0 once it runs.
 *
 * @throws {@link InvalidStateError} unless the container is running.
 */
export async function execInContainer(id: string, args: readonly string[], options: ExecOptions): Promise<number> {
  const record = await readRecord(options.root, id);
  const paths = ociPaths(options.root, id);
  const status = statusOf(record, paths);
  if (status !== 'running' && status !== 'created') throw new InvalidStateError(`exec in container ${id}: the container is ${status}`);
  const configPath = paths.config;
  const config = parseJsonObject<OciConfig>(await readFile(configPath, 'utf8'), 'config.json', { path: configPath });
  const host = thisHost();
  const p = translateProcess(await processOf(args, options, config), host, options.process !== undefined ? 'process.json' : 'exec');
  if (p.terminal && options.consoleSocket === undefined) throw new InvalidArgumentError('exec: a terminal needs --console-socket');
  const capNames = Object.keys(ALL_CAPS).filter((n) => (p.caps >> BigInt(ALL_CAPS[n]!)) & 1n);
  const seccomp = config.linux?.seccomp !== undefined && config.linux.seccomp !== null ? translateSeccomp(config.linux.seccomp, host, capNames) : undefined;
  const plan: ExecPlan = {
    id,
    pid: record.pid,
    pidStart: record.pidStart,
    namespaces: record.namespaces,
    userns: record.userns,
    cgroups: record.cgroups.map((c) => c.dir),
    cwd: p.cwd,
    user: p.user,
    env: p.env,
    caps: p.caps,
    noNewPrivileges: p.noNewPrivileges,
    ...(seccomp !== undefined ? { seccomp } : {}),
    rlimits: p.rlimits,
    cmd: p.cmd,
    ...(options.detach === true ? { detach: true } : {}),
    ...(p.terminal ? { console: { socket: options.consoleSocket!, ...(p.consoleSize ?? {}) } } : {}),
  };
  const helper = spawnHelper('exec', execArgs(plan), {
    stdio: [0, 1, 2],
    context: `exec in container ${id}`,
    ...(seccomp !== undefined ? { inputs: [seccomp] } : {}),
    helperPath: await sealedHelperPath(),
  });
  const { pid } = await helper.next('pid');
  if (options.pidFile !== undefined) await writeFile(resolve(options.pidFile), String(pid));
  if (options.detach === true) {
    const exit = await helper.exit;
    if (exit.exitCode !== 0) throw helper.failure ?? new InvalidStateError(`exec in container ${id}: the helper exited ${exit.exitCode ?? exit.signal}`);
    return 0;
  }
  return (await helper.next('exited')).code;
}
