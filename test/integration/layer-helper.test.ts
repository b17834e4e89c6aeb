// Unpack and diff through the native helper (whiteout devices, xattrs, owners):
// the layer tests that need the helper, and root where they say so.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it, type TestContext } from 'node:test';
import tar from 'tar-stream';
import { diffToTar, isOverlayWhiteout, OPAQUE_WHITEOUT, paxXattrs, unpackLayer } from '../../src/layer/index.js';
import { encodeHeader } from '../../src/layer/tar-header.js';
import { HelperError } from '../../src/errors.js';
import { spawnInUserns } from '../../src/helper/index.js';
import { chunked, gnuTarXattrReader, makeTar, MTIME, parseTar, readXattrs, toBuffer } from '../fixtures/layer-tar.js';

const isRoot = process.getuid?.() === 0;
const hasGnuTar = /GNU tar/.test(spawnSync('tar', ['--version']).stdout?.toString() ?? '');

function needsRoot(t: TestContext): boolean {
  if (!isRoot) {
    t.skip('needs root (ownership, device nodes, trusted.* xattrs)');
    console.log(`# skipped ${t.name}: needs root`);
  }
  return isRoot;
}

function needsGnuTar(t: TestContext): boolean {
  if (!hasGnuTar) {
    t.skip('needs GNU tar (to read xattrs)');
    console.log(`# skipped ${t.name}: needs GNU tar`);
  }
  return hasGnuTar;
}

let base: string;
let counter = 0;
const fresh = async (): Promise<string> => {
  const dir = path.join(base, `dir-${++counter}`);
  await fs.mkdir(dir);
  return dir;
};

before(async () => {
  base = await fs.mkdtemp(path.join(os.tmpdir(), 'dl-it-layer-'));
});
after(async () => {
  await fs.rm(base, { recursive: true, force: true });
});

describe('unpackLayer through the helper', () => {
  it('keeps a file the same layer also whites out (whiteouts only hide lower layers, per the OCI spec)', async (t) => {
    const target = await fresh();
    const layer = await makeTar([
      { name: 'kept', body: 'here' },
      { name: '.wh.kept', body: '' },
      { name: '.wh.later', body: '' },
      { name: 'later', body: 'also here' },
    ]);
    await unpackLayer(chunked(layer), target);
    assert.equal(await fs.readFile(path.join(target, 'kept'), 'utf8'), 'here');
    assert.equal(await fs.readFile(path.join(target, 'later'), 'utf8'), 'also here');
  });

  it('turns `.wh.<name>` into a char device 0:0 and `.wh..wh..opq` into trusted.overlay.opaque', async (t) => {
    if (!needsRoot(t)) return;
    const target = await fresh();
    const layer = await makeTar([
      { name: 'etc/', type: 'directory' },
      { name: 'etc/.wh.shadow', body: '' },
      { name: 'var/cache/', type: 'directory' },
      { name: `var/cache/${OPAQUE_WHITEOUT}`, body: '' },
      { name: 'var/cache/new', body: 'fresh' },
      { name: '.wh.olddir', body: '' },
      { name: 'replaced/x', body: 'x' },
      { name: '.wh.replaced', body: '' },
      { name: '.wh..wh.plnk', type: 'directory' },
    ]);
    const result = await unpackLayer(chunked(layer), target, { rootless: false });
    assert.equal(result.entries, 9);
    const shadow = await fs.lstat(path.join(target, 'etc/shadow'));
    assert.ok(isOverlayWhiteout(shadow), 'etc/shadow is a whiteout');
    assert.ok(isOverlayWhiteout(await fs.lstat(path.join(target, 'olddir'))));
    await assert.rejects(fs.lstat(path.join(target, 'etc/.wh.shadow')), { code: 'ENOENT' });
    await assert.rejects(fs.lstat(path.join(target, 'var/cache', OPAQUE_WHITEOUT)), { code: 'ENOENT' });
    await assert.rejects(fs.lstat(path.join(target, '.wh..wh.plnk')), { code: 'ENOENT' });
    assert.deepEqual((await readXattrs(path.join(target, 'var/cache'))).get('trusted.overlay.opaque'), Buffer.from('y'));
    assert.equal(await fs.readFile(path.join(target, 'var/cache/new'), 'utf8'), 'fresh');
    // `.wh.replaced` with `replaced/` in the same layer: the lower dir is replaced, i.e. this one is opaque.
    assert.deepEqual((await readXattrs(path.join(target, 'replaced'))).get('trusted.overlay.opaque'), Buffer.from('y'));
  });

  it('rootless: opaque dirs get user.overlay.opaque, whiteouts are still 0:0, devices are skipped, ownership is not applied', async (t) => {
    const target = await fresh();
    const layer = await makeTar([
      { name: `d/${OPAQUE_WHITEOUT}`, body: '' },
      { name: 'd/.wh.gone', body: '' },
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'owned', body: 'x', uid: 4242, gid: 4343 },
      { name: 'pipe', type: 'fifo', mode: 0o600 },
    ]);
    await unpackLayer(chunked(layer), target, { rootless: true });
    assert.deepEqual((await readXattrs(path.join(target, 'd'))).get('user.overlay.opaque'), Buffer.from('y'));
    // Linux ≥ 5.8 lets anyone create the whiteout device 0:0.
    assert.ok(isOverlayWhiteout(await fs.lstat(path.join(target, 'd/gone'))));
    await assert.rejects(fs.lstat(path.join(target, 'dev/null')), { code: 'ENOENT' });
    assert.equal((await fs.stat(path.join(target, 'owned'))).uid, process.getuid?.());
    const pipe = await fs.lstat(path.join(target, 'pipe'));
    assert.ok(pipe.isFIFO());
    assert.equal(pipe.mode & 0o7777, 0o600);
  });

  it('as root: keeps ownership, set-user-ID after chown, device nodes, fifos and hard links to them', async (t) => {
    if (!needsRoot(t)) return;
    const target = await fresh();
    const layer = await makeTar([
      { name: 'usr/bin/su', body: 'elf', mode: 0o4755, uid: 0, gid: 0 },
      { name: 'usr/bin/newgrp', body: 'elf', mode: 0o6755, uid: 1000, gid: 1001 },
      { name: 'home/user/', type: 'directory', mode: 0o2750, uid: 1000, gid: 1000 },
      { name: 'home/user/link', type: 'symlink', linkname: '../..', uid: 1000, gid: 1000 },
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/loop0', type: 'block-device', devmajor: 7, devminor: 0, mode: 0o660, gid: 6 },
      { name: 'dev/null2', type: 'link', linkname: 'dev/null' },
      { name: 'run/fifo', type: 'fifo', mode: 0o620, uid: 33, gid: 33 },
    ]);
    await unpackLayer(chunked(layer), target, { rootless: false });
    const su = await fs.stat(path.join(target, 'usr/bin/su'));
    assert.equal(su.mode & 0o7777, 0o4755);
    const newgrp = await fs.stat(path.join(target, 'usr/bin/newgrp'));
    assert.deepEqual([newgrp.uid, newgrp.gid, newgrp.mode & 0o7777], [1000, 1001, 0o6755]);
    const home = await fs.stat(path.join(target, 'home/user'));
    assert.deepEqual([home.uid, home.gid, home.mode & 0o7777], [1000, 1000, 0o2750]);
    const link = await fs.lstat(path.join(target, 'home/user/link'));
    assert.deepEqual([link.uid, link.gid], [1000, 1000]);
    for (const name of ['dev/null', 'dev/null2']) {
      const dev = await fs.lstat(path.join(target, name));
      assert.ok(dev.isCharacterDevice(), name);
      assert.equal(dev.rdev, (1 << 8) | 3);
      assert.equal(dev.mode & 0o7777, 0o666);
      assert.equal(dev.mtime.getTime(), MTIME.getTime());
    }
    const loop = await fs.lstat(path.join(target, 'dev/loop0'));
    assert.ok(loop.isBlockDevice());
    assert.equal(loop.gid, 6);
    const fifo = await fs.lstat(path.join(target, 'run/fifo'));
    assert.ok(fifo.isFIFO());
    assert.deepEqual([fifo.uid, fifo.gid, fifo.mode & 0o7777], [33, 33, 0o620]);
  });

  // A rootless unpack gave every file to the caller: owners inside a rootless container were all root.
  it('in a user namespace: owners become the host ids the maps give them, set-id bits and mtimes survive, unmapped owners stay root\'s', async (t) => {
    if (!needsRoot(t)) return;
    const target = await fresh();
    const sub = 1_600_000_000;
    const map = [{ containerId: 0, hostId: 0, size: 1 }, { containerId: 1, hostId: sub, size: 65536 }];
    const layer = await makeTar([
      { name: 'usr/bin/newgrp', body: 'elf', mode: 0o6755, uid: 1000, gid: 1001 },
      { name: 'home/user/', type: 'directory', mode: 0o2750, uid: 1000, gid: 1000 },
      { name: 'home/user/secret', body: 's', mode: 0o600, uid: 1000, gid: 1000 },
      { name: 'home/user/link', type: 'symlink', linkname: 'secret', uid: 1000, gid: 1000 },
      { name: 'far', body: 'x', mode: 0o644, uid: 100_000, gid: 100_000 },
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'run/fifo', type: 'fifo', mode: 0o620, uid: 33, gid: 33 },
    ]);
    await unpackLayer(chunked(layer), target, { userns: { uidMap: map, gidMap: map } });
    const owner = async (rel: string) => {
      const st = await fs.lstat(path.join(target, rel));
      return [st.uid, st.gid, st.mode & 0o7777];
    };
    assert.deepEqual(await owner('usr/bin/newgrp'), [sub + 999, sub + 1000, 0o6755]);
    assert.deepEqual(await owner('home/user'), [sub + 999, sub + 999, 0o2750]);
    assert.equal((await fs.stat(path.join(target, 'home/user'))).mtime.getTime(), MTIME.getTime());
    assert.deepEqual(await owner('home/user/secret'), [sub + 999, sub + 999, 0o600]);
    assert.deepEqual((await owner('home/user/link')).slice(0, 2), [sub + 999, sub + 999]);
    assert.deepEqual(await owner('far'), [0, 0, 0o644]);
    assert.deepEqual(await owner('run/fifo'), [sub + 32, sub + 32, 0o620]);
    assert.deepEqual(await fs.readdir(path.join(target, 'dev')), []);
  });

  it('userns-exec runs a program as root of the namespace and reports its exit; a failed execve is a HelperError of step exec', async (t) => {
    if (!needsRoot(t)) return;
    const map = [{ containerId: 0, hostId: 0, size: 1 }, { containerId: 1, hostId: 1_600_000_000, size: 65536 }];
    const ran = spawnInUserns({ uidMap: map, gidMap: map }, ['/bin/sh', '-c', 'cat /proc/self/uid_map; id -u; exit 3'], { context: 'test' });
    ran.child.stdin?.end();
    let out = '';
    ran.child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    await ran.exit;
    assert.equal(ran.failure, undefined);
    assert.deepEqual(out.trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number)), [[0, 0, 1], [1, 1_600_000_000, 65536], [0]]);
    assert.deepEqual(ran.statuses.find((s) => s.type === 'exited'), { type: 'exited', code: 3 });
    const missing = spawnInUserns({ uidMap: map, gidMap: map }, ['/no/such/program'], { context: 'test' });
    missing.child.stdin?.end();
    await missing.exit;
    assert.ok(missing.failure instanceof HelperError, String(missing.failure));
    assert.equal(missing.failure.step, 'exec');
    assert.equal(missing.failure.errnoCode, 'ENOENT');
  });

  it('keeps PAX xattrs byte for byte, security.capability included, and drops overlay xattrs from the tar', async (t) => {
    if (!needsRoot(t)) return;
    const target = await fresh();
    // cap_net_raw+ep, v2: bytes above 0x7f that a UTF-8 decoder would mangle.
    const cap = Buffer.from('01000002' + '00200000' + '00000000' + '00000000' + '00000000', 'hex');
    const odd = Buffer.from([0xc3, 0x28, 0x80, 0xff, 0x00, 0x41]);
    const layer = await makeTar([
      {
        name: 'bin/ping',
        body: 'elf',
        mode: 0o755,
        uid: 0,
        gid: 0,
        rawPax: [
          ['SCHILY.xattr.security.capability', cap],
          ['SCHILY.xattr.user.odd', odd],
          ['SCHILY.xattr.trusted.overlay.redirect', '/etc'],
        ],
      },
      { name: 'bin/owned-cap', body: 'elf', uid: 1000, gid: 1000, rawPax: [['SCHILY.xattr.security.capability', cap]] },
    ]);
    await unpackLayer(chunked(layer), target, { rootless: false });
    const xattrs = await readXattrs(path.join(target, 'bin/ping'));
    assert.deepEqual(xattrs.get('security.capability'), cap);
    assert.deepEqual(xattrs.get('user.odd'), odd);
    assert.equal(xattrs.has('trusted.overlay.redirect'), false);
    // chown(2) clears security.capability: it must be set after the owner.
    assert.deepEqual((await readXattrs(path.join(target, 'bin/owned-cap'))).get('security.capability'), cap);
  });
});

describe('diffToTar through the helper', () => {
  it('turns whiteouts and opaque dirs of an upper dir back into .wh. entries (round trip through unpackLayer)', async (t) => {
    if (!needsRoot(t) || !needsGnuTar(t)) return;
    const pack = tar.pack();
    const mtime = new Date('2022-01-01T00:00:00Z');
    const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
    pack.entry({ name: 'etc/', type: 'directory', mtime, mode: 0o755 });
    pack.entry({ name: 'etc/.wh.shadow', mtime, mode: 0o644 }, '');
    pack.entry({ name: 'var/', type: 'directory', mtime, mode: 0o755 });
    pack.entry({ name: 'var/cache/', type: 'directory', mtime, mode: 0o750, uid: 12, gid: 34 });
    pack.entry({ name: 'var/cache/.wh..wh..opq', mtime, mode: 0o644 }, '');
    pack.entry({ name: 'var/cache/new', mtime, mode: 0o644 }, 'new');
    pack.entry({ name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mtime, mode: 0o666 });
    pack.finalize();
    const original = await toBuffer(pack as unknown as Readable);
    const upper = await fresh();
    await unpackLayer(Readable.from([original]), upper, { rootless: false });
    // A binary capability, set through a second layer so that the helper writes it.
    const capLayer = Buffer.concat([
      encodeHeader({ name: 'ping', type: 'file', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 1, xattrs: new Map([['security.capability', cap]]) }),
      Buffer.alloc(1024),
    ]);
    const capDir = await fresh();
    await unpackLayer(Readable.from([capLayer]), capDir, { rootless: false });
    await fs.rename(path.join(capDir, 'ping'), path.join(upper, 'ping'));

    const entries = await parseTar(await toBuffer(diffToTar(upper, { readXattrs: gnuTarXattrReader(upper) })));
    const names = entries.map((e) => e.header.name);
    assert.deepEqual(names, ['dev/', 'dev/null', 'etc/', 'etc/.wh.shadow', 'ping', 'var/', 'var/cache/', 'var/cache/.wh..wh..opq', 'var/cache/new']);
    const byName = new Map(entries.map((e) => [e.header.name, e.header]));
    assert.equal(byName.get('etc/.wh.shadow')!.type, 'file');
    assert.equal(byName.get('etc/.wh.shadow')!.size, 0);
    assert.equal(byName.get('dev/null')!.type, 'character-device');
    assert.deepEqual([byName.get('dev/null')!.devmajor, byName.get('dev/null')!.devminor], [1, 3]);
    assert.deepEqual([byName.get('var/cache/')!.uid, byName.get('var/cache/')!.gid, byName.get('var/cache/')!.mode], [12, 34, 0o750]);
    assert.equal(byName.get('var/cache/')!.pax?.['SCHILY.xattr.trusted.overlay.opaque'], undefined, 'overlay xattrs are not copied');
    assert.deepEqual(paxXattrs(byName.get('ping')!.pax).get('security.capability'), cap);
  });
});
