import { chmodSync, lchownSync, lutimesSync, readFileSync, utimesSync } from 'node:fs';
import createDebug from 'debug';
import { InvalidArgumentError, UnsafeContentError } from '../errors.js';
import { locateHelper, runHelperOp, usernsArgs, type IdMap, type UsernsMaps } from '../helper/index.js';
import { normalizeEntryPath, printable } from './entry-path.js';
import { paxTime, utimesArg } from './file-time.js';
import { paxXattrs } from './pax.js';
import type { TarHeader } from './tar-extract.js';
import { OPAQUE_XATTR_VALUE, OVERLAY_USER_XATTR_PREFIX, OVERLAY_XATTR_PREFIX, opaqueXattrName, parseWhiteout } from './whiteout.js';
import { fsError } from '../util/index.js';
import { HelperTreeWriter, SyncTreeWriter, type EntryMeta, type EntrySink, type TreeWriter } from './tree-writer.js';

export type { EntrySink };

const debug = createDebug('dockless:layer');

/** Ownership, permissions and times of an entry, applied after its content. */
interface Meta {
  mode: number;
  uid: number;
  gid: number;
  /** Modification time: whole seconds since the epoch (towards minus infinity) and nanoseconds. */
  mtime: number;
  mtimeNsec: number;
}

type Node =
  /** `meta` is undefined for a directory the layer only implies (a parent of an entry). */
  | { kind: 'dir'; meta?: Meta; opaque?: boolean; xattrs?: Map<string, Buffer> }
  | { kind: 'file' | 'symlink'; xattrs?: Map<string, Buffer> }
  /** A device node or fifo: created by the helper after the stream, with its meta. */
  | { kind: 'special'; type: 'c' | 'b' | 'p'; major: number; minor: number; meta: Meta; xattrs?: Map<string, Buffer> };

const FILE_TYPE = new Set(['file', 'contiguous-file']);

/**
 * The node of every file and symlink without xattrs (nearly all of a layer's
 * entries): one shared object rather than one per entry, since the map keeps
 * them all until the layer is applied and nothing changes a file's node.
 */
const FILE_NODE: Node = Object.freeze({ kind: 'file' });
const SYMLINK_NODE: Node = Object.freeze({ kind: 'symlink' });

/** The process umask, read without changing it (process.umask() with no argument briefly sets it to 0). */
function readUmask(): number {
  try {
    const match = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (match) return parseInt(match[1]!, 8);
  } catch {
    // no procfs: assume the worst, so that every mode is set explicitly
  }
  return 0o777;
}

/** Whether the namespace `maps` hold id `id`. */
function mapped(maps: readonly IdMap[], id: number): boolean {
  return maps.some((m) => id >= m.containerId && id < m.containerId + m.size);
}

/** Options of {@link LayerApplier}. */
export interface ApplierOptions {
  /** Skip chown and device nodes; opaque xattrs in `user.overlay.*`. */
  rootless: boolean;
  /**
   * With `rootless`: give files the layer's owners after all, as ids of a user
   * namespace with these maps (the caller is its root), in one helper batch
   * applied as that namespace's root once everything else is written.
   */
  userns?: UsernsMaps | undefined;
  /** With `userns`: the maps the layer's owners are ids of, when not `userns` itself (see the unpacker's `owners`). */
  owners?: Pick<UsernsMaps, 'uidMap' | 'gidMap'> | undefined;
  helperPath?: string;
  /**
   * Who creates the files: `'helper'`, the native helper's `apply` op in a
   * process of its own, beside this thread's parsing; `'sync'`, this thread.
   * @default 'sync'
   */
  writer?: 'helper' | 'sync';
  /** With the `'helper'` writer: flush the filesystem in the background each time this many bytes were written. */
  writeback?: number | undefined;
  /** Put before error messages. */
  context: string;
}

/**
 * Applies the entries of one layer tar, in order, to an empty directory.
 *
 * Every path the layer creates is remembered, so that whether a parent is a
 * real directory or a symlink is known without asking the filesystem; the
 * target starts empty and nothing else writes to it, so this map is the truth.
 * Creation never follows a symlink: parents are checked in the map, files are
 * opened `O_CREAT|O_EXCL|O_NOFOLLOW`, and an existing entry is removed before
 * it is replaced.
 *
 * Entries are created by a {@link TreeWriter}: the helper's `apply` op for a
 * large layer, so that file creation (kernel time) runs in a process of its
 * own beside this thread's parsing, or synchronous calls on this thread: for
 * tens of thousands of small files the per-call cost of the thread pool
 * dominates, and each call is short.
 */
export class LayerApplier {
  /** Entries seen, including skipped ones and whiteouts. */
  entries = 0;
  readonly #root: string;
  readonly #options: ApplierOptions;
  readonly #nodes = new Map<string, Node>();
  /** Whiteouts: the path they delete → the entry name that asked for it. */
  readonly #whiteouts = new Map<string, string>();
  readonly #umask = readUmask();
  readonly #uid = process.geteuid?.() ?? 0;
  readonly #gid = process.getegid?.() ?? 0;
  /** With `userns`: the owner (and mode) of every entry that is not the namespace root's, by path. */
  readonly #owners = new Map<string, Meta & { symlink: boolean }>();
  /**
   * With the `'sync'` writer: files and symlinks whose time has digits below
   * the microsecond, which Node's utimes drops, by path; the helper sets them
   * once the stream ends.
   */
  readonly #fineTimes = new Map<string, Meta>();
  /** The last parent directory checked by {@link #ensureParents}; reset when anything is removed. */
  #lastParent: string | undefined;
  readonly #writer: TreeWriter;

  constructor(root: string, options: ApplierOptions) {
    this.#root = root;
    this.#options = options;
    this.#nodes.set('', { kind: 'dir' });
    this.#writer =
      options.writer === 'helper'
        ? new HelperTreeWriter(root, { context: options.context, umask: this.#umask, helperPath: options.helperPath, writeback: options.writeback })
        : new SyncTreeWriter(root, options.context, this.#umask);
  }

  /** Undefined when more entries may be applied now, else a promise that resolves when they may. */
  drained(): Promise<void> | undefined {
    return this.#writer.drained();
  }

  /**
   * Applies one entry's header; returns a sink for its content when it is a
   * regular file, else undefined (the content, if any, is to be discarded).
   *
   * @throws {@link UnsafeContentError} when the entry would write outside the root.
   */
  begin(header: TarHeader): EntrySink | undefined {
    this.entries++;
    const name = header.name;
    const rel = normalizeEntryPath(name);
    const type: string = header.type ?? 'unknown';
    const slash = rel.lastIndexOf('/');
    const base = rel.slice(slash + 1);

    const whiteout = rel === '' ? undefined : parseWhiteout(base);
    if (whiteout !== undefined) {
      const parent = slash === -1 ? '' : rel.slice(0, slash);
      this.#ensureParents(rel, name);
      if (whiteout.kind === 'meta') {
        debug('%s: skipping aufs metadata entry `%s`', this.#options.context, printable(name));
      } else if (whiteout.kind === 'opaque') {
        const dir = this.#nodes.get(parent);
        if (dir?.kind === 'dir') dir.opaque = true;
      } else {
        if (whiteout.name === '' || whiteout.name === '.' || whiteout.name === '..') {
          throw new UnsafeContentError(`${this.#options.context}: whiteout \`${printable(name)}\` names no file`, { path: name });
        }
        this.#whiteouts.set(parent === '' ? whiteout.name : `${parent}/${whiteout.name}`, name);
      }
      return undefined;
    }

    const meta = this.#meta(header);
    const xattrs = this.#xattrs(header, type);

    if (rel === '') {
      if (type !== 'directory') {
        throw new InvalidArgumentError(`${this.#options.context}: entry \`${printable(name)}\` replaces the layer root with a ${type}`, { path: name });
      }
      const root = this.#nodes.get('') as Extract<Node, { kind: 'dir' }>;
      root.meta = meta;
      if (xattrs) root.xattrs = xattrs;
      return undefined;
    }

    this.#ensureParents(rel, name);
    const previous = this.#nodes.get(rel);

    if (type === 'directory') {
      if (previous?.kind === 'dir') {
        previous.meta = meta;
        if (xattrs) previous.xattrs = xattrs;
        return undefined;
      }
      if (previous !== undefined) this.#remove(rel, previous);
      this.#writer.mkdir(rel, (meta.mode | 0o700) & 0o777, name);
      this.#nodes.set(rel, xattrs ? { kind: 'dir', meta, xattrs } : { kind: 'dir', meta });
      return undefined;
    }

    if (FILE_TYPE.has(type)) {
      if (previous !== undefined) this.#remove(rel, previous);
      const sink = this.#writer.file(rel, this.#entryMeta(meta), header.size ?? 0, name);
      this.#noteOwner(rel, meta, false);
      this.#noteFineTime(rel, meta);
      this.#nodes.set(rel, xattrs ? { kind: 'file', xattrs } : FILE_NODE);
      return sink;
    }

    if (type === 'symlink') {
      const target = header.linkname ?? '';
      if (target.includes('\0')) {
        throw new UnsafeContentError(`${this.#options.context}: symlink \`${printable(name)}\` has a target with a NUL byte`, { path: name });
      }
      if (previous !== undefined) this.#remove(rel, previous);
      this.#writer.symlink(rel, target, this.#entryMeta(meta), name);
      this.#nodes.set(rel, xattrs ? { kind: 'symlink', xattrs } : SYMLINK_NODE);
      this.#noteOwner(rel, meta, true);
      this.#noteFineTime(rel, meta);
      return undefined;
    }

    if (type === 'link') {
      const linkRel = normalizeEntryPath(header.linkname ?? '', `hard link \`${printable(name)}\` to`);
      const linked = this.#nodes.get(linkRel);
      this.#checkParents(linkRel, name, 'hard link target');
      if (linked === undefined || linkRel === '') {
        throw new InvalidArgumentError(
          `${this.#options.context}: hard link \`${printable(name)}\` points to \`${printable(header.linkname ?? '')}\`, which is not an earlier entry of the layer`,
          { path: name },
        );
      }
      if (linkRel === rel) return undefined;
      if (linked.kind === 'dir') {
        throw new InvalidArgumentError(`${this.#options.context}: hard link \`${printable(name)}\` points to the directory \`${printable(linkRel)}\``, { path: name });
      }
      if (previous !== undefined) this.#remove(rel, previous);
      if (linked.kind === 'special') {
        // The helper creates device nodes after the stream; a second node is as good as a second name.
        this.#nodes.set(rel, { ...linked });
        return undefined;
      }
      // link(2) never follows a symlink on Linux: a hard link to a symlink is a second name of the symlink.
      this.#writer.link(rel, linkRel, name);
      this.#nodes.set(rel, linked.kind === 'file' ? FILE_NODE : SYMLINK_NODE);
      return undefined;
    }

    if (type === 'character-device' || type === 'block-device' || type === 'fifo') {
      const t = type === 'fifo' ? 'p' : type === 'block-device' ? 'b' : 'c';
      if (this.#options.rootless && t !== 'p') {
        debug('%s: rootless: skipping device node `%s`', this.#options.context, printable(name));
        return undefined;
      }
      if (previous !== undefined) this.#remove(rel, previous);
      this.#nodes.set(rel, {
        kind: 'special',
        type: t,
        major: header.devmajor ?? 0,
        minor: header.devminor ?? 0,
        meta,
        ...(xattrs ? { xattrs } : {}),
      });
      this.#noteOwner(rel, meta, false);
      return undefined;
    }

    throw new InvalidArgumentError(`${this.#options.context}: entry \`${printable(name)}\` has an unsupported type (${String(header.type)})`, {
      path: name,
    });
  }

  /**
   * Applies what had to wait for the whole stream: device nodes, whiteouts,
   * xattrs and ownership of nodes in one helper `meta` batch, then the
   * metadata of device nodes and directories (directory mtimes last, since
   * creating their children changed them).
   */
  async finish(): Promise<void> {
    await this.#writer.close();
    const mknods: string[] = [];
    const chowns: string[] = [];
    const xattrs: string[] = [];
    const opaqueName = opaqueXattrName(this.#options.rootless);
    const opaqueHex = Buffer.from(OPAQUE_XATTR_VALUE).toString('hex');
    const addXattrs = (rel: string, map: Map<string, Buffer> | undefined): void => {
      if (map) for (const [key, value] of map) xattrs.push('xattr', rel || '.', key, value.toString('hex'));
    };

    for (const [path, entryName] of this.#whiteouts) {
      const node = this.#nodes.get(path);
      if (node?.kind === 'dir') {
        // `.wh.d` and a `d/` in the same layer: the lower `d` is replaced, i.e. this `d` is opaque.
        node.opaque = true;
        continue;
      }
      // The OCI spec: a whiteout only hides lower layers' paths, never what its own layer adds.
      if (node !== undefined) continue;
      if (!this.#parentsAreDirs(path)) {
        debug('%s: whiteout `%s` lies below a replaced directory; skipped', this.#options.context, printable(entryName));
        continue;
      }
      mknods.push('mknod', path, 'c', '0', '0', '0');
    }
    // One pass over every entry of the layer, collecting the few that need more: a for-of over the
    // map made an entry pair and an iterator result per entry and pass (MiBs of garbage on a large layer).
    const specials: Array<[string, Extract<Node, { kind: 'special' }>]> = [];
    const dirs: Array<[string, Extract<Node, { kind: 'dir' }>]> = [];
    this.#nodes.forEach((node, path) => {
      if (node.kind === 'special') {
        specials.push([path, node]);
        mknods.push('mknod', path, node.type, (node.meta.mode & 0o7777).toString(8), String(node.major), String(node.minor));
        if (this.#chownNeeded(node.meta)) chowns.push('chown', path, String(node.meta.uid), String(node.meta.gid));
      }
      if (node.kind === 'dir') {
        if (node.opaque) xattrs.push('xattr', path || '.', opaqueName, opaqueHex);
        if (node.meta !== undefined) dirs.push([path, node]);
      }
      addXattrs(path, node.xattrs);
    });

    const fields = [...mknods, ...chowns, ...xattrs];
    if (fields.length > 0) {
      debug('%s: helper meta batch: %d mknod, %d chown, %d xattr', this.#options.context, mknods.length / 6, chowns.length / 4, xattrs.length / 4);
      await runHelperOp('meta', ['--root', this.#root], {
        input: Buffer.from(`${fields.join('\0')}\0`),
        context: this.#options.context,
        ...(this.#options.helperPath !== undefined ? { helperPath: this.#options.helperPath } : {}),
      });
    }

    for (const [path, node] of specials) {
      this.#fs('chmod', path, () => {
        const abs = `${this.#root}/${path}`;
        chmodSync(abs, node.meta.mode & 0o7777);
        const mtime = utimesArg(node.meta.mtime, node.meta.mtimeNsec);
        lutimesSync(abs, mtime, mtime);
      });
    }
    const created = 0o777 & ~this.#umask;
    // Directories get their mode only now: a read-only one must stay writable while its children are created.
    for (const [path, node] of dirs) {
      const meta = node.meta!;
      this.#fs('chmod', path || '.', () => {
        const abs = path === '' ? this.#root : `${this.#root}/${path}`;
        const chown = this.#chownNeeded(meta);
        if (chown) lchownSync(abs, meta.uid, meta.gid);
        if (path === '' || chown || ((meta.mode | 0o700) & created) !== meta.mode) {
          chmodSync(abs, meta.mode);
        }
        const mtime = utimesArg(meta.mtime, meta.mtimeNsec);
        utimesSync(abs, mtime, mtime);
      });
    }
    await this.#applyFineTimes(specials, dirs);
    await this.#applyOwners();
  }

  /** With the `'sync'` writer: notes a file's or symlink's time that Node would set to the microsecond only. */
  #noteFineTime(rel: string, meta: Meta): void {
    if (this.#options.writer !== 'helper' && meta.mtimeNsec % 1000 !== 0) this.#fineTimes.set(rel, meta);
  }

  /**
   * Sets the times that have digits below the microsecond, which Node's
   * utimes dropped (libuv keeps microseconds), in one helper batch, as GNU
   * tar sets them; while the caller still owns every file (before
   * {@link #applyOwners}). Without a helper they stay to the microsecond.
   */
  async #applyFineTimes(specials: ReadonlyArray<[string, { meta: Meta }]>, dirs: ReadonlyArray<[string, { meta?: Meta }]>): Promise<void> {
    const fields: string[] = [];
    const add = (path: string, meta: Meta): void => {
      if (meta.mtimeNsec % 1000 !== 0) fields.push('utime', path || '.', String(meta.mtime), String(meta.mtimeNsec));
    };
    this.#fineTimes.forEach((meta, path) => add(path, meta));
    for (const [path, node] of specials) add(path, node.meta);
    for (const [path, node] of dirs) add(path, node.meta!);
    if (fields.length === 0) return;
    try {
      locateHelper(this.#options.helperPath);
    } catch (error) {
      debug('%s: no helper to set %d times below the microsecond (%s): left to the microsecond', this.#options.context, fields.length / 4, (error as Error).message);
      return;
    }
    debug('%s: helper meta batch: %d times below the microsecond', this.#options.context, fields.length / 4);
    await runHelperOp('meta', ['--root', this.#root], {
      input: Buffer.from(`${fields.join('\0')}\0`),
      context: this.#options.context,
      ...(this.#options.helperPath !== undefined ? { helperPath: this.#options.helperPath } : {}),
    });
  }

  /** With `userns`: notes that `rel` belongs to someone else than the namespace's root. */
  #noteOwner(rel: string, meta: Meta, symlink: boolean): void {
    const userns = this.#options.userns;
    if (userns === undefined) return;
    const owners = this.#options.owners;
    // An id either map leaves out becomes -1, which no map has: the file stays the caller's.
    const shift = (from: readonly IdMap[], to: readonly IdMap[], id: number): number => {
      const m = from.find((r) => id >= r.containerId && id < r.containerId + r.size);
      const host = m === undefined ? undefined : m.hostId + (id - m.containerId);
      const n = host === undefined ? undefined : to.find((r) => host >= r.hostId && host < r.hostId + r.size);
      return n === undefined ? -1 : n.containerId + (host! - n.hostId);
    };
    const uid = owners === undefined ? meta.uid : shift(owners.uidMap, userns.uidMap, meta.uid);
    const gid = owners === undefined ? meta.gid : shift(owners.gidMap, userns.gidMap, meta.gid);
    if (uid === 0 && gid === 0) this.#owners.delete(rel);
    else this.#owners.set(rel, { ...meta, uid, gid, symlink });
  }

  /**
   * With `userns`: chowns what belongs to other ids than root's, as root of
   * the namespace, last: once a file is a subordinate id's, the caller may no
   * longer change it. chown(2) clears a file's set-user-ID and set-group-ID
   * bits, so they are set again after it.
   */
  async #applyOwners(): Promise<void> {
    const userns = this.#options.userns;
    if (userns === undefined) return;
    this.#nodes.forEach((node, path) => {
      if (node.kind === 'dir' && node.meta !== undefined) this.#noteOwner(path, node.meta, false);
    });
    const fields: string[] = [];
    let skipped = 0;
    for (const [path, meta] of this.#owners) {
      if (!mapped(userns.uidMap, meta.uid) || !mapped(userns.gidMap, meta.gid)) {
        // As podman's ignore_chown_errors: the file stays root's rather than failing the whole image.
        skipped++;
        debug('%s: `%s`: owner %d:%d is not mapped in the user namespace; left to root', this.#options.context, printable(path), meta.uid, meta.gid);
        continue;
      }
      fields.push('chown', path || '.', String(meta.uid), String(meta.gid));
      if (!meta.symlink && (meta.mode & 0o6000) !== 0) fields.push('chmod', path || '.', (meta.mode & 0o7777).toString(8));
    }
    if (fields.length === 0) return;
    debug('%s: helper meta batch in the user namespace: %d owners (%d unmapped, left to root)', this.#options.context, this.#owners.size - skipped, skipped);
    await runHelperOp('meta', ['--root', this.#root, ...usernsArgs(userns)], {
      input: Buffer.from(`${fields.join('\0')}\0`),
      context: this.#options.context,
      ...(this.#options.helperPath !== undefined ? { helperPath: this.#options.helperPath } : {}),
    });
  }

  /** Closes a file left open by a failed stream, ends the helper that writes them. */
  abort(): void {
    this.#writer.abort();
  }

  #entryMeta(meta: Meta): EntryMeta {
    return { mode: meta.mode, owner: this.#chownNeeded(meta) ? { uid: meta.uid, gid: meta.gid } : undefined, mtime: meta.mtime, mtimeNsec: meta.mtimeNsec };
  }

  #meta(header: TarHeader): Meta {
    const pax = header.pax;
    // Whole seconds (the parser's Date of the header's field); NaN, an unreadable field, is taken as 0.
    let mtime = Math.floor((header.mtime?.getTime() ?? 0) / 1000) || 0;
    let mtimeNsec = 0;
    let uid = header.uid ?? 0;
    let gid = header.gid ?? 0;
    if (pax) {
      // tar-stream applies path, linkpath and size from PAX, but not these.
      const time = pax['mtime'] === undefined ? undefined : paxTime(pax['mtime']);
      if (time !== undefined) ({ sec: mtime, nsec: mtimeNsec } = time);
      if (pax['uid'] !== undefined && /^\d+$/.test(pax['uid'])) uid = Number(pax['uid']);
      if (pax['gid'] !== undefined && /^\d+$/.test(pax['gid'])) gid = Number(pax['gid']);
    }
    return { mode: (header.mode ?? 0o644) & 0o7777, uid, gid, mtime, mtimeNsec };
  }

  #xattrs(header: TarHeader, type: string): Map<string, Buffer> | undefined {
    if (!header.pax) return undefined;
    const all = paxXattrs(header.pax);
    if (all.size === 0) return undefined;
    const kept = new Map<string, Buffer>();
    for (const [name, value] of all) {
      if (name.includes('\0') || name === '') {
        throw new UnsafeContentError(`${this.#options.context}: entry \`${printable(header.name)}\` has an xattr name with a NUL byte`, { path: header.name });
      }
      if (name.startsWith(OVERLAY_XATTR_PREFIX) || name.startsWith(OVERLAY_USER_XATTR_PREFIX)) {
        // overlayfs reads these from lower dirs (redirects, metacopy, opaque): only we may write them.
        debug('%s: dropping overlay xattr %s of `%s`', this.#options.context, name, printable(header.name));
        continue;
      }
      if (this.#options.rootless && !name.startsWith('user.')) {
        debug('%s: rootless: skipping xattr %s of `%s`', this.#options.context, name, printable(header.name));
        continue;
      }
      if (type === 'symlink' && name.startsWith('user.')) {
        // The kernel refuses user.* xattrs on symlinks (EPERM).
        debug('%s: skipping xattr %s of symlink `%s`', this.#options.context, name, printable(header.name));
        continue;
      }
      kept.set(name, value);
    }
    return kept.size > 0 ? kept : undefined;
  }

  #chownNeeded(meta: Meta): boolean {
    return !this.#options.rootless && (meta.uid !== this.#uid || meta.gid !== this.#gid);
  }

  /** Makes sure every parent of `rel` is a directory of the layer, creating missing ones; never goes through a symlink. */
  #ensureParents(rel: string, name: string): void {
    const slash = rel.lastIndexOf('/');
    if (slash === -1) return;
    const parent = rel.slice(0, slash);
    if (parent === this.#lastParent) return;
    let i = -1;
    while ((i = rel.indexOf('/', i + 1)) !== -1) {
      const dir = rel.slice(0, i);
      const node = this.#nodes.get(dir);
      if (node === undefined) {
        this.#writer.mkdir(dir, 0o755, name);
        this.#nodes.set(dir, { kind: 'dir' });
      } else if (node.kind !== 'dir') {
        this.#notADir(dir, node, name, 'entry');
      }
    }
    this.#lastParent = parent;
  }

  /** Like {@link #ensureParents} but creates nothing: for hard link targets. */
  #checkParents(rel: string, name: string, what: string): void {
    let i = -1;
    while ((i = rel.indexOf('/', i + 1)) !== -1) {
      const dir = rel.slice(0, i);
      const node = this.#nodes.get(dir);
      if (node !== undefined && node.kind !== 'dir') this.#notADir(dir, node, name, what);
    }
  }

  #parentsAreDirs(rel: string): boolean {
    let i = -1;
    while ((i = rel.indexOf('/', i + 1)) !== -1) {
      if (this.#nodes.get(rel.slice(0, i))?.kind !== 'dir') return false;
    }
    return true;
  }

  #notADir(dir: string, node: Node, name: string, what: string): never {
    if (node.kind === 'symlink') {
      throw new UnsafeContentError(
        `${this.#options.context}: ${what} \`${printable(name)}\` would be written through the symlink \`${printable(dir)}\``,
        { path: name },
      );
    }
    throw new InvalidArgumentError(`${this.#options.context}: ${what} \`${printable(name)}\` lies below \`${printable(dir)}\`, which is not a directory`, {
      path: name,
    });
  }

  /** Removes an earlier entry that a later one replaces (tar semantics: the last entry of a name wins). */
  #remove(rel: string, node: Node): void {
    this.#lastParent = undefined;
    if (node.kind === 'dir') {
      this.#writer.remove(rel, true);
      const prefix = `${rel}/`;
      for (const key of this.#nodes.keys()) if (key.startsWith(prefix)) this.#nodes.delete(key);
      for (const key of this.#whiteouts.keys()) if (key.startsWith(prefix)) this.#whiteouts.delete(key);
      for (const key of this.#owners.keys()) if (key.startsWith(prefix)) this.#owners.delete(key);
      for (const key of this.#fineTimes.keys()) if (key.startsWith(prefix)) this.#fineTimes.delete(key);
    } else if (node.kind !== 'special') {
      this.#writer.remove(rel, false);
    }
    this.#nodes.delete(rel);
    this.#owners.delete(rel);
    this.#fineTimes.delete(rel);
  }

  /** Runs a filesystem call, turning its error into a dockless error naming the entry. */
  #fs<T>(syscall: string, name: string, fn: () => T): T {
    try {
      return fn();
    } catch (cause) {
      throw fsError(cause, `${this.#options.context}: ${syscall} \`${printable(name)}\``, name);
    }
  }
}
