/**
 * Restarting a container in place, as `docker restart`: the same id, name,
 * upper directory, mounts, network place and published ports, with a new
 * shim, new namespaces and its cgroups made afresh. What the launch decided
 * is kept in `config.json`'s `launch` (owner-only: it holds the environment), so that
 * any process that can read it, later, starts the same container again
 * without the spec or the image store.
 *
 * @module
 */

import { rm } from 'node:fs/promises';
import createDebug from 'debug';
import { InvalidStateError } from '../errors.js';
import { runHelperOp, sealedHelperPath, spawnHelper, type HelperProcess } from '../helper/index.js';
import { lowerDirUsable } from '../store/index.js';
import { isoTime, processStartTime } from '../util/index.js';
import { CgroupSet } from './cgroups/cgroup-set.js';
import type { CgroupPlan } from './cgroups/policy.js';
import { endRecordedHelper, Forwarder } from './forwarder.js';
import type { NetworkAttacher } from './network-attach.js';
import { checkHolders, type NamespaceHolder } from './network-mode.js';
import { forwardTarget, openStartGate, type PublishPlan } from './publish.js';
import { linkArgs, runArgs, type RunPlan } from './run-args.js';
import { seccompText } from './security.js';
import { readJson, writeJsonAtomic, type ContainerConfigRecord, type ContainerPaths, type ContainerRecord } from './state.js';

const debug = createDebug('dockless:runtime');

/** What `launch.json` holds: the helper's `run` plan and what was made around it, as decided at creation. */
export interface LaunchRecord {
  version: 1;
  /**
   * The plan, without what belongs to one start (its gate, its owner, its cgroup directories and their making,
   * its state directory and launch events, which exist by then); binary fields as text.
   */
  plan: Omit<RunPlan, 'seccomp' | 'caps' | 'startFifo' | 'dieWithParent' | 'reportNetns' | 'cgroups' | 'cgroupSteps' | 'files' | 'dirs' | 'state'> & { seccomp?: string; caps?: string };
  /** The cgroups to make again, with their limits. */
  cgroups: CgroupPlan;
  /** The published ports (as first bound: a host port 0 keeps the port the kernel chose) and outbound access. */
  publish?: PublishPlan;
  /** The processes whose namespaces it joins (a pod's holder, another container): they must still be the same. */
  holders: NamespaceHolder[];
}

/**
 * `config.json` as a launch writes it: the config record with the launch record
 * in it, one file where there were two (`launch.json` beside it), each an inode
 * made and freed per container (see etc-targets.ts for what that costs).
 */
export type LaunchedConfigRecord = ContainerConfigRecord & { launch?: LaunchRecord };

/**
 * The config and launch records of the container at `paths`: the launch record
 * from `config.json`, or from the `launch.json` of a container made before the
 * two were one file. Either is `undefined` when missing or unreadable.
 */
export async function readLaunchRecords(paths: ContainerPaths): Promise<{ config: LaunchedConfigRecord | undefined; launch: LaunchRecord | undefined }> {
  const config = await readJson<LaunchedConfigRecord>(paths.config);
  return { config, launch: config?.launch ?? (await readJson<LaunchRecord>(paths.launch)) };
}

/** The record of a launch's decisions, for {@link relaunch}. */
export function launchRecord(plan: RunPlan, cgroups: CgroupPlan, publish: PublishPlan | undefined, holders: readonly NamespaceHolder[]): LaunchRecord {
  const { seccomp, caps, startFifo: _gate, dieWithParent: _owner, reportNetns: _netns, cgroups: _dirs, oomFile: _oom, cgroupSteps: _made, files: _written, dirs: _dirs2, state: _state, ...rest } = plan;
  const { launch: _announced, ...events } = rest.events ?? {};
  return {
    version: 1,
    plan: {
      ...rest,
      ...(rest.events !== undefined ? { events: events as NonNullable<RunPlan['events']> } : {}),
      ...(seccomp !== undefined ? { seccomp: seccompText(seccomp) } : {}),
      ...(caps !== undefined ? { caps: caps.toString(16) } : {}),
    },
    cgroups,
    ...(publish !== undefined ? { publish } : {}),
    holders: [...holders],
  };
}

/**
 * The run plan a launch record holds, binary fields decoded: the plan
 * {@link launchRecord} was given, without what belongs to one start.
 */
export function savedPlan(launch: LaunchRecord): RunPlan {
  const { seccomp, caps, ...saved } = launch.plan;
  return {
    ...saved,
    ...(seccomp !== undefined ? { seccomp: Buffer.from(seccomp, 'base64') } : {}),
    ...(caps !== undefined ? { caps: BigInt(`0x${caps}`) } : {}),
  };
}

/** Where {@link relaunch} runs: the runtime's helper, this process's start time, and its networks. */
export interface RelaunchScope {
  helperPath: string | undefined;
  ownerStart: number;
  networks?: NetworkAttacher | undefined;
}

/**
 * Starts a stopped container again from its launch record. The caller has
 * seen it stopped (its shim gone). This process becomes its owner: without
 * `detached` the container now dies with it.
 *
 * @returns the new record (written) and the new shim.
 * @throws {@link InvalidStateError} when the container has no launch record
 *   (made by an older version, or not readable by this user), or a pod or
 *   container whose namespaces it joins is gone, or an image layer it stacks was
 *   caught unflushed by a reboot (see {@link lowerDirUsable}).
 * @throws {@link HelperError} and the errors of a launch when a step fails; the
 *   container is then stopped again, with its cgroups remade and empty.
 */
export async function relaunch(
  record: ContainerRecord,
  paths: ContainerPaths,
  scope: RelaunchScope,
  context: string,
): Promise<{ record: ContainerRecord; helper: HelperProcess }> {
  const { launch } = await readLaunchRecords(paths);
  if (launch === undefined) throw new InvalidStateError(`${context}: container has no launch record (made by an older dockless, or by another user)`);
  checkHolders(launch.holders);
  // Checked before anything of the last run is undone, so that a refusal leaves the container as it was.
  const lost = launch.plan.lowers.find((lower) => !lowerDirUsable(lower));
  if (lost !== undefined) {
    throw new InvalidStateError(
      `${context}: its image layer \`${lost}\` was not flushed to disk before the machine rebooted; remove the container and create it again`,
    );
  }
  await endRecordedHelper(record.forwarder);
  await new CgroupSet(record.cgroups ?? []).remove(context);
  // A new run starts with no exit status and, as with Docker, its health `starting` again.
  await Promise.all([rm(paths.exit, { force: true }), rm(paths.fifo, { force: true }), rm(paths.health, { force: true })]);

  const detached = record.detached;
  const publish = launch.publish !== undefined ? { ...launch.publish, ports: record.ports ?? launch.publish.ports } : undefined;
  // Every network it is on now, not only the one it was created on: `network.connect()` may have added others, or taken that one.
  const relink = await scope.networks?.relink?.(record.id);
  const { io, link: savedLink, ...saved } = savedPlan(launch);
  const links = relink !== undefined ? relink.links : savedLink !== undefined ? [savedLink] : [];
  const enter = relink?.enter;
  // `run` wires one link itself; the others (rootless: all) are wired before the workload is let go.
  const first = enter === undefined ? links[0] : undefined;
  const later = first !== undefined ? links.slice(1) : links;
  const reportNetns = publish !== undefined || (enter !== undefined && later.length > 0);
  const gated = publish?.outbound === true || later.length > 0;
  const into = enter !== undefined ? ['--in-userns', `/proc/${enter.pid}/ns/user`, '--in-netns', `/proc/${enter.pid}/ns/net`] : [];
  const netOp = (args: string[]) => runHelperOp('net', [args[0]!, ...into, ...args.slice(1)], { context, ...(scope.helperPath !== undefined ? { helperPath: scope.helperPath } : {}) });
  // The kernel ends the last run's network namespace, and the host ends of its veths, some time after its processes: an end left would be EEXIST.
  for (const link of links) await netOp(['delete', '--name', link.host]);
  let cgroups: CgroupSet | undefined;
  let forwarder: Forwarder | undefined;
  let helper: HelperProcess | undefined;
  try {
    cgroups = await CgroupSet.create(launch.cgroups, context);
    if (publish !== undefined) {
      forwarder = await Forwarder.bind({ ports: publish.ports, detached, context, ...(scope.helperPath !== undefined ? { helperPath: scope.helperPath } : {}) });
    }
    const plan: RunPlan = {
      ...saved,
      ...(first !== undefined ? { link: first } : {}),
      // Nobody is attached to a restarted container: its output is in its log, as with Docker.
      ...(io !== undefined ? { io: { ...io, live: false, stdinRelay: false } } : {}),
      cgroups: cgroups.dirs,
      ...(cgroups.oomFile !== undefined ? { oomFile: cgroups.oomFile } : {}),
      ...(gated ? { startFifo: paths.fifo } : {}),
      ...(reportNetns ? { reportNetns: true } : {}),
      ...(detached ? {} : { dieWithParent: process.pid }),
    };
    helper = spawnHelper('run', runArgs(plan), {
      stdio: ['ignore', 'ignore', 'ignore'],
      detached,
      context,
      ...(plan.seccomp !== undefined ? { inputs: [plan.seccomp] } : {}),
      helperPath: await sealedHelperPath(scope.helperPath),
    });
    const { pid } = await helper.next('pid');
    const pidStart = processStartTime(pid) ?? 0;
    const ns = reportNetns ? await helper.next('netns') : undefined;
    for (const link of later) await netOp(['veth', '--netns', ns?.net ?? `/proc/${pid}/ns/net`, ...linkArgs(link)]);
    if (forwarder !== undefined) await forwarder.attach(forwardTarget(publish!, pid, pidStart, ns!));
    if (gated) await openStartGate(paths.fifo);
    const { forwarder: _old, ...kept } = record;
    const next: ContainerRecord = {
      ...kept,
      pid,
      pidStart,
      ownerPid: process.pid,
      ownerStart: scope.ownerStart,
      started: isoTime(),
      ...(cgroups.entries.length > 0 ? { cgroups: [...cgroups.entries] } : {}),
      ...(forwarder !== undefined ? { ports: [...forwarder.ports], forwarder: forwarder.record } : {}),
    };
    await writeJsonAtomic(paths.record, next);
    await helper.next('started');
    if (detached) helper.unref();
    return { record: next, helper };
  } catch (error) {
    helper?.child.kill('SIGKILL');
    const undone = await Promise.allSettled([helper?.exit, forwarder?.kill()]);
    await cgroups?.remove(context).catch((e: unknown) => debug('%s: %s', context, String(e)));
    for (const r of undone) if (r.status === 'rejected') debug('%s: cleanup: %s', context, String(r.reason));
    throw error;
  }
}
