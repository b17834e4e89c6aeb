/**
 * An OCI bundle's `config.json` → what the helper's `run` op needs: the same
 * plan the library makes from a `ContainerSpec`, with the same policy code
 * (capabilities, seccomp compiler, cgroup plan, device rules). Pure: the host
 * facts it needs come in {@link OciHost}.
 *
 * Every field is either honoured or refused with an {@link UnsupportedError}
 * naming it; none is ignored (annotations are free-form by the spec).
 *
 * @module
 */

import { isAbsolute, join, posix } from 'node:path';
import { InvalidArgumentError, UnsupportedError } from '../errors.js';
import {
  ALL_CAPS,
  DEFAULT_DEVICE_RULES,
  DEFAULT_DEVICES,
  DEFAULT_DEV_SYMLINKS,
  RLIMIT_NAMES,
  capBitmask,
  capNumber,
  compileSeccomp,
  parseSeccompProfile,
  validateCgroupParent,
  type ContainerResources,
  type DeviceRule,
  type HelperDevice,
  type HelperMount,
  type HelperRlimit,
  type IdMap,
  type ResolvedUser,
  type SeccompProfile,
  type UsernsPlan,
} from '../runtime/index.js';
import type { OciConfig, OciHook, OciHooks, OciIdMapping, OciMount, OciProcess, OciResources, OciSeccomp } from './config.js';

/** The host facts the translation needs. */
export interface OciHost {
  /** The caller's uid: not 0 means rootless. */
  uid: number;
  /**
   * The caller runs in a user namespace that is not the host's (rootless podman runs
   * its runtime as root of its own): no device node can be made, nor a v1 cgroupfs mounted.
   * @default false
   */
  nestedUserns?: boolean;
  /** The caller's umask, which the container's process gets. */
  umask: number;
  /** The seccomp target architecture. */
  arch: 'x86_64' | 'aarch64';
  /** The kernel version for the seccomp compiler; the running one when omitted. */
  kernel?: string;
}

/** The container's `/sys/fs/cgroup`, planned once its cgroups exist (see `cgroupfsPlan`). */
export interface CgroupfsSlot {
  /** Marks the slot. */
  cgroupfs: true;
  /** Mounted read-only. */
  readonly: boolean;
}

/** A mount of the plan: one the helper takes as it is, or the cgroup filesystem. */
export type OciPlanMount = HelperMount | CgroupfsSlot;

/** The container's process, resolved. */
export interface OciProcessPlan {
  /** The command and its arguments. */
  cmd: string[];
  /** `NAME=value` strings. */
  env: string[];
  /** Absolute working directory. */
  cwd: string;
  /** Credentials. */
  user: ResolvedUser;
  /** Bounding (and, for uid 0, permitted and effective) capabilities. */
  caps: bigint;
  /** Set `no_new_privs`. */
  noNewPrivileges: boolean;
  /** Resource limits. */
  rlimits: HelperRlimit[];
  /** A terminal, sent over the console socket. */
  terminal: boolean;
  /** The terminal's size. */
  consoleSize?: { rows: number; columns: number };
  /** Written to `/proc/PID/oom_score_adj` once the process exists. */
  oomScoreAdj?: number;
}

/** Everything a config.json asks for, in the helper's terms. */
export interface OciPlan {
  /** The rootfs directory (absolute). */
  rootfs: string;
  /** Remount `/` read-only. */
  readonlyRootfs: boolean;
  /** Namespaces to make (the helper's names). */
  namespaces: string[];
  /** Namespaces to join: `[type, path]`. */
  joins: [string, string][];
  /** Hostname to set. */
  hostname?: string;
  /** Mounts in order. */
  mounts: OciPlanMount[];
  /** Device nodes to create. */
  devices: HelperDevice[];
  /** Symlinks `[target, path]`. */
  symlinks: [string, string][];
  /** Masked paths. */
  masked: string[];
  /** Read-only paths. */
  readonlyPaths: string[];
  /** Namespaced sysctls `[key, value]`. */
  sysctls: [string, string][];
  /** The process. */
  process: OciProcessPlan;
  /** The compiled seccomp program; omitted: none. */
  seccomp?: Buffer;
  /** A new user namespace. */
  userns?: UsernsPlan;
  /** cgroup limits. */
  resources: ContainerResources;
  /** Device cgroup rules; omitted: none given. */
  deviceRules?: DeviceRule[];
  /** The cgroup path, relative to the caller's own cgroup. */
  cgroupsPath?: string;
  /** Hooks the runtime runs. */
  hooks: Required<Pick<OciHooks, 'prestart' | 'createRuntime' | 'createContainer' | 'startContainer' | 'poststart' | 'poststop'>>;
}

const NAMESPACE_NAMES: Readonly<Record<string, string>> = {
  pid: 'pid',
  network: 'net',
  mount: 'mount',
  ipc: 'ipc',
  uts: 'uts',
  user: 'user',
  cgroup: 'cgroup',
};

/** Mount options mount(2) cannot express or the helper does not implement yet. */
const REFUSED_MOUNT_OPTIONS = new Set([
  'idmap',
  'ridmap',
  'tmpcopyup',
  'notmpcopyup',
  'copy-symlink',
  'nosymfollow',
  'rnosymfollow',
  'rsymfollow',
  'rro',
  'rrw',
  'rnosuid',
  'rsuid',
  'rnodev',
  'rdev',
  'rnoexec',
  'rexec',
  'rnoatime',
  'ratime',
  'rnodiratime',
  'rdiratime',
  'rrelatime',
  'rnorelatime',
  'rstrictatime',
  'rnostrictatime',
]);

/** runc's list of namespaced sysctls, with the namespace each needs. */
const SYSCTL_IPC = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']);

const RLIM_INFINITY_FLOOR = 2 ** 63;

const unsupported = (field: string, why: string): UnsupportedError =>
  new UnsupportedError(`config.json: \`${field}\`: ${why}`, { field });
const invalid = (field: string, why: string): InvalidArgumentError => new InvalidArgumentError(`config.json: \`${field}\`: ${why}`);

const isSet = (v: unknown): boolean =>
  v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && v.length === 0) && !(typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0);

function refuseIfSet(obj: Record<string, unknown> | undefined, fields: readonly string[], prefix: string, why: string): void {
  for (const f of fields) if (obj !== undefined && isSet(obj[f])) throw unsupported(`${prefix}.${f}`, why);
}

function uint(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw invalid(field, `must be a non-negative integer, got \`${String(v)}\``);
  return v;
}

function absolutePath(v: unknown, field: string): string {
  if (typeof v !== 'string' || !v.startsWith('/')) throw invalid(field, `must be an absolute path, got \`${String(v)}\``);
  return posix.normalize(v);
}

function idMaps(maps: OciIdMapping[] | undefined, field: string): IdMap[] {
  if (!Array.isArray(maps) || maps.length === 0) throw invalid(field, 'a new user namespace needs its mappings');
  return maps.map((m, i) => ({
    containerId: uint(m.containerID, `${field}[${i}].containerID`),
    hostId: uint(m.hostID, `${field}[${i}].hostID`),
    size: uint(m.size, `${field}[${i}].size`),
  }));
}

function capList(names: string[] | undefined, field: string): number[] {
  if (names === undefined) return [];
  return names.map((n) => {
    if (!Object.hasOwn(ALL_CAPS, String(n).toUpperCase())) throw unsupported(field, `unknown capability \`${n}\``);
    return capNumber(n);
  });
}

function sameSet(a: readonly number[], b: readonly number[]): boolean {
  return capBitmask(a) === capBitmask(b);
}

function rlimitValue(v: unknown, field: string): string {
  if (v === -1 || (typeof v === 'number' && v >= RLIM_INFINITY_FLOOR)) return 'unlimited';
  return String(uint(v, field));
}

/**
 * Translates `process` (of config.json, or the `--process` file of `exec`).
 *
 * @throws {@link UnsupportedError} naming a field dockless cannot honour.
 * @throws {@link InvalidArgumentError} for a malformed field.
 */
export function translateProcess(p: OciProcess | undefined, host: OciHost, prefix = 'process'): OciProcessPlan {
  if (p === undefined || p === null) throw invalid(prefix, 'is required');
  refuseIfSet(p as unknown as Record<string, unknown>, ['commandLine'], prefix, 'a Windows field');
  refuseIfSet(p as unknown as Record<string, unknown>, ['apparmorProfile'], prefix, 'AppArmor is not supported');
  refuseIfSet(p as unknown as Record<string, unknown>, ['selinuxLabel'], prefix, 'SELinux labels are not supported');
  refuseIfSet(p as unknown as Record<string, unknown>, ['ioPriority', 'scheduler', 'execCPUAffinity'], prefix, 'not supported yet');
  if (!Array.isArray(p.args) || p.args.length === 0 || p.args.some((a) => typeof a !== 'string')) {
    throw invalid(`${prefix}.args`, 'must be a non-empty list of strings');
  }
  const cwd = absolutePath(p.cwd, `${prefix}.cwd`);
  const env = p.env ?? [];
  for (const [i, e] of env.entries()) if (typeof e !== 'string' || !e.includes('=')) throw invalid(`${prefix}.env[${i}]`, `\`${String(e)}\` is not NAME=value`);
  const u = p.user;
  if (u === undefined || u === null) throw invalid(`${prefix}.user`, 'is required');
  if (isSet(u.username)) throw unsupported(`${prefix}.user.username`, 'a Windows field');
  if (u.umask !== undefined && u.umask !== null && u.umask !== host.umask) {
    throw unsupported(`${prefix}.user.umask`, `only the caller's umask (0${host.umask.toString(8)}) is supported, got 0${Number(u.umask).toString(8)}`);
  }
  const user: ResolvedUser = {
    uid: uint(u.uid, `${prefix}.user.uid`),
    gid: uint(u.gid, `${prefix}.user.gid`),
    groups: (u.additionalGids ?? []).map((g, i) => uint(g, `${prefix}.user.additionalGids[${i}]`)),
  };

  const c = p.capabilities ?? {};
  const bounding = capList(c.bounding, `${prefix}.capabilities.bounding`);
  const effective = capList(c.effective, `${prefix}.capabilities.effective`);
  const permitted = capList(c.permitted, `${prefix}.capabilities.permitted`);
  if (isSet(c.inheritable)) throw unsupported(`${prefix}.capabilities.inheritable`, 'the inheritable set is always empty in dockless');
  const ambient = capList(c.ambient, `${prefix}.capabilities.ambient`);
  // For uid 0, ambient capabilities within the bounding set change nothing (execve gives root
  // the whole permitted set): runc's own default spec lists them. For anyone else they would.
  if (ambient.length > 0 && (user.uid !== 0 || (capBitmask(ambient) & ~capBitmask(bounding)) !== 0n)) {
    throw unsupported(`${prefix}.capabilities.ambient`, 'ambient capabilities are supported only for uid 0, within the bounding set');
  }
  if (user.uid === 0) {
    if (!sameSet(effective, bounding)) throw unsupported(`${prefix}.capabilities.effective`, 'for uid 0 it must equal the bounding set');
    if (!sameSet(permitted, bounding)) throw unsupported(`${prefix}.capabilities.permitted`, 'for uid 0 it must equal the bounding set');
  } else {
    if (effective.length > 0) throw unsupported(`${prefix}.capabilities.effective`, 'a user other than uid 0 gets no capabilities in dockless');
    if (permitted.length > 0) throw unsupported(`${prefix}.capabilities.permitted`, 'a user other than uid 0 gets no capabilities in dockless');
  }

  const rlimits: HelperRlimit[] = (p.rlimits ?? []).map((r, i) => {
    const name = typeof r.type === 'string' ? r.type.replace(/^RLIMIT_/, '').toLowerCase() : '';
    if (!(RLIMIT_NAMES as readonly string[]).includes(name)) throw unsupported(`${prefix}.rlimits[${i}].type`, `unknown rlimit \`${String(r.type)}\``);
    return {
      name: name as HelperRlimit['name'],
      soft: rlimitValue(r.soft, `${prefix}.rlimits[${i}].soft`),
      hard: rlimitValue(r.hard, `${prefix}.rlimits[${i}].hard`),
    };
  });
  const plan: OciProcessPlan = {
    cmd: [...p.args],
    env: [...env],
    cwd,
    user,
    caps: capBitmask(bounding),
    noNewPrivileges: p.noNewPrivileges === true,
    rlimits,
    terminal: p.terminal === true,
  };
  if (p.consoleSize !== undefined && p.consoleSize !== null) {
    plan.consoleSize = { rows: uint(p.consoleSize.height, `${prefix}.consoleSize.height`), columns: uint(p.consoleSize.width, `${prefix}.consoleSize.width`) };
  }
  if (p.oomScoreAdj !== undefined && p.oomScoreAdj !== null) {
    if (!Number.isInteger(p.oomScoreAdj) || p.oomScoreAdj < -1000 || p.oomScoreAdj > 1000) throw invalid(`${prefix}.oomScoreAdj`, 'must be an integer from -1000 to 1000');
    plan.oomScoreAdj = p.oomScoreAdj;
  }
  return plan;
}

/**
 * Compiles `linux.seccomp` with the library's compiler.
 *
 * @throws {@link UnsupportedError} for flags, a listener, `SCMP_ACT_NOTIFY`.
 */
export function translateSeccomp(s: OciSeccomp, host: OciHost, capNames: readonly string[]): Buffer {
  if (isSet(s.flags)) throw unsupported('linux.seccomp.flags', 'seccomp filter flags are not supported yet');
  if (isSet(s.listenerPath)) throw unsupported('linux.seccomp.listenerPath', 'seccomp user notification is not supported');
  if (isSet(s.listenerMetadata)) throw unsupported('linux.seccomp.listenerMetadata', 'seccomp user notification is not supported');
  if (s.defaultAction === 'SCMP_ACT_NOTIFY') throw unsupported('linux.seccomp.defaultAction', '`SCMP_ACT_NOTIFY` is not supported');
  for (const [i, rule] of (s.syscalls ?? []).entries()) {
    if (rule.action === 'SCMP_ACT_NOTIFY') throw unsupported(`linux.seccomp.syscalls[${i}].action`, '`SCMP_ACT_NOTIFY` is not supported');
  }
  let profile: SeccompProfile;
  try {
    profile = parseSeccompProfile(s as object);
  } catch (cause) {
    throw new InvalidArgumentError(`config.json: \`linux.seccomp\`: ${(cause as Error).message}`, { cause });
  }
  return compileSeccomp(profile, { arch: host.arch, caps: capNames, ...(host.kernel !== undefined ? { kernel: host.kernel } : {}) });
}

/** `linux.resources` as the library's limits and device rules; refuses what dockless cannot enforce. */
export function translateResources(r: OciResources | undefined): { resources: ContainerResources; deviceRules?: DeviceRule[] } {
  const resources: ContainerResources = {};
  if (r === undefined || r === null) return { resources };
  refuseIfSet(r as unknown as Record<string, unknown>, ['blockIO', 'hugepageLimits', 'network', 'rdma', 'unified'], 'linux.resources', 'not supported yet');
  const mem = r.memory;
  if (mem !== undefined && mem !== null) {
    refuseIfSet(mem, ['reservation', 'kernel', 'kernelTCP', 'swappiness', 'disableOOMKiller', 'useHierarchy', 'checkBeforeUpdate'], 'linux.resources.memory', 'not supported yet');
    if (typeof mem.limit === 'number' && mem.limit > 0) resources.memory = mem.limit;
    if (typeof mem.swap === 'number' && mem.swap !== 0) resources.memorySwap = mem.swap;
  }
  const cpu = r.cpu;
  if (cpu !== undefined && cpu !== null) {
    refuseIfSet(cpu, ['mems', 'realtimeRuntime', 'realtimePeriod', 'idle', 'burst'], 'linux.resources.cpu', 'not supported yet');
    if (typeof cpu.shares === 'number' && cpu.shares > 0) resources.cpuShares = cpu.shares;
    if (cpu.period !== undefined && cpu.period !== null && cpu.period !== 100_000 && cpu.period !== 0) {
      throw unsupported('linux.resources.cpu.period', 'only the 100000 µs period is supported');
    }
    if (typeof cpu.quota === 'number' && cpu.quota > 0) resources.cpus = cpu.quota / 100_000;
    if (typeof cpu.cpus === 'string' && cpu.cpus !== '') resources.cpuset = cpu.cpus;
  }
  if (r.pids !== undefined && r.pids !== null && typeof r.pids.limit === 'number' && r.pids.limit > 0) resources.pids = r.pids.limit;
  if (r.devices === undefined || r.devices === null) return { resources };
  const deviceRules = r.devices.map((d, i): DeviceRule => {
    const type = d.type ?? 'a';
    if (type !== 'a' && type !== 'c' && type !== 'b') throw invalid(`linux.resources.devices[${i}].type`, `must be a, c or b, got \`${type}\``);
    const access = d.access ?? 'rwm';
    if (!/^[rwm]+$/.test(access)) throw invalid(`linux.resources.devices[${i}].access`, `must be letters of rwm, got \`${access}\``);
    return {
      allow: d.allow === true,
      type,
      major: d.major === undefined || d.major === null || d.major === -1 ? '*' : uint(d.major, `linux.resources.devices[${i}].major`),
      minor: d.minor === undefined || d.minor === null || d.minor === -1 ? '*' : uint(d.minor, `linux.resources.devices[${i}].minor`),
      access,
    };
  });
  return { resources, deviceRules };
}

function translateMount(m: OciMount, i: number, bundle: string): OciPlanMount {
  const field = `mounts[${i}]`;
  const target = absolutePath(m.destination, `${field}.destination`);
  if (isSet(m.uidMappings) || isSet(m.gidMappings)) throw unsupported(`${field}.uidMappings`, 'idmapped mounts are not supported yet');
  const options = [...(m.options ?? [])];
  for (const o of options) if (REFUSED_MOUNT_OPTIONS.has(o)) throw unsupported(`${field}.options`, `option \`${o}\` is not supported yet`);
  const bind = m.type === 'bind' || options.includes('bind') || options.includes('rbind');
  if ((m.type === 'cgroup' || m.type === 'cgroup2') && target === '/sys/fs/cgroup') {
    return { cgroupfs: true, readonly: options.includes('ro') };
  }
  if (!bind && (m.type === undefined || m.type === '' || m.type === 'none')) throw invalid(`${field}.type`, 'a mount that is not a bind needs a filesystem type');
  const source = bind ? (isAbsolute(m.source ?? '') ? m.source! : join(bundle, m.source ?? '')) : (m.source ?? m.type!);
  // The runtime's own places: no symlink of the image may redirect them.
  const nofollow = /^\/(proc|sys|dev)(\/|$)/.test(target);
  return { type: bind ? 'bind' : m.type!, source, target, options, ...(nofollow ? { nofollow } : {}) };
}

function hookList(hooks: OciHook[] | undefined, field: string): OciHook[] {
  return (hooks ?? []).map((h, i) => {
    absolutePath(h.path, `${field}[${i}].path`);
    if (h.timeout !== undefined && (!Number.isInteger(h.timeout) || h.timeout <= 0)) throw invalid(`${field}[${i}].timeout`, 'must be a positive integer');
    return h;
  });
}

function sysctlNamespace(key: string): string | undefined {
  if (key.startsWith('net.')) return 'net';
  if (SYSCTL_IPC.has(key) || key.startsWith('fs.mqueue.')) return 'ipc';
  if (key === 'kernel.hostname' || key === 'kernel.domainname') return 'uts';
  return undefined;
}

/**
 * Translates a bundle's config.json into an {@link OciPlan}.
 *
 * @param bundle - the bundle directory (absolute), against which relative paths resolve.
 * @throws {@link UnsupportedError} naming the first field dockless cannot honour.
 * @throws {@link InvalidArgumentError} for a malformed field.
 * @example
 * ```ts
 * const plan = translateConfig(JSON.parse(readFileSync('/b/config.json', 'utf8')), '/b', { uid: 0, umask: 0o22, arch: 'x86_64' });
 * ```
 */
export function translateConfig(config: OciConfig, bundle: string, host: OciHost): OciPlan {
  if (typeof config !== 'object' || config === null) throw invalid('', 'must be a JSON object');
  if (typeof config.ociVersion !== 'string' || !/^1\./.test(config.ociVersion)) {
    throw unsupported('ociVersion', `only runtime-spec 1.x is supported, got \`${String(config.ociVersion)}\``);
  }
  refuseIfSet(config as unknown as Record<string, unknown>, ['solaris', 'windows', 'vm'], '', 'not a Linux container');
  const linux = config.linux ?? {};
  refuseIfSet(linux as unknown as Record<string, unknown>, ['intelRdt', 'personality', 'timeOffsets'], 'linux', 'not supported yet');
  refuseIfSet(linux as unknown as Record<string, unknown>, ['mountLabel'], 'linux', 'SELinux labels are not supported');
  if (isSet(linux.rootfsPropagation) && !['private', 'rprivate'].includes(linux.rootfsPropagation!)) {
    throw unsupported('linux.rootfsPropagation', `only \`private\` and \`rprivate\` are supported, got \`${linux.rootfsPropagation}\``);
  }
  const hooks = config.hooks ?? {};

  if (config.root === undefined || typeof config.root.path !== 'string' || config.root.path === '') throw invalid('root.path', 'is required');
  const rootfs = isAbsolute(config.root.path) ? config.root.path : join(bundle, config.root.path);
  const process = translateProcess(config.process, host);

  const namespaces: string[] = [];
  const joins: [string, string][] = [];
  const seen = new Set<string>();
  let newUserns = false;
  for (const [i, ns] of (linux.namespaces ?? []).entries()) {
    if (ns.type === 'time') throw unsupported(`linux.namespaces[${i}]`, 'time namespaces are not supported yet');
    const name = NAMESPACE_NAMES[ns.type];
    if (name === undefined) throw invalid(`linux.namespaces[${i}].type`, `unknown namespace \`${String(ns.type)}\``);
    if (seen.has(name)) throw invalid(`linux.namespaces[${i}].type`, `\`${ns.type}\` given twice`);
    seen.add(name);
    if (isSet(ns.path)) joins.push([name, absolutePath(ns.path, `linux.namespaces[${i}].path`)]);
    else if (name === 'user') newUserns = true;
    else namespaces.push(name);
  }
  if (!namespaces.includes('mount')) throw unsupported('linux.namespaces', 'a new mount namespace is required (the root is assembled in it)');

  let userns: UsernsPlan | undefined;
  if (newUserns) {
    const uidMap = idMaps(linux.uidMappings, 'linux.uidMappings');
    const gidMap = idMaps(linux.gidMappings, 'linux.gidMappings');
    const root = (maps: IdMap[]) => maps.find((m) => m.containerId === 0 && m.size > 0)?.hostId;
    userns = {
      uidMap,
      gidMap,
      rootless: host.uid !== 0,
      idmapRoot: false,
      hostRoot: { uid: root(uidMap) ?? 65534, gid: root(gidMap) ?? 65534 },
    };
  } else if (isSet(linux.uidMappings) || isSet(linux.gidMappings)) {
    throw invalid('linux.uidMappings', 'mappings need a new user namespace in linux.namespaces');
  }

  const has = (name: string) => seen.has(name);
  if (isSet(config.hostname) && !has('uts')) throw invalid('hostname', 'needs a uts namespace');
  const sysctls: [string, string][] = [];
  for (const [key, value] of Object.entries(linux.sysctl ?? {})) {
    const ns = sysctlNamespace(key);
    if (ns === undefined) throw unsupported(`linux.sysctl.${key}`, 'not a namespaced sysctl');
    if (!has(ns)) throw invalid(`linux.sysctl.${key}`, `needs a ${ns} namespace of the container's own`);
    if (!/^[a-z0-9_.-]+$/i.test(key)) throw invalid(`linux.sysctl.${key}`, 'bad key');
    sysctls.push([key, String(value)]);
  }
  if (isSet(config.domainname)) {
    if (!has('uts')) throw invalid('domainname', 'needs a uts namespace');
    sysctls.push(['kernel.domainname', config.domainname!]);
  }

  const mounts = (config.mounts ?? []).map((m, i) => translateMount(m, i, bundle));
  const devTmpfs = mounts.some((m) => !('cgroupfs' in m) && m.target === '/dev' && m.type !== 'bind');
  const listed = (linux.devices ?? []).map((d, i): HelperDevice => {
    const field = `linux.devices[${i}]`;
    const type = d.type === 'u' ? 'c' : d.type;
    if (type !== 'c' && type !== 'b' && type !== 'p') throw invalid(`${field}.type`, `must be c, u, b or p, got \`${String(d.type)}\``);
    return {
      path: absolutePath(d.path, `${field}.path`),
      type,
      major: type === 'p' ? 0 : uint(d.major, `${field}.major`),
      minor: type === 'p' ? 0 : uint(d.minor, `${field}.minor`),
      mode: d.fileMode === undefined || d.fileMode === null ? 0o666 : uint(d.fileMode, `${field}.fileMode`) & 0o7777,
      ...(d.uid !== undefined && d.uid !== null ? { uid: uint(d.uid, `${field}.uid`) } : {}),
      ...(d.gid !== undefined && d.gid !== null ? { gid: uint(d.gid, `${field}.gid`) } : {}),
    };
  });
  // runc's default devices, where the config does not list them.
  const devices = [...listed, ...DEFAULT_DEVICES.filter((d) => !listed.some((l) => l.path === d.path))];
  const symlinks: [string, string][] = devTmpfs ? DEFAULT_DEV_SYMLINKS.map(([t, p]) => [t, p] as [string, string]) : [];
  if (userns !== undefined || host.nestedUserns === true) {
    // No node can be made in a user namespace: the host's are bound instead.
    for (const d of devices) mounts.push({ type: 'bind', source: d.path, target: d.path, options: ['bind'], nofollow: true });
  }

  const { resources, deviceRules: configRules } = translateResources(linux.resources);
  // As runc: after the config's rules, the default devices' (mknod of any node, the safe
  // nodes) and those of linux.devices, or the container could not make or use its own /dev.
  const deviceRules =
    configRules === undefined
      ? undefined
      : [
          ...configRules,
          ...DEFAULT_DEVICE_RULES.filter((r) => r.allow),
          ...devices.filter((d) => d.type !== 'p').map((d): DeviceRule => ({ allow: true, type: d.type as 'c' | 'b', major: d.major, minor: d.minor, access: 'rwm' })),
        ];
  let cgroupsPath: string | undefined;
  if (isSet(linux.cgroupsPath)) {
    if (linux.cgroupsPath!.includes(':')) throw unsupported('linux.cgroupsPath', `\`${linux.cgroupsPath}\` is a systemd unit path; dockless manages cgroupfs paths only`);
    cgroupsPath = validateCgroupParent(linux.cgroupsPath!.replace(/^\/+/, ''), 'config.json: `linux.cgroupsPath`');
  }
  const plan: OciPlan = {
    rootfs,
    readonlyRootfs: config.root.readonly === true,
    namespaces,
    joins,
    ...(isSet(config.hostname) ? { hostname: config.hostname! } : {}),
    mounts,
    devices: userns !== undefined || host.nestedUserns === true ? [] : devices,
    symlinks,
    masked: (linux.maskedPaths ?? []).map((p, i) => absolutePath(p, `linux.maskedPaths[${i}]`)),
    readonlyPaths: (linux.readonlyPaths ?? []).map((p, i) => absolutePath(p, `linux.readonlyPaths[${i}]`)),
    sysctls,
    process,
    ...(userns !== undefined ? { userns } : {}),
    resources,
    ...(deviceRules !== undefined ? { deviceRules } : {}),
    ...(cgroupsPath !== undefined ? { cgroupsPath } : {}),
    hooks: {
      prestart: hookList(hooks.prestart, 'hooks.prestart'),
      createRuntime: hookList(hooks.createRuntime, 'hooks.createRuntime'),
      createContainer: hookList(hooks.createContainer, 'hooks.createContainer'),
      startContainer: hookList(hooks.startContainer, 'hooks.startContainer'),
      poststart: hookList(hooks.poststart, 'hooks.poststart'),
      poststop: hookList(hooks.poststop, 'hooks.poststop'),
    },
  };
  if (linux.seccomp !== undefined && linux.seccomp !== null) {
    const names = Object.keys(ALL_CAPS).filter((n) => (process.caps >> BigInt(ALL_CAPS[n]!)) & 1n);
    plan.seccomp = translateSeccomp(linux.seccomp, host, names);
  }
  return plan;
}
