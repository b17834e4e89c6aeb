/**
 * A lower dir that gives a container's rootfs the targets of its /etc bind
 * mounts (/etc/hostname, /etc/hosts, /etc/resolv.conf) when the image lacks
 * them, as Docker's init layer does, but made once and shared by every
 * container whose image's /etc has the same mode and owner.
 *
 * Without it the helper creates each missing target in the container's merged
 * view: overlayfs copies /etc up into the upper dir and makes three files
 * there, four new inodes per container. On ext4 without a journal each new
 * inode costs a scan past every inode freed in the last minute, which made
 * inode creation the largest single cost of a launch (issue 13).
 *
 * @module
 */

import { lstatSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { fsyncDir } from '../util/index.js';

/** The bind-mount targets the runtime puts in every container's /etc (see `etcMounts`). */
export const ETC_TARGETS: readonly string[] = Object.freeze(['hostname', 'hosts', 'resolv.conf']);

/** The directory, below a runtime's root, that holds the shared lowers. */
export const ETC_TARGETS_DIR = 'etc-targets';

/** Lowers made (or found) by this process, by path: a later launch skips the stat. */
const made = new Set<string>();

/**
 * The shared lower to stack on `lowers` (top-most first) so that the /etc
 * targets exist in the merged view without a copy-up, or `undefined` when it
 * would change what the container sees or save nothing:
 * - the top-most lower's /etc is not a plain directory (a symlink there is the
 *   helper's to refuse, an absent /etc its to make);
 * - a target is anything but a regular file in some lower (a symlink is
 *   refused by the helper, a whiteout hides what is below): left as it is;
 * - every target is there already (nothing would be created).
 * Where it is used, a target the image has as a regular file is shadowed by an
 * empty one; either is covered by its bind mount all the same.
 *
 * Made as root only, for containers without a user namespace: the lower's /etc
 * takes the mode and owner of the image's, which overlayfs shows as the
 * merged /etc's until the container writes there.
 *
 * @param immutable - `lowers` are an image's snapshots, which never change: what
 *   their lookups decided is kept for the next launch of the image.
 */
export async function etcTargetsLower(root: string, lowers: readonly string[], immutable = false): Promise<string | undefined> {
  let etc: EtcOwner | undefined;
  if (!immutable) etc = lowerNeeded(lowers);
  else {
    const key = lowers.join('\0');
    etc = needed.has(key) ? needed.get(key) : lowerNeeded(lowers);
    needed.set(key, etc);
  }
  if (etc === undefined) return undefined;
  const dir = `${root}/${ETC_TARGETS_DIR}/${etc.mode.toString(8)}-${etc.uid}-${etc.gid}`;
  if (made.has(dir)) return dir;
  try {
    if (lstatSync(`${dir}/etc/${ETC_TARGETS[ETC_TARGETS.length - 1]}`, { throwIfNoEntry: false }) === undefined) await makeLower(dir, etc.mode, etc.uid, etc.gid);
  } catch {
    // Only a saving: the helper makes the targets in the upper dir, as it would without it.
    return undefined;
  }
  made.add(dir);
  return dir;
}

/** The mode and owner of the image's /etc, which the shared lower's /etc takes. */
interface EtcOwner {
  mode: number;
  uid: number;
  gid: number;
}

/**
 * What each stack of an image's snapshots needs, by its lowers: one `lstat` per
 * target and layer, made once per image and process rather than per launch.
 */
const needed = new Map<string, EtcOwner | undefined>();

/** Whether `lowers` need the shared lower (see {@link etcTargetsLower}), and with which /etc: from the lowers as they are now. */
function lowerNeeded(lowers: readonly string[]): EtcOwner | undefined {
  const top = lowers[0];
  if (top === undefined) return undefined;
  const etc = lstatSync(`${top}/etc`, { throwIfNoEntry: false });
  if (etc === undefined || !etc.isDirectory()) return undefined;
  let missing = false;
  for (const name of ETC_TARGETS) {
    let found = false;
    for (const lower of lowers) {
      const st = lstatSync(`${lower}/etc/${name}`, { throwIfNoEntry: false });
      if (st === undefined) continue;
      if (!st.isFile()) return undefined;
      found = true;
    }
    if (!found) missing = true;
  }
  return missing ? { mode: etc.mode & 0o7777, uid: etc.uid, gid: etc.gid } : undefined;
}

/** Makes `dir` whole aside, then renames it in: another process may be making the same one, and a lower must never be seen half made. */
async function makeLower(dir: string, mode: number, uid: number, gid: number): Promise<void> {
  const parent = dir.slice(0, dir.lastIndexOf('/'));
  await mkdir(parent, { recursive: true, mode: 0o711 });
  const making = await mkdtemp(`${parent}/.new-`);
  try {
    await mkdir(`${making}/etc`);
    for (const name of ETC_TARGETS) await writeFile(`${making}/etc/${name}`, '', { mode: 0o644 });
    await chown(`${making}/etc`, uid, gid);
    // After the chown, which clears the set-id bits.
    await chmod(`${making}/etc`, mode);
    await chmod(making, 0o755);
    // Durable before it is named: a restart after a crash stacks it again, from the plan it recorded.
    await fsyncDir(`${making}/etc`);
    await fsyncDir(making);
    await rename(making, dir);
    await fsyncDir(parent);
  } catch (error) {
    await rm(making, { recursive: true, force: true });
    // Made meanwhile by another process: theirs is as good.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
  }
}
