/**
 * bench/memory: peak resident memory of the work users meet, each in its own
 * process under `/usr/bin/time -v` (Maximum resident set size), beside the
 * peers doing the same work in the same run:
 *
 * - import: a bare `node` against `node` + `import('dockless')` (from
 *   `dist/`, so run `npm run build` first), RSS after import (VmRSS) and
 *   peak (VmHWM) from /proc/self/status. Target: the library adds ≤ 40 MiB.
 * - pull: `store.pull` of the two bench/unpack images from a local registry
 *   against `podman pull` (its own storage, overlay driver) and
 *   `skopeo copy` + `umoci raw unpack`. Target: ours ≤ podman's peak.
 * - build: the bench/build Dockerfile (1000-file COPY), cold, against
 *   `buildah bud --layers`. Target: ours ≤ buildah's peak.
 *
 * Peaks that do not grow with the image size are what streaming with bounded
 * buffers gives: the two images differ in shape (one big layer, four smaller
 * ones), so a buffer that grows with a layer shows as a difference.
 *
 * `--breakdown`: each pull of ours runs once more, untimed, sampling itself
 * every 5 ms, and prints what its peak was made of: the V8 heap (used /
 * total, of which the young generation), live `ArrayBuffer`s, and the
 * resident pages by mapping: malloc's heap (`[heap]`: Buffers and zlib
 * state), other anonymous mappings (the V8 heap, thread stacks, malloc's
 * other arenas), the node binary's pages, other files. The sampling itself
 * costs a little memory, so this peak is not the one above.
 *
 *   node --import tsx bench/memory.ts [--dir PARENT | --shm] [--breakdown]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry } from '../test/fixtures/registry.js';
import { dropCaches, imageBenchParent, timeV, writeResults, type ResultRow } from './common.js';
import { ensureImages, layoutOf } from './unpack.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// What `import('dockless')` loads (package.json "exports"), not tsc's per-module output beside it.
const DIST = path.join(REPO, 'dist', 'bundle', 'index.js');
const MiB = 1024;

/** Runs an ES module script in a plain `node` (no loader) under /usr/bin/time -v. */
function nodeScript(script: string, env: Record<string, string> = {}): { ms: number; maxRssKiB: number; stdout: string } {
  const started = performance.now();
  const r = spawnSync('/usr/bin/time', ['-v', process.execPath, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, ...env, DIST },
    maxBuffer: 1 << 26,
  });
  const ms = performance.now() - started;
  if (r.status !== 0) throw new Error(`node script failed (${r.status}):\n${r.stderr.slice(-3000)}`);
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  return { ms, maxRssKiB: m ? Number(m[1]) : NaN, stdout: r.stdout };
}

/**
 * A pull that samples itself (`--breakdown`) and prints one JSON line: VmRSS
 * bare and after import, and at its highest sample the V8 heap, live
 * ArrayBuffers, threads, and resident KiB by mapping.
 */
const SAMPLED_PULL = `
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
const status = () => Object.fromEntries([...readFileSync('/proc/self/status', 'utf8').matchAll(/^(\\w+):\\s+(\\d+)/gm)].map((m) => [m[1], Number(m[2])]));
const mappings = () => {
  const out = {};
  let name = '';
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \\S+ \\S+ \\S+ \\d+\\s*(.*)$/.exec(line);
    if (head) {
      name = head[1] === '' ? 'anon' : head[1] === process.execPath ? 'node' : head[1].startsWith('/') ? 'files' : head[1];
      continue;
    }
    const rss = /^Rss:\\s+(\\d+)/.exec(line);
    if (rss) out[name] = (out[name] ?? 0) + Number(rss[1]);
  }
  return out;
};
let peak = { rss: 0 };
const sample = () => {
  const s = status();
  if (s.VmRSS <= peak.rss + 256) return;
  const m = process.memoryUsage();
  const young = v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space');
  peak = { rss: s.VmRSS, threads: s.Threads, heapUsed: m.heapUsed >> 10, heapTotal: m.heapTotal >> 10, young: (young?.space_size ?? 0) >> 10, arrayBuffers: m.arrayBuffers >> 10, mappings: mappings() };
};
const bare = status().VmRSS;
const { ImageStore } = await import(process.env.DIST);
const imported = status().VmRSS;
const timer = setInterval(sample, 5);
const store = await ImageStore.open({ root: process.env.ROOT });
await store.pull(process.env.REF);
clearInterval(timer);
sample();
console.log(JSON.stringify({ bare, imported, peak }));
`;

const mib = (kib: number): string => `${(kib / MiB).toFixed(0).padStart(4)} MiB`;

const STATUS = `const status = async () => { const s = await (await import('node:fs/promises')).readFile('/proc/self/status', 'utf8'); const g = (k) => Number(new RegExp('^' + k + ':\\\\s+(\\\\d+)', 'm').exec(s)[1]); return { rss: g('VmRSS'), hwm: g('VmHWM') }; };`;

async function main(): Promise<void> {
  if (!existsSync(DIST)) {
    console.log(`${DIST} is missing: run npm run build first`);
    process.exitCode = 1;
    return;
  }
  const { parent, onDisk, canDrop } = await imageBenchParent();
  const results: Record<string, unknown> = {};
  const rows: ResultRow[] = [];
  console.log(`node ${process.version}, work under ${parent} (${onDisk ? 'disk' : 'tmpfs'})${canDrop ? ', page cache dropped before each run' : ''}\n`);

  // ---- import: what loading the library costs a process
  const bare = [];
  const loaded = [];
  for (let i = 0; i < 3; i++) {
    bare.push(JSON.parse(nodeScript(`${STATUS} await new Promise((r) => setTimeout(r, 50)); console.log(JSON.stringify(await status()));`).stdout));
    loaded.push(
      JSON.parse(nodeScript(`${STATUS} await import(process.env.DIST); await new Promise((r) => setTimeout(r, 50)); console.log(JSON.stringify(await status()));`).stdout),
    );
  }
  const mid = (xs: Array<{ rss: number }>): number => [...xs].map((x) => x.rss).sort((a, b) => a - b)[1]!;
  const added = mid(loaded) - mid(bare);
  console.log(`import: bare node VmRSS ${mib(mid(bare))}, after import('dockless') ${mib(mid(loaded))}: the library adds ${mib(added)} (target ≤ 40 MiB) ${added <= 40 * MiB ? 'OK' : 'OVER TARGET'}`);
  results['import'] = { bareRssKiB: mid(bare), loadedRssKiB: mid(loaded), addedKiB: added };
  rows.push({ what: "RSS added by import('dockless')", ours: added / MiB, unit: 'MiB', target: '≤ 40 MiB' });

  // ---- pull
  const images = await ensureImages();
  const work = await fs.mkdtemp(path.join(parent, 'dockless-bench-memory-'));
  try {
    await using registry = await startRegistry();
    for (const image of Object.keys(images) as Array<keyof typeof images>) {
      const ref = `${registry.host}/bench/${image}:1`;
      execFileSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layoutOf(image)}:${image}`, `docker://${ref}`]);
      const dir = path.join(work, `pull-${image}`);
      await fs.mkdir(dir);
      dropCaches();
      const ours = nodeScript(
        `const { ImageStore } = await import(process.env.DIST); const store = await ImageStore.open({ root: process.env.ROOT }); await store.pull(process.env.REF);`,
        { ROOT: path.join(dir, 'store'), REF: ref },
      );
      if (process.argv.includes('--breakdown')) {
        dropCaches();
        const sampled = nodeScript(SAMPLED_PULL, { ROOT: path.join(dir, 'sampled'), REF: ref });
        const { bare, imported, peak } = JSON.parse(sampled.stdout) as {
          bare: number;
          imported: number;
          peak: { rss: number; threads: number; heapUsed: number; heapTotal: number; young: number; arrayBuffers: number; mappings: Record<string, number> };
        };
        const m = peak.mappings;
        console.log(
          `pull ${image.padEnd(5)} breakdown: bare node ${mib(bare)}, after import ${mib(imported)}; at the sampled peak ${mib(peak.rss)}: ` +
            `malloc heap ${mib(m['[heap]'] ?? 0)}, other anonymous ${mib(m['anon'] ?? 0)} (V8 heap ${mib(peak.heapUsed)} used of ${mib(peak.heapTotal)}, young generation ${mib(peak.young)}), ` +
            `node binary ${mib(m['node'] ?? 0)}, other files ${mib(m['files'] ?? 0)}; live ArrayBuffers ${mib(peak.arrayBuffers)}, ${peak.threads} threads`,
        );
        results[`pull-${image}-breakdown`] = { bareKiB: bare, importedKiB: imported, peak };
        await fs.rm(path.join(dir, 'sampled'), { recursive: true, force: true });
      }
      dropCaches();
      // podman refuses a runroot longer than 50 characters.
      const runroot = await fs.mkdtemp('/tmp/dlm-');
      const podmanRoot = ['--root', path.join(dir, 'podman'), '--runroot', runroot, '--storage-driver', 'overlay'];
      const podman = timeV('podman', [...podmanRoot, 'pull', '--quiet', '--tls-verify=false', `docker://${ref}`]);
      dropCaches();
      const skopeo = timeV('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}/layout:bench`]);
      const umoci = timeV('umoci', ['raw', 'unpack', '--image', `${dir}/layout:bench`, `${dir}/rootfs`]);
      spawnSync('podman', [...podmanRoot, 'system', 'reset', '--force'], { stdio: 'ignore' });
      await fs.rm(runroot, { recursive: true, force: true });
      console.log(
        `pull ${image.padEnd(5)}: dockless ${mib(ours.maxRssKiB)}   podman pull ${mib(podman.maxRssKiB)}   skopeo ${mib(skopeo.maxRssKiB)} + umoci ${mib(umoci.maxRssKiB)}   ` +
          `ours / podman ${(ours.maxRssKiB / podman.maxRssKiB).toFixed(2)}× (target ≤ 1.00×) ${ours.maxRssKiB <= podman.maxRssKiB ? 'OK' : 'OVER TARGET'}`,
      );
      rows.push({ what: `peak RSS, pull ${image}`, ours: ours.maxRssKiB / MiB, unit: 'MiB', peer: { name: 'podman pull', value: podman.maxRssKiB / MiB }, ratio: ours.maxRssKiB / podman.maxRssKiB, target: '≤ 1.0×' });
      results[`pull-${image}`] = { oursKiB: ours.maxRssKiB, podmanKiB: podman.maxRssKiB, skopeoKiB: skopeo.maxRssKiB, umociKiB: umoci.maxRssKiB };
      await fs.rm(dir, { recursive: true, force: true });
    }
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }

  // ---- build
  const base = path.join(parent, `dockless-bench-memory-build-${randomBytes(6).toString('hex')}`);
  try {
    const context = path.join(base, 'context');
    await fs.mkdir(path.join(context, 'src'), { recursive: true });
    for (let i = 0; i < 1000; i++) await fs.writeFile(path.join(context, 'src', `file-${String(i).padStart(4, '0')}.js`), randomBytes(10_000).toString('base64'));
    await fs.writeFile(
      path.join(context, 'Dockerfile'),
      'FROM bench-base\nRUN mkdir -p /opt/gen && for i in $(seq 1 200); do echo "line $i" > /opt/gen/file-$i.txt; done\nCOPY src/ /srv/src/\nENV APP_MODE=bench\nRUN rm /srv/src/file-0000.js\nCMD ["ls", "/srv/src"]\n',
    );
    const store = path.join(base, 'store');
    // The base, untimed: a busybox root filesystem imported and unpacked, then read by buildah from our store.
    nodeScript(
      `const d = await import(process.env.DIST); const store = await d.ImageStore.open({ root: process.env.ROOT }); const rootfs = await d.rootfsFromHost(process.env.ROOTFS); await d.importRootfs(store, rootfs.path, { tag: 'bench-base' }); await store.snapshot('bench-base');`,
      { ROOT: store, ROOTFS: path.join(base, 'rootfs') },
    );
    dropCaches();
    const ours = nodeScript(
      `const d = await import(process.env.DIST); const store = await d.ImageStore.open({ root: process.env.ROOT }); const runtime = new d.Runtime({ root: process.env.DATA, stateDir: process.env.STATE, store }); await d.LayerBuilder.fromDockerfile(store, { context: process.env.CONTEXT, runtime, tag: 'bench-app' });`,
      { ROOT: store, DATA: path.join(base, 'data'), STATE: path.join(base, 'state'), CONTEXT: context },
    );
    const buildahRun = await fs.mkdtemp('/tmp/dlm-');
    const flags = ['--root', path.join(base, 'buildah'), '--runroot', buildahRun, '--storage-driver', 'overlay'];
    execFileSync('buildah', [...flags, 'pull', '--quiet', `oci:${store}:docker.io/library/bench-base:latest`], { stdio: 'ignore' });
    const id = execFileSync('buildah', [...flags, 'images', '-q']).toString().trim().split('\n')[0]!;
    execFileSync('buildah', [...flags, 'tag', id, 'docker.io/library/bench-base:latest']);
    dropCaches();
    const buildah = timeV('buildah', [...flags, 'bud', '--quiet', '--layers', '--network', 'none', '--pull=never', '-t', 'bench-app', '-f', path.join(context, 'Dockerfile'), context]);
    spawnSync('buildah', [...flags, 'rm', '--all'], { stdio: 'ignore' });
    spawnSync('buildah', [...flags, 'rmi', '--all', '--force'], { stdio: 'ignore' });
    await fs.rm(buildahRun, { recursive: true, force: true });
    console.log(
      `build cold  : dockless ${mib(ours.maxRssKiB)}   buildah bud --layers ${mib(buildah.maxRssKiB)}   ours / buildah ${(ours.maxRssKiB / buildah.maxRssKiB).toFixed(2)}× (target ≤ 1.00×) ${ours.maxRssKiB <= buildah.maxRssKiB ? 'OK' : 'OVER TARGET'}`,
    );
    rows.push({ what: 'peak RSS, cold build', ours: ours.maxRssKiB / MiB, unit: 'MiB', peer: { name: 'buildah bud --layers', value: buildah.maxRssKiB / MiB }, ratio: ours.maxRssKiB / buildah.maxRssKiB, target: '≤ 1.0×' });
    results['build'] = { oursKiB: ours.maxRssKiB, buildahKiB: buildah.maxRssKiB };
  } finally {
    await fs.rm(base, { recursive: true, force: true }).catch(() => undefined);
  }
  console.log(`\nRESULT memory ${JSON.stringify({ onDisk, coldCache: canDrop, ...results })}`);
  await writeResults('memory', rows, { dir: parent, kind: onDisk ? 'disk' : 'shm', cacheDropped: canDrop });
}

await main();
