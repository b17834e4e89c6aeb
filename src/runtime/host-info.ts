/**
 * What `dockless info` reports: the host as this runtime sees it (cgroup
 * layout, rootless or not, the kernel, the helper) and where it keeps things.
 *
 * @module
 */
import { execFile } from 'node:child_process';
import { release } from 'node:os';
import { promisify } from 'node:util';
import { locateHelper } from '../helper/index.js';
import { detectCgroups } from './cgroups/detect.js';

/** What {@link Runtime.info} returns. */
export interface RuntimeInfo {
  /** The caller is not root: containers run in user namespaces of its subordinate ids. */
  rootless: boolean;
  /** The cgroup layout found: `v1`, `v2`, `hybrid` (controllers on v1, the v2 hierarchy beside them) or `none`. */
  cgroupVersion: 'v1' | 'v2' | 'hybrid' | 'none';
  /** The cgroup controllers the caller's cgroups offer. */
  cgroupControllers: string[];
  /** The kernel release (`uname -r`). */
  kernel: string;
  /** The CPU architecture, as Node names it. */
  arch: string;
  /** The runtime's data directory (containers' upper dirs). */
  root: string;
  /** The runtime's state directory (records, names, pods, logs). */
  stateDir: string;
  /** The native helper's path. */
  helperPath: string;
  /** What the helper's `version` op printed (`dockless-helper N`), or the error that prevented it. */
  helperVersion: string;
}

/** Gathers {@link RuntimeInfo} for a runtime's directories. */
export async function hostInfo(root: string, stateDir: string, helperOverride: string | undefined): Promise<RuntimeInfo> {
  const cgroups = detectCgroups();
  const helperPath = locateHelper(helperOverride);
  const helperVersion = await promisify(execFile)(helperPath, ['version'], { timeout: 5000 }).then(
    (r) => r.stdout.trim(),
    (error: unknown) => `unavailable: ${(error as Error).message}`,
  );
  return {
    rootless: process.getuid?.() !== 0,
    cgroupVersion: cgroups.mode,
    cgroupControllers: [...cgroups.controllers.keys()].sort(),
    kernel: release(),
    arch: process.arch,
    root,
    stateDir,
    helperPath,
    helperVersion,
  };
}
