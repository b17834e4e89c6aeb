/**
 * `dockless-runtime update`: runc's flags (or `-r` with a `linux.resources`
 * JSON) turned into the library's limits, written into a container's cgroups
 * by the same code as `Container.update()`, and kept in its record.
 *
 * @module
 */

import { readFileSync } from 'node:fs';
import { InvalidArgumentError, InvalidStateError } from '../errors.js';
import { updateCgroupLimits, type ContainerResources } from '../runtime/index.js';
import { parseJsonObject } from '../util/index.js';
import type { OciResources } from './config.js';
import type { GlobalOptions } from './lifecycle.js';
import { ociPaths, readRecord, statusOf, writeRecord } from './state.js';
import { translateResources } from './translate.js';

/** The CFS period dockless uses (the kernel's default, Docker's). */
const CPU_PERIOD_US = 100_000;
const UNITS: Readonly<Record<string, number>> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** The flags of `update`, as commander gives them. */
export interface RuncUpdateFlags {
  /** `--memory`. */ memory?: string;
  /** `--memory-swap`. */ memorySwap?: string;
  /** `--cpu-shares`. */ cpuShares?: string;
  /** `--cpu-quota`. */ cpuQuota?: string;
  /** `--cpu-period`. */ cpuPeriod?: string;
  /** `--cpuset-cpus`. */ cpusetCpus?: string;
  /** `--pids-limit`. */ pidsLimit?: string;
  /** `-r, --resources`: a file (`-` for stdin) with a `linux.resources` JSON object. */ resources?: string;
}

function bytes(flag: string, value: string): number {
  if (value.trim() === '-1') return -1;
  const m = /^(\d+)\s*([kmgt]?)b?$/i.exec(value.trim());
  if (m === null) throw new InvalidArgumentError(`update: ${flag}: invalid size \`${value}\``);
  return Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
}

function int(flag: string, value: string): number {
  if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`update: ${flag}: expected an integer, got \`${value}\``);
  return Number(value);
}

/**
 * The limits `update` sets. As runc: with `-r` (its text in `resourcesJson`)
 * the JSON alone, else the flags given. Pure.
 *
 * @throws {@link InvalidArgumentError} for a malformed value, a CFS period other
 *   than 100000 µs, or nothing to update; {@link UnsupportedError} for a field of
 *   `linux.resources` dockless cannot enforce.
 */
export function runcUpdateResources(flags: RuncUpdateFlags, resourcesJson?: string): ContainerResources {
  if (resourcesJson !== undefined) {
    const r = parseJsonObject(resourcesJson, 'update: -r') as OciResources;
    if (Array.isArray(r.devices) && r.devices.length > 0) throw new InvalidArgumentError('update: -r: `devices` cannot be updated');
    const { devices: _devices, ...rest } = r;
    const { resources } = translateResources(rest);
    if (Object.keys(resources).length === 0) throw new InvalidArgumentError('update: -r: no resource to update');
    return resources;
  }
  if (flags.cpuPeriod !== undefined && int('--cpu-period', flags.cpuPeriod) !== CPU_PERIOD_US) {
    throw new InvalidArgumentError(`update: --cpu-period: only ${CPU_PERIOD_US} µs is supported, got \`${flags.cpuPeriod}\``);
  }
  const quota = flags.cpuQuota !== undefined ? int('--cpu-quota', flags.cpuQuota) : undefined;
  if (quota !== undefined && quota <= 0) throw new InvalidArgumentError(`update: --cpu-quota: a quota cannot be removed, got \`${flags.cpuQuota}\``);
  const resources: ContainerResources = {
    ...(flags.memory !== undefined ? { memory: bytes('--memory', flags.memory) } : {}),
    ...(flags.memorySwap !== undefined ? { memorySwap: bytes('--memory-swap', flags.memorySwap) } : {}),
    ...(flags.cpuShares !== undefined ? { cpuShares: int('--cpu-shares', flags.cpuShares) } : {}),
    ...(quota !== undefined ? { cpus: quota / CPU_PERIOD_US } : {}),
    ...(flags.cpusetCpus !== undefined ? { cpuset: flags.cpusetCpus } : {}),
    ...(flags.pidsLimit !== undefined ? { pids: int('--pids-limit', flags.pidsLimit) } : {}),
  };
  if (Object.keys(resources).length === 0) throw new InvalidArgumentError('update: no resource to update (give a flag or -r)');
  return resources;
}

/** Reads `-r`'s file, `-` being stdin. */
export function readResourcesFile(path: string): string {
  return readFileSync(path === '-' ? 0 : path, 'utf8');
}

/**
 * `update`: writes `changes` into the container's cgroups and keeps them in its record.
 *
 * @throws {@link InvalidStateError} for a stopped container, or one made by an older dockless-runtime.
 * @throws {@link InvalidArgumentError} for a bad value, or one the kernel refuses.
 */
export async function updateContainer(id: string, changes: ContainerResources, options: GlobalOptions): Promise<void> {
  const context = `update container ${id}`;
  const record = await readRecord(options.root, id);
  const status = statusOf(record, ociPaths(options.root, id));
  if (status === 'stopped' || status === 'creating') throw new InvalidStateError(`${context}: the container is ${status}`);
  if (record.cgroupPlan === undefined) throw new InvalidStateError(`${context}: the container was created by an older dockless-runtime, which kept no cgroup plan`);
  const { resources, plan } = updateCgroupLimits(record.cgroups, record.cgroupPlan, record.resources, changes, context);
  await writeRecord(options.root, { ...record, cgroupPlan: plan, resources });
}
