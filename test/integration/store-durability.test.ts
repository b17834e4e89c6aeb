import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { locateHelper } from '../../src/helper/index.js';
import { ImageStore } from '../../src/image-store.js';
import { buildLayer, GZIP_LAYER, putSyntheticImage, sha256 } from '../fixtures/store-images.js';

const CHILD = fileURLToPath(new URL('../fixtures/store-unpack-child.ts', import.meta.url));
const COMMIT_CHILD = fileURLToPath(new URL('../fixtures/store-commit-child.ts', import.meta.url));
const STRACE = ['/usr/bin/strace', '/bin/strace'].find((p) => existsSync(p));

/** Every regular file and directory under `root`, relative to it (`''` is `root`). */
async function tree(root: string, rel = ''): Promise<string[]> {
  const out = [rel];
  for (const entry of await readdir(join(root, rel), { withFileTypes: true })) {
    const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
    if (entry.isDirectory()) out.push(...(await tree(root, child)));
    else if (entry.isFile()) out.push(child);
  }
  return out;
}

describe('ImageStore snapshot durability', { skip: STRACE === undefined ? 'strace is not installed' : false }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-store-durable-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** Runs the child under strace; what was flushed (fsync'd paths, `syncfs:<path>`) before the marker was marked flushed. */
  async function traceUnpack(name: string, env: NodeJS.ProcessEnv): Promise<{ flushed: Set<string>; lowerDir: string }> {
    const root = join(dir, name);
    const log = join(dir, `${name}.strace`);
    const { stdout } = await promisify(execFile)(
      STRACE!,
      ['-f', '-qq', '-y', '-e', 'trace=openat,fsync,fdatasync,syncfs', '-o', log, process.execPath, '--import', 'tsx', CHILD, root],
      { maxBuffer: 1 << 24, env: { ...process.env, ...env } },
    );
    const [lowerDir] = JSON.parse(stdout) as string[];
    const lines = (await readFile(log, 'utf8')).split('\n');
    // The deferred flush opens the published marker read-write to mark it flushed.
    const markerAt = lines.findIndex((l) => /openat\(.*\/snapshots\/[0-9a-f]{64}[^/"]*\/snapshot\.json", O_RDWR/.test(l));
    assert.ok(markerAt >= 0, 'the marker is marked flushed');
    // With -y, strace prints an fd argument as fd<path>; a call split across threads ends on its "resumed" line.
    const flushed = new Set<string>();
    const pending = new Map<string, string>();
    for (const line of lines.slice(0, markerAt)) {
      const pid = line.split(' ', 1)[0]!;
      const call = /(fsync|fdatasync|syncfs)\(\d+<([^>]*)>\)?(.*)$/.exec(line);
      const name = call?.[1] === 'syncfs' ? `syncfs:${call[2]}` : call?.[2];
      if (call !== null) {
        if (call[3]!.includes('<unfinished')) pending.set(pid, name!);
        else if (/= 0$/.test(call[3]!)) flushed.add(name!);
        continue;
      }
      if (/<\.\.\. (f(data)?sync|syncfs) resumed>\) += 0$/.test(line) && pending.has(pid)) flushed.add(pending.get(pid)!);
    }
    return { flushed, lowerDir: lowerDir! };
  }

  // Hardening 1: after a power loss, a snapshot whose marker says flushed must hold all its files;
  // so they are flushed to disk (one syncfs through the helper) before the marker says so.
  it('flushes a snapshot\'s filesystem before marking its completion marker flushed', async () => {
    const { flushed } = await traceUnpack('with-helper', {});
    assert.ok(
      [...flushed].some((p) => /^syncfs:.*\/snapshots\/[0-9a-f]{64}[^/]*$/.test(p)),
      `no syncfs of the snapshot before its marker: ${[...flushed].join(', ')}`,
    );
  });

  // Without a helper (a store used for images only) the same guarantee costs an fsync per file and directory.
  it('without a helper, fsyncs every file and directory of a snapshot before marking its completion marker flushed', async () => {
    const { flushed, lowerDir } = await traceUnpack('without-helper', { DOCKLESS_HELPER: join(dir, 'no-helper') });
    const flushedInSnapshot = new Set(
      [...flushed].map((p) => /\/snapshots\/[0-9a-f]{64}[^/]*\/fs(\/.*)?$/.exec(p)).filter((m) => m !== null).map((m) => (m![1] ?? '').slice(1)),
    );
    const missing = (await tree(lowerDir)).filter((rel) => !flushedInSnapshot.has(rel));
    assert.deepEqual(missing, [], `not flushed before the marker: ${missing.map((m) => relative('', m) || '.').join(', ')}`);
  });
});

describe('ImageStore pull commit flushing', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-store-flush-once-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  // A flush waits on the whole disk (others' writes too): a pull of N layers must wait once, not N times.
  it('a pull of several layers flushes the filesystem once for all its snapshots', async () => {
    const log = join(dir, 'ops.log');
    const wrapper = join(dir, 'helper');
    await writeFile(wrapper, `#!/bin/sh\necho "$1" >> '${log}'\nexec '${locateHelper()}' "$@"\n`, { mode: 0o755 });
    const store = await ImageStore.open({ root: join(dir, 'store'), helperPath: wrapper });
    const session = store.ingest();
    let parent: `sha256:${string}` | null = null;
    const chainIds: string[] = [];
    for (let i = 0; i < 3; i++) {
      const layer = await buildLayer({ [`layer-${i}.txt`]: `layer ${i}\n` });
      // A chainID is any digest that names the stack; the diffID chain of distinct layers gives distinct names.
      const chainId: `sha256:${string}` = parent === null ? layer.diffId : sha256(`${parent} ${layer.diffId}`);
      const writer = await session.layer(
        { mediaType: GZIP_LAYER, digest: layer.digest, size: layer.gz.length },
        { snapshot: { chainId, diffId: layer.diffId, parent } },
      );
      await writer.write(layer.gz);
      await writer.finish();
      chainIds.push(chainId);
      parent = chainId;
    }
    await writeFile(log, '');
    await session.commit();
    await store.flush();

    const ops = (await readFile(log, 'utf8')).split('\n').filter((op) => op !== '');
    assert.deepEqual(ops.filter((op) => op === 'syncfs'), ['syncfs'], `helper ops of the commit and flush: ${ops.join(', ')}`);
    const suffix = process.getuid?.() === 0 ? '' : '-rootless';
    for (const chainId of chainIds) {
      const marker = JSON.parse(await readFile(join(store.root, 'dockless', 'snapshots', `${chainId.slice(7)}${suffix}`, 'snapshot.json'), 'utf8'));
      assert.equal(marker.chainId, chainId);
      assert.equal(marker.flushed, true);
    }
  });

  // Each blob's rename used to be followed by an fsync of blobs/sha256: a pull of N layers waited on the journal N+2 times.
  it('a commit fsyncs the blob directory once, after all its renames', async () => {
    const root = join(dir, 'commit');
    const log = join(dir, 'commit.strace');
    await promisify(execFile)(
      STRACE!,
      ['-f', '-qq', '-y', '-e', 'trace=rename,renameat,renameat2,fsync', '-o', log, process.execPath, '--import', 'tsx', COMMIT_CHILD, root],
      { maxBuffer: 1 << 24 },
    );
    const lines = (await readFile(log, 'utf8')).split('\n');
    const blobDir = join(root, 'blobs', 'sha256');
    const renames = lines.flatMap((l, i) => (/rename.*\/ingest\/.*\/blobs\/sha256\/[0-9a-f]{64}"/.test(l) ? [i] : []));
    const syncs = lines.flatMap((l, i) => (l.includes(`fsync(`) && l.includes(`<${blobDir}>`) ? [i] : []));
    assert.equal(renames.length, 4, `renames into ${blobDir}:\n${lines.filter((l) => l.includes('rename')).join('\n')}`);
    assert.equal(syncs.length, 1, `fsyncs of ${blobDir}: ${syncs.length}`);
    assert.ok(syncs[0]! > renames.at(-1)!, 'the directory is fsynced after the last rename');
  });

  // An OCI layout import unpacks each layer as it reads it: flushing once per layer made an N-layer import wait on the disk N times.
  it('an OCI layout import of several layers flushes the filesystem once', async () => {
    const log = join(dir, 'import-ops.log');
    const wrapper = join(dir, 'import-helper');
    await writeFile(wrapper, `#!/bin/sh\necho "$1" >> '${log}'\nexec '${locateHelper()}' "$@"\n`, { mode: 0o755 });
    const source = await ImageStore.open({ root: join(dir, 'layout-source') });
    const { manifest } = await putSyntheticImage(source, [{ 'a.txt': 'a\n' }, { 'b.txt': 'b\n' }, { 'c.txt': 'c\n' }]);
    await source.tag(manifest.digest, 'layered:1');
    const layout = join(dir, 'layout');
    await source.export('layered:1', layout, { format: 'oci' });
    const store = await ImageStore.open({ root: join(dir, 'layout-target'), helperPath: wrapper });
    await writeFile(log, '');
    const [imported] = await store.import(layout);
    await store.flush();

    const ops = (await readFile(log, 'utf8')).split('\n').filter((op) => op !== '');
    assert.deepEqual(ops.filter((op) => op === 'syncfs'), ['syncfs'], `helper ops of the import: ${ops.join(', ')}`);
    assert.equal(imported?.reference, 'docker.io/library/layered:1');
    const suffix = process.getuid?.() === 0 ? '' : '-rootless';
    const snapshots = (await readdir(join(store.root, 'dockless', 'snapshots'))).filter((n) => !n.startsWith('tmp-') && n.endsWith(suffix) && /^[0-9a-f]{64}/.test(n));
    assert.equal(snapshots.length, 3, `snapshots: ${snapshots.join(', ')}`);
  });
});
