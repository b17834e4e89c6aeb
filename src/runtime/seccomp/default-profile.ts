/**
 * Docker's default seccomp profile (moby `profiles/seccomp/default.json`),
 * expressed as a {@link SeccompProfile}.
 *
 * An allow-list: anything not named fails with EPERM. What it keeps out of a
 * default container, unless the container holds the capability the kernel
 * would demand anyway: mounting and namespace creation (`mount`, `unshare`,
 * `setns`, `clone` with namespace flags: CAP_SYS_ADMIN), kernel modules
 * (CAP_SYS_MODULE), `reboot` (CAP_SYS_BOOT), the clock (CAP_SYS_TIME), `bpf` and
 * `perf_event_open` (CAP_SYS_ADMIN, CAP_BPF, CAP_PERFMON), and the kernel
 * keyring, `kexec_load`, `swapon`, `userfaultfd` … (never). `ptrace` is
 * allowed on kernels from 4.8, where seccomp can no longer be bypassed with
 * it, as Docker does.
 *
 * @module
 */

import type { SeccompProfile, SeccompSyscall } from './profile.js';

// The plain allow-list, unconditional on every architecture. Names that do not
// exist on the target architecture (the *32 and *_time64 variants on 64-bit
// ones) are skipped by the compiler.
const ALLOWED: readonly string[] = [
  '_llseek', '_newselect', 'accept', 'accept4', 'access', 'adjtimex', 'alarm', 'bind', 'brk',
  'capget', 'capset', 'chdir', 'chmod', 'chown', 'chown32',
  'clock_adjtime', 'clock_adjtime64', 'clock_getres', 'clock_getres_time64', 'clock_gettime',
  'clock_gettime64', 'clock_nanosleep', 'clock_nanosleep_time64', 'close', 'close_range', 'connect',
  'copy_file_range', 'creat', 'dup', 'dup2', 'dup3',
  'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_ctl_old', 'epoll_pwait', 'epoll_pwait2',
  'epoll_wait', 'epoll_wait_old', 'eventfd', 'eventfd2', 'execve', 'execveat', 'exit', 'exit_group',
  'faccessat', 'faccessat2', 'fadvise64', 'fadvise64_64', 'fallocate', 'fanotify_mark', 'fchdir',
  'fchmod', 'fchmodat', 'fchown', 'fchown32', 'fchownat', 'fcntl', 'fcntl64', 'fdatasync',
  'fgetxattr', 'flistxattr', 'flock', 'fork', 'fremovexattr', 'fsetxattr', 'fstat', 'fstat64',
  'fstatat64', 'fstatfs', 'fstatfs64', 'fsync', 'ftruncate', 'ftruncate64', 'futex', 'futex_time64',
  'futex_waitv', 'futimesat', 'get_robust_list', 'get_thread_area', 'getcpu', 'getcwd', 'getdents',
  'getdents64', 'getegid', 'getegid32', 'geteuid', 'geteuid32', 'getgid', 'getgid32', 'getgroups',
  'getgroups32', 'getitimer', 'getpeername', 'getpgid', 'getpgrp', 'getpid', 'getppid',
  'getpriority', 'getrandom', 'getresgid', 'getresgid32', 'getresuid', 'getresuid32', 'getrlimit',
  'getrusage', 'getsid', 'getsockname', 'getsockopt', 'gettid', 'gettimeofday', 'getuid',
  'getuid32', 'getxattr', 'inotify_add_watch', 'inotify_init', 'inotify_init1', 'inotify_rm_watch',
  'io_cancel', 'io_destroy', 'io_getevents', 'io_pgetevents', 'io_pgetevents_time64', 'io_setup',
  'io_submit', 'io_uring_enter', 'io_uring_register', 'io_uring_setup', 'ioctl', 'ioprio_get',
  'ioprio_set', 'ipc', 'kill', 'landlock_add_rule', 'landlock_create_ruleset',
  'landlock_restrict_self', 'lchown', 'lchown32', 'lgetxattr', 'link', 'linkat', 'listen',
  'listxattr', 'llistxattr', 'lremovexattr', 'lseek', 'lsetxattr', 'lstat', 'lstat64', 'madvise',
  'membarrier', 'memfd_create', 'memfd_secret', 'mincore', 'mkdir', 'mkdirat', 'mknod', 'mknodat',
  'mlock', 'mlock2', 'mlockall', 'mmap', 'mmap2', 'mprotect', 'mq_getsetattr', 'mq_notify',
  'mq_open', 'mq_timedreceive', 'mq_timedreceive_time64', 'mq_timedsend', 'mq_timedsend_time64',
  'mq_unlink', 'mremap', 'msgctl', 'msgget', 'msgrcv', 'msgsnd', 'msync', 'munlock', 'munlockall',
  'munmap', 'name_to_handle_at', 'nanosleep', 'newfstatat', 'open', 'openat', 'openat2', 'pause',
  'pidfd_open', 'pidfd_send_signal', 'pipe', 'pipe2', 'pkey_alloc', 'pkey_free', 'pkey_mprotect',
  'poll', 'ppoll', 'ppoll_time64', 'prctl', 'pread64', 'preadv', 'preadv2', 'prlimit64',
  'process_mrelease', 'pselect6', 'pselect6_time64', 'pwrite64', 'pwritev', 'pwritev2', 'read',
  'readahead', 'readlink', 'readlinkat', 'readv', 'recv', 'recvfrom', 'recvmmsg', 'recvmmsg_time64',
  'recvmsg', 'remap_file_pages', 'removexattr', 'rename', 'renameat', 'renameat2',
  'restart_syscall', 'rmdir', 'rseq', 'rt_sigaction', 'rt_sigpending', 'rt_sigprocmask',
  'rt_sigqueueinfo', 'rt_sigreturn', 'rt_sigsuspend', 'rt_sigtimedwait', 'rt_sigtimedwait_time64',
  'rt_tgsigqueueinfo', 'sched_get_priority_max', 'sched_get_priority_min', 'sched_getaffinity',
  'sched_getattr', 'sched_getparam', 'sched_getscheduler', 'sched_rr_get_interval',
  'sched_rr_get_interval_time64', 'sched_setaffinity', 'sched_setattr', 'sched_setparam',
  'sched_setscheduler', 'sched_yield', 'seccomp', 'select', 'semctl', 'semget', 'semop',
  'semtimedop', 'semtimedop_time64', 'send', 'sendfile', 'sendfile64', 'sendmmsg', 'sendmsg',
  'sendto', 'set_robust_list', 'set_thread_area', 'set_tid_address', 'setfsgid', 'setfsgid32',
  'setfsuid', 'setfsuid32', 'setgid', 'setgid32', 'setgroups', 'setgroups32', 'setitimer',
  'setpgid', 'setpriority', 'setregid', 'setregid32', 'setresgid', 'setresgid32', 'setresuid',
  'setresuid32', 'setreuid', 'setreuid32', 'setrlimit', 'setsid', 'setsockopt', 'setuid',
  'setuid32', 'setxattr', 'shmat', 'shmctl', 'shmdt', 'shmget', 'shutdown', 'sigaltstack',
  'signalfd', 'signalfd4', 'sigprocmask', 'sigreturn', 'socketcall', 'socketpair', 'splice', 'stat',
  'stat64', 'statfs', 'statfs64', 'statx', 'symlink', 'symlinkat', 'sync', 'sync_file_range',
  'syncfs', 'sysinfo', 'tee', 'tgkill', 'time', 'timer_create', 'timer_delete', 'timer_getoverrun',
  'timer_gettime', 'timer_gettime64', 'timer_settime', 'timer_settime64', 'timerfd_create',
  'timerfd_gettime', 'timerfd_gettime64', 'timerfd_settime', 'timerfd_settime64', 'times', 'tkill',
  'truncate', 'truncate64', 'ugetrlimit', 'umask', 'uname', 'unlink', 'unlinkat', 'utime',
  'utimensat', 'utimensat_time64', 'utimes', 'vfork', 'vmsplice', 'wait4', 'waitid', 'waitpid',
  'write', 'writev',
];

// Syscalls newer than the profile above whose power a container already has
// through an allowed sibling: glibc 2.39+ calls fchmodat2 and treats EPERM (not
// ENOSYS) as a real failure, so leaving them out breaks ordinary programs.
const ALLOWED_NEWER: readonly string[] = [
  'cachestat', 'fchmodat2', 'futex_requeue', 'futex_wait', 'futex_wake', 'map_shadow_stack', 'mseal',
];

// Docker's personality(2) allow-list: PER_LINUX, PER_LINUX32, UNAME26,
// PER_LINUX32|UNAME26, and 0xffffffff (query the current persona).
const PERSONALITIES: readonly number[] = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

// clone(2) flags that create namespaces: CLONE_NEWNS | CLONE_NEWCGROUP |
// CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET.
const CLONE_NAMESPACE_FLAGS = 0x7e020000;

const AF_VSOCK = 40;
const EPERM = 1;
const ENOSYS = 38;

function allow(names: readonly string[], rest: Omit<SeccompSyscall, 'names' | 'action'> = {}): SeccompSyscall {
  return { names, action: 'SCMP_ACT_ALLOW', ...rest };
}

const onlyWith = (...caps: string[]): Pick<SeccompSyscall, 'includes'> => ({ includes: { caps } });

// Built by the first call of dockerDefaultProfile(), not at import: a process whose containers use the
// bundle's precompiled programs never needs it (~0.2 ms of each import, issue 13).
const syscalls = (): readonly SeccompSyscall[] => [
  allow(ALLOWED),
  allow(ALLOWED_NEWER),
  allow(['process_vm_readv', 'process_vm_writev', 'ptrace'], { includes: { minKernel: '4.8' } }),
  // AF_VSOCK reaches the hypervisor's host side, which no container should.
  // Docker allows socket when arg0 != 40, a 64-bit comparison; the kernel reads
  // the family as an int, so 0x1_0000_0028 would pass that test and still open
  // a vsock socket. Refusing on the low half alone closes the gap.
  {
    names: ['socket'],
    action: 'SCMP_ACT_ERRNO',
    errnoRet: EPERM,
    args: [{ index: 0, value: 0xffffffff, valueTwo: AF_VSOCK, op: 'SCMP_CMP_MASKED_EQ' }],
  },
  allow(['socket']),
  ...PERSONALITIES.map((persona) => allow(['personality'], { args: [{ index: 0, value: persona, op: 'SCMP_CMP_EQ' }] })),
  allow(['sync_file_range2', 'swapcontext'], { includes: { arches: ['ppc64le'] } }),
  allow(['arm_fadvise64_64', 'arm_sync_file_range', 'sync_file_range2', 'breakpoint', 'cacheflush', 'set_tls'], {
    includes: { arches: ['arm', 'arm64'] },
  }),
  allow(['arch_prctl'], { includes: { arches: ['amd64', 'x32'] } }),
  allow(['modify_ldt'], { includes: { arches: ['amd64', 'x32', 'x86'] } }),
  allow(['s390_pci_mmio_read', 's390_pci_mmio_write', 's390_runtime_instr'], { includes: { arches: ['s390', 's390x'] } }),
  allow(['riscv_flush_icache'], { includes: { arches: ['riscv64'] } }),
  allow(['open_by_handle_at'], onlyWith('CAP_DAC_READ_SEARCH')),
  allow(
    [
      'bpf', 'clone', 'clone3', 'fanotify_init', 'fsconfig', 'fsmount', 'fsopen', 'fspick', 'lookup_dcookie',
      'mount', 'mount_setattr', 'move_mount', 'open_tree', 'perf_event_open', 'quotactl', 'quotactl_fd',
      'setdomainname', 'sethostname', 'setns', 'syslog', 'umount', 'umount2', 'unshare',
    ],
    onlyWith('CAP_SYS_ADMIN'),
  ),
  allow(['clone'], {
    args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
    excludes: { caps: ['CAP_SYS_ADMIN'], arches: ['s390', 's390x'] },
  }),
  allow(['clone'], {
    args: [{ index: 1, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
    comment: 's390 parameter ordering for clone is different',
    includes: { arches: ['s390', 's390x'] },
    excludes: { caps: ['CAP_SYS_ADMIN'] },
  }),
  // clone3 passes its flags in memory, out of seccomp's reach; ENOSYS makes
  // glibc fall back to clone, whose flags the rule above can check.
  { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS, excludes: { caps: ['CAP_SYS_ADMIN'] } },
  allow(['reboot'], onlyWith('CAP_SYS_BOOT')),
  allow(['chroot'], onlyWith('CAP_SYS_CHROOT')),
  allow(['delete_module', 'init_module', 'finit_module'], onlyWith('CAP_SYS_MODULE')),
  allow(['acct'], onlyWith('CAP_SYS_PACCT')),
  allow(['kcmp', 'pidfd_getfd', 'process_madvise', 'process_vm_readv', 'process_vm_writev', 'ptrace'], onlyWith('CAP_SYS_PTRACE')),
  allow(['iopl', 'ioperm'], onlyWith('CAP_SYS_RAWIO')),
  allow(['settimeofday', 'stime', 'clock_settime', 'clock_settime64'], onlyWith('CAP_SYS_TIME')),
  allow(['vhangup'], onlyWith('CAP_SYS_TTY_CONFIG')),
  allow(['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node'], onlyWith('CAP_SYS_NICE')),
  allow(['syslog'], onlyWith('CAP_SYSLOG')),
  allow(['bpf'], onlyWith('CAP_BPF')),
  allow(['perf_event_open'], onlyWith('CAP_PERFMON')),
];

let profile: SeccompProfile | undefined;

/**
 * Docker's default seccomp profile: default action `SCMP_ACT_ERRNO` with EPERM,
 * about 350 syscall names allowed outright (some exist only on 32-bit
 * architectures; about 300 on x86_64), argument rules for `personality`,
 * `socket` (no AF_VSOCK, judged on the int the kernel reads, where Docker
 * compares all 64 bits) and `clone` (no namespace flags), `clone3` answered
 * with ENOSYS, and capability-conditional groups that open a syscall when the
 * container holds the capability it needs. Besides moby's list it allows a few
 * newer syscalls that only extend an allowed one (`fchmodat2`, the futex2
 * calls, `cachestat`, `map_shadow_stack`, `mseal`).
 *
 * Deeply frozen, and the same object at each call; copy it to derive a custom profile.
 *
 * @example
 * ```ts
 * const program = compileSeccomp(dockerDefaultProfile(), { arch: 'x86_64', caps: DOCKER_DEFAULT_CAPS });
 * ```
 */
export function dockerDefaultProfile(): SeccompProfile {
  return (profile ??= deepFreeze({
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    archMap: [
      { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
      { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
      { architecture: 'SCMP_ARCH_MIPS64', subArchitectures: ['SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64N32'] },
      { architecture: 'SCMP_ARCH_MIPS64N32', subArchitectures: ['SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64'] },
      { architecture: 'SCMP_ARCH_MIPSEL64', subArchitectures: ['SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64N32'] },
      { architecture: 'SCMP_ARCH_MIPSEL64N32', subArchitectures: ['SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64'] },
      { architecture: 'SCMP_ARCH_S390X', subArchitectures: ['SCMP_ARCH_S390'] },
      { architecture: 'SCMP_ARCH_RISCV64', subArchitectures: null },
    ],
    syscalls: syscalls(),
  }));
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
