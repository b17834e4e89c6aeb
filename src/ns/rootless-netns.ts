/**
 * A rootless user's network namespace (podman's "rootless netns"): one per
 * state directory, held by the helper's `pause` op with a user namespace of
 * the caller's subordinate ids, detached (it lives as long as the user has
 * networks, not as long as one process). It holds the Linux bridges and the
 * nftables table of that user's networks; its outbound access is slirp4netns
 * or pasta, kept by a `forward` op with no port, as a rootless container's
 * own. Containers on those networks join its user namespace and make their
 * own network namespace in it, so that the helper, entered there as root of
 * that user namespace, may move a veth end into theirs.
 *
 * Its record, `networks/rootless-netns` in the state directory, names the
 * holder by pid and start time, so any process of the user finds it again,
 * and a dead one is never mistaken for it. Every function here runs under
 * the networks' lock.
 *
 * @module
 */

import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import createDebug from 'debug';
import { IOError, UnavailableError } from '../errors.js';
import { sealedHelperPath, spawnHelper } from '../helper/index.js';
import {
  endRecordedHelper,
  Forwarder,
  outboundArgv,
  usernsArgs,
  writeJsonAtomic,
  type HelperPidRecord,
  type RootlessOutbound,
  type UsernsPlan,
  type UsernsRecord,
} from '../runtime/index.js';
import { isProcessAlive, processStartTime } from '../util/index.js';

const debug = createDebug('dockless:network');

/** The record of a rootless user's network namespace. */
export interface RootlessNetnsRecord {
  version: 1;
  /** The holder: its `/proc/PID/ns/{user,net}` are the namespaces. */
  pid: number;
  /** The holder's start time, so that a reused pid is never taken for it. */
  pidStart: number;
  /** The `pause` process that made it (the holder dies with it). */
  keeperPid: number;
  /** The keeper's start time. */
  keeperStart: number;
  /** The user namespace's maps, which containers joining it take. */
  userns: UsernsRecord;
  /** The outbound helper's keeper (a `forward` op). */
  forwarder?: HelperPidRecord;
}

/** What making the namespace needs of the runtime. */
export interface RootlessNetnsSetup {
  /** The caller's user namespace plan (its subordinate ids). */
  userns: UsernsPlan;
  /** Which outbound helper. */
  outbound: RootlessOutbound;
  /** The native helper. */
  helperPath?: string;
}

/** The namespace, found alive or made; `fresh` when made by this call (its bridges are to be made again). */
export interface RootlessNetns {
  record: RootlessNetnsRecord;
  fresh: boolean;
}

const recordPath = (networksDir: string) => join(networksDir, 'rootless-netns');

/** The recorded namespace whose holder is alive, else undefined. */
export async function readRootlessNetns(networksDir: string): Promise<RootlessNetnsRecord | undefined> {
  const text = await readFile(recordPath(networksDir), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const record = JSON.parse(text) as RootlessNetnsRecord;
    return isProcessAlive(record.pid, record.pidStart) ? record : undefined;
  } catch {
    return undefined;
  }
}

/** The helper's `--in-userns`/`--in-netns` arguments that enter it. */
export function enterArgs(record: RootlessNetnsRecord): string[] {
  return ['--in-userns', `/proc/${record.pid}/ns/user`, '--in-netns', `/proc/${record.pid}/ns/net`];
}

/**
 * The user's network namespace: the recorded one if its holder lives, else
 * a new one (a dead one's leftovers ended first).
 *
 * @throws {@link UnavailableError} when neither slirp4netns nor pasta is installed (or `rootlessOutbound` is `'none'`), or fails.
 * @throws {@link HelperError} when the namespaces cannot be made; nothing is left then.
 */
export async function ensureRootlessNetns(networksDir: string, setup: RootlessNetnsSetup, context: string): Promise<RootlessNetns> {
  const alive = await readRootlessNetns(networksDir);
  if (alive !== undefined) return { record: alive, fresh: false };
  await stopRootlessNetns(networksDir);
  const outbound = outboundArgv(true, setup.outbound);
  if (outbound === undefined) {
    throw new UnavailableError(`${context}: a rootless network's outbound access needs slirp4netns or pasta (rootlessOutbound is '${setup.outbound}')`);
  }
  const helperPath = await sealedHelperPath(setup.helperPath);
  // Detached: the networks outlive the process that made the first one.
  const forwarder = await Forwarder.bind({ ports: [], detached: true, context, helperPath });
  const helper = spawnHelper('pause', ['--ns', 'net', ...usernsArgs(setup.userns)], {
    stdio: ['ignore', 'ignore', 'ignore'],
    detached: true,
    context,
    helperPath,
  });
  try {
    const { pid } = await helper.next('pid');
    const pidStart = processStartTime(pid) ?? 0;
    const keeperPid = helper.child.pid ?? 0;
    await forwarder.attach({ pid, pidStart, netns: `/proc/${pid}/ns/net`, userns: `/proc/${pid}/ns/user`, outbound });
    const record: RootlessNetnsRecord = {
      version: 1,
      pid,
      pidStart,
      keeperPid,
      keeperStart: processStartTime(keeperPid) ?? 0,
      userns: { uidMap: setup.userns.uidMap, gidMap: setup.userns.gidMap, rootless: true },
      forwarder: forwarder.record,
    };
    await writeJsonAtomic(recordPath(networksDir), record).catch((cause: NodeJS.ErrnoException) => {
      throw new IOError(`${context}: write \`${recordPath(networksDir)}\`: ${cause.code ?? String(cause)}`, { cause, path: recordPath(networksDir) });
    });
    helper.unref();
    debug('rootless network namespace made, holder pid %d', pid);
    return { record, fresh: true };
  } catch (error) {
    helper.child.kill('SIGKILL');
    await Promise.allSettled([helper.exit, forwarder.kill()]);
    throw error;
  }
}

/** Ends the user's network namespace (its holder, keeper and outbound helper) and removes its record; idempotent. */
export async function stopRootlessNetns(networksDir: string): Promise<void> {
  const text = await readFile(recordPath(networksDir), 'utf8').catch(() => undefined);
  if (text === undefined) return;
  let record: RootlessNetnsRecord | undefined;
  try {
    record = JSON.parse(text) as RootlessNetnsRecord;
  } catch {
    record = undefined;
  }
  if (record !== undefined) {
    await endRecordedHelper(record.forwarder);
    for (const [pid, start] of [[record.pid, record.pidStart], [record.keeperPid, record.keeperStart]] as const) {
      if (!isProcessAlive(pid, start)) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone meanwhile */
      }
    }
    const deadline = Date.now() + 5000;
    while ((isProcessAlive(record.pid, record.pidStart) || isProcessAlive(record.keeperPid, record.keeperStart)) && Date.now() < deadline) await sleep(5);
  }
  await rm(recordPath(networksDir), { force: true });
  debug('rootless network namespace ended');
}
