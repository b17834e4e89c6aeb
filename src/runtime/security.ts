/**
 * A container's security settings, decided here and applied by the helper:
 * capabilities, `no_new_privs`, the seccomp program, rlimits, masked and
 * read-only /proc and /sys paths, and the devices cgroup's allow-list.
 * `privileged` lifts them, as `docker run --privileged` does.
 *
 * @module
 */

import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, PermissionError } from '../errors.js';
import { capBitmask, capNames, capNumber, capsFromBitmask, normalizeCapName, resolveCaps } from './capabilities.js';
import { MASKED_PATHS, READONLY_PATHS } from './defaults.js';
import { nativeSeccompArch, seccompProgram, type SeccompTargetArch } from './seccomp/compile.js';
import type { ContainerSpec, Rlimit, RlimitName } from './spec.js';

/** The spec fields this module reads. */
export type SecurityOptions = Pick<ContainerSpec, 'capAdd' | 'capDrop' | 'privileged' | 'seccomp' | 'noNewPrivileges' | 'rlimits'>;

/** The resources `rlimits` accepts. Mirrors the table in native/security.c. */
export const RLIMIT_NAMES: readonly RlimitName[] = Object.freeze([
  'as', 'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio',
  'rttime', 'sigpending', 'stack',
] as const);

/** One rlimit as the helper takes it: `--rlimit NAME SOFT HARD`, a limit being decimal or `unlimited`. */
export interface HelperRlimit {
  name: RlimitName;
  soft: string;
  hard: string;
}

/** The security part of a run plan (see `RunPlan`). */
export interface SecurityPlan {
  /**
   * The bounding, permitted and effective sets (bit *n* for capability *n*); a
   * non-root user keeps only the bounding set. `undefined` leaves the helper's own
   * capabilities as they are (privileged).
   */
  caps: bigint | undefined;
  /** Set `no_new_privs`. */
  noNewPrivileges: boolean;
  /** The seccomp program (`struct sock_filter[]`); `undefined` runs unconfined. */
  seccomp: Buffer | undefined;
  rlimits: readonly HelperRlimit[];
  /** Paths hidden from the container. */
  masked: readonly string[];
  /** Paths the container sees read-only. */
  readonlyPaths: readonly string[];
}

/** What {@link securityPlan} needs to know of the host; each defaults to this host's. */
export interface SecurityHost {
  /** The seccomp target. @default the architecture of this Node process */
  arch?: SeccompTargetArch;
  /** The kernel version for the profile's `minKernel` rules. @default `os.release()` */
  kernel?: string;
  /**
   * The capabilities the helper will hold: the bounding set of this process
   * (the helper is exec'd by it as the same user).
   * @default this process's `CapBnd`
   */
  available?: bigint;
}

let ownBoundingSet: bigint | undefined;

/**
 * The capability bounding set of this process, from `/proc/self/status`: the
 * capabilities a helper it starts can hold at most.
 */
export function processBoundingSet(): bigint {
  if (ownBoundingSet === undefined) {
    const status = readFileSync('/proc/self/status', 'utf8');
    const hex = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    ownBoundingSet = hex === undefined ? 0n : BigInt(`0x${hex}`);
  }
  return ownBoundingSet;
}

/**
 * Decides a container's security settings from its spec, as Docker does:
 * the default 14 capabilities adjusted by `capAdd` / `capDrop`, Docker's
 * default seccomp profile compiled for exactly those capabilities (or the
 * given profile, or none for `'unconfined'`), `no_new_privs` unless
 * `noNewPrivileges: false`, the given rlimits, and Docker's masked and
 * read-only paths. `privileged` keeps every capability, no seccomp filter, no
 * masked or read-only paths.
 *
 * Capabilities the helper cannot hold (absent from this process's bounding set,
 * such as CAP_SYS_RESOURCE in some sandboxes) are left out of the default set
 * and of `capAdd: ['ALL']`; naming one in `capAdd` is an error.
 *
 * @throws {@link InvalidArgumentError} for an unknown capability, an invalid
 *   seccomp profile, or a malformed rlimit.
 * @throws {@link PermissionError} when `capAdd` names a capability the helper cannot hold.
 * @example
 * ```ts
 * const plan = securityPlan({ capAdd: ['NET_ADMIN'] });
 * plan.caps?.toString(16); // 'a80435fb'
 * ```
 */
export function securityPlan(options: SecurityOptions, host: SecurityHost = {}): SecurityPlan {
  const rlimits = helperRlimits(options.rlimits);
  const noNewPrivileges = options.noNewPrivileges !== false;
  if (options.noNewPrivileges !== undefined && typeof options.noNewPrivileges !== 'boolean') {
    throw new InvalidArgumentError('container spec: noNewPrivileges must be a boolean');
  }
  if (options.privileged !== undefined && typeof options.privileged !== 'boolean') {
    throw new InvalidArgumentError('container spec: privileged must be a boolean');
  }
  if (options.privileged === true) {
    return { caps: undefined, noNewPrivileges, seccomp: undefined, rlimits, masked: [], readonlyPaths: [] };
  }

  const available = host.available ?? processBoundingSet();
  const wanted = capBitmask(resolveCaps({ capAdd: options.capAdd ?? [], capDrop: options.capDrop ?? [] }));
  for (const name of options.capAdd ?? []) {
    if (name.trim().toUpperCase() === 'ALL') continue;
    if ((available & (1n << BigInt(capNumber(name)))) === 0n) {
      throw new PermissionError(
        `container spec: capAdd: ${normalizeCapName(name)} is not in this process's bounding set, so the helper cannot hold it`,
      );
    }
  }
  const caps = wanted & available;
  const seccomp = seccompProgram(options.seccomp, {
    arch: host.arch ?? nativeSeccompArch(),
    caps: capNames(capsFromBitmask(caps)),
    ...(host.kernel !== undefined ? { kernel: host.kernel } : {}),
  });
  return {
    caps,
    noNewPrivileges,
    seccomp: seccomp ?? undefined,
    rlimits,
    masked: MASKED_PATHS,
    readonlyPaths: READONLY_PATHS,
  };
}

const programTexts = new WeakMap<Buffer, string>();

/**
 * A seccomp program as the config and launch records keep it (base64): encoded once per program, which
 * a runtime's default plan shares between its launches (and nothing writes to).
 */
export function seccompText(program: Buffer): string {
  let text = programTexts.get(program);
  if (text === undefined) {
    text = program.toString('base64');
    programTexts.set(program, text);
  }
  return text;
}

function helperRlimits(rlimits: ContainerSpec['rlimits']): HelperRlimit[] {
  if (rlimits === undefined) return [];
  if (rlimits === null || typeof rlimits !== 'object' || Array.isArray(rlimits)) {
    throw new InvalidArgumentError('container spec: rlimits must be an object like { nofile: { soft: 1024, hard: 4096 } }');
  }
  const out: HelperRlimit[] = [];
  for (const [name, limit] of Object.entries(rlimits) as [string, Rlimit | undefined][]) {
    if (limit === undefined) continue;
    if (!(RLIMIT_NAMES as readonly string[]).includes(name)) {
      throw new InvalidArgumentError(`container spec: rlimits: unknown resource \`${name}\` (one of ${RLIMIT_NAMES.join(', ')})`);
    }
    if (limit === null || typeof limit !== 'object') {
      throw new InvalidArgumentError(`container spec: rlimits.${name}: expected { soft, hard }`);
    }
    const soft = limitValue(limit.soft, `${name}.soft`);
    const hard = limitValue(limit.hard, `${name}.hard`);
    if (limit.soft > limit.hard) {
      throw new InvalidArgumentError(`container spec: rlimits.${name}: soft limit ${soft} is above the hard limit ${hard}`);
    }
    out.push({ name: name as RlimitName, soft, hard });
  }
  return out;
}

function limitValue(value: unknown, field: string): string {
  if (value === Infinity) return 'unlimited';
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(`container spec: rlimits.${field}: expected a non-negative integer or Infinity, got ${String(value)}`);
  }
  return String(value);
}

/**
 * One rule of a cgroup v1 devices controller (`devices.allow` / `devices.deny`):
 * a device type (`a` for all), major and minor numbers (`'*'` for any) and the
 * access: `r`ead, `w`rite, `m`knod.
 */
export interface DeviceRule {
  allow: boolean;
  type: 'a' | 'c' | 'b';
  major: number | '*';
  minor: number | '*';
  access: string;
}

const allow = (type: 'c' | 'b', major: number | '*', minor: number | '*', access = 'rwm'): DeviceRule => ({
  allow: true,
  type,
  major,
  minor,
  access,
});

/**
 * The devices a default container may use (runc's and Docker's list): creating
 * any node is allowed (`mknod`, with CAP_MKNOD), but reading or writing only the
 * safe ones. Without this, a container could `mknod /dev/sda b 8 0` and read
 * the host's disk.
 */
export const DEFAULT_DEVICE_RULES: readonly DeviceRule[] = Object.freeze([
  { allow: false, type: 'a', major: '*', minor: '*', access: 'rwm' },
  allow('c', '*', '*', 'm'),
  allow('b', '*', '*', 'm'),
  allow('c', 1, 3), // null
  allow('c', 1, 5), // zero
  allow('c', 1, 7), // full
  allow('c', 1, 8), // random
  allow('c', 1, 9), // urandom
  allow('c', 5, 0), // tty
  allow('c', 5, 1), // console
  allow('c', 5, 2), // ptmx
  allow('c', 136, '*'), // pts
]);

/** A privileged container may use every device. */
export const PRIVILEGED_DEVICE_RULES: readonly DeviceRule[] = Object.freeze([
  { allow: true, type: 'a', major: '*', minor: '*', access: 'rwm' },
]);

/** The device rules of a container: {@link PRIVILEGED_DEVICE_RULES} or {@link DEFAULT_DEVICE_RULES}. */
export function deviceRules(options: Pick<SecurityOptions, 'privileged'>): readonly DeviceRule[] {
  return options.privileged === true ? PRIVILEGED_DEVICE_RULES : DEFAULT_DEVICE_RULES;
}

/** A rule as the devices controller reads it: `c 1:3 rwm`, `a *:* rwm`. */
export function formatDeviceRule(rule: DeviceRule): string {
  return `${rule.type} ${rule.major}:${rule.minor} ${rule.access}`;
}

/**
 * The writes that apply device rules to a cgroup v1 devices cgroup, in order,
 * one rule per write: `{ file: 'devices.deny', value: 'a *:* rwm' }`, then
 * `{ file: 'devices.allow', value: 'c 1:3 rwm' }`, …. For a cgroup plan that
 * writes files itself; {@link applyDeviceAllowList} writes them directly.
 */
export function deviceCgroupWrites(rules: readonly DeviceRule[] = DEFAULT_DEVICE_RULES): { file: string; value: string }[] {
  return rules.map((rule) => ({ file: rule.allow ? 'devices.allow' : 'devices.deny', value: formatDeviceRule(rule) }));
}

/**
 * Applies device rules to a cgroup v1 devices cgroup directory, in order: each
 * denying rule is written to `devices.deny`, each allowing one to
 * `devices.allow` (the kernel takes one rule per write). Call it on the
 * container's freshly created devices cgroup, before any container process
 * joins it; the helper's own `mknod` of /dev nodes is then already under it,
 * which is why the default rules allow `m` for every device.
 *
 * cgroup v2 has no such files (devices are filtered by an eBPF program
 * attached to the cgroup); this function is for v1 and hybrid hosts.
 *
 * @param dir - The container's cgroup directory in the v1 `devices` hierarchy,
 *   e.g. `/sys/fs/cgroup/devices/dockless/<id>`.
 * @param rules - @default {@link DEFAULT_DEVICE_RULES}
 * @throws the `fs` error of the first write that fails (with `path`).
 * @example
 * ```ts
 * await mkdir(dir);
 * await applyDeviceAllowList(dir, deviceRules(spec));
 * ```
 */
export async function applyDeviceAllowList(dir: string, rules: readonly DeviceRule[] = DEFAULT_DEVICE_RULES): Promise<void> {
  for (const { file, value } of deviceCgroupWrites(rules)) await writeFile(join(dir, file), value);
}
