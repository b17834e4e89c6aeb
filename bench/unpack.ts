/**
 * bench/unpack: unpacking images from an OCI layout on disk, cold cache,
 * beside GNU tar and umoci in the same run. Two images, generated once into
 * `$TMPDIR/dockless-bench-unpack-v3/` (one OCI layout, two tags):
 *
 * - `one`: one gzip layer of ~120 MB (≈14 000 files), against `tar -xzf`;
 * - `multi`: 4 gzip layers, ~130 MB, with whiteouts and opaque directories,
 *   against `umoci raw unpack` (which applies the layers onto one tree).
 *
 * Ours is what a user runs: `store.import(layout)` then `store.snapshot(ref)`
 * into an empty store (verified; the snapshots are usable when it returns and
 * flushed to disk in the background, as a user's would be), timed as one; the
 * clock stops before `store.flush()` waits for that flush (tar flushes nothing;
 * the `sync` before each run writes every contestant's files). Also printed, not counted: `unpackLayer` alone into a directory (no
 * store, no flush), each layer where the store would unpack it. The page cache is dropped (as root) before every timed
 * run, so every contestant reads the layout from disk. After the timed runs
 * the trees are checked: ours (the snapshots stacked with overlayfs) against
 * umoci's and tar's with `diff -r --no-dereference`, and owners, modes, types
 * and link targets with `find -printf`.
 *
 *   node --import tsx bench/unpack.ts [--runs N] [--dir PARENT | --shm]
 *
 * Targets (issue 13): ours ≤ 1.0× tar for `one`, ≤ 1.0× umoci for `multi`.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { ImageStore } from '../src/index.js';
import { unpackLayer, unpackThreadFor } from '../src/layer/index.js';
import {
  arg,
  binaryBody,
  dropCaches,
  gzipLayer,
  imageBenchParent,
  layerTotals,
  makeText,
  median,
  ratioLine,
  rng,
  writeResults,
  type ResultRow,
  textBody,
  type LayerInfo,
} from './common.js';

const execFileAsync = promisify(execFile);

const CACHE = path.join(os.tmpdir(), 'dockless-bench-unpack-v3');

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
        // Some files owned by a service user, as packages install them.
        const owner = rand() < 0.05 ? 33 : 0;
        await entry({ name, size: len, mtime, mode: exec ? 0o755 : 0o644, uid: owner, gid: owner }, body);
        paths.push(name);
      }
    }
  }
  return { ...(await layer.finish()), files, paths };
}

async function writeJsonBlob(layout: string, value: unknown): Promise<{ digest: string; size: number }> {
  const bytes = Buffer.from(JSON.stringify(value));
  const hex = createHash('sha256').update(bytes).digest('hex');
  await fs.writeFile(path.join(layout, 'blobs', 'sha256', hex), bytes);
  return { digest: `sha256:${hex}`, size: bytes.length };
}

/** The bench images' layers, bottom first, by tag. */
export type Images = Record<'one' | 'multi', LayerInfo[]>;

/** Generates both images (once), each as an OCI layout in `CACHE/<name>`. */
export async function ensureImages(): Promise<Images> {
  const listFile = path.join(CACHE, 'images.json');
  try {
    return JSON.parse(await fs.readFile(listFile, 'utf8')) as Images;
  } catch {
    // not generated yet
  }
  console.log(`generating the bench images in ${CACHE} (once)…`);
  await fs.rm(CACHE, { recursive: true, force: true });
  const plans: Record<keyof Images, LayerPlan[]> = {
    one: [{ prefix: 'usr/lib', files: 14_000, whiteouts: [], opaque: [] }],
    multi: [
      { prefix: 'usr/lib', files: 6_000, whiteouts: [], opaque: [] },
      { prefix: 'opt/app', files: 4_000, whiteouts: [], opaque: [] },
      { prefix: 'usr/share', files: 3_000, whiteouts: [], opaque: [] },
      { prefix: 'srv/data', files: 2_000, whiteouts: [], opaque: [] },
    ],
  };
  const images = {} as Images;
  // Whiteouts name paths that exist below, as a diff of two trees makes them: not under a directory already deleted or made opaque.
  const hidden = (p: string, plans: LayerPlan[]): boolean => plans.some((q) => [...q.whiteouts, ...q.opaque].some((d) => p.startsWith(`${d}/`)));
  for (const [name, layerPlans] of Object.entries(plans) as Array<[keyof Images, LayerPlan[]]>) {
    const layout = path.join(CACHE, name);
    await fs.mkdir(path.join(layout, 'blobs', 'sha256'), { recursive: true });
    const layers: LayerInfo[] = [];
    const lowerPaths: string[] = [];
    for (let i = 0; i < layerPlans.length; i++) {
      const plan = layerPlans[i]!;
      if (i > 0) {
        // Deletions of files and whole directories of the layers below, and opaque directories.
        const candidates = lowerPaths.filter((p) => !hidden(p, layerPlans.slice(0, i)));
        for (let k = 0; k < 5; k++) plan.whiteouts.push(candidates[(k * 7919 + i * 104729) % candidates.length]!);
        plan.whiteouts.push(`usr/lib/pkg${10 + i}`);
        plan.opaque.push(`usr/lib/pkg${20 + i}`);
      }
      const tmp = path.join(layout, `layer.tmp`);
      const info = await writeLayer(plan, (name === 'one' ? 0x51ed : 0x9e3779b9) + i, tmp);
      await fs.rename(tmp, path.join(layout, 'blobs', 'sha256', info.digest.slice(7)));
      lowerPaths.push(...info.paths);
      const { paths: _paths, ...rest } = info;
      layers.push(rest);
    }
    const config = await writeJsonBlob(layout, {
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    });
    const manifest = await writeJsonBlob(layout, {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
    });
    const entry = { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': name } };
    await fs.writeFile(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await fs.writeFile(path.join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [entry] }));
    images[name] = layers;
  }
  await fs.writeFile(listFile, JSON.stringify(images, null, 2));
  return images;
}

// ---------------------------------------------------------------- contestants

/** The OCI layout directory of a bench image, whose one tag is the image's name. */
export const layoutOf = (image: keyof Images): string => path.join(CACHE, image);
const blobPath = (image: keyof Images, l: LayerInfo): string => path.join(layoutOf(image), 'blobs', 'sha256', l.digest.slice(7));

/**
 * Removes a run's directory and waits until the disk it was on is quiet:
 * the next contestant must not start while the removal is still being paid
 * for. On ext4 mounted with `discard` (as here), the removed tree's blocks
 * are discarded when the journal commits, which `sync` starts but does not
 * wait out. Waiting is not enough to time a run right after a removal (this
 * bench was bimodal, 1.2 vs 2.8 s, by whether a removal preceded the run):
 * the benches remove trees only after all timed runs, then settle.
 * Quiet: nothing in flight and no write or discard completed for 300 ms,
 * polled from the device's `stat` in sysfs, for at most 10 s (another
 * process's I/O may never let it settle).
 */
export async function removeSettled(dir: string): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true });
  spawnSync('sync');
  const dev = statSync(path.dirname(dir)).dev;
  // Linux's dev_t: major in bits 8–19, minor in bits 0–7 and 20–31.
  const major = Math.floor(dev / 256) & 0xfff;
  const minor = (dev & 0xff) | (Math.floor(dev / 4096) & 0xfff00);
  const statFile = `/sys/dev/block/${major}:${minor}/stat`;
  // Fields (0-based): writes completed (4), in flight (8), discards completed (11).
  const sample = (): string[] | undefined => {
    try {
      const f = readFileSync(statFile, 'utf8').trim().split(/\s+/);
      return [f[4] ?? '', f[8] ?? '', f[11] ?? ''];
    } catch {
      return undefined;
    }
  };
  let last = sample();
  if (last === undefined) return;
  const deadline = performance.now() + 10_000;
  let quietSince = performance.now();
  while (performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const now = sample();
    if (now === undefined) return;
    if (now.join(' ') !== last.join(' ') || now[1] !== '0') {
      last = now;
      quietSince = performance.now();
    } else if (performance.now() - quietSince >= 300) {
      return;
    }
  }
}

interface Contestant {
  name: string;
  /** Unpacks `image` under `dir`; returns the directories to compare (a tree, or overlay lower dirs top first). */
  run(image: keyof Images, layers: LayerInfo[], dir: string): Promise<{ tree: string } | { lowers: string[] }>;
  /** Called after the clock stops: what the run left in the background, waited for so that it cannot slow the next one. */
  settle?(): Promise<void>;
}

let storeOfLastRun: ImageStore | undefined;

const storeImport: Contestant = {
  name: 'dockless import+snapshot',
  async run(image, _layers, dir) {
    const store = await ImageStore.open({ root: path.join(dir, 'store') });
    storeOfLastRun = store;
    await store.import(layoutOf(image), { baseName: 'bench/unpack' });
    const { lowerDirs } = await store.snapshot(`bench/unpack:${image}`);
    return { lowers: lowerDirs };
  },
  async settle() {
    await storeOfLastRun?.flush();
  },
};

const rawUnpack: Contestant = {
  name: 'dockless unpackLayer',
  async run(image, layers, dir) {
    const lowers: string[] = [];
    for (let i = 0; i < layers.length; i++) {
      const target = path.join(dir, `layer-${i}`);
      await fs.mkdir(target);
      // Where the store would unpack it (see unpackThreadFor).
      const thread = unpackThreadFor(layers[i]!.size);
      const result = await unpackLayer(createReadStream(blobPath(image, layers[i]!), { highWaterMark: 1 << 20 }), target, { thread });
      if (result.diffId !== layers[i]!.diffId) throw new Error(`layer ${i}: diffID ${result.diffId} ≠ ${layers[i]!.diffId}`);
      lowers.unshift(target);
    }
    return { lowers };
  },
};

const gnuTar: Contestant = {
  name: 'GNU tar -xzf',
  async run(image, layers, dir) {
    // Each layer into its own directory: tar knows no whiteouts.
    const lowers: string[] = [];
    for (let i = 0; i < layers.length; i++) {
      const target = path.join(dir, `layer-${i}`);
      await fs.mkdir(target);
      await execFileAsync('tar', ['-xzf', blobPath(image, layers[i]!), '-C', target]);
      lowers.unshift(target);
    }
    return layers.length === 1 ? { tree: lowers[0]! } : { lowers };
  },
};

const umoci: Contestant = {
  name: 'umoci raw unpack',
  async run(image, _layers, dir) {
    const tree = path.join(dir, 'rootfs');
    await execFileAsync('umoci', ['raw', 'unpack', '--image', `${layoutOf(image)}:${image}`, tree], { maxBuffer: 1 << 26 });
    return { tree };
  },
};

// ---------------------------------------------------------------- tree check

/** Runs `script` in a private mount namespace with the overlay of `lowers` (top first) at `$M`, or `tree` at `$M`. */
function inView(view: { tree: string } | { lowers: string[] }, script: string, extraEnv: Record<string, string> = {}): string {
  const setup =
    'tree' in view
      ? `M=${JSON.stringify(view.tree)}`
      : view.lowers.length === 1
        ? `M=${JSON.stringify(view.lowers[0])}`
        : `M=$(mktemp -d) && mount -t overlay overlay -o ro,lowerdir=${view.lowers.join(':')} "$M"`;
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `${setup} && ${script}`], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    env: { ...process.env, ...extraEnv },
  });
  if (r.status !== 0 && r.status !== 1) throw new Error(`tree check failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return r.stdout + r.stderr;
}

/** `diff -r` and an owner/mode/type/link listing of two views; returns the differences, empty when the trees agree. */
function compareTrees(a: { tree: string } | { lowers: string[] }, b: { tree: string } | { lowers: string[] }): string {
  const listing = "cd \"$M\" && find . -mindepth 1 -printf '%P %y %m %U:%G %s %l\\n' | LC_ALL=C sort";
  const la = inView(a, listing);
  const lb = inView(b, listing);
  const problems: string[] = [];
  if (la !== lb) {
    const sa = new Set(la.split('\n'));
    const sb = new Set(lb.split('\n'));
    const onlyA = [...sa].filter((l) => !sb.has(l));
    const onlyB = [...sb].filter((l) => !sa.has(l));
    problems.push(`metadata: ${onlyA.length} lines only in ours, ${onlyB.length} only in the peer's; first: ${onlyA.slice(0, 3).join(' | ')} ⟷ ${onlyB.slice(0, 3).join(' | ')}`);
  }
  // Content: diff -r of the two views, each in its own mount namespace; the second is reached through /proc/<pid>/root.
  const other = 'tree' in b ? b.tree : undefined;
  const script =
    other !== undefined
      ? `diff -r --no-dereference "$M" ${JSON.stringify(other)} | head -5`
      : 'true';
  const out = inView(a, script).trim();
  if (out !== '') problems.push(`diff -r: ${out}`);
  return problems.join('\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const runs = Number(arg('--runs') ?? 3);
  const { parent, onDisk, canDrop } = await imageBenchParent();
  const images = await ensureImages();
  console.log(`node ${process.version}, ${os.cpus().length} CPUs, layout ${CACHE}, unpacking under ${parent} (${onDisk ? 'disk' : 'tmpfs'}), ${runs} runs each, alternating${canDrop ? ', page cache dropped before each run' : ''}`);
  if (spawnSync('umoci', ['--version']).status !== 0) {
    console.log('umoci is not installed (apt-get install -y umoci): nothing to compare `multi` with');
    process.exitCode = 1;
    return;
  }
  const results: Record<string, unknown> = {};
  const rows: ResultRow[] = [];
  for (const image of ['one', 'multi'] as const) {
    const layers = images[image];
    const { uncompressed, compressed, files } = layerTotals(layers);
    console.log(
      `\n== ${image}: ${layers.length} gzip layer(s), ${(uncompressed / 1e6).toFixed(1)} MB uncompressed (${(compressed / 1e6).toFixed(1)} MB compressed), ${files} files`,
    );
    const peer = image === 'one' ? gnuTar : umoci;
    const contestants = [storeImport, peer, rawUnpack, image === 'one' ? umoci : gnuTar];
    const times = new Map<string, number[]>(contestants.map((c) => [c.name, []]));
    const views = new Map<string, { tree: string } | { lowers: string[] }>();
    const work = await fs.mkdtemp(path.join(parent, 'dockless-bench-unpack-'));
    try {
      for (let r = 0; r < runs; r++) {
        // Alternate the order so neither side always runs on a filesystem the other just dirtied.
        const order = r % 2 === 0 ? contestants : [...contestants].reverse();
        for (const c of order) {
          const dir = await fs.mkdtemp(path.join(work, 'run-'));
          dropCaches();
          const start = performance.now();
          const view = await c.run(image, layers, dir);
          times.get(c.name)!.push(performance.now() - start);
          await c.settle?.();
          // Every run's tree stays until all are timed: a run that followed a removal of the last one's
          // 127 MB tree was 2–3× slower, even after a sync and a quiet disk (see removeSettled).
          if (r === runs - 1) views.set(c.name, view);
        }
      }
      for (const c of contestants) {
        const ms = median(times.get(c.name)!);
        console.log(
          `${c.name.padEnd(26)} median ${ms.toFixed(0).padStart(6)} ms  ${(uncompressed / 1e6 / (ms / 1000)).toFixed(0).padStart(4)} MB/s   (runs: ${times
            .get(c.name)!
            .map((t) => t.toFixed(0))
            .join(', ')} ms)`,
        );
      }
      const ours = median(times.get(storeImport.name)!);
      const peerMs = median(times.get(peer.name)!);
      console.log(ratioLine(`ours / ${peer.name}`, ours, peerMs, 1.0));
      // Same tree as umoci's (whiteouts applied), and per layer the same as tar's.
      const umociView = views.get(umoci.name)!;
      for (const c of [storeImport, rawUnpack]) {
        const diff = compareTrees(views.get(c.name)!, umociView);
        console.log(`tree check ${c.name} vs umoci: ${diff === '' ? 'same (diff -r, owners, modes, types, links)' : `DIFFERENT\n${diff}`}`);
      }
      const raw = median(times.get(rawUnpack.name)!);
      const mb = (uncompressed / 1e6).toFixed(0);
      rows.push(
        { what: `unpack ${image} (${layers.length} layer(s), ${mb} MB): import + snapshot`, ours, unit: 'ms', peer: { name: peer.name, value: peerMs }, ratio: ours / peerMs, target: '≤ 1.0×' },
        { what: `unpack ${image} (${layers.length} layer(s), ${mb} MB): unpackLayer alone`, ours: raw, unit: 'ms', peer: { name: peer.name, value: peerMs }, ratio: raw / peerMs },
      );
      results[image] = {
        uncompressedBytes: uncompressed,
        layers: layers.length,
        medianMs: Object.fromEntries(contestants.map((c) => [c.name, Math.round(median(times.get(c.name)!))])),
        ratio: Number((ours / peerMs).toFixed(2)),
        peer: peer.name,
      };
    } finally {
      await removeSettled(work);
    }
  }
  console.log(`\nRESULT unpack ${JSON.stringify({ onDisk, coldCache: canDrop, runs, ...results })}`);
  await writeResults('unpack', rows, { dir: parent, kind: onDisk ? 'disk' : 'shm', cacheDropped: canDrop });
}

// bench/pull reuses the images.
if (import.meta.url === pathToFileURL(process.argv[1]!).href) await main();
