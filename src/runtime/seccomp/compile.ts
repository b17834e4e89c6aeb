/**
 * The seccomp compiler: a {@link SeccompProfile} in, the classic BPF program the
 * kernel runs on every syscall out (`struct sock_filter[]`, 8 bytes per
 * instruction: u16 code, u8 jt, u8 jf, u32 k, little-endian). The helper only
 * installs the bytes, after `PR_SET_NO_NEW_PRIVS`.
 *
 * The program, for one native architecture:
 *
 * 1. `seccomp_data.arch` must be the target's audit arch, else KILL_PROCESS
 *    (a 32-bit compat syscall has other numbers and must not be judged by
 *    these rules).
 * 2. A binary search over the syscall number, on ranges of numbers that share
 *    a verdict, reaches either a `ret` or the syscall's rule chain.
 * 3. A rule chain tries the syscall's rules in profile order; the first rule
 *    whose argument conditions all hold decides, else the default action.
 *    64-bit arguments are compared as two 32-bit halves.
 *
 * Numbers on x86_64 with the x32 bit (≥ 0x40000000) fail with ENOSYS. With
 * an errno default action, numbers above the highest syscall the profile names
 * also fail with ENOSYS rather than the default errno, as runc does, so that
 * libc falls back from syscalls newer than the profile.
 *
 * Classic BPF jumps only forward, and conditional jumps at most 255
 * instructions; the program is emitted back to front, so every target already
 * has a position, and a conditional jump to a farther target goes through an
 * unconditional `ja` (32-bit offset) placed right after it.
 *
 * @module
 */

import { release } from 'node:os';
import { InvalidArgumentError } from '../../errors.js';
import { normalizeCapName } from '../capabilities.js';
import { dockerDefaultProfile } from './default-profile.js';
import {
  parseSeccompProfile,
  seccompUnconfined,
  type SeccompAction,
  type SeccompArg,
  type SeccompFilter,
  type SeccompProfile,
  type SeccompSetting,
  type SeccompSyscall,
} from './profile.js';
import { SYSCALLS_AARCH64 } from './syscalls-aarch64.js';
import { SYSCALLS_X86_64 } from './syscalls-x86_64.js';

/** The architectures dockless compiles seccomp programs for. */
export type SeccompTargetArch = 'x86_64' | 'aarch64';

/** Options of {@link compileSeccomp}. */
export interface CompileSeccompOptions {
  /** The container's (native) architecture. */
  arch: SeccompTargetArch;
  /**
   * The container's capabilities (`CAP_SYS_ADMIN` or `SYS_ADMIN`), which decide
   * the rules' `includes.caps` / `excludes.caps`, as Docker decides them from
   * the bounding set.
   */
  caps: readonly string[];
  /**
   * The kernel version (`6.1.0-18-amd64`; only major.minor count) that decides
   * the rules' `minKernel`.
   * @default the running kernel, `os.release()`
   */
  kernel?: string;
}

/** The `AUDIT_ARCH_*` value the kernel puts in `seccomp_data.arch`, per target. */
export const AUDIT_ARCH: Readonly<Record<SeccompTargetArch, number>> = Object.freeze({
  x86_64: 0xc000003e,
  aarch64: 0xc00000b7,
});

/** The `SECCOMP_RET_*` action values a filter returns (the low 16 bits carry data). */
export const SECCOMP_RET = Object.freeze({
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  USER_NOTIF: 0x7fc00000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
});

/** The kernel's limit on a filter's length (`BPF_MAXINSNS`). */
export const BPF_MAXINSNS = 4096;

/** The size of one `struct sock_filter`. */
export const SOCK_FILTER_SIZE = 8;

/** `__X32_SYSCALL_BIT`: x32 syscalls are the x86_64 numbers with this bit set. */
const X32_SYSCALL_BIT = 0x40000000;
const EPERM = 1;
const ENOSYS = 38;

// Classic BPF opcodes used here (linux/filter.h, linux/bpf_common.h).
const LD_W_ABS = 0x20;
const ALU_AND_K = 0x54;
const JMP_JA = 0x05;
const JMP_JEQ_K = 0x15;
const JMP_JGT_K = 0x25;
const JMP_JGE_K = 0x35;
const RET_K = 0x06;

// struct seccomp_data offsets; both targets are little-endian, so an
// argument's low half comes first.
const OFFSET_NR = 0;
const OFFSET_ARCH = 4;
const argLow = (index: number): number => 16 + 8 * index;
const argHigh = (index: number): number => 20 + 8 * index;

const TABLES: Record<SeccompTargetArch, ReadonlyMap<string, number>> = {
  x86_64: SYSCALLS_X86_64,
  aarch64: SYSCALLS_AARCH64,
};

// The names a profile's `includes.arches` / `excludes.arches` may use for each
// target: Docker's (Go's GOARCH) first.
const ARCH_ALIASES: Record<SeccompTargetArch, readonly string[]> = {
  x86_64: ['amd64', 'x86_64', 'SCMP_ARCH_X86_64'],
  aarch64: ['arm64', 'aarch64', 'SCMP_ARCH_AARCH64'],
};

/**
 * Compiles a seccomp profile into a classic BPF program for one architecture
 * and one container's capabilities and kernel.
 *
 * Which rules apply is decided here, once, as Docker does: a rule applies when
 * the container has every capability in `includes.caps`, none in
 * `excludes.caps`, the architecture is in `includes.arches` and not in
 * `excludes.arches`, and the kernel is at least `includes.minKernel` and below
 * `excludes.minKernel`. Syscall names unknown on the architecture are skipped.
 *
 * @param profile - The profile; validated with {@link parseSeccompProfile} first.
 * @param options - Architecture, capabilities, kernel.
 * @returns The program as `struct sock_filter[]` bytes, at most
 *   {@link BPF_MAXINSNS} instructions.
 * @throws {@link InvalidArgumentError} when the profile is invalid, uses
 *   `SCMP_ACT_NOTIFY`, names an unknown capability in `caps`, or compiles to
 *   more than {@link BPF_MAXINSNS} instructions.
 * @example
 * ```ts
 * const program = compileSeccomp(dockerDefaultProfile(), {
 *   arch: 'x86_64',
 *   caps: capNames(resolveCaps({ capAdd: ['SYS_PTRACE'] })),
 * });
 * program.length / 8; // instructions
 * ```
 */
export function compileSeccomp(profile: SeccompProfile, options: CompileSeccompOptions): Buffer {
  const checked = parseSeccompProfile(profile);
  const arch = options.arch;
  const table = TABLES[arch];
  if (table === undefined) {
    throw new InvalidArgumentError(`seccomp: unsupported architecture \`${String(arch)}\` (expected x86_64 or aarch64)`);
  }
  const caps = new Set(options.caps.map(normalizeCapName));
  const kernel = parseKernel(options.kernel ?? release(), options.kernel === undefined ? 'running kernel' : 'kernel');

  const defaultRet = actionValue(checked.defaultAction, checked.defaultErrnoRet, 'defaultAction');
  const rulesByNr = new Map<number, Rule[]>();
  for (const [i, syscall] of (checked.syscalls ?? []).entries()) {
    if (!applies(syscall, arch, caps, kernel)) continue;
    const ret = actionValue(syscall.action, syscall.errnoRet, `syscalls[${i}].action`);
    for (const conds of alternatives(syscall.args ?? [])) {
      for (const name of syscall.names) {
        const nr = table.get(name);
        if (nr === undefined) continue;
        let rules = rulesByNr.get(nr);
        if (rules === undefined) rulesByNr.set(nr, (rules = []));
        rules.push({ conds, ret });
      }
    }
  }

  const ranges = verdictRanges(rulesByNr, defaultRet, checked.defaultAction, arch, table);
  const program = emitProgram(ranges, AUDIT_ARCH[arch]);
  if (program.length > BPF_MAXINSNS) {
    throw new InvalidArgumentError(
      `seccomp profile compiles to ${program.length} instructions, more than the kernel's ${BPF_MAXINSNS}`,
    );
  }
  return encode(program);
}

const defaultPrograms = new Map<string, Buffer>();

/**
 * The default profile's programs compiled at build time, for the default
 * capability set on each architecture: what `tools/bundle.mjs` puts in
 * `dist/bundle` (as the constant below), so that a process's first container
 * does not compile the profile with a cold JIT. A program compiled for
 * `kernel`, the highest `minKernel` the profile names, is the program of every
 * kernel from that one on.
 */
export interface PrecompiledSeccomp {
  /** The kernel version the programs were compiled for: the profile's highest `minKernel`. */
  kernel: string;
  /** Base64 programs by `<arch>|<capabilities, sorted, comma-separated>`. */
  programs: Record<string, string>;
}

// Replaced with the table by the bundler (esbuild `define`); absent when running from dist/ or the sources.
declare const DOCKLESS_PRECOMPILED_SECCOMP: PrecompiledSeccomp | undefined;

/**
 * Compiles the table of {@link PrecompiledSeccomp} for the given capability
 * sets (Docker's default set, as full names) on both architectures.
 */
export function precompileDefaultSeccomp(capSets: readonly (readonly string[])[]): PrecompiledSeccomp {
  const kernels = (dockerDefaultProfile().syscalls ?? []).flatMap((s) => [s.includes?.minKernel, s.excludes?.minKernel]);
  let kernel = '0.0';
  for (const k of kernels) if (k !== undefined && kernelAtLeast(parseKernel(k, 'minKernel'), kernel)) kernel = k;
  const programs: Record<string, string> = {};
  for (const arch of ['x86_64', 'aarch64'] as const) {
    for (const caps of capSets) {
      programs[`${arch}|${[...caps].sort().join(',')}`] = compileSeccomp(dockerDefaultProfile(), { arch, caps, kernel }).toString('base64');
    }
  }
  return { kernel, programs };
}

/** The build-time program for this default-profile key, when there is one and it holds for `kernel`. */
export function precompiledSeccomp(
  table: PrecompiledSeccomp | undefined,
  arch: string,
  caps: Iterable<string>,
  kernel: string,
): Buffer | undefined {
  const program = table?.programs[`${arch}|${[...caps].sort().join(',')}`];
  if (program === undefined || !kernelAtLeast(parseKernel(kernel, 'kernel'), table!.kernel)) return undefined;
  return Buffer.from(program, 'base64');
}

/**
 * The seccomp program for a container's setting: Docker's default profile when
 * the setting is omitted, none (`null`) for {@link seccompUnconfined}, else the
 * given profile (object or JSON text). Privileged containers run unconfined in
 * Docker; the caller decides that by passing `'unconfined'`. Programs of the
 * default profile are cached per architecture, capability set and kernel.
 *
 * @returns The program bytes, or `null` when the container runs unconfined.
 * @throws {@link InvalidArgumentError} as {@link parseSeccompProfile} and {@link compileSeccomp} do.
 */
export function seccompProgram(setting: SeccompSetting | undefined, options: CompileSeccompOptions): Buffer | null {
  if (setting === seccompUnconfined) return null;
  if (setting === undefined) {
    // Nearly every container uses the default profile with the same few
    // inputs; compiling it costs milliseconds of the start-latency budget.
    const key = `${options.arch}|${[...options.caps].sort().join(',')}|${options.kernel ?? ''}`;
    let program = defaultPrograms.get(key);
    if (program === undefined) {
      const table = typeof DOCKLESS_PRECOMPILED_SECCOMP === 'object' ? DOCKLESS_PRECOMPILED_SECCOMP : undefined;
      program = precompiledSeccomp(table, options.arch, options.caps, options.kernel ?? release()) ?? compileSeccomp(dockerDefaultProfile(), options);
      if (defaultPrograms.size >= 64) defaultPrograms.clear();
      defaultPrograms.set(key, program);
    }
    return Buffer.from(program);
  }
  const profile = typeof setting === 'string' ? parseSeccompProfile(setting) : setting;
  return compileSeccomp(profile, options);
}

/**
 * The seccomp target matching this Node process's architecture.
 *
 * @throws {@link InvalidArgumentError} on architectures other than x64 and arm64.
 */
export function nativeSeccompArch(): SeccompTargetArch {
  if (process.arch === 'x64') return 'x86_64';
  if (process.arch === 'arm64') return 'aarch64';
  throw new InvalidArgumentError(`seccomp: unsupported architecture \`${process.arch}\``);
}

/** A condition on one argument, values as unsigned 64-bit bigints. */
interface Cond {
  index: number;
  op: SeccompArg['op'];
  value: bigint;
  valueTwo: bigint;
}

/** One way for a syscall to match: all `conds` hold → return `ret`. */
interface Rule {
  conds: Cond[];
  ret: number;
}

/** Syscall numbers `start` to `end` (inclusive) share a verdict. */
interface Range {
  start: number;
  end: number;
  key: string;
  rules: Rule[];
  fallback: number;
}

function applies(
  syscall: SeccompSyscall,
  arch: SeccompTargetArch,
  caps: ReadonlySet<string>,
  kernel: readonly [number, number],
): boolean {
  const inc: SeccompFilter = syscall.includes ?? {};
  const exc: SeccompFilter = syscall.excludes ?? {};
  const onArch = (arches: readonly string[]): boolean => arches.some((a) => ARCH_ALIASES[arch].includes(a));
  if (exc.arches !== undefined && onArch(exc.arches)) return false;
  if (exc.caps !== undefined && exc.caps.some((c) => caps.has(c))) return false;
  if (exc.minKernel !== undefined && kernelAtLeast(kernel, exc.minKernel)) return false;
  if (inc.arches !== undefined && inc.arches.length > 0 && !onArch(inc.arches)) return false;
  if (inc.caps !== undefined && !inc.caps.every((c) => caps.has(c))) return false;
  if (inc.minKernel !== undefined && !kernelAtLeast(kernel, inc.minKernel)) return false;
  return true;
}

// The argument conditions of a rule as alternatives, each a list that must all
// hold. Like runc: conditions on distinct arguments are ANDed, but when two
// test the same argument each becomes a rule of its own (ORed).
function alternatives(args: readonly SeccompArg[]): Cond[][] {
  const conds = args.map(
    (a): Cond => ({ index: a.index, op: a.op, value: BigInt(a.value), valueTwo: BigInt(a.valueTwo ?? 0) }),
  );
  const indexes = new Set(conds.map((c) => c.index));
  if (indexes.size === conds.length) return [conds];
  return conds.map((c) => [c]);
}

function actionValue(action: SeccompAction, errnoRet: number | undefined, field: string): number {
  switch (action) {
    case 'SCMP_ACT_ALLOW':
      return SECCOMP_RET.ALLOW;
    case 'SCMP_ACT_ERRNO':
      return SECCOMP_RET.ERRNO | (errnoRet ?? EPERM);
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
      return SECCOMP_RET.KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS':
      return SECCOMP_RET.KILL_PROCESS;
    case 'SCMP_ACT_TRAP':
      return SECCOMP_RET.TRAP;
    case 'SCMP_ACT_LOG':
      return SECCOMP_RET.LOG;
    case 'SCMP_ACT_TRACE':
      return (SECCOMP_RET.TRACE | (errnoRet ?? EPERM)) >>> 0;
    case 'SCMP_ACT_NOTIFY':
      throw new InvalidArgumentError(`seccomp profile: \`${field}\`: SCMP_ACT_NOTIFY is not supported`);
  }
}

function parseKernel(version: string, what: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(version);
  if (m === null) throw new InvalidArgumentError(`seccomp: ${what} version \`${version}\` is not major.minor`);
  return [Number(m[1]), Number(m[2])];
}

function kernelAtLeast(kernel: readonly [number, number], min: string): boolean {
  const [major, minor] = parseKernel(min, 'minKernel');
  return kernel[0] > major || (kernel[0] === major && kernel[1] >= minor);
}

// Splits the 32-bit syscall number space into ranges with one verdict each.
function verdictRanges(
  rulesByNr: ReadonlyMap<number, Rule[]>,
  defaultRet: number,
  defaultAction: SeccompAction,
  arch: SeccompTargetArch,
  table: ReadonlyMap<string, number>,
): Range[] {
  const enosys = SECCOMP_RET.ERRNO | ENOSYS;
  const maxKnown = Math.max(...table.values());
  const maxNamed = rulesByNr.size > 0 ? Math.max(...rulesByNr.keys()) : -1;
  const enosysAbove = defaultAction === 'SCMP_ACT_ERRNO' && maxNamed >= 0 ? maxNamed : Infinity;

  const ranges: Range[] = [];
  const push = (start: number, end: number, key: string, rules: Rule[], fallback: number): void => {
    const last = ranges.at(-1);
    if (last !== undefined && last.key === key && last.end === start - 1) last.end = end;
    else ranges.push({ start, end, key, rules, fallback });
  };
  const retRange = (start: number, end: number, ret: number): void => push(start, end, `ret:${ret}`, [], ret);

  const known = Math.min(maxKnown, enosysAbove);
  for (let nr = 0; nr <= known; nr++) {
    const rules = chain(rulesByNr.get(nr) ?? [], defaultRet);
    if (rules.length === 0) retRange(nr, nr, defaultRet);
    else if (rules[0]!.conds.length === 0) retRange(nr, nr, rules[0]!.ret);
    else push(nr, nr, `chain:${nr}`, rules, defaultRet);
  }
  const x32 = arch === 'x86_64' ? X32_SYSCALL_BIT : 0x1_0000_0000;
  if (known + 1 < x32) retRange(known + 1, x32 - 1, enosysAbove === Infinity ? defaultRet : enosys);
  // x32 syscalls would be judged by x86_64 numbers they do not mean; a kernel
  // without x32 support answers ENOSYS, so programs see exactly that.
  if (x32 <= 0xffffffff) retRange(x32, 0xffffffff, enosys);
  return ranges;
}

// The rules worth testing: none after the first unconditional one, and no
// trailing ones whose verdict equals the fallback anyway.
function chain(rules: readonly Rule[], fallback: number): Rule[] {
  const firstUnconditional = rules.findIndex((r) => r.conds.length === 0);
  const kept = firstUnconditional < 0 ? [...rules] : rules.slice(0, firstUnconditional + 1);
  while (kept.length > 0 && kept.at(-1)!.ret === fallback) kept.pop();
  return kept;
}

interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/** A position counted from the program's end: 0 is the last instruction. */
type Label = number;

// Builds a program from its end backwards, so that every jump's target is
// already placed when the jump is emitted.
class Emitter {
  readonly reversed: Insn[] = [];
  private readonly rets = new Map<number, Label>();

  private get head(): Label {
    return this.reversed.length - 1;
  }

  private push(insn: Insn): Label {
    this.reversed.push(insn);
    return this.head;
  }

  /** An unconditional jump. */
  ja(target: Label): Label {
    return this.push({ code: JMP_JA, jt: 0, jf: 0, k: this.reversed.length - target - 1 });
  }

  /** A non-jump instruction that continues at `next`. */
  stmt(code: number, k: number, next: Label): Label {
    if (next !== this.head) this.ja(next);
    return this.push({ code, jt: 0, jf: 0, k: k >>> 0 });
  }

  /**
   * A `ret`, shared with an earlier identical one when that is near (within
   * the reach of a conditional jump, with room for the code emitted before the
   * jump that will use it), else a new one: cheaper than a trampoline.
   */
  ret(k: number): Label {
    const cached = this.rets.get(k);
    if (cached !== undefined && this.reversed.length - cached < 200) return cached;
    const label = this.push({ code: RET_K, jt: 0, jf: 0, k: k >>> 0 });
    this.rets.set(k, label);
    return label;
  }

  /** A conditional jump: to `onTrue` when the test holds, else `onFalse`. */
  jump(code: number, k: number, onTrue: Label, onFalse: Label): Label {
    if (onTrue === onFalse) return onTrue;
    let t = onTrue;
    let f = onFalse;
    // Each trampoline pushes the other target one further away: re-check both.
    for (;;) {
      if (this.reversed.length - f - 1 > 255) f = this.ja(f);
      else if (this.reversed.length - t - 1 > 255) t = this.ja(t);
      else break;
    }
    const at = this.reversed.length;
    return this.push({ code, jt: at - t - 1, jf: at - f - 1, k: k >>> 0 });
  }

  /** `onTrue` when the condition holds, else `onFalse`; clobbers A. */
  cond(c: Cond, onTrue: Label, onFalse: Label): Label {
    const low = (v: bigint): number => Number(v & 0xffffffffn);
    const high = (v: bigint): number => Number((v >> 32n) & 0xffffffffn);
    switch (c.op) {
      case 'SCMP_CMP_EQ':
        return this.eq(c.index, c.value, onTrue, onFalse);
      case 'SCMP_CMP_NE':
        return this.eq(c.index, c.value, onFalse, onTrue);
      case 'SCMP_CMP_GT':
        return this.above(c.index, c.value, true, onTrue, onFalse);
      case 'SCMP_CMP_GE':
        return this.above(c.index, c.value, false, onTrue, onFalse);
      case 'SCMP_CMP_LT':
        return this.above(c.index, c.value, false, onFalse, onTrue);
      case 'SCMP_CMP_LE':
        return this.above(c.index, c.value, true, onFalse, onTrue);
      case 'SCMP_CMP_MASKED_EQ': {
        const lowPart = this.maskedHalf(argLow(c.index), low(c.value), low(c.valueTwo), onTrue, onFalse);
        return this.maskedHalf(argHigh(c.index), high(c.value), high(c.valueTwo), lowPart, onFalse);
      }
    }
  }

  private eq(index: number, value: bigint, onTrue: Label, onFalse: Label): Label {
    const lowTest = this.jump(JMP_JEQ_K, Number(value & 0xffffffffn), onTrue, onFalse);
    const lowLoad = this.stmt(LD_W_ABS, argLow(index), lowTest);
    const highTest = this.jump(JMP_JEQ_K, Number(value >> 32n), lowLoad, onFalse);
    return this.stmt(LD_W_ABS, argHigh(index), highTest);
  }

  // arg > value (strict) or arg >= value, unsigned 64-bit: the high halves
  // decide unless equal, then the low halves do.
  private above(index: number, value: bigint, strict: boolean, onTrue: Label, onFalse: Label): Label {
    const lowTest = this.jump(strict ? JMP_JGT_K : JMP_JGE_K, Number(value & 0xffffffffn), onTrue, onFalse);
    const lowLoad = this.stmt(LD_W_ABS, argLow(index), lowTest);
    const high = Number(value >> 32n);
    const highEqual = this.jump(JMP_JEQ_K, high, lowLoad, onFalse);
    const highAbove = this.jump(JMP_JGT_K, high, onTrue, highEqual);
    return this.stmt(LD_W_ABS, argHigh(index), highAbove);
  }

  // (half & mask) == want, for one 32-bit half.
  private maskedHalf(offset: number, mask: number, want: number, onTrue: Label, onFalse: Label): Label {
    if ((want & ~mask) !== 0) return onFalse;
    if (mask === 0) return onTrue;
    const test = this.jump(JMP_JEQ_K, want, onTrue, onFalse);
    const and = mask === 0xffffffff ? test : this.stmt(ALU_AND_K, mask, test);
    return this.stmt(LD_W_ABS, offset, and);
  }
}

function emitProgram(ranges: readonly Range[], auditArch: number): Insn[] {
  const e = new Emitter();

  const leaf = (range: Range): Label => {
    if (range.rules.length === 0) return e.ret(range.fallback);
    let next = e.ret(range.fallback);
    for (const rule of [...range.rules].reverse()) {
      let entry = e.ret(rule.ret);
      for (const cond of [...rule.conds].reverse()) entry = e.cond(cond, entry, next);
      next = entry;
    }
    return next;
  };

  // Binary search on the syscall number (in A) over ranges[lo..hi].
  const search = (lo: number, hi: number): Label => {
    if (lo === hi) return leaf(ranges[lo]!);
    const mid = (lo + hi + 1) >> 1;
    const upper = search(mid, hi);
    const lower = search(lo, mid - 1);
    return e.jump(JMP_JGE_K, ranges[mid]!.start, upper, lower);
  };

  const dispatch = search(0, ranges.length - 1);
  const loadNr = e.stmt(LD_W_ABS, OFFSET_NR, dispatch);
  const kill = e.ret(SECCOMP_RET.KILL_PROCESS);
  const archTest = e.jump(JMP_JEQ_K, auditArch, loadNr, kill);
  e.stmt(LD_W_ABS, OFFSET_ARCH, archTest);
  return e.reversed.reverse();
}

function encode(program: readonly Insn[]): Buffer {
  const buf = Buffer.alloc(program.length * SOCK_FILTER_SIZE);
  program.forEach((insn, i) => {
    const at = i * SOCK_FILTER_SIZE;
    buf.writeUInt16LE(insn.code, at);
    buf.writeUInt8(insn.jt, at + 2);
    buf.writeUInt8(insn.jf, at + 3);
    buf.writeUInt32LE(insn.k >>> 0, at + 4);
  });
  return buf;
}
