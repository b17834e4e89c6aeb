/**
 * Interop with skopeo (and umoci) through a real registry: an image pushed
 * by skopeo is pulled and run by us; an image pushed by us is pulled by
 * skopeo, and its files match.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { Runtime } from '../../src/index.js';
import { rootfsFromHost } from '../../src/runtime/host-rootfs.js';
import { ImageStore } from '../../src/index.js';
import { cannotRun, text } from '../fixtures/world.js';
import { installed, registryMissing, sha256, startRegistry, type RegistryFixture } from '../fixtures/registry.js';

const run = promisify(execFile);
const MOTD = 'pushed by one tool, run by another\n';

/** The tar of a directory, by GNU tar (numeric owners, sorted names: reproducible). */
function tarDirectory(dir: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('tar', ['--numeric-owner', '--sort=name', '-C', dir, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`tar exited ${code}: ${stderr}`))));
  });
}

describe('registry interop with skopeo', async () => {
  const missing =
    (await registryMissing()) ?? ((await installed('skopeo')) ? undefined : 'skopeo not installed (apt-get install skopeo)');
  if (missing) console.log(`# skipping registry interop tests: ${missing}`);
  const cannotRunContainers = cannotRun();

  let registry: RegistryFixture;
  let dir: string;
  let source: ImageStore;
  let layerGz: Buffer;
  const localRef = 'localhost/busybox:1';

  before(async () => {
    if (missing) return;
    registry = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), 'dockless-interop-'));
    const rootfs = join(dir, 'rootfs');
    await rootfsFromHost(rootfs);
    await writeFile(join(rootfs, 'etc', 'motd'), MOTD);
    const tar = await tarDirectory(rootfs);
    layerGz = gzipSync(tar);
    source = await ImageStore.open({ root: join(dir, 'source') });
    const layer = await source.putBlob(layerGz, { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' });
    const manifest = await source.putImage({
      config: {
        architecture: process.arch === 'x64' ? 'amd64' : process.arch,
        os: 'linux',
        config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin'] },
        rootfs: { type: 'layers', diff_ids: [] },
      },
      layers: [{ descriptor: layer, diffId: sha256(tar) }],
    });
    await source.tag(manifest.digest, localRef);
  });
  after(async () => {
    await registry?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('pulls and runs an image that skopeo pushed', { skip: missing }, async (t) => {
    await run('skopeo', [
      'copy', '--quiet', '--dest-tls-verify=false',
      `oci:${source.root}:${localRef}`,
      `docker://${registry.host}/skopeo/busybox:1`,
    ]);
    const store = await ImageStore.open({ root: join(dir, 'pulled-from-skopeo') });
    const pulled = await store.pull(`${registry.host}/skopeo/busybox:1`);
    const snap = await store.snapshot(pulled.tag!);
    assert.equal(snap.lowerDirs.length, 1);
    assert.equal(await readFile(join(snap.lowerDirs[0]!, 'etc', 'motd'), 'utf8'), MOTD);
    assert.deepEqual(snap.config.config?.Cmd, ['/bin/sh']);

    if (cannotRunContainers) {
      t.diagnostic(`not run: ${cannotRunContainers}`);
      console.log(`# container part of '${t.name}' skipped: ${cannotRunContainers}`);
      return;
    }
    // A single-layer image: its one snapshot is the whole rootfs.
    const runtime = new Runtime({ root: join(dir, 'rt-root'), stateDir: join(dir, 'rt-state') });
    const box = await runtime.run({ rootfs: snap.lowerDirs[0]!, cmd: ['sh', '-c', 'cat /etc/motd; echo "$((6 * 7))"'] });
    const [stdout, , exit] = await Promise.all([text(box.stdout), text(box.stderr), box.wait()]);
    await box.remove();
    assert.equal(exit.exitCode, 0);
    assert.equal(stdout, `${MOTD}42\n`);
  });

  it('pushes an image that skopeo pulls with the same manifest and files', { skip: missing }, async () => {
    const pushed = await source.push(localRef, { to: `${registry.host}/ours/busybox:1` });
    const layout = join(dir, 'skopeo-layout');
    await run('skopeo', [
      'copy', '--quiet', '--src-tls-verify=false',
      `docker://${registry.host}/ours/busybox:1`,
      `oci:${layout}:busybox`,
    ]);
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    assert.equal(index.manifests[0]?.digest, pushed.digest, 'skopeo kept our manifest as it is');
    const manifest = JSON.parse(await readFile(join(layout, 'blobs', 'sha256', pushed.digest.slice(7)), 'utf8')) as {
      layers: Array<{ digest: string }>;
    };
    const layerPath = join(layout, 'blobs', 'sha256', manifest.layers[0]!.digest.slice(7));
    assert.deepEqual(await readFile(layerPath), layerGz);

    if (!(await installed('umoci'))) {
      console.log('# umoci not installed: files compared through the layer blob only');
      return;
    }
    const bundle = join(dir, 'umoci-bundle');
    await run('umoci', ['unpack', ...(process.getuid?.() === 0 ? [] : ['--rootless']), '--image', `${layout}:busybox`, bundle]);
    assert.equal(await readFile(join(bundle, 'rootfs', 'etc', 'motd'), 'utf8'), MOTD);
    const ours = await source.snapshot(localRef);
    for (const file of ['bin/busybox', 'etc/motd']) {
      const [a, b] = await Promise.all([stat(join(bundle, 'rootfs', file)), stat(join(ours.lowerDirs[0]!, file))]);
      assert.equal(a.size, b.size, file);
      assert.equal(a.mode, b.mode, file);
    }
  });
});
