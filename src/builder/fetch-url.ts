/**
 * `ADD <url>`: downloads a URL into a file of the build.
 *
 * @module
 */

import { utimes, writeFile } from 'node:fs/promises';
import { DocklessError, NotFoundError } from '../errors.js';
import { sha256Digest } from '../oci/digest.js';

/** Whether a source is an `http(s)://` URL. */
export function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/** Downloads `url` to `file` for `ADD <url>`; returns the file, its name in the URL and its digest. */
export async function fetchTo(url: string, file: string, context: string, signal: AbortSignal | undefined): Promise<{ url: string; path: string; name: string; digest: string }> {
  let response: Response;
  try {
    response = await fetch(url, signal !== undefined ? { signal } : {});
  } catch (cause) {
    throw new DocklessError(`${context}: fetch \`${url}\`: ${(cause as Error).message}`, { cause });
  }
  if (!response.ok) throw new NotFoundError(`${context}: fetch \`${url}\`: HTTP ${response.status}`);
  const data = Buffer.from(await response.arrayBuffer());
  await writeFile(file, data, { mode: 0o600 });
  const modified = response.headers.get('last-modified');
  if (modified !== null && !Number.isNaN(Date.parse(modified))) {
    const t = Date.parse(modified) / 1000;
    await utimes(file, t, t);
  }
  const name = decodeURIComponent(new URL(url).pathname.split('/').filter(Boolean).at(-1) ?? 'download');
  return { url, path: file, name, digest: sha256Digest(data) };
}
