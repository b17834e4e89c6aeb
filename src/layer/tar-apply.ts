import createDebug from 'debug';
import { InvalidArgumentError } from '../errors.js';
import { LayerApplier, type ApplierOptions, type EntrySink } from './apply.js';
import { createExtract, type TarHeader } from './tar-extract.js';
import { drained } from './streams.js';

const debug = createDebug('dockless:layer');

/**
 * Where the uncompressed tar of one layer goes: parsed and applied to a
 * directory, on this thread ({@link TarApply}) or on a worker thread
 * (`WorkerTarApply`). The caller writes chunks in order, awaiting each, then
 * calls `end` once; after a rejection it calls `abort`.
 */
export interface TarSink {
  /** Entries seen so far (whiteouts and skipped entries included). */
  readonly entries: number;
  /**
   * Parses and applies one chunk; rejects with the first failure of the stream.
   * `owned`: the chunk's whole buffer is the caller's to give away (nothing else
   * reads or reuses it), so it may be moved to another thread rather than copied.
   */
  write(chunk: Uint8Array, owned?: boolean): Promise<void>;
  /** Ends the tar, applies what waits for the whole stream, and resolves with the number of entries. */
  end(): Promise<number>;
  /** Gives up: closes what is open, drops what is buffered. The target holds a partial layer. */
  abort(): void;
}

/**
 * Parses a layer tar and applies its entries with a {@link LayerApplier},
 * on the calling thread.
 */
export class TarApply implements TarSink {
  readonly #applier: LayerApplier;
  readonly #extract;
  readonly #extracted: Promise<void>;
  readonly #context: string;
  #failure: unknown;

  constructor(root: string, options: ApplierOptions) {
    this.#context = options.context;
    this.#applier = new LayerApplier(root, options);
    const { extract, binaryPax } = createExtract();
    if (!binaryPax) debug('tar-stream internals changed: binary xattr values may be altered');
    this.#extract = extract;
    this.#extracted = new Promise<void>((resolve) => {
      extract.on('entry', (entryHeader, stream, next) => {
        const header = entryHeader as unknown as TarHeader;
        if (this.#failure !== undefined) return;
        // Destroying the extractor destroys the entry stream with the same error, which is reported once, below.
        stream.on('error', () => {});
        let sink: EntrySink | undefined;
        try {
          sink = this.#applier.begin(header);
        } catch (error) {
          this.#fail(error);
          return;
        }
        stream.on('data', (data) => {
          if (sink === undefined || this.#failure !== undefined) return;
          try {
            sink.write(data as Uint8Array);
          } catch (error) {
            this.#fail(error);
          }
        });
        stream.on('end', () => {
          if (this.#failure !== undefined) return;
          try {
            sink?.end();
          } catch (error) {
            this.#fail(error);
            return;
          }
          next();
        });
        stream.resume();
      });
      extract.on('error', (error: Error) => {
        this.#failure ??= new InvalidArgumentError(`${this.#context}: malformed tar: ${error.message}`, { cause: error });
        resolve();
      });
      extract.on('finish', () => resolve());
      extract.on('close', () => resolve());
    });
  }

  get entries(): number {
    return this.#applier.entries;
  }

  /** The first failure of the stream, if any. */
  get failure(): unknown {
    return this.#failure;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    if (!this.#extract.write(chunk)) await drained(this.#extract);
    if (this.#failure !== undefined) throw this.#failure;
    const writer = this.#applier.drained();
    if (writer !== undefined) await writer;
  }

  async end(): Promise<number> {
    if (this.#failure !== undefined) throw this.#failure;
    this.#extract.end(null);
    await this.#extracted;
    if (this.#failure !== undefined) throw this.#failure;
    await this.#applier.finish();
    return this.#applier.entries;
  }

  /** Fails the stream with `error` (the first failure wins). */
  fail(error: unknown): void {
    this.#fail(error);
  }

  abort(): void {
    this.#failure ??= new InvalidArgumentError(`${this.#context}: aborted`);
    this.#applier.abort();
    this.#extract.destroy(null);
  }

  #fail(error: unknown): void {
    this.#failure ??= error;
    this.#extract.destroy(error instanceof Error ? error : new Error(String(error)));
  }
}
