/**
 * A small classic-BPF interpreter over `struct seccomp_data`, so that unit
 * tests can ask a compiled seccomp program for its verdict on a syscall
 * without root and without installing it. It also checks a program the way
 * the kernel does before accepting it (`bpf_check_classic` and
 * `seccomp_check_filter`), and can print one.
 *
 * @module
 */

/** `struct seccomp_data`: what a seccomp program sees of a syscall. */
export interface SeccompData {
  /** The syscall number. */
  nr: number;
  /** The `AUDIT_ARCH_*` value. */
  arch: number;
  /** The instruction pointer; @default 0n */
  instructionPointer?: bigint;
  /** Up to six 64-bit arguments; missing ones are 0. */
  args?: readonly (number | bigint)[];
}

/** The action part of a seccomp return value, and its 16-bit data. */
export interface Verdict {
  action: 'kill_process' | 'kill_thread' | 'trap' | 'errno' | 'user_notif' | 'trace' | 'log' | 'allow' | 'unknown';
  data: number;
}

const SECCOMP_DATA_SIZE = 64;
const MAX_INSNS = 4096;
const MEMWORDS = 16;

// Opcode parts (linux/bpf_common.h).
const cls = (code: number): number => code & 0x07;
const size = (code: number): number => code & 0x18;
const mode = (code: number): number => code & 0xe0;
const op = (code: number): number => code & 0xf0;
const src = (code: number): number => code & 0x08;
const rval = (code: number): number => code & 0x18;
const LD = 0x00, LDX = 0x01, ST = 0x02, STX = 0x03, ALU = 0x04, JMP = 0x05, RET = 0x06, MISC = 0x07;
const W = 0x00;
const IMM = 0x00, ABS = 0x20, MEM = 0x60, LEN = 0x80;
const ADD = 0x00, SUB = 0x10, MUL = 0x20, DIV = 0x30, OR = 0x40, AND = 0x50, LSH = 0x60, RSH = 0x70, NEG = 0x80, MOD = 0x90, XOR = 0xa0;
const JA = 0x00, JEQ = 0x10, JGT = 0x20, JGE = 0x30, JSET = 0x40;
const K = 0x00, X = 0x08, A = 0x10;
const TAX = 0x00, TXA = 0x80;

export interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/** Splits a `struct sock_filter[]` buffer into instructions. */
export function decode(program: Buffer): Insn[] {
  if (program.length % 8 !== 0) throw new Error(`program length ${program.length} is not a multiple of 8`);
  const insns: Insn[] = [];
  for (let at = 0; at < program.length; at += 8) {
    insns.push({
      code: program.readUInt16LE(at),
      jt: program.readUInt8(at + 2),
      jf: program.readUInt8(at + 3),
      k: program.readUInt32LE(at + 4),
    });
  }
  return insns;
}

/** Lays out `struct seccomp_data` (little-endian) for the interpreter. */
export function seccompDataBuffer(data: SeccompData): Buffer {
  const buf = Buffer.alloc(SECCOMP_DATA_SIZE);
  buf.writeInt32LE(data.nr | 0, 0);
  buf.writeUInt32LE(data.arch >>> 0, 4);
  buf.writeBigUInt64LE(data.instructionPointer ?? 0n, 8);
  const args = data.args ?? [];
  if (args.length > 6) throw new Error('at most six syscall arguments');
  args.forEach((arg, i) => buf.writeBigUInt64LE(BigInt.asUintN(64, BigInt(arg)), 16 + 8 * i));
  return buf;
}

/**
 * Rejects a program the kernel would reject: empty or longer than 4096
 * instructions, an opcode seccomp does not allow, a load outside
 * `seccomp_data` or unaligned, a jump past the end, or a last instruction that
 * is not a `ret`.
 */
export function validate(program: Buffer): void {
  const insns = decode(program);
  if (insns.length === 0 || insns.length > MAX_INSNS) throw new Error(`program has ${insns.length} instructions`);
  insns.forEach((insn, pc) => {
    const { code, k } = insn;
    const where = `instruction ${pc} (${format(insn, pc)})`;
    switch (cls(code)) {
      case LD:
        if (mode(code) === ABS) {
          if (size(code) !== W || k >= SECCOMP_DATA_SIZE || k % 4 !== 0) throw new Error(`${where}: bad load`);
        } else if (![IMM, MEM, LEN].includes(mode(code)) || size(code) !== W) {
          throw new Error(`${where}: load mode not allowed in seccomp`);
        }
        if (mode(code) === MEM && k >= MEMWORDS) throw new Error(`${where}: scratch index out of range`);
        break;
      case LDX:
        if (![IMM, MEM, LEN].includes(mode(code)) || size(code) !== W) throw new Error(`${where}: load mode not allowed`);
        if (mode(code) === MEM && k >= MEMWORDS) throw new Error(`${where}: scratch index out of range`);
        break;
      case ST:
      case STX:
        if (k >= MEMWORDS) throw new Error(`${where}: scratch index out of range`);
        break;
      case ALU:
        if (![ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, NEG, MOD, XOR].includes(op(code))) throw new Error(`${where}: bad alu op`);
        if ((op(code) === DIV || op(code) === MOD) && src(code) === K && k === 0) throw new Error(`${where}: division by zero`);
        break;
      case JMP:
        if (op(code) === JA) {
          if (pc + 1 + k >= insns.length) throw new Error(`${where}: jump past the end`);
        } else {
          if (![JEQ, JGT, JGE, JSET].includes(op(code))) throw new Error(`${where}: bad jump op`);
          if (pc + 1 + insn.jt >= insns.length || pc + 1 + insn.jf >= insns.length) throw new Error(`${where}: jump past the end`);
        }
        break;
      case RET:
        if (rval(code) !== K && rval(code) !== A) throw new Error(`${where}: bad ret`);
        break;
      case MISC:
        if (code !== (MISC | TAX) && code !== (MISC | TXA)) throw new Error(`${where}: bad misc op`);
        break;
    }
  });
  if (cls(insns.at(-1)!.code) !== RET) throw new Error('the last instruction is not a ret');
}

/** Runs a program on one syscall and returns the raw 32-bit value it returns. */
export function run(program: Buffer, data: SeccompData): number {
  const insns = decode(program);
  const packet = seccompDataBuffer(data);
  const mem = new Uint32Array(MEMWORDS);
  let a = 0;
  let x = 0;
  for (let pc = 0; pc < insns.length; pc++) {
    const { code, jt, jf, k } = insns[pc]!;
    switch (cls(code)) {
      case LD:
        if (mode(code) === ABS) {
          if (k + 4 > SECCOMP_DATA_SIZE) throw new Error(`load beyond seccomp_data at ${pc}`);
          a = packet.readUInt32LE(k);
        } else if (mode(code) === IMM) a = k;
        else if (mode(code) === MEM) a = mem[k]!;
        else if (mode(code) === LEN) a = SECCOMP_DATA_SIZE;
        else throw new Error(`unsupported load at ${pc}`);
        break;
      case LDX:
        if (mode(code) === IMM) x = k;
        else if (mode(code) === MEM) x = mem[k]!;
        else if (mode(code) === LEN) x = SECCOMP_DATA_SIZE;
        else throw new Error(`unsupported ldx at ${pc}`);
        break;
      case ST:
        mem[k] = a;
        break;
      case STX:
        mem[k] = x;
        break;
      case ALU: {
        const v = src(code) === X ? x : k;
        a = alu(op(code), a, v, pc);
        break;
      }
      case JMP: {
        if (op(code) === JA) {
          pc += k;
          break;
        }
        const v = src(code) === X ? x : k;
        let taken: boolean;
        if (op(code) === JEQ) taken = a === v;
        else if (op(code) === JGT) taken = a > v;
        else if (op(code) === JGE) taken = a >= v;
        else if (op(code) === JSET) taken = (a & v) !== 0;
        else throw new Error(`unsupported jump at ${pc}`);
        pc += taken ? jt : jf;
        break;
      }
      case RET:
        return (rval(code) === A ? a : k) >>> 0;
      case MISC:
        if (code === (MISC | TAX)) x = a;
        else a = x;
        break;
    }
  }
  throw new Error('the program ran off its end');
}

function alu(operation: number, a: number, v: number, pc: number): number {
  switch (operation) {
    case ADD: return (a + v) >>> 0;
    case SUB: return (a - v) >>> 0;
    case MUL: return Number((BigInt(a) * BigInt(v)) & 0xffffffffn);
    case DIV:
      if (v === 0) return 0;
      return Math.floor(a / v) >>> 0;
    case MOD:
      if (v === 0) return 0;
      return a % v;
    case OR: return (a | v) >>> 0;
    case AND: return (a & v) >>> 0;
    case XOR: return (a ^ v) >>> 0;
    case LSH: return v >= 32 ? 0 : (a << v) >>> 0;
    case RSH: return v >= 32 ? 0 : a >>> v;
    case NEG: return -a >>> 0;
    default: throw new Error(`unsupported alu op at ${pc}`);
  }
}

/** Splits a seccomp return value into its action and data. */
export function verdictOf(ret: number): Verdict {
  const data = ret & 0xffff;
  const action = (ret >>> 0) & 0xffff0000;
  switch (action >>> 0) {
    case 0x80000000: return { action: 'kill_process', data };
    case 0x00000000: return { action: 'kill_thread', data };
    case 0x00030000: return { action: 'trap', data };
    case 0x00050000: return { action: 'errno', data };
    case 0x7fc00000: return { action: 'user_notif', data };
    case 0x7ff00000: return { action: 'trace', data };
    case 0x7ffc0000: return { action: 'log', data };
    case 0x7fff0000: return { action: 'allow', data };
    default: return { action: 'unknown', data };
  }
}

/** Runs a program on one syscall and returns its verdict. */
export function evaluate(program: Buffer, data: SeccompData): Verdict {
  return verdictOf(run(program, data));
}

/** A readable listing of a program, one line per instruction. */
export function disassemble(program: Buffer): string[] {
  return decode(program).map((insn, pc) => `${String(pc).padStart(4)}: ${format(insn, pc)}`);
}

function format(insn: Insn, pc: number): string {
  const { code, jt, jf, k } = insn;
  const hex = `0x${k.toString(16)}`;
  switch (cls(code)) {
    case LD:
      return mode(code) === ABS ? `ld [${k}]` : mode(code) === IMM ? `ld #${hex}` : `ld ${code.toString(16)} ${k}`;
    case ALU:
      return `alu ${op(code).toString(16)} #${hex}`;
    case JMP:
      if (op(code) === JA) return `ja ${pc + 1 + k}`;
      return `${({ [JEQ]: 'jeq', [JGT]: 'jgt', [JGE]: 'jge', [JSET]: 'jset' } as Record<number, string>)[op(code)] ?? 'j?'} #${hex} ${pc + 1 + jt} ${pc + 1 + jf}`;
    case RET:
      return `ret #${hex}`;
    default:
      return `op 0x${code.toString(16)} ${jt} ${jf} ${hex}`;
  }
}
