/**
 * Resolving a path inside a tree as the kernel would with the tree as its
 * root: symlinks followed, absolute ones from the tree's root, `..` never above
 * it. One algorithm for every tree dockless reads for an untrusted image: a
 * directory on disk, a stack of layers, a running container's mounted root.
 *
 * @module
 */

import { InvalidArgumentError } from '../errors.js';

/** The most symlinks followed in one resolution, as Linux's MAXSYMLINKS. */
const MAX_SYMLINKS = 40;

/** What resolving needs of a tree, by root-relative path (`''` is the root). */
export interface PathProbe {
  /** Whether the entry is a symlink; `undefined` when it does not exist. */
  isSymlink(rel: string): Promise<boolean | undefined>;
  /** The target of the symlink at `rel`. */
  readlink(rel: string): Promise<string>;
}

/**
 * Resolves `path` (absolute or root-relative) in the tree `probe` answers for.
 * The final component is followed only with `followLast`; below a missing
 * component nothing can be a symlink, so the rest is kept as it is (`..` still
 * never climbing above the root).
 *
 * @returns the root-relative path, `''` for the root.
 * @throws {InvalidArgumentError} after 40 symlinks (a loop), naming `context`.
 */
export async function resolveInTree(
  path: string,
  probe: PathProbe,
  options: { followLast?: boolean; context?: string } = {},
): Promise<string> {
  const split = (p: string) => p.split('/').filter((c) => c !== '' && c !== '.');
  let pending = split(path);
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const name = pending.shift()!;
    if (name === '..') {
      done.pop();
      continue;
    }
    const rel = [...done, name].join('/');
    const isLink = await probe.isSymlink(rel);
    if (isLink === true && (pending.length > 0 || options.followLast === true)) {
      if (++links > MAX_SYMLINKS) {
        throw new InvalidArgumentError(`${options.context ?? 'resolve'}: resolve \`${path}\`: too many levels of symbolic links`, { path });
      }
      const target = await probe.readlink(rel);
      if (target.startsWith('/')) done.length = 0;
      pending = [...split(target), ...pending];
      continue;
    }
    done.push(name);
    if (isLink === undefined) {
      for (const c of pending) {
        if (c === '..') done.pop();
        else done.push(c);
      }
      return done.join('/');
    }
  }
  return done.join('/');
}
