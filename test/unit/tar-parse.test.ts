import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createExtract, type TarHeader } from '../../src/layer/tar-extract.js';
import { TarFormatError, TarParser } from '../../src/layer/tar-parse.js';
import { makeTar, MTIME, setChecksum } from '../fixtures/layer-tar.js';

// The unpack path's parser replaced tar-stream's extractor there: whatever a layer is, both must read the same
// entries (or fail alike), or a layer would unpack differently from how the archive code and other tools read it.

interface Seen {
  header: Record<string, unknown>;
  content: string;
}

function fields(h: TarHeader): Record<string, unknown> {
  return {
    name: h.name,
    type: h.type,
    linkname: h.linkname,
    size: h.size,
    mode: h.mode,
    uid: h.uid,
    gid: h.gid,
    mtime: h.mtime?.getTime(),
    devmajor: h.devmajor,
    devminor: h.devminor,
    pax: h.pax ?? null,
  };
}

function ours(tarball: Buffer, chunk: number): { entries: Seen[]; error?: string } {
  const entries: Seen[] = [];
  const parser = new TarParser((header) => {
    const seen: Seen = { header: fields(header), content: '' };
    entries.push(seen);
    const parts: Buffer[] = [];
    return { write: (c) => void parts.push(Buffer.from(c)), end: () => void (seen.content = Buffer.concat(parts).toString('latin1')) };
  });
  try {
    for (let i = 0; i < tarball.length; i += chunk) parser.write(tarball.subarray(i, i + chunk));
    parser.end();
    return { entries };
  } catch (error) {
    assert.ok(error instanceof TarFormatError, `not a TarFormatError: ${String(error)}`);
    return { entries, error: error.message };
  }
}

async function theirs(tarball: Buffer): Promise<{ entries: Seen[]; error?: string }> {
  const entries: Seen[] = [];
  const { extract } = createExtract();
  return new Promise((resolve) => {
    let error: string | undefined;
    extract.on('entry', (header, stream, next) => {
      const seen: Seen = { header: fields(header as unknown as TarHeader), content: '' };
      entries.push(seen);
      const parts: Buffer[] = [];
      stream.on('data', (c: unknown) => void parts.push(c as Buffer));
      stream.on('end', () => {
        seen.content = Buffer.concat(parts).toString('latin1');
        next();
      });
      stream.on('error', () => {});
    });
    extract.on('error', (e: Error) => {
      error ??= e.message;
      resolve({ entries, error });
    });
    extract.on('finish', () => resolve(error === undefined ? { entries } : { entries, error }));
    extract.end(tarball);
  });
}

async function same(tarball: Buffer): Promise<{ entries: Seen[]; error?: string }> {
  const expected = await theirs(tarball);
  for (const chunk of [1, 7, 511, 512, 513, 4096, tarball.length || 1]) {
    assert.deepEqual(ours(tarball, chunk), expected, `chunks of ${chunk} bytes`);
  }
  return expected;
}

describe('TarParser reads tars as tar-stream did', () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dockless-tar-parse-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('every entry type, long names (ustar prefix and PAX), PAX records, xattrs, sizes across blocks', async () => {
    const long = `${'d'.repeat(120)}/${'f'.repeat(90)}`;
    const tarball = await makeTar([
      { name: 'dir', type: 'directory' },
      { name: 'dir/file', body: 'x'.repeat(1000), uid: 33, gid: 44, mode: 0o4755 },
      { name: 'dir/empty', body: '' },
      { name: 'dir/exact', body: 'y'.repeat(512) },
      { name: 'dir/link', type: 'symlink', linkname: 'file' },
      { name: 'dir/hard', type: 'link', linkname: 'dir/file' },
      { name: 'dir/fifo', type: 'fifo' },
      { name: 'dir/null', type: 'character-device', devmajor: 1, devminor: 3 },
      { name: `${'p'.repeat(150)}/short`, body: 'prefix' },
      { name: long, body: 'pax path' },
      { name: 'dir/ünïcode', body: 'utf8' },
      { name: 'dir/caps', body: '', rawPax: [['SCHILY.xattr.security.capability', Buffer.from([1, 0, 0, 2, 0xff, 0xfe])], ['mtime', '1580608922.25']] },
    ]);
    const { entries, error } = await same(tarball);
    assert.equal(error, undefined);
    assert.equal(entries.length, 12);
    assert.equal(entries[9]!.header['name'], long);
  });

  it('GNU tar archives: GNU long names and links, base-256 numbers', async () => {
    const src = path.join(dir, 'src');
    const deep = path.join(src, 'a'.repeat(60), 'b'.repeat(60));
    await fs.mkdir(deep, { recursive: true });
    await fs.writeFile(path.join(deep, 'c'.repeat(80)), 'content');
    await fs.symlink('t'.repeat(150), path.join(src, 'longlink'));
    const gnu = execFileSync('tar', ['--format=gnu', '--owner=2097152', '--group=0', '--numeric-owner', '-cf', '-', '-C', src, '.']);
    const { entries, error } = await same(gnu);
    assert.equal(error, undefined);
    assert.ok(entries.some((e) => (e.header['name'] as string).endsWith('c'.repeat(80))));
    assert.ok(entries.some((e) => e.header['linkname'] === 't'.repeat(150)));
    assert.ok(entries.every((e) => e.header['uid'] === 2097152), 'base-256 uid');
    const pax = execFileSync('tar', ['--format=pax', '-cf', '-', '-C', src, '.']);
    assert.equal((await same(pax)).error, undefined);
  });

  it('reads a negative base-256 time as GNU tar does, where tar-stream read it one second late', async () => {
    // GNU tar writes a time before 1970 as a base-256 two's complement: 0xff…ff is −1, not 0.
    const times = [-1, -86401, -(2 ** 40) - 5, 4_000_000_000, 2 ** 40 + 5];
    const tarball = await makeTar(times.map((_, i) => ({ name: `f${i}`, body: '' })));
    times.forEach((seconds, i) => {
      const header = tarball.subarray(i * 512, i * 512 + 512);
      let rest = BigInt(seconds);
      for (let at = 147; at > 136; at--, rest >>= 8n) header[at] = Number(BigInt.asUintN(8, rest));
      header[136] = seconds < 0 ? 0xff : 0x80;
      setChecksum(header);
    });
    assert.deepEqual(
      ours(tarball, 512).entries.map((e) => e.header['mtime']),
      times.map((seconds) => seconds * 1000),
    );
    assert.deepEqual(
      (await theirs(tarball)).entries.map((e) => e.header['mtime']),
      times.map((seconds) => (seconds < 0 ? seconds + 1 : seconds) * 1000),
    );
  });

  it('fails alike on a bad checksum, an unknown format, a truncated tar, an oversized PAX header', async () => {
    const tarball = await makeTar([{ name: 'a', body: 'x'.repeat(700) }, { name: 'b', body: 'y' }]);
    const badSum = Buffer.from(tarball);
    badSum[600 + 512 + 512] ^= 1; // a byte of b's header (after a's header and two content blocks)
    badSum[1536] ^= 1;
    assert.match((await same(badSum)).error ?? '', /Invalid tar header/);

    const unknown = Buffer.from(tarball);
    unknown.write('xxxxx', 257, 'ascii');
    setChecksum(unknown.subarray(0, 512));
    assert.equal((await same(unknown)).error, 'Invalid tar header: unknown format.');

    for (const cut of [100, 512, 700, 1536 + 200]) {
      assert.equal((await same(tarball.subarray(0, cut))).error, 'Unexpected end of data', `cut at ${cut}`);
    }

    const huge = Buffer.from(await makeTar([{ name: 'p', body: '' }]));
    huge[156] = 'x'.charCodeAt(0);
    huge.write(`${(5 * 1024 * 1024).toString(8).padStart(11, '0')}\0`, 124, 'ascii');
    setChecksum(huge.subarray(0, 512));
    assert.equal((await same(huge)).error, 'Header exceeds max size');
  });

  it('skips blocks of zeros (the end-of-archive marker, record padding)', async () => {
    const tarball = await makeTar([{ name: 'a', body: 'a' }]);
    const padded = Buffer.concat([tarball, Buffer.alloc(10240)]);
    assert.equal((await same(padded)).entries.length, 1);
  });

  it('takes an empty PAX header as no header, as GNU tar and Go do (tar-stream lost its place after one)', async () => {
    const emptyPax = Buffer.from(await makeTar([{ name: 'p', body: '' }, { name: 'q', body: 'q', mtime: MTIME }]));
    emptyPax[156] = 'x'.charCodeAt(0);
    setChecksum(emptyPax.subarray(0, 512));
    assert.ok((await theirs(emptyPax)).error !== undefined);
    for (const chunk of [1, 512, emptyPax.length]) {
      const { entries, error } = ours(emptyPax, chunk);
      assert.equal(error, undefined);
      assert.deepEqual(
        entries.map((e) => [e.header['name'], e.content]),
        [['q', 'q']],
      );
    }
  });
});
