/**
 * bench/unpack: unpack a large multi-layer image with {@link unpackLayer} and,
 * in the same run, with GNU `tar -xzf` (and `umoci unpack` when installed) of
 * the same gzip layer blobs. Prints MB/s (uncompressed bytes) and the ratio
 * ours / tar. Target (issue 3): ours ≤ 1.2× GNU tar's time.
 *
 * The image (≥ 200 MB, tens of thousands of files, whiteouts and an opaque
 * directory in the upper layers) is generated once and cached in
 * `$TMPDIR/dockless-bench-unpack-v1/` as an OCI image layout.
 *
 *   node --import tsx bench/unpack.ts [--runs N] [--dir PARENT]
 *
 * `--dir` chooses where the unpacked trees go; the same filesystem is used for
 * every contestant. The default is `/dev/shm` when it is a writable tmpfs: a
 * memory-backed filesystem measures the unpackers rather than the disk's
 * writeback, which on shared and virtual disks varies tenfold from run to run.
 * Pass `--dir /var/tmp` (or any disk) to measure a disk.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { unpackLayer } from '../src/layer/index.js';
import { arg, binaryBody, defaultParent, gzipLayer, layerTotals, makeText, median, rng, textBody, type LayerInfo } from './common.js';

const execFileAsync = promisify(execFile);

const CACHE = path.join(os.tmpdir(), 'dockless-bench-unpack-v1');
const REF = 'bench';

// ---------------------------------------------------------------- generation

const WORDS =
  'the of and to in is that for it as with was on be by at this from or an are which have not but had his they you were their one all we can her has there been if more when will would who so no lib usr bin share config include local python3 node modules index const return function import export default package json version license'.split(
    ' ',
  );

function fileSize(rand: () => number): number {
  // About 8.7 KB on average: mostly small files, a few large ones, as in distro and language images.
  const r = rand();
  if (r < 0.8) return 100 + Math.floor(rand() * 3900);
  if (r < 0.98) return 4096 + Math.floor(rand() * 20000);
  if (r < 0.999) return 24_000 + Math.floor(rand() * 176_000);
  return 1_000_000 + Math.floor(rand() * 3_000_000);
}

interface LayerPlan {
  prefix: string;
  files: number;
  /** Paths in lower layers to delete with `.wh.` entries. */
  whiteouts: string[];
  /** Directories of lower layers to make opaque. */
  opaque: string[];
}

async function writeLayer(plan: LayerPlan, seed: number, out: string): Promise<LayerInfo & { paths: string[] }> {
  const rand = rng(seed);
  const text = makeText(rand, WORDS);
  const layer = gzipLayer(out);
  const entry = layer.entry;
  const paths: string[] = [];
  const mtime = new Date(1_700_000_000_000);

  for (const w of plan.whiteouts) {
    const dir = path.posix.dirname(w);
    await entry({ name: path.posix.join(dir, `.wh.${path.posix.basename(w)}`), size: 0, mtime, mode: 0o644 }, Buffer.alloc(0));
  }
  for (const d of plan.opaque) {
    await entry({ name: `${d}/`, type: 'directory', mtime, mode: 0o755 });
    await entry({ name: `${d}/.wh..wh..opq`, size: 0, mtime, mode: 0o644 }, Buffer.alloc(0));
  }
  let files = 0;
  let dirIndex = 0;
  while (files < plan.files) {
    const dir = `${plan.prefix}/pkg${dirIndex}/sub${dirIndex % 7}`;
    await entry({ name: `${plan.prefix}/pkg${dirIndex}/`, type: 'directory', mtime, mode: 0o755 });
    await entry({ name: `${dir}/`, type: 'directory', mtime, mode: 0o755 });
    dirIndex++;
    const inDir = 5 + Math.floor(rand() * 40);
    for (let i = 0; i < inDir && files < plan.files; i++, files++) {
      const name = `${dir}/file${i}.${rand() < 0.5 ? 'txt' : 'bin'}`;
      const r = rand();
      if (r < 0.04 && i > 0) {
        await entry({ name, type: 'symlink', linkname: `file${i - 1}.txt`, mtime, mode: 0o777 });
      } else if (r < 0.05 && paths.length > 0) {
        await entry({ name, type: 'link', linkname: paths[paths.length - 1]!, mtime, mode: 0o644 });
      } else {
        const len = fileSize(rand);
        const body = rand() < 0.6 ? textBody(text, len, rand) : binaryBody(len);
        const exec = rand() < 0.1;
        await entry({ name, size: len, mtime, mode: exec ? 0o755 : 0o644, uid: 0, gid: 0 }, body);
        paths.push(name);
      }
    }
  }
  return { ...(await layer.finish()), files, paths };
}

async function writeJsonBlob(value: unknown): Promise<{ digest: string; size: number }> {
  const bytes = Buffer.from(JSON.stringify(value));
  const hex = createHash('sha256').update(bytes).digest('hex');
  await fs.writeFile(path.join(CACHE, 'blobs', 'sha256', hex), bytes);
  return { digest: `sha256:${hex}`, size: bytes.length };
}

/** Generates the image (once) as an OCI layout in {@link CACHE}; returns its layers, bottom first. */
async function ensureImage(): Promise<LayerInfo[]> {
  const listFile = path.join(CACHE, 'layers.json');
  try {
    return JSON.parse(await fs.readFile(listFile, 'utf8')) as LayerInfo[];
  } catch {
    // not generated yet
  }
  console.log(`generating the bench image in ${CACHE} (once)…`);
  await fs.rm(CACHE, { recursive: true, force: true });
  await fs.mkdir(path.join(CACHE, 'blobs', 'sha256'), { recursive: true });
  const plans: LayerPlan[] = [
    { prefix: 'usr/lib', files: 14_000, whiteouts: [], opaque: [] },
    { prefix: 'opt/app', files: 8_000, whiteouts: [], opaque: [] },
    { prefix: 'usr/share', files: 6_000, whiteouts: [], opaque: [] },
    { prefix: 'srv/data', files: 2_000, whiteouts: [], opaque: [] },
  ];
  const layers: LayerInfo[] = [];
  const lowerPaths: string[] = [];
  for (let i = 0; i < plans.length; i++) {
    const plan = plans[i]!;
    if (i > 0) {
      // A few deletions of files and whole directories of the layers below.
      for (let k = 0; k < 5; k++) plan.whiteouts.push(lowerPaths[(k * 7919 + i * 104729) % lowerPaths.length]!);
      plan.whiteouts.push(`usr/lib/pkg${10 + i}`);
      plan.opaque.push(`usr/lib/pkg${20 + i}`);
    }
    const tmp = path.join(CACHE, `layer-${i}.tmp`);
    const info = await writeLayer(plan, 0x9e3779b9 + i, tmp);
    await fs.rename(tmp, path.join(CACHE, 'blobs', 'sha256', info.digest.slice(7)));
    lowerPaths.push(...info.paths);
    const { paths: _paths, ...rest } = info;
    layers.push(rest);
  }
  const config = await writeJsonBlob({
    architecture: 'amd64',
    os: 'linux',
    config: {},
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
  });
  const manifest = await writeJsonBlob({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: layers.map((l) => ({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: l.digest,
      size: l.size,
    })),
  });
  await fs.writeFile(path.join(CACHE, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await fs.writeFile(
    path.join(CACHE, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          annotations: { 'org.opencontainers.image.ref.name': REF },
        },
      ],
    }),
  );
  await fs.writeFile(listFile, JSON.stringify(layers, null, 2));
  return layers;
}

// ---------------------------------------------------------------- contestants

const blobPath = (l: LayerInfo): string => path.join(CACHE, 'blobs', 'sha256', l.digest.slice(7));

type Contestant = { name: string; run: (layers: LayerInfo[], dir: string) => Promise<void> };

const ours: Contestant = {
  name: 'dockless unpackLayer',
  async run(layers, dir) {
    for (let i = 0; i < layers.length; i++) {
      const target = path.join(dir, `layer-${i}`);
      await fs.mkdir(target);
      const result = await unpackLayer(createReadStream(blobPath(layers[i]!), { highWaterMark: 1 << 20 }), target);
      if (result.diffId !== layers[i]!.diffId) throw new Error(`layer ${i}: diffID ${result.diffId} ≠ ${layers[i]!.diffId}`);
    }
  },
};

const gnuTar: Contestant = {
  name: 'GNU tar -xzf',
  async run(layers, dir) {
    for (let i = 0; i < layers.length; i++) {
      const target = path.join(dir, `layer-${i}`);
      await fs.mkdir(target);
      await execFileAsync('tar', ['-xzf', blobPath(layers[i]!), '-C', target]);
    }
  },
};

const umoci: Contestant = {
  name: 'umoci unpack',
  async run(_layers, dir) {
    // umoci applies the layers on one rootfs (whiteouts delete) and writes an mtree manifest.
    await execFileAsync('umoci', ['unpack', '--image', `${CACHE}:${REF}`, path.join(dir, 'bundle')], {
      maxBuffer: 1 << 26,
    });
  },
};

async function main(): Promise<void> {
  const runs = Number(arg('--runs') ?? 5);
  const parent = arg('--dir') ?? (await defaultParent());
  const layers = await ensureImage();
  const { uncompressed: total, compressed, files } = layerTotals(layers);
  console.log(
    `image: ${layers.length} gzip layers, ${(total / 1e6).toFixed(1)} MB uncompressed (${(compressed / 1e6).toFixed(1)} MB compressed), ${files} files + dirs, links, whiteouts`,
  );
  console.log(`node ${process.version}, ${os.cpus().length} CPUs, unpacking under ${parent}, ${runs} runs each, alternating`);

  const contestants: Contestant[] = [ours, gnuTar];
  if (spawnSync('umoci', ['--version']).status === 0) contestants.push(umoci);
  else console.log('umoci: skipped (not installed; apt-get install -y umoci)');

  const times = new Map<string, number[]>(contestants.map((c) => [c.name, []]));
  // Warm the page cache for the blobs so that every contestant reads them from memory.
  for (const l of layers) await fs.readFile(blobPath(l));
  for (let r = 0; r < runs; r++) {
    // Alternate the order so neither side always runs on a filesystem the other just dirtied.
    const order = r % 2 === 0 ? contestants : [...contestants].reverse();
    for (const c of order) {
      const dir = await fs.mkdtemp(path.join(parent, 'dockless-bench-unpack-'));
      spawnSync('sync');
      const start = process.hrtime.bigint();
      await c.run(layers, dir);
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      times.get(c.name)!.push(ms);
      await fs.rm(dir, { recursive: true, force: true });
    }
  }
  const tarMs = median(times.get(gnuTar.name)!);
  console.log('');
  for (const c of contestants) {
    const ms = median(times.get(c.name)!);
    const ratio = c === gnuTar ? '' : `  ratio to tar ${(ms / tarMs).toFixed(2)}×`;
    console.log(
      `${c.name.padEnd(22)} median ${ms.toFixed(0).padStart(6)} ms  ${(total / 1e6 / (ms / 1000)).toFixed(0).padStart(5)} MB/s${ratio}   (runs: ${times
        .get(c.name)!
        .map((t) => t.toFixed(0))
        .join(', ')} ms)`,
    );
  }
  const ratio = median(times.get(ours.name)!) / tarMs;
  console.log(`\nours / GNU tar = ${ratio.toFixed(2)}× (target ≤ 1.20×) ${ratio <= 1.2 ? 'OK' : 'OVER TARGET'}`);
}

await main();
