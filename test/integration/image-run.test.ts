import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { ImageStore, InvalidArgumentError, NotFoundError, Runtime, type ImageConfig } from '../../src/index.js';
import { cannotRun, makeWorld, text, type World } from '../fixtures/world.js';

const skip = cannotRun();
if (skip !== undefined) console.log(`# skipping image-run integration tests: ${skip}`);

/** A gzip layer blob made by GNU tar from a directory, with its diffID. */
async function layerFrom(store: ImageStore, dir: string) {
  const tar = execFileSync('tar', ['-C', dir, '--numeric-owner', '-cf', '-', '.'], { maxBuffer: 1 << 30 });
  const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
  const descriptor = await store.putBlob(gzipSync(tar), { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' });
  return { descriptor, diffId };
}

function config(diffIds: string[], extra: Partial<ImageConfig['config']> = {}): ImageConfig {
  return {
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/usr/bin:/bin', 'FROM_IMAGE=yes'], Cmd: ['sh', '-c', 'echo default-cmd; pwd; id -u'], WorkingDir: '/srv', User: 'nobody', ...extra },
    rootfs: { type: 'layers', diff_ids: diffIds },
  } as ImageConfig;
}

describe('runtime with images', { skip }, () => {
  let world: World;
  let store: ImageStore;
  let runtime: Runtime;
  before(async () => {
    world = await makeWorld();
    store = await ImageStore.open({ root: join(world.base, 'store') });
    runtime = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir, store });
    const base = await layerFrom(store, world.rootfs);
    const top = join(world.base, 'top');
    await mkdir(join(top, 'bin'), { recursive: true });
    await mkdir(join(top, 'srv'), { recursive: true });
    await writeFile(join(top, 'bin', '.wh.cat'), '');
    await writeFile(join(top, 'srv', 'hello.txt'), 'from layer two\n');
    const second = await layerFrom(store, top);
    const layers = [base, second];
    const manifest = await store.putImage({ config: config(layers.map((l) => l.diffId)), layers });
    await store.tag(manifest.digest, 'example.test/app:1');
  });
  after(async () => {
    await world?.dispose();
  });

  it('runs an image with its config as defaults: Env, Cmd, WorkingDir, User', async () => {
    const c = await runtime.run({ image: 'example.test/app:1' });
    const [out, exit] = await Promise.all([text(c.stdout), c.wait()]);
    assert.equal(exit.exitCode, 0, out);
    assert.equal(out, 'default-cmd\n/srv\n65534\n');
    assert.equal(c.info().image, 'example.test/app:1');
    await c.remove();
  });

  it('the spec overrides the image config, and layers stack with whiteouts applied', async () => {
    const c = await runtime.run({
      image: 'example.test/app:1',
      cmd: ['sh', '-c', 'echo "$FROM_IMAGE $MINE"; cat srv/hello.txt; test -e /bin/cat && echo cat-present || echo cat-whited-out'],
      env: { MINE: 'mine' },
      cwd: '/',
      user: '0',
    });
    const [out, exit] = await Promise.all([text(c.stdout), c.wait()]);
    assert.equal(exit.exitCode, 0, out);
    assert.equal(out, 'yes mine\nfrom layer two\ncat-whited-out\n');
    await c.remove();
  });

  it('an image of more layers than fit one mount option string still runs', async () => {
    const layers = [await layerFrom(store, world.rootfs)];
    for (let i = 0; i < 60; i++) {
      const dir = join(world.base, `many-${i}`);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, `file-${i}`), String(i));
      layers.push(await layerFrom(store, dir));
    }
    const manifest = await store.putImage({ config: config(layers.map((l) => l.diffId), { User: '', WorkingDir: '', Cmd: ['sh', '-c', 'cat /file-0 /file-59'] }), layers });
    await store.tag(manifest.digest, 'example.test/many:1');
    const c = await runtime.run({ image: 'example.test/many:1' });
    const [out, exit] = await Promise.all([text(c.stdout), c.wait()]);
    assert.equal(exit.exitCode, 0, out);
    assert.equal(out, '059');
    await c.remove();
  });

  it('the image\'s snapshots are leased while the container exists', async () => {
    const c = await runtime.run({ image: 'example.test/app:1', cmd: ['sleep', '100'] });
    assert.ok((await store.leases()).some((l) => l.id === `container-${c.id}`));
    await store.untag('example.test/app:1');
    await store.gc({ gracePeriodMs: 0 });
    assert.equal((await store.check()).length, 0);
    const snapshotDirs = JSON.parse(await readFile(join(runtime.pathsOf(c.id).record), 'utf8')).rootfs as string;
    assert.ok((await readFile(join(snapshotDirs, 'srv', 'hello.txt'), 'utf8')).length > 0, 'leased snapshot was collected');
    await c.remove({ force: true });
    assert.ok(!(await store.leases()).some((l) => l.id === `container-${c.id}`));
  });

  it('bad image input is a typed error', async () => {
    await assert.rejects(runtime.run({ image: 'example.test/missing:1' }), NotFoundError);
    await assert.rejects(runtime.run({ image: 'Bad Ref!' }), InvalidArgumentError);
    await assert.rejects(world.runtime.run({ image: 'example.test/app:1' }), InvalidArgumentError);
    await assert.rejects(runtime.run({ image: 'example.test/app:1', rootfs: world.rootfs }), InvalidArgumentError);
  });
});
