/**
 * A container's processes as the host sees them (`container.top()`), read from
 * `/proc` without entering the container.
 *
 * @module
 */

import { readdir, readFile } from 'node:fs/promises';

/** One process of a container, as {@link Container.top} lists it. */
export interface ContainerProcess {
  /** Its pid on the host. */
  pid: number;
  /** Its parent's pid on the host. */
  ppid: number;
  /** Its pid inside the container's pid namespace, when the kernel reports it (`NSpid`, Linux 4.1). */
  containerPid?: number;
  /** Its real uid on the host (with a user namespace, the mapped id). */
  uid: number;
  /** Its real gid on the host (with a user namespace, the mapped id). */
  gid: number;
  /** Its state letter, as `ps` shows it (`S` sleeping, `R` running, `T` stopped, `Z` zombie…). */
  state: string;
  /** Its command line; for a kernel-side zombie, `[comm]`. */
  command: string[];
}

interface ProcStatus {
  ppid: number;
  uid: number;
  gid: number;
  state: string;
  nspid?: number;
  name: string;
}

async function readStatus(pid: number): Promise<ProcStatus | undefined> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim().split(/\s+/);
  const nspid = field('NSpid');
  return {
    ppid: Number(field('PPid')?.[0] ?? 0),
    uid: Number(field('Uid')?.[0] ?? -1),
    gid: Number(field('Gid')?.[0] ?? -1),
    state: field('State')?.[0] ?? '?',
    // The last NSpid is the pid in the innermost namespace: the container's.
    ...(nspid !== undefined && nspid.length > 1 ? { nspid: Number(nspid[nspid.length - 1]) } : {}),
    name: field('Name')?.join(' ') ?? '',
  };
}

/** The pids below `root` (itself included), by walking every process's parent. */
async function descendantsOf(root: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  for (const name of await readdir('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
    if (stat === undefined) continue;
    // The command name may hold spaces and parentheses: the fields start after the last `)`.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid) ?? [];
    list.push(pid);
    children.set(ppid, list);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/**
 * The processes of a container: those of its cgroup when it has one (`pids`),
 * else the process tree below its pid 1. Processes that end while they are read
 * are left out.
 */
export async function listProcesses(pid1: number, pids: number[] | undefined): Promise<ContainerProcess[]> {
  const all = pids ?? (await descendantsOf(pid1));
  const out: ContainerProcess[] = [];
  for (const pid of all) {
    const [status, cmdline] = await Promise.all([readStatus(pid), readFile(`/proc/${pid}/cmdline`).catch(() => undefined)]);
    if (status === undefined) continue;
    const argv = cmdline !== undefined && cmdline.length > 0 ? cmdline.toString('utf8').replace(/\0$/, '').split('\0') : [`[${status.name}]`];
    out.push({
      pid,
      ppid: status.ppid,
      ...(status.nspid !== undefined ? { containerPid: status.nspid } : {}),
      uid: status.uid,
      gid: status.gid,
      state: status.state,
      command: argv,
    });
  }
  return out.sort((a, b) => a.pid - b.pid);
}
