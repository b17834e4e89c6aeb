import assert from 'node:assert/strict';
import { constants as fsConstants, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../../src/errors.js';
import { readElfInterpreter, rootfsFromHost } from '../../src/runtime/host-rootfs.js';
import { hostBusybox, which } from '../fixtures/host.js';

let base: string;
let counter = 0;
/** A fresh, not yet existing path below the per-file temp dir. */
const fresh = (): string => path.join(base, `rootfs-${++counter}`);

before(async () => {
  base = await fs.mkdtemp(path.join(os.tmpdir(), 'dockless-host-rootfs-'));
});

after(async () => {
  await fs.rm(base, { recursive: true, force: true });
});

/** Asserts `inRootfs` exists in the tree and resolves, through any links, to a file inside it. */
async function assertInside(root: string, inRootfs: string): Promise<void> {
  const full = path.join(root, inRootfs);
  const real = await fs.realpath(full);
  const realRoot = await fs.realpath(root);
  assert.ok(real.startsWith(realRoot + path.sep), `${inRootfs} resolves to ${real}, outside the rootfs`);
  assert.ok((await fs.stat(real)).isFile(), `${inRootfs} is not a file`);
}

async function staleStaging(parent: string): Promise<string[]> {
  return (await fs.readdir(parent)).filter((name) => name.includes('.tmp-'));
}

/** Writes a minimal ELF image: header plus one program header, optionally PT_INTERP. */
function elfImage(opts: { is64: boolean; le: boolean; interp?: string; phoff?: number }): Buffer {
  const { is64, le } = opts;
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const phoff = opts.phoff ?? ehsize;
  const interp = opts.interp === undefined ? undefined : Buffer.from(`${opts.interp}\0`);
  const interpOffset = ehsize + phentsize;
  const buf = Buffer.alloc(interpOffset + (interp?.length ?? 0));
  const u16 = (v: number, o: number): number => (le ? buf.writeUInt16LE(v, o) : buf.writeUInt16BE(v, o));
  const u32 = (v: number, o: number): number => (le ? buf.writeUInt32LE(v, o) : buf.writeUInt32BE(v, o));
  const word = (v: number, o: number): number =>
    is64 ? (le ? buf.writeBigUInt64LE(BigInt(v), o) : buf.writeBigUInt64BE(BigInt(v), o)) : u32(v, o);
  buf.set([0x7f, 0x45, 0x4c, 0x46, is64 ? 2 : 1, le ? 1 : 2, 1], 0);
  word(phoff, is64 ? 32 : 28);
  u16(phentsize, is64 ? 54 : 42);
  u16(1, is64 ? 56 : 44);
  const ph = ehsize;
  u32(interp ? 3 : 1, ph); // PT_INTERP or PT_LOAD
  if (interp) {
    word(interpOffset, ph + (is64 ? 8 : 4));
    word(interp.length, ph + (is64 ? 32 : 16));
    interp.copy(buf, interpOffset);
  }
  return buf;
}

describe('readElfInterpreter', () => {
  test('parses PT_INTERP for each elf class and byte order', async () => {
    const cases = [
      { is64: true, le: true, interp: '/lib64/ld-linux-x86-64.so.2' },
      { is64: false, le: true, interp: '/lib/ld-linux.so.2' },
      { is64: true, le: false, interp: '/lib64/ld64.so.1' },
      { is64: false, le: false, interp: '/lib/ld.so.1' },
    ];
    for (const c of cases) {
      const file = path.join(base, `elf-${c.is64 ? 64 : 32}-${c.le ? 'le' : 'be'}`);
      await fs.writeFile(file, elfImage(c));
      assert.equal(await readElfInterpreter(file), c.interp);
    }
  });

  test('returns null when there is no PT_INTERP (static)', async () => {
    const file = path.join(base, 'elf-static');
    await fs.writeFile(file, elfImage({ is64: true, le: true }));
    assert.equal(await readElfInterpreter(file), null);
  });

  test('rejects non-elf files, scripts and out-of-bounds headers', async () => {
    const text = path.join(base, 'not-elf');
    await fs.writeFile(text, 'hello, world, this is not an executable at all\n');
    await assert.rejects(readElfInterpreter(text), InvalidArgumentError);
    const script = path.join(base, 'script');
    await fs.writeFile(script, '#!/bin/sh\necho hi\n');
    await assert.rejects(readElfInterpreter(script), InvalidArgumentError);
    const truncated = path.join(base, 'elf-truncated');
    await fs.writeFile(truncated, elfImage({ is64: true, le: true, interp: '/x', phoff: 1 << 20 }));
    await assert.rejects(readElfInterpreter(truncated), InvalidArgumentError);
    await assert.rejects(readElfInterpreter(path.join(base, 'missing')), NotFoundError);
  });

  test('finds the interpreter of a host binary', async () => {
    const ls = await which('ls');
    assert.ok(ls, 'ls is on the host');
    const interp = await readElfInterpreter(ls);
    // A static coreutils (rare, but possible) has none; otherwise it is an absolute host path.
    if (interp !== null) await fs.access(interp, fsConstants.X_OK);
  });
});

describe('rootfsFromHost', () => {
  test('copies host binaries with their library closure', async () => {
    const target = fresh();
    const rootfs = await rootfsFromHost(target, { busybox: false });
    assert.equal(rootfs.path, target);
    assert.equal(rootfs.busybox, false);
    assert.ok(rootfs.binaries.includes('/bin/ls'));
    assert.ok(rootfs.binaries.includes('/bin/sh'));
    await assert.rejects(fs.lstat(path.join(target, 'bin', 'busybox')), { code: 'ENOENT' });

    for (const command of rootfs.binaries) {
      const stat = await fs.lstat(path.join(target, command));
      assert.ok(stat.isFile(), `${command} is a regular file`);
    }
    // Copied, not hard-linked: the rootfs must not share inodes with the host.
    const hostLs = (await which('ls'))!;
    const [hostStat, copyStat] = await Promise.all([fs.stat(hostLs), fs.stat(path.join(target, 'bin', 'ls'))]);
    assert.notEqual(copyStat.ino, hostStat.ino);
    assert.equal(copyStat.size, hostStat.size);
    assert.equal(copyStat.mode & 0o777, hostStat.mode & 0o777);

    for (const lib of rootfs.libraries) await assertInside(target, lib);
    const interp = await readElfInterpreter(hostLs);
    if (interp !== null) {
      assert.ok(rootfs.libraries.includes(interp), `${interp} is listed`);
      await assertInside(target, interp);
      assert.ok(
        rootfs.libraries.some((lib) => /\/libc\.so|ld-musl/.test(lib)),
        `a libc is among ${rootfs.libraries.join(', ')}`,
      );
    }
  });

  test('copies a dlopen module at its own host path with the libraries it needs', async (t) => {
    // A server's plugins (PostgreSQL's $libdir/*.so) are found by path at run time, not through /bin.
    const candidates = ['/usr/lib/x86_64-linux-gnu/libssl.so.3', '/usr/lib/aarch64-linux-gnu/libssl.so.3', '/lib/x86_64-linux-gnu/libssl.so.3'];
    const module = (await Promise.all(candidates.map((c) => fs.access(c).then(() => c, () => undefined)))).find((c) => c !== undefined);
    if (module === undefined) return t.skip('no libssl.so.3 on this host to use as a module');
    const target = fresh();
    const result = await rootfsFromHost(target, { binaries: ['true'], busybox: false, modules: [module] });
    const inRootfs = module.replace(/^\/usr\/lib\//, '/lib/');
    assert.ok(result.libraries.includes(inRootfs), `${inRootfs} is listed`);
    await fs.access(path.join(target, module));
    assert.ok(
      result.libraries.some((l) => path.basename(l) === 'libcrypto.so.3'),
      'the library libssl needs (libcrypto) came with it',
    );
    await assert.rejects(rootfsFromHost(fresh(), { binaries: ['true'], modules: ['/nonexistent/x.so'] }), NotFoundError);
    await assert.rejects(rootfsFromHost(fresh(), { binaries: ['true'], modules: ['relative.so'] }), InvalidArgumentError);
  });

  test('creates the skeleton, users and groups', async () => {
    const target = fresh();
    await rootfsFromHost(target, { busybox: false, binaries: ['sh'] });
    const mode = async (p: string): Promise<number> => (await fs.stat(path.join(target, p))).mode & 0o7777;
    assert.equal(await mode('.'), 0o755);
    assert.equal(await mode('tmp'), 0o1777);
    assert.equal(await mode('root'), 0o700);
    for (const dir of ['bin', 'lib', 'etc', 'proc', 'sys', 'dev', 'usr/bin', 'sbin', 'home/dockless']) {
      assert.ok((await fs.stat(path.join(target, dir))).isDirectory(), `${dir} is a directory`);
    }
    assert.equal(await fs.readlink(path.join(target, 'sbin')), 'bin');
    assert.equal(await fs.readlink(path.join(target, 'usr/bin')), '../bin');

    const passwd = (await fs.readFile(path.join(target, 'etc/passwd'), 'utf8')).split('\n');
    assert.ok(passwd.includes('root:x:0:0:root:/root:/bin/sh'));
    assert.ok(passwd.includes('nobody:x:65534:65534:nobody:/nonexistent:/bin/false'));
    assert.ok(passwd.includes('dockless:x:1000:1000::/home/dockless:/bin/sh'));
    const group = (await fs.readFile(path.join(target, 'etc/group'), 'utf8')).split('\n');
    for (const line of ['root:x:0:', 'nogroup:x:65534:', 'dockless:x:1000:', 'wheel:x:10:dockless']) {
      assert.ok(group.includes(line), `group has ${line}`);
    }
    // The runtime provides these; a copy here would hide its bind mounts' absence.
    for (const file of ['hostname', 'hosts', 'resolv.conf']) {
      await assert.rejects(fs.lstat(path.join(target, 'etc', file)), { code: 'ENOENT' });
    }
    if (process.getuid?.() === 0) {
      const home = await fs.stat(path.join(target, 'home/dockless'));
      assert.deepEqual([home.uid, home.gid], [1000, 1000]);
    }
  });

  test('drops setuid and setgid bits', async (t) => {
    const mount = await which('mount');
    if (!mount || ((await fs.stat(mount)).mode & 0o6000) === 0) {
      t.skip(`no setuid mount on this host: ${mount ?? 'mount not in PATH'}`);
      return;
    }
    const target = fresh();
    await rootfsFromHost(target, { busybox: false, binaries: [mount] });
    const mode = (await fs.stat(path.join(target, 'bin/mount'))).mode;
    assert.equal(mode & 0o6000, 0);
    assert.equal(mode & 0o777, (await fs.stat(mount)).mode & 0o777);
  });

  test('refuses a non-empty target unless overwrite is set', async () => {
    const target = fresh();
    await fs.mkdir(target);
    await fs.writeFile(path.join(target, 'marker'), 'old');
    await assert.rejects(rootfsFromHost(target, { busybox: false, binaries: ['sh'] }), AlreadyExistsError);
    assert.equal(await fs.readFile(path.join(target, 'marker'), 'utf8'), 'old');

    await rootfsFromHost(target, { busybox: false, binaries: ['sh'], overwrite: true });
    await assert.rejects(fs.lstat(path.join(target, 'marker')), { code: 'ENOENT' });
    await assertInside(target, '/bin/sh');
    assert.deepEqual(await staleStaging(base), []);
  });

  test('fills an existing empty directory', async () => {
    const target = fresh();
    await fs.mkdir(target);
    const rootfs = await rootfsFromHost(target, { busybox: false, binaries: ['sh'] });
    assert.deepEqual(rootfs.binaries, ['/bin/sh']);
  });

  test('refuses a file at the target path unless overwrite is set', async () => {
    const target = fresh();
    await fs.writeFile(target, 'x');
    await assert.rejects(rootfsFromHost(target, { busybox: false, binaries: ['sh'] }), AlreadyExistsError);
    await rootfsFromHost(target, { busybox: false, binaries: ['sh'], overwrite: true });
    assert.ok((await fs.stat(target)).isDirectory());
  });

  test('reports bad binaries and leaves nothing behind', async () => {
    const target = fresh();
    await assert.rejects(
      rootfsFromHost(target, { busybox: false, binaries: ['sh', 'dockless-no-such-binary'] }),
      NotFoundError,
    );
    await assert.rejects(rootfsFromHost(target, { busybox: false, binaries: ['/no/such/ls'] }), NotFoundError);
    await assert.rejects(rootfsFromHost(target, { busybox: false, binaries: ['bin/ls'] }), InvalidArgumentError);
    await assert.rejects(rootfsFromHost(target, { busybox: false, binaries: ['/etc/passwd'] }), InvalidArgumentError);
    const notElf = path.join(base, 'not-elf-exe');
    await fs.writeFile(notElf, 'plain text', { mode: 0o755 });
    await assert.rejects(rootfsFromHost(target, { busybox: false, binaries: [notElf] }), InvalidArgumentError);
    // Two binaries that would both be /bin/sh.
    const sh = (await which('sh'))!;
    await assert.rejects(rootfsFromHost(target, { busybox: false, binaries: ['sh', sh] }), InvalidArgumentError);
    await assert.rejects(fs.lstat(target), { code: 'ENOENT' });
    assert.deepEqual(await staleStaging(base), []);
  });

  test('copies scripts as they are', async () => {
    const script = path.join(base, 'hello');
    await fs.writeFile(script, '#!/bin/sh\necho hello\n', { mode: 0o755 });
    const target = fresh();
    const rootfs = await rootfsFromHost(target, { busybox: false, binaries: [script] });
    assert.deepEqual(rootfs.binaries, ['/bin/hello']);
    assert.deepEqual(rootfs.libraries, []);
    assert.equal(await fs.readFile(path.join(target, 'bin/hello'), 'utf8'), '#!/bin/sh\necho hello\n');
  });

  test('copies extra files and directories', async () => {
    const src = path.join(base, 'extra');
    await fs.mkdir(path.join(src, 'sub'), { recursive: true });
    await fs.writeFile(path.join(src, 'sub', 'a.txt'), 'a');
    await fs.symlink('sub/a.txt', path.join(src, 'link'));
    const single = path.join(base, 'probe.conf');
    await fs.writeFile(single, 'probe');
    const target = fresh();
    await rootfsFromHost(target, {
      busybox: false,
      binaries: ['sh'],
      files: { [src]: '/opt/extra', [single]: '/etc/probe/probe.conf' },
    });
    assert.equal(await fs.readFile(path.join(target, 'opt/extra/sub/a.txt'), 'utf8'), 'a');
    assert.equal(await fs.readlink(path.join(target, 'opt/extra/link')), 'sub/a.txt');
    assert.equal(await fs.readFile(path.join(target, 'etc/probe/probe.conf'), 'utf8'), 'probe');

    await assert.rejects(
      rootfsFromHost(fresh(), { busybox: false, binaries: ['sh'], files: { [single]: '/etc/../../escape' } }),
      InvalidArgumentError,
    );
    await assert.rejects(
      rootfsFromHost(fresh(), { busybox: false, binaries: ['sh'], files: { [single]: 'etc/relative' } }),
      InvalidArgumentError,
    );
    await assert.rejects(
      rootfsFromHost(fresh(), { busybox: false, binaries: ['sh'], files: { [path.join(base, 'nope')]: '/etc/x' } }),
      NotFoundError,
    );
    assert.deepEqual(await staleStaging(base), []);
  });

  test('uses busybox and its applets when the host has it', async (t) => {
    const busybox = await hostBusybox();
    if (!busybox) {
      t.skip('busybox not installed: apt-get install busybox-static to run this test');
      return;
    }
    const target = fresh();
    const rootfs = await rootfsFromHost(target);
    assert.equal(rootfs.busybox, true);
    assert.ok((await fs.lstat(path.join(target, 'bin/busybox'))).isFile());
    assert.equal(await fs.readlink(path.join(target, 'bin/sh')), 'busybox');
    assert.equal(await fs.readlink(path.join(target, 'bin/ls')), 'busybox');
    assert.ok(rootfs.binaries.includes('/bin/busybox'));
    assert.ok(rootfs.binaries.includes('/bin/sh'));
    assert.ok(rootfs.binaries.length > 50, `${rootfs.binaries.length} commands`);
    if ((await readElfInterpreter(busybox)) === null) {
      assert.deepEqual(rootfs.libraries, []);
    } else {
      for (const lib of rootfs.libraries) await assertInside(target, lib);
    }
  });

  test('an explicitly listed host sh replaces the busybox applet', async (t) => {
    if (!(await hostBusybox())) {
      t.skip('busybox not installed: apt-get install busybox-static to run this test');
      return;
    }
    const target = fresh();
    const rootfs = await rootfsFromHost(target, { binaries: ['sh'] });
    assert.equal(rootfs.busybox, true);
    assert.ok((await fs.lstat(path.join(target, 'bin/sh'))).isFile(), '/bin/sh is the host shell');
    assert.equal(await fs.readlink(path.join(target, 'bin/ls')), 'busybox');
    assert.equal(rootfs.binaries.filter((b) => b === '/bin/sh').length, 1);
    for (const lib of rootfs.libraries) await assertInside(target, lib);
  });
});
