import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lutimesSync,
  mkdirSync,
  openSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import type { Writable } from 'node:stream';
import { HelperError } from '../errors.js';
import { spawnHelper, type HelperProcess } from '../helper/index.js';
import { fsError, releaseBuffer } from '../util/index.js';
import { printable } from './entry-path.js';
import { utimesArg } from './file-time.js';

/** Owner, mode and time of a file or symlink the layer creates. */
export interface EntryMeta {
  /** Permission bits, special bits included. */
  mode: number;
  /** The owner to give it, or undefined to leave it the caller's. */
  owner: { uid: number; gid: number } | undefined;
  /** Modification time: whole seconds since the epoch, rounded towards minus infinity. */
  mtime: number;
  /** The nanoseconds to add to {@link EntryMeta.mtime}, 0 to 999999999. */
  mtimeNsec: number;
}

/** Receives the content of a regular file entry, chunk by chunk. */
export interface EntrySink {
  write(chunk: Uint8Array): void;
  end(): void;
}

/**
 * Creates a layer's entries under its root, in the order they are asked for.
 * Paths are relative to the root; the caller has checked them (no parent is
 * a symlink of the layer, the name is free). Calls may complete later than
 * they return: a failure surfaces from a later call, {@link TreeWriter.drained}
 * or {@link TreeWriter.close}, and only `close` says that everything is on
 * the filesystem.
 */
export interface TreeWriter {
  /** Makes directory `rel` with `mode`, which the process umask masks as mkdir(2)'s does. */
  mkdir(rel: string, mode: number, name: string): void;
  /** Creates regular file `rel` (which must not exist) of `size` bytes, given through the sink. */
  file(rel: string, meta: EntryMeta, size: number, name: string): EntrySink;
  symlink(rel: string, target: string, meta: EntryMeta, name: string): void;
  /** Makes `rel` a second name of `target` (both relative to the root). */
  link(rel: string, target: string, name: string): void;
  /** Removes `rel`, a directory with what it holds when `dir`. */
  remove(rel: string, dir: boolean): void;
  /** Undefined when the writer may take more now, else a promise that resolves when it may (and rejects with its failure). */
  drained(): Promise<void> | undefined;
  /** Waits until everything asked for is done; throws the first failure. */
  close(): Promise<void>;
  /** Gives up: what is not written yet is dropped. */
  abort(): void;
}

const O_CREATE_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * A {@link TreeWriter} that makes each call synchronously, on this thread: for
 * small layers (no process to start) and where the helper is missing.
 */
export class SyncTreeWriter implements TreeWriter {
  readonly #root: string;
  readonly #context: string;
  readonly #umask: number;
  #openFd: number | undefined;

  constructor(root: string, context: string, umask: number) {
    this.#root = root;
    this.#context = context;
    this.#umask = umask;
  }

  mkdir(rel: string, mode: number, name: string): void {
    this.#fs('mkdir', name, () => mkdirSync(`${this.#root}/${rel}`, mode));
  }

  file(rel: string, meta: EntryMeta, _size: number, name: string): EntrySink {
    const fd = this.#fs('open', name, () => openSync(`${this.#root}/${rel}`, O_CREATE_FILE, meta.mode & 0o777));
    this.#openFd = fd;
    return {
      write: (chunk) => {
        this.#fs('write', name, () => {
          for (let off = 0; off < chunk.byteLength; ) off += writeSync(fd, chunk, off, chunk.byteLength - off);
        });
      },
      end: () => {
        this.#fs('close', name, () => {
          if (meta.owner) fchownSync(fd, meta.owner.uid, meta.owner.gid);
          // Special bits are set after chown(2), which clears set-user-ID and set-group-ID.
          if ((meta.mode & 0o7000) !== 0 || (meta.mode & this.#umask & 0o777) !== 0) fchmodSync(fd, meta.mode);
          const mtime = utimesArg(meta.mtime, meta.mtimeNsec);
          futimesSync(fd, mtime, mtime);
          this.#openFd = undefined;
          closeSync(fd);
        });
      },
    };
  }

  symlink(rel: string, target: string, meta: EntryMeta, name: string): void {
    const abs = `${this.#root}/${rel}`;
    this.#fs('symlink', name, () => {
      symlinkSync(target, abs);
      if (meta.owner) lchownSync(abs, meta.owner.uid, meta.owner.gid);
      const mtime = utimesArg(meta.mtime, meta.mtimeNsec);
      lutimesSync(abs, mtime, mtime);
    });
  }

  link(rel: string, target: string, name: string): void {
    this.#fs('link', name, () => linkSync(`${this.#root}/${target}`, `${this.#root}/${rel}`));
  }

  remove(rel: string, dir: boolean): void {
    const abs = `${this.#root}/${rel}`;
    this.#fs(dir ? 'rm' : 'unlink', rel, () => (dir ? rmSync(abs, { recursive: true, force: true }) : unlinkSync(abs)));
  }

  drained(): undefined {
    return undefined;
  }

  async close(): Promise<void> {}

  abort(): void {
    if (this.#openFd === undefined) return;
    try {
      closeSync(this.#openFd);
    } catch {
      // already closed
    }
    this.#openFd = undefined;
  }

  #fs<T>(syscall: string, name: string, fn: () => T): T {
    try {
      return fn();
    } catch (cause) {
      throw fsError(cause, `${this.#context}: ${syscall} \`${printable(name)}\``, name);
    }
  }
}

/**
 * Bytes queued for the helper beyond which the caller waits. The helper
 * enlarges its pipe to 1 MiB (native/apply.c), which is the slack that keeps
 * it busy; more queued here only added buffers of ours: with 1 MiB (and a pool
 * as large), a pull of four layers peaked 5 MiB higher.
 */
const QUEUED_MAX = 256 << 10;
/**
 * Records and small contents are gathered into buffers of this size, each
 * sent to the helper in one write: a write per record and per small file
 * (two or three per entry) cost more in stream bookkeeping and garbage than
 * the copy of their bytes.
 */
const BATCH = 256 * 1024;
/** Sent batches kept for reuse once written: enough to cover {@link QUEUED_MAX}. */
const POOL = QUEUED_MAX / BATCH;

/**
 * A {@link TreeWriter} that streams its calls to the helper's `apply` op (see
 * native/apply.c), which makes them in its own process while this thread
 * decompresses and parses what comes next.
 */
export class HelperTreeWriter implements TreeWriter {
  readonly #context: string;
  readonly #umask: number;
  readonly #helper: HelperProcess;
  readonly #stdin: Writable;
  #failure: Error | undefined;
  #closed = false;
  /** The batch being filled, and how much of it is. */
  #batch: Buffer | undefined;
  #used = 0;
  /** Batches the helper's pipe has taken, to fill again. */
  readonly #free: Buffer[] = [];

  /**
   * `writeback`: start flushing the filesystem each time this many bytes of
   * content were written, in the background, so that a flush at the end waits
   * for the last stretch only.
   */
  constructor(root: string, options: { context: string; umask: number; helperPath?: string | undefined; writeback?: number | undefined }) {
    this.#context = options.context;
    this.#umask = options.umask;
    this.#helper = spawnHelper('apply', ['--root', root, ...(options.writeback !== undefined ? ['--writeback', String(options.writeback)] : [])], {
      stdio: ['pipe', 'ignore', 'pipe'],
      context: options.context,
      ...(options.helperPath !== undefined ? { helperPath: options.helperPath } : {}),
    });
    this.#stdin = this.#helper.child.stdin!;
    // A write after the helper failed: its status line says why, read at close.
    this.#stdin.on('error', () => {});
    void this.#helper.exit.then(() => {
      if (!this.#closed) this.#failure ??= this.#helperFailure();
    });
  }

  mkdir(rel: string, mode: number): void {
    this.#record(`d\0${rel}\0${(mode & ~this.#umask & 0o777).toString(8)}\0`);
  }

  file(rel: string, meta: EntryMeta, size: number, name: string): EntrySink {
    // Written field by field into the batch: a record built as a string first cost ~430 bytes of
    // garbage per file (its parts, then the flattened whole), the largest share of a pull's
    // allocations, and with it the young generation's collections and growth.
    if (this.#failure !== undefined) throw this.#failure;
    if (!this.#fits(rel)) {
      this.#record(`f\0${rel}\0${(meta.mode & 0o7777).toString(8)}\0${owner(meta)}\0${meta.mtime}\0${meta.mtimeNsec}\0${size}\0`);
    } else {
      const batch = this.#room();
      let at = this.#used;
      batch[at++] = 0x66; // f
      batch[at++] = 0;
      at += batch.write(rel, at);
      batch[at++] = 0;
      at = writeNumber(batch, at, meta.mode & 0o7777, 8);
      at = writeOwner(batch, at, meta);
      at = writeNumber(batch, at, meta.mtime, 10);
      at = writeNumber(batch, at, meta.mtimeNsec, 10);
      at = writeNumber(batch, at, size, 10);
      this.#used = at;
    }
    let left = size;
    return {
      write: (chunk) => {
        left -= chunk.byteLength;
        if (left < 0) throw new HelperError(`${this.#context}: entry \`${printable(name)}\` has more content than its size`, { op: 'apply' });
        this.#content(chunk);
      },
      end: () => {
        if (left !== 0) throw new HelperError(`${this.#context}: entry \`${printable(name)}\` has ${left} bytes less content than its size`, { op: 'apply' });
      },
    };
  }

  symlink(rel: string, target: string, meta: EntryMeta): void {
    this.#record(`s\0${rel}\0${target}\0${owner(meta)}\0${meta.mtime}\0${meta.mtimeNsec}\0`);
  }

  link(rel: string, target: string): void {
    this.#record(`h\0${rel}\0${target}\0`);
  }

  remove(rel: string): void {
    this.#record(`r\0${rel}\0`);
  }

  drained(): Promise<void> | undefined {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    // The caller asks between chunks of the tar: what this chunk gave goes to the helper now, not when a batch fills.
    this.#send();
    if (this.#stdin.writableLength < QUEUED_MAX) return undefined;
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        this.#stdin.off('drain', done);
        this.#stdin.off('close', closed);
        if (this.#failure !== undefined) reject(this.#failure);
        else resolve();
      };
      // The helper exited: its pipe closes, and no drain will come.
      const closed = (): void => {
        void this.#helper.exit.then(() => {
          this.#failure ??= this.#helperFailure() ?? new HelperError(`${this.#context}: the helper closed its input early`, { op: 'apply' });
          done();
        });
      };
      this.#stdin.on('drain', done);
      this.#stdin.on('close', closed);
    });
  }

  async close(): Promise<void> {
    this.#send();
    this.#closed = true;
    this.#stdin.end();
    await this.#helper.exit;
    const failure = this.#failure ?? this.#helperFailure();
    if (failure !== undefined) throw failure;
  }

  abort(): void {
    this.#closed = true;
    this.#batch = undefined;
    this.#used = 0;
    this.#stdin.destroy();
    this.#helper.child.kill('SIGKILL');
  }

  /**
   * Whether a record of `rel` and fixed fields (at most {@link RECORD_FIXED}
   * bytes) fits in the batch being filled, after sending it when it would not:
   * false only for a path too long for any batch.
   */
  #fits(rel: string): boolean {
    // At most 3 bytes of UTF-8 per UTF-16 unit.
    const bound = rel.length * 3 + RECORD_FIXED;
    if (bound > BATCH) return false;
    if (this.#batch !== undefined && bound > BATCH - this.#used) this.#send();
    return true;
  }

  #record(fields: string): void {
    if (this.#failure !== undefined) throw this.#failure;
    // At most 3 bytes of UTF-8 per UTF-16 unit: the exact length is counted only when that bound does not fit.
    let bytes = fields.length * 3;
    if (bytes > BATCH - this.#used) {
      bytes = Buffer.byteLength(fields);
      if (bytes > BATCH - this.#used) this.#send();
      if (bytes > BATCH) {
        this.#stdin.write(fields);
        return;
      }
    }
    this.#used += this.#room().write(fields, this.#used);
  }

  #content(chunk: Uint8Array): void {
    // Large content is copied too, never queued as it is: the caller may free or reuse the chunk's
    // buffer once this returns (unpackLayer frees gunzip's output buffers as they are consumed).
    let at = 0;
    while (at < chunk.byteLength) {
      const batch = this.#room();
      const n = Math.min(chunk.byteLength - at, BATCH - this.#used);
      batch.set(chunk.subarray(at, at + n), this.#used);
      this.#used += n;
      at += n;
      if (this.#used === BATCH) this.#send();
    }
  }

  /** The batch being filled, with room in it. */
  #room(): Buffer {
    if (this.#batch === undefined) {
      this.#batch = this.#free.pop() ?? Buffer.allocUnsafeSlow(BATCH);
      this.#used = 0;
    }
    return this.#batch;
  }

  /** Sends the batch being filled; it is reused once the pipe has taken it. */
  #send(): void {
    const batch = this.#batch;
    if (batch === undefined || this.#used === 0) return;
    const used = this.#used;
    this.#batch = undefined;
    this.#used = 0;
    this.#stdin.write(batch.subarray(0, used), (error) => {
      if (error == null && this.#free.length < POOL) this.#free.push(batch);
      // One more than the pool holds: freed now, not at a garbage collection (see releaseBuffer).
      else if (error == null) releaseBuffer(batch.buffer);
    });
  }

  /** The helper's failure as the error a filesystem call of this thread would have thrown. */
  #helperFailure(): Error | undefined {
    const failure = this.#helper.failure;
    if (failure === undefined) return undefined;
    if (!(failure instanceof HelperError) || failure.errnoCode === undefined) return failure;
    const cause = Object.assign(new Error(failure.message, { cause: failure }), { code: failure.errnoCode });
    const path = failure.path ?? '';
    return fsError(cause, `${this.#context}: ${failure.step ?? 'apply'} \`${printable(path)}\``, path);
  }
}

/**
 * Bytes a file record takes beside its path, at most: the type, seven NULs,
 * and six numbers of at most 24 characters each (a number that is not a safe
 * integer is written as `String` writes it, `-1.7976931348623157e+308` at most).
 */
const RECORD_FIXED = 160;

/**
 * Writes `value` in ASCII, as `value.toString(radix)` would, and a NUL at
 * `at`; returns the offset after them. Exported for its test.
 */
export function writeNumber(batch: Buffer, at: number, value: number, radix: 8 | 10): number {
  if (!Number.isSafeInteger(value)) {
    at += batch.write(value.toString(radix), at, 'latin1');
  } else {
    if (value < 0) {
      batch[at++] = 0x2d; // -
      value = -value;
    }
    let digits = 1;
    for (let rest = value; rest >= radix; rest = Math.floor(rest / radix)) digits++;
    for (let i = at + digits - 1; i >= at; i--) {
      const digit = value % radix;
      batch[i] = 0x30 + digit;
      value = (value - digit) / radix;
    }
    at += digits;
  }
  batch[at++] = 0;
  return at;
}

/** The fields `owner` makes, written as {@link writeNumber} does. */
function writeOwner(batch: Buffer, at: number, meta: EntryMeta): number {
  if (meta.owner === undefined) {
    batch[at++] = 0x2d;
    batch[at++] = 0;
    batch[at++] = 0x2d;
    batch[at++] = 0;
    return at;
  }
  at = writeNumber(batch, at, meta.owner.uid, 10);
  return writeNumber(batch, at, meta.owner.gid, 10);
}

function owner(meta: EntryMeta): string {
  return meta.owner ? `${meta.owner.uid}\0${meta.owner.gid}` : '-\0-';
}
