/**
 * Where the cgroup controllers are on this host, per controller: cgroup v1
 * (one hierarchy per mount, possibly several controllers co-mounted), v2 (the
 * unified hierarchy) or hybrid (some controllers on v1 hierarchies, the others
 * on the unified one). Found from `/proc/self/cgroup` (our own cgroup in each
 * hierarchy) and `/proc/self/mountinfo` (where each hierarchy is mounted).
 *
 * A *hierarchy* here is one place to create cgroup directories in: a v1
 * hierarchy with its controllers, or the unified hierarchy with the
 * controllers listed in our cgroup's `cgroup.controllers`.
 *
 * @module
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One cgroup hierarchy we are in and can reach through a mount. */
export interface CgroupHierarchy {
  /** 1 for a v1 hierarchy, 2 for the unified hierarchy. */
  version: 1 | 2;
  /**
   * The controllers it carries: for v1 the mount's controllers (`['cpu', 'cpuacct']`),
   * for v2 the ones our cgroup may use (its `cgroup.controllers`).
   */
  controllers: string[];
  /** Where the hierarchy is mounted, e.g. `/sys/fs/cgroup/memory`. */
  mount: string;
  /** The cgroup path the mount shows at its mount point (mountinfo's root field), usually `/`. */
  mountRoot: string;
  /** Our own cgroup in it, as `/proc/self/cgroup` names it, e.g. `/user.slice/session-2.scope`. */
  path: string;
  /** Our own cgroup's directory: `mount` + `path` made relative to `mountRoot`. */
  dir: string;
}

/** The cgroup layout of this host as this process sees it. */
export interface CgroupHost {
  /** `'v1'`: no usable unified hierarchy; `'v2'`: only the unified one; `'hybrid'`: both. */
  mode: 'v1' | 'v2' | 'hybrid' | 'none';
  /** Every hierarchy found: the v1 hierarchies with controllers, then the unified one. Named v1 hierarchies (`name=systemd`) are left out. */
  hierarchies: CgroupHierarchy[];
  /** The hierarchy each controller is on. A controller on a v1 hierarchy is not on the unified one. */
  controllers: ReadonlyMap<string, CgroupHierarchy>;
}

/** One line of `/proc/self/cgroup`. */
export interface ProcCgroupEntry {
  /** Hierarchy id; 0 for the unified hierarchy. */
  id: number;
  /** The controllers of a v1 hierarchy (`name=…` included as written); empty for v2. */
  controllers: string[];
  /** Our cgroup's path in that hierarchy. */
  path: string;
}

/** One cgroup or cgroup2 mount from `/proc/self/mountinfo`. */
export interface CgroupMount {
  /** `cgroup` (v1) or `cgroup2`. */
  fstype: 'cgroup' | 'cgroup2';
  /** The cgroup path mounted at the mount point. */
  root: string;
  /** The mount point. */
  mountPoint: string;
  /** For v1: the controllers named in the super options (and `name=…`); empty for v2. */
  controllers: string[];
}

/** Parses `/proc/PID/cgroup`. */
export function parseProcCgroup(text: string): ProcCgroupEntry[] {
  const out: ProcCgroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const id = Number(line.slice(0, first));
    if (!Number.isInteger(id)) continue;
    const list = line.slice(first + 1, second);
    // The path is everything after the second colon; it may itself contain colons.
    out.push({ id, controllers: list === '' ? [] : list.split(','), path: line.slice(second + 1) });
  }
  return out;
}

/** Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`). */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Super options of a v1 mount that are not controllers. */
const V1_NON_CONTROLLER_OPTIONS = new Set(['rw', 'ro', 'noprefix', 'xattr', 'clone_children', 'cpuset_v2_mode', 'all', 'none']);

/** Parses the cgroup and cgroup2 mounts out of `/proc/PID/mountinfo`. */
export function parseCgroupMounts(text: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    if (dash < 0 || fields.length < dash + 4) continue;
    const fstype = fields[dash + 1];
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const superOptions = fields[dash + 3]!.split(',');
    out.push({
      fstype,
      root: unescapeMountField(fields[3]!),
      mountPoint: unescapeMountField(fields[4]!),
      controllers:
        fstype === 'cgroup'
          ? superOptions.filter((o) => !V1_NON_CONTROLLER_OPTIONS.has(o) && !o.startsWith('release_agent='))
          : [],
    });
  }
  return out;
}

/**
 * The directory of cgroup `path` through a mount whose root is `root`, or
 * undefined when the mount does not show it (our cgroup is outside the
 * mounted subtree, or outside our cgroup namespace: `/..`).
 */
function dirThrough(mount: CgroupMount, path: string): string | undefined {
  if (path.split('/').includes('..')) return undefined;
  const root = mount.root === '/' ? '' : mount.root.replace(/\/+$/, '');
  if (path !== root && !path.startsWith(`${root}/`)) return undefined;
  const rest = path.slice(root.length);
  return rest === '' || rest === '/' ? mount.mountPoint : join(mount.mountPoint, rest);
}

/** What {@link detectCgroupsFrom} needs; tests give fixture text. */
export interface CgroupSources {
  /** The text of `/proc/self/cgroup`. */
  procCgroup: string;
  /** The text of `/proc/self/mountinfo`. */
  mountinfo: string;
  /** Reads a file on the host (for the unified hierarchy's `cgroup.controllers`); undefined when it cannot. */
  readFile: (path: string) => string | undefined;
}

/** Finds, for each controller, its hierarchy, mount point and our cgroup in it. */
export function detectCgroupsFrom(sources: CgroupSources): CgroupHost {
  const entries = parseProcCgroup(sources.procCgroup);
  const mounts = parseCgroupMounts(sources.mountinfo);
  const hierarchies: CgroupHierarchy[] = [];
  const controllers = new Map<string, CgroupHierarchy>();

  for (const entry of entries) {
    if (entry.id === 0) continue;
    const real = entry.controllers.filter((c) => !c.startsWith('name='));
    if (real.length === 0) continue;
    const key = [...entry.controllers].sort().join(',');
    // A hierarchy can be mounted more than once (bind mounts); the first mount that shows our cgroup wins.
    for (const mount of mounts) {
      if (mount.fstype !== 'cgroup' || [...mount.controllers].sort().join(',') !== key) continue;
      const dir = dirThrough(mount, entry.path);
      if (dir === undefined) continue;
      const h: CgroupHierarchy = { version: 1, controllers: real, mount: mount.mountPoint, mountRoot: mount.root, path: entry.path, dir };
      hierarchies.push(h);
      for (const c of real) controllers.set(c, h);
      break;
    }
  }

  const unifiedEntry = entries.find((e) => e.id === 0 && e.controllers.length === 0);
  if (unifiedEntry !== undefined) {
    for (const mount of mounts) {
      if (mount.fstype !== 'cgroup2') continue;
      const dir = dirThrough(mount, unifiedEntry.path);
      if (dir === undefined) continue;
      // Our cgroup's cgroup.controllers is what we may enable for children; the
      // mount's top-level file is the fallback when ours cannot be read.
      const listed = sources.readFile(join(dir, 'cgroup.controllers')) ?? sources.readFile(join(mount.mountPoint, 'cgroup.controllers')) ?? '';
      // A controller bound to a v1 hierarchy never shows up on the unified one; the check keeps that true.
      const own = listed.split(/\s+/).filter((c) => c !== '' && !controllers.has(c));
      const h: CgroupHierarchy = { version: 2, controllers: own, mount: mount.mountPoint, mountRoot: mount.root, path: unifiedEntry.path, dir };
      hierarchies.push(h);
      for (const c of own) controllers.set(c, h);
      break;
    }
  }

  const v1 = hierarchies.some((h) => h.version === 1);
  const v2 = hierarchies.find((h) => h.version === 2);
  // A unified hierarchy with no controllers beside v1 ones (systemd's tracking-only
  // mount) still makes the host hybrid: it is where cgroup v2 files live.
  const mode = v1 && v2 !== undefined ? 'hybrid' : v1 ? 'v1' : v2 !== undefined ? 'v2' : 'none';
  return { mode, hierarchies, controllers };
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Detects this process's cgroup layout from /proc. */
export function detectCgroups(): CgroupHost {
  return detectCgroupsFrom({
    procCgroup: readOrUndefined('/proc/self/cgroup') ?? '',
    mountinfo: readOrUndefined('/proc/self/mountinfo') ?? '',
    readFile: readOrUndefined,
  });
}

/** The cgroup and cgroup2 mounts this process sees, from `/proc/self/mountinfo`. */
export function detectCgroupMounts(): CgroupMount[] {
  return parseCgroupMounts(readOrUndefined('/proc/self/mountinfo') ?? '');
}

/** {@link detectCgroups} and {@link detectCgroupMounts} from one read of `/proc/self/mountinfo`: what a runtime's first container needs. */
export function detectCgroupLayout(): { host: CgroupHost; mounts: CgroupMount[] } {
  const mountinfo = readOrUndefined('/proc/self/mountinfo') ?? '';
  const host = detectCgroupsFrom({ procCgroup: readOrUndefined('/proc/self/cgroup') ?? '', mountinfo, readFile: readOrUndefined });
  return { host, mounts: parseCgroupMounts(mountinfo) };
}
