/**
 * Reading extended attributes through the helper's `xattrs` op (Node has no
 * xattr API).
 *
 * @module
 */

import type { Readable } from 'node:stream';
import { spawnHelper } from './spawn.js';

/** The xattrs of each path that has any: path (as given) → attribute name → value. */
export type XattrMap = Map<string, Map<string, Uint8Array>>;

/** Options of {@link readXattrs}. */
export interface ReadXattrsOptions {
  /** Context put before an error message. @default `read xattrs under \`<root>\`` */
  context?: string;
  /** Path of the helper binary. @default the one `npm install` built */
  helperPath?: string;
}

/**
 * Reads every extended attribute of `paths` (relative to `root`, resolved
 * inside it, the last component not followed) in one helper run. Paths
 * without attributes are absent from the result.
 *
 * @throws {HelperError} when a path does not exist or cannot be read.
 * @example
 * ```ts
 * const xattrs = await readXattrs('/var/lib/x/upper', ['etc', 'bin/ping']);
 * xattrs.get('bin/ping')?.get('security.capability');
 * ```
 */
export async function readXattrs(root: string, paths: readonly string[], options: ReadXattrsOptions = {}): Promise<XattrMap> {
  const out: XattrMap = new Map();
  if (paths.length === 0) return out;
  const helper = spawnHelper('xattrs', ['--root', root], {
    stdio: ['pipe', 'pipe', 'pipe'],
    context: options.context ?? `read xattrs under \`${root}\``,
    ...(options.helperPath !== undefined ? { helperPath: options.helperPath } : {}),
  });
  helper.child.stdin?.on('error', () => {
    /* the helper may exit before reading all input; its status says why */
  });
  const input = Buffer.concat(paths.map((p) => Buffer.from(`${p}\0`)));
  helper.child.stdin?.end(input);
  const [stdout] = await Promise.all([collect(helper.child.stdout!), helper.exit]);
  if (helper.failure !== undefined) throw helper.failure;
  let pos = 0;
  const field = (): Buffer => {
    const nul = stdout.indexOf(0, pos);
    const value = stdout.subarray(pos, nul);
    pos = nul + 1;
    return value;
  };
  while (pos < stdout.length) {
    const path = field().toString();
    const name = field().toString();
    const value = Buffer.from(field().toString('latin1'), 'hex');
    let attrs = out.get(path);
    if (attrs === undefined) out.set(path, (attrs = new Map()));
    attrs.set(name, value);
  }
  return out;
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
