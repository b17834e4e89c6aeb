import { encodePax } from './pax.js';

/** The tar block size. */
export const BLOCK = 512;

/** The end-of-archive marker: two zero blocks. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

/** The entry types {@link encodeHeader} writes. */
export type TarEntryType = 'file' | 'link' | 'symlink' | 'character-device' | 'block-device' | 'directory' | 'fifo';

const TYPEFLAG: Record<TarEntryType | 'pax-header', string> = {
  file: '0',
  link: '1',
  symlink: '2',
  'character-device': '3',
  'block-device': '4',
  directory: '5',
  fifo: '6',
  'pax-header': 'x',
};

/** One entry's header, as {@link encodeHeader} takes it. */
export interface TarEntryHeader {
  /** Path inside the archive, without a leading `/`; directories without the trailing `/` (it is added). */
  name: string;
  type: TarEntryType;
  /** Permission bits, 0o7777. */
  mode: number;
  uid: number;
  gid: number;
  /** Content size; 0 for everything but regular files. */
  size: number;
  /** Whole seconds since the epoch. */
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** xattrs, written as `SCHILY.xattr.<name>` PAX records, byte for byte. */
  xattrs?: ReadonlyMap<string, Uint8Array>;
}

const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;

/**
 * Encodes the header block(s) of one entry: a ustar header, preceded by a PAX
 * header when a field does not fit ustar (long or non-ASCII names, big sizes
 * or ids, xattrs). The output is deterministic: no user or group names, no
 * access or change times.
 */
export function encodeHeader(header: TarEntryHeader): Buffer {
  const pax: [string, string | Uint8Array][] = [];
  let name = header.type === 'directory' ? `${header.name}/` : header.name;
  let prefix = '';
  const split = splitName(name);
  if (split === undefined) {
    pax.push(['path', name]);
    name = asciiTail(name, 100);
  } else {
    [prefix, name] = split;
  }
  let linkname = header.linkname ?? '';
  if (linkname !== '' && (!isAscii(linkname) || Buffer.byteLength(linkname) > 100)) {
    pax.push(['linkpath', linkname]);
    linkname = asciiTail(linkname, 100);
  }
  let size = header.size;
  if (size > MAX_OCTAL_11) {
    pax.push(['size', String(size)]);
    size = 0;
  }
  let uid = header.uid;
  if (uid > MAX_OCTAL_7) {
    pax.push(['uid', String(uid)]);
    uid = 0;
  }
  let gid = header.gid;
  if (gid > MAX_OCTAL_7) {
    pax.push(['gid', String(gid)]);
    gid = 0;
  }
  let mtime = Math.max(0, Math.floor(header.mtime));
  if (mtime > MAX_OCTAL_11) {
    pax.push(['mtime', String(mtime)]);
    mtime = 0;
  }
  if (header.xattrs) {
    for (const key of [...header.xattrs.keys()].sort()) pax.push([`SCHILY.xattr.${key}`, header.xattrs.get(key)!]);
  }

  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'utf8');
  writeOctal(block, 100, 8, header.mode & 0o7777);
  writeOctal(block, 108, 8, uid);
  writeOctal(block, 116, 8, gid);
  writeOctal(block, 124, 12, size);
  writeOctal(block, 136, 12, mtime);
  block.write(TYPEFLAG[header.type], 156, 1, 'ascii');
  block.write(linkname, 157, 100, 'utf8');
  block.write('ustar\0', 257, 6, 'ascii');
  block.write('00', 263, 2, 'ascii');
  if (header.type === 'character-device' || header.type === 'block-device') {
    writeOctal(block, 329, 8, header.devmajor ?? 0);
    writeOctal(block, 337, 8, header.devminor ?? 0);
  }
  block.write(prefix, 345, 155, 'utf8');
  checksum(block);

  if (pax.length === 0) return block;
  const records = encodePax(pax);
  const paxHeader = Buffer.alloc(BLOCK);
  paxHeader.write(asciiTail(`PaxHeaders/${header.name.slice(header.name.lastIndexOf('/') + 1)}`, 100), 0, 100, 'utf8');
  writeOctal(paxHeader, 100, 8, 0o644);
  writeOctal(paxHeader, 108, 8, 0);
  writeOctal(paxHeader, 116, 8, 0);
  writeOctal(paxHeader, 124, 12, records.length);
  writeOctal(paxHeader, 136, 12, mtime);
  paxHeader.write(TYPEFLAG['pax-header'], 156, 1, 'ascii');
  paxHeader.write('ustar\0', 257, 6, 'ascii');
  paxHeader.write('00', 263, 2, 'ascii');
  checksum(paxHeader);
  return Buffer.concat([paxHeader, records, padding(records.length), block]);
}

/** The zero bytes that pad `size` bytes of content to a whole block. */
export function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rest);
}

function isAscii(s: string): boolean {
  // eslint-disable-next-line no-control-regex
  return /^[\u0001-\u007f]*$/.test(s);
}

/** The last `max` bytes of an ASCII rendering of `s`, for the ustar field a PAX record overrides. */
function asciiTail(s: string, max: number): string {
  const ascii = s.replace(/[^\u0001-\u007f]/g, '_');
  return ascii.length <= max ? ascii : ascii.slice(ascii.length - max);
}

/** Splits a name into ustar prefix (≤ 155 bytes) and name (≤ 100 bytes); undefined when PAX is needed. */
function splitName(name: string): [string, string] | undefined {
  if (!isAscii(name)) return undefined;
  if (name.length <= 100) return ['', name];
  if (name.length > 256) return undefined;
  // A directory's trailing '/' stays in the name part.
  // The longest prefix leaves the shortest name: only that split can fit.
  const i = name.lastIndexOf('/', Math.min(155, name.length - 2));
  if (i > 0 && name.length - i - 1 <= 100) return [name.slice(0, i), name.slice(i + 1)];
  return undefined;
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  block.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'ascii');
}

function checksum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i]!;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
}
