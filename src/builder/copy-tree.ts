/**
 * {@link copyTree}: a copy of a directory tree that keeps what `cp -a` keeps
 * (types, modes, owners, times, symlinks, hardlinks, device nodes, xattrs),
 * in Node plus the helper's `meta` and `xattrs` ops for what Node cannot do.
 *
 * @module
 */

import { constants, type Stats } from 'node:fs';
import { chmod, copyFile, lchown, link, lstat, lutimes, mkdir, readdir, readlink, symlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import createDebug from 'debug';
import { InvalidArgumentError } from '../errors.js';
import { readXattrs, runHelperOp } from '../helper/index.js';
import { isErrno } from '../util/index.js';

const debug = createDebug('dockless:build');

/** Options of {@link copyTree}. */
export interface CopyTreeOptions {
  /** Put before error messages. */
  context: string;
  /** Path of the native helper. @default the one `npm install` built */
  helperPath?: string | undefined;
}

interface Entry {
  /** Relative to the tree's root; `''` is the root. */
  rel: string;
  stats: Stats;
}

/**
 * Copies the tree at `src` to `dest` (which must not exist). Regular files
 * are cloned where the filesystem can (`FICLONE`), else copied; files linked
 * more than once inside the tree stay linked in the copy. Owners are kept
 * where the caller may set them (a caller that is not root keeps its own,
 * as `cp -a` does); xattrs are kept but `trusted.*` ones for a caller that
 * is not root, and `security.selinux`, which describes the host. Sockets
 * are left out, and so are entries that vanish while the tree is read.
 *
 * @throws {InvalidArgumentError} when `src` is not a directory.
 * @throws {HelperError} when a device node or an xattr cannot be made.
 */
export async function copyTree(src: string, dest: string, options: CopyTreeOptions): Promise<void> {
  const rootStats = await lstat(src);
  if (!rootStats.isDirectory()) throw new InvalidArgumentError(`${options.context}: copy \`${src}\`: not a directory`, { path: src });
  const entries: Entry[] = [{ rel: '', stats: rootStats }];
  for (let i = 0; i < entries.length; i++) {
    const { rel, stats } = entries[i]!;
    if (!stats.isDirectory()) continue;
    for (const name of (await readdir(path.join(src, rel)).catch(vanished([]))).sort()) {
      const child = rel === '' ? name : `${rel}/${name}`;
      const childStats = await lstat(path.join(src, child)).catch(vanished(undefined));
      if (childStats !== undefined) entries.push({ rel: child, stats: childStats });
    }
  }
  const asRoot = (process.getuid?.() ?? 0) === 0;
  const at = (rel: string): string => (rel === '' ? dest : path.join(dest, rel));
  const linked = new Map<string, string>();
  const mknods: string[] = [];
  const made: Entry[] = [];
  for (const entry of entries) {
    const { rel, stats } = entry;
    const target = at(rel);
    if (stats.isDirectory()) {
      // Writable by us until its children are in; its mode comes last.
      await mkdir(target, { mode: 0o700 });
    } else if (stats.isSymbolicLink()) {
      const to = await readlink(path.join(src, rel)).catch(vanished(undefined));
      if (to === undefined) continue;
      await symlink(to, target);
    } else if (stats.isFile()) {
      const inode = `${stats.dev}:${stats.ino}`;
      const first = stats.nlink > 1 ? linked.get(inode) : undefined;
      if (first !== undefined) {
        await link(first, target);
        continue;
      }
      if (!(await copyFile(path.join(src, rel), target, constants.COPYFILE_FICLONE).then(() => true, vanished(false)))) continue;
      if (stats.nlink > 1) linked.set(inode, target);
    } else if (stats.isCharacterDevice() || stats.isBlockDevice() || stats.isFIFO()) {
      const type = stats.isFIFO() ? 'p' : stats.isCharacterDevice() ? 'c' : 'b';
      mknods.push('mknod', rel, type, (stats.mode & 0o7777).toString(8), String(major(stats.rdev)), String(minor(stats.rdev)));
    } else {
      debug('%s: copy `%s`: a socket, left out', options.context, rel);
      continue;
    }
    made.push(entry);
  }
  const helper = options.helperPath !== undefined ? { helperPath: options.helperPath } : {};
  if (mknods.length > 0) await runHelperOp('meta', ['--root', dest], { input: Buffer.from(`${mknods.join('\0')}\0`), context: options.context, ...helper });

  for (const { rel, stats } of made) {
    try {
      await lchown(at(rel), stats.uid, stats.gid);
    } catch (err) {
      // As `cp -a`: a caller that is not root keeps the files as its own.
      if (asRoot || !isErrno(err, 'EPERM')) throw err;
    }
  }
  // After the owners (a chown clears `security.capability`), before the modes (a directory may lose its search bit).
  const xattrs = await readXattrs(src, made.map((e) => e.rel || '.'), { context: options.context, ...helper });
  const records: string[] = [];
  for (const [rel, attrs] of xattrs) {
    for (const [name, value] of attrs) {
      if (name === 'security.selinux' || (!asRoot && name.startsWith('trusted.'))) continue;
      records.push('xattr', rel, name, Buffer.from(value).toString('hex'));
    }
  }
  if (records.length > 0) await runHelperOp('meta', ['--root', dest], { input: Buffer.from(`${records.join('\0')}\0`), context: options.context, ...helper });
  // After the owners too: a chown clears the set-id bits.
  for (const { rel, stats } of made) if (!stats.isSymbolicLink()) await chmod(at(rel), stats.mode & 0o7777);

  // Times last, children before their directory: making an entry changes its parent's mtime.
  for (const { rel, stats } of made.reverse()) {
    if (stats.isDirectory()) await utimes(at(rel), stats.atime, stats.mtime);
    else await lutimes(at(rel), stats.atime, stats.mtime);
  }
}

/**
 * A rejection handler for an entry that vanished while the tree was read (a
 * running container's upper dir changes under the copy): `value` for
 * ENOENT, the error again for anything else.
 */
function vanished<T>(value: T): (err: unknown) => T {
  return (err) => {
    if (isErrno(err, 'ENOENT')) return value;
    throw err;
  };
}

/** The major number of a Linux `dev_t`. */
function major(dev: number): number {
  return Number(((BigInt(dev) >> 8n) & 0xfffn) | ((BigInt(dev) >> 32n) & ~0xfffn));
}

/** The minor number of a Linux `dev_t`. */
function minor(dev: number): number {
  return Number((BigInt(dev) & 0xffn) | ((BigInt(dev) >> 12n) & ~0xffn));
}
