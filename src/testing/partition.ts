/**
 * Network partitions from the test: drop every packet a container (or a pod)
 * sends or receives on its network, loopback excepted, then heal it. The
 * rules are an nftables table of their own in the target's network namespace
 * (entered with `nsenter`), so nothing on the host changes and the rules
 * vanish with the namespace.
 *
 * @module
 */

import { execFile } from 'node:child_process';
import { readlink } from 'node:fs/promises';
import { InvalidArgumentError, NotFoundError, PermissionError, UnavailableError, type Container, type Namespace } from '../index.js';
import { StartedContainer } from './start.js';

/** What can be partitioned: a container (its network namespace: a pod member's is the whole pod's), or a pod. */
export type PartitionTarget = Container | StartedContainer | Namespace;

/** A partition in place; `heal()` (or `await using`) ends it. */
export interface Partition extends AsyncDisposable {
  /** Lets traffic through again. Healing twice is harmless. */
  heal(): Promise<void>;
}

const TABLE = 'dockless_partition';
const RULES = `table inet ${TABLE} {
  chain input { type filter hook input priority -400; policy accept; iifname != "lo" drop; }
  chain output { type filter hook output priority -400; policy accept; oifname != "lo" drop; }
}
`;

async function targetPid(target: PartitionTarget): Promise<number> {
  if (target instanceof StartedContainer) return target.container.pid;
  if ('pid' in target && typeof target.pid === 'number') return target.pid;
  return (await (target as Namespace).inspect()).pid;
}

function nft(pid: number, args: string[], input: string | undefined, joinUser: boolean, context: string): Promise<void> {
  const argv = ['--target', String(pid), '--net', ...(joinUser ? ['--user', '--preserve-credentials'] : []), 'nft', ...args];
  return new Promise((resolve, reject) => {
    const child = execFile('nsenter', argv, { timeout: 10_000 }, (error, _stdout, stderr) => {
      if (error === null) return resolve();
      const text = String(stderr).trim();
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return reject(new UnavailableError(`${context}: nsenter not found (util-linux)`, { cause: error }));
      if (/nft.*No such file|failed to execute nft/i.test(text)) return reject(new UnavailableError(`${context}: nft not found (Debian: apt-get install nftables)`, { cause: error }));
      if (/Operation not permitted|Permission denied/i.test(text)) return reject(new PermissionError(`${context}: nsenter --net: ${text}`, { cause: error }));
      reject(new UnavailableError(`${context}: nft ${args.join(' ')}: ${text || error.message}`, { cause: error }));
    });
    child.stdin?.end(input ?? '');
  });
}

/**
 * Partitions `target`: every packet to or from its network namespace, other
 * than loopback, is dropped (connections hang, as in a real partition, rather
 * than being refused), until `heal()`. Published ports stop answering too.
 * Needs `nsenter` (util-linux) and `nft` (nftables) on the host; as root for
 * any target, or rootless for the caller's own rootless containers.
 *
 * @throws `NotFoundError` (from `dockless`) when the target is not running.
 * @throws `InvalidArgumentError` (from `dockless`) when the target is in this process's network namespace (`network: 'host'`).
 * @throws `UnavailableError` (from `dockless`) when `nsenter` or `nft` is missing or fails.
 * @throws `PermissionError` (from `dockless`) when the caller may not enter the namespace.
 * @example
 * ```ts
 * await using cut = await partition(replica);
 * // … the primary sees the replica go silent …
 * await cut.heal();
 * ```
 */
export async function partition(target: PartitionTarget): Promise<Partition> {
  const pid = await targetPid(target);
  const context = `partition pid ${pid}`;
  const [theirs, mine] = await Promise.all([readlink(`/proc/${pid}/ns/user`).catch(() => undefined), readlink('/proc/self/ns/user').catch(() => undefined)]);
  if (pid <= 0 || theirs === undefined) throw new NotFoundError(`${context}: the target is not running`);
  // A container on `network: 'host'` is in this process's network namespace: the rules would cut the host off.
  const [theirNet, myNet] = await Promise.all([readlink(`/proc/${pid}/ns/net`).catch(() => undefined), readlink('/proc/self/ns/net').catch(() => undefined)]);
  if (theirNet !== undefined && theirNet === myNet) {
    throw new InvalidArgumentError(`${context}: the target shares this process's network namespace (network: 'host'); partitioning it would cut off the host`);
  }
  // Root acts in every namespace from the initial user namespace; a rootless caller first joins its container's.
  const joinUser = theirs !== mine && process.getuid?.() !== 0;
  await nft(pid, ['-f', '-'], RULES, joinUser, context);
  let healed = false;
  const heal = async () => {
    if (healed) return;
    healed = true;
    const alive = await readlink(`/proc/${pid}/ns/net`).then(() => true, () => false);
    if (alive) await nft(pid, ['delete', 'table', 'inet', TABLE], undefined, joinUser, `heal ${context}`);
  };
  return { heal, [Symbol.asyncDispose]: heal };
}
