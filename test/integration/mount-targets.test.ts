// A hostile image must not redirect the mounts the runtime makes itself (runc's
// CVE-2019-16884 / CVE-2019-19921): a symlink anywhere in such a target is
// refused with an UnsafeContentError naming it. A user's bind still follows
// symlinks, inside the root. Root only.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { ImageStore, Runtime, UnsafeContentError, type ImageConfig } from '../../src/index.js';
import { nativeBuildDir } from '../../src/helper/locate.js';
import type { ContainerSpec } from '../../src/runtime/spec.js';
import { cannotRun, makeWorld, text, type World } from '../fixtures/world.js';

const skip = cannotRun();
if (skip !== undefined) console.log(`# skipping mount-target integration tests: ${skip}`);

let serial = 0;

/** A rootfs of the static probe alone, plus what HOSTILE makes in it. */
async function hostileRootfs(world: World, hostile: (root: string) => Promise<void>): Promise<string> {
  const root = join(world.base, `hostile-${serial++}`);
  await mkdir(join(root, 'bin'), { recursive: true });
  await copyFile(join(nativeBuildDir, 'probe'), join(root, 'bin', 'probe'));
  execFileSync('chmod', ['755', join(root, 'bin', 'probe')]);
  await hostile(root);
  return root;
}

/** Creating the container fails with an UnsafeContentError naming PATH and the symlink LINK. */
async function assertRefused(world: World, spec: ContainerSpec, path: string, link: string): Promise<void> {
  await assert.rejects(world.runtime.create(spec), (error: unknown) => {
    assert.ok(error instanceof UnsafeContentError, String(error));
    assert.equal(error.code, 'ERR_DOCKLESS_UNSAFE_CONTENT');
    assert.equal(error.path, path);
    assert.match(error.message, new RegExp(`\`${link}\` is a symlink in the rootfs`));
    return true;
  });
  // Nothing is left behind: no container, no state.
  assert.deepEqual(await world.runtime.list(), []);
}

describe('symlinks as the targets of the runtime mounts', { skip }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    await world?.dispose();
  });

  it('an image whose /proc is a symlink is refused, and proc is not mounted where it points', async () => {
    const rootfs = await hostileRootfs(world, async (root) => {
      await mkdir(join(root, 'tmp', 'x'), { recursive: true });
      await symlink('/tmp/x', join(root, 'proc'));
    });
    await assertRefused(world, { rootfs, cmd: ['probe', 'ls', '/tmp/x'] }, '/proc', '/proc');
    assert.deepEqual(await readdir(join(rootfs, 'tmp', 'x')), []);
  });

  it('an image whose /dev is a dangling symlink is refused, and nothing is created where it points', async () => {
    const rootfs = await hostileRootfs(world, async (root) => {
      await symlink('/x', join(root, 'dev'));
    });
    await assertRefused(world, { rootfs, cmd: ['probe', 'ls', '/x'] }, '/dev', '/dev');
  });

  it('an image whose /sys is a symlink to /proc is refused (sysfs would hide the container proc)', async () => {
    const rootfs = await hostileRootfs(world, async (root) => {
      await mkdir(join(root, 'proc'));
      await symlink('proc', join(root, 'sys'));
    });
    await assertRefused(world, { rootfs, cmd: ['probe', 'ls', '/proc'] }, '/sys', '/sys');
  });

  it('an image whose /etc/hostname points at /etc/shadow is refused', async () => {
    const rootfs = await hostileRootfs(world, async (root) => {
      await mkdir(join(root, 'etc'));
      await writeFile(join(root, 'etc', 'shadow'), 'root:secret:1::::::\n', { mode: 0o600 });
      await symlink('/etc/shadow', join(root, 'etc', 'hostname'));
    });
    await assertRefused(world, { rootfs, cmd: ['probe', 'cat', '/etc/shadow'] }, '/etc/hostname', '/etc/hostname');
  });

  it('a symlink in a parent of a target is refused too: /etc -> /x for /etc/hosts', async () => {
    const rootfs = await hostileRootfs(world, async (root) => {
      await mkdir(join(root, 'x'));
      await symlink('/x', join(root, 'etc'));
    });
    // /etc/hostname is the first of the /etc mounts; the symlink named is the parent.
    await assertRefused(world, { rootfs, cmd: ['probe', 'ls', '/x'] }, '/etc/hostname', '/etc');
    assert.deepEqual(await readdir(join(rootfs, 'x')), []);
  });

  it('a masked path that is a symlink is refused, not followed: the mask cannot be moved onto /tmp', async () => {
    // Only a bind can put a symlink under /sys (sysfs itself is the kernel's): here one
    // whose directory holds `powercap -> /tmp`, over /sys/devices/virtual.
    const rootfs = await hostileRootfs(world, async (root) => {
      await mkdir(join(root, 'tmp'));
      await writeFile(join(root, 'tmp', 'kept'), 'kept\n');
    });
    const virtual = join(world.base, `virtual-${serial++}`);
    await mkdir(virtual);
    await symlink('/tmp', join(virtual, 'powercap'));
    await assertRefused(
      world,
      { rootfs, cmd: ['probe', 'ls', '/tmp'], mounts: [{ type: 'bind', source: virtual, target: '/sys/devices/virtual' }] },
      '/sys/devices/virtual/powercap',
      '/sys/devices/virtual/powercap',
    );
  });

  it('an image layer with /proc as a symlink is refused', async () => {
    const store = await ImageStore.open({ root: join(world.base, 'store') });
    const runtime = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir, store });
    const dir = await hostileRootfs(world, async (root) => {
      await mkdir(join(root, 'tmp', 'x'), { recursive: true });
      await symlink('tmp/x', join(root, 'proc'));
    });
    const tar = execFileSync('tar', ['-C', dir, '--numeric-owner', '-cf', '-', '.']);
    const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
    const layer = await store.putBlob(gzipSync(tar), { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' });
    const config = {
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['probe', 'ls', '/tmp/x'] },
      rootfs: { type: 'layers', diff_ids: [diffId] },
    } as ImageConfig;
    const manifest = await store.putImage({ config, layers: [{ descriptor: layer, diffId }] });
    await store.tag(manifest.digest, 'example.test/proc-link:1');
    await assert.rejects(runtime.create({ image: 'example.test/proc-link:1' }), (error: unknown) => {
      assert.ok(error instanceof UnsafeContentError, String(error));
      assert.equal(error.path, '/proc');
      return true;
    });
  });

  it('an image whose /etc/hostname is a dangling symlink is refused, and nothing is created where it points', async () => {
    const rootfs = await hostileRootfs(world, async (root) => {
      await mkdir(join(root, 'etc'));
      await symlink('/made/hostname', join(root, 'etc', 'hostname'));
    });
    await assertRefused(world, { rootfs, cmd: ['probe', 'ls', '/'] }, '/etc/hostname', '/etc/hostname');
    assert.ok(!(await readdir(rootfs)).includes('made'));
  });

  it('an image of the probe alone gets every target made (/etc and its files, /dev/pts, the cgroup hierarchies)', async () => {
    const rootfs = await hostileRootfs(world, async () => {});
    const c = await world.runtime.create({ rootfs, cmd: ['probe', 'cat', '/etc/hostname'] });
    const out = text(c.stdout);
    await c.start();
    const [stdout, exit] = await Promise.all([out, c.wait()]);
    await c.remove();
    assert.equal(exit.exitCode, 0, stdout);
    assert.ok(stdout.startsWith(`${c.id.slice(0, 12)}\n`), stdout);
  });

  it("a user's bind still follows a symlink inside the root", async () => {
    const rootfs = await hostileRootfs(world, async (root) => {
      await mkdir(join(root, 'srv', 'data'), { recursive: true });
      await symlink('/srv/data', join(root, 'data'));
    });
    const source = join(world.base, `bind-${serial++}`);
    await mkdir(source);
    await writeFile(join(source, 'file'), 'through the link\n');
    const c = await world.runtime.create({
      rootfs,
      cmd: ['probe', 'cat', '/srv/data/file'],
      mounts: [{ type: 'bind', source, target: '/data', readonly: true }],
    });
    const out = text(c.stdout);
    await c.start();
    const [stdout, exit] = await Promise.all([out, c.wait()]);
    await c.remove();
    assert.equal(exit.exitCode, 0);
    assert.equal(stdout, 'through the link\n');
  });
});
