/**
 * bench/pull: a cold pull from a local registry (Debian's docker-registry on
 * 127.0.0.1): download, verify and unpack, with dockless's `store.pull` and,
 * in the same run, `skopeo copy docker://… oci:…` followed by
 * `umoci raw unpack`. The two images of bench/unpack (one ~120 MB layer; 4
 * layers, ~130 MB, with whiteouts), pushed once (untimed) with skopeo.
 *
 * Every pull starts from an empty store / OCI directory on disk, and the
 * page cache is dropped (as root) before each timed run: the registry's
 * files, the pullers' binaries and the disk are all cold, as on a user's
 * first pull.
 *
 * Our pull runs in a Node process of its own that imports the bundle a user
 * loads (`dist/bundle/index.js`, as package.json `exports` names it: run
 * `npm run build` first) and times `ImageStore.open` + `store.pull` itself,
 * so that neither Node's start nor a TypeScript loader's compiling is timed.
 * `--base CHECKOUT` times that checkout's bundle too, in the same alternating
 * runs, for an old/new pair beside the same peer.
 *
 *   node --import tsx bench/pull.ts [--runs N] [--dir PARENT | --shm] [--concurrency N] [--base CHECKOUT]
 *
 * Target (issue 13): ours ≤ 0.5× (skopeo + umoci).
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startRegistry } from '../test/fixtures/registry.js';
import { arg, dropCaches, imageBenchParent, layerTotals, median, nodeEnv, ratioLine, writeResults, type ResultRow } from './common.js';
import { ensureImages, layoutOf, removeSettled } from './unpack.js';

const execFileAsync = promisify(execFile);
const fmt = (ms: number): string => `${ms.toFixed(0).padStart(6)} ms`;
const REPO = path.resolve(import.meta.dirname, '..');
const bundleOf = (checkout: string): string => path.join(checkout, 'dist', 'bundle', 'index.js');

/** One pull in a fresh Node process through `dist`'s bundle; the process times open + pull (and flushes after). */
const PULL_SCRIPT = `const { ImageStore } = await import(process.env.DIST);
const start = performance.now();
const store = await ImageStore.open({ root: process.env.ROOT });
await store.pull(process.env.REF, { concurrency: Number(process.env.CONCURRENCY) });
const ms = performance.now() - start;
await store.flush();
console.log(JSON.stringify({ ms }));`;

async function timedPull(dist: string, root: string, ref: string, concurrency: number): Promise<number> {
  const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', PULL_SCRIPT], {
    env: nodeEnv({ DIST: dist, ROOT: root, REF: ref, CONCURRENCY: String(concurrency) }),
    maxBuffer: 1 << 20,
  });
  return (JSON.parse(stdout.trim().split('\n').at(-1)!) as { ms: number }).ms;
}

async function main(): Promise<void> {
  const runs = Number(arg('--runs') ?? 3);
  const concurrency = Number(arg('--concurrency') ?? 3);
  const base = arg('--base');
  const builds = [{ name: 'dockless', dist: bundleOf(REPO) }, ...(base === undefined ? [] : [{ name: 'base', dist: bundleOf(path.resolve(base)) }])];
  for (const { dist } of builds) {
    if (!existsSync(dist)) {
      console.log(`${dist} is missing: run npm run build first`);
      process.exitCode = 1;
      return;
    }
  }
  const { parent, onDisk, canDrop } = await imageBenchParent();
  for (const tool of ['skopeo', 'umoci']) {
    if (spawnSync(tool, ['--version']).status !== 0) {
      console.log(`${tool} is not installed (apt-get install -y skopeo umoci): nothing to compare with`);
      process.exitCode = 1;
      return;
    }
  }
  const images = await ensureImages();
  console.log(
    `node ${process.version}, ${os.cpus().length} CPUs, stores and bundles under ${parent} (${onDisk ? 'disk' : 'tmpfs'}), ${runs} runs each, alternating${canDrop ? ', page cache dropped before each run' : ''}`,
  );

  await using registry = await startRegistry();
  const work = await fs.mkdtemp(path.join(parent, 'dockless-bench-pull-'));
  const results: Record<string, unknown> = {};
  const rows: ResultRow[] = [];
  try {
    for (const image of ['one', 'multi'] as const) {
      const { compressed, uncompressed, files } = layerTotals(images[image]);
      const ref = `${registry.host}/bench/${image}:1`;
      await execFileAsync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layoutOf(image)}:${image}`, `docker://${ref}`]);
      console.log(
        `\n== ${image}: ${images[image].length} gzip layer(s), ${(compressed / 1e6).toFixed(1)} MB compressed, ${(uncompressed / 1e6).toFixed(1)} MB uncompressed, ${files} files; pushed to ${ref}`,
      );
      const times = new Map<string, number[]>(builds.map((b) => [b.name, []]));
      const ours = times.get('dockless')!;
      const peer: Array<{ skopeo: number; umoci: number }> = [];
      // The snapshots' deferred flush runs after the clock stops (skopeo and umoci flush nothing; dropCaches syncs).
      const runOurs = async (): Promise<void> => {
        for (const build of r % 2 === 0 ? builds : [...builds].reverse()) {
          const dir = await fs.mkdtemp(path.join(work, 'ours-'));
          dropCaches();
          times.get(build.name)!.push(await timedPull(build.dist, path.join(dir, 'store'), ref, concurrency));
        }
      };
      const runPeer = async (): Promise<void> => {
        const dir = await fs.mkdtemp(path.join(work, 'peer-'));
        dropCaches();
        const start = performance.now();
        await execFileAsync('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}/layout:bench`]);
        const copied = performance.now();
        const rootless = process.getuid?.() === 0 ? [] : ['--rootless'];
        await execFileAsync('umoci', ['raw', 'unpack', ...rootless, '--image', `${dir}/layout:bench`, `${dir}/rootfs`], { maxBuffer: 1 << 26 });
        const end = performance.now();
        peer.push({ skopeo: copied - start, umoci: end - copied });
      };
      let r = 0;
      for (; r < runs; r++) {
        // Alternate the order so neither side always runs on a filesystem the other just dirtied.
        if (r % 2 === 0) {
          await runOurs();
          await runPeer();
        } else {
          await runPeer();
          await runOurs();
        }
        const p = peer.at(-1)!;
        const baseLine = base === undefined ? '' : `   base ${fmt(times.get('base')!.at(-1)!)}`;
        console.log(`run ${r + 1}: dockless ${fmt(ours.at(-1)!)}${baseLine}   skopeo ${fmt(p.skopeo)} + umoci ${fmt(p.umoci)} = ${fmt(p.skopeo + p.umoci)}`);
      }
      const oursMs = median(ours);
      const peerMs = median(peer.map((p) => p.skopeo + p.umoci));
      console.log(`dockless store.pull (download + verify + unpack)  median ${fmt(oursMs)}`);
      console.log(
        `skopeo copy + umoci raw unpack                    median ${fmt(peerMs)}  (skopeo ${fmt(median(peer.map((p) => p.skopeo)))}, umoci ${fmt(median(peer.map((p) => p.umoci)))})`,
      );
      // Only now are the runs' trees removed: a removal just before a timed run slowed it (see removeSettled).
      for (const entry of await fs.readdir(work)) await removeSettled(path.join(work, entry));
      console.log(ratioLine('ours / (skopeo + umoci)', oursMs, peerMs, 0.5));
      if (base !== undefined) {
        const baseMs = median(times.get('base')!);
        console.log(`base (${base}) store.pull                  median ${fmt(baseMs)}`);
        console.log(ratioLine('base / (skopeo + umoci)', baseMs, peerMs, 0.5));
        console.log(`new / base: ${(oursMs / baseMs).toFixed(2)}×`);
      }
      results[image] = { oursMs: Math.round(oursMs), peerMs: Math.round(peerMs), ratio: Number((oursMs / peerMs).toFixed(2)) };
      rows.push({
        what: `cold pull + unpack, ${image} (${images[image].length} layer(s), ${(uncompressed / 1e6).toFixed(0)} MB)`,
        ours: oursMs,
        unit: 'ms',
        peer: { name: 'skopeo copy + umoci raw unpack', value: peerMs },
        ratio: oursMs / peerMs,
        target: '≤ 0.5×',
      });
    }
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
  console.log(`\nRESULT pull ${JSON.stringify({ onDisk, coldCache: canDrop, runs, ...results })}`);
  await writeResults('pull', rows, { dir: parent, kind: onDisk ? 'disk' : 'shm', cacheDropped: canDrop });
}

await main();
