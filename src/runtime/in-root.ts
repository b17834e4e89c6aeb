import { lstat, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError } from '../errors.js';

const MAX_SYMLINKS = 40;

/**
 * Resolves `path` inside the directory `root` as a process chrooted there would:
 * absolute symlinks start again at `root` and `..` never climbs above it, so the
 * result is always a host path below `root`. A missing component ends the walk:
 * the rest is appended as it is.
 *
 * @throws {@link InvalidArgumentError} after 40 symlinks (a loop).
 */
export async function resolveInRoot(root: string, path: string): Promise<string> {
  const pending = path.split('/').filter((c) => c !== '' && c !== '.');
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const component = pending.shift() as string;
    if (component === '..') {
      resolved.pop();
      continue;
    }
    const candidate = join(root, ...resolved, component);
    let isLink = false;
    try {
      isLink = (await lstat(candidate)).isSymbolicLink();
    } catch {
      return join(root, ...resolved, component, ...pending);
    }
    if (!isLink) {
      resolved.push(component);
      continue;
    }
    if (++links > MAX_SYMLINKS) {
      throw new InvalidArgumentError(`resolve \`${path}\` in \`${root}\`: too many levels of symbolic links`, { path });
    }
    const target = await readlink(candidate);
    if (target.startsWith('/')) resolved.length = 0;
    pending.unshift(...target.split('/').filter((c) => c !== '' && c !== '.'));
  }
  return join(root, ...resolved);
}

/** Reads a file inside `root` (see {@link resolveInRoot}); undefined when it does not exist. */
export async function readFileInRoot(root: string, path: string): Promise<string | undefined> {
  try {
    return await readFile(await resolveInRoot(root, path), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') {
      return undefined;
    }
    throw error;
  }
}
