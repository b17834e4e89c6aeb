/**
 * Reading image archives (oci-archive, docker-archive) in one streamed pass:
 * each blob goes straight from its tar entry into the store, verified, and
 * the small documents (`index.json`, `manifest.json`, configs) are kept in
 * memory for the interpretation that follows.
 *
 * @module
 */

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { posix } from 'node:path';
import createDebug from 'debug';
import { InvalidArgumentError, UnsafeContentError } from '../../errors.js';
import { type Digest, isDigest } from '../../oci/index.js';
import type { TransferStore } from '../types.js';
import type { Lease } from '../../store/index.js';
import { decompress, sniffCompression, type Compression } from './codec.js';
import { LayerTap } from './layer-tap.js';
import { counted, drained, throwIfAborted, wrapArchiveError } from './util.js';
import { createExtract, normalizeEntryPath, type TarEntryStream, type TarExtract } from '../../layer/index.js';

const debug = createDebug('dockless:transfer');

/** One entry of a tar being extracted: its header and its content stream. */
type TarEntry = TarEntryStream;

/** The largest document (JSON, `VERSION`, `repositories`) an archive may hold: 32 MiB. */
export const MAX_DOCUMENT_SIZE = 32 * 1024 * 1024;
const MAX_LINK_HOPS = 16;
const ARCHIVE_TOP_NAMES: ReadonlySet<string> = new Set(['oci-layout', 'index.json', 'manifest.json', 'repositories', 'blobs']);
const HEX_NAME_RE = /^[a-f0-9]{64}(?:\.json|\.tar)?$/;
const BLOB_PATH_RE = /^blobs\/([a-z0-9]+)\/([a-f0-9]+)$/;

/** A file of an archive that was written to the store as a blob. */
export interface ArchiveBlob {
  /** Its (normalised) name in the archive. */
  name: string;
  /** The blob's digest (verified against its name for `blobs/<alg>/<hex>` entries). */
  digest: Digest;
  /** Its size in bytes. */
  size: number;
  /** For files that are not `blobs/…` entries (docker-archive layers): the compression sniffed. */
  compression?: Compression;
  /** For files that are not `blobs/…` entries: the digest of the uncompressed content. */
  diffId?: Digest;
  /** For files that are not `blobs/…` entries: why they could not be decompressed (then `diffId` is absent). */
  failure?: unknown;
}

/** What one pass over an archive found. */
export class ArchiveContents {
  /** Small documents by name, in memory. */
  readonly docs = new Map<string, Buffer>();
  /** Files written to the store, by name. */
  readonly blobs = new Map<string, ArchiveBlob>();
  /** Symbolic and hard links: name → the name they point to. */
  readonly links = new Map<string, string>();
  /** Digests of the `blobs/<alg>/<hex>` entries (stored, or already in the store). */
  readonly layoutBlobs = new Set<Digest>();

  /**
   * The document or blob at `name` (following links), or `undefined`.
   */
  lookup(name: string): { name: string; doc?: Buffer; blob?: ArchiveBlob } | undefined {
    let current = normalizeEntryName(name);
    for (let hop = 0; current !== undefined && hop <= MAX_LINK_HOPS; hop++) {
      const doc = this.docs.get(current);
      if (doc !== undefined) return { name: current, doc };
      const blob = this.blobs.get(current);
      if (blob !== undefined) return { name: current, blob };
      current = this.links.get(current);
    }
    return undefined;
  }
}

/** Options of {@link readArchive}. */
export interface ReadArchiveOptions {
  /** The lease every stored blob is added to, so GC keeps it until the images are tagged. */
  lease: Lease;
  /** Cancels the read; what was stored stays until GC. */
  signal?: AbortSignal | undefined;
  /** The operation, for error messages. */
  context: string;
  /** Called with the bytes of the archive file read so far and its size. */
  onBytes?: ((bytes: number, total: number) => void) | undefined;
  /** Called when a blob that looks like a layer (not JSON) is in the store. */
  onLayer?: ((blob: ArchiveBlob, cached: boolean) => void) | undefined;
}

/**
 * Reads an archive (a tar, plain or gzip/zstd-compressed) in one pass:
 * `blobs/<alg>/<hex>` entries are stored with their digest verified (a
 * mismatch is a {@link DigestMismatchError}); other big files (layer tars)
 * are stored with their digest, compression and diffID computed as they
 * stream; documents are kept in memory.
 *
 * @throws {InvalidArgumentError} when the file is not a tar, is truncated, or a document is too big.
 * @throws {DigestMismatchError} when a `blobs/` entry does not match its name.
 * @throws {AbortError} when `signal` aborts.
 */
export async function readArchive(store: TransferStore, path: string, options: ReadArchiveOptions): Promise<ArchiveContents> {
  const { lease, signal, context } = options;
  const total = (await stat(path)).size;
  const contents = new ArchiveContents();
  const file = createReadStream(path, { highWaterMark: 1 << 20 });
  const raw = counted(file, (bytes) => options.onBytes?.(bytes, total));
  const { extract } = createExtract();
  const onAbort = (): void => {
    file.destroy();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const producer = feed(raw, extract, context);
  // Its failure also reaches the loop below, through the extractor; this only keeps it from being unhandled.
  producer.catch(() => {});
  try {
    throwIfAborted(signal, context);
    for await (const entry of extract) {
      throwIfAborted(signal, context);
      await readEntry(store, contents, entry, { lease, signal, context, onLayer: options.onLayer });
    }
    await producer;
    throwIfAborted(signal, context);
  } catch (err) {
    extract.destroy();
    file.destroy();
    await producer.catch(() => {});
    throwIfAborted(signal, context);
    throw wrapArchiveError(err, context, path);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  debug('%s: %d documents, %d blobs, %d links', context, contents.docs.size, contents.blobs.size, contents.links.size);
  return contents;
}

/** Decompresses `raw` into `extract`, with backpressure; ends it, or destroys it with the error. */
async function feed(raw: AsyncIterable<Uint8Array>, extract: TarExtract, context: string): Promise<void> {
  try {
    const { compression, chunks } = await sniffCompression(raw);
    for await (const chunk of decompress(chunks, compression, context)) {
      if ((extract as unknown as { destroyed: boolean }).destroyed) return;
      if (!extract.write(chunk)) await drained(extract);
    }
    extract.end(null);
  } catch (err) {
    extract.destroy(err instanceof Error ? err : new Error(String(err)));
    throw err;
  }
}

interface EntryOptions {
  lease: Lease;
  signal?: AbortSignal | undefined;
  context: string;
  onLayer?: ((blob: ArchiveBlob, cached: boolean) => void) | undefined;
}

async function readEntry(
  store: TransferStore,
  contents: ArchiveContents,
  entry: TarEntry,
  options: EntryOptions,
): Promise<void> {
  const { header } = entry;
  const name = normalizeEntryName(header.name);
  if (name === undefined || name === '') {
    await drain(entry);
    return;
  }
  switch (header.type) {
    case 'symlink': {
      const target = header.linkname ?? '';
      const resolved = normalizeEntryName(target.startsWith('/') ? target : posix.join(posix.dirname(name), target));
      if (resolved !== undefined) contents.links.set(name, resolved);
      await drain(entry);
      return;
    }
    case 'link': {
      const resolved = normalizeEntryName(header.linkname ?? '');
      if (resolved !== undefined) contents.links.set(name, resolved);
      await drain(entry);
      return;
    }
    case 'file':
    case 'contiguous-file':
      break;
    default:
      await drain(entry);
      return;
  }
  const size = header.size ?? 0;
  const where = `${options.context}: \`${name}\``;
  const blobPath = BLOB_PATH_RE.exec(name);
  if (blobPath !== null) {
    const digest = `${blobPath[1]}:${blobPath[2]}`;
    if (!isDigest(digest)) {
      debug('%s: not a digest, skipped', where);
      await drain(entry);
      return;
    }
    // Held by the lease before it is looked at, so a concurrent GC cannot take it between the two.
    await options.lease.add([digest]);
    const cached = await store.hasBlob(digest);
    let json = false;
    const sniffed = firstByte(bytesOf(entry), (b) => (json = b === 0x7b));
    if (cached) await drain(sniffed);
    else await store.putBlob(sniffed, { digest, size, lease: options.lease, signal: options.signal });
    const blob: ArchiveBlob = { name, digest, size };
    contents.blobs.set(name, blob);
    contents.layoutBlobs.add(digest);
    if (!json) options.onLayer?.(blob, cached);
    return;
  }
  if (isDocumentName(name)) {
    if (size > MAX_DOCUMENT_SIZE) {
      throw new InvalidArgumentError(`${where}: ${size} bytes is too big for a document (at most ${MAX_DOCUMENT_SIZE})`);
    }
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    contents.docs.set(name, Buffer.concat(chunks));
    return;
  }
  // Any file may be a layer: which one is, and the diffID it must have, is known once manifest.json is read.
  const tap = new LayerTap({ context: where, hashUncompressed: false, keepReading: true });
  const stored = await store.putBlob(tap.tap(bytesOf(entry)), { size, lease: options.lease, signal: options.signal });
  const facts = tap.facts();
  const blob: ArchiveBlob = {
    name,
    digest: stored.digest,
    size: stored.size,
    compression: facts.compression,
    ...(facts.failure === undefined
      ? // An uncompressed layer's diffID is its digest, which the store computed.
        { diffId: facts.diffId ?? stored.digest }
      : { failure: facts.failure }),
  };
  contents.blobs.set(name, blob);
  options.onLayer?.(blob, false);
}

/** Passes `source` through, telling `onFirst` its first byte. */
async function* firstByte(source: AsyncIterable<Uint8Array>, onFirst: (byte: number) => void): AsyncGenerator<Uint8Array> {
  let first = true;
  for await (const chunk of source) {
    if (first && chunk.byteLength > 0) {
      first = false;
      onFirst(chunk[0]!);
    }
    yield chunk;
  }
}

/** An entry's content as the byte chunks it yields. */
function bytesOf(entry: TarEntry): AsyncIterable<Uint8Array> {
  return entry as unknown as AsyncIterable<Uint8Array>;
}

async function drain(entry: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of entry) {
    // discard
  }
}

/**
 * Whether an entry is a document kept in memory: the layout's and
 * docker-archive's metadata files and any `.json`.
 */
function isDocumentName(name: string): boolean {
  const base = posix.basename(name);
  return (
    base === 'oci-layout' ||
    base === 'repositories' ||
    base === 'VERSION' ||
    base === 'json' ||
    base.endsWith('.json')
  );
}

/**
 * An archive entry's name in canonical form (`./a//b/` → `a/b`), as a
 * layer's entries are normalised, or `undefined` when it climbs out of the
 * archive (`../x`).
 */
export function normalizeEntryName(name: string): string | undefined {
  try {
    return normalizeEntryPath(name);
  } catch (err) {
    if (err instanceof UnsafeContentError) return undefined;
    throw err;
  }
}

/**
 * Whether a tar is an image archive rather than a root filesystem, judged by
 * its first entry that is not the root directory: archives begin with
 * `oci-layout`, `index.json`, `manifest.json`, `repositories`, `blobs/…` or a
 * 64-hex name (`<id>/`, `<id>.json`, `<digest>.tar`); a root filesystem begins
 * with anything else. An empty tar is a (empty) root filesystem.
 *
 * @throws {InvalidArgumentError} when the file is not a tar (plain, gzip or zstd).
 */
export async function sniffTarKind(path: string, context: string): Promise<{ kind: 'archive' | 'rootfs'; compression: Compression }> {
  const file = createReadStream(path, { highWaterMark: 64 * 1024 });
  const { extract } = createExtract();
  let compression: Compression = 'none';
  const producer = (async () => {
    const sniffed = await sniffCompression(file);
    compression = sniffed.compression;
    for await (const chunk of decompress(sniffed.chunks, sniffed.compression, context)) {
      if ((extract as unknown as { destroyed: boolean }).destroyed) return;
      if (!extract.write(chunk)) await drained(extract);
    }
    extract.end(null);
  })().catch((err: unknown) => {
    extract.destroy(err instanceof Error ? err : new Error(String(err)));
  });
  let kind: 'archive' | 'rootfs' | undefined;
  try {
    for await (const entry of extract) {
      const name = normalizeEntryName(entry.header.name);
      if (name === '' || name === undefined) {
        await drain(entry);
        continue;
      }
      kind = isArchiveName(name) ? 'archive' : 'rootfs';
      break;
    }
  } catch (err) {
    throw wrapArchiveError(err, context, path);
  } finally {
    extract.destroy();
    file.destroy();
    await producer;
  }
  return { kind: kind ?? 'rootfs', compression };
}

function isArchiveName(name: string): boolean {
  const first = name.split('/')[0]!;
  return ARCHIVE_TOP_NAMES.has(first) || HEX_NAME_RE.test(first);
}
