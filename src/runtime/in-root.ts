import { constants } from 'node:fs';
import { lstat, open, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { resolveInTree } from '../layer/index.js';

/**
 * Resolves `path` inside the directory `root` as a process chrooted there would:
 * absolute symlinks start again at `root` and `..` never climbs above it, so the
 * result is always a host path below `root`. A missing component ends the walk:
 * the rest is appended as it is (with `..` still kept below `root`).
 *
 * @throws {@link InvalidArgumentError} after 40 symlinks (a loop).
 */
export async function resolveInRoot(root: string, path: string): Promise<string> {
  const rel = await resolveInTree(
    path,
    {
      isSymlink: (rel) => lstat(join(root, rel)).then((st) => st.isSymbolicLink(), () => undefined),
      readlink: (rel) => readlink(join(root, rel)),
    },
    { followLast: true, context: `resolve in \`${root}\`` },
  );
  return join(root, rel);
}

/** The most of a file inside a root that is read (an /etc/passwd is far smaller). */
export const MAX_IN_ROOT_FILE = 16 * 1024 * 1024;

/**
 * Reads a file inside `root` (see {@link resolveInRoot}); undefined when it does not exist.
 * The root may come from an untrusted image, so the last component is opened
 * without following a symlink and without blocking, and only a regular file of
 * at most {@link MAX_IN_ROOT_FILE} bytes is read: a FIFO would hang the caller,
 * a device node (`/dev/zero`, a host disk) would feed it without end.
 *
 * @throws {@link InvalidArgumentError} when the path names anything but a regular file, or one too large.
 */
export async function readFileInRoot(root: string, path: string): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(await resolveInRoot(root, path), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'ELOOP') throw new InvalidArgumentError(`read \`${path}\` in \`${root}\`: not a regular file`, { path, cause: error });
    throw error;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new InvalidArgumentError(`read \`${path}\` in \`${root}\`: not a regular file`, { path });
    if (st.size > MAX_IN_ROOT_FILE) {
      throw new InvalidArgumentError(`read \`${path}\` in \`${root}\`: ${st.size} bytes, more than ${MAX_IN_ROOT_FILE}`, { path });
    }
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}
