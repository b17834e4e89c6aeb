import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { InvalidArgumentError } from '../../src/errors.js';
import { DOCKER_DEFAULT_CAPS, capNames, resolveCaps } from '../../src/runtime/capabilities.js';
import {
  AUDIT_ARCH,
  BPF_MAXINSNS,
  compileSeccomp,
  nativeSeccompArch,
  seccompProgram,
  type CompileSeccompOptions,
  type SeccompTargetArch,
} from '../../src/runtime/seccomp/compile.js';
import { dockerDefaultProfile } from '../../src/runtime/seccomp/default-profile.js';
import {
  parseSeccompProfile,
  seccompUnconfined,
  type SeccompAction,
  type SeccompArg,
  type SeccompProfile,
  type SeccompSyscall,
} from '../../src/runtime/seccomp/profile.js';
import { SYSCALLS_AARCH64 } from '../../src/runtime/seccomp/syscalls-aarch64.js';
import { SYSCALLS_X86_64 } from '../../src/runtime/seccomp/syscalls-x86_64.js';
import { decode, evaluate, run, validate, type Verdict } from '../fixtures/bpf-interpreter.js';

const EPERM = 1;
const ENOSYS = 38;
const AUDIT_ARCH_I386 = 0x40000003;
const AUDIT_ARCH_ARM = 0x40000028;
const CLONE_THREAD_FLAGS = 0x3d0f00; // what glibc's pthread_create passes
const SIGCHLD = 17;
const CLONE_NEWNS = 0x20000;
const CLONE_NEWUSER = 0x10000000;
const CLONE_NEWNET = 0x40000000;
const CLONE_NEWPID = 0x20000000;
const AF_UNIX = 1;
const AF_INET = 2;
const AF_VSOCK = 40;

const TABLES = { x86_64: SYSCALLS_X86_64, aarch64: SYSCALLS_AARCH64 };
const allow: Verdict = { action: 'allow', data: 0 };
const eperm: Verdict = { action: 'errno', data: EPERM };
const enosys: Verdict = { action: 'errno', data: ENOSYS };
const killProcess: Verdict = { action: 'kill_process', data: 0 };

function nr(arch: SeccompTargetArch, name: string): number {
  const n = TABLES[arch].get(name);
  assert.notEqual(n, undefined, `${name} on ${arch}`);
  return n!;
}

function program(options: Partial<CompileSeccompOptions> = {}, profile: SeccompProfile = dockerDefaultProfile()): Buffer {
  const bytes = compileSeccomp(profile, { arch: 'x86_64', caps: DOCKER_DEFAULT_CAPS, kernel: '6.1.0', ...options });
  validate(bytes);
  return bytes;
}

function call(prog: Buffer, arch: SeccompTargetArch, name: string, args: (number | bigint)[] = []): Verdict {
  return evaluate(prog, { nr: nr(arch, name), arch: AUDIT_ARCH[arch], args });
}

// Syscalls and arguments with the verdict Docker's default profile gives them
// in a container with Docker's default capabilities on a 6.1 kernel.
const DEFAULT_CASES: [string, (number | bigint)[], Verdict][] = [
  ['read', [0, 0, 0], allow],
  ['write', [1, 0, 0], allow],
  ['openat', [-100, 0, 0], allow],
  ['close', [3], allow],
  ['execve', [], allow],
  ['exit_group', [0], allow],
  ['mmap', [], allow],
  ['futex', [], allow],
  ['rt_sigaction', [], allow],
  ['wait4', [], allow],
  ['ioctl', [], allow],
  ['prctl', [], allow],
  ['seccomp', [], allow],
  ['setuid', [1000], allow],
  ['capset', [], allow],
  ['mknodat', [], allow],
  ['chroot', [], allow], // CAP_SYS_CHROOT is a default capability
  ['arch_prctl', [], allow],
  ['fchmodat2', [], allow],
  ['io_uring_setup', [], allow],
  ['ptrace', [], allow], // Docker allows it from kernel 4.8
  ['clone', [SIGCHLD], allow],
  ['clone', [CLONE_THREAD_FLAGS], allow],
  ['clone', [CLONE_NEWUSER | SIGCHLD], eperm],
  ['clone', [CLONE_NEWNS], eperm],
  ['clone', [CLONE_NEWNET | CLONE_NEWPID], eperm],
  ['clone3', [], enosys],
  ['socket', [AF_UNIX, 1, 0], allow],
  ['socket', [AF_INET, 2, 0], allow],
  ['socket', [AF_VSOCK, 1, 0], eperm],
  // The kernel reads the family as an int: high bits must not smuggle AF_VSOCK past the rule.
  ['socket', [0x1_0000_0000n + BigInt(AF_VSOCK), 1, 0], eperm],
  ['socket', [0xffffffff_00000000n + BigInt(AF_VSOCK), 1, 0], eperm],
  ['socket', [0x1_0000_0000n + BigInt(AF_INET), 1, 0], allow],
  ['personality', [0], allow],
  ['personality', [8], allow],
  ['personality', [0x20000], allow],
  ['personality', [0x20008], allow],
  ['personality', [0xffffffff], allow],
  ['personality', [0x12345], eperm],
  ['personality', [0x1_0000_0000n], eperm], // low half 0, high half not
  ['mount', [], eperm],
  ['umount2', [], eperm],
  ['unshare', [CLONE_NEWUSER], eperm],
  ['setns', [], eperm],
  ['pivot_root', [], eperm],
  ['init_module', [], eperm],
  ['finit_module', [], eperm],
  ['delete_module', [], eperm],
  ['kexec_load', [], eperm],
  ['kexec_file_load', [], eperm],
  ['reboot', [], eperm],
  ['keyctl', [], eperm],
  ['add_key', [], eperm],
  ['request_key', [], eperm],
  ['bpf', [], eperm],
  ['perf_event_open', [], eperm],
  ['swapon', [], eperm],
  ['swapoff', [], eperm],
  ['userfaultfd', [], eperm],
  ['open_by_handle_at', [], eperm],
  ['settimeofday', [], eperm],
  ['clock_settime', [], eperm],
  ['acct', [], eperm],
  ['syslog', [], eperm],
  ['iopl', [], eperm],
  ['ioperm', [], eperm],
  ['sethostname', [], eperm],
  ['setdomainname', [], eperm],
  ['fsopen', [], eperm],
  ['move_mount', [], eperm],
  ['open_tree', [], eperm],
  ['kcmp', [], eperm],
  ['pidfd_getfd', [], eperm],
  ['process_madvise', [], eperm],
  ['vhangup', [], eperm],
  ['mbind', [], eperm],
  ['quotactl', [], eperm],
  ['lookup_dcookie', [], eperm],
  ['uselib', [], eperm],
  ['_sysctl', [], eperm],
];

test('default profile on x86_64: verdicts for a default container', () => {
  const prog = program();
  for (const [name, args, want] of DEFAULT_CASES) {
    assert.deepEqual(call(prog, 'x86_64', name, args), want, `${name}(${args.join(', ')})`);
  }
});

test('default profile: a foreign architecture is killed, x32 and unknown numbers get ENOSYS', () => {
  const prog = program();
  for (const arch of [AUDIT_ARCH_I386, AUDIT_ARCH.aarch64, AUDIT_ARCH_ARM, 0]) {
    assert.deepEqual(evaluate(prog, { nr: 0, arch }), killProcess, `arch 0x${arch.toString(16)}`);
  }
  // x32 read and x32 mount: both refused, whatever x86_64 syscall the low bits name.
  assert.deepEqual(evaluate(prog, { nr: 0x40000000, arch: AUDIT_ARCH.x86_64 }), enosys);
  assert.deepEqual(evaluate(prog, { nr: 0x40000000 + nr('x86_64', 'mount'), arch: AUDIT_ARCH.x86_64 }), enosys);
  // Syscalls newer than any the profile names fail like on an older kernel, so libc falls back.
  assert.deepEqual(evaluate(prog, { nr: 1000, arch: AUDIT_ARCH.x86_64 }), enosys);
  assert.deepEqual(evaluate(prog, { nr: -1, arch: AUDIT_ARCH.x86_64 }), enosys);
});

test('default profile: capabilities open their syscall groups', () => {
  const cases: [string, string, (number | bigint)[]][] = [
    ['CAP_SYS_ADMIN', 'mount', []],
    ['CAP_SYS_ADMIN', 'umount2', []],
    ['CAP_SYS_ADMIN', 'unshare', [CLONE_NEWUSER]],
    ['CAP_SYS_ADMIN', 'setns', []],
    ['CAP_SYS_ADMIN', 'clone', [CLONE_NEWUSER | SIGCHLD]],
    ['CAP_SYS_ADMIN', 'bpf', []],
    ['CAP_SYS_ADMIN', 'sethostname', []],
    ['CAP_SYS_MODULE', 'init_module', []],
    ['CAP_SYS_MODULE', 'finit_module', []],
    ['CAP_SYS_BOOT', 'reboot', []],
    ['CAP_SYS_TIME', 'settimeofday', []],
    ['CAP_SYS_TIME', 'clock_settime', []],
    ['CAP_SYS_PTRACE', 'kcmp', []],
    ['CAP_SYS_PTRACE', 'pidfd_getfd', []],
    ['CAP_SYS_RAWIO', 'iopl', []],
    ['CAP_SYS_PACCT', 'acct', []],
    ['CAP_SYS_NICE', 'mbind', []],
    ['CAP_SYS_TTY_CONFIG', 'vhangup', []],
    ['CAP_SYSLOG', 'syslog', []],
    ['CAP_BPF', 'bpf', []],
    ['CAP_PERFMON', 'perf_event_open', []],
    ['CAP_DAC_READ_SEARCH', 'open_by_handle_at', []],
  ];
  const base = program();
  for (const [cap, name, args] of cases) {
    const withCap = program({ caps: [...DOCKER_DEFAULT_CAPS, cap] });
    assert.deepEqual(call(base, 'x86_64', name, args), eperm, `${name} without ${cap}`);
    assert.deepEqual(call(withCap, 'x86_64', name, args), allow, `${name} with ${cap}`);
  }
  // Short names work as well, and a capability opens only its own group.
  const admin = program({ caps: ['SYS_ADMIN'] });
  assert.deepEqual(call(admin, 'x86_64', 'mount'), allow);
  assert.deepEqual(call(admin, 'x86_64', 'clone3'), allow);
  assert.deepEqual(call(admin, 'x86_64', 'init_module'), eperm);
  assert.deepEqual(call(admin, 'x86_64', 'kexec_load'), eperm);
  assert.deepEqual(call(admin, 'x86_64', 'keyctl'), eperm);
});

test('default profile: ptrace needs kernel 4.8 or CAP_SYS_PTRACE', () => {
  for (const name of ['ptrace', 'process_vm_readv', 'process_vm_writev']) {
    assert.deepEqual(call(program({ kernel: '4.4.0-210-generic' }), 'x86_64', name), eperm, `${name} on 4.4`);
    assert.deepEqual(call(program({ kernel: '4.8.0' }), 'x86_64', name), allow, `${name} on 4.8`);
    assert.deepEqual(call(program({ kernel: '3.10', caps: ['CAP_SYS_PTRACE'] }), 'x86_64', name), allow, `${name} with CAP_SYS_PTRACE`);
  }
});

test('default profile on aarch64', () => {
  const prog = program({ arch: 'aarch64' });
  const cases: [string, (number | bigint)[], Verdict][] = [
    ['read', [], allow],
    ['openat', [], allow],
    ['execve', [], allow],
    ['clone', [SIGCHLD], allow],
    ['clone', [CLONE_NEWUSER], eperm],
    ['clone3', [], enosys],
    ['personality', [0], allow],
    ['personality', [0x12345], eperm],
    ['socket', [AF_VSOCK], eperm],
    ['mount', [], eperm],
    ['unshare', [], eperm],
    ['keyctl', [], eperm],
    ['bpf', [], eperm],
  ];
  for (const [name, args, want] of cases) assert.deepEqual(call(prog, 'aarch64', name, args), want, name);
  assert.deepEqual(evaluate(prog, { nr: 0, arch: AUDIT_ARCH.x86_64 }), killProcess);
  assert.deepEqual(evaluate(prog, { nr: 0, arch: AUDIT_ARCH_ARM }), killProcess);
  // Well-known aarch64 numbers, to catch a table built for the wrong ABI.
  const known: [string, number][] = [['read', 63], ['write', 64], ['openat', 56], ['clone', 220], ['execve', 221],
    ['mount', 40], ['unshare', 97], ['setns', 268], ['bpf', 280], ['clone3', 435], ['fstat', 80], ['renameat', 38]];
  for (const [name, n] of known) assert.equal(SYSCALLS_AARCH64.get(name), n, name);
  assert.equal(SYSCALLS_AARCH64.get('open'), undefined);
  assert.equal(SYSCALLS_X86_64.get('open'), 2);
  assert.equal(SYSCALLS_X86_64.get('clone3'), 435);
});

test('default profile: size and kernel acceptance', () => {
  for (const arch of ['x86_64', 'aarch64'] as const) {
    for (const caps of [DOCKER_DEFAULT_CAPS, capNames(resolveCaps({ privileged: true }))]) {
      const prog = program({ arch, caps });
      assert.ok(prog.length / 8 <= BPF_MAXINSNS);
      // A profile is small enough to cost little per syscall.
      assert.ok(prog.length / 8 < 300, `${arch}: ${prog.length / 8} instructions`);
    }
  }
  // Compiling is deterministic.
  assert.deepEqual(program(), program());
});

test('seccompProgram: default, unconfined, custom', () => {
  const options: CompileSeccompOptions = { arch: 'x86_64', caps: [], kernel: '6.1' };
  assert.equal(seccompProgram(seccompUnconfined, options), null);
  assert.deepEqual(seccompProgram(undefined, options), compileSeccomp(dockerDefaultProfile(), options));
  // The default program is cached, but each caller gets its own copy.
  seccompProgram(undefined, options)!.fill(0);
  assert.deepEqual(seccompProgram(undefined, options), compileSeccomp(dockerDefaultProfile(), options));
  const admin = seccompProgram(undefined, { ...options, caps: ['CAP_SYS_ADMIN'] })!;
  assert.deepEqual(call(admin, 'x86_64', 'mount'), allow);
  const json = JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mount'], action: 'SCMP_ACT_ERRNO' }] });
  const prog = seccompProgram(json, options)!;
  assert.deepEqual(call(prog, 'x86_64', 'mount'), eperm);
  assert.deepEqual(call(prog, 'x86_64', 'keyctl'), allow);
  assert.ok(['x86_64', 'aarch64'].includes(nativeSeccompArch()));
});

test('custom profile: JSON round trip and every action', () => {
  const text = `{
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 38,
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
    "flags": ["SECCOMP_FILTER_FLAG_LOG"],
    "syscalls": [
      { "names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": null, "includes": {}, "excludes": {} },
      { "name": "getpid", "action": "SCMP_ACT_LOG", "comment": "old single-name form" },
      { "names": ["kill"], "action": "SCMP_ACT_KILL_PROCESS" },
      { "names": ["tkill"], "action": "SCMP_ACT_KILL" },
      { "names": ["tgkill"], "action": "SCMP_ACT_KILL_THREAD" },
      { "names": ["getppid"], "action": "SCMP_ACT_TRAP" },
      { "names": ["getuid"], "action": "SCMP_ACT_TRACE", "errnoRet": 1234 },
      { "names": ["getgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13 },
      { "names": ["lseek"], "action": "SCMP_ACT_ALLOW",
        "args": [{ "index": 2, "value": 18446744073709551615, "valueTwo": 18446744073709551614, "op": "SCMP_CMP_MASKED_EQ" }] },
      { "names": ["no_such_syscall"], "action": "SCMP_ACT_ALLOW" }
    ]
  }`;
  const profile = parseSeccompProfile(text);
  assert.deepEqual(profile.syscalls![1]!.names, ['getpid']);
  assert.equal(profile.syscalls![0]!.args, undefined);
  assert.equal(profile.syscalls![8]!.args![0]!.value, 0xffffffffffffffffn);
  // Parsing its own output gives the same profile.
  assert.deepEqual(parseSeccompProfile(profile), profile);

  const prog = program({ caps: [] }, profile);
  const cases: [string, (number | bigint)[], Verdict][] = [
    ['read', [], allow],
    ['write', [], allow],
    ['getpid', [], { action: 'log', data: 0 }],
    ['kill', [], killProcess],
    ['tkill', [], { action: 'kill_thread', data: 0 }],
    ['tgkill', [], { action: 'kill_thread', data: 0 }],
    ['getppid', [], { action: 'trap', data: 0 }],
    ['getuid', [], { action: 'trace', data: 1234 }],
    ['getgid', [], { action: 'errno', data: 13 }],
    ['lseek', [0, 0, 0xfffffffffffffffen], allow],
    ['lseek', [0, 0, 0xffffffffffffffffn], { action: 'errno', data: 38 }],
    ['lseek', [0, 0, 0xfffffffefffffffen], { action: 'errno', data: 38 }],
    ['open', [], { action: 'errno', data: 38 }],
  ];
  for (const [name, args, want] of cases) assert.deepEqual(call(prog, 'x86_64', name, args), want, name);

  // Docker's own profile survives JSON and compiles to the same bytes.
  const reparsed = parseSeccompProfile(JSON.stringify(dockerDefaultProfile()));
  assert.deepEqual(program({}, reparsed), program());
});

test('custom profile: argument operators on 64-bit values', () => {
  const ops: [SeccompArg['op'], (arg: bigint, value: bigint, two: bigint) => boolean][] = [
    ['SCMP_CMP_EQ', (a, v) => a === v],
    ['SCMP_CMP_NE', (a, v) => a !== v],
    ['SCMP_CMP_LT', (a, v) => a < v],
    ['SCMP_CMP_LE', (a, v) => a <= v],
    ['SCMP_CMP_GT', (a, v) => a > v],
    ['SCMP_CMP_GE', (a, v) => a >= v],
    ['SCMP_CMP_MASKED_EQ', (a, v, two) => (a & v) === two],
  ];
  const values = [0n, 1n, 0x7fffffffn, 0xffffffffn, 0x1_0000_0000n, 0x1_0000_0001n, 0x5_0000_0007n, 0xffffffff_00000000n, 0xffffffff_ffffffffn];
  for (const [op, holds] of ops) {
    for (const value of values) {
      const valueTwo = op === 'SCMP_CMP_MASKED_EQ' ? value & 0x0000ffff_0000ffffn : 0n;
      const profile: SeccompProfile = {
        defaultAction: 'SCMP_ACT_ERRNO',
        syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_ALLOW', args: [{ index: 3, value, valueTwo, op }] }],
      };
      const prog = program({}, profile);
      const probes = new Set<bigint>();
      for (const v of values) for (const d of [-1n, 0n, 1n, 0x1_0000_0000n, -0x1_0000_0000n]) probes.add(BigInt.asUintN(64, v + d));
      for (const arg of probes) {
        const want = holds(arg, value, valueTwo) ? allow : eperm;
        assert.deepEqual(call(prog, 'x86_64', 'getpid', [0, 0, 0, arg]), want, `${op} ${value.toString(16)}: arg ${arg.toString(16)}`);
      }
    }
  }
});

test('custom profile: conditions on distinct arguments AND, on the same argument OR', () => {
  const profile: SeccompProfile = {
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [
      { names: ['getpid'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }, { index: 1, value: 2, op: 'SCMP_CMP_EQ' }] },
      { names: ['getppid'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }, { index: 0, value: 2, op: 'SCMP_CMP_EQ' }] },
    ],
  };
  const prog = program({}, profile);
  assert.deepEqual(call(prog, 'x86_64', 'getpid', [1, 2]), allow);
  assert.deepEqual(call(prog, 'x86_64', 'getpid', [1, 3]), eperm);
  assert.deepEqual(call(prog, 'x86_64', 'getpid', [2, 2]), eperm);
  assert.deepEqual(call(prog, 'x86_64', 'getppid', [1]), allow);
  assert.deepEqual(call(prog, 'x86_64', 'getppid', [2]), allow);
  assert.deepEqual(call(prog, 'x86_64', 'getppid', [3]), eperm);
});

test('custom profile: includes and excludes by arch and kernel', () => {
  const profile: SeccompProfile = {
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [
      { names: ['read'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['arm64'] } },
      { names: ['write'], action: 'SCMP_ACT_ALLOW', excludes: { arches: ['amd64'] } },
      { names: ['close'], action: 'SCMP_ACT_ALLOW', excludes: { minKernel: '5.10' } },
      { names: ['openat'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN'] } },
    ],
  };
  const x86 = program({ kernel: '5.4' }, profile);
  const arm = program({ arch: 'aarch64', kernel: '5.10.0' }, profile);
  assert.deepEqual(call(x86, 'x86_64', 'read'), eperm);
  assert.deepEqual(call(arm, 'aarch64', 'read'), allow);
  assert.deepEqual(call(x86, 'x86_64', 'write'), eperm);
  assert.deepEqual(call(arm, 'aarch64', 'write'), allow);
  assert.deepEqual(call(x86, 'x86_64', 'close'), allow);
  assert.deepEqual(call(arm, 'aarch64', 'close'), eperm);
  assert.deepEqual(call(program({ caps: ['CAP_NET_ADMIN'] }, profile), 'x86_64', 'openat'), eperm);
  assert.deepEqual(call(program({ caps: ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN'] }, profile), 'x86_64', 'openat'), allow);
});

// A deterministic pseudo-random source, so that a failure reproduces.
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x1_0000_0000;
  };
}

// The profile's meaning, computed directly, to compare the BPF program with.
function expectedVerdict(profile: SeccompProfile, arch: SeccompTargetArch, sysnr: number, args: bigint[]): number {
  const table = TABLES[arch];
  const ret = (action: SeccompAction, errno?: number): number => {
    const base: Record<SeccompAction, number> = {
      SCMP_ACT_ALLOW: 0x7fff0000, SCMP_ACT_ERRNO: 0x50000, SCMP_ACT_KILL: 0, SCMP_ACT_KILL_THREAD: 0,
      SCMP_ACT_KILL_PROCESS: 0x80000000, SCMP_ACT_TRAP: 0x30000, SCMP_ACT_LOG: 0x7ffc0000, SCMP_ACT_TRACE: 0x7ff00000, SCMP_ACT_NOTIFY: 0x7fc00000,
    };
    return (base[action] | (action === 'SCMP_ACT_ERRNO' || action === 'SCMP_ACT_TRACE' ? (errno ?? 1) : 0)) >>> 0;
  };
  const holds = (a: SeccompArg): boolean => {
    const arg = args[a.index] ?? 0n;
    const v = BigInt(a.value);
    switch (a.op) {
      case 'SCMP_CMP_EQ': return arg === v;
      case 'SCMP_CMP_NE': return arg !== v;
      case 'SCMP_CMP_LT': return arg < v;
      case 'SCMP_CMP_LE': return arg <= v;
      case 'SCMP_CMP_GT': return arg > v;
      case 'SCMP_CMP_GE': return arg >= v;
      case 'SCMP_CMP_MASKED_EQ': return (arg & v) === BigInt(a.valueTwo ?? 0);
    }
  };
  const named = (profile.syscalls ?? []).flatMap((s) => s.names.map((n) => table.get(n) ?? -1));
  const maxNamed = Math.max(-1, ...named);
  if (arch === 'x86_64' && sysnr >= 0x40000000) return 0x50000 | ENOSYS;
  if (profile.defaultAction === 'SCMP_ACT_ERRNO' && maxNamed >= 0 && sysnr > maxNamed) return 0x50000 | ENOSYS;
  for (const s of profile.syscalls ?? []) {
    if (!s.names.some((n) => table.get(n) === sysnr)) continue;
    const argList = s.args ?? [];
    const sameIndex = new Set(argList.map((a) => a.index)).size !== argList.length;
    const matched = argList.length === 0 || (sameIndex ? argList.some(holds) : argList.every(holds));
    if (matched) return ret(s.action, s.errnoRet);
  }
  return ret(profile.defaultAction, profile.defaultErrnoRet);
}

test('random large profiles: long jumps stay correct', () => {
  const rand = prng(0x5eccc0);
  const names = [...SYSCALLS_X86_64.keys()];
  const ops = ['SCMP_CMP_EQ', 'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_GT', 'SCMP_CMP_GE', 'SCMP_CMP_MASKED_EQ'] as const;
  const actions: SeccompAction[] = ['SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_TRAP', 'SCMP_ACT_LOG'];
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
  const u64 = (): bigint => {
    const r = rand();
    if (r < 0.2) return BigInt(Math.floor(rand() * 16));
    if (r < 0.4) return BigInt(Math.floor(rand() * 0x1_0000_0000));
    return (BigInt(Math.floor(rand() * 0x1_0000_0000)) << 32n) | BigInt(Math.floor(rand() * 0x1_0000_0000));
  };
  let longest = 0;
  let trampolines = 0;
  for (let round = 0; round < 6; round++) {
    const syscalls: SeccompSyscall[] = [];
    for (let i = 0; i < 150; i++) {
      const args: SeccompArg[] = [];
      const nargs = Math.floor(rand() * 3);
      for (let j = 0; j < nargs; j++) {
        const value = u64();
        args.push({ index: Math.floor(rand() * 6), value, valueTwo: value & u64(), op: pick(ops) });
      }
      const action = pick(actions);
      syscalls.push({ names: [pick(names), pick(names)], action, ...(action === 'SCMP_ACT_ERRNO' ? { errnoRet: 1 + Math.floor(rand() * 100) } : {}), args });
    }
    const profile: SeccompProfile = { defaultAction: round % 2 === 0 ? 'SCMP_ACT_ERRNO' : 'SCMP_ACT_ALLOW', syscalls };
    const prog = program({}, profile);
    longest = Math.max(longest, prog.length / 8);
    trampolines += decode(prog).filter((insn) => insn.code === 0x05).length;
    for (const s of syscalls) {
      const sysnr = SYSCALLS_X86_64.get(s.names[0]!)!;
      for (let probe = 0; probe < 6; probe++) {
        const args = Array.from({ length: 6 }, () => u64());
        // Make some conditions hit their boundary exactly.
        for (const a of s.args ?? []) if (rand() < 0.5) args[a.index] = BigInt.asUintN(64, BigInt(a.value) + BigInt(Math.floor(rand() * 3) - 1));
        const raw = evaluateRaw(prog, sysnr, args);
        assert.equal(raw, expectedVerdict(profile, 'x86_64', sysnr, args), `round ${round}, ${s.names[0]}(${args.map((a) => a.toString(16)).join(', ')})`);
      }
    }
    for (let sysnr = 0; sysnr < 520; sysnr++) {
      assert.equal(evaluateRaw(prog, sysnr, []), expectedVerdict(profile, 'x86_64', sysnr, []), `round ${round}, nr ${sysnr}`);
    }
  }
  // The profiles must be long enough that some jumps needed a trampoline (`ja`).
  assert.ok(longest > 600, `longest program ${longest} instructions`);
  assert.ok(trampolines > 0, 'no long jump was exercised');
});

function evaluateRaw(prog: Buffer, sysnr: number, args: bigint[]): number {
  return run(prog, { nr: sysnr, arch: AUDIT_ARCH.x86_64, args });
}

test('a profile too big for the kernel is refused', () => {
  const names = [...SYSCALLS_X86_64.keys()];
  const syscalls: SeccompSyscall[] = names.map((name) => ({
    names: [name],
    action: 'SCMP_ACT_ALLOW',
    args: [
      { index: 0, value: 0x1_0000_0001n, op: 'SCMP_CMP_GT' },
      { index: 1, value: 0x2_0000_0002n, op: 'SCMP_CMP_LT' },
      { index: 2, value: 0x3_0000_0003n, op: 'SCMP_CMP_NE' },
    ],
  }));
  assert.throws(
    () => compileSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', syscalls }, { arch: 'x86_64', caps: [] }),
    (err: unknown) => err instanceof InvalidArgumentError && /more than the kernel's 4096/.test(err.message),
  );
});

test('malformed profiles are rejected, naming the bad field', () => {
  const base = { defaultAction: 'SCMP_ACT_ERRNO' };
  const rule = (extra: object) => ({ ...base, syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', ...extra }] });
  const cases: [string | object, RegExp][] = [
    ['{"defaultAction": ', /not JSON/],
    [[], /`\(root\)`: expected an object/],
    [{}, /`defaultAction`: missing/],
    [{ defaultAction: 'SCMP_ACT_FOO' }, /`defaultAction`: unknown action "SCMP_ACT_FOO"/],
    [{ defaultAction: 'SCMP_ACT_NOTIFY' }, /`defaultAction`: SCMP_ACT_NOTIFY cannot be the default/],
    [{ ...base, defaultErrnoRet: -1 }, /`defaultErrnoRet`: expected an integer 0 to 4095/],
    [{ defaultAction: 'SCMP_ACT_ALLOW', defaultErrnoRet: 1 }, /`defaultErrnoRet`: only valid with SCMP_ACT_ERRNO/],
    [{ ...base, architectures: ['x86_64'] }, /`architectures\[0\]`: unknown architecture "x86_64"/],
    [{ ...base, architectures: ['SCMP_ARCH_X86_64'], archMap: [] }, /`archMap`: use either/],
    [{ ...base, flags: ['TSYNC'] }, /`flags\[0\]`: unknown flag/],
    [{ ...base, syscall: [] }, /`syscall`: unknown field/],
    [{ ...base, syscalls: {} }, /`syscalls`: expected an array/],
    [{ ...base, syscalls: [{ action: 'SCMP_ACT_ALLOW' }] }, /`syscalls\[0\].names`: expected at least one syscall name/],
    [{ ...base, syscalls: [{ names: 'read', action: 'SCMP_ACT_ALLOW' }] }, /`syscalls\[0\].names`: expected an array/],
    [{ ...base, syscalls: [{ names: [42], action: 'SCMP_ACT_ALLOW' }] }, /`syscalls\[0\].names\[0\]`: expected a syscall name/],
    [{ ...base, syscalls: [{ names: ['read'] }] }, /`syscalls\[0\].action`: missing/],
    [rule({ name: 'write' }), /`syscalls\[0\].name`: use either `name` or `names`/],
    [rule({ exclude: { caps: ['CAP_SYS_ADMIN'] } }), /`syscalls\[0\].exclude`: unknown field/],
    [rule({ errnoRet: 1 }), /`syscalls\[0\].errnoRet`: only valid with SCMP_ACT_ERRNO/],
    [{ ...base, syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: 5000 }] }, /`syscalls\[0\].errnoRet`: expected an integer 0 to 4095/],
    [{ ...base, syscalls: [{ names: ['read'], action: 'SCMP_ACT_NOTIFY' }] }, /`syscalls\[0\].action`: SCMP_ACT_NOTIFY needs `listenerPath`/],
    [rule({ args: {} }), /`syscalls\[0\].args`: expected an array/],
    [rule({ args: [{ index: 6, value: 0, op: 'SCMP_CMP_EQ' }] }), /`syscalls\[0\].args\[0\].index`: expected an argument index 0 to 5/],
    [rule({ args: [{ index: 0, value: 0, op: 'SCMP_CMP_FOO' }] }), /`syscalls\[0\].args\[0\].op`: unknown operator "SCMP_CMP_FOO"/],
    [rule({ args: [{ index: 0, value: 0 }] }), /`syscalls\[0\].args\[0\].op`: missing/],
    [rule({ args: [{ index: 0, op: 'SCMP_CMP_EQ' }] }), /`syscalls\[0\].args\[0\].value`: missing/],
    [rule({ args: [{ index: 0, value: -1, op: 'SCMP_CMP_EQ' }] }), /`syscalls\[0\].args\[0\].value`: expected an unsigned 64-bit integer/],
    [rule({ args: [{ index: 0, value: 1.5, op: 'SCMP_CMP_EQ' }] }), /`syscalls\[0\].args\[0\].value`: expected an unsigned 64-bit integer/],
    [rule({ args: [{ index: 0, value: 2 ** 60, op: 'SCMP_CMP_EQ' }] }), /`syscalls\[0\].args\[0\].value`: .* lost precision/],
    [rule({ args: [{ index: 0, value: 1n << 64n, op: 'SCMP_CMP_EQ' }] }), /`syscalls\[0\].args\[0\].value`: .* outside the unsigned 64-bit range/],
    [`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":18446744073709551616,"op":"SCMP_CMP_EQ"}]}]}`,
      /`syscalls\[0\].args\[0\].value`: .* outside the unsigned 64-bit range/],
    [rule({ args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ', extra: 1 }] }), /`syscalls\[0\].args\[0\].extra`: unknown field/],
    [rule({ includes: { caps: ['SYS_ADMIN'] } }), /`syscalls\[0\].includes.caps\[0\]`: expected a capability name/],
    [rule({ includes: { minKernel: '4' } }), /`syscalls\[0\].includes.minKernel`: expected a kernel version/],
    [rule({ excludes: { arches: [1] } }), /`syscalls\[0\].excludes.arches\[0\]`: expected an architecture name/],
    [rule({ includes: [] }), /`syscalls\[0\].includes`: expected an object/],
  ];
  for (const [input, message] of cases) {
    assert.throws(
      () => parseSeccompProfile(input),
      (err: unknown) => err instanceof InvalidArgumentError && err.code === 'ERR_DOCKLESS_INVALID_ARGUMENT' && message.test(err.message),
      `${typeof input === 'string' ? input : JSON.stringify(input, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))} should fail with ${message}`,
    );
  }
  // compileSeccomp validates too, and refuses what it cannot compile.
  assert.throws(() => compileSeccomp({ defaultAction: 'SCMP_ACT_FOO' } as unknown as SeccompProfile, { arch: 'x86_64', caps: [] }), InvalidArgumentError);
  assert.throws(
    () => compileSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', listenerPath: '/run/l.sock', syscalls: [{ names: ['read'], action: 'SCMP_ACT_NOTIFY' }] }, { arch: 'x86_64', caps: [] }),
    /SCMP_ACT_NOTIFY is not supported/,
  );
  assert.throws(() => compileSeccomp(dockerDefaultProfile(), { arch: 'x86_64', caps: ['CAP_NOPE'] }), InvalidArgumentError);
  assert.throws(() => compileSeccomp(dockerDefaultProfile(), { arch: 'mips' as SeccompTargetArch, caps: [] }), InvalidArgumentError);
  assert.throws(() => compileSeccomp(dockerDefaultProfile(), { arch: 'x86_64', caps: [], kernel: 'linux' }), InvalidArgumentError);
});

test('the default profile (dockerDefaultProfile) is frozen, one object, and valid', () => {
  assert.ok(Object.isFrozen(dockerDefaultProfile()));
  assert.equal(dockerDefaultProfile(), dockerDefaultProfile());
  assert.ok(Object.isFrozen(dockerDefaultProfile().syscalls![0]!.names));
  assert.doesNotThrow(() => parseSeccompProfile(dockerDefaultProfile()));
  const allowed = dockerDefaultProfile().syscalls![0]!.names;
  assert.ok(allowed.length > 300, `${allowed.length} names`);
  assert.equal(new Set(allowed).size, allowed.length, 'no duplicates');
  for (const denied of ['mount', 'unshare', 'setns', 'keyctl', 'add_key', 'bpf', 'kexec_load', 'reboot', 'swapon', 'init_module', 'ptrace', 'clone', 'clone3', 'socket', 'personality']) {
    assert.ok(!allowed.includes(denied), `${denied} is not allowed unconditionally`);
  }
});
