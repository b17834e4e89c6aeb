import { UnsafeContentError } from '../errors.js';

/**
 * Normalises a layer tar entry name (or hard link target) to a path relative
 * to the layer root, without a leading or trailing `/`; `''` is the root.
 *
 * Leading `/` and `./` are dropped, as Docker and containerd do (`/etc/x` is
 * `etc/x` of the layer); `.` components and empty components vanish; `..`
 * pops the previous component lexically (the kernel never resolves it, so a
 * symlink earlier in the name cannot redirect it).
 *
 * @throws {@link UnsafeContentError} when `..` would climb above the root, or
 *   the name contains a NUL byte.
 *
 * @example
 * normalizeEntryPath('./usr/bin/'); // 'usr/bin'
 * normalizeEntryPath('/etc/passwd'); // 'etc/passwd'
 * normalizeEntryPath('a/../../evil'); // throws UnsafeContentError
 */
export function normalizeEntryPath(name: string, what = 'entry'): string {
  if (name.includes('\0')) {
    throw new UnsafeContentError(`${what} \`${printable(name)}\` contains a NUL byte`);
  }
  // The common case (`usr/lib/x`, no `.`/`..`/`//`) needs no rebuilding.
  if (!/(^|\/)\.{1,2}(\/|$)|\/\/|^\/|\/$/.test(name)) return name;
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) throw new UnsafeContentError(`${what} \`${printable(name)}\` climbs out of the layer root with \`..\``);
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out.join('/');
}

/** The name with control characters escaped, for error messages. */
export function printable(name: string): string {
  // eslint-disable-next-line no-control-regex
  return name.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
