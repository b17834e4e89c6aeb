/**
 * A layer tar written while a build step fills its upper dir, instead of
 * walked and read back from it afterwards: the step's writes and the tar's
 * gzip then overlap, and the files' bytes are read once.
 *
 * @module
 */

import { type BigIntStats, readlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { InvalidStateError } from '../errors.js';
import { compareLayerPaths, type DiffOptions, encodeHeader, END_OF_ARCHIVE, layerEntryHeader, padding, type TarEntryHeader } from '../layer/index.js';

/** Blocks of tar queued ahead of the gzip before a writer waits. */
const HIGH_WATER_BLOCKS = 2;
/** Blocks kept for reuse once the gzip is done with them. */
const SPARE_BLOCKS = 3;
const READ_CHUNK = 1 << 20;

/** What an entry's header said, to compare with the directory as it ends up. */
interface Written {
  header: TarEntryHeader;
}

/**
 * The layer tar of an upper dir, given entry by entry, in {@link diffToTar}'s
 * order (depth first, names in byte order), by the code that writes each
 * entry, right after writing it; read {@link tar} meanwhile. Its bytes are
 * those `diffToTar` would make of the finished directory when
 * {@link matches} says so: an entry given out of order, or changed after it
 * was given, makes the stream unusable ({@link usable}), and the caller
 * diffs the directory instead. Entries carry no xattrs: a directory whose
 * files have some is not one this stream can stand for.
 */
export class LayerStream {
  readonly #root: string;
  readonly #epoch: number | undefined;
  readonly #mapOwner: DiffOptions['mapOwner'] | undefined;
  readonly #written = new Map<string, Written>();
  readonly #blockSize: number;
  #last: string | undefined;
  /** Full blocks, for the reader. */
  #blocks: Buffer[] = [];
  /** The block being filled, and how far. */
  #block: Buffer | undefined;
  #filled = 0;
  readonly #spare: Buffer[] = [];
  #ended = false;
  #failure: Error | undefined;
  /** Wakes the reader (more chunks, end or failure). */
  #wakeReader: (() => void) | undefined;
  /** Wakes writers waiting for the queue to drain. */
  #wakeWriters: (() => void)[] = [];

  /**
   * @param root the upper dir whose entries are given.
   * @param options.epoch clamp mtimes to this (seconds), as `diffToTar`'s `sourceDateEpoch`.
   * @param options.mapOwner the owner each entry gets in the layer, as `diffToTar`'s.
   * @param options.blockSize the size of the chunks {@link tar} yields (but its last): the gzip's member size, so that each is compressed as it is.
   */
  constructor(root: string, options: { epoch: number | undefined; mapOwner?: DiffOptions['mapOwner'] | undefined; blockSize: number }) {
    this.#root = root;
    this.#blockSize = options.blockSize;
    this.#epoch = options.epoch;
    this.#mapOwner = options.mapOwner;
  }

  /** Whether the entries given so far make a tar the finished directory may match. */
  get usable(): boolean {
    return this.#failure === undefined;
  }

  /** Gives up: the tar fails with `reason` (its reader sees it as the stream's error). Idempotent; nothing once {@link end}ed. */
  fail(reason: string): void {
    if (this.#failure !== undefined || this.#ended) return;
    this.#failure = new InvalidStateError(`layer stream: ${reason}`);
    this.#blocks = [];
    this.#block = undefined;
    this.#wake();
  }

  /** A directory, with the mtime it will have once the step is done. */
  directory(rel: string, stats: BigIntStats, mtime: number): void {
    const header = this.#header(rel, stats, 'directory', { mtimeSeconds: mtime });
    if (header !== undefined) this.#push([encodeHeader(header)]);
  }

  /** A regular file and its content. */
  file(rel: string, stats: BigIntStats, data: Buffer): void {
    const header = this.#header(rel, stats, 'file', {});
    if (header === undefined) return;
    if (data.length !== header.size) {
      this.fail(`\`${rel}\` has ${header.size} bytes, ${data.length} were written`);
      return;
    }
    this.#push([encodeHeader(header), data, padding(data.length)]);
  }

  /** A regular file whose content is read from `host` (a large one, copied without passing through memory). */
  async fileFrom(rel: string, stats: BigIntStats, host: string): Promise<void> {
    const header = this.#header(rel, stats, 'file', {});
    if (header === undefined) return;
    this.#push([encodeHeader(header)]);
    const handle = await open(host, 'r');
    try {
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, header.size));
      let done = 0;
      while (done < header.size && this.usable) {
        const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, header.size - done), done);
        if (bytesRead === 0) break;
        done += bytesRead;
        this.#push([buf.subarray(0, bytesRead)]);
        await this.drained();
      }
      if (done !== header.size) this.fail(`\`${rel}\` changed size while it was read`);
    } finally {
      await handle.close();
    }
    this.#push([padding(header.size)]);
  }

  /** A symbolic link to `target`. */
  symlink(rel: string, stats: BigIntStats, target: string): void {
    const header = this.#header(rel, stats, 'symlink', { linkname: target });
    if (header !== undefined) this.#push([encodeHeader(header)]);
  }

  /** Resolves once the tar queued ahead of its reader is below the high-water mark. */
  drained(): Promise<void> {
    if (this.#blocks.length < HIGH_WATER_BLOCKS || this.#failure !== undefined) return Promise.resolve();
    return new Promise((resolve) => this.#wakeWriters.push(resolve));
  }

  /** Takes back a block {@link tar} yielded, once its reader is done with it, to fill again. */
  recycle(block: Buffer): void {
    if (block.length === this.#blockSize && this.#spare.length < SPARE_BLOCKS) this.#spare.push(block);
  }

  /**
   * Whether the finished directory is what the tar says: `entries` (every
   * entry of it, as settled for its snapshot, sockets left out) are exactly
   * the entries given, each with the header it would get now, none linked
   * twice, and none with xattrs (`xattrs`: every path's, read from disk).
   */
  matches(entries: ReadonlyMap<string, BigIntStats>, xattrs: ReadonlyMap<string, ReadonlyMap<string, Uint8Array>>): boolean {
    if (!this.usable || entries.size !== this.#written.size) return false;
    for (const attrs of xattrs.values()) if (attrs.size > 0) return false;
    for (const [rel, stats] of entries) {
      const written = this.#written.get(rel);
      if (written === undefined) return false;
      const type = entryType(stats);
      if (type === undefined || type !== written.header.type || (type !== 'directory' && stats.nlink !== 1n)) return false;
      const now = layerEntryHeader(rel, stats, { epoch: this.#epoch, mapOwner: this.#mapOwner }).header;
      const was = written.header;
      if (now.mode !== was.mode || now.uid !== was.uid || now.gid !== was.gid || now.mtime !== was.mtime) return false;
      if (type === 'file' && Number(stats.size) !== was.size) return false;
      if (type === 'symlink' && readlinkSync(path.join(this.#root, rel)) !== was.linkname) return false;
    }
    return true;
  }

  /** Ends the tar (its end-of-archive blocks). */
  end(): void {
    if (this.#failure !== undefined || this.#ended) return;
    this.#push([END_OF_ARCHIVE]);
    if (this.#block !== undefined && this.#filled > 0) this.#blocks.push(this.#block.subarray(0, this.#filled));
    this.#block = undefined;
    this.#ended = true;
    this.#wake();
  }

  /** The tar, as given so far and until {@link end} or {@link fail}. */
  async *tar(): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.#failure !== undefined) throw this.#failure;
      const block = this.#blocks.shift();
      if (block !== undefined) {
        if (this.#blocks.length < HIGH_WATER_BLOCKS) this.#wakeWriters.splice(0).forEach((wake) => wake());
        yield block;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => (this.#wakeReader = resolve));
      this.#wakeReader = undefined;
    }
  }

  #header(rel: string, stats: BigIntStats, type: 'directory' | 'file' | 'symlink', extra: { mtimeSeconds?: number; linkname?: string }): TarEntryHeader | undefined {
    if (!this.usable) return undefined;
    if (this.#last !== undefined && compareLayerPaths(this.#last, rel) >= 0) {
      this.fail(`\`${rel}\` given after \`${this.#last}\``);
      return undefined;
    }
    if (entryType(stats) !== type || (type !== 'directory' && stats.nlink !== 1n)) {
      this.fail(`\`${rel}\` is not a ${type} linked once`);
      return undefined;
    }
    this.#last = rel;
    const { header } = layerEntryHeader(rel, stats, { epoch: this.#epoch, mapOwner: this.#mapOwner });
    if (extra.mtimeSeconds !== undefined) header.mtime = this.#epoch !== undefined && extra.mtimeSeconds > this.#epoch ? this.#epoch : extra.mtimeSeconds;
    const full: TarEntryHeader = { ...header, type, ...(type === 'file' ? { size: Number(stats.size) } : {}), ...(extra.linkname !== undefined ? { linkname: extra.linkname } : {}) };
    this.#written.set(rel, { header: full });
    return full;
  }

  /**
   * Copies `chunks` into blocks: the writers' buffers are free again at
   * once, and the tar's bytes pass through a few blocks used over and over,
   * not through a new buffer per file that the GC frees only later.
   */
  #push(chunks: Buffer[]): void {
    if (this.#failure !== undefined) return;
    let full = false;
    for (const chunk of chunks) {
      for (let at = 0; at < chunk.length; ) {
        this.#block ??= this.#spare.pop() ?? Buffer.allocUnsafe(this.#blockSize);
        const n = chunk.copy(this.#block, this.#filled, at);
        at += n;
        this.#filled += n;
        if (this.#filled === this.#blockSize) {
          this.#blocks.push(this.#block);
          this.#block = undefined;
          this.#filled = 0;
          full = true;
        }
      }
    }
    if (full) this.#wake();
  }

  #wake(): void {
    this.#wakeReader?.();
    if (this.#failure !== undefined) this.#wakeWriters.splice(0).forEach((wake) => wake());
  }
}

function entryType(stats: BigIntStats): TarEntryHeader['type'] | undefined {
  if (stats.isDirectory()) return 'directory';
  if (stats.isFile()) return 'file';
  if (stats.isSymbolicLink()) return 'symlink';
  return undefined;
}
