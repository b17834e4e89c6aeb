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
 *   node --import tsx bench/pull.ts [--runs N] [--dir PARENT | --shm] [--concurrency N]
 *
 * Target (issue 13): ours ≤ 0.5× (skopeo + umoci).
 */
import { execFile, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ImageStore } from '../src/index.js';
import { startRegistry } from '../test/fixtures/registry.js';
import { arg, dropCaches, imageBenchParent, layerTotals, median, ratioLine, writeResults, type ResultRow } from './common.js';
import { ensureImages, layoutOf } from './unpack.js';

const execFileAsync = promisify(execFile);
const fmt = (ms: number): string => `${ms.toFixed(0).padStart(6)} ms`;

async function main(): Promise<void> {
  const runs = Number(arg('--runs') ?? 3);
  const concurrency = Number(arg('--concurrency') ?? 3);
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
      const ours: number[] = [];
      const peer: Array<{ skopeo: number; umoci: number }> = [];
      const runOurs = async (): Promise<void> => {
        const dir = await fs.mkdtemp(path.join(work, 'ours-'));
        dropCaches();
        const start = performance.now();
        const store = await ImageStore.open({ root: path.join(dir, 'store') });
        await store.pull(ref, { concurrency });
        ours.push(performance.now() - start);
        // The snapshots' deferred flush, after the clock stops (skopeo and umoci flush nothing; dropCaches syncs).
        await store.flush();
        await fs.rm(dir, { recursive: true, force: true });
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
      console.log(`dockless store.pull (download + verify + unpack)  median ${fmt(oursMs)}`);
      console.log(
        `skopeo copy + umoci raw unpack                    median ${fmt(peerMs)}  (skopeo ${fmt(median(peer.map((p) => p.skopeo)))}, umoci ${fmt(median(peer.map((p) => p.umoci)))})`,
      );
      console.log(ratioLine('ours / (skopeo + umoci)', oursMs, peerMs, 0.5));
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
