/**
 * Image-run overhead: time from `runtime.run({ image })` to exit for an
 * already-unpacked image, beside `runtime.run({ rootfs })` of the same files,
 * alternating in the same run, in a directory on disk (`--shm` for /dev/shm,
 * `--dir PARENT` for another), with the page cache dropped first when root.
 * Target (issue 13): the image path adds ≤ 1 ms.
 *
 * Run: node --import tsx bench/image-run.ts [runs] [--shm | --dir PARENT]
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ImageStore, Runtime, rootfsFromHost, type ContainerSpec, type ImageConfig } from '../src/index.js';
import { benchParent, compare, dropCaches, writeResults } from './common.js';

const RUNS = /^\d+$/.test(process.argv[2] ?? '') ? Number(process.argv[2]) : 200;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const parent = await benchParent();
const base = await mkdtemp(join(parent.dir, 'dockless-bench-image-'));
try {
  const rootfs = await rootfsFromHost(join(base, 'rootfs'));
  const store = await ImageStore.open({ root: join(base, 'store') });
  const tar = execFileSync('tar', ['-C', rootfs.path, '--numeric-owner', '-cf', '-', '.'], { maxBuffer: 1 << 30 });
  const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
  const descriptor = await store.putBlob(gzipSync(tar), { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' });
  const config = { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diffId] } } as ImageConfig;
  const manifest = await store.putImage({ config, layers: [{ descriptor, diffId }] });
  await store.tag(manifest.digest, 'bench.local/host:1');
  await store.snapshot('bench.local/host:1');

  const runtime = new Runtime({ root: join(base, 'data'), stateDir: join(base, 'state'), store });
  const once = async (spec: ContainerSpec) => {
    const t = performance.now();
    const c = await runtime.run(spec);
    await c.wait();
    const elapsed = performance.now() - t;
    await c.remove();
    return elapsed;
  };
  const fromRootfs: ContainerSpec = { rootfs: rootfs.path, cmd: ['true'], stdio: 'ignore' };
  const fromImage: ContainerSpec = { image: 'bench.local/host:1', cmd: ['true'], stdio: 'ignore' };
  for (let i = 0; i < 10; i++) {
    await once(fromRootfs);
    await once(fromImage);
  }
  const cacheDropped = dropCaches();
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    a.push(await once(fromRootfs));
    b.push(await once(fromImage));
  }
  const ra = median(a);
  const rb = median(b);
  console.log(`run→exit from a rootfs dir (${RUNS}):  median ${ra.toFixed(2)} ms`);
  console.log(`run→exit from an image (${RUNS}):      median ${rb.toFixed(2)} ms`);
  console.log(`image path adds ${(rb - ra).toFixed(2)} ms (target ≤ 1 ms)`);
  const rows = [
    compare('run→exit from an image vs from a rootfs dir', rb, 'ms', { name: 'rootfs dir', value: ra }, { target: '≤ +1 ms' }),
  ];
  await writeResults('image-run', rows, { dir: parent.dir, kind: parent.kind, cacheDropped });
} finally {
  await rm(base, { recursive: true, force: true });
}
