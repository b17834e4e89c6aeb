/**
 * A synchronous tar parser for the unpack path: chunks in, entries out, with
 * no stream per entry and no strings or views per numeric field. It reads
 * tars as tar-stream's extractor (with {@link createExtract}'s byte-exact
 * PAX) did before it: the same header checks and errors, the same long-name
 * and PAX rules, so the layers it accepts and refuses are the same, but for
 * an empty PAX header (no header at all here, as in GNU tar and Go; after
 * one tar-stream lost its place and failed).
 * tar-stream's per-entry stream and its field decoding made about half of
 * the garbage of an unpack (≈ 60 MB for a 127 MB layer of 14 000 files),
 * which the collector then spent hundreds of milliseconds on.
 *
 * @module
 */

import { decodePax } from './pax.js';
import type { TarHeader } from './tar-extract.js';
import type { EntrySink } from './tree-writer.js';

const BLOCK = 512;
/** The largest PAX or GNU long-name header accepted (tar-stream's limit). */
const MAX_LONG_HEADER = 4 * 1024 * 1024;
/** The largest time a Date holds, in seconds. */
const MAX_DATE_SECONDS = 8.64e12;

/** Where a parsed entry goes: its header, then (for a returned sink) its content. */
export type TarEntryHandler = (header: TarHeader) => EntrySink | undefined;

/** A malformed tar (the message is tar-stream's for the same fault). */
export class TarFormatError extends Error {}

/** An entry type, or one of the headers that describe the next entry. */
type HeaderType = TarHeader['type'] | 'pax-header' | 'pax-global-header' | 'gnu-long-path' | 'gnu-long-link-path';

/** A header as decoded; numbers are undefined where tar-stream's were null (see {@link decodeNumber}). */
interface RawHeader {
  name: string;
  mode: number | undefined;
  uid: number | undefined;
  gid: number | undefined;
  size: number | undefined;
  mtime: Date;
  type: HeaderType;
  linkname: string | null;
  devmajor: number | undefined;
  devminor: number | undefined;
  pax: Record<string, string> | null;
}

const TYPES: Record<number, HeaderType> = {
  0: 'file',
  1: 'link',
  2: 'symlink',
  3: 'character-device',
  4: 'block-device',
  5: 'directory',
  6: 'fifo',
  7: 'contiguous-file',
  72: 'pax-header',
  55: 'pax-global-header',
  27: 'gnu-long-link-path',
  28: 'gnu-long-path',
  30: 'gnu-long-path',
};

/**
 * Parses a tar given chunk by chunk: {@link TarParser.write} calls `handler`
 * with each entry's header and hands its content to the sink the handler
 * returns (or skips it), synchronously; {@link TarParser.end} checks that the
 * tar ended on an entry's boundary.
 *
 * @throws {@link TarFormatError} (from `write` or `end`) for a malformed tar;
 *   whatever `handler` or a sink throws is passed through.
 */
export class TarParser {
  readonly #handler: TarEntryHandler;
  /** The header block being gathered, and how much of it is. */
  readonly #block = Buffer.alloc(BLOCK);
  #blockFill = 0;
  /** A PAX or GNU long-name header's content being gathered. */
  #long: { type: HeaderType; buf: Buffer; fill: number } | undefined;
  /** The entry whose content is being read, and how much is left. */
  #sink: EntrySink | undefined;
  #content = 0;
  /** Bytes to skip: padding, or the content of an entry nobody wants. */
  #skip = 0;
  #pax: Record<string, string> | null = null;
  #paxGlobal: Record<string, string> | null = null;
  #gnuLongPath: string | null = null;
  #gnuLongLinkPath: string | null = null;

  constructor(handler: TarEntryHandler) {
    this.#handler = handler;
  }

  write(chunk: Uint8Array): void {
    const data = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let at = 0;
    const length = data.byteLength;
    while (at < length) {
      if (this.#content > 0) {
        const n = Math.min(this.#content, length - at);
        this.#content -= n;
        this.#sink?.write(data.subarray(at, at + n));
        at += n;
        if (this.#content === 0) this.#endEntry();
        continue;
      }
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, length - at);
        this.#skip -= n;
        at += n;
        continue;
      }
      const long = this.#long;
      if (long !== undefined) {
        const n = Math.min(long.buf.byteLength - long.fill, length - at);
        data.copy(long.buf, long.fill, at, at + n);
        long.fill += n;
        at += n;
        if (long.fill === long.buf.byteLength) {
          this.#long = undefined;
          this.#skip = padding(long.buf.byteLength);
          this.#decodeLong(long.type, long.buf);
        }
        continue;
      }
      if (this.#blockFill === 0 && length - at >= BLOCK) {
        this.#header(data, at);
        at += BLOCK;
        continue;
      }
      const n = Math.min(BLOCK - this.#blockFill, length - at);
      data.copy(this.#block, this.#blockFill, at, at + n);
      this.#blockFill += n;
      at += n;
      if (this.#blockFill === BLOCK) {
        this.#blockFill = 0;
        this.#header(this.#block, 0);
      }
    }
  }

  /** @throws {@link TarFormatError} when the tar stops inside a header or an entry's content. */
  end(): void {
    if (this.#content > 0 || this.#skip > 0 || this.#long !== undefined || this.#blockFill > 0) {
      throw new TarFormatError('Unexpected end of data');
    }
  }

  #header(buf: Buffer, at: number): void {
    const header = decodeHeader(buf, at);
    if (header === null) return;
    const type = header.type;
    if (type === 'gnu-long-path' || type === 'gnu-long-link-path' || type === 'pax-global-header' || type === 'pax-header') {
      const size = header.size;
      if (size === undefined) throw new TarFormatError('Invalid header');
      if (size > MAX_LONG_HEADER) throw new TarFormatError('Header exceeds max size');
      if (!(size >= 0)) throw new TarFormatError('Invalid header');
      // An empty one is no header at all, as in GNU tar and Go (tar-stream lost its place in the stream after one).
      if (size === 0) return;
      this.#long = { type, buf: Buffer.allocUnsafe(size), fill: 0 };
      return;
    }
    if (this.#gnuLongPath !== null) {
      header.name = this.#gnuLongPath;
      this.#gnuLongPath = null;
    }
    if (this.#gnuLongLinkPath !== null) {
      header.linkname = this.#gnuLongLinkPath;
      this.#gnuLongLinkPath = null;
    }
    const pax = this.#pax;
    if (pax !== null) {
      if (pax['path']) header.name = pax['path'];
      if (pax['linkpath']) header.linkname = pax['linkpath'];
      if (pax['size']) header.size = parseInt(pax['size'], 10);
      header.pax = pax;
      this.#pax = null;
    }
    const size = header.size;
    // An unreadable size (a bad base-256 field) is refused: reading on would take content for headers.
    if (size === undefined || !(size >= 0)) throw new TarFormatError('Invalid header');
    // The applier reads every number with a default, and refuses a type it does not know: tar-stream handed it the same.
    const sink = this.#handler(header as unknown as TarHeader);
    // As tar-stream: a directory's size is not content to skip (its blocks are read as headers).
    if (size === 0 || type === 'directory') {
      sink?.end();
      return;
    }
    this.#sink = sink;
    this.#content = size;
    // Skipped once the content is read (`write` takes content before padding).
    this.#skip = padding(size);
  }

  #endEntry(): void {
    const sink = this.#sink;
    this.#sink = undefined;
    sink?.end();
  }

  /** The content of a PAX or GNU long-name header, applied to the next entry. */
  #decodeLong(type: HeaderType, buf: Buffer): void {
    switch (type) {
      case 'gnu-long-path':
        this.#gnuLongPath = decodeString(buf, 0, buf.byteLength);
        break;
      case 'gnu-long-link-path':
        this.#gnuLongLinkPath = decodeString(buf, 0, buf.byteLength);
        break;
      case 'pax-global-header':
        this.#paxGlobal = decodePax(buf);
        break;
      default: {
        const records = decodePax(buf);
        this.#pax = this.#paxGlobal === null ? records : { ...this.#paxGlobal, ...records };
      }
    }
  }
}

/** The zero bytes after `size` bytes of content, up to the block's end. */
function padding(size: number): number {
  const rest = size % BLOCK;
  return rest === 0 ? 0 : BLOCK - rest;
}

/**
 * One header block at `at`, as tar-stream's `headers.decode` reads it (UTF-8
 * names, ustar and GNU formats only); `null` for a block of zeros.
 */
function decodeHeader(buf: Buffer, at: number): RawHeader | null {
  let sum = 8 * 32;
  for (let i = at; i < at + 148; i++) sum += buf[i]!;
  for (let i = at + 156; i < at + BLOCK; i++) sum += buf[i]!;
  // The checksum field counts as spaces: a block that sums to that alone is empty.
  if (sum === 8 * 32) return null;
  if (sum !== decodeNumber(buf, at + 148, 8)) throw new TarFormatError('Invalid tar header. Maybe the tar is corrupted or it needs to be gunzipped?');

  const flag = buf[at + 156] === 0 ? 0 : buf[at + 156]! - 0x30;
  let name = decodeString(buf, at, 100);
  if (isUstar(buf, at)) {
    if (buf[at + 345] !== 0) name = `${decodeString(buf, at + 345, 155)}/${name}`;
  } else if (!isGnu(buf, at)) {
    throw new TarFormatError('Invalid tar header: unknown format.');
  }
  const mtime = decodeNumber(buf, at + 136, 12);
  return {
    name,
    mode: decodeNumber(buf, at + 100, 8),
    uid: decodeNumber(buf, at + 108, 8),
    gid: decodeNumber(buf, at + 116, 8),
    size: decodeNumber(buf, at + 124, 12),
    // Within a Date's range (±8.64e12 s, year 275760), beyond any filesystem's but tmpfs's and btrfs's.
    mtime: new Date(1000 * Math.min(MAX_DATE_SECONDS, Math.max(-MAX_DATE_SECONDS, mtime ?? 0))),
    // As tar-stream 3: the type is the flag's, even for an old-style `name/` with flag 0.
    type: TYPES[flag] ?? null,
    linkname: buf[at + 157] === 0 ? null : decodeString(buf, at + 157, 100),
    devmajor: decodeNumber(buf, at + 329, 8),
    devminor: decodeNumber(buf, at + 337, 8),
    pax: null,
  };
}

// "ustar\0"
function isUstar(buf: Buffer, at: number): boolean {
  return buf[at + 257] === 0x75 && buf[at + 258] === 0x73 && buf[at + 259] === 0x74 && buf[at + 260] === 0x61 && buf[at + 261] === 0x72 && buf[at + 262] === 0;
}

// "ustar " and version " \0"
function isGnu(buf: Buffer, at: number): boolean {
  return (
    buf[at + 257] === 0x75 &&
    buf[at + 258] === 0x73 &&
    buf[at + 259] === 0x74 &&
    buf[at + 260] === 0x61 &&
    buf[at + 261] === 0x72 &&
    buf[at + 262] === 0x20 &&
    buf[at + 263] === 0x20 &&
    buf[at + 264] === 0
  );
}

/** The UTF-8 string of a field, up to its first NUL. */
function decodeString(buf: Buffer, at: number, length: number): string {
  const end = at + length;
  let i = at;
  while (i < end && buf[i] !== 0) i++;
  return buf.toString('utf8', at, i);
}

/**
 * A numeric field as tar-stream reads it: base-256 when its first byte has
 * the high bit; else octal text, leading spaces and NULs skipped, up to the
 * first space, read as `parseInt(text, 8)` would (leading whitespace and a
 * sign allowed, stopping at the first non-octal character, NaN without a
 * digit). `undefined` for a base-256 field that is neither positive nor
 * negative (tar-stream's `null`: the applier then takes its default). A
 * negative base-256 number (GNU tar's for a time before 1970) is read as GNU
 * tar reads it, where tar-stream's is one too high.
 */
function decodeNumber(buf: Buffer, at: number, length: number): number | undefined {
  const end = at + length;
  if ((buf[at]! & 0x80) !== 0) return decodeBase256(buf, at, end);
  let i = at;
  while (i < end && buf[i] === 0x20) i++;
  let stop = i;
  while (stop < end && buf[stop] !== 0x20) stop++;
  while (i < stop && buf[i] === 0) i++;
  if (i === stop) return 0;
  // parseInt skips leading white space (ASCII ones here: the other bytes decode to U+FFFD or are not white space).
  while (i < stop && (buf[i] === 0x09 || buf[i] === 0x0a || buf[i] === 0x0b || buf[i] === 0x0c || buf[i] === 0x0d)) i++;
  let sign = 1;
  if (i < stop && (buf[i] === 0x2b || buf[i] === 0x2d)) {
    if (buf[i] === 0x2d) sign = -1;
    i++;
  }
  let value = 0;
  let digits = 0;
  while (i < stop && buf[i]! >= 0x30 && buf[i]! <= 0x37) {
    value = value * 8 + (buf[i]! - 0x30);
    digits++;
    i++;
  }
  return digits === 0 ? NaN : sign * value;
}

/** A base-256 field (GNU): 0x80 then a big-endian positive number, 0xff then a two's complement negative one. */
function decodeBase256(buf: Buffer, at: number, end: number): number | undefined {
  const first = buf[at];
  if (first !== 0x80 && first !== 0xff) return undefined;
  const positive = first === 0x80;
  let sum = 0;
  let scale = 1;
  for (let i = end - 1; i > at; i--) {
    const byte = positive ? buf[i]! : 0xff - buf[i]!;
    sum += byte * scale;
    scale *= 256;
  }
  // Two's complement: the bytes inverted are the magnitude less one (0xff…ff is −1).
  return positive ? sum : -(sum + 1);
}
