/**
 * `docker diff`: what a container changed in its root filesystem, read from
 * its upper directory against the layers below: `A` added, `C` changed (a file
 * written, or a directory something changed in), `D` deleted (an overlayfs
 * whiteout).
 *
 * @module
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isOverlayWhiteout } from '../layer/index.js';

/** One change of {@link Container.diff}. */
export interface ContainerChange {
  /** The path inside the container. */
  path: string;
  /** `A` added, `C` changed, `D` deleted, as `docker diff` prints them. */
  kind: 'A' | 'C' | 'D';
}

async function inLowers(lowers: readonly string[], rel: string): Promise<boolean> {
  for (const lower of lowers) {
    if (await lstat(join(lower, rel)).then(() => true, () => false)) return true;
  }
  return false;
}

/** The changes in `upper` over `lowers` (top-most first), sorted by path. */
export async function diffUpper(upper: string, lowers: readonly string[]): Promise<ContainerChange[]> {
  const changes: ContainerChange[] = [];
  const walk = async (rel: string, added: boolean): Promise<void> => {
    const names = await readdir(join(upper, rel)).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [] as string[];
      throw error;
    });
    for (const name of names.sort()) {
      const child = rel === '' ? name : `${rel}/${name}`;
      const st = await lstat(join(upper, child));
      if (isOverlayWhiteout(st)) {
        changes.push({ path: `/${child}`, kind: 'D' });
        continue;
      }
      const isNew = added || !(await inLowers(lowers, child));
      changes.push({ path: `/${child}`, kind: isNew ? 'A' : 'C' });
      if (st.isDirectory()) await walk(child, isNew);
    }
  };
  await walk('', false);
  return changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
