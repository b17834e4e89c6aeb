/**
 * The container defaults, decided here and applied by the helper: mounts,
 * device nodes, masked and read-only paths, environment. Docker's choices.
 *
 * @module
 */

/** One mount as the helper takes it: `--mount TYPE SRC DST OPTS` (or `--mount-nofollow`). */
export interface HelperMount {
  type: string;
  source: string;
  target: string;
  options: string[];
  /**
   * The runtime's own mount (`--mount-nofollow`): the helper refuses a target
   * with a symlink anywhere in it, so that an image cannot redirect it. A user's
   * mount leaves it unset: its symlinks are followed, inside the root.
   * @default false
   */
  nofollow?: boolean;
}

/** One device node as the helper takes it: `--mknod PATH TYPE MAJOR MINOR MODE UID GID`. */
export interface HelperDevice {
  path: string;
  /** Character, block or FIFO. */
  type: 'c' | 'b' | 'p';
  major: number;
  minor: number;
  mode: number;
  /** Owner of the node. @default 0 */
  uid?: number;
  /** Group of the node. @default 0 */
  gid?: number;
}

/** The mounts every container gets, before its own. */
export const DEFAULT_MOUNTS: readonly HelperMount[] = [
  { type: 'proc', source: 'proc', target: '/proc', nofollow: true, options: ['nosuid', 'noexec', 'nodev'] },
  { type: 'tmpfs', source: 'tmpfs', target: '/dev', nofollow: true, options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
  {
    type: 'devpts',
    source: 'devpts',
    target: '/dev/pts',
    nofollow: true,
    options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'],
  },
  { type: 'tmpfs', source: 'shm', target: '/dev/shm', nofollow: true, options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
  { type: 'mqueue', source: 'mqueue', target: '/dev/mqueue', nofollow: true, options: ['nosuid', 'noexec', 'nodev'] },
  { type: 'sysfs', source: 'sysfs', target: '/sys', nofollow: true, options: ['ro', 'nosuid', 'noexec', 'nodev'] },
];

/** The only device nodes a default container has: the safe ones. */
export const DEFAULT_DEVICES: readonly HelperDevice[] = [
  { path: '/dev/null', type: 'c', major: 1, minor: 3, mode: 0o666 },
  { path: '/dev/zero', type: 'c', major: 1, minor: 5, mode: 0o666 },
  { path: '/dev/full', type: 'c', major: 1, minor: 7, mode: 0o666 },
  { path: '/dev/random', type: 'c', major: 1, minor: 8, mode: 0o666 },
  { path: '/dev/urandom', type: 'c', major: 1, minor: 9, mode: 0o666 },
  { path: '/dev/tty', type: 'c', major: 5, minor: 0, mode: 0o666 },
];

/** Symlinks in /dev: `[target, path]`. */
export const DEFAULT_DEV_SYMLINKS: readonly (readonly [string, string])[] = [
  ['/proc/self/fd', '/dev/fd'],
  ['/proc/self/fd/0', '/dev/stdin'],
  ['/proc/self/fd/1', '/dev/stdout'],
  ['/proc/self/fd/2', '/dev/stderr'],
  ['pts/ptmx', '/dev/ptmx'],
];

/** Paths hidden from the container (Docker's list): files under /dev/null, directories under an empty read-only tmpfs. */
export const MASKED_PATHS: readonly string[] = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/interrupts',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

/** Paths the container sees read-only (Docker's list). */
export const READONLY_PATHS: readonly string[] = [
  '/proc/bus',
  '/proc/fs',
  '/proc/irq',
  '/proc/sys',
  '/proc/sysrq-trigger',
];

/** The `PATH` a container gets when neither the spec nor the image sets one. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Namespaces a container gets of its own. */
export const DEFAULT_NAMESPACES = ['mount', 'pid', 'uts', 'ipc', 'net', 'cgroup'] as const;
