/**
 * What every command shares: the store and runtime (opened on first use, so
 * `dockless version` opens nothing), the output streams, and the exit-code
 * error that a command throws to end with a code of its own.
 *
 * @module
 */
import { join } from 'node:path';
import { ImageStore, Runtime } from '../index.js';

/** Global options: where dockless keeps its data. */
export interface GlobalOptions {
  /** One directory holding `store/`, `data/` and `state/` (else `$DOCKLESS_ROOT`, else the library's defaults). */
  root?: string;
  /** Print stack traces and debug output. */
  debug?: boolean;
}

/** The store, runtime and streams a command uses. */
export class CliContext {
  readonly #root: string | undefined;
  #store: Promise<ImageStore> | undefined;
  #runtime: Promise<Runtime> | undefined;
  /** Where results go. */
  readonly out: NodeJS.WriteStream;
  /** Where progress and errors go. */
  readonly err: NodeJS.WriteStream;

  /** A context for `options`, writing to the process's stdout and stderr unless told otherwise. */
  constructor(options: GlobalOptions, out: NodeJS.WriteStream = process.stdout, err: NodeJS.WriteStream = process.stderr) {
    this.#root = options.root ?? process.env.DOCKLESS_ROOT;
    this.out = out;
    this.err = err;
  }

  /** The image store, opened once. */
  store(): Promise<ImageStore> {
    this.#store ??= ImageStore.open(this.#root !== undefined ? { root: join(this.#root, 'store') } : {});
    return this.#store;
  }

  /** The runtime over the store, made once. */
  runtime(): Promise<Runtime> {
    this.#runtime ??= this.store().then(
      // One command, then exit: what is left to delete is not ours to wait for.
      (store) => new Runtime({ store, detachRemoval: true, ...(this.#root !== undefined ? { root: join(this.#root, 'data'), stateDir: join(this.#root, 'state') } : {}) }),
    );
    return this.#runtime;
  }

  /**
   * Waits for the store's deferred flush of what this command unpacked (at once when it
   * unpacked nothing), so that a container the command leaves behind still finds its
   * image's files after a reboot. A failed flush is a warning, not the command's failure:
   * the snapshots stay usable, and a reboot makes them unpacked again.
   */
  async flushStore(): Promise<void> {
    if (this.#store === undefined) return;
    try {
      await (await this.#store).flush();
    } catch (error) {
      this.err.write(`dockless: warning: ${(error as Error).message}\n`);
    }
  }

  /** The global options that select this context's data (`--root`), for another dockless process to use the same. */
  globalArgs(): string[] {
    return this.#root !== undefined ? ['--root', this.#root] : [];
  }

  /** Writes one line of results. */
  print(text: string): void {
    this.out.write(text.endsWith('\n') ? text : `${text}\n`);
  }
}

/** Thrown by a command to end the process with `code` (after printing `message`, when given). */
export class ExitCode extends Error {
  /** The process's exit code. */
  readonly code: number;
  /**
   * End the process even while something still holds it: a container this
   * command detached from (the detach keys) keeps its helper's handles open here.
   */
  readonly detached: boolean;
  /** Creates it; `message` is printed on stderr when not empty. */
  constructor(code: number, message = '', options: { detached?: boolean } = {}) {
    super(message);
    this.name = 'ExitCode';
    this.code = code;
    this.detached = options.detached === true;
  }
}
