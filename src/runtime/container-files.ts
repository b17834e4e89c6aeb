/**
 * `container.copyIn()` / `copyOut()`: a container's files read and written
 * from the host, without entering the container, as `docker cp` does.
 *
 * A stopped container's files are its overlay, unmounted: the read-only lower
 * dirs and its own upper dir. copyOut reads the merged view (upper over lowers,
 * whiteouts and opaque directories honoured); copyIn writes into the upper dir,
 * copying up the parent directories' metadata from the lowers, as overlayfs would.
 *
 * A running (or paused) container's files are read and written through
 * `/proc/<pid>/root`, its mounted root: writing into the upper dir of a mounted
 * overlay is undefined behaviour in overlayfs's own words, and in practice a
 * path the container has looked up and not found stays hidden (a cached
 * negative dentry) even once the file is in the upper dir. Through the mount the
 * kernel does the copy-up, and the container's mounts (tmpfs, bind mounts) are
 * seen as the container sees them. A rootless caller cannot open that root (the
 * container's pid 1 is not dumpable, so ptrace access is refused): it gets the
 * stopped container's way, with that caveat.
 *
 * In both cases paths are resolved as the container would resolve them
 * (symlinks followed inside its root, absolute ones from its root, `..` never
 * above it), and every directory is then opened component by component with
 * `O_NOFOLLOW | O_DIRECTORY` through `/proc/self/fd/N/<name>` (an openat, which
 * Node lacks): a symlink that appears between the resolution and the open (a
 * running container can make one) fails the copy instead of leading it to a
 * host path.
 *
 * @module
 */

import { constants, type Stats } from 'node:fs';
import { chown, lchown, link, lstat, lutimes, mkdir, open, readdir, readlink, stat, symlink, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { basename, join as hostJoin, posix } from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { once } from 'node:events';
import type tarStream from 'tar-stream';
import { DocklessError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { fsError, isErrno, lazyRequire } from '../util/index.js';
import { createExtract, isOverlayWhiteout, joinRelPath, MergedView, normalizeEntryPath, relParentOf, resolveInTree } from '../layer/index.js';
import type { IdMap } from './userns.js';

// Only copies in and out use tar: a run need not load it.
const tarStreamModule = lazyRequire<typeof tarStream>('tar-stream');

/** Where a container's files are. */
export interface ContainerFiles {
  /** The container's upper dir. */
  upper: string;
  /** The overlay's lower dirs, top-most first. */
  lowers: readonly string[];
  /** The helper, for reading opaque-directory xattrs. */
  helperPath?: string;
  /**
   * Rootless: the upper dir holds host ids, mapped through these; otherwise it
   * holds the container's own ids.
   */
  rootlessMaps?: { uidMap: readonly IdMap[]; gidMap: readonly IdMap[] };
  /**
   * A running container: its root as the kernel shows it to its processes
   * (`/proc/<pid>/root`: the mounted overlay, with its mounts), used instead of
   * the layers, and a check that the pid is still the container's, run once the
   * root is open.
   */
  live?: { root: string; verify: (root: FileHandle) => Promise<void> };
}

/** A container's root filesystem, seen through root-relative paths (`''` the root, no `.`/`..`). */
interface Tree {
  /** The entry at `rel`, not following a final symlink. */
  lstat(rel: string): Promise<Stats | undefined>;
  /** The visible names in the directory `rel`, sorted. */
  readdir(rel: string): Promise<string[]>;
  /** The host directory to open `rel` below: a layer, the upper dir, or the live root. */
  baseOf(rel: string): Promise<string>;
  /** Where new entries are written. */
  writable: string;
  /** Whether ids on disk are host ids to map (a rootless upper dir). */
  hostIds(base: string): boolean;
  verify?: (root: FileHandle) => Promise<void>;
}

function layersTree(files: ContainerFiles): Tree {
  const layers = [files.upper, ...files.lowers];
  const view = new MergedView(layers, files.helperPath !== undefined ? { helperPath: files.helperPath } : {});
  return {
    lstat: async (rel) => (await view.lstat(rel))?.stats,
    readdir: async (rel) => (await view.readdir(rel)) ?? [],
    baseOf: async (rel) => {
      const entry = await view.lstat(rel);
      return layers.find((l) => entry !== undefined && hostJoin(l, rel) === entry.hostPath) ?? files.upper;
    },
    writable: files.upper,
    // A rootless container's layers hold host ids too: its own (its root) or, unpacked with its maps, subordinate ones.
    hostIds: () => files.rootlessMaps !== undefined,
  };
}

function liveTree(files: ContainerFiles, live: { root: string; verify: (root: FileHandle) => Promise<void> }): Tree {
  return {
    // The root itself is the magic link, to follow. Below it nothing is looked up by
    // path: the container could swap a directory for a symlink to a host path
    // mid-copy (docker cp's CVE-2018-15664); the parent is opened component by component.
    lstat: async (rel) => {
      if (rel === '') return stat(live.root).catch(() => undefined);
      const parent = await openBeneath(live.root, posix.dirname(rel) === '.' ? '' : posix.dirname(rel), undefined, live.verify).catch(() => undefined);
      if (parent === undefined) return undefined;
      try {
        return await lstat(at(parent, posix.basename(rel))).catch(() => undefined);
      } finally {
        await parent.close();
      }
    },
    readdir: async (rel) => {
      const dir = await openBeneath(live.root, rel, undefined, live.verify);
      try {
        return (await readdir(at(dir, '.'))).sort();
      } finally {
        await dir.close();
      }
    },
    baseOf: async () => live.root,
    writable: live.root,
    // Through the mount, ids are those of the user namespace the mount belongs to, for rootless the caller's own.
    hostIds: () => files.rootlessMaps !== undefined,
    verify: live.verify,
  };
}

/**
 * Resolves `path` in `tree` as the kernel would with the tree as root (see
 * the layer's `resolveInTree`); a link's target is read through its parent
 * opened without following links.
 */
function resolveIn(tree: Tree, base: (rel: string) => Promise<string>, path: string, followLast: boolean, context: string): Promise<string> {
  return resolveInTree(
    path,
    {
      isSymlink: async (rel) => (await tree.lstat(rel))?.isSymbolicLink(),
      readlink: async (rel) => {
        const dir = await openBeneath(await base(rel), relParentOf(rel), undefined, tree.verify);
        try {
          return await readlink(at(dir, posix.basename(rel)));
        } finally {
          await dir.close();
        }
      },
    },
    { followLast, context },
  );
}

/** Options of {@link Container.copyIn}. */
export interface CopyInOptions {
  /**
   * Keep the owners (uid/gid) the tar or the host files have, as `docker cp -a`;
   * otherwise everything copied belongs to the container's root.
   * @default false
   */
  archive?: boolean;
}

/** Options of {@link Container.copyOut}. */
export interface CopyOutOptions {
  /** Copy what a final symlink points to rather than the link itself, as `docker cp -L`. @default false */
  followLink?: boolean;
}

/** Streams `size` bytes of `file` into a new entry of `pack`. */
type EntryHeader = Parameters<tarStream.Pack['entry']>[0];

async function packFile(pack: tarStream.Pack, header: EntryHeader, file: FileHandle, size: number): Promise<void> {
  let failed: Error | undefined;
  const sink = pack.entry({ ...header, type: 'file', size }, (error) => {
    if (error) failed = error;
  });
  if (size > 0) {
    for await (const chunk of file.createReadStream({ start: 0, end: size - 1, autoClose: false })) {
      if (!sink.write(chunk as Buffer)) await once(sink, 'drain');
    }
  }
  sink.end(Buffer.alloc(0));
  if (failed !== undefined) throw failed;
}

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException)?.code;
}

/**
 * A filesystem failure as a typed error naming the container path: a path the
 * container made a symlink or a non-directory where a directory was needed is
 * bad input ({@link InvalidArgumentError}); the rest as util's `fsError`.
 */
function copyError(context: string, what: string, path: string, cause: unknown): DocklessError {
  const message = `${context}: ${what} \`${path}\``;
  if (isErrno(cause, 'ELOOP', 'ENOTDIR', 'EISDIR', 'EEXIST')) {
    return new InvalidArgumentError(`${message}: ${errno(cause)}`, { cause, path });
  }
  return fsError(cause, message, path);
}

function components(rel: string): string[] {
  return rel.split('/').filter((c) => c !== '');
}

/** `/proc/self/fd/N/name`: `name` looked up in the directory open as `dir`, as openat(2) would. */
function at(dir: FileHandle, name: string): string {
  return `/proc/self/fd/${dir.fd}/${name}`;
}

/**
 * Opens the directory `rel` below `base`, never following a symlink. `make`,
 * when given, creates a missing component (and says with which metadata).
 */
async function openBeneath(
  base: string,
  rel: string,
  make?: (rel: string) => Promise<{ mode: number; uid: number; gid: number }>,
  verify?: (root: FileHandle) => Promise<void>,
): Promise<FileHandle> {
  // The base is ours (an upper or layer dir), or `/proc/<pid>/root`, a magic link to be followed.
  let dir = await open(base, constants.O_RDONLY | constants.O_DIRECTORY);
  const done: string[] = [];
  try {
    await verify?.(dir);
    for (const name of components(rel)) {
      done.push(name);
      let next: FileHandle;
      try {
        next = await open(at(dir, name), DIR_FLAGS);
      } catch (error) {
        if (errno(error) !== 'ENOENT' || make === undefined) throw error;
        const meta = await make(done.join('/'));
        await mkdir(at(dir, name), { mode: 0o700 });
        next = await open(at(dir, name), DIR_FLAGS);
        await next.chown(meta.uid, meta.gid).catch((e) => ignoreOwnEperm(e, meta));
        await next.chmod(meta.mode & 0o7777);
      }
      await dir.close();
      dir = next;
    }
    return dir;
  } catch (error) {
    await dir.close();
    throw error;
  }
}

/** A rootless caller can give only its own ids; ids it cannot give keep the caller's (the container sees them as unmapped). */
function ignoreOwnEperm(error: unknown, _meta: { uid: number; gid: number }): void {
  if (errno(error) === 'EPERM' && process.getuid?.() !== 0) return;
  throw error;
}

function mapId(id: number, maps: readonly IdMap[] | undefined, toHost: boolean): number {
  if (maps === undefined) return id;
  for (const m of maps) {
    const from = toHost ? m.containerId : m.hostId;
    if (id >= from && id < from + m.size) return id - from + (toHost ? m.hostId : m.containerId);
  }
  // The overflow id, as the kernel shows an unmapped id.
  return 65534;
}

function devNumbers(rdev: number): { devmajor: number; devminor: number } {
  return { devmajor: (rdev >> 8) & 0xfff, devminor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00) };
}

/**
 * The tar of the container path `path` (a file, or a directory with all below
 * it), named by its last component as `docker cp` names it (`etc/…` for `/etc`).
 *
 * @throws {@link NotFoundError} when the path does not exist in the container.
 */
export async function copyOutOf(files: ContainerFiles, path: string, options: CopyOutOptions, context: string): Promise<Readable> {
  if (typeof path !== 'string' || path === '' || path.includes('\0')) {
    throw new InvalidArgumentError(`${context}: the container path must be a non-empty string without NUL bytes`);
  }
  const tree = files.live !== undefined ? liveTree(files, files.live) : layersTree(files);
  const followLast = options.followLink === true || /\/\.?$/.test(path);
  const rel = await resolveIn(tree, tree.baseOf, path, followLast, context);
  const top = await tree.lstat(rel);
  if (top === undefined) throw new NotFoundError(`${context}: \`${path}\` does not exist in the container`, { path });
  const pack = tarStreamModule().pack();
  const maps = files.rootlessMaps;

  const emit = async (r: string, name: string): Promise<void> => {
    const st = await tree.lstat(r);
    if (st === undefined) return;
    const layer = await tree.baseOf(r);
    // Ids in a rootless upper dir are host ids; the tar carries the container's.
    const own = tree.hostIds(layer) && maps !== undefined;
    const header: EntryHeader = {
      name,
      mode: st.mode & 0o7777,
      uid: own ? mapId(st.uid, maps.uidMap, false) : st.uid,
      gid: own ? mapId(st.gid, maps.gidMap, false) : st.gid,
      mtime: st.mtime,
    };
    if (st.isDirectory()) {
      // The container's root itself has no name in the tar: its entries are the tar's top level.
      if (name !== '') pack.entry({ ...header, type: 'directory' });
      for (const child of await tree.readdir(r)) await emit(joinRelPath(r, child), name === '' ? child : `${name}/${child}`);
      return;
    }
    const dir = await openBeneath(layer, relParentOf(r), undefined, tree.verify);
    try {
      const leaf = at(dir, posix.basename(r));
      if (st.isSymbolicLink()) {
        pack.entry({ ...header, type: 'symlink', linkname: await readlink(leaf) });
      } else if (st.isFile()) {
        const file = await open(leaf, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
        try {
          const fst = await file.stat();
          if (!fst.isFile()) throw new InvalidArgumentError(`${context}: \`/${r}\` changed while it was read`);
          await packFile(pack, header, file, fst.size);
        } finally {
          await file.close();
        }
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        pack.entry({ ...header, type: st.isCharacterDevice() ? 'character-device' : 'block-device', ...devNumbers(st.rdev) });
      } else if (st.isFIFO()) {
        pack.entry({ ...header, type: 'fifo' });
      }
      // Sockets have no tar form, as with GNU tar.
    } finally {
      await dir.close();
    }
  };

  const out = new PassThrough();
  pack.pipe(out);
  const rootName = rel === '' ? '' : posix.basename(rel);
  emit(rel, rootName).then(
    () => pack.finalize(),
    (error: unknown) => out.destroy(copyError(context, 'read', `/${rel}`, error)),
  );
  return out;
}

/** A tar stream of a host file or directory, named by its last component; nothing is followed. */
function hostTar(hostPath: string, context: string): Readable {
  const pack = tarStreamModule().pack();
  const walk = async (p: string, name: string): Promise<void> => {
    const st = await lstat(p);
    const header: EntryHeader = { name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
    if (st.isDirectory()) {
      pack.entry({ ...header, type: 'directory' });
      for (const child of (await readdir(p)).sort()) await walk(hostJoin(p, child), `${name}/${child}`);
    } else if (st.isSymbolicLink()) {
      pack.entry({ ...header, type: 'symlink', linkname: await readlink(p) });
    } else if (st.isFile()) {
      const file = await open(p, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      try {
        await packFile(pack, header, file, st.size);
      } finally {
        await file.close();
      }
    } else {
      throw new InvalidArgumentError(`${context}: \`${p}\` is not a file, directory or symlink`, { path: p });
    }
  };
  const out = new PassThrough();
  pack.pipe(out);
  walk(hostPath, basename(hostPath)).then(
    () => pack.finalize(),
    (error: unknown) => out.destroy(copyError(context, 'read host path', hostPath, error)),
  );
  return out;
}

/** The metadata of the directory a copy-up makes: that of the merged view's directory, as overlayfs copies it up. */
function copyUpMeta(st: Stats | undefined): { mode: number; uid: number; gid: number } {
  return st !== undefined ? { mode: st.mode, uid: st.uid, gid: st.gid } : { mode: 0o755, uid: 0, gid: 0 };
}

/**
 * Extracts `source` (a tar stream, or a host file or directory) into the
 * container directory `path`, writing into the upper dir.
 *
 * @throws {@link NotFoundError} when `path` does not exist in the container.
 * @throws {@link InvalidArgumentError} when `path` is not a directory, an entry would replace a
 *   directory with a non-directory (or the reverse), or is of a kind not copied (device, fifo).
 * @throws {@link UnsafeContentError} for a tar entry that climbs out with `..`.
 */
export async function copyInto(
  files: ContainerFiles,
  source: Readable | string,
  path: string,
  options: CopyInOptions,
  context: string,
): Promise<void> {
  if (typeof path !== 'string' || path === '' || path.includes('\0')) {
    throw new InvalidArgumentError(`${context}: the container path must be a non-empty string without NUL bytes`);
  }
  const tree = files.live !== undefined ? liveTree(files, files.live) : layersTree(files);
  const resolve = (p: string) => resolveIn(tree, tree.baseOf, p, true, context);
  const dest = await resolve(path);
  const destEntry = await tree.lstat(dest);
  if (destEntry === undefined) throw new NotFoundError(`${context}: \`${path}\` does not exist in the container`, { path });
  if (!destEntry.isDirectory()) throw new InvalidArgumentError(`${context}: \`${path}\` is not a directory in the container`, { path });
  const input = typeof source === 'string' ? hostTar(source, context) : source;
  const maps = files.rootlessMaps;
  const owner = (uid: number, gid: number) =>
    options.archive === true ? { uid: mapId(uid, maps?.uidMap, true), gid: mapId(gid, maps?.gidMap, true) } : { uid: mapId(0, maps?.uidMap, true), gid: mapId(0, maps?.gidMap, true) };
  // Paths this copy made: the view's cache predates them.
  const made = new Map<string, 'dir' | 'other'>();
  const dirs: { rel: string; mode: number; mtime: Date }[] = [];

  const place = async (header: tarStream.Header, body: AsyncIterable<unknown> & { resume(): unknown }): Promise<void> => {
    const name = normalizeEntryPath(header.name, 'copy entry');
    if (name === '') {
      body.resume();
      return;
    }
    const full = joinRelPath(dest, name);
    const parent = made.has(relParentOf(full)) ? relParentOf(full) : await resolve(relParentOf(full));
    const rel = joinRelPath(parent, posix.basename(full));
    const merged = made.has(rel) ? undefined : await tree.lstat(rel);
    const makeParent = async (r: string) => {
      const e = made.has(r) ? undefined : await tree.lstat(r);
      if (e !== undefined && !e.isDirectory()) throw new InvalidArgumentError(`${context}: \`/${r}\` is not a directory in the container`);
      return copyUpMeta(e);
    };
    const dir = await openBeneath(tree.writable, parent, makeParent, tree.verify);
    try {
      const leaf = at(dir, posix.basename(rel));
      const existing = await lstat(leaf).catch(() => undefined);
      const wasDir = made.get(rel) === 'dir' || (existing?.isDirectory() ?? false) || (existing === undefined && merged?.isDirectory() === true);
      const { uid, gid } = owner(header.uid ?? 0, header.gid ?? 0);
      const mode = (header.mode ?? 0o644) & 0o7777;
      const mtime = header.mtime ?? new Date();
      if (header.type === 'directory') {
        if (existing !== undefined && !existing.isDirectory() && !isOverlayWhiteout(existing)) {
          throw new InvalidArgumentError(`${context}: cannot overwrite non-directory \`/${rel}\` with a directory`);
        }
        if (existing === undefined && merged !== undefined && !merged.isDirectory()) {
          throw new InvalidArgumentError(`${context}: cannot overwrite non-directory \`/${rel}\` with a directory`);
        }
        if (existing !== undefined && isOverlayWhiteout(existing)) {
          throw new InvalidArgumentError(`${context}: \`/${rel}\` was deleted in the container; copying a directory over a deleted one is not supported`);
        }
        if (existing === undefined) {
          await mkdir(leaf, { mode: 0o700 });
          await lchown(leaf, uid, gid).catch((e) => ignoreOwnEperm(e, { uid, gid }));
        }
        made.set(rel, 'dir');
        // Modes and times last: a read-only directory must still take its entries.
        dirs.push({ rel, mode, mtime });
        body.resume();
        return;
      }
      if (wasDir) throw new InvalidArgumentError(`${context}: cannot overwrite directory \`/${rel}\` with a non-directory`);
      if (existing !== undefined) await unlink(leaf);
      if (header.type === 'file' || header.type === 'contiguous-file') {
        const file = await open(leaf, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
        try {
          for await (const chunk of body) await file.write(chunk as Buffer);
          await file.chown(uid, gid).catch((e) => ignoreOwnEperm(e, { uid, gid }));
          await file.chmod(mode);
          await file.utimes(mtime, mtime);
        } finally {
          await file.close();
        }
      } else if (header.type === 'symlink') {
        body.resume();
        await symlink(header.linkname ?? '', leaf);
        await lchown(leaf, uid, gid).catch((e) => ignoreOwnEperm(e, { uid, gid }));
        await lutimes(leaf, mtime, mtime);
      } else if (header.type === 'link') {
        body.resume();
        const target = joinRelPath(dest, normalizeEntryPath(header.linkname ?? '', 'copy hard link target'));
        if (made.get(target) !== 'other') {
          throw new InvalidArgumentError(`${context}: hard link \`${header.name}\` must point to a file earlier in the same copy`);
        }
        const from = await openBeneath(tree.writable, relParentOf(target), undefined, tree.verify);
        try {
          await link(at(from, posix.basename(target)), leaf);
        } finally {
          await from.close();
        }
      } else {
        throw new InvalidArgumentError(`${context}: \`${header.name}\` is a ${header.type ?? 'special file'}; only files, directories and links are copied`);
      }
      made.set(rel, 'other');
    } finally {
      await dir.close();
    }
  };

  // The layers' extractor: the same reading of PAX records as an unpack.
  const { extract } = createExtract();
  try {
    input.on('error', (error) => extract.destroy(error));
    input.pipe(extract as unknown as Writable);
    for await (const entry of extract) await place(entry.header, entry);
    for (const d of dirs.reverse()) {
      const handle = await openBeneath(tree.writable, d.rel, undefined, tree.verify);
      try {
        await handle.chmod(d.mode);
        await utimes(at(handle, '.'), d.mtime, d.mtime);
      } finally {
        await handle.close();
      }
    }
  } catch (error) {
    throw copyError(context, 'write', path, error);
  }
}

/** Whether a directory can be opened (`/proc/<pid>/root` needs ptrace access to the process). */
export async function reachable(dir: string): Promise<boolean> {
  try {
    await (await open(dir, constants.O_RDONLY | constants.O_DIRECTORY)).close();
    return true;
  } catch {
    return false;
  }
}
