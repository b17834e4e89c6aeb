/**
 * Marking directories `FS_TOPDIR_FL` (`chattr +T`) through the helper's `meta`
 * op (Node has no `FS_IOC_SETFLAGS`).
 *
 * @module
 */

import createDebug from 'debug';
import { runHelperOp } from './spawn.js';

const debug = createDebug('dockless:helper');

/**
 * Marks `dirs` (absolute) `FS_TOPDIR_FL` (`chattr +T`), so that ext4 spreads
 * the directories made in them over the filesystem's block groups instead of
 * keeping them in their parent's. Without a journal, ext4 passes over every
 * inode freed in the last minute or more each time it allocates one in a
 * group, from the group's start: trees made and removed at a high rate in one
 * group (a container's directory, a snapshot's) made inode allocation the
 * largest cost of a launch and of an unpack (issue 13). Only a placement hint:
 * a failure (no helper, a filesystem without the flag) is logged, never thrown.
 *
 * @param context - put before the logged failure, e.g. `prepare runtime`.
 */
export async function spreadSubdirs(dirs: readonly string[], context: string, helperPath?: string): Promise<void> {
  try {
    await runHelperOp('meta', ['--root', '/'], {
      input: dirs.map((dir) => `topdir\0${dir.slice(1)}\0`).join(''),
      context,
      ...(helperPath !== undefined ? { helperPath } : {}),
    });
  } catch (error) {
    debug('%s: topdir %s: %s', context, dirs.join(' '), String(error));
  }
}
