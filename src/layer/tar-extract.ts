import type tarStream from 'tar-stream';
import { lazyRequire } from '../util/index.js';
import { decodePax } from './pax.js';

// A container run never reads a tar: tar-stream and its streams load with the first unpack.
const tarStreamModule = lazyRequire<typeof tarStream>('tar-stream');

/** A tar-stream header as it really is: an unknown type flag is `null`, PAX records are strings. */
export type TarHeader = Omit<tarStream.Header, 'type' | 'linkname' | 'pax'> & {
  type: tarStream.Header['type'] | null;
  linkname: string | null;
  pax?: Record<string, string> | null;
};

/** The extractor {@link createExtract} makes. */
export type TarExtract = tarStream.Extract;

/** One entry's content, as the extractor emits it. */
export type TarEntryStream = tarStream.ExtractEvents['entry'][1];

/** The tar-stream internals {@link createExtract} replaces; checked at runtime. */
interface ExtractInternals {
  _decodeLongHeader: (buf: Buffer) => void;
  _header: { type: string } | null;
  _pax: Record<string, string> | null;
  _paxGlobal: Record<string, string> | null;
}

function hasInternals(value: object): value is ExtractInternals {
  return (
    typeof (value as Partial<ExtractInternals>)._decodeLongHeader === 'function' &&
    '_pax' in value &&
    '_paxGlobal' in value
  );
}

/**
 * A tar-stream extractor whose PAX headers are decoded byte-exactly
 * ({@link decodePax}): tar-stream itself decodes every PAX value as UTF-8,
 * which corrupts binary xattrs such as `security.capability`.
 *
 * `binaryPax` is false when tar-stream's internals changed so the decoder
 * could not be put in; a unit test guards it.
 */
export function createExtract(): { extract: tarStream.Extract; binaryPax: boolean } {
  const extract = tarStreamModule().extract();
  if (!hasInternals(extract)) return { extract, binaryPax: false };
  const original = extract._decodeLongHeader;
  const internals: ExtractInternals = extract;
  internals._decodeLongHeader = function decodeLongHeader(this: ExtractInternals, buf: Buffer): void {
    switch (this._header?.type) {
      case 'pax-header': {
        const records = decodePax(buf);
        this._pax = this._paxGlobal === null ? records : { ...this._paxGlobal, ...records };
        return;
      }
      case 'pax-global-header':
        this._paxGlobal = decodePax(buf);
        return;
      default:
        original.call(this, buf);
    }
  };
  return { extract, binaryPax: true };
}
