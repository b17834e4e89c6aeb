/**
 * bench/pull: a cold pull of a large multi-layer image from a local registry
 * (Debian's docker-registry on 127.0.0.1): download, verify and unpack, with
 * dockless's `store.pull` and, in the same run, `skopeo copy docker://… oci:…`
 * followed by `umoci unpack`. Prints each side's time and the ratio
 * ours / (skopeo + umoci). Target (issue 5): ≤ 0.7×.
 *
 * The image (4 gzip layers, ≥ 200 MB compressed, ~40 000 files: text-like
 * and binary-looking content, directories, symlinks, hard links, a whiteout)
 * is generated once and cached in `$TMPDIR/dockless-bench-pull-v2/` as an
 * OCI image layout, then pushed to a fresh registry (not timed).
 *
 *   node --import tsx bench/pull.ts [--runs N] [--dir PARENT] [--concurrency N]
 *
 * Every pull starts from an empty store / OCI directory ("cold"); the
 * registry's files stay in the page cache for both sides. `--dir` chooses
 * where stores and bundles go (the same filesystem for both); the default is
 * `/dev/shm` when it is a writable tmpfs, so that the pullers are measured
 * rather than a virtual disk's writeback.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createReadStream, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ImageStore } from '../src/index.js';
import { startRegistry } from '../test/fixtures/registry.js';
import { arg, binaryBody, defaultParent, gzipLayer, layerTotals, makeText, median, rng, textBody, type LayerInfo } from './common.js';

const execFileAsync = promisify(execFile);
const CACHE = path.join(os.tmpdir(), 'dockless-bench-pull-v2');
const LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';

// ---------------------------------------------------------------- generation

const WORDS = (
  'the of and to in is that for it as with was on be by at this from or an are which have not but had they you were ' +
  'lib usr bin share config include local python3 node modules index const return function import export default package'
).split(' ');

/** Mostly small files, some large ones, as in distro and language images. */
function fileSize(rand: () => number): number {
  const r = rand();
  if (r < 0.75) return 100 + Math.floor(rand() * 3900);
  if (r < 0.97) return 4096 + Math.floor(rand() * 20_000);
  if (r < 0.998) return 24_000 + Math.floor(rand() * 216_000);
  return 1_000_000 + Math.floor(rand() * 2_000_000);
}

/** Writes one gzip layer to `out`; `binaryShare` of the files are binary-looking (compress ~1.3×). */
async function writeLayer(prefix: string, files: number, binaryShare: number, seed: number, out: string, whiteout?: string): Promise<LayerInfo> {
  const rand = rng(seed);
  const text = makeText(rand, WORDS);
  const layer = gzipLayer(out);
  const entry = layer.entry;
  const mtime = new Date(1_700_000_000_000);
  if (whiteout !== undefined) {
    await entry({ name: `${path.posix.dirname(whiteout)}/.wh.${path.posix.basename(whiteout)}`, size: 0, mtime, mode: 0o644 }, Buffer.alloc(0));
  }
  let written = 0;
  let previous: string | undefined;
  for (let d = 0; written < files; d++) {
    const dir = `${prefix}/pkg${d}`;
    await entry({ name: `${dir}/`, type: 'directory', mtime, mode: 0o755 });
    const inDir = 5 + Math.floor(rand() * 40);
    for (let i = 0; i < inDir && written < files; i++, written++) {
      const name = `${dir}/file${i}`;
      const r = rand();
      if (r < 0.04 && i > 0) {
        await entry({ name, type: 'symlink', linkname: `file${i - 1}`, mtime, mode: 0o777 });
        continue;
      }
      if (r < 0.05 && previous !== undefined) {
        await entry({ name, type: 'link', linkname: previous, mtime, mode: 0o644 });
        continue;
      }
      const len = fileSize(rand);
      const body = rand() >= binaryShare ? textBody(text, len, rand) : binaryBody(len);
      await entry({ name, size: len, mtime, mode: rand() < 0.1 ? 0o755 : 0o644, uid: 0, gid: 0 }, body);
      previous = name;
    }
  }
  return { ...(await layer.finish()), files };
}

/** Generates the layers once into {@link CACHE}. */
async function ensureLayers(): Promise<LayerInfo[]> {
  const list = path.join(CACHE, 'layers.json');
  try {
    return JSON.parse(await fs.readFile(list, 'utf8')) as LayerInfo[];
  } catch {
    // not generated yet
  }
  console.log(`generating the bench image in ${CACHE} (once)…`);
  await fs.rm(CACHE, { recursive: true, force: true });
  await fs.mkdir(CACHE, { recursive: true });
  const plans: Array<[prefix: string, files: number, binary: number, whiteout?: string]> = [
    ['usr/lib', 16_000, 0.6],
    ['opt/app', 10_000, 0.6, 'usr/lib/pkg3/file1'],
    ['usr/share', 9_000, 0.5],
    ['srv/data', 5_000, 0.7],
  ];
  const layers: LayerInfo[] = [];
  for (const [i, [prefix, files, binary, whiteout]] of plans.entries()) {
    const tmp = path.join(CACHE, `layer-${i}.tmp`);
    const info = await writeLayer(prefix, files, binary, 0x9e3779b9 + i, tmp, whiteout);
    await fs.rename(tmp, path.join(CACHE, `${info.digest.slice(7)}.tar.gz`));
    layers.push(info);
  }
  await fs.writeFile(list, JSON.stringify(layers, null, 2));
  return layers;
}

// ---------------------------------------------------------------- contestants

const fmt = (ms: number): string => `${ms.toFixed(0).padStart(6)} ms`;

async function main(): Promise<void> {
  const runs = Number(arg('--runs') ?? 3);
  const concurrency = Number(arg('--concurrency') ?? 3);
  const parent = arg('--dir') ?? (await defaultParent());
  for (const tool of ['skopeo', 'umoci']) {
    if (spawnSync(tool, ['--version']).status !== 0) {
      console.log(`${tool} is not installed (apt-get install -y skopeo umoci): nothing to compare with`);
      process.exitCode = 1;
      return;
    }
  }
  const layers = await ensureLayers();
  const { compressed, uncompressed, files } = layerTotals(layers);
  console.log(
    `image: ${layers.length} gzip layers, ${(compressed / 1e6).toFixed(1)} MB compressed, ${(uncompressed / 1e6).toFixed(1)} MB uncompressed, ~${files} files`,
  );
  console.log(`node ${process.version}, ${os.cpus().length} CPUs, stores and bundles under ${parent}, ${runs} runs each, alternating`);

  await using registry = await startRegistry();
  const work = await fs.mkdtemp(path.join(parent, 'dockless-bench-pull-'));
  try {
    // The image goes to the registry once, untimed.
    const source = await ImageStore.open({ root: path.join(work, 'source') });
    const inputs = [];
    for (const l of layers) {
      const descriptor = await source.putBlob(createReadStream(path.join(CACHE, `${l.digest.slice(7)}.tar.gz`)), {
        digest: l.digest,
        size: l.size,
        mediaType: LAYER_TYPE,
      });
      inputs.push({ descriptor, diffId: l.diffId });
    }
    const manifest = await source.putImage({
      config: { architecture: process.arch === 'x64' ? 'amd64' : process.arch, os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] } },
      layers: inputs,
    });
    await source.tag(manifest.digest, 'bench/pull:1');
    const ref = `${registry.host}/bench/pull:1`;
    await source.push('bench/pull:1', { to: ref });
    await fs.rm(source.root, { recursive: true, force: true });
    console.log(`pushed to ${ref}\n`);

    const ours: number[] = [];
    const peer: Array<{ skopeo: number; umoci: number }> = [];
    const runOurs = async (): Promise<void> => {
      const dir = await fs.mkdtemp(path.join(work, 'ours-'));
      spawnSync('sync');
      const start = performance.now();
      const store = await ImageStore.open({ root: path.join(dir, 'store') });
      await store.pull(ref, { concurrency });
      ours.push(performance.now() - start);
      await fs.rm(dir, { recursive: true, force: true });
    };
    const runPeer = async (): Promise<void> => {
      const dir = await fs.mkdtemp(path.join(work, 'peer-'));
      spawnSync('sync');
      const start = performance.now();
      await execFileAsync('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}/layout:bench`]);
      const copied = performance.now();
      const rootless = process.getuid?.() === 0 ? [] : ['--rootless'];
      await execFileAsync('umoci', ['unpack', ...rootless, '--image', `${dir}/layout:bench`, `${dir}/bundle`], { maxBuffer: 1 << 26 });
      const end = performance.now();
      peer.push({ skopeo: copied - start, umoci: end - copied });
      await fs.rm(dir, { recursive: true, force: true });
    };
    for (let r = 0; r < runs; r++) {
      // Alternate the order so neither side always runs on a filesystem the other just dirtied.
      if (r % 2 === 0) {
        await runOurs();
        await runPeer();
      } else {
        await runPeer();
        await runOurs();
      }
      const p = peer.at(-1)!;
      console.log(`run ${r + 1}: dockless ${fmt(ours.at(-1)!)}   skopeo ${fmt(p.skopeo)} + umoci ${fmt(p.umoci)} = ${fmt(p.skopeo + p.umoci)}`);
    }
    const oursMs = median(ours);
    const peerMs = median(peer.map((p) => p.skopeo + p.umoci));
    const mbps = (ms: number): string => `${(compressed / 1e6 / (ms / 1000)).toFixed(0)} MB/s compressed`;
    console.log('');
    console.log(`dockless store.pull (download + verify + unpack)  median ${fmt(oursMs)}  ${mbps(oursMs)}`);
    console.log(
      `skopeo copy + umoci unpack                        median ${fmt(peerMs)}  ${mbps(peerMs)}  (skopeo ${fmt(median(peer.map((p) => p.skopeo)))}, umoci ${fmt(median(peer.map((p) => p.umoci)))})`,
    );
    const ratio = oursMs / peerMs;
    console.log(`\nours / (skopeo + umoci) = ${ratio.toFixed(2)}× (target ≤ 0.70×) ${ratio <= 0.7 ? 'OK' : 'OVER TARGET'}`);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

await main();
