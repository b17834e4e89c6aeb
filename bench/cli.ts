/**
 * The `dockless` command as a whole process: `dockless run --rm IMAGE true`
 * (Node's start included) beside `podman run --rm` of the same image and
 * `runc run` of the same rootfs, interleaved in the same run, and how much of
 * ours is Node's own start (`node -e 0`) and the import of the library;
 * the bin (dist/bin/dockless: the launcher and its V8 startup snapshot) beside
 * the plain bundle it falls back to (`node dist/bundle/cli.js`).
 * podman gets `--ulimit nofile=<our hard limit>` and `nproc=4096` (without CAP_SYS_RESOURCE it cannot
 * raise RLIMIT_NOFILE to its default); both run with `--network none` (the command line's default
 * is Docker's `bridge`, as podman's is).
 * On disk by default (a directory under /var/tmp); `--shm` uses /dev/shm. As
 * root, the page cache is dropped once before the timed runs (a first command
 * meets a cold disk); the medians are of warm runs after that.
 *
 * Writes bench/results/cli.json.
 *
 * Run: npm run build && node --import tsx bench/cli.ts [--runs N] [--shm]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { rootfsFromHost } from '../src/index.js';
import { arg, compare, latencyStats, nodeEnv, runcBundle, which, writeResults, type ResultRow } from './common.js';

const RUNS = Number(arg('--runs') ?? 30);
const dir = process.argv.includes('--shm') ? '/dev/shm' : '/var/tmp';
// The package's bin, as users run it: the launcher (native/cli/main.c, which starts Node from the
// command line's V8 startup snapshot), beside the plain bundle it falls back to. An install puts
// that binary at dist/bin/dockless; a checkout's dist/bin/dockless is the shell script shipped
// in the tarball (a shell and a readlink more), which runs it.
const NATIVE = resolve('native/build/dockless-cli');
const LAUNCHER = existsSync(NATIVE) ? NATIVE : resolve('dist/bin/dockless');
const BIN = resolve('dist/bundle/cli.js');
const base = await mkdtemp(join(dir, 'dockless-bench-cli-'));

/** This process's hard limit of `ulimit -H<flag>`, which podman may keep but not exceed here. */
function hardLimit(flag: string): string {
  return execFileSync('bash', ['-c', `ulimit -H${flag}`], { encoding: 'utf8' }).trim().replace('unlimited', '-1');
}

function dropCaches(): void {
  if (process.getuid?.() !== 0) {
    console.log('# not root: the page cache is not dropped');
    return;
  }
  execFileSync('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches']);
  console.log('# page cache dropped before the timed runs');
}

function timed(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): number {
  const t = performance.now();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString()}`);
  return ms;
}

try {
  const rootfs = await rootfsFromHost(join(base, 'rootfs'));
  const env = nodeEnv({ DOCKLESS_ROOT: join(base, 'dl') });
  execFileSync(process.execPath, [BIN, 'import', rootfs.path, 'bench:1'], { env, stdio: 'ignore' });

  const variants: { name: string; run: () => number }[] = [
    { name: 'node -e 0', run: () => timed(process.execPath, ['-e', '0'], env) },
    { name: 'node + import dockless', run: () => timed(process.execPath, ['-e', `import(${JSON.stringify(resolve('dist/bundle/index.js'))})`], env) },
    { name: 'dockless run --rm', run: () => timed(LAUNCHER, ['run', '--rm', '--network', 'none', 'bench:1', 'true'], env) },
    { name: 'node dist/bundle/cli.js run --rm', run: () => timed(process.execPath, [BIN, 'run', '--rm', '--network', 'none', 'bench:1', 'true'], env) },
  ];
  const podman = which('podman');
  if (podman !== undefined && process.getuid?.() === 0) {
    const storage = ['--root', join(base, 'podman-root'), '--runroot', join(base, 'podman-run'), '--storage-driver', 'overlay'];
    execFileSync('tar', ['-C', rootfs.path, '-cf', join(base, 'rootfs.tar'), '.']);
    execFileSync(podman, [...storage, 'import', join(base, 'rootfs.tar'), 'bench:1'], { stdio: 'ignore' });
    variants.push({ name: 'podman run --rm', run: () => timed(podman, [...storage, 'run', '--rm', '--network', 'none', '--ulimit', `nofile=${hardLimit('n')}`, '--ulimit', 'nproc=4096:4096', 'localhost/bench:1', 'true']) });
  } else {
    console.log('# podman: not measured (not installed, or not root)');
  }
  const bundle = await runcBundle(base, rootfs.path, ['true']);
  if ('skip' in bundle) console.log(`# runc: ${bundle.skip}`);
  else {
    let n = 0;
    variants.push({ name: 'runc run', run: () => timed(bundle.runc, ['--root', bundle.root, 'run', '--bundle', bundle.bundle, `bench-${process.pid}-${n++}`]) });
  }

  dropCaches();
  const first = variants.map((v) => [v.name, v.run()] as const);
  for (let i = 0; i < 3; i++) for (const v of variants) v.run();
  const samples = new Map(variants.map((v) => [v.name, [] as number[]]));
  // Interleaved, so that load on the machine hits every variant alike.
  for (let i = 0; i < RUNS; i++) for (const v of variants) samples.get(v.name)!.push(v.run());

  const stats = new Map([...samples].map(([name, s]) => [name, { ...latencyStats(s), min: Math.min(...s) }]));
  console.log(`\nwhole process, ${RUNS} runs each (ms)        median      p95      min   first (cold)`);
  for (const [name, first0] of first) {
    const s = stats.get(name)!;
    console.log(`${name.padEnd(40)} ${s.median.toFixed(1).padStart(8)} ${s.p95.toFixed(1).padStart(8)} ${s.min.toFixed(1).padStart(8)} ${first0.toFixed(1).padStart(10)}`);
  }
  const ours = stats.get('dockless run --rm')!.median;
  const node = stats.get('node -e 0')!.median;
  const imported = stats.get('node + import dockless')!.median;
  console.log(`\nof ours: Node's start ${node.toFixed(1)} ms, the library's import ${(imported - node).toFixed(1)} ms, the CLI and the container ${(ours - imported).toFixed(1)} ms`);
  const plainBundle = stats.get('node dist/bundle/cli.js run --rm')!.median;
  console.log(`the startup snapshot: ${ours.toFixed(1)} ms through the bin vs ${plainBundle.toFixed(1)} ms for the plain bundle`);
  const rows: ResultRow[] = [
    compare('dockless run --rm (CLI, whole process) vs node -e 0', ours, 'ms', { name: 'node -e 0', value: node }),
    compare('dockless run --rm: the bin (startup snapshot) vs the plain bundle', ours, 'ms', { name: 'node dist/bundle/cli.js', value: plainBundle }),
    compare("dockless run --rm: the library's import", imported - node, 'ms'),
  ];
  const peer = stats.get('podman run --rm');
  if (peer !== undefined) {
    rows.push(compare('dockless run --rm (CLI, whole process)', ours, 'ms', { name: 'podman run --rm', value: peer.median }, { target: '≤ 0.5×' }));
    console.log(`dockless / podman: ${(ours / peer.median).toFixed(2)}× (target ≤ 0.5×)`);
    // The minimum is the run least disturbed by other load: on a shared machine the medians measure the load too.
    console.log(`dockless / podman, fastest runs: ${(stats.get('dockless run --rm')!.min / peer.min).toFixed(2)}×`);
  }
  const runc = stats.get('runc run');
  if (runc !== undefined) {
    console.log(`dockless / runc:   ${(ours / runc.median).toFixed(2)}×`);
    rows.push(compare('dockless run --rm (CLI) vs runc run', ours, 'ms', { name: 'runc run', value: runc.median }));
  }
  await writeResults('cli', rows, { dir, kind: dir === '/dev/shm' ? 'shm' : 'disk', cacheDropped: process.getuid?.() === 0 });
} finally {
  // podman leaves its storage's overlay mounted after run: unmount what is below our directory first.
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(`${base}/`));
  for (const m of mounts.sort().reverse()) spawnSync('umount', [m]);
  await rm(base, { recursive: true, force: true }).catch(() => undefined);
}
