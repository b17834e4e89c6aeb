/**
 * {@link TarOutput}: an archive written with tar-stream to a temporary file
 * beside its destination, fsynced and renamed into place on commit, removed
 * on abort, so the destination never holds a partial archive.
 *
 * @module
 */

import { open, type FileHandle } from 'node:fs/promises';
import tarStream from 'tar-stream';
import { drained, removeQuietly, renameDurably, siblingTemp } from './util.js';

async function* once(data: Uint8Array): AsyncGenerator<Uint8Array> {
  yield data;
}

/** The modification time of every entry: archives of the same images are byte-identical. */
const EPOCH = new Date(0);

/** A tar archive being written; see the module. */
export class TarOutput {
  readonly #path: string;
  readonly #tmp: string;
  readonly #handle: FileHandle;
  readonly #pack: tarStream.Pack;
  readonly #written: Promise<void>;
  #bytes = 0;
  #failure: unknown;

  private constructor(path: string, tmp: string, handle: FileHandle, onBytes: ((bytes: number) => void) | undefined) {
    this.#path = path;
    this.#tmp = tmp;
    this.#handle = handle;
    this.#pack = tarStream.pack();
    this.#written = this.#pump(onBytes);
  }

  /** Copies the packed bytes to the file as they come. */
  async #pump(onBytes: ((bytes: number) => void) | undefined): Promise<void> {
    try {
      for await (const data of this.#pack) {
        const chunk = data as Buffer;
        await this.#handle.write(chunk);
        this.#bytes += chunk.byteLength;
        onBytes?.(this.#bytes);
      }
    } catch (err) {
      this.#failure ??= err;
      this.#pack.destroy();
    }
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
    await this.#entry({ name, type: 'directory', mode: 0o755 }, undefined);
  }

  /** Adds a file with the given content. */
  async file(name: string, content: Uint8Array | string): Promise<void> {
    const data = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
    await this.#entry({ name, type: 'file', mode: 0o644, size: data.byteLength }, once(data));
  }

  /**
   * Adds a file whose content streams from `source`, which must yield
   * exactly `size` bytes; a failure of `source` (a digest mismatch) fails
   * the entry.
   */
  async stream(name: string, size: number, source: AsyncIterable<Uint8Array>): Promise<void> {
    await this.#entry({ name, type: 'file', mode: 0o644, size }, source);
  }

  /** Finishes the archive and renames it into place. */
  async commit(): Promise<void> {
    this.#check();
    this.#pack.finalize();
    await this.#written;
    this.#check();
    await this.#handle.sync();
    await this.#handle.close();
    await renameDurably(this.#tmp, this.#path);
  }

  /** Drops the archive: nothing is left at the path or beside it. */
  async abort(): Promise<void> {
    this.#pack.destroy();
    await this.#written;
    await this.#handle.close().catch(() => {});
    await removeQuietly(this.#tmp);
  }

  async #entry(header: Partial<tarStream.Header> & { name: string }, source: AsyncIterable<Uint8Array> | undefined): Promise<void> {
    this.#check();
    let done!: Promise<void>;
    const sink = await new Promise<NodeJS.WritableStream & NodeJS.EventEmitter>((resolveSink) => {
      done = new Promise<void>((resolve, reject) => {
        const entry = this.#pack.entry(
          { uid: 0, gid: 0, mtime: EPOCH, ...header },
          (err?: Error | null) => (err ? reject(err) : resolve()),
        );
        resolveSink(entry as unknown as NodeJS.WritableStream & NodeJS.EventEmitter);
      });
    });
    // The entry's callback reports its failure; these keep it from also going unhandled.
    done.catch(() => {});
    sink.on('error', () => {});
    try {
      if (source !== undefined) {
        for await (const chunk of source) {
          if (!sink.write(chunk)) await drained(sink);
          this.#check();
        }
      }
      sink.end();
    } catch (err) {
      (sink as unknown as { destroy(err?: Error): void }).destroy(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
    await done;
    this.#check();
  }

  #check(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }
}
