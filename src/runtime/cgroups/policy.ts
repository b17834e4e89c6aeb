/**
 * Resource policy: a container's {@link ContainerResources} turned into the
 * cgroup directories to create and the files to write in each, for the
 * controllers' versions on this host. Pure: no I/O, so it is unit-tested with
 * fixture hosts.
 *
 * @module
 */

import { posix } from 'node:path';
import { InvalidArgumentError, NotFoundError } from '../../errors.js';
import type { CgroupHierarchy, CgroupHost } from './detect.js';
import type { ContainerResources } from './resources.js';

/** The CFS period used with `cpus`, in microseconds (Docker's). */
export const CPU_PERIOD_US = 100_000;
/** The smallest memory limit accepted (Docker's). */
export const MIN_MEMORY = 6 * 1024 * 1024;

/** One value to write, and the file it goes to. */
export interface CgroupFileValue {
  file: string;
  value: string;
}

/** One limit to write: the first of `candidates` whose file exists is written. */
export interface CgroupWrite {
  /** The spec field it comes from, for messages (`resources.memory`). */
  field: string;
  /** Alternatives in order of preference; each with its own value (their units may differ). */
  candidates: CgroupFileValue[];
  /** Skip the write when no candidate file exists (instead of failing). */
  optional?: boolean;
}

/** The cgroup to create in one hierarchy. */
export interface HierarchyPlan {
  hierarchy: CgroupHierarchy;
  /** The controllers the container uses in this hierarchy (on v2, those to enable for it). */
  controllers: string[];
  /**
   * Controllers only wanted for statistics and OOM reports: when the hierarchy
   * cannot be used for them (no permission, not delegated) the container goes
   * without them rather than failing.
   */
  optional: string[];
  /** The directory the container's cgroup is created in (our cgroup, or the configured parent). */
  parentDir: string;
  /**
   * The directory limits are inherited from when parent directories are
   * created: on v2, where `cgroup.subtree_control` must be enabled from; on v1,
   * the first directory whose cpuset values are copied down.
   */
  baseDir: string;
  /** The container's cgroup directory. */
  dir: string;
  /** Files to write, in order, after the directory exists. */
  writes: CgroupWrite[];
  /** v1 cpuset: copy `cpuset.cpus` / `cpuset.mems` from the parent where not set, before any task joins. */
  copyCpuset: boolean;
}

/** What {@link planCgroups} decides. */
export interface CgroupPlan {
  /** One entry per hierarchy the container needs a cgroup in. */
  hierarchies: HierarchyPlan[];
}

/**
 * Controllers every container gets a cgroup for, even without limits: they give
 * `stats()`, OOM reports and `pause()`. `cpuacct` and `freezer` exist on v1 only;
 * on v2 CPU time is in `cpu.stat` and freezing in `cgroup.freeze`, which every cgroup has.
 */
const STATS_CONTROLLERS = ['memory', 'pids', 'cpuacct', 'freezer'];
/**
 * Controllers every container gets a cgroup for where it can, so that `update()`
 * can give a running container CPU limits it was created without: a process
 * cannot be moved into a new cgroup on each hierarchy as it runs.
 */
const UPDATABLE_CONTROLLERS = ['cpu'];

const CPUSET_RE = /^\d+(-\d+)?(,\d+(-\d+)?)*$/;
const SEGMENT_RE = /^[A-Za-z0-9_.:@-]+$/;

function isInt(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n);
}

/**
 * Checks a spec's `resources` field; every problem is an {@link InvalidArgumentError}
 * naming the field.
 */
export function validateResources(resources: ContainerResources | undefined): void {
  if (resources === undefined) return;
  if (resources === null || typeof resources !== 'object') {
    throw new InvalidArgumentError('container spec: resources must be an object');
  }
  const bad = (field: string, want: string, got: unknown) =>
    new InvalidArgumentError(`container spec: resources.${field} must be ${want}, got \`${String(got)}\``);
  const r = resources;
  const known = new Set(['memory', 'memorySwap', 'cpus', 'cpuShares', 'cpuset', 'pids', 'ioWeight']);
  for (const key of Object.keys(r)) {
    if (!known.has(key)) throw new InvalidArgumentError(`container spec: unknown field resources.${key}`);
  }
  if (r.memory !== undefined && (!isInt(r.memory) || r.memory < MIN_MEMORY)) {
    throw bad('memory', `an integer number of bytes of at least ${MIN_MEMORY} (6 MiB)`, r.memory);
  }
  if (r.memorySwap !== undefined) {
    if (r.memory === undefined) throw new InvalidArgumentError('container spec: resources.memorySwap needs resources.memory');
    if (!isInt(r.memorySwap) || (r.memorySwap !== -1 && r.memorySwap < r.memory)) {
      throw bad('memorySwap', 'an integer number of bytes of at least resources.memory, or -1', r.memorySwap);
    }
  }
  if (r.cpus !== undefined) {
    if (typeof r.cpus !== 'number' || !Number.isFinite(r.cpus) || r.cpus <= 0) throw bad('cpus', 'a positive number', r.cpus);
    // The kernel's minimum quota is 1 ms.
    if (Math.round(r.cpus * CPU_PERIOD_US) < 1000) throw bad('cpus', 'at least 0.01', r.cpus);
  }
  if (r.cpuShares !== undefined && (!isInt(r.cpuShares) || r.cpuShares < 2 || r.cpuShares > 262144)) {
    throw bad('cpuShares', 'an integer from 2 to 262144', r.cpuShares);
  }
  if (r.cpuset !== undefined && (typeof r.cpuset !== 'string' || !CPUSET_RE.test(r.cpuset))) {
    throw bad('cpuset', "a CPU list such as '0-1' or '0,2'", r.cpuset);
  }
  if (r.pids !== undefined && (!isInt(r.pids) || r.pids < 1)) throw bad('pids', 'a positive integer', r.pids);
  if (r.ioWeight !== undefined && (!isInt(r.ioWeight) || r.ioWeight < 10 || r.ioWeight > 1000)) {
    throw bad('ioWeight', 'an integer from 10 to 1000', r.ioWeight);
  }
}

/**
 * Checks a `cgroupParent` and returns it normalised: absolute (from each
 * hierarchy's root) or relative (below the caller's own cgroup).
 */
export function validateCgroupParent(parent: string | undefined, where: string): string | undefined {
  if (parent === undefined) return undefined;
  if (typeof parent !== 'string' || parent === '' || parent === '/') {
    throw new InvalidArgumentError(`${where}: cgroupParent must be a non-empty cgroup path other than \`/\`, got \`${String(parent)}\``);
  }
  const segments = parent.split('/').filter((s) => s !== '');
  for (const s of segments) {
    if (s === '.' || s === '..' || !SEGMENT_RE.test(s)) {
      throw new InvalidArgumentError(`${where}: cgroupParent \`${parent}\` has a bad component \`${s}\``);
    }
  }
  return (parent.startsWith('/') ? '/' : '') + segments.join('/');
}

/** cpu.shares (v1) to cpu.weight (v2), as runc converts it. */
export function sharesToWeight(shares: number): number {
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

/** blkio.weight (10–1000) to io.weight (1–10000), as runc converts it. */
export function blkioToIoWeight(weight: number): number {
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

/** The directory for cgroup path `parent` in hierarchy `h`, and the directory it hangs from. */
export function parentDirs(h: CgroupHierarchy, parent: string | undefined): { parentDir: string; baseDir: string } {
  if (parent === undefined) return { parentDir: h.dir, baseDir: h.dir };
  if (!parent.startsWith('/')) return { parentDir: posix.join(h.dir, parent), baseDir: h.dir };
  const root = h.mountRoot === '/' ? '' : h.mountRoot.replace(/\/+$/, '');
  if (parent !== root && !parent.startsWith(`${root}/`)) {
    throw new InvalidArgumentError(
      `cgroupParent \`${parent}\` is outside the part of the cgroup hierarchy mounted at \`${h.mount}\` (\`${h.mountRoot}\`)`,
    );
  }
  return { parentDir: posix.join(h.mount, parent.slice(root.length)), baseDir: h.mount };
}

/**
 * Plans the container's cgroups: which hierarchies, which directories, which
 * files with which values.
 *
 * @param name - the container's cgroup directory name, e.g. `dockless-<id>`.
 * @param parent - a normalised `cgroupParent` (see {@link validateCgroupParent}).
 * @param devices - the writes of the container's device allow-list (`devices.deny` /
 *   `devices.allow`, one rule each), applied where the devices controller is on a v1
 *   hierarchy; cgroup v2 has no devices files (it filters devices with eBPF).
 * @throws {@link NotFoundError} when a limit needs a controller this host does not offer us.
 * @throws {@link InvalidArgumentError} for a `parent` outside a mounted hierarchy.
 */
export function planCgroups(
  resources: ContainerResources | undefined,
  host: CgroupHost,
  name: string,
  parent?: string,
  devices?: readonly CgroupFileValue[],
): CgroupPlan {
  const r = resources ?? {};
  const plans = new Map<CgroupHierarchy, HierarchyPlan>();

  const use = (controller: string, optional: boolean, field?: string): HierarchyPlan | undefined => {
    const h = host.controllers.get(controller);
    if (h === undefined) {
      if (optional) return undefined;
      throw new NotFoundError(
        `container spec: resources.${field} needs the cgroup \`${controller}\` controller, which is not available to this process` +
          ` (cgroups: ${host.mode})`,
      );
    }
    let plan = plans.get(h);
    if (plan === undefined) {
      const { parentDir, baseDir } = parentDirs(h, parent);
      plan = {
        hierarchy: h,
        controllers: [],
        optional: [],
        parentDir,
        baseDir,
        dir: posix.join(parentDir, name),
        writes: [],
        copyCpuset: h.version === 1 && h.controllers.includes('cpuset'),
      };
      plans.set(h, plan);
    }
    const added = !plan.controllers.includes(controller);
    if (added) plan.controllers.push(controller);
    if (!optional) plan.optional = plan.optional.filter((c) => c !== controller);
    else if (added) plan.optional.push(controller);
    return plan;
  };
  const write = (plan: HierarchyPlan, field: string, candidates: CgroupFileValue[], optional = false) => {
    plan.writes.push({ field, candidates, ...(optional ? { optional } : {}) });
  };

  // Order matters: limits first, so that a stats-only controller does not decide
  // a hierarchy's optionality before a limit needs it.
  if (r.memory !== undefined) {
    const p = use('memory', false, 'memory')!;
    const swap = r.memorySwap ?? r.memory * 2;
    if (p.hierarchy.version === 1) {
      // memory.limit_in_bytes first: memsw may never be below it.
      write(p, 'resources.memory', [{ file: 'memory.limit_in_bytes', value: String(r.memory) }]);
      write(p, 'resources.memorySwap', [{ file: 'memory.memsw.limit_in_bytes', value: String(swap) }], true);
    } else {
      write(p, 'resources.memory', [{ file: 'memory.max', value: String(r.memory) }]);
      write(p, 'resources.memorySwap', [{ file: 'memory.swap.max', value: swap === -1 ? 'max' : String(swap - r.memory) }], true);
    }
  }
  if (r.cpus !== undefined || r.cpuShares !== undefined) {
    const p = use('cpu', false, r.cpus !== undefined ? 'cpus' : 'cpuShares')!;
    const quota = r.cpus !== undefined ? Math.round(r.cpus * CPU_PERIOD_US) : undefined;
    if (p.hierarchy.version === 1) {
      if (quota !== undefined) {
        write(p, 'resources.cpus', [{ file: 'cpu.cfs_period_us', value: String(CPU_PERIOD_US) }]);
        write(p, 'resources.cpus', [{ file: 'cpu.cfs_quota_us', value: String(quota) }]);
      }
      if (r.cpuShares !== undefined) write(p, 'resources.cpuShares', [{ file: 'cpu.shares', value: String(r.cpuShares) }]);
    } else {
      if (quota !== undefined) write(p, 'resources.cpus', [{ file: 'cpu.max', value: `${quota} ${CPU_PERIOD_US}` }]);
      if (r.cpuShares !== undefined) {
        write(p, 'resources.cpuShares', [{ file: 'cpu.weight', value: String(sharesToWeight(r.cpuShares)) }]);
      }
    }
  }
  if (r.cpuset !== undefined) {
    const p = use('cpuset', false, 'cpuset')!;
    write(p, 'resources.cpuset', [{ file: 'cpuset.cpus', value: r.cpuset }]);
  }
  if (r.pids !== undefined) {
    const p = use('pids', false, 'pids')!;
    write(p, 'resources.pids', [{ file: 'pids.max', value: String(r.pids) }]);
  }
  if (r.ioWeight !== undefined) {
    const v1 = host.controllers.get('blkio');
    if (v1 !== undefined && v1.version === 1) {
      const p = use('blkio', false, 'ioWeight')!;
      write(p, 'resources.ioWeight', [
        { file: 'blkio.weight', value: String(r.ioWeight) },
        { file: 'blkio.bfq.weight', value: String(r.ioWeight) },
      ]);
    } else {
      const p = use('io', false, 'ioWeight')!;
      write(p, 'resources.ioWeight', [
        { file: 'io.bfq.weight', value: String(r.ioWeight) },
        { file: 'io.weight', value: `default ${blkioToIoWeight(r.ioWeight)}` },
      ]);
    }
  }
  if (devices !== undefined && devices.length > 0 && host.controllers.get('devices')?.version === 1) {
    // A security boundary, not a convenience: where the controller is there, failing to apply it fails the container.
    const p = use('devices', false, 'devices')!;
    for (const d of devices) write(p, 'devices', [d]);
  }
  for (const c of [...STATS_CONTROLLERS, ...UPDATABLE_CONTROLLERS]) use(c, true);

  return { hierarchies: [...plans.values()] };
}

/**
 * The plan of a container's existing cgroups with the limits of `resources`
 * instead of those it was made with: the same hierarchies and directories, the
 * writes {@link planCgroups} makes for `resources`, the device rules kept. What
 * `update()` writes into a running container, and what its launch record keeps
 * for a later restart.
 *
 * @param saved - the plan the container's cgroups were made from (its launch record's).
 * @param resources - every limit the container is to have, already checked with {@link validateResources}.
 * @throws {@link NotFoundError} when a limit needs a controller the container has no cgroup for.
 */
export function replanResources(saved: CgroupPlan, resources: ContainerResources): CgroupPlan {
  const controllers = new Map<string, CgroupHierarchy>();
  for (const p of saved.hierarchies) for (const c of p.hierarchy.controllers) controllers.set(c, p.hierarchy);
  // Only the container's own hierarchies: a limit that would need another cgroup cannot be added to a running container.
  const host: CgroupHost = { mode: 'none', hierarchies: saved.hierarchies.map((p) => p.hierarchy), controllers };
  let fresh: CgroupPlan;
  try {
    fresh = planCgroups(resources, host, 'update');
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
    const m = /(resources\.\w+) needs the cgroup `(\w+)` controller/.exec(error.message);
    const what = m !== null ? `${m[1]} needs a \`${m[2]}\` cgroup` : error.message;
    throw new NotFoundError(`${what}, and the container has none (it was created without cgroups for it)`, { cause: error });
  }
  return {
    hierarchies: saved.hierarchies.map((p) => {
      const writes = fresh.hierarchies.find((f) => f.hierarchy === p.hierarchy)?.writes ?? [];
      return { ...p, writes: [...writes, ...p.writes.filter((w) => w.field === 'devices')] };
    }),
  };
}
