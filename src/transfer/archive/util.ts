/**
 * Small helpers shared by import and export: aborts, stream backpressure,
 * error wrapping, atomic output files.
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { AbortError, DigestMismatchError, DocklessError, InvalidArgumentError, IOError } from '../../errors.js';
import type { ContentReader } from '../../store/index.js';
import { fsError, fsyncDir } from '../../util/index.js';
export { drained } from '../../layer/index.js';

/** Throws an {@link AbortError} naming `context` when `signal` has aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, context: string): void {
  if (signal?.aborted) throw new AbortError(`${context}: aborted`, { cause: signal.reason });
}

export { isErrno } from '../../util/index.js';

/**
 * A dockless error for `err`: dockless errors pass through; a failure of the
 * tar parser (tar-stream's plain `Error`s) becomes an
 * {@link InvalidArgumentError} saying the archive is malformed; anything else
 * (I/O errors) is wrapped with `context`, keeping it as the cause.
 */
export function wrapArchiveError(err: unknown, context: string, path: string): Error {
  if (err instanceof DocklessError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (isTarParserError(err)) {
    return new InvalidArgumentError(`${context}: malformed or truncated tar: ${message.toLowerCase()}`, {
      cause: err,
      path,
    });
  }
  if (typeof (err as NodeJS.ErrnoException | undefined)?.code === 'string') return fsError(err, context, path);
  return new IOError(`${context}: ${message}`, { cause: err, path });
}

/** tar-stream reports a bad archive with a plain Error and one of these messages. */
export function isTarParserError(err: unknown): boolean {
  if (!(err instanceof Error) || (err as { code?: unknown }).code !== undefined) return false;
  return /^(?:unexpected end of data|invalid tar header|invalid header|header exceeds max size)/i.test(err.message);
}

/**
 * A name for a temporary sibling of `path`, hidden (leading dot) and unique,
 * so that it can be renamed onto `path` in one step.
 */
export function siblingTemp(path: string, what: string): string {
  return join(dirname(path), `.${basename(path)}.${what}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Renames `from` onto `to` and fsyncs their directory. */
export async function renameDurably(from: string, to: string): Promise<void> {
  await rename(from, to);
  await fsyncDir(dirname(to)).catch(() => {});
}

/** Removes a file or tree, ignoring a missing one. */
export async function removeQuietly(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true }).catch(() => {});
}

/** Counts the chunks flowing through an async iterable, calling `onBytes` with the running total. */
export async function* counted(
  source: AsyncIterable<Uint8Array>,
  onBytes: (bytes: number) => void,
): AsyncGenerator<Uint8Array> {
  let bytes = 0;
  for await (const chunk of source) {
    bytes += chunk.byteLength;
    onBytes(bytes);
    yield chunk;
  }
}

/**
 * What a failure to decompress or parse the stored blob `digest` stands for:
 * a {@link DigestMismatchError} with `failure` as its cause when the blob does
 * not match its digest (read again to its end, since corrupt bytes break
 * gunzip before the end where the digest is checked); else `failure`.
 */
export async function explainBlobFailure(store: ContentReader, digest: string, failure: unknown): Promise<unknown> {
  if (failure instanceof DigestMismatchError || failure instanceof AbortError) return failure;
  try {
    for await (const _ of await store.getBlob(digest)) {
      // The store's read stream checks the digest at its end.
    }
  } catch (err) {
    if (err instanceof DigestMismatchError) {
      return new DigestMismatchError(err.message, {
        expected: err.expected,
        ...(err.actual === undefined ? {} : { actual: err.actual }),
        cause: failure,
      });
    }
  }
  return failure;
}
