/**
 * {@link TarOutput}: an archive written to a temporary file beside its
 * destination, fsynced and renamed into place on commit, removed on abort,
 * so the destination never holds a partial archive. Headers are the layer
 * code's ({@link encodeHeader}): one tar writer for layers and archives, and
 * archives of the same images are byte-identical.
 *
 * @module
 */

import { open, type FileHandle } from 'node:fs/promises';
import { InvalidArgumentError } from '../../errors.js';
import { END_OF_ARCHIVE, encodeHeader, padding, type TarEntryType } from '../../layer/index.js';
import { removeQuietly, renameDurably, siblingTemp } from './util.js';

async function* once(data: Uint8Array): AsyncGenerator<Uint8Array> {
  yield data;
}

/** A tar archive being written; see the module. */
export class TarOutput {
  readonly #path: string;
  readonly #tmp: string;
  readonly #handle: FileHandle;
  readonly #onBytes: ((bytes: number) => void) | undefined;
  #bytes = 0;
  #failure: unknown;

  private constructor(path: string, tmp: string, handle: FileHandle, onBytes: ((bytes: number) => void) | undefined) {
    this.#path = path;
    this.#tmp = tmp;
    this.#handle = handle;
    this.#onBytes = onBytes;
  }

  /**
   * Starts an archive that {@link TarOutput.commit} will put at `path`.
   *
   * @param onBytes called with the bytes written so far.
   */
  static async create(path: string, onBytes?: (bytes: number) => void): Promise<TarOutput> {
    const tmp = siblingTemp(path, 'tmp');
    const handle = await open(tmp, 'wx', 0o644);
    return new TarOutput(path, tmp, handle, onBytes);
  }

  /** The bytes written so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Adds a directory entry (`name/`). */
  async directory(name: string): Promise<void> {
    await this.#entry(name, 'directory', 0o755, 0, undefined);
  }

  /** Adds a file with the given content. */
  async file(name: string, content: Uint8Array | string): Promise<void> {
    const data = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
    await this.#entry(name, 'file', 0o644, data.byteLength, once(data));
  }

  /**
   * Adds a file whose content streams from `source`, which must yield
   * exactly `size` bytes; a failure of `source` (a digest mismatch) fails
   * the entry.
   *
   * @throws {InvalidArgumentError} when `source` ends after more or fewer than `size` bytes.
   */
  async stream(name: string, size: number, source: AsyncIterable<Uint8Array>): Promise<void> {
    await this.#entry(name, 'file', 0o644, size, source);
  }

  /** Finishes the archive and renames it into place. */
  async commit(): Promise<void> {
    this.#check();
    await this.#write(END_OF_ARCHIVE);
    await this.#handle.sync();
    await this.#handle.close();
    await renameDurably(this.#tmp, this.#path);
  }

  /** Drops the archive: nothing is left at the path or beside it. */
  async abort(): Promise<void> {
    this.#failure ??= new InvalidArgumentError('tar archive: aborted');
    await this.#handle.close().catch(() => {});
    await removeQuietly(this.#tmp);
  }

  async #entry(
    name: string,
    type: TarEntryType,
    mode: number,
    size: number,
    source: AsyncIterable<Uint8Array> | undefined,
  ): Promise<void> {
    this.#check();
    try {
      await this.#write(encodeHeader({ name, type, mode, uid: 0, gid: 0, size, mtime: 0 }));
      let written = 0;
      if (source !== undefined) {
        // Past `size` nothing more is written, but the source is read to its end: a verifying source
        // reports its digest mismatch there, which explains the size.
        for await (const chunk of source) {
          const room = size - written;
          written += chunk.byteLength;
          if (room > 0) await this.#write(chunk.byteLength <= room ? chunk : chunk.subarray(0, room));
        }
      }
      if (written !== size) throw new InvalidArgumentError(`tar entry ${name}: ${written} bytes, ${size} announced`);
      await this.#write(padding(size));
    } catch (err) {
      this.#failure ??= err;
      throw err;
    }
  }

  async #write(data: Uint8Array): Promise<void> {
    if (data.byteLength === 0) return;
    await this.#handle.write(data);
    this.#bytes += data.byteLength;
    this.#onBytes?.(this.#bytes);
  }

  #check(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }
}
