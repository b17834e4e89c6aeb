import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { lstat, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { ImageStore } from '../../src/image-store.js';
import { putSyntheticImage } from '../fixtures/store-images.js';

const run = promisify(execFile);

async function installed(tool: string): Promise<boolean> {
  try {
    await run(tool, ['--version']);
    return true;
  } catch {
    return false;
  }
}

type Tree = Map<string, string>;

/** Every path under `root` with its type, permission bits and content or link target. */
async function readTree(root: string, into: Tree = new Map(), prefix = ''): Promise<Tree> {
  for (const name of await readdir(join(root, prefix))) {
    const rel = prefix === '' ? name : `${prefix}/${name}`;
    const path = join(root, rel);
    const st = await lstat(path);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) {
      into.set(rel, `dir ${mode}`);
      await readTree(root, into, rel);
    } else if (st.isSymbolicLink()) {
      into.set(rel, `symlink -> ${await readlink(path)}`);
    } else {
      into.set(rel, `file ${mode} ${await readFile(path, 'utf8')}`);
    }
  }
  return into;
}

describe('ImageStore interop with skopeo and umoci', async () => {
  const tools = { skopeo: await installed('skopeo'), umoci: await installed('umoci') };
  const missing = Object.entries(tools).filter(([, ok]) => !ok).map(([t]) => t);
  const skip = missing.length > 0 ? `${missing.join(' and ')} not installed (apt-get install -y skopeo umoci)` : false;
  if (skip) console.log(`# skipping store interop tests: ${skip}`);

  let dir: string;
  let store: ImageStore;
  const ref = 'docker.io/library/interop:1';
  let digest: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-store-interop-'));
    store = await ImageStore.open({ root: join(dir, 'store') });
    const { manifest } = await putSyntheticImage(store, [
      {
        'etc/': { type: 'dir' },
        'etc/hello': 'hello from the base\n',
        'bin/': { type: 'dir' },
        'bin/tool': { type: 'file', content: '#!/bin/sh\necho tool\n', mode: 0o755 },
        'bin/link': { type: 'symlink', target: 'tool' },
      },
      { 'etc/': { type: 'dir' }, 'etc/hello': 'hello from the top\n', 'srv/': { type: 'dir', mode: 0o750 }, 'srv/data': 'data' },
    ], { cmd: ['/bin/tool'] });
    digest = manifest.digest;
    await store.tag(digest, ref);
    await store.tag(digest, 'localhost:5000/team/interop:2.0');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('skopeo inspects an image by its full reference', { skip }, async () => {
    for (const name of [ref, 'localhost:5000/team/interop:2.0']) {
      const { stdout } = await run('skopeo', ['inspect', `oci:${store.root}:${name}`]);
      const info = JSON.parse(stdout) as { Digest: string; Layers: string[]; Os: string };
      assert.equal(info.Digest, digest, name);
      assert.deepEqual(info.Layers, (await store.inspect(ref)).layers.map((l) => l.digest));
      assert.equal(info.Os, 'linux');
    }
    const { stdout } = await run('skopeo', ['inspect', '--config', `oci:${store.root}:${ref}`]);
    assert.deepEqual(JSON.parse(stdout).config.Cmd, ['/bin/tool']);
  });

  it('umoci unpacks the same files as the store\'s snapshots, merged', { skip }, async () => {
    const bundle = join(dir, 'bundle');
    const rootless = process.getuid?.() !== 0 ? ['--rootless'] : [];
    await run('umoci', ['unpack', ...rootless, '--image', `${store.root}:${ref}`, bundle]);
    const theirs = await readTree(join(bundle, 'rootfs'));
    const snap = await store.snapshot(ref);
    const ours: Tree = new Map();
    // No whiteouts in this image: the overlay view is the union, upper layers winning.
    for (const lower of [...snap.lowerDirs].reverse()) for (const [k, v] of await readTree(lower)) ours.set(k, v);
    assert.deepEqual(new Map([...theirs].sort()), new Map([...ours].sort()));
    assert.equal(theirs.get('etc/hello'), 'file 644 hello from the top\n');
    const { stdout } = await run('umoci', ['ls', '--layout', store.root]);
    assert.deepEqual(stdout.trim().split('\n').sort(), [ref, 'localhost:5000/team/interop:2.0']);
  });

  it('skopeo copies out of the store, and into it as another tool would', { skip }, async () => {
    const other = join(dir, 'other');
    await run('skopeo', ['copy', `oci:${store.root}:${ref}`, `oci:${other}:copy`]);
    await run('skopeo', ['copy', `oci:${other}:copy`, `oci:${store.root}:docker.io/library/copied:1`]);
    assert.equal((await store.resolve('copied:1')).digest, digest);
    assert.deepEqual((await store.history('copied:1')).map((h) => h.action), ['external']);
    assert.deepEqual(await store.check(), []);
  });
});
