/**
 * Seccomp profiles in Docker's JSON format (`docker run --security-opt
 * seccomp=profile.json`): the types, and {@link parseSeccompProfile}, which
 * validates untrusted JSON into a {@link SeccompProfile} with every field
 * checked and a clear error naming the first bad one.
 *
 * A *profile* is a default action plus a list of *syscall rules*; a rule names
 * syscalls, an action, optional argument conditions (all of which must hold)
 * and optional `includes` / `excludes` filters deciding, per container, whether
 * the rule applies at all (by capability, architecture or kernel version).
 *
 * @module
 */

import { InvalidArgumentError } from '../../errors.js';

/** The actions a rule or the profile's default can take, as libseccomp names them. */
export const SECCOMP_ACTIONS = [
  'SCMP_ACT_KILL',
  'SCMP_ACT_KILL_THREAD',
  'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_TRAP',
  'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE',
  'SCMP_ACT_ALLOW',
  'SCMP_ACT_LOG',
  'SCMP_ACT_NOTIFY',
] as const;

/**
 * What the kernel does with a matching syscall: kill the thread
 * (`SCMP_ACT_KILL`, `SCMP_ACT_KILL_THREAD`) or the whole process
 * (`SCMP_ACT_KILL_PROCESS`), send SIGSYS (`SCMP_ACT_TRAP`), fail it with an errno
 * (`SCMP_ACT_ERRNO`, `errnoRet`, EPERM when omitted), notify a ptrace tracer
 * (`SCMP_ACT_TRACE`), allow it (`SCMP_ACT_ALLOW`), allow and log it
 * (`SCMP_ACT_LOG`), or ask a user-space listener (`SCMP_ACT_NOTIFY`, which
 * dockless does not support and rejects at compile time).
 */
export type SeccompAction = (typeof SECCOMP_ACTIONS)[number];

/** The argument comparison operators, as libseccomp names them. */
export const SECCOMP_OPERATORS = [
  'SCMP_CMP_NE',
  'SCMP_CMP_LT',
  'SCMP_CMP_LE',
  'SCMP_CMP_EQ',
  'SCMP_CMP_GE',
  'SCMP_CMP_GT',
  'SCMP_CMP_MASKED_EQ',
] as const;

/**
 * How an argument is compared with a rule's value: unsigned 64-bit `!=`, `<`,
 * `<=`, `==`, `>=`, `>`, or `(arg & value) == valueTwo` for `SCMP_CMP_MASKED_EQ`.
 */
export type SeccompOperator = (typeof SECCOMP_OPERATORS)[number];

/** The architecture names libseccomp knows, as a profile's `architectures` lists them. */
export const SECCOMP_ARCHES = [
  'SCMP_ARCH_X86',
  'SCMP_ARCH_X86_64',
  'SCMP_ARCH_X32',
  'SCMP_ARCH_ARM',
  'SCMP_ARCH_AARCH64',
  'SCMP_ARCH_LOONGARCH64',
  'SCMP_ARCH_M68K',
  'SCMP_ARCH_MIPS',
  'SCMP_ARCH_MIPS64',
  'SCMP_ARCH_MIPS64N32',
  'SCMP_ARCH_MIPSEL',
  'SCMP_ARCH_MIPSEL64',
  'SCMP_ARCH_MIPSEL64N32',
  'SCMP_ARCH_PPC',
  'SCMP_ARCH_PPC64',
  'SCMP_ARCH_PPC64LE',
  'SCMP_ARCH_S390',
  'SCMP_ARCH_S390X',
  'SCMP_ARCH_PARISC',
  'SCMP_ARCH_PARISC64',
  'SCMP_ARCH_RISCV64',
  'SCMP_ARCH_SH',
  'SCMP_ARCH_SHEB',
] as const;

/** A libseccomp architecture name, e.g. `SCMP_ARCH_X86_64`. */
export type SeccompArch = (typeof SECCOMP_ARCHES)[number];

/** The filter flags a profile may ask for (`seccomp(2)`'s `SECCOMP_FILTER_FLAG_*`). */
export const SECCOMP_FLAGS = [
  'SECCOMP_FILTER_FLAG_TSYNC',
  'SECCOMP_FILTER_FLAG_LOG',
  'SECCOMP_FILTER_FLAG_SPEC_ALLOW',
  'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV',
] as const;

/** A `seccomp(2)` filter flag name. */
export type SeccompFlag = (typeof SECCOMP_FLAGS)[number];

/**
 * An unsigned 64-bit argument value. JSON numbers above 2^53 lose precision in
 * JavaScript, so such values come out of {@link parseSeccompProfile} as `bigint`.
 */
export type SeccompValue = number | bigint;

/** One condition on a syscall argument. */
export interface SeccompArg {
  /** The argument's position, 0 to 5. */
  index: number;
  /** The value compared with; the mask for `SCMP_CMP_MASKED_EQ`. */
  value: SeccompValue;
  /**
   * The value the masked argument must equal, for `SCMP_CMP_MASKED_EQ` only.
   * @default 0
   */
  valueTwo?: SeccompValue;
  /** The comparison. */
  op: SeccompOperator;
}

/** A condition on the container deciding whether a rule applies (`includes`) or does not (`excludes`). */
export interface SeccompFilter {
  /**
   * Capabilities (`CAP_SYS_ADMIN`, …). In `includes` the rule applies only if the
   * container has all of them; in `excludes` it is skipped if it has any.
   */
  caps?: readonly string[];
  /**
   * Architectures in Docker's (Go's) spelling: `amd64`, `arm64`, `x86`, `x32`,
   * `arm`, `s390x`, …. In `includes` the rule applies only on one of them; in
   * `excludes` it is skipped on them.
   */
  arches?: readonly string[];
  /**
   * A kernel version `major.minor`. In `includes` the rule applies only on this
   * kernel or newer; in `excludes` only on older kernels.
   */
  minKernel?: string;
}

/** A rule: syscalls, what to do with them, and when. */
export interface SeccompSyscall {
  /** The syscall names the rule covers; names unknown on the target architecture are skipped. */
  names: readonly string[];
  /** What to do when the rule matches. */
  action: SeccompAction;
  /**
   * The errno for `SCMP_ACT_ERRNO`, or the message number for `SCMP_ACT_TRACE`.
   * @default 1 (EPERM)
   */
  errnoRet?: number;
  /**
   * Argument conditions, all of which must hold for the rule to match. When two
   * conditions test the same argument they are instead alternatives, each a
   * rule of its own (runc's behaviour).
   * @default []
   */
  args?: readonly SeccompArg[];
  /** Apply the rule only to containers that pass this filter. */
  includes?: SeccompFilter;
  /** Skip the rule for containers that match this filter. */
  excludes?: SeccompFilter;
  /** Free text, ignored. */
  comment?: string;
}

/** A native architecture with the architectures it can also run (Docker's `archMap`). */
export interface SeccompArchMap {
  /** The native architecture. */
  architecture: SeccompArch;
  /** The compatibility architectures it runs. */
  subArchitectures?: readonly SeccompArch[] | null;
}

/**
 * A seccomp profile in Docker's JSON format.
 *
 * dockless compiles a profile for the container's native architecture only:
 * `architectures` and `archMap` are validated but any other architecture's
 * syscalls (32-bit compat, x32) are refused by the compiled program.
 */
export interface SeccompProfile {
  /** What to do with a syscall no rule matches. */
  defaultAction: SeccompAction;
  /**
   * The errno of a `SCMP_ACT_ERRNO` default action.
   * @default 1 (EPERM)
   */
  defaultErrnoRet?: number;
  /** The architectures the profile is meant for; see the note on the interface. */
  architectures?: readonly SeccompArch[];
  /** Docker's per-native-architecture alternative to `architectures`. */
  archMap?: readonly SeccompArchMap[];
  /** `seccomp(2)` flags requested by the profile; validated, not applied. */
  flags?: readonly SeccompFlag[];
  /** The socket of a `SCMP_ACT_NOTIFY` listener; validated, not supported. */
  listenerPath?: string;
  /** Opaque data for the listener. */
  listenerMetadata?: string;
  /** The rules, tried in order for each syscall. */
  syscalls?: readonly SeccompSyscall[];
}

/**
 * The seccomp setting that disables filtering (`--security-opt seccomp=unconfined`).
 * Docker also runs privileged containers unconfined.
 */
export const seccompUnconfined = 'unconfined' as const;

/**
 * A container's seccomp setting: omitted for Docker's default profile,
 * {@link seccompUnconfined} for none, a profile object, or a profile's JSON text.
 */
export type SeccompSetting = typeof seccompUnconfined | SeccompProfile | string;

const U64_MAX = (1n << 64n) - 1n;
const MAX_ERRNO = 4095;

/**
 * Validates a seccomp profile in Docker's JSON format and returns a normalised
 * copy: `null` fields dropped, the deprecated single `name` turned into
 * `names`, argument values above 2^53 as `bigint`.
 *
 * Stricter than Docker in one way: unknown fields are errors, so that a typo
 * such as `"exclude"` cannot silently widen a rule.
 *
 * @param input - The JSON text, or an already parsed object.
 * @returns The validated profile.
 * @throws {@link InvalidArgumentError} naming the first bad field, e.g.
 *   `` invalid seccomp profile: `syscalls[3].args[0].op`: unknown operator "SCMP_CMP_FOO" ``.
 * @example
 * ```ts
 * const profile = parseSeccompProfile(await readFile('profile.json', 'utf8'));
 * const program = compileSeccomp(profile, { arch: 'x86_64', caps: [] });
 * ```
 */
export function parseSeccompProfile(input: string | object): SeccompProfile {
  let raw: unknown = input;
  if (typeof input === 'string') {
    try {
      raw = JSON.parse(quoteLongNumbers(input));
    } catch (err) {
      throw new InvalidArgumentError(`invalid seccomp profile: not JSON: ${(err as Error).message}`, { cause: err });
    }
  }
  const root = object(raw, '(root)');
  checkKeys(root, '', ['defaultAction', 'defaultErrnoRet', 'architectures', 'archMap', 'flags', 'listenerPath', 'listenerMetadata', 'syscalls', 'comment']);

  const defaultAction = action(root.defaultAction, 'defaultAction');
  if (defaultAction === 'SCMP_ACT_NOTIFY') fail('defaultAction', 'SCMP_ACT_NOTIFY cannot be the default action');
  const profile: SeccompProfile = { defaultAction };

  if (root.defaultErrnoRet != null) {
    profile.defaultErrnoRet = errno(root.defaultErrnoRet, 'defaultErrnoRet', defaultAction);
  }
  if (root.architectures != null && root.archMap != null) {
    fail('archMap', 'use either `architectures` or `archMap`, not both');
  }
  if (root.architectures != null) {
    profile.architectures = array(root.architectures, 'architectures').map((a, i) => arch(a, `architectures[${i}]`));
  }
  if (root.archMap != null) {
    profile.archMap = array(root.archMap, 'archMap').map((entry, i) => {
      const path = `archMap[${i}]`;
      const obj = object(entry, path);
      checkKeys(obj, path, ['architecture', 'subArchitectures']);
      const out: SeccompArchMap = { architecture: arch(obj.architecture, `${path}.architecture`) };
      if (obj.subArchitectures != null) {
        out.subArchitectures = array(obj.subArchitectures, `${path}.subArchitectures`).map((a, j) =>
          arch(a, `${path}.subArchitectures[${j}]`),
        );
      }
      return out;
    });
  }
  if (root.flags != null) {
    profile.flags = array(root.flags, 'flags').map((f, i) => {
      if (!(SECCOMP_FLAGS as readonly unknown[]).includes(f)) fail(`flags[${i}]`, `unknown flag ${show(f)}`);
      return f as SeccompFlag;
    });
  }
  if (root.listenerPath != null) profile.listenerPath = string(root.listenerPath, 'listenerPath');
  if (root.listenerMetadata != null) profile.listenerMetadata = string(root.listenerMetadata, 'listenerMetadata');
  if (root.syscalls != null) {
    profile.syscalls = array(root.syscalls, 'syscalls').map((s, i) => syscallRule(s, `syscalls[${i}]`, profile));
  }
  return profile;
}

function syscallRule(value: unknown, path: string, profile: SeccompProfile): SeccompSyscall {
  const obj = object(value, path);
  checkKeys(obj, path, ['names', 'name', 'action', 'errnoRet', 'args', 'includes', 'excludes', 'comment']);

  if (obj.name != null && obj.names != null) fail(`${path}.name`, 'use either `name` or `names`, not both');
  const names =
    obj.name != null
      ? [syscallName(obj.name, `${path}.name`)]
      : array(obj.names ?? [], `${path}.names`).map((n, i) => syscallName(n, `${path}.names[${i}]`));
  if (names.length === 0) fail(`${path}.names`, 'expected at least one syscall name');

  const act = action(obj.action, `${path}.action`);
  if (act === 'SCMP_ACT_NOTIFY' && profile.listenerPath === undefined) {
    fail(`${path}.action`, 'SCMP_ACT_NOTIFY needs `listenerPath`');
  }
  const rule: SeccompSyscall = { names, action: act };
  if (obj.errnoRet != null) rule.errnoRet = errno(obj.errnoRet, `${path}.errnoRet`, act);
  if (obj.args != null) {
    rule.args = array(obj.args, `${path}.args`).map((a, i) => arg(a, `${path}.args[${i}]`));
  }
  if (obj.includes != null) rule.includes = filter(obj.includes, `${path}.includes`);
  if (obj.excludes != null) rule.excludes = filter(obj.excludes, `${path}.excludes`);
  if (obj.comment != null) rule.comment = string(obj.comment, `${path}.comment`);
  return rule;
}

function arg(value: unknown, path: string): SeccompArg {
  const obj = object(value, path);
  checkKeys(obj, path, ['index', 'value', 'valueTwo', 'op']);
  const index = obj.index;
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index > 5) {
    fail(`${path}.index`, `expected an argument index 0 to 5, got ${show(index)}`);
  }
  if (obj.op == null) fail(`${path}.op`, 'missing');
  if (!(SECCOMP_OPERATORS as readonly unknown[]).includes(obj.op)) fail(`${path}.op`, `unknown operator ${show(obj.op)}`);
  if (obj.value == null) fail(`${path}.value`, 'missing');
  const out: SeccompArg = { index, value: u64(obj.value, `${path}.value`), op: obj.op as SeccompOperator };
  if (obj.valueTwo != null) out.valueTwo = u64(obj.valueTwo, `${path}.valueTwo`);
  return out;
}

function filter(value: unknown, path: string): SeccompFilter {
  const obj = object(value, path);
  checkKeys(obj, path, ['caps', 'arches', 'minKernel']);
  const out: SeccompFilter = {};
  if (obj.caps != null) {
    out.caps = array(obj.caps, `${path}.caps`).map((c, i) => {
      if (typeof c !== 'string' || !/^CAP_[A-Z0-9_]+$/.test(c)) fail(`${path}.caps[${i}]`, `expected a capability name like CAP_SYS_ADMIN, got ${show(c)}`);
      return c;
    });
  }
  if (obj.arches != null) {
    out.arches = array(obj.arches, `${path}.arches`).map((a, i) => {
      if (typeof a !== 'string' || a === '') fail(`${path}.arches[${i}]`, `expected an architecture name, got ${show(a)}`);
      return a;
    });
  }
  if (obj.minKernel != null) {
    const k = obj.minKernel;
    if (typeof k !== 'string' || !/^\d+\.\d+$/.test(k)) fail(`${path}.minKernel`, `expected a kernel version like "4.8", got ${show(k)}`);
    out.minKernel = k;
  }
  return out;
}

function action(value: unknown, path: string): SeccompAction {
  if (value == null) fail(path, 'missing');
  if (!(SECCOMP_ACTIONS as readonly unknown[]).includes(value)) fail(path, `unknown action ${show(value)}`);
  return value as SeccompAction;
}

function arch(value: unknown, path: string): SeccompArch {
  if (!(SECCOMP_ARCHES as readonly unknown[]).includes(value)) fail(path, `unknown architecture ${show(value)}`);
  return value as SeccompArch;
}

function errno(value: unknown, path: string, act: SeccompAction): number {
  if (act !== 'SCMP_ACT_ERRNO' && act !== 'SCMP_ACT_TRACE') fail(path, `only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not ${act}`);
  const max = act === 'SCMP_ACT_TRACE' ? 0xffff : MAX_ERRNO;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    fail(path, `expected an integer 0 to ${max}, got ${show(value)}`);
  }
  return value;
}

function syscallName(value: unknown, path: string): string {
  if (typeof value !== 'string' || !/^[a-z_][a-z0-9_]*$/.test(value)) fail(path, `expected a syscall name, got ${show(value)}`);
  return value;
}

function u64(value: unknown, path: string): SeccompValue {
  let big: bigint;
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0) fail(path, `expected an unsigned 64-bit integer, got ${show(value)}`);
    if (!Number.isSafeInteger(value)) fail(path, `${value} is above 2^53 and lost precision; pass it as a bigint or a decimal string`);
    return value;
  } else if (typeof value === 'bigint') {
    big = value;
  } else if (typeof value === 'string' && /^\d+$/.test(value)) {
    big = BigInt(value);
  } else {
    fail(path, `expected an unsigned 64-bit integer, got ${show(value)}`);
  }
  if (big < 0n || big > U64_MAX) fail(path, `${big} is outside the unsigned 64-bit range`);
  return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

function object(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, `expected an object, got ${show(value)}`);
  return value as Record<string, unknown>;
}

function array(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) fail(path, `expected an array, got ${show(value)}`);
  return value;
}

function string(value: unknown, path: string): string {
  if (typeof value !== 'string') fail(path, `expected a string, got ${show(value)}`);
  return value;
}

function checkKeys(obj: Record<string, unknown>, path: string, allowed: readonly string[]): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) fail(path === '' ? key : `${path}.${key}`, 'unknown field');
  }
}

function show(value: unknown): string {
  if (typeof value === 'bigint') return `${value}`;
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function fail(path: string, what: string): never {
  throw new InvalidArgumentError(`invalid seccomp profile: \`${path}\`: ${what}`);
}

// JSON.parse turns integers above 2^53 into imprecise doubles; a 64-bit mask
// such as 18446744073709551615 would silently change. Quote long literals in
// `value` / `valueTwo` positions so that u64() sees their exact digits.
function quoteLongNumbers(text: string): string {
  return text.replace(/("value(?:Two)?"\s*:\s*)(\d{16,})(?![\d.eE])/g, '$1"$2"');
}
