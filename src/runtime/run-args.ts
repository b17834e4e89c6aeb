import type { HelperDevice, HelperMount } from './defaults.js';
import type { LinkPlan } from './network-attach.js';
import type { HelperRlimit } from './security.js';
import type { ShimDir, ShimState } from './state.js';
import type { ResolvedUser } from './user.js';
import { usernsArgs, type UsernsPlan } from './userns.js';
import { ioArgs, type IoPlan } from './io-plan.js';

/** The helper fd the seccomp program arrives on: the first of `spawnHelper`'s `inputs`. */
export const SECCOMP_FD = 4;

/** A file the shim writes (`--write-file`): created with `mode` exactly, refused if anything is at `path`. */
export interface HelperFile {
  path: string;
  mode: number;
  content: string;
}

/** Everything the helper's `run` op needs, with every default already resolved. */
export interface RunPlan {
  id: string;
  /** Empty host directory the root is assembled on, inside the container's mount namespace. */
  target: string;
  /** Overlay lower dirs, top-most first. */
  lowers: string[];
  /** Overlay upper and work dirs; without them the single lower is bind-mounted. */
  upper?: string;
  work?: string;
  /**
   * Mount the overlay `volatile` (`--volatile-upper`): no sync of the upper filesystem, its
   * unmount's included. Only for an upper that is not to outlive the boot (native/PROTOCOL.md).
   */
  volatileUpper?: boolean;
  namespaces: readonly string[];
  /** Namespaces joined instead of made (`--join-ns TYPE PATH`): a pod's, another container's network. */
  joins?: readonly (readonly [string, string])[];
  /** Omitted: the uts namespace is joined and keeps its hostname. */
  hostname?: string;
  mounts: readonly HelperMount[];
  devices: readonly HelperDevice[];
  symlinks: readonly (readonly [string, string])[];
  masked: readonly string[];
  readonlyPaths: readonly string[];
  readonlyRootfs: boolean;
  cwd: string;
  user: ResolvedUser;
  /** `NAME=value` strings. */
  env: readonly string[];
  init: boolean;
  /** Bounding, permitted and effective capabilities; omitted: the helper's own are kept. */
  caps?: bigint;
  /** Set `no_new_privs`. */
  noNewPrivileges?: boolean;
  /** The seccomp program, passed on fd {@link SECCOMP_FD}; omitted: unconfined. */
  seccomp?: Buffer;
  rlimits?: readonly HelperRlimit[];
  startFifo?: string;
  dieWithParent?: number;
  exitFile?: string;
  /** Cgroup directories the shim puts pid 1 in before it runs; created (with their limits) beforehand, or by the shim with {@link RunPlan.cgroupSteps}. */
  cgroups?: readonly string[];
  /** The file in those cgroups that counts OOM kills, which the shim reads at the exit (`oom` event, `oomKilled`). */
  oomFile?: string;
  /** The shim's `--cgroup-mkdir` and `--cgroup-write[-optional]` arguments that make those cgroups (see `shimCgroups`). */
  cgroupSteps?: readonly string[];
  /** Files the shim makes (new, never through a symlink) before anything else: the container's hostname, hosts and resolv.conf. */
  files?: readonly HelperFile[];
  /**
   * Files nothing of the container reads (the launch's records), which the shim makes as it makes
   * {@link RunPlan.files}, but once pid 1 is cloned, while it sets up, after {@link RunPlan.state}.
   */
  lateFiles?: readonly HelperFile[];
  /** Directories the shim makes before the files (the bundle, upper and work directories). */
  dirs?: readonly ShimDir[];
  /** The state directory the shim makes once pid 1 is cloned, with its owner file (see `shimContainerDirs`). */
  state?: ShimState;
  /** The container's record, which the shim writes with pid 1's pid and start time between `head` and `tail` before its `pid` line. */
  record?: { path: string; head: string; tail: string };
  /** A user namespace for the container; see src/runtime/userns.ts. */
  userns?: UsernsPlan;
  /** A veth pair the shim wires into the container's network namespace before it runs. */
  link?: LinkPlan;
  /** The restart policy's options (`--restart`, …); see src/runtime/restart.ts. */
  restartArgs?: readonly string[];
  /** Where the shim appends the events it alone sees, and the name and image they carry; `launch`: the launch's own lines, appended first. */
  events?: { file: string; name?: string; image?: string; launch?: string };
  /** Have the shim report paths to the container's network (and user) namespace, for the port forwarder. */
  reportNetns?: boolean;
  /** The shim's io: log, TTY, stdin; omitted: stdio passed straight through. */
  io?: IoPlan;
  cmd: readonly string[];
  /** The runc model (`dockless-runtime`): the shim exits once the container is created and leaves pid 1 to the caller's subreaper (`--detach`). */
  detach?: boolean;
  /** A unix socket the terminal's master is sent over (the OCI console socket), with the terminal's size. */
  console?: { socket: string; rows?: number; columns?: number };
  /** Namespaced sysctls written in the container, `[key, value]`. */
  sysctls?: readonly (readonly [string, string])[];
}

/** Encodes a {@link RunPlan} as the helper's flat `run` argv (native/PROTOCOL.md). */
export function runArgs(plan: RunPlan): string[] {
  const args: string[] = ['--id', plan.id, '--target', plan.target];
  for (const lower of plan.lowers) args.push('--lower', lower);
  if (plan.upper !== undefined && plan.work !== undefined) {
    args.push('--upper', plan.upper, '--work', plan.work);
    if (plan.volatileUpper === true) args.push('--volatile-upper');
  }
  if (plan.namespaces.length > 0) args.push('--ns', plan.namespaces.join(','));
  for (const [type, path] of plan.joins ?? []) args.push('--join-ns', type, path);
  if (plan.hostname !== undefined) args.push('--hostname', plan.hostname);
  for (const m of plan.mounts) {
    args.push(m.nofollow === true ? '--mount-nofollow' : '--mount', m.type, m.source, m.target, m.options.length > 0 ? m.options.join(',') : '-');
  }
  for (const d of plan.devices) {
    args.push('--mknod', d.path, d.type, String(d.major), String(d.minor), d.mode.toString(8), String(d.uid ?? 0), String(d.gid ?? 0));
  }
  for (const [target, path] of plan.symlinks) args.push('--symlink', target, path);
  for (const p of plan.masked) args.push('--mask', p);
  for (const p of plan.readonlyPaths) args.push('--readonly', p);
  if (plan.readonlyRootfs) args.push('--readonly-rootfs');
  args.push('--cwd', plan.cwd, '--uid', String(plan.user.uid), '--gid', String(plan.user.gid));
  if (plan.user.groups.length > 0) args.push('--groups', plan.user.groups.join(','));
  for (const e of plan.env) args.push('--env', e);
  if (plan.init) args.push('--init');
  if (plan.caps !== undefined) args.push('--caps', plan.caps.toString(16).padStart(16, '0'));
  if (plan.noNewPrivileges === true) args.push('--no-new-privs');
  if (plan.seccomp !== undefined) args.push('--seccomp-fd', String(SECCOMP_FD));
  for (const r of plan.rlimits ?? []) args.push('--rlimit', r.name, r.soft, r.hard);
  if (plan.startFifo !== undefined) args.push('--start-fifo', plan.startFifo);
  if (plan.dieWithParent !== undefined) args.push('--die-with-parent', String(plan.dieWithParent));
  if (plan.exitFile !== undefined) args.push('--exit-file', plan.exitFile);
  if (plan.cgroupSteps !== undefined) args.push(...plan.cgroupSteps);
  if (plan.state !== undefined) args.push('--make-state', plan.state.dir, plan.state.token, plan.state.owner);
  for (const d of plan.dirs ?? []) {
    if ('like' in d) args.push('--make-dir-as', d.path, d.like, d.owner ? '1' : '0');
    else args.push('--make-dir', d.path, d.mode.toString(8), d.uid !== undefined ? String(d.uid) : '-', d.gid !== undefined ? String(d.gid) : '-');
  }
  for (const f of plan.files ?? []) args.push('--write-file', f.path, f.mode.toString(8), f.content);
  for (const f of plan.lateFiles ?? []) args.push('--write-file-late', f.path, f.mode.toString(8), f.content);
  for (const dir of plan.cgroups ?? []) args.push('--cgroup', dir);
  if (plan.oomFile !== undefined) args.push('--oom-file', plan.oomFile);
  if (plan.reportNetns === true) args.push('--report-netns');
  if (plan.userns !== undefined) {
    // A joined user namespace has its maps already.
    const joined = plan.joins?.some(([type]) => type === 'user') === true;
    args.push(...(joined ? [] : usernsArgs(plan.userns)), plan.userns.idmapRoot ? '--idmap-root' : '--userxattr');
    const mount = plan.userns.mountUserns;
    if (mount !== undefined && !joined && plan.upper !== undefined) {
      for (const m of mount.uidMap) args.push('--mount-userns-uid', String(m.containerId), String(m.hostId), String(m.size));
      for (const m of mount.gidMap) args.push('--mount-userns-gid', String(m.containerId), String(m.hostId), String(m.size));
      if (plan.userns.rootOwnsUpper === true) args.push('--mount-root-owns-upper');
    }
  }
  if (plan.link !== undefined) args.push(...linkArgs(plan.link));
  args.push(...(plan.restartArgs ?? []));
  if (plan.events !== undefined) {
    args.push('--events-file', plan.events.file);
    if (plan.events.name !== undefined) args.push('--event-name', plan.events.name);
    if (plan.events.image !== undefined) args.push('--event-image', plan.events.image);
    if (plan.events.launch !== undefined) args.push('--events-launch', plan.events.launch);
  }
  if (plan.record !== undefined) args.push('--record', plan.record.path, plan.record.head, plan.record.tail);
  args.push(...ioArgs(plan.io));
  if (plan.detach === true) args.push('--detach');
  if (plan.console !== undefined) args.push(...consoleArgs(plan.console));
  for (const [key, value] of plan.sysctls ?? []) args.push('--sysctl', key, value);
  args.push('--', ...plan.cmd);
  return args;
}

/** The helper's `--console-socket` (and `--tty-size`) options, as `run` and `exec` take them. */
export function consoleArgs(console: { socket: string; rows?: number; columns?: number }): string[] {
  const size = console.rows !== undefined && console.columns !== undefined ? ['--tty-size', String(console.rows), String(console.columns)] : [];
  return ['--console-socket', console.socket, ...size];
}

/** The helper's `--veth` options for a link (`run` and `net veth` take the same). */
export function linkArgs(link: LinkPlan): string[] {
  const args = ['--veth', link.host, link.bridge, link.peer, link.mac, String(link.mtu)];
  for (const a of link.addresses) args.push('--veth-addr', a);
  for (const g of link.gateways) args.push('--veth-gateway', g);
  return args;
}
