/**
 * `events`: the container's cgroup statistics in runc's JSON shape (one
 * `{"type":"stats","id":…,"data":{…}}` line; `--stats` prints one and exits,
 * otherwise one every `--interval` until the container stops, with an
 * `{"type":"oom"}` line whenever the kernel's OOM killer struck since the
 * last). Read from the v1 controllers' files or the unified hierarchy's.
 *
 * @module
 */

import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError, InvalidStateError } from '../errors.js';
import type { CgroupRecord } from '../runtime/index.js';
import { goDurationMs } from '../util/index.js';
import { ociPaths, readRecord, statusOf } from './state.js';
import type { GlobalOptions } from './lifecycle.js';

/**
 * A kernel counter: a number, or a bigint where it is above 2^53 (unlimited
 * limits read as 2^63 or 2^64 less a little), printed with all its digits.
 */
export type Counter = number | bigint;

/** One block device's figure (runc's `BlkioEntry`; zero fields are left out, as runc does). */
export interface RuncBlkioEntry {
  /** Device major number. */
  major?: number;
  /** Device minor number. */
  minor?: number;
  /** `Read`, `Write`, `Sync`, `Async`, `Discard`, `Total`. */
  op?: string;
  /** The figure. */
  value?: Counter;
}

/** Memory figures of one kind (runc's `MemoryEntry`). */
export interface RuncMemoryEntry {
  /** The limit in bytes (the kernel's "no limit" value when unlimited). */
  limit: Counter;
  /** In use now, bytes. */
  usage?: Counter;
  /** The most ever used, bytes. */
  max?: Counter;
  /** How many times the limit was hit. */
  failcnt: Counter;
}

/** What the `data` of a stats event holds (runc's `types.Stats`, without cpuset, hugetlb and RDT figures, which dockless does not read). */
export interface RuncStats {
  /** CPU time and throttling. */
  cpu: {
    /** CPU time in nanoseconds. */
    usage: { total?: Counter; percpu?: Counter[]; kernel: Counter; user: Counter };
    /** CFS throttling. */
    throttling: { periods?: Counter; throttledPeriods?: Counter; throttledTime?: Counter };
  };
  /** Memory. */
  memory: {
    /** Page cache, bytes. */
    cache?: Counter;
    /** Memory. */
    usage: RuncMemoryEntry;
    /** Memory plus swap (v1) or swap (v2). */
    swap: RuncMemoryEntry;
    /** `memory.stat`, as it is. */
    raw?: Record<string, Counter>;
  };
  /** Processes and threads. */
  pids: { current?: Counter; limit?: Counter };
  /** Block I/O. */
  blkio: { ioServiceBytesRecursive?: RuncBlkioEntry[]; ioServicedRecursive?: RuncBlkioEntry[] };
  /** Huge pages, by size (always empty here). */
  hugetlb: Record<string, never>;
  /** Intel RDT (always empty here). */
  intel_rdt: Record<string, never>;
  /** Network interfaces (runc prints null: the container's network is not its to read). */
  network_interfaces: null;
}

/** Reads a cgroup file; undefined when it is not there or not readable. */
export type CgroupFileReader = (path: string) => string | undefined;

const readCgroupFile: CgroupFileReader = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/** The v2 "max", as runc reports it: 2^64-1. */
const NO_LIMIT = 18446744073709551615n;

/** A decimal counter as a number, or a bigint when a number would round it. */
function counter(t: string): Counter | undefined {
  if (!/^\d+$/.test(t)) return undefined;
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : BigInt(t);
}

/** A counter from a one-value cgroup file; `max` is {@link NO_LIMIT}. */
function num(text: string | undefined): Counter | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  return t === 'max' ? NO_LIMIT : counter(t);
}

/** `key value` lines (memory.stat, cpu.stat, cpuacct.stat, memory.events) as a map. */
export function parseFlatKeyed(text: string | undefined): Record<string, Counter> {
  const out: Record<string, Counter> = {};
  for (const line of (text ?? '').split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    const n = key && value !== undefined ? counter(value) : undefined;
    if (n !== undefined) out[key!] = n;
  }
  return out;
}

/** Counters in nanoseconds from a count of UNIT nanoseconds. */
const times = (n: Counter | undefined, unit: number): Counter => (typeof n === 'bigint' ? n * BigInt(unit) : (n ?? 0) * unit);

/** `value` as JSON, bigints with all their digits (JSON.stringify refuses them). */
export function stringifyCounters(value: unknown): string {
  const marks: string[] = [];
  const text = JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `\u0000${marks.push(v.toString()) - 1}` : v));
  return text.replace(/"\\u0000(\d+)"/g, (_m, i: string) => marks[Number(i)]!);
}

/** v1 `blkio.*_recursive` lines (`8:0 Read 4096`; the `Total N` line is not a device's). */
export function parseBlkioV1(text: string | undefined): RuncBlkioEntry[] {
  const out: RuncBlkioEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const fields = line.trim().split(/\s+/);
    const dev = /^(\d+):(\d+)$/.exec(fields[0] ?? '');
    if (dev === null || fields.length !== 3) continue;
    out.push(entry(Number(dev[1]), Number(dev[2]), fields[1]!, counter(fields[2]!) ?? 0));
  }
  return out;
}

function entry(major: number, minor: number, op: string, value: Counter): RuncBlkioEntry {
  return { ...(major ? { major } : {}), ...(minor ? { minor } : {}), ...(op ? { op } : {}), ...(value ? { value } : {}) };
}

/** v2 `io.stat` (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 …`) as runc maps it: bytes and operations, Read and Write. */
export function parseIoStatV2(text: string | undefined): { bytes: RuncBlkioEntry[]; ios: RuncBlkioEntry[] } {
  const bytes: RuncBlkioEntry[] = [];
  const ios: RuncBlkioEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const [device, ...pairs] = line.trim().split(/\s+/);
    const dev = /^(\d+):(\d+)$/.exec(device ?? '');
    if (dev === null) continue;
    const kv = Object.fromEntries(pairs.map((p) => p.split('=') as [string, string]));
    const [major, minor] = [Number(dev[1]), Number(dev[2])];
    for (const [key, list, op] of [
      ['rbytes', bytes, 'Read'],
      ['wbytes', bytes, 'Write'],
      ['rios', ios, 'Read'],
      ['wios', ios, 'Write'],
    ] as const) {
      if (kv[key] !== undefined) list.push(entry(major, minor, op, counter(kv[key]!) ?? 0));
    }
  }
  return { bytes, ios };
}

function memoryEntry(limit: Counter | undefined, usage: Counter | undefined, max: Counter | undefined, failcnt: Counter | undefined): RuncMemoryEntry {
  return { limit: limit ?? 0, ...(usage ? { usage } : {}), ...(max ? { max } : {}), failcnt: failcnt ?? 0 };
}

/**
 * The statistics of a container's cgroups, in runc's shape.
 *
 * @param read - reads one cgroup file (a test passes a fake).
 */
export function readRuncStats(cgroups: readonly CgroupRecord[], read: CgroupFileReader = readCgroupFile): RuncStats {
  const find = (controller: string) => cgroups.find((c) => c.version === 1 && c.controllers.includes(controller)) ?? cgroups.find((c) => c.version === 2);
  const at = (c: CgroupRecord | undefined, file: string) => (c === undefined ? undefined : read(posix.join(c.dir, file)));
  const stats: RuncStats = {
    cpu: { usage: { kernel: 0, user: 0 }, throttling: {} },
    memory: { usage: { limit: 0, failcnt: 0 }, swap: { limit: 0, failcnt: 0 } },
    pids: {},
    blkio: {},
    hugetlb: {},
    intel_rdt: {},
    network_interfaces: null,
  };
  const nonzero = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== 0 && v !== 0n)) as T;

  const acct = find('cpuacct');
  if (acct?.version === 1) {
    const ticks = parseFlatKeyed(at(acct, 'cpuacct.stat'));
    // cpuacct.stat counts USER_HZ ticks (100 per second on Linux).
    const percpu = at(acct, 'cpuacct.usage_percpu')?.trim().split(/\s+/).filter(Boolean).map((v) => counter(v) ?? 0);
    stats.cpu.usage = {
      ...nonzero({ total: num(at(acct, 'cpuacct.usage')) }),
      ...(percpu !== undefined && percpu.length > 0 ? { percpu } : {}),
      kernel: times(ticks['system'], 10_000_000),
      user: times(ticks['user'], 10_000_000),
    };
  } else if (acct?.version === 2) {
    const s = parseFlatKeyed(at(acct, 'cpu.stat'));
    stats.cpu.usage = { ...nonzero({ total: times(s['usage_usec'], 1000) }), kernel: times(s['system_usec'], 1000), user: times(s['user_usec'], 1000) };
  }
  const cpu = find('cpu');
  const cpuStat = parseFlatKeyed(at(cpu, 'cpu.stat'));
  stats.cpu.throttling = nonzero({
    periods: cpuStat['nr_periods'],
    throttledPeriods: cpuStat['nr_throttled'],
    throttledTime: cpu?.version === 2 ? times(cpuStat['throttled_usec'], 1000) : cpuStat['throttled_time'],
  });

  const mem = find('memory');
  if (mem?.version === 1) {
    const raw = parseFlatKeyed(at(mem, 'memory.stat'));
    const f = (name: string) => num(at(mem, `memory.${name}`));
    stats.memory = {
      ...nonzero({ cache: raw['cache'] }),
      usage: memoryEntry(f('limit_in_bytes'), f('usage_in_bytes'), f('max_usage_in_bytes'), f('failcnt')),
      swap: memoryEntry(f('memsw.limit_in_bytes'), f('memsw.usage_in_bytes'), f('memsw.max_usage_in_bytes'), f('memsw.failcnt')),
      ...(Object.keys(raw).length > 0 ? { raw } : {}),
    };
  } else if (mem?.version === 2) {
    const raw = parseFlatKeyed(at(mem, 'memory.stat'));
    const f = (name: string) => num(at(mem, name));
    const events = parseFlatKeyed(at(mem, 'memory.events'));
    stats.memory = {
      ...nonzero({ cache: raw['file'] }),
      usage: memoryEntry(f('memory.max'), f('memory.current'), f('memory.peak'), events['max']),
      swap: memoryEntry(f('memory.swap.max'), f('memory.swap.current'), f('memory.swap.peak'), 0),
      ...(Object.keys(raw).length > 0 ? { raw } : {}),
    };
  }

  const pids = find('pids');
  const limit = num(at(pids, 'pids.max'));
  stats.pids = nonzero({ current: num(at(pids, 'pids.current')), limit: limit === NO_LIMIT ? 0 : limit });

  const blk = find('blkio');
  if (blk?.version === 1) {
    // The CFQ files are empty under other I/O schedulers; runc then reads the throttle ones.
    const pick = (name: string) => {
      const cfq = parseBlkioV1(at(blk, `blkio.${name}`));
      return cfq.length > 0 ? cfq : parseBlkioV1(at(blk, `blkio.throttle.${name}`));
    };
    const bytes = pick('io_service_bytes_recursive');
    const ios = pick('io_serviced_recursive');
    stats.blkio = { ...(bytes.length > 0 ? { ioServiceBytesRecursive: bytes } : {}), ...(ios.length > 0 ? { ioServicedRecursive: ios } : {}) };
  } else if (blk?.version === 2) {
    const { bytes, ios } = parseIoStatV2(at(blk, 'io.stat'));
    stats.blkio = { ...(bytes.length > 0 ? { ioServiceBytesRecursive: bytes } : {}), ...(ios.length > 0 ? { ioServicedRecursive: ios } : {}) };
  }
  return stats;
}

/** How many OOM kills the container's memory cgroup has counted. */
function oomKills(cgroups: readonly CgroupRecord[], read: CgroupFileReader): number {
  const v1 = cgroups.find((c) => c.version === 1 && c.controllers.includes('memory'));
  if (v1 !== undefined) return Number(parseFlatKeyed(read(posix.join(v1.dir, 'memory.oom_control')))['oom_kill'] ?? 0);
  const v2 = cgroups.find((c) => c.version === 2);
  return v2 === undefined ? 0 : Number(parseFlatKeyed(read(posix.join(v2.dir, 'memory.events')))['oom_kill'] ?? 0);
}

/**
 * A Go duration as runc's `--interval` takes it (`5s`, `500ms`, `1m30s`), in milliseconds.
 *
 * @throws {@link InvalidArgumentError} for anything else, or a duration that is not positive.
 */
export function parseInterval(value: string): number {
  const ms = goDurationMs(value);
  if (ms === undefined || ms <= 0) throw new InvalidArgumentError(`--interval \`${value}\`: not a duration such as 5s or 500ms`);
  return ms;
}

/** Options of {@link containerEvents}. */
export interface EventsOptions extends GlobalOptions {
  /** Print one stats event and return. */
  stats?: boolean;
  /** Milliseconds between stats events. @default 5000 */
  intervalMs?: number;
  /** Where the JSON lines go. @default process.stdout */
  write?: (line: string) => void;
  /** Stops the stream. */
  signal?: AbortSignal;
}

/**
 * `events`: stats of container `id` as runc prints them; with `stats`, one
 * line; otherwise a line every interval (and an `oom` line after each OOM
 * kill) until the container stops.
 *
 * @throws {@link InvalidStateError} when the container is not running or paused.
 */
export async function containerEvents(id: string, options: EventsOptions): Promise<void> {
  const write = options.write ?? ((line: string) => void process.stdout.write(line));
  const paths = ociPaths(options.root, id);
  const record = await readRecord(options.root, id);
  const live = () => ['running', 'paused', 'created'].includes(statusOf(record, paths));
  if (!live()) throw new InvalidStateError(`events container ${id}: the container is ${statusOf(record, paths)}`);
  const line = (type: string, data?: unknown) => write(`${stringifyCounters({ type, id, ...(data !== undefined ? { data } : {}) })}\n`);
  if (options.stats === true) {
    line('stats', readRuncStats(record.cgroups));
    return;
  }
  let ooms = oomKills(record.cgroups, readCgroupFile);
  while (live() && options.signal?.aborted !== true) {
    const now = oomKills(record.cgroups, readCgroupFile);
    if (now > ooms) line('oom');
    ooms = now;
    line('stats', readRuncStats(record.cgroups));
    await sleep(options.intervalMs ?? 5000, undefined, options.signal !== undefined ? { signal: options.signal } : {}).catch(() => undefined);
  }
}
