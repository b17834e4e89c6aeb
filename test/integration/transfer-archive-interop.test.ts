/**
 * Image archives against the tools people use: an image we export is copied
 * by skopeo and unpacked by umoci with the same files as our snapshots; an
 * image skopeo writes (as an OCI layout, as a docker-archive) is imported and
 * run by us. The image is a host rootfs plus a layer with a whiteout and an
 * opaque directory, so that whiteouts are checked end to end.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, readlink, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import tar from 'tar-stream';
import { Runtime } from '../../src/runtime/runtime.js';
import { rootfsFromHost } from '../../src/runtime/host-rootfs.js';
import { ImageStore } from '../../src/image-store.js';
import { exportImage, importImage } from '../../src/transfer/archive/index.js';
import { cannotRun, text } from '../fixtures/world.js';

const run = promisify(execFile);

async function installed(tool: string): Promise<boolean> {
  try {
    await run(tool, ['--version']);
    return true;
  } catch {
    return false;
  }
}

function sha256(data: Uint8Array | string): `sha256:${string}` {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** A layer tar of a directory, packed with tar-stream: owners, modes, symlinks and hard links kept. */
async function packDirectory(root: string): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => chunks.push(c as Buffer));
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  const inodes = new Map<string, string>();
  const mtime = new Date('2024-01-01T00:00:00Z');
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const st = await lstat(join(root, path));
      const common = { name: path, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime };
      if (st.isDirectory()) {
        pack.entry({ ...common, type: 'directory' });
        await walk(path);
      } else if (st.isSymbolicLink()) {
        pack.entry({ ...common, type: 'symlink', linkname: await readlink(join(root, path)) });
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? inodes.get(key) : undefined;
        if (first !== undefined) {
          pack.entry({ ...common, type: 'link', linkname: first });
        } else {
          inodes.set(key, path);
          pack.entry(common, await readFile(join(root, path)));
        }
      }
    }
  };
  await walk('');
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A tar of the given entries (directories end in `/`; `null` content is an empty file). */
async function tarOf(entries: Array<[string, string | null]>): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve) => pack.on('end', () => resolve()));
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const mtime = new Date('2024-01-01T00:00:00Z');
  for (const [name, content] of entries) {
    if (name.endsWith('/')) pack.entry({ name, type: 'directory', mode: 0o755, mtime });
    else pack.entry({ name, mode: 0o644, mtime }, content ?? '');
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Every path of a tar stream: type, permission bits, owner, and content digest or link target. */
async function treeOfTar(stream: NodeJS.ReadableStream): Promise<Map<string, string>> {
  const extract = tar.extract();
  const tree = new Map<string, string>();
  (stream as NodeJS.ReadableStream & { pipe(dest: unknown): void }).pipe(extract);
  for await (const entry of extract) {
    const h = entry.header;
    const name = h.name.replace(/^\.\//, '').replace(/\/$/, '');
    const hash = createHash('sha256');
    for await (const c of entry) hash.update(c as Buffer);
    if (name === '' || name === '.') continue;
    const what = h.type === 'file' ? hash.digest('hex').slice(0, 16) : (h.linkname ?? '');
    tree.set(name, `${h.type} ${(h.mode & 0o7777).toString(8)} ${h.uid}:${h.gid} ${what}`);
  }
  return tree;
}

/** The tree of a directory, as GNU tar reads it (sorted, numeric owners). */
function treeOfDirectory(dir: string): Promise<Map<string, string>> {
  const child = spawn('tar', ['--numeric-owner', '--sort=name', '-C', dir, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return treeOfTar(child.stdout);
}

/**
 * The merged view of an image's snapshots, as a container sees it: the lower
 * dirs stacked by overlayfs in a private mount namespace (so nothing stays
 * mounted), read by GNU tar.
 */
function treeOfSnapshots(lowerDirs: string[], mountpoint: string): Promise<Map<string, string>> {
  const script = 'mount -t overlay overlay -o "lowerdir=$1" "$2" && tar --numeric-owner --sort=name -C "$2" -cf - .';
  const lowers = lowerDirs.length === 1 ? `${lowerDirs[0]}:${lowerDirs[0]}` : lowerDirs.join(':');
  const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', lowers, mountpoint], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return treeOfTar(child.stdout);
}

describe('image archives interop with skopeo and umoci', async () => {
  const tools = { skopeo: await installed('skopeo'), umoci: await installed('umoci') };
  const missing = Object.entries(tools).filter(([, ok]) => !ok).map(([t]) => t);
  const skip =
    missing.length > 0 ? `${missing.join(' and ')} not installed (apt-get install -y skopeo umoci)` : cannotRun();
  if (skip) console.log(`# skipping image archive interop tests: ${skip}`);

  const ref = 'localhost/interop/two:1';
  const expectedOutput = 'made by dockless\nadded by layer two\nc\ngone\n';
  let dir: string;
  let store: ImageStore;

  before(async () => {
    if (skip) return;
    dir = await mkdtemp(join(tmpdir(), 'dockless-archive-interop-'));
    const rootfs = join(dir, 'rootfs');
    await rootfsFromHost(rootfs);
    await writeFile(join(rootfs, 'etc', 'marker'), 'made by dockless\n');
    await writeFile(join(rootfs, 'etc', 'removed-by-layer-two'), 'you should not see me\n');
    await mkdir(join(rootfs, 'opq'));
    await writeFile(join(rootfs, 'opq', 'a'), 'a\n');
    await writeFile(join(rootfs, 'opq', 'b'), 'b\n');
    const base = await packDirectory(rootfs);
    const top = await tarOf([
      ['etc/', null],
      ['etc/.wh.removed-by-layer-two', null],
      ['etc/added-by-layer-two', 'added by layer two\n'],
      ['opq/', null],
      ['opq/.wh..wh..opq', null],
      ['opq/c', 'c\n'],
    ]);
    store = await ImageStore.open({ root: join(dir, 'store') });
    const layers = [];
    for (const layer of [base, top]) {
      const gz = gzipSync(layer);
      const descriptor = await store.putBlob(gz, { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' });
      layers.push({ descriptor, diffId: sha256(layer) });
    }
    const manifest = await store.putImage({
      config: {
        architecture: process.arch === 'x64' ? 'amd64' : process.arch,
        os: 'linux',
        config: {
          Cmd: ['/bin/sh', '-c', 'cat /etc/marker /etc/added-by-layer-two; ls /opq; test -e /etc/removed-by-layer-two || echo gone'],
          Env: ['PATH=/bin:/usr/bin'],
        },
        rootfs: { type: 'layers', diff_ids: [] },
      },
      layers,
    });
    await store.tag(manifest.digest, ref);
  });
  after(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** Runs an image of `imageStore` with its own Cmd; returns its output. */
  async function runImage(imageStore: ImageStore, image: string): Promise<string> {
    const runtime = new Runtime({ root: join(dir, 'runtime'), stateDir: join(dir, 'state'), store: imageStore });
    const container = await runtime.run({ image });
    const [out, exit] = await Promise.all([text(container.stdout), container.wait()]);
    await container.remove();
    assert.equal(exit.exitCode, 0, out);
    return out;
  }

  it('skopeo copies and umoci unpacks an OCI layout we export, with the same files as our snapshots', { skip }, async () => {
    const layout = join(dir, 'exported');
    await exportImage(store, ref, layout, { format: 'oci' });
    const copied = join(dir, 'copied');
    await run('skopeo', ['copy', `oci:${layout}:${ref}`, `oci:${copied}:copy`]);
    const bundle = join(dir, 'bundle');
    await run('umoci', ['unpack', '--image', `${copied}:copy`, bundle]);
    const theirs = await treeOfDirectory(join(bundle, 'rootfs'));

    const snap = await store.snapshot(ref);
    const mountpoint = join(dir, 'mnt');
    await mkdir(mountpoint);
    const ours = await treeOfSnapshots(snap.lowerDirs, mountpoint);
    assert.ok(ours.has('bin/sh') && ours.has('etc/marker'));
    assert.equal(ours.has('etc/removed-by-layer-two'), false);
    assert.deepEqual([...ours.keys()].filter((k) => k.startsWith('opq/')), ['opq/c']);
    assert.deepEqual(theirs, ours);

    // umoci reads our own export, not only skopeo's copy of it.
    const direct = join(dir, 'bundle-direct');
    await run('umoci', ['unpack', '--image', `${layout}:${ref}`, direct]);
    assert.deepEqual(await treeOfDirectory(join(direct, 'rootfs')), ours);
  });

  it('imports and runs an image skopeo wrote as an OCI layout from our docker-archive', { skip }, async () => {
    const archive = join(dir, 'ours-docker.tar');
    await exportImage(store, ref, archive, { format: 'docker-archive' });
    const layout = join(dir, 'from-skopeo-oci');
    await run('skopeo', ['copy', `docker-archive:${archive}`, `oci:${layout}:two`]);
    const target = await ImageStore.open({ root: join(dir, 'store-oci') });
    const imported = await importImage(target, layout, { baseName: 'localhost/from-skopeo' });
    assert.deepEqual(imported.map((i) => i.reference), ['localhost/from-skopeo:two']);
    const [before, after] = await Promise.all([store.inspect(ref), target.inspect('localhost/from-skopeo:two')]);
    assert.deepEqual(after.layers.map((l) => l.diffId), before.layers.map((l) => l.diffId));
    assert.equal(await runImage(target, 'localhost/from-skopeo:two'), expectedOutput);
  });

  it('imports and runs an image skopeo wrote as a docker-archive from our OCI layout', { skip }, async () => {
    const layout = join(dir, 'ours-oci');
    await exportImage(store, ref, layout, { format: 'oci' });
    const archive = join(dir, 'from-skopeo.tar');
    await run('skopeo', ['copy', `oci:${layout}:${ref}`, `docker-archive:${archive}:localhost/from-skopeo:docker`]);
    const target = await ImageStore.open({ root: join(dir, 'store-docker') });
    const imported = await importImage(target, archive);
    assert.deepEqual(imported.map((i) => i.reference), ['localhost/from-skopeo:docker']);
    assert.deepEqual(
      (await target.inspect('localhost/from-skopeo:docker')).layers.map((l) => l.diffId),
      (await store.inspect(ref)).layers.map((l) => l.diffId),
    );
    assert.equal(await runImage(target, 'localhost/from-skopeo:docker'), expectedOutput);
  });

  it('skopeo reads our oci-archive and docker-archive', { skip }, async () => {
    const info = await store.inspect(ref);
    const ociArchive = join(dir, 'ours.oci.tar');
    await exportImage(store, ref, ociArchive, { format: 'oci-archive' });
    const fromOci = JSON.parse((await run('skopeo', ['inspect', `oci-archive:${ociArchive}:${ref}`])).stdout) as {
      Digest: string;
      Layers: string[];
    };
    assert.equal(fromOci.Digest, info.digest);
    assert.deepEqual(fromOci.Layers, info.layers.map((l) => l.digest));
    const dockerArchive = join(dir, 'ours.docker.tar');
    await exportImage(store, ref, dockerArchive);
    const fromDocker = JSON.parse((await run('skopeo', ['inspect', '--config', `docker-archive:${dockerArchive}`])).stdout) as {
      rootfs: { diff_ids: string[] };
    };
    assert.deepEqual(fromDocker.rootfs.diff_ids, info.layers.map((l) => l.diffId));
  });
});
