import type { HelperRlimit } from './security.js';
import type { ResolvedUser } from './user.js';
import { SECCOMP_FD, consoleArgs } from './run-args.js';

/** Everything the helper's `exec` op needs, with every default already resolved. */
export interface ExecPlan {
  /** The container's id, for messages. */
  id: string;
  /** Host pid of the container's pid 1, and its start time in clock ticks. */
  pid: number;
  pidStart: number;
  /** The container's namespaces to join (the helper's names). */
  namespaces: readonly string[];
  /** Join the container's user namespace too. */
  userns: boolean;
  /** The container's cgroup directories. */
  cgroups: readonly string[];
  cwd: string;
  user: Pick<ResolvedUser, 'uid' | 'gid' | 'groups'>;
  /** `NAME=value` strings. */
  env: readonly string[];
  /** Bounding, permitted and effective capabilities; omitted: the helper's own are kept. */
  caps?: bigint;
  noNewPrivileges: boolean;
  /** The seccomp program, passed on fd {@link SECCOMP_FD}; omitted: unconfined. */
  seccomp?: Buffer;
  rlimits: readonly HelperRlimit[];
  dieWithParent?: number;
  /** A terminal of this size, resized by records on `controlFd`. */
  tty?: { columns: number; rows: number; controlFd: number };
  cmd: readonly string[];
  /** Leave the process to the caller's subreaper instead of waiting for it (`--detach`, `dockless-runtime exec --detach`). */
  detach?: boolean;
  /** A unix socket the terminal's master is sent over (the OCI console socket), with the terminal's size. */
  console?: { socket: string; rows?: number; columns?: number };
}

/** Encodes an {@link ExecPlan} as the helper's flat `exec` argv (native/PROTOCOL.md). */
export function execArgs(plan: ExecPlan): string[] {
  const args: string[] = ['--id', plan.id, '--pid', String(plan.pid), '--pid-start', String(plan.pidStart)];
  if (plan.namespaces.length > 0) args.push('--ns', plan.namespaces.join(','));
  if (plan.userns) args.push('--userns');
  for (const dir of plan.cgroups) args.push('--cgroup', dir);
  args.push('--cwd', plan.cwd, '--uid', String(plan.user.uid), '--gid', String(plan.user.gid));
  if (plan.user.groups.length > 0) args.push('--groups', plan.user.groups.join(','));
  for (const e of plan.env) args.push('--env', e);
  if (plan.caps !== undefined) args.push('--caps', plan.caps.toString(16).padStart(16, '0'));
  if (plan.noNewPrivileges) args.push('--no-new-privs');
  if (plan.seccomp !== undefined) args.push('--seccomp-fd', String(SECCOMP_FD));
  for (const r of plan.rlimits) args.push('--rlimit', r.name, r.soft, r.hard);
  if (plan.dieWithParent !== undefined) args.push('--die-with-parent', String(plan.dieWithParent));
  if (plan.tty !== undefined) {
    args.push('--tty', '--tty-size', String(plan.tty.rows), String(plan.tty.columns), '--control-fd', String(plan.tty.controlFd));
  }
  if (plan.detach === true) args.push('--detach');
  if (plan.console !== undefined) args.push(...consoleArgs(plan.console));
  args.push('--', ...plan.cmd);
  return args;
}
