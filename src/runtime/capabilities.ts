/**
 * Linux capabilities: their names and numbers, Docker's default set, and the
 * resolution of a container's `capAdd` / `capDrop` / `privileged` options into
 * the set the helper applies to the bounding, permitted and effective sets.
 *
 * A *capability name* is always spelled in full in this module's output
 * (`CAP_NET_ADMIN`); input accepts the short form (`NET_ADMIN`) and any letter
 * case, as Docker does.
 *
 * @module
 */

import { InvalidArgumentError } from '../errors.js';

/**
 * Every capability the kernel defines, by number (`linux/capability.h`, up to
 * `CAP_CHECKPOINT_RESTORE` = 40, Linux 5.9).
 */
export const ALL_CAPS: Readonly<Record<string, number>> = Object.freeze({
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_LINUX_IMMUTABLE: 9,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_IPC_LOCK: 14,
  CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16,
  CAP_SYS_RAWIO: 17,
  CAP_SYS_CHROOT: 18,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_BOOT: 22,
  CAP_SYS_NICE: 23,
  CAP_SYS_RESOURCE: 24,
  CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26,
  CAP_MKNOD: 27,
  CAP_LEASE: 28,
  CAP_AUDIT_WRITE: 29,
  CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31,
  CAP_MAC_OVERRIDE: 32,
  CAP_MAC_ADMIN: 33,
  CAP_SYSLOG: 34,
  CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36,
  CAP_AUDIT_READ: 37,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
  CAP_CHECKPOINT_RESTORE: 40,
});

/** The highest capability number in {@link ALL_CAPS}. */
export const LAST_CAP = 40;

/**
 * The capabilities a Docker container gets by default (moby's
 * `oci/caps/defaults.go`): the 14 that let a root process manage files and
 * processes inside its own container without touching the host.
 */
export const DOCKER_DEFAULT_CAPS: readonly string[] = Object.freeze([
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
]);

const CAP_BY_NUMBER: readonly string[] = Object.entries(ALL_CAPS)
  .sort((a, b) => a[1] - b[1])
  .map(([name]) => name);

/**
 * Normalises a capability name: upper case, with the `CAP_` prefix.
 *
 * @param name - `net_admin`, `NET_ADMIN` or `CAP_NET_ADMIN`.
 * @returns The full name, e.g. `CAP_NET_ADMIN`.
 * @throws {@link InvalidArgumentError} when the name is not a known capability.
 * @example
 * ```ts
 * normalizeCapName('net_admin'); // 'CAP_NET_ADMIN'
 * ```
 */
export function normalizeCapName(name: string): string {
  const upper = String(name).trim().toUpperCase();
  const full = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (!Object.hasOwn(ALL_CAPS, full)) throw new InvalidArgumentError(`unknown capability \`${name}\``);
  return full;
}

/**
 * The number of a capability.
 *
 * @param name - The capability, in any form {@link normalizeCapName} accepts.
 * @throws {@link InvalidArgumentError} when the name is not a known capability.
 */
export function capNumber(name: string): number {
  return ALL_CAPS[normalizeCapName(name)]!;
}

/**
 * The full name of a capability number.
 *
 * @throws {@link InvalidArgumentError} when the number is not 0..{@link LAST_CAP}.
 */
export function capName(cap: number): string {
  const name = Number.isInteger(cap) ? CAP_BY_NUMBER[cap] : undefined;
  if (name === undefined) throw new InvalidArgumentError(`unknown capability number ${cap}`);
  return name;
}

/** The full names of capability numbers, in the order given. */
export function capNames(caps: readonly number[]): string[] {
  return caps.map(capName);
}

/** Options that decide a container's capability set, as in `docker run`. */
export interface CapabilityOptions {
  /**
   * Capabilities to add to the default set; `'ALL'` adds every capability
   * (minus those in `capDrop`).
   * @default []
   */
  capAdd?: readonly string[];
  /**
   * Capabilities to remove from the default set; `'ALL'` starts from an empty
   * set, to which `capAdd` is added.
   * @default []
   */
  capDrop?: readonly string[];
  /**
   * Give the container every capability; `capAdd` and `capDrop` are then ignored,
   * as Docker ignores them.
   * @default false
   */
  privileged?: boolean;
}

/**
 * Resolves a container's capability set the way Docker does
 * (`TweakCapabilities`): privileged gets every capability; `capAdd: ['ALL']`
 * gets every capability but those dropped; `capDrop: ['ALL']` gets only those
 * added; otherwise the default set, minus the dropped, plus the added.
 * Names are case-insensitive and may omit the `CAP_` prefix.
 *
 * @returns The capability numbers, sorted and without duplicates.
 * @throws {@link InvalidArgumentError} when a name is not a known capability.
 * @example
 * ```ts
 * resolveCaps({ capAdd: ['NET_ADMIN'], capDrop: ['MKNOD'] });
 * // [0, 1, 3, 4, 5, 6, 7, 8, 10, 12, 13, 18, 29, 31]
 * ```
 */
export function resolveCaps(options: CapabilityOptions = {}): number[] {
  const all = CAP_BY_NUMBER.map((_, i) => i);
  const add = normalizeList(options.capAdd ?? [], 'capAdd');
  const drop = normalizeList(options.capDrop ?? [], 'capDrop');
  if (options.privileged === true) return all;

  let names: string[];
  if (add.includes('ALL')) {
    names = CAP_BY_NUMBER.filter((c) => !drop.includes(c));
  } else if (drop.includes('ALL')) {
    names = add;
  } else {
    names = [...DOCKER_DEFAULT_CAPS.filter((c) => !drop.includes(c)), ...add];
  }
  return [...new Set(names.map((n) => ALL_CAPS[n]!))].sort((a, b) => a - b);
}

function normalizeList(list: readonly string[], field: string): string[] {
  if (!Array.isArray(list)) throw new InvalidArgumentError(`${field}: expected an array of capability names`);
  return list.map((name) => {
    if (typeof name !== 'string') throw new InvalidArgumentError(`${field}: expected an array of capability names`);
    if (name.trim().toUpperCase() === 'ALL') return 'ALL';
    try {
      return normalizeCapName(name);
    } catch (err) {
      throw new InvalidArgumentError(`${field}: unknown capability \`${name}\``, { cause: err });
    }
  });
}

/**
 * The 64-bit capability mask of a set (bit *n* set for capability *n*), as
 * `/proc/<pid>/status` shows it (`CapEff: 00000000a80425fb`) and as `capset(2)`
 * takes it in two 32-bit halves.
 *
 * @param caps - Capability numbers.
 * @throws {@link InvalidArgumentError} when a number is not 0..63.
 * @example
 * ```ts
 * capBitmask(resolveCaps()).toString(16); // 'a80425fb'
 * ```
 */
export function capBitmask(caps: readonly number[]): bigint {
  let mask = 0n;
  for (const cap of caps) {
    if (!Number.isInteger(cap) || cap < 0 || cap > 63) throw new InvalidArgumentError(`capability number ${cap} out of range`);
    mask |= 1n << BigInt(cap);
  }
  return mask;
}

/**
 * The capability numbers set in a 64-bit mask, sorted; the inverse of
 * {@link capBitmask}.
 *
 * @param mask - A mask such as `0xa80425fbn`, or its hex text (`'00000000a80425fb'`).
 * @throws {@link InvalidArgumentError} when the text is not 1 to 16 hex digits.
 */
export function capsFromBitmask(mask: bigint | string): number[] {
  let value: bigint;
  if (typeof mask === 'string') {
    const hex = mask.trim().replace(/^0x/i, '');
    if (!/^[0-9a-f]{1,16}$/i.test(hex)) throw new InvalidArgumentError(`capability mask \`${mask}\` is not 64-bit hex`);
    value = BigInt(`0x${hex}`);
  } else {
    value = mask;
  }
  const caps: number[] = [];
  for (let cap = 0; value > 0n && cap < 64; cap++, value >>= 1n) if (value & 1n) caps.push(cap);
  return caps;
}
