/**
 * `ADD <url>`: downloads a URL into a file of the build, streaming it to
 * disk (a download may be larger than the memory one would give it).
 *
 * @module
 */

import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { utimes } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AbortError, InvalidArgumentError, NotFoundError, PermissionError, UnavailableError } from '../errors.js';
import type { HttpResponse } from '../transfer/index.js';
import { contextual } from './error-context.js';

/** Whether a source is an `http(s)://` URL. */
export function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/** A file {@link fetchTo} downloaded. */
export interface FetchedFile {
  /** The URL, as given. */
  url: string;
  /** Where it was written. */
  path: string;
  /** Its name: the last segment of the URL's path. */
  name: string;
  /** The SHA-256 digest of its bytes. */
  digest: string;
}

/**
 * Downloads `url` to `file` (mode 0600), hashing it as it streams; the
 * file's mtime is the response's `Last-Modified` when it has one.
 *
 * @throws {UnavailableError} when the server cannot be reached, the connection fails midway, or it answers 5xx or 429.
 * @throws {NotFoundError} when it answers 404.
 * @throws {PermissionError} when it answers 401 or 403.
 * @throws {InvalidArgumentError} for another answer than 2xx, or a malformed URL.
 * @throws {AbortError} when `signal` aborts.
 */
export async function fetchTo(url: string, file: string, context: string, signal: AbortSignal | undefined): Promise<FetchedFile> {
  const where = `${context}: fetch \`${url}\``;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw contextual(new InvalidArgumentError(`${where}: not a URL`, { cause }));
  }
  let response: HttpResponse;
  try {
    // http and tls load with the first ADD of a URL, not with the package.
    const { httpRequest } = await import('../transfer/index.js');
    response = await httpRequest({ method: 'GET', url: parsed, signal });
  } catch (cause) {
    throw contextual(transportError(cause, where, parsed));
  }
  if (response.status < 200 || response.status > 299) {
    response.body.resume();
    throw contextual(statusError(response.status, where, parsed));
  }
  const hash = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(response.body, tap, createWriteStream(file, { mode: 0o600 }), signal !== undefined ? { signal } : {});
  } catch (cause) {
    // The file's own errors (ENOSPC, EACCES) carry a path; the network's do not.
    if ((cause as { path?: unknown }).path !== undefined) throw cause;
    throw contextual(transportError(cause, where, parsed));
  }
  const modified = response.headers['last-modified'];
  if (modified !== undefined && !Number.isNaN(Date.parse(modified))) {
    const t = Date.parse(modified) / 1000;
    await utimes(file, t, t);
  }
  const name = decodeURIComponent(parsed.pathname.split('/').filter(Boolean).at(-1) ?? 'download');
  return { url, path: file, name, digest: `sha256:${hash.digest('hex')}` };
}

function transportError(cause: unknown, where: string, url: URL): Error {
  if (cause instanceof AbortError) return cause;
  const code = (cause as { code?: unknown } | null)?.code;
  if (code === 'ABORT_ERR') return new AbortError(`${where}: aborted`, { cause });
  const detail = cause instanceof Error && cause.message !== '' ? cause.message : String(code ?? cause);
  return new UnavailableError(`${where}: ${detail}`, { cause, registry: url.host });
}

function statusError(status: number, where: string, url: URL): Error {
  const message = `${where}: HTTP ${status}`;
  if (status === 404) return new NotFoundError(message);
  if (status === 401 || status === 403) return new PermissionError(message);
  if (status >= 500 || status === 429) return new UnavailableError(message, { registry: url.host, status });
  return new InvalidArgumentError(message);
}
