import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import zlib from 'node:zlib';
import {
  AbortError,
  DocklessError,
  InvalidArgumentError,
  NotFoundError,
  UnsafeContentError,
} from '../../src/errors.js';
import {
  OPAQUE_WHITEOUT,
  WHITEOUT_PREFIX,
  decodePax,
  encodePax,
  isOverlayWhiteout,
  normalizeEntryPath,
  type LayerCompression,
  parseWhiteout,
  paxXattrs,
  unpackLayer as unpackLayerOn,
  whiteoutEntryName,
} from '../../src/layer/index.js';

/**
 * test/integration/layer-apply.test.ts runs this whole file again with
 * `DOCKLESS_TEST_UNPACK_THREAD=helper`, so that every case, the hostile ones
 * first, also holds where the native helper creates the files.
 */
const defaultThread = process.env['DOCKLESS_TEST_UNPACK_THREAD'] as 'main' | 'worker' | 'helper' | undefined;
const unpackLayer: typeof unpackLayerOn = (source, target, options = {}) =>
  unpackLayerOn(source, target, defaultThread !== undefined && options.thread === undefined ? { ...options, thread: defaultThread } : options);
import { locateHelper } from '../../src/helper/index.js';
import { createExtract } from '../../src/layer/tar-extract.js';
import { writeNumber } from '../../src/layer/tree-writer.js';
import { chunked, makeTar, MTIME, setChecksum, type Entry } from '../fixtures/layer-tar.js';

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let base: string;
let counter = 0;

/** A fresh empty target, and beside it a canary dir that no layer may touch. */
async function fresh(): Promise<{ target: string; canary: string; parent: string }> {
  const parent = path.join(base, `case-${++counter}`);
  const target = path.join(parent, 'target');
  const canary = path.join(parent, 'canary');
  await fs.mkdir(target, { recursive: true });
  await fs.mkdir(canary);
  await fs.writeFile(path.join(canary, 'keep'), 'original');
  return { target, canary, parent };
}

/** Asserts nothing was added or changed outside the target. */
async function assertCanaryIntact(dirs: { canary: string; parent: string }): Promise<void> {
  assert.deepEqual((await fs.readdir(dirs.canary)).sort(), ['keep']);
  assert.equal(await fs.readFile(path.join(dirs.canary, 'keep'), 'utf8'), 'original');
  assert.deepEqual((await fs.readdir(dirs.parent)).sort(), ['canary', 'target']);
  await assert.rejects(fs.lstat(path.join(base, 'evil')), { code: 'ENOENT' });
}

const isRoot = process.getuid?.() === 0;
const hasZstd = spawnSync('zstd', ['--version']).status === 0;
const hasGnuTar = /GNU tar/.test(spawnSync('tar', ['--version']).stdout?.toString() ?? '');
const hasHelper = ((): boolean => {
  try {
    locateHelper();
    return true;
  } catch {
    return false;
  }
})();

before(async () => {
  base = await fs.mkdtemp(path.join(os.tmpdir(), 'dockless-layer-unpack-'));
});

after(async () => {
  await fs.rm(base, { recursive: true, force: true });
});

// ------------------------------------------------------------------ pure helpers

describe('layer names', () => {
  it('normalises entry names relative to the layer root', () => {
    const table: [string, string][] = [
      ['usr/bin/env', 'usr/bin/env'],
      ['./usr/bin/', 'usr/bin'],
      ['/etc/passwd', 'etc/passwd'],
      ['a//b/./c', 'a/b/c'],
      ['a/b/../c', 'a/c'],
      ['./', ''],
      ['.', ''],
      ['..foo/bar..', '..foo/bar..'],
    ];
    for (const [input, expected] of table) assert.equal(normalizeEntryPath(input), expected, input);
  });

  it('refuses names that climb above the root or hold a NUL', () => {
    for (const input of ['..', '../evil', 'a/../../evil', './../x', '/../x', 'a\0b']) {
      assert.throws(() => normalizeEntryPath(input), UnsafeContentError, input);
    }
  });

  it('classifies whiteout names', () => {
    assert.deepEqual(parseWhiteout('.wh.passwd'), { kind: 'whiteout', name: 'passwd' });
    assert.deepEqual(parseWhiteout(OPAQUE_WHITEOUT), { kind: 'opaque' });
    assert.deepEqual(parseWhiteout('.wh..wh.plnk'), { kind: 'meta' });
    assert.equal(parseWhiteout('passwd'), undefined);
    assert.equal(parseWhiteout('.whatever'), undefined);
    assert.equal(whiteoutEntryName('passwd'), `${WHITEOUT_PREFIX}passwd`);
    assert.equal(isOverlayWhiteout({ isCharacterDevice: () => true, rdev: 0 }), true);
    assert.equal(isOverlayWhiteout({ isCharacterDevice: () => true, rdev: 259 }), false);
  });

  it('round-trips PAX records with binary xattr values byte for byte', () => {
    const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
    const odd = Buffer.from([0x80, 0x00, 0xff, 0x0a, 0x3d]);
    const encoded = encodePax([
      ['path', 'dir/ünïcode'],
      ['SCHILY.xattr.security.capability', cap],
      ['SCHILY.xattr.user.odd', odd],
      ['LIBARCHIVE.xattr.user.b64%20name', Buffer.from('aGVsbG8=')],
    ]);
    const pax = decodePax(encoded);
    assert.equal(pax['path'], 'dir/ünïcode');
    const xattrs = paxXattrs(pax);
    assert.deepEqual(xattrs.get('security.capability'), cap);
    assert.deepEqual(xattrs.get('user.odd'), odd);
    assert.deepEqual(xattrs.get('user.b64 name'), Buffer.from('hello'));
  });

  it('puts the byte-exact PAX decoder into tar-stream (guards against tar-stream internals changing)', () => {
    assert.equal(createExtract().binaryPax, true);
  });
});

// ------------------------------------------------------------------ unpacking

describe('writeNumber', () => {
  it('writes a number as toString does, and a NUL', () => {
    const values = [0, 1, 7, 8, 9, 10, 0o7777, 4095, -1, -8, -0, 4_294_967_295, 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53, 1e21, 0.5, -0.5, NaN, Infinity, -Infinity];
    const buf = Buffer.alloc(64, 0xff);
    for (const radix of [8, 10] as const) {
      for (const value of values) {
        buf.fill(0xff);
        const end = writeNumber(buf, 3, value, radix);
        assert.equal(buf.toString('latin1', 3, end), `${value.toString(radix)}\0`, `${value} in base ${radix}`);
        assert.equal(buf[2], 0xff);
        assert.equal(buf[end], 0xff);
      }
    }
  });
});

describe('unpackLayer', () => {
  it('unpacks files, directories, symlinks and hard links with modes and mtimes; the diffID is the tar digest', async () => {
    const { target } = await fresh();
    const long = `${'deep/'.repeat(30)}file-with-a-long-name-${'x'.repeat(120)}`;
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 'a');
    const layer = await makeTar([
      { name: 'etc/', type: 'directory', mode: 0o750, mtime: new Date('2001-01-01T00:00:00Z') },
      { name: 'etc/hosts', body: '127.0.0.1 localhost\n', mode: 0o600 },
      { name: 'bin/tool', body: '#!/bin/sh\n', mode: 0o755 },
      { name: 'bin/big', body: big },
      { name: 'bin/tool-link', type: 'symlink', linkname: 'tool' },
      { name: 'bin/tool-hard', type: 'link', linkname: 'bin/tool' },
      { name: 'empty', body: '' },
      { name: 'ünïcode/名前', body: 'utf-8 names' },
      { name: long, body: 'long' },
      { name: 'ro/', type: 'directory', mode: 0o555 },
      { name: 'ro/inside', body: 'in a read-only dir' },
    ]);
    const result = await unpackLayer(chunked(layer), target);
    assert.equal(result.diffId, sha256(layer));
    assert.equal(result.size, layer.length);
    assert.equal(result.entries, 11);

    assert.equal(await fs.readFile(path.join(target, 'etc/hosts'), 'utf8'), '127.0.0.1 localhost\n');
    assert.equal((await fs.stat(path.join(target, 'etc/hosts'))).mode & 0o7777, 0o600);
    assert.equal((await fs.stat(path.join(target, 'bin/tool'))).mode & 0o7777, 0o755);
    assert.equal((await fs.stat(path.join(target, 'etc'))).mode & 0o7777, 0o750);
    assert.equal((await fs.stat(path.join(target, 'ro'))).mode & 0o7777, 0o555);
    assert.equal(await fs.readFile(path.join(target, 'ro/inside'), 'utf8'), 'in a read-only dir');
    assert.deepEqual(await fs.readFile(path.join(target, 'bin/big')), big);
    assert.equal(await fs.readlink(path.join(target, 'bin/tool-link')), 'tool');
    const tool = await fs.stat(path.join(target, 'bin/tool'));
    const hard = await fs.stat(path.join(target, 'bin/tool-hard'));
    assert.equal(hard.ino, tool.ino);
    assert.equal(tool.nlink, 2);
    assert.equal((await fs.stat(path.join(target, 'empty'))).size, 0);
    assert.equal(await fs.readFile(path.join(target, 'ünïcode/名前'), 'utf8'), 'utf-8 names');
    assert.equal(await fs.readFile(path.join(target, long), 'utf8'), 'long');

    // Times: files and symlinks as in the tar; directories too, although their children came later.
    assert.equal((await fs.stat(path.join(target, 'etc/hosts'))).mtime.getTime(), MTIME.getTime());
    assert.equal((await fs.lstat(path.join(target, 'bin/tool-link'))).mtime.getTime(), MTIME.getTime());
    assert.equal((await fs.stat(path.join(target, 'etc'))).mtime.getTime(), Date.parse('2001-01-01T00:00:00Z'));
    assert.equal((await fs.stat(path.join(target, 'ro'))).mtime.getTime(), MTIME.getTime());
    await fs.chmod(path.join(target, 'ro'), 0o755);
  });

  it('keeps sub-second PAX mtimes', async () => {
    const { target } = await fresh();
    const layer = await makeTar([{ name: 'f', body: 'x', rawPax: [['mtime', '1600000000.25']] }]);
    await unpackLayer(chunked(layer), target);
    assert.equal((await fs.stat(path.join(target, 'f'))).mtimeMs, 1600000000250);
  });

  it('drops leading `/` and `./` as Docker does: `/etc/passwd` lands in the layer', async () => {
    const dirs = await fresh();
    const layer = await makeTar([
      { name: '/etc/passwd', body: 'root:x:0:0::/root:/bin/sh\n' },
      { name: './etc/group', body: 'root:x:0:\n' },
    ]);
    await unpackLayer(chunked(layer), dirs.target);
    assert.equal(await fs.readFile(path.join(dirs.target, 'etc/passwd'), 'utf8'), 'root:x:0:0::/root:/bin/sh\n');
    assert.equal(await fs.readFile(path.join(dirs.target, 'etc/group'), 'utf8'), 'root:x:0:\n');
    await assertCanaryIntact(dirs);
  });

  it('sniffs gzip, zstd and plain tars and hashes the uncompressed tar', async (t) => {
    const layer = await makeTar([{ name: 'a/b', body: 'compressed '.repeat(1000) }]);
    const sources: [LayerCompression, Buffer][] = [
      ['none', layer],
      ['gzip', zlib.gzipSync(layer)],
    ];
    if (hasZstd) sources.push(['zstd', execFileSync('zstd', ['-q', '-c', '-3'], { input: layer })]);
    else t.diagnostic('zstd CLI not installed: zstd sample skipped (apt-get install -y zstd)');
    for (const [name, blob] of sources) {
      for (const compression of ['auto', name] as const) {
        const { target } = await fresh();
        const result = await unpackLayer(chunked(blob, 5), target, { compression });
        assert.equal(result.diffId, sha256(layer), `${name} (${compression})`);
        assert.equal(result.size, layer.length);
        assert.equal(await fs.readFile(path.join(target, 'a/b'), 'utf8'), 'compressed '.repeat(1000));
      }
    }
  });

  it('trusts the magic bytes over a wrong announced compression (mislabelled layers exist)', async () => {
    const layer = await makeTar([{ name: 'f', body: 'plain' }]);
    const { target } = await fresh();
    const result = await unpackLayer(chunked(layer), target, { compression: 'gzip' });
    assert.equal(result.diffId, sha256(layer));
    assert.equal(await fs.readFile(path.join(target, 'f'), 'utf8'), 'plain');
  });

  it('accepts a zstd blob of several frames, opening with a skippable frame', async (t) => {
    if (!hasZstd) return t.skip('zstd CLI not installed (apt-get install -y zstd)');
    const layer = await makeTar([
      { name: 'one', body: Buffer.alloc(300_000, 1) },
      { name: 'two', body: Buffer.alloc(300_000, 2) },
    ]);
    const half = 512 * 300;
    const skippable = Buffer.from([0x5a, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
    const blob = Buffer.concat([
      skippable,
      execFileSync('zstd', ['-q', '-c'], { input: layer.subarray(0, half) }),
      execFileSync('zstd', ['-q', '-c'], { input: layer.subarray(half) }),
    ]);
    const { target } = await fresh();
    const result = await unpackLayer(Readable.from([blob]), target);
    assert.equal(result.diffId, sha256(layer));
    assert.deepEqual(await fs.readFile(path.join(target, 'two')), Buffer.alloc(300_000, 2));
  });

  it('reports progress as bytes flow', async () => {
    const { target } = await fresh();
    const layer = await makeTar([{ name: 'f', body: Buffer.alloc(200_000) }, { name: 'g', body: 'g' }]);
    const events: { bytes: number; entries: number }[] = [];
    await unpackLayer(chunked(layer, 4096), target, { onProgress: (e) => events.push({ ...e }) });
    assert.ok(events.length > 10);
    for (let i = 1; i < events.length; i++) assert.ok(events[i]!.bytes >= events[i - 1]!.bytes);
    assert.equal(events.at(-1)!.bytes, layer.length);
  });

  it('lets a later entry replace an earlier one of the same name (file, dir, symlink)', async () => {
    const { target } = await fresh();
    const layer = await makeTar([
      { name: 'x', body: 'first' },
      { name: 'x', body: 'second' },
      { name: 'd/child', body: 'gone with d' },
      { name: 'd', body: 'now a file' },
      { name: 's', type: 'symlink', linkname: 'x' },
      { name: 's/', type: 'directory' },
    ]);
    await unpackLayer(chunked(layer), target);
    assert.equal(await fs.readFile(path.join(target, 'x'), 'utf8'), 'second');
    assert.equal(await fs.readFile(path.join(target, 'd'), 'utf8'), 'now a file');
    assert.ok((await fs.lstat(path.join(target, 's'))).isDirectory());
  });

  it('replaces a symlink by a later regular file without writing through it', async () => {
    const dirs = await fresh();
    const layer = await makeTar([
      { name: 'passwd', type: 'symlink', linkname: path.join(dirs.canary, 'keep') },
      { name: 'passwd', body: 'mine' },
    ]);
    await unpackLayer(chunked(layer), dirs.target);
    const st = await fs.lstat(path.join(dirs.target, 'passwd'));
    assert.ok(st.isFile());
    assert.equal(await fs.readFile(path.join(dirs.target, 'passwd'), 'utf8'), 'mine');
    await assertCanaryIntact(dirs);
  });

  it('links a hard link to a symlink that points outside as the symlink itself, never its target', async () => {
    // link(2) does not follow symlinks: the result is a second name of the symlink, which is harmless.
    const dirs = await fresh();
    const layer = await makeTar([
      { name: 'out', type: 'symlink', linkname: path.join(dirs.canary, 'keep') },
      { name: 'out-hard', type: 'link', linkname: 'out' },
    ]);
    await unpackLayer(chunked(layer), dirs.target);
    assert.ok((await fs.lstat(path.join(dirs.target, 'out-hard'))).isSymbolicLink());
    assert.equal((await fs.lstat(path.join(dirs.canary, 'keep'))).nlink, 1);
    await assertCanaryIntact(dirs);
  });

  it('refuses a hard link to an entry the layer does not have', async () => {
    const dirs = await fresh();
    const layer = await makeTar([{ name: 'h', type: 'link', linkname: 'missing' }]);
    await assert.rejects(unpackLayer(chunked(layer), dirs.target), (e: unknown) => e instanceof InvalidArgumentError && /`h`/.test(e.message));
  });

  it('refuses unknown entry types (GNU sparse files) instead of dropping them', async () => {
    const { target } = await fresh();
    const layer = await makeTar([{ name: 'f', body: 'x' }]);
    layer[156] = 'S'.charCodeAt(0);
    setChecksum(layer.subarray(0, 512));
    await assert.rejects(unpackLayer(chunked(layer), target), InvalidArgumentError);
  });

  it('fails with InvalidArgumentError on a corrupt gzip stream and on a truncated tar', async () => {
    const layer = await makeTar([{ name: 'f', body: Buffer.alloc(10_000, 7) }]);
    const gz = zlib.gzipSync(layer);
    gz[gz.length >> 1] ^= 0xff;
    await assert.rejects(unpackLayer(chunked(gz), (await fresh()).target), InvalidArgumentError);
    await assert.rejects(unpackLayer(chunked(layer.subarray(0, 3000)), (await fresh()).target), InvalidArgumentError);
    await assert.rejects(unpackLayer(chunked(Buffer.from('not a tar at all, clearly'.repeat(40))), (await fresh()).target), InvalidArgumentError);
  });

  it('fails with NotFoundError when the target does not exist', async () => {
    const layer = await makeTar([{ name: 'f', body: 'x' }]);
    await assert.rejects(unpackLayer(chunked(layer), path.join(base, 'no-such-dir')), NotFoundError);
  });

  it('stops with AbortError when the signal aborts, before or during the stream', async () => {
    const layer = await makeTar([{ name: 'f', body: 'x' }]);
    await assert.rejects(unpackLayer(chunked(layer), (await fresh()).target, { signal: AbortSignal.abort() }), AbortError);

    const controller = new AbortController();
    let destroyed = false;
    const slow = new Readable({
      read() {
        // yields the first block, then hangs
      },
      destroy(err, cb) {
        destroyed = true;
        cb(err);
      },
    });
    slow.push(zlib.gzipSync(layer).subarray(0, 20));
    const running = unpackLayer(slow, (await fresh()).target, { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(running, AbortError);
    assert.ok(destroyed, 'the source stream is destroyed');
  });

  it('produces the same tree as GNU tar for an archive GNU tar wrote', async (t) => {
    if (!hasGnuTar) return t.skip('GNU tar not installed');
    const src = path.join(base, `gnu-src-${++counter}`);
    await fs.mkdir(path.join(src, 'a/b/c'), { recursive: true });
    await fs.writeFile(path.join(src, 'a/b/c/file'), 'content');
    await fs.writeFile(path.join(src, 'a/exec'), '#!/bin/sh\n', { mode: 0o755 });
    await fs.symlink('b/c/file', path.join(src, 'a/sym'));
    await fs.link(path.join(src, 'a/b/c/file'), path.join(src, 'a/hard'));
    await fs.writeFile(path.join(src, `a/${'n'.repeat(150)}`), 'long name');
    await fs.chmod(path.join(src, 'a/b'), 0o700);
    const blob = execFileSync('tar', ['-czf', '-', '--format=gnu', '-C', src, '.']);
    const ours = (await fresh()).target;
    const theirs = (await fresh()).target;
    await unpackLayer(Readable.from([blob]), ours, { rootless: !isRoot });
    execFileSync('tar', ['-xzf', '-', '-C', theirs], { input: blob });
    const list = (dir: string): string =>
      execFileSync('find', ['.', '-printf', '%p %y %m %U %G %s %T@ %l %n\n'], { cwd: dir }).toString().split('\n').sort().join('\n');
    assert.equal(list(ours), list(theirs));
  });
});

// ------------------------------------------------------------------ hostile layers

describe('unpackLayer refuses hostile layers (rule 7: a layer cannot write outside its snapshot)', () => {
  /** Unpacks a crafted layer; asserts an UnsafeContentError naming `entry`, and nothing written outside. */
  async function refuses(entries: (dirs: { canary: string }) => Entry[], entry: string): Promise<void> {
    const dirs = await fresh();
    const layer = await makeTar(entries(dirs));
    await assert.rejects(unpackLayer(chunked(layer), dirs.target, { rootless: true }), (error: unknown) => {
      assert.ok(error instanceof UnsafeContentError, `expected UnsafeContentError, got ${String(error)}`);
      assert.ok(error.message.includes(`\`${entry}\``), `message names the entry \`${entry}\`: ${error.message}`);
      return true;
    });
    await assertCanaryIntact(dirs);
  }

  it('refuses `../evil` (path traversal)', async () => {
    await refuses(() => [{ name: '../evil', body: 'x' }], '../evil');
  });

  it('refuses `a/../../evil` (traversal hidden behind a real component)', async () => {
    await refuses(() => [{ name: 'a/', type: 'directory' }, { name: 'a/../../evil', body: 'x' }], 'a/../../evil');
  });

  it('refuses writing through a symlink to outside (zip-slip class)', async () => {
    await refuses(
      (d) => [
        { name: 'link', type: 'symlink', linkname: d.canary },
        { name: 'link/evil', body: 'x' },
      ],
      'link/evil',
    );
  });

  it('refuses writing through an absolute symlink (`etc -> /etc`, then `etc/passwd`)', async () => {
    await refuses(
      (d) => [
        { name: 'etc', type: 'symlink', linkname: d.canary },
        { name: 'etc/keep', body: 'overwritten' },
      ],
      'etc/keep',
    );
  });

  it('refuses climbing with a chain of relative symlinks (`up -> ..`, then `up/up/evil`)', async () => {
    await refuses(
      () => [
        { name: 'up', type: 'symlink', linkname: '..' },
        { name: 'up/up/evil', body: 'x' },
      ],
      'up/up/evil',
    );
  });

  it('refuses creating a directory through a symlink', async () => {
    await refuses(
      (d) => [
        { name: 'link', type: 'symlink', linkname: d.canary },
        { name: 'link/sub/', type: 'directory' },
      ],
      'link/sub/',
    );
  });

  it('refuses a hard link to `../../etc/passwd` (hard link escape)', async () => {
    await refuses(() => [{ name: 'passwd', type: 'link', linkname: '../../etc/passwd' }], 'passwd');
  });

  it('refuses a hard link whose target path goes through a symlink to outside', async () => {
    await refuses(
      (d) => [
        { name: 'link', type: 'symlink', linkname: d.canary },
        { name: 'stolen', type: 'link', linkname: 'link/keep' },
      ],
      'stolen',
    );
  });

  it('refuses a hard link placed through a symlink', async () => {
    await refuses(
      (d) => [
        { name: 'f', body: 'x' },
        { name: 'link', type: 'symlink', linkname: d.canary },
        { name: 'link/evil', type: 'link', linkname: 'f' },
      ],
      'link/evil',
    );
  });

  it('refuses a whiteout through a symlink', async () => {
    await refuses(
      (d) => [
        { name: 'link', type: 'symlink', linkname: d.canary },
        { name: 'link/.wh.keep', body: '' },
      ],
      'link/.wh.keep',
    );
  });

  it('refuses a whiteout of `..`', async () => {
    await refuses(() => [{ name: 'a/.wh...', body: '' }], 'a/.wh...');
  });

  it('refuses an entry name with a NUL byte (truncation tricks)', async () => {
    await refuses(() => [{ name: 'placeholder', body: 'x', rawPax: [['path', 'ok\0/../../evil']] }], 'ok\\x00/../../evil');
  });

  it('refuses a symlink target with a NUL byte', async () => {
    await refuses(() => [{ name: 'l', type: 'symlink', linkname: 'x', rawPax: [['linkpath', 'a\0b']] }], 'l');
  });

  it('refuses a layer whose device node is placed through a symlink', async () => {
    await refuses(
      (d) => [
        { name: 'link', type: 'symlink', linkname: d.canary },
        { name: 'link/fifo', type: 'fifo' },
      ],
      'link/fifo',
    );
  });

  it('throws a DocklessError, not a raw fs error, when a parent is a regular file', async () => {
    const { target } = await fresh();
    const layer = await makeTar([{ name: 'f', body: 'x' }, { name: 'f/g', body: 'y' }]);
    await assert.rejects(unpackLayer(chunked(layer), target), (e: unknown) => e instanceof DocklessError && /`f\/g`/.test(e.message));
  });
});

describe('unpackLayer on the calling thread and on an unpack thread', () => {
  // Whiteouts are made when the layer ends, so their times are not the tar's.
  const listing = (dir: string): string =>
    execFileSync('find', ['.', '-printf', '%p %y %m %s %T@ %l %n\n'], { cwd: dir })
      .toString()
      .split('\n')
      .map((line) => line.split(' '))
      .map((fields) => (fields[1] === 'c' ? [...fields.slice(0, 4), '-', ...fields.slice(5)] : fields).join(' '))
      .sort()
      .join('\n');
  const openFds = async (): Promise<number> => (await fs.readdir('/proc/self/fd')).length;

  it('writes the same tree and diffID on either thread', async () => {
    const layer = await makeTar([
      { name: './', type: 'directory', mode: 0o755 },
      { name: 'etc/', type: 'directory', mode: 0o750 },
      { name: 'etc/hosts', body: 'x\n', mode: 0o600 },
      { name: 'bin/', type: 'directory' },
      { name: 'gone/', type: 'directory' },
      { name: 'bin/big', body: Buffer.alloc(5 * 1024 * 1024 + 3, 'b') },
      { name: 'bin/link', type: 'symlink', linkname: 'big' },
      { name: 'bin/hard', type: 'link', linkname: 'bin/big' },
      { name: 'ro/', type: 'directory', mode: 0o555 },
      { name: 'ro/in', body: 'y' },
      { name: `gone/${WHITEOUT_PREFIX}old`, body: '' },
    ]);
    const gz = zlib.gzipSync(layer);
    const main = await fresh();
    const worker = await fresh();
    const onMain = await unpackLayer(chunked(gz, 64 * 1024), main.target, { thread: 'main', rootless: true });
    const onWorker = await unpackLayer(chunked(gz, 64 * 1024), worker.target, { thread: 'worker', rootless: true });
    assert.deepEqual(onWorker, onMain);
    assert.equal(onMain.diffId, sha256(layer));
    assert.equal(listing(worker.target), listing(main.target));
    for (const dirs of [main, worker]) await fs.chmod(path.join(dirs.target, 'ro'), 0o755);
  });

  it('writes the same tree through the helper as on the calling thread, across several record batches', async () => {
    // The helper's file records are written field by field into its batches: modes, sizes, whole and
    // sub-second mtimes, UTF-8 names, and enough long names that records fall on batch boundaries.
    const entries: Entry[] = [{ name: 'd/', type: 'directory', mode: 0o2775 }];
    const mtimes = [0, 1, 7, 8, 9, 10, 1_600_000_000, 2_147_483_647];
    for (let i = 0; i < 2600; i++) {
      entries.push({
        name: `d/${'n'.repeat(90)}-${i}-é`,
        body: 'z'.repeat(i % 37),
        mode: [0o644, 0o600, 0o4755, 0o7777, 0o1, 0o10][i % 6]!,
        mtime: new Date(mtimes[i % mtimes.length]! * 1000),
      });
    }
    entries.push({ name: 'sub', body: 'x', rawPax: [['mtime', '1600000000.25']] });
    entries.push({ name: 'big', body: Buffer.alloc(300 * 1024 + 5, 'b'), mode: 0o640 });
    const layer = await makeTar(entries);
    const main = await fresh();
    const helper = await fresh();
    const onMain = await unpackLayer(chunked(layer, 64 * 1024), main.target, { thread: 'main', rootless: true });
    // In one chunk: the records are sent when a chunk is parsed, so only then do they fill whole batches.
    const onHelper = await unpackLayer(chunked(layer, layer.length), helper.target, { thread: 'helper', rootless: true });
    assert.deepEqual(onHelper, onMain);
    // The root is not in the tar: its time is the unpack's.
    const entriesOf = (dir: string): string => listing(dir).replace(/^\. d .*\n/m, '');
    assert.equal(entriesOf(helper.target), entriesOf(main.target));
    assert.match(entriesOf(helper.target), /\.\/sub f 644 1 1600000000\.2500000000 /);
  });

  it('sets the file times GNU tar sets, on every thread, from header and PAX times alike', { skip: !hasGnuTar && 'needs GNU tar' }, async () => {
    // Times were one double: before 1970 Node's utimes made it the current time, the helper's record
    // rounded a PAX time's nanoseconds (.987654209 for .987654321), and a negative base-256 header
    // time (GNU format) was read one second late. Past 2038 is here too: a 32-bit value cannot hold it.
    const src = path.join((await fresh()).target, 'src');
    await fs.mkdir(path.join(src, 'd/sub'), { recursive: true });
    await fs.mkdir(path.join(src, 'old'));
    await fs.writeFile(path.join(src, 'd/f'), 'x');
    await fs.writeFile(path.join(src, 'late'), 'y');
    await fs.writeFile(path.join(src, 'epoch'), 'z');
    await fs.symlink('f', path.join(src, 'd/s'));
    await fs.symlink('missing', path.join(src, 'old/s'));
    await fs.link(path.join(src, 'd/f'), path.join(src, 'd/h'));
    const touch = (at: string, ...files: string[]): void => void execFileSync('touch', ['-h', '-d', `@${at}`, ...files], { cwd: src });
    touch('1600000000.987654321', 'd/f');
    touch('-86400.5', 'old', 'old/s');
    touch('4000000000', 'late', 'd/s');
    touch('0', 'epoch');
    touch('5000000000.25', 'd');
    touch('-2.000000001', 'd/sub');
    // GNU tar's own listing: find's %T@ prints -86400.5 as -86401.5.
    const times = (dir: string): string => {
      const names = execFileSync('find', ['.', '-mindepth', '1', '-print0'], { cwd: dir }).toString().split('\0').filter(Boolean);
      return execFileSync('stat', ['-c', '%n %F %.9Y', ...names], { cwd: dir }).toString().trim().split('\n').sort().join('\n');
    };
    for (const format of ['gnu', 'posix']) {
      const layer = execFileSync('tar', [`--format=${format}`, '-cf', '-', '-C', src, 'd', 'old', 'late', 'epoch']);
      const byTar = (await fresh()).target;
      execFileSync('tar', ['-xf', '-', '-C', byTar], { input: layer, stdio: ['pipe', 'ignore', 'ignore'] });
      const expected = times(byTar);
      if (format === 'posix') assert.match(expected, /\.\/d\/f regular file 1600000000\.987654321\n/);
      // GNU format: whole seconds, towards minus infinity.
      assert.match(expected, format === 'posix' ? /\.\/old directory -86400\.500000000\n/ : /\.\/old directory -86401\.000000000\n/);
      // Without a helper, Node's utimes sets what it can: microseconds (libuv's choice), towards minus infinity.
      const micros = expected.replaceAll('.987654321', '.987654000').replace('-2.000000001', '-2.000001000');
      for (const thread of ['main', 'worker', 'helper'] as const) {
        const { target } = await fresh();
        await unpackLayer(chunked(layer, 4096), target, { thread, rootless: true });
        assert.equal(times(target), hasHelper ? expected : micros, `${format} layer on the ${thread} thread`);
      }
      const { target } = await fresh();
      await unpackLayer(chunked(layer, 4096), target, { thread: 'main', rootless: true, helperPath: path.join(base, 'no-helper') });
      assert.equal(times(target), micros, `${format} layer with no helper`);
    }
  });

  it('reports an unpack thread failure with its class, path and errno code, as the calling thread does', async () => {
    const hostile = await makeTar([{ name: 'link', type: 'symlink', linkname: '/etc' }, { name: 'link/passwd', body: 'x' }]);
    const notADir = await makeTar([{ name: 'f', body: 'x' }, { name: 'f/g', body: 'y' }]);
    for (const [layer, Class] of [
      [hostile, UnsafeContentError],
      [notADir, DocklessError],
    ] as const) {
      const errors: unknown[] = [];
      for (const thread of ['main', 'worker'] as const) {
        errors.push(await unpackLayer(chunked(layer), (await fresh()).target, { thread, rootless: true }).then(() => undefined, (e: unknown) => e));
      }
      const [onMain, onWorker] = errors as [DocklessError, DocklessError];
      assert.ok(onWorker instanceof Class, `expected ${Class.name}, got ${String(onWorker)}`);
      assert.equal(onWorker.constructor, onMain.constructor);
      assert.equal(onWorker.code, onMain.code);
      assert.equal(onWorker.message, onMain.message);
      assert.equal(onWorker.path, onMain.path);
      assert.equal((onWorker as { errnoCode?: string }).errnoCode, (onMain as { errnoCode?: string }).errnoCode);
    }
  });

  it('closes the file a failed layer left open on an unpack thread, which then unpacks the next layer', async () => {
    // The thread outlives the layer: a file descriptor it left open would stay open in the process.
    const good = await makeTar([{ name: 'f', body: 'x' }]);
    await unpackLayer(chunked(good), (await fresh()).target, { thread: 'worker' });
    const before = await openFds();
    const big = await makeTar([{ name: 'big', body: Buffer.alloc(2 * 1024 * 1024, 1) }]);
    const truncated = big.subarray(0, 1024 * 1024);
    await assert.rejects(unpackLayer(chunked(truncated, 64 * 1024), (await fresh()).target, { thread: 'worker' }), InvalidArgumentError);
    assert.equal(await openFds(), before);
    const { target } = await fresh();
    await unpackLayer(chunked(good), target, { thread: 'worker' });
    assert.equal(await fs.readFile(path.join(target, 'f'), 'utf8'), 'x');
  });
});
