import { InvalidArgumentError } from '../errors.js';
import { LayerApplier, type ApplierOptions } from './apply.js';
import { TarFormatError, TarParser } from './tar-parse.js';

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
  readonly #parser: TarParser;
  readonly #context: string;
  #failure: unknown;

  constructor(root: string, options: ApplierOptions) {
    this.#context = options.context;
    this.#applier = new LayerApplier(root, options);
    this.#parser = new TarParser((header) => this.#applier.begin(header));
  }

  get entries(): number {
    return this.#applier.entries;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    this.#parse(() => this.#parser.write(chunk));
    const writer = this.#applier.drained();
    if (writer !== undefined) await writer;
  }

  async end(): Promise<number> {
    if (this.#failure !== undefined) throw this.#failure;
    this.#parse(() => this.#parser.end());
    await this.#applier.finish();
    return this.#applier.entries;
  }

  abort(): void {
    this.#failure ??= new InvalidArgumentError(`${this.#context}: aborted`);
    this.#applier.abort();
  }

  #parse(step: () => void): void {
    try {
      step();
    } catch (error) {
      this.#failure ??=
        error instanceof TarFormatError ? new InvalidArgumentError(`${this.#context}: malformed tar: ${error.message}`, { cause: error }) : error;
      throw this.#failure;
    }
  }
}
