/**
 * {@link MergedView}: an image's root filesystem as overlayfs would show it,
 * read from its snapshot directories without mounting anything (nothing is
 * ever mounted in the caller's namespace).
 *
 * @module
 */

import type { Stats } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { readXattrs } from '../helper/index.js';
import { resolveInTree } from './resolve-path.js';
import { isOverlayWhiteout, OPAQUE_XATTR_VALUE, OVERLAY_USER_XATTR_PREFIX, OVERLAY_XATTR_PREFIX } from './whiteout.js';


/** One path of a {@link MergedView}. */
export interface MergedEntry {
  /** The stat of the top-most layer's file (not followed). */
  stats: Stats;
  /** The file on the host: in the top-most layer that has the path. */
  hostPath: string;
  /** For a directory, the layers (indices, top-most first) whose directories merge into it. */
  layers: number[];
}

/**
 * Reads a stack of overlayfs lower dirs (top-most first, as
 * `ImageStore.snapshot()` returns them) as one tree: a whiteout (character
 * device 0:0) hides a path of the layers below, an opaque directory
 * (`trusted.overlay.opaque=y`, `user.overlay.opaque=y`) hides the directories
 * below it, and a non-directory hides everything below it.
 *
 * Opacity is read through the native helper, and only for directories that
 * a lower layer also has, so most lookups cost `lstat`s only. Lookups are
 * cached: the view is of an immutable image.
 */
export class MergedView {
  readonly #layers: readonly string[];
  readonly #entries = new Map<string, Promise<MergedEntry | undefined>>();
  readonly #opaque = new Map<string, Promise<boolean>>();
  readonly #helperPath: string | undefined;

  /** A view of `layers` (host directories, top-most first). */
  constructor(layers: readonly string[], options: { helperPath?: string } = {}) {
    this.#layers = layers;
    this.#helperPath = options.helperPath;
  }

  /** The layers, top-most first. */
  get layers(): readonly string[] {
    return this.#layers;
  }

  /**
   * The entry at `rel` (root-relative, `/`-separated, no `.`/`..`; `''` is
   * the root), not following a final symlink; `undefined` when there is
   * none. Symlinks in the parents are not followed either: resolve first.
   */
  lstat(rel: string): Promise<MergedEntry | undefined> {
    const key = clean(rel);
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      entry = this.#lookup(key);
      this.#entries.set(key, entry);
    }
    return entry;
  }

  async #lookup(rel: string): Promise<MergedEntry | undefined> {
    let candidates: number[];
    if (rel === '') {
      candidates = this.#layers.map((_, i) => i);
    } else {
      const parent = await this.lstat(parentOf(rel));
      if (parent === undefined || !parent.stats.isDirectory()) return undefined;
      candidates = parent.layers;
    }
    const found: { index: number; stats: Stats }[] = [];
    for (const index of candidates) {
      const stats = await lstat(path.join(this.#layers[index]!, rel)).catch(() => undefined);
      if (stats === undefined) continue;
      if (isOverlayWhiteout(stats)) break;
      if (!stats.isDirectory()) {
        if (found.length === 0) found.push({ index, stats });
        break;
      }
      found.push({ index, stats });
    }
    if (found.length === 0) return undefined;
    const top = found[0]!;
    if (!top.stats.isDirectory()) return { stats: top.stats, hostPath: path.join(this.#layers[top.index]!, rel), layers: [] };
    // Only a directory with another below it can hide something by being opaque. A layer's
    // root is never opaque: no image tool writes `.wh..wh..opq` at the top of a layer.
    const layers: number[] = [];
    for (let i = 0; i < found.length; i++) {
      layers.push(found[i]!.index);
      if (rel !== '' && i + 1 < found.length && (await this.#isOpaque(found[i]!.index, rel))) break;
    }
    return { stats: top.stats, hostPath: path.join(this.#layers[top.index]!, rel), layers };
  }

  #isOpaque(index: number, rel: string): Promise<boolean> {
    const key = `${index}\0${rel}`;
    let result = this.#opaque.get(key);
    if (result === undefined) {
      result = readXattrs(this.#layers[index]!, [rel], {
        context: `read layer \`${this.#layers[index]}\``,
        ...(this.#helperPath !== undefined ? { helperPath: this.#helperPath } : {}),
      }).then((map) => {
        const attrs = map.get(rel);
        for (const prefix of [OVERLAY_XATTR_PREFIX, OVERLAY_USER_XATTR_PREFIX]) {
          const value = attrs?.get(`${prefix}opaque`);
          if (value !== undefined && Buffer.from(value).toString() === OPAQUE_XATTR_VALUE) return true;
        }
        return false;
      });
      this.#opaque.set(key, result);
    }
    return result;
  }

  /**
   * The names in the directory at `rel`, merged over its layers, without
   * whiteouts, sorted; `undefined` when `rel` is not a directory.
   */
  async readdir(rel: string): Promise<string[] | undefined> {
    const entry = await this.lstat(rel);
    if (entry === undefined || !entry.stats.isDirectory()) return undefined;
    const names = new Set<string>();
    for (const index of entry.layers) {
      for (const name of await readdir(path.join(this.#layers[index]!, rel))) names.add(name);
    }
    const visible: string[] = [];
    for (const name of names) {
      if ((await this.lstat(join(rel, name))) !== undefined) visible.push(name);
    }
    return visible.sort();
  }

  /**
   * Resolves `p` (absolute or root-relative) inside the view as the kernel
   * would with the view as its root: symlinks are followed (absolute ones
   * from the view's root, `..` never above it), the final one only when
   * `followLast`. Missing components are kept as they are.
   *
   * @returns the root-relative path, `''` for the root.
   * @throws {InvalidArgumentError} after 40 symlinks (a loop).
   */
  async resolve(p: string, options: { followLast?: boolean } = {}): Promise<string> {
    return resolveInTree(
      p,
      {
        isSymlink: async (rel) => (await this.lstat(rel))?.stats.isSymbolicLink(),
        readlink: async (rel) => readlink((await this.lstat(rel))!.hostPath),
      },
      options.followLast === undefined ? {} : { followLast: options.followLast },
    );
  }


  /** The content of the file at `p` (symlinks followed), or `undefined` when there is none. */
  async readFile(p: string): Promise<Buffer | undefined> {
    const rel = await this.resolve(p, { followLast: true });
    const entry = await this.lstat(rel);
    if (entry === undefined || !entry.stats.isFile()) return undefined;
    return readFile(entry.hostPath);
  }
}

/** `p` root-relative, normalised: no leading `/`, no `.`, `..` resolved lexically (never above the root). */
export function clean(p: string): string {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out.join('/');
}

/** The parent of a root-relative path (`''` for a top-level name). */
export function parentOf(rel: string): string {
  const slash = rel.lastIndexOf('/');
  return slash === -1 ? '' : rel.slice(0, slash);
}

/** Joins a root-relative directory and a name. */
export function join(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}
