/**
 * Attaching to a running container's stdio from any process: its output read
 * from its log as it is written, its stdin written into the FIFO the helper
 * reads (with `stdin: true`).
 *
 * @module
 */

import { constants as fsConstants, openSync } from 'node:fs';
import { Socket } from 'node:net';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { InvalidStateError } from '../errors.js';
import { isErrno } from '../util/index.js';
import { ContainerLogReader, type LogSource } from './logs.js';

/** Options of {@link Container.attach}. */
export interface AttachOptions {
  /** Also write to the container's stdin, when it keeps it open (`stdin: true`). @default true */
  stdin?: boolean;
  /** Detaches (as {@link Attachment.close}) when it aborts. */
  signal?: AbortSignal;
}

/**
 * A connection to a running container's stdio, from {@link Container.attach}.
 * `AsyncDisposable`: `await using a = await c.attach()` detaches at the end of
 * the scope; the container goes on.
 */
export class Attachment implements AsyncDisposable {
  /** What the container writes on stdout from now on (with a TTY, all its output); ends when it exits. */
  readonly stdout: Readable;
  /** What it writes on stderr from now on (nothing with a TTY); ends when it exits. */
  readonly stderr: Readable;
  /**
   * The container's stdin, when it was created with `stdin: true` (else null).
   * Ending it detaches from stdin only: the container's stdin stays open for
   * others (as `docker attach` without `--sig-proxy`). With a TTY, `\x03` is ^C.
   */
  readonly stdin: Writable | null;
  readonly #abort = new AbortController();
  readonly #pumping: Promise<void>;

  /** @internal Use {@link Container.attach}. */
  constructor(source: LogSource, start: number, stdinFifo: string | undefined, options: AttachOptions, context: string) {
    const out = new PassThrough();
    const err = new PassThrough();
    this.stdout = out;
    this.stderr = err;
    let stdin: Socket | null = null;
    if (stdinFifo !== undefined && options.stdin !== false) {
      let fd: number;
      try {
        // Non-blocking: with no reader (the helper is gone) the open fails rather than waiting for one.
        fd = openSync(stdinFifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
      } catch (cause) {
        if (isErrno(cause, 'ENXIO', 'ENOENT')) throw new InvalidStateError(`${context}: container is not running`, { cause });
        throw cause;
      }
      stdin = new Socket({ fd, readable: false, writable: true });
      stdin.on('error', () => undefined);
    }
    this.stdin = stdin;
    options.signal?.addEventListener('abort', () => void this.close(), { once: true });
    const reader = new ContainerLogReader(source, { follow: true, partial: true, signal: this.#abort.signal }, start);
    this.#pumping = (async () => {
      try {
        for await (const line of reader) (line.stream === 'stdout' ? out : err).write(line.text);
      } catch {
        // Detached: the streams end as they are.
      }
      out.end();
      err.end();
    })();
  }

  /** Detaches: the output streams end, stdin is closed; the container goes on. */
  async close(): Promise<void> {
    this.#abort.abort();
    this.stdin?.end();
    await this.#pumping;
  }

  /** {@link Attachment.close}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
