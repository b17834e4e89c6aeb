/**
 * Build benchmark: a 6-line Dockerfile (FROM; RUN writing files; COPY of 1000
 * small files, 20 MB in all; ENV; RUN deleting a file; CMD), built cold
 * (empty build cache, base image already unpacked) and rebuilt fully cached,
 * beside `buildah bud` of the same Dockerfile in the same run when buildah is
 * installed (`apt-get install buildah`). On disk (`/var/tmp`) by default; the
 * page cache is dropped (as root) before every cold build, ours and
 * buildah's. The cached rebuild is timed twice: warm (a developer's edit
 * loop) and after dropping the page cache.
 *
 * Targets (issue 13): cold ≤ 0.5× `buildah bud --layers`; cached rebuild
 * ≤ 50 ms in-process.
 *
 * buildah reads the base image straight from our store (an OCI layout):
 * it is pulled with `buildah pull oci:<store>:<ref>`, untimed, so both
 * sides start with the base unpacked. buildah runs with `--network none
 * --pull=never`, with `--layers` (so it, too, caches steps) and without (its
 * default, no cache), its own storage under the bench directory, overlay
 * driver. Iterations interleave the two.
 *
 * Run: node --import tsx bench/build.ts [iterations] [--dir PARENT | --shm]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ImageStore, LayerBuilder, Runtime, importRootfs, rootfsFromHost } from '../src/index.js';
import { dropCaches, imageBenchParent, writeResults, type ResultRow } from './common.js';

const ITERATIONS = /^\d+$/.test(process.argv[2] ?? '') ? Number(process.argv[2]) : 3;
const FILES = 1000;
const TOTAL = 20 * 1024 * 1024;

const DOCKERFILE = `FROM bench-base
RUN mkdir -p /opt/gen && for i in $(seq 1 200); do echo "generated line $i" > /opt/gen/file-$i.txt; done
COPY src/ /srv/src/
ENV APP_MODE=bench
RUN rm /srv/src/file-0000.js
CMD ["ls", "/srv/src"]
`;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);

/** Source-like text: identifiers and punctuation, compressing about as well as code does (gzip -6: ~30%). */
function sourceText(bytes: number): string {
  const words = ['const', 'value', 'compute', 'alpha', 'beta', 'return', 'function', 'import', 'export', 'string', 'number', 'index', 'result', 'options', 'config', 'await', 'async', 'if', 'else', 'for', 'let', 'map', 'filter', 'reduce', 'console', 'log', 'error', 'throw', 'new', 'class'];
  const random = randomBytes(bytes);
  let p = 0;
  const pick = (n: number): number => random[p++ % random.length]! % n;
  let out = '';
  while (out.length < bytes) {
    let line = '  '.repeat(pick(4));
    for (let i = 3 + pick(10); i > 0; i--) line += `${words[pick(words.length)]}${pick(3) === 0 ? `_${pick(250)}${pick(40)}` : ''}${pick(4) === 0 ? '(' : ' '}`;
    out += `${line};\n`;
  }
  return out.slice(0, bytes);
}

// Lowercase only: buildah refuses `oci:` paths with uppercase letters (it makes image names of them).
const { parent, onDisk, canDrop } = await imageBenchParent();
const base = join(parent, `dockless-bench-build-${randomBytes(6).toString('hex')}`);
console.log(`building under ${base} (${onDisk ? 'disk' : 'tmpfs'}), ${ITERATIONS} iterations${canDrop ? ', page cache dropped before each cold build' : ''}`);
await mkdir(base, { mode: 0o700 });
try {
  const context = join(base, 'context');
  await mkdir(join(context, 'src'), { recursive: true });
  for (let i = 0; i < FILES; i++) {
    await writeFile(join(context, 'src', `file-${String(i).padStart(4, '0')}.js`), sourceText(Math.floor(TOTAL / FILES)));
  }
  await writeFile(join(context, 'Dockerfile'), DOCKERFILE);
  const rootfs = await rootfsFromHost(join(base, 'rootfs'));
  // Let the context's files age past the digest cache's racy window, as a real source tree's have.
  await new Promise((r) => setTimeout(r, 1100));

  const hasBuildah = spawnSync('buildah', ['--version'], { stdio: 'ignore' }).status === 0;
  const ours = { cold: [] as number[], cached: [] as number[], cachedCold: [] as number[] };
  const bah = { cold: [] as number[], cached: [] as number[], coldNoLayers: [] as number[] };
  // Where a cold build's time goes: each step's duration (its progress events), every iteration.
  const coldSteps: { step: string; ms: number }[] = [];
  // Interleaved, so that whatever else the machine does weighs on both alike; `sync` (untimed)
  // before each cold build, so that neither pays for the other's writeback.
  for (let i = 0; i < ITERATIONS; i++) {
    const dir = join(base, `ours-${i}`);
    const store = await ImageStore.open({ root: join(dir, 'store') });
    const runtime = new Runtime({ root: join(dir, 'data'), stateDir: join(dir, 'state'), store });
    await importRootfs(store, rootfs.path, { tag: 'bench-base' });
    await store.snapshot('bench-base');
    dropCaches();
    let t = performance.now();
    let stepStarted = t;
    let stepDone = t;
    const cold = await LayerBuilder.fromDockerfile(store, {
      context,
      runtime,
      tag: 'bench-app',
      onProgress: (e) => {
        const now = performance.now();
        if (e.type === 'step-start') {
          if (e.step === 1) coldSteps.push({ step: 'before the first step', ms: now - t });
          stepStarted = now;
        } else if (e.type === 'step-done' || e.type === 'step-cached') {
          coldSteps.push({ step: `${e.step} ${e.instruction.slice(0, 40)}`, ms: now - stepStarted });
          stepDone = now;
        }
      },
    });
    ours.cold.push(performance.now() - t);
    coldSteps.push({ step: 'after the last step (image, tag)', ms: performance.now() - stepDone });
    // The first rebuild warms what a developer's loop keeps warm; the next ones are timed.
    await LayerBuilder.fromDockerfile(store, { context, runtime, tag: 'bench-app' });
    for (let k = 0; k < 5; k++) {
      t = performance.now();
      const cached = await LayerBuilder.fromDockerfile(store, { context, runtime, tag: 'bench-app' });
      ours.cached.push(performance.now() - t);
      if (cached.digest !== cold.digest || cached.builtSteps !== 2) throw new Error('the rebuild was not fully cached');
    }
    dropCaches();
    t = performance.now();
    await LayerBuilder.fromDockerfile(store, { context, runtime, tag: 'bench-app' });
    ours.cachedCold.push(performance.now() - t);

    if (hasBuildah) {
      const storage = join(base, `buildah-${i}`);
      const flags = ['--root', join(storage, 'root'), '--runroot', join(storage, 'runroot'), '--storage-driver', 'overlay'];
      const run = (args: string[]): number => {
        const started = performance.now();
        const r = spawnSync('buildah', [...flags, ...args], { encoding: 'utf8' });
        const elapsed = performance.now() - started;
        if (r.status !== 0) throw new Error(`buildah ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
        return elapsed;
      };
      // buildah reads the base straight from our store, an OCI image layout.
      run(['pull', '--quiet', `oci:${join(dir, 'store')}:docker.io/library/bench-base:latest`]);
      const image = execFileSync('buildah', [...flags, 'images', '-q']).toString().trim().split('\n')[0]!;
      run(['tag', image, 'docker.io/library/bench-base:latest']);
      const bud = ['bud', '--quiet', '--network', 'none', '--pull=never', '-f', join(context, 'Dockerfile')];
      dropCaches();
      bah.coldNoLayers.push(run([...bud, '-t', 'bench-nolayers', context]));
      dropCaches();
      bah.cold.push(run([...bud, '--layers', '-t', 'bench-app', context]));
      bah.cached.push(run([...bud, '--layers', '-t', 'bench-app', context]));
      await rm(storage, { recursive: true, force: true }).catch(() => undefined);
    }
    await rm(dir, { recursive: true, force: true });
  }
  console.log(`dockless  cold build: median ${fmt(median(ours.cold))}   (${ours.cold.map(fmt).join(', ')})`);
  const stepNames = [...new Set(coldSteps.map((r) => r.step))];
  console.log('dockless  cold build by step (median of the iterations):');
  for (const name of stepNames) {
    const times = coldSteps.filter((r) => r.step === name).map((r) => r.ms);
    console.log(`  ${name.padEnd(44)} ${fmt(median(times)).padStart(9)}   (${times.map(fmt).join(', ')})`);
  }
  console.log(`dockless  cached rebuild, warm: median ${fmt(median(ours.cached))}   (${ours.cached.map(fmt).join(', ')}; target ≤ 50 ms) ${median(ours.cached) <= 50 ? 'OK' : 'OVER TARGET'}`);
  console.log(`dockless  cached rebuild, page cache dropped: median ${fmt(median(ours.cachedCold))}   (${ours.cachedCold.map(fmt).join(', ')})`);
  if (!hasBuildah) {
    console.log('buildah: not installed (apt-get install buildah), no comparison');
  } else {
    console.log(execFileSync('buildah', ['--version']).toString().trim());
    console.log(`buildah   cold build (--layers): median ${fmt(median(bah.cold))}   (${bah.cold.map(fmt).join(', ')})`);
    console.log(`buildah   cold build (no --layers, its default): median ${fmt(median(bah.coldNoLayers))}   (${bah.coldNoLayers.map(fmt).join(', ')})`);
    console.log(`buildah   cached rebuild (--layers): median ${fmt(median(bah.cached))}   (${bah.cached.map(fmt).join(', ')})`);
    console.log(
      `ratios dockless/buildah: cold ${(median(ours.cold) / median(bah.cold)).toFixed(2)}× (target ≤ 0.5×; ` +
        `${(median(ours.cold) / median(bah.coldNoLayers)).toFixed(2)}× against its default), ` +
        `cached ${(median(ours.cached) / median(bah.cached)).toFixed(2)}×`,
    );
  }
  const summary = {
    onDisk,
    coldCache: canDrop,
    iterations: ITERATIONS,
    oursColdMs: Math.round(median(ours.cold)),
    oursCachedMs: Number(median(ours.cached).toFixed(1)),
    oursCachedColdCacheMs: Math.round(median(ours.cachedCold)),
    ...(hasBuildah
      ? { buildahColdMs: Math.round(median(bah.cold)), buildahCachedMs: Math.round(median(bah.cached)), coldRatio: Number((median(ours.cold) / median(bah.cold)).toFixed(2)) }
      : {}),
  };
  console.log(`\nRESULT build ${JSON.stringify(summary)}`);
  const rows: ResultRow[] = [];
  const buildahCold = hasBuildah ? { name: 'buildah bud --layers', value: median(bah.cold) } : undefined;
  const buildahCached = hasBuildah ? { name: 'buildah bud --layers', value: median(bah.cached) } : undefined;
  rows.push(
    { what: 'build cold (5 steps, 1000-file COPY)', ours: median(ours.cold), unit: 'ms', ...(buildahCold ? { peer: buildahCold, ratio: median(ours.cold) / buildahCold.value } : {}), target: '≤ 0.5×' },
    { what: 'build fully cached, in process', ours: median(ours.cached), unit: 'ms', ...(buildahCached ? { peer: buildahCached, ratio: median(ours.cached) / buildahCached.value } : {}), target: '≤ 50 ms' },
    { what: 'build fully cached, page cache dropped', ours: median(ours.cachedCold), unit: 'ms' },
  );
  await writeResults('build', rows, { dir: base, kind: onDisk ? 'disk' : 'shm', cacheDropped: canDrop });
} finally {
  await rm(base, { recursive: true, force: true });
}
