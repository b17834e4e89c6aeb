/**
 * The resource limits a container can ask for, and the statistics it reports;
 * both are read and written through the container's cgroups.
 *
 * @module
 */

import type { NotFoundError } from '../../errors.js';

/**
 * Resource limits of a container, applied through its cgroups on cgroup v1, v2
 * and hybrid hosts. Fields left out are not limited. The names and units follow
 * `docker run`'s flags.
 */
export interface ContainerResources {
  /**
   * Memory limit in bytes (`docker run --memory`); at least 6 MiB. When the
   * container's processes use more and nothing can be reclaimed, the kernel's
   * OOM killer ends one of them and `wait()` reports `oomKilled: true`.
   * @default unlimited
   */
  memory?: number;
  /**
   * Memory plus swap limit in bytes (`--memory-swap`): at least `memory`, or -1
   * for unlimited swap. Needs `memory`. Ignored where the kernel does not account swap.
   * @default twice `memory` (as Docker: as much swap as memory), unlimited without `memory`
   */
  memorySwap?: number;
  /**
   * CPU time as a number of CPUs (`--cpus`), e.g. 0.5 for half of one CPU's time,
   * enforced by the CFS bandwidth controller over 100 ms periods.
   * @default unlimited
   */
  cpus?: number;
  /**
   * Relative CPU weight against other cgroups under contention (`--cpu-shares`),
   * 2 to 262144; 1024 is the kernel's default. On cgroup v2 it is converted to
   * `cpu.weight` as runc does.
   * @default 1024
   */
  cpuShares?: number;
  /** CPUs the container may run on (`--cpuset-cpus`), e.g. `'0-1'` or `'0,2'`. @default every CPU the caller may use */
  cpuset?: string;
  /**
   * Maximum number of processes and threads (`--pids-limit`); a `fork` beyond it
   * fails with EAGAIN.
   * @default unlimited
   */
  pids?: number;
  /**
   * Relative block I/O weight (`--blkio-weight`), 10 to 1000. Needs an I/O
   * scheduler with weights (BFQ) or, on cgroup v2, `io.weight`; where neither is
   * there, creating the container fails with a {@link NotFoundError} naming the file.
   * @default the kernel's (100 on v2, 500 for BFQ on v1)
   */
  ioWeight?: number;
}

/** A container's resource usage, read from its cgroups. */
export interface ContainerStats {
  /** Memory charged to the container. */
  memory: {
    /** Bytes in use now, page cache included (`memory.usage_in_bytes` / `memory.current`). */
    usage: number;
    /** The limit in bytes, when there is one. */
    limit?: number;
    /** The most ever used, in bytes, where the kernel keeps it (`memory.max_usage_in_bytes` / `memory.peak`). */
    maxUsage?: number;
  };
  /** CPU time. */
  cpu: {
    /** CPU time used by all the container's processes so far, in nanoseconds. */
    usageNanos: number;
  };
  /** Processes and threads. */
  pids: {
    /** How many exist now. */
    current: number;
    /** The limit, when there is one. */
    limit?: number;
  };
}
