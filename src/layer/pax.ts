/**
 * PAX extended headers, byte-exact. tar-stream decodes every PAX value as
 * UTF-8, which corrupts binary xattr values such as `security.capability`;
 * these helpers keep xattr values as bytes (in a `latin1` string, one code
 * unit per byte) and decode everything else as UTF-8.
 *
 * @module
 */

/** The PAX key prefix of an xattr as GNU tar, Go's archive/tar and BuildKit write it: `SCHILY.xattr.<name>=<raw bytes>`. */
export const PAX_XATTR_PREFIX = 'SCHILY.xattr.';

/** The PAX key prefix libarchive (bsdtar) uses: `LIBARCHIVE.xattr.<url-encoded name>=<base64>`. */
export const PAX_LIBARCHIVE_XATTR_PREFIX = 'LIBARCHIVE.xattr.';

const SPACE = 0x20;
const EQUALS = 0x3d;
const ZERO = 0x30;
const NINE = 0x39;

/**
 * Decodes the records of a PAX header block (`"<len> <key>=<value>\n"` each).
 * Values of `SCHILY.xattr.*` keys are returned as `latin1` strings (one char
 * per byte, see {@link paxXattrs}); all others as UTF-8. A malformed record
 * ends the decoding, as tar-stream and GNU tar do.
 */
export function decodePax(buf: Uint8Array): Record<string, string> {
  const bytes = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const result: Record<string, string> = {};
  let pos = 0;
  while (pos < bytes.length) {
    let len = 0;
    let i = pos;
    while (i < bytes.length && bytes[i]! >= ZERO && bytes[i]! <= NINE) len = len * 10 + (bytes[i++]! - ZERO);
    if (i === pos || bytes[i] !== SPACE || len <= i - pos + 1 || pos + len > bytes.length) break;
    const end = pos + len - 1; // the record's trailing '\n'
    const eq = bytes.indexOf(EQUALS, i + 1);
    if (eq === -1 || eq > end) break;
    const key = bytes.toString('utf8', i + 1, eq);
    result[key] = bytes.toString(key.startsWith(PAX_XATTR_PREFIX) ? 'latin1' : 'utf8', eq + 1, end);
    pos += len;
  }
  return result;
}

/**
 * Encodes PAX records. A `Uint8Array` value is written byte for byte (for
 * xattr values); a string as UTF-8.
 */
export function encodePax(records: Iterable<readonly [string, string | Uint8Array]>): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of records) {
    const body = Buffer.concat([
      Buffer.from(` ${key}=`, 'utf8'),
      typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value),
      Buffer.from('\n'),
    ]);
    // The length field counts itself: find the fixed point.
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    parts.push(Buffer.from(String(len), 'ascii'), body);
  }
  return Buffer.concat(parts);
}

/**
 * The xattrs a PAX header carries, as name → bytes, from `SCHILY.xattr.*`
 * (decoded by {@link decodePax}) and `LIBARCHIVE.xattr.*` records.
 */
export function paxXattrs(pax: Record<string, string> | null | undefined): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  if (pax == null) return out;
  for (const key of Object.keys(pax)) {
    const value = pax[key]!;
    if (key.startsWith(PAX_XATTR_PREFIX)) {
      out.set(key.slice(PAX_XATTR_PREFIX.length), Buffer.from(value, 'latin1'));
    } else if (key.startsWith(PAX_LIBARCHIVE_XATTR_PREFIX)) {
      let name: string;
      try {
        name = decodeURIComponent(key.slice(PAX_LIBARCHIVE_XATTR_PREFIX.length));
      } catch {
        continue;
      }
      if (!out.has(name)) out.set(name, Buffer.from(value, 'base64'));
    }
  }
  return out;
}
