import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it, type TestContext } from 'node:test';
import zlib from 'node:zlib';
import { InvalidArgumentError } from '../../src/errors.js';
import { compressLayer, diffToTar, paxXattrs, unpackLayer, type XattrReader } from '../../src/layer/index.js';
import { encodeHeader } from '../../src/layer/tar-header.js';
import { parseTar, toBuffer } from '../fixtures/layer-tar.js';

let base: string;
let counter = 0;
const freshDir = async (): Promise<string> => {
  const dir = path.join(base, `dir-${++counter}`);
  await fs.mkdir(dir);
  return dir;
};

before(async () => {
  base = await fs.mkdtemp(path.join(os.tmpdir(), 'dockless-layer-diff-'));
});
after(async () => {
  await fs.rm(base, { recursive: true, force: true });
});

const isRoot = process.getuid?.() === 0;
const hasGnuTar = /GNU tar/.test(spawnSync('tar', ['--version']).stdout?.toString() ?? '');

function skipUnless(t: TestContext, ok: boolean, why: string): boolean {
  if (!ok) t.skip(why);
  return ok;
}

describe('tar headers', () => {
  it('writes ustar for short ASCII names and PAX for long, non-ASCII and xattr-carrying ones', async () => {
    const long = `${'d'.repeat(120)}/${'f'.repeat(120)}`;
    const blocks = Buffer.concat([
      encodeHeader({ name: 'a/b', type: 'file', mode: 0o644, uid: 1, gid: 2, size: 0, mtime: 1000 }),
      encodeHeader({ name: `${'p'.repeat(150)}/${'n'.repeat(90)}`, type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 1 }),
      encodeHeader({ name: long, type: 'file', mode: 0o600, uid: 0, gid: 0, size: 0, mtime: 1 }),
      encodeHeader({ name: 'ünï', type: 'symlink', linkname: 'ẗärget', mode: 0o777, uid: 3000000, gid: 0, size: 0, mtime: 1 }),
      encodeHeader({ name: 'x', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1, xattrs: new Map([['user.bin', Buffer.from([0xff, 0, 0x80])]]) }),
      Buffer.alloc(1024),
    ]);
    assert.equal(encodeHeader({ name: 'a/b', type: 'file', mode: 0o644, uid: 1, gid: 2, size: 0, mtime: 1000 }).length, 512);
    const entries = await parseTar(blocks);
    assert.deepEqual(
      entries.map((e) => [e.header.name, e.header.type]),
      [
        ['a/b', 'file'],
        [`${'p'.repeat(150)}/${'n'.repeat(90)}/`, 'directory'],
        [long, 'file'],
        ['ünï', 'symlink'],
        ['x', 'file'],
      ],
    );
    assert.equal(entries[3]!.header.linkname, 'ẗärget');
    assert.equal(entries[3]!.header.pax?.['uid'], '3000000');
    assert.deepEqual(paxXattrs(entries[4]!.header.pax).get('user.bin'), Buffer.from([0xff, 0, 0x80]));
    if (hasGnuTar) {
      const listing = execFileSync('tar', ['-tf', '-'], { input: blocks }).toString().trim().split('\n');
      assert.equal(listing.length, 5);
      assert.equal(listing[2], long);
    }
  });
});

describe('diffToTar', () => {
  it('writes a sorted, deterministic layer with modes, owners, links, and clamps mtimes to SOURCE_DATE_EPOCH', async () => {
    const upper = await freshDir();
    await fs.mkdir(path.join(upper, 'b/inner'), { recursive: true });
    await fs.mkdir(path.join(upper, 'a'));
    await fs.writeFile(path.join(upper, 'b/inner/z'), 'zzz');
    await fs.writeFile(path.join(upper, 'b/inner/Y'), 'yy', { mode: 0o600 });
    await fs.writeFile(path.join(upper, 'a/tool'), '#!/bin/sh\n', { mode: 0o755 });
    await fs.chmod(path.join(upper, 'a/tool'), 0o4755);
    await fs.link(path.join(upper, 'a/tool'), path.join(upper, 'b/tool-again'));
    await fs.symlink('../a/tool', path.join(upper, 'b/tool-link'));
    await fs.writeFile(path.join(upper, 'old'), 'from 2001');
    await fs.utimes(path.join(upper, 'old'), 978307200, 978307200);

    const epoch = 1_500_000_000;
    const first = await toBuffer(diffToTar(upper, { sourceDateEpoch: epoch }));
    const second = await toBuffer(diffToTar(upper, { sourceDateEpoch: epoch }));
    assert.deepEqual(first, second, 'the same tree gives the same bytes');

    const entries = await parseTar(first);
    assert.deepEqual(
      entries.map((e) => e.header.name),
      ['a/', 'a/tool', 'b/', 'b/inner/', 'b/inner/Y', 'b/inner/z', 'b/tool-again', 'b/tool-link', 'old'],
    );
    const byName = new Map(entries.map((e) => [e.header.name, e]));
    assert.equal(byName.get('a/tool')!.header.mode, 0o4755);
    assert.equal(byName.get('b/inner/Y')!.header.mode, 0o600);
    assert.equal(byName.get('b/inner/z')!.body.toString(), 'zzz');
    assert.equal(byName.get('b/tool-again')!.header.type, 'link');
    assert.equal(byName.get('b/tool-again')!.header.linkname, 'a/tool');
    assert.equal(byName.get('b/tool-link')!.header.type, 'symlink');
    assert.equal(byName.get('b/tool-link')!.header.linkname, '../a/tool');
    assert.equal(byName.get('old')!.header.mtime.getTime(), 978307200_000, 'older mtimes are kept');
    assert.equal(byName.get('b/inner/z')!.header.mtime.getTime(), epoch * 1000, 'newer mtimes are clamped');
    assert.equal(byName.get('a/tool')!.header.uid, process.getuid?.());
  });

  it('refuses an upper dir that uses overlay redirect_dir', async (t) => {
    const upper = await freshDir();
    await fs.mkdir(path.join(upper, 'moved'));
    const reader: XattrReader = async () => new Map([['moved', new Map([['trusted.overlay.redirect', Buffer.from('/orig')]])]]);
    await assert.rejects(toBuffer(diffToTar(upper, { readXattrs: reader })), InvalidArgumentError);
    t.diagnostic('redirect_dir renames cannot be expressed in a layer tar');
  });

  it('can be read by GNU tar and unpacked back to the same tree', async (t) => {
    if (!skipUnless(t, hasGnuTar, 'GNU tar not installed')) return;
    const upper = await freshDir();
    await fs.mkdir(path.join(upper, `deep/${'x'.repeat(90)}/${'y'.repeat(90)}`), { recursive: true });
    await fs.writeFile(path.join(upper, `deep/${'x'.repeat(90)}/${'y'.repeat(90)}/${'z'.repeat(99)}`), 'deep');
    await fs.writeFile(path.join(upper, 'big'), Buffer.alloc(3_000_001, 9));
    await fs.writeFile(path.join(upper, 'ünïcode'), 'u');
    const blob = await toBuffer(diffToTar(upper));
    const viaTar = await freshDir();
    execFileSync('tar', ['-xf', '-', '-C', viaTar], { input: blob });
    const viaUs = await freshDir();
    await unpackLayer(Readable.from([blob]), viaUs, { rootless: !isRoot });
    const list = (dir: string): string =>
      execFileSync('find', ['.', '-mindepth', '1', '-printf', '%p %y %m %s %T@ %l\n'], { cwd: dir }).toString().split('\n').sort().join('\n');
    assert.equal(list(viaTar), list(viaUs));
    assert.equal(list(viaUs).split('\n').length > 5, true);
  });
});

describe('compressLayer', () => {
  it('yields the gzip blob and both digests', async () => {
    const upper = await freshDir();
    await fs.writeFile(path.join(upper, 'f'), 'layer content '.repeat(1000));
    const raw = await toBuffer(diffToTar(upper));
    const { stream, result } = compressLayer(diffToTar(upper), 'gzip');
    const blob = await toBuffer(stream);
    const info = await result;
    const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
    assert.equal(info.digest, sha(blob));
    assert.equal(info.size, blob.length);
    assert.equal(info.diffId, sha(raw));
    assert.equal(info.uncompressedSize, raw.length);
    assert.equal(info.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    assert.deepEqual(zlib.gunzipSync(blob), raw);
    // Unpacking the blob gives the diffID compressLayer computed.
    const target = await freshDir();
    assert.equal((await unpackLayer(Readable.from([blob]), target, { rootless: true })).diffId, info.diffId);
  });

  it('passes an uncompressed tar through with digest = diffID', async () => {
    const upper = await freshDir();
    await fs.writeFile(path.join(upper, 'f'), 'x');
    const { stream, result } = compressLayer(diffToTar(upper), 'none');
    const blob = await toBuffer(stream);
    const info = await result;
    assert.equal(info.digest, info.diffId);
    assert.equal(info.size, blob.length);
    assert.equal(info.mediaType, 'application/vnd.oci.image.layer.v1.tar');
  });
});
