/**
 * `dockless-runtime run` of a bundle beside `runc run` of the same bundle (and
 * `crun run` where crun is installed), in the same run, on disk by default:
 *
 * 1. Sequential: N runs of each, interleaved, of a read-only busybox rootfs
 *    running `true`; median and p95 of the whole command (process start,
 *    config.json, cgroups, helper, container, delete).
 * 2. 20 at once: wall time for 20 concurrent runs of each (distinct ids).
 * 3. runc's model as conmon and the containerd shim drive it: `create`, then
 *    `start`, `state`, `kill`, `delete --force` as separate commands (the
 *    last four run by the native front end), sequential.
 * 4. podman's real flow: `podman --runtime dockless-runtime run --rm IMAGE true`
 *    beside `podman --runtime runc run --rm IMAGE true` (private podman storage
 *    under the bench directory, `--network none`: no host network state).
 *
 * Target (issue 16): ≤ 0.5× runc's time. A Node process start is a fixed
 * ~40-80 ms floor of `create` (which runs the policy code in Node) that runc
 * (a Go binary) does not pay; the section prints `node -e 0` beside it, and
 * the same binary with `DOCKLESS_SNAPSHOT=0` (its Node front end started from
 * the script rather than its V8 startup snapshot) for `run` and runc's model.
 *
 * Run: node --import tsx bench/oci-runtime.ts [--runs N] [--shm | --dir PARENT]
 *      (root; `npm run build` first: it runs native/build/dockless-runtime, what
 *      `npm install` puts at the package's bin)
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { arg, benchParent, compare, dropCaches, latencyStats, ratioLine, runcBundle, which, writeResults, type ResultRow } from './common.js';

const RUNS = Number(arg('--runs') ?? 30);
const CONCURRENT = 20;
const BIN = resolve(import.meta.dirname, '..', 'native', 'build', 'dockless-runtime');
const NODE_FRONT = resolve(import.meta.dirname, '..', 'dist', 'bundle', 'runtime.js');
const PODMAN_RUNS = Math.max(5, Math.round(RUNS / 3));
const NO_SNAPSHOT = 'without snapshot';

function timed(cmd: string, args: string[], env?: Record<string, string>): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...(env !== undefined ? { env: { ...process.env, ...env } } : {}) });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    // 'exit', not 'close': a created container's pid 1 holds the stderr pipe it inherited (with runc too).
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.slice(-1000)}`));
      else resolvePromise(performance.now() - started);
    });
  });
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/oci-runtime.ts needs root (runc)');
  if (!existsSync(BIN)) throw new Error('run `npm run build` first: native/build/dockless-runtime is missing');
  const { dir: parent, kind } = await benchParent();
  const rows: ResultRow[] = [];
  const cacheDropped = kind === 'disk' && dropCaches();
  const base = await mkdtemp(join(parent, 'dockless-oci-bench-'));
  try {
    const rootfs = join(base, 'rootfs');
    await mkdir(join(rootfs, 'bin'), { recursive: true });
    await copyFile('/bin/busybox', join(rootfs, 'bin', 'busybox'));
    await symlink('busybox', join(rootfs, 'bin', 'true'));
    const peer = await runcBundle(base, rootfs, ['true']);
    if ('skip' in peer) throw new Error(peer.skip);
    // runc's bundle has `terminal: false`; the same config.json for every runtime.
    const config = JSON.parse(await readFile(join(peer.bundle, 'config.json'), 'utf8'));
    await writeFile(join(peer.bundle, 'config.json'), JSON.stringify(config));
    const runtimes: { name: string; cmd: string; args: (id: string) => string[]; env?: Record<string, string> }[] = [
      { name: 'dockless-runtime', cmd: BIN, args: (id) => ['--root', join(base, 'dl-state'), 'run', '--bundle', peer.bundle, id] },
      { name: 'runc', cmd: peer.runc, args: (id) => ['--root', peer.root, 'run', '--bundle', peer.bundle, id] },
      // The same binary with its Node front end started from the script, not its V8 startup snapshot: what the snapshot saves.
      { name: NO_SNAPSHOT, cmd: BIN, args: (id) => ['--root', join(base, 'dl-state-plain'), 'run', '--bundle', peer.bundle, id], env: { DOCKLESS_SNAPSHOT: '0' } },
    ];
    const crun = which('crun');
    if (crun !== undefined) runtimes.push({ name: 'crun', cmd: crun, args: (id) => ['--root', join(base, 'crun-state'), 'run', '--bundle', peer.bundle, id] });
    else console.log('crun: not installed, not measured');

    console.log(`dockless-runtime run vs runc run, ${kind === 'disk' ? 'on disk' : 'on tmpfs'} (${base})`);
    const nodeFloor: number[] = [];
    const samples = new Map(runtimes.map((r) => [r.name, [] as number[]]));
    for (let i = 0; i < 3; i++) for (const r of runtimes) await timed(r.cmd, r.args(`warm-${i}`), r.env);
    for (let i = 0; i < RUNS; i++) {
      nodeFloor.push(await timed(process.execPath, ['-e', '0']));
      for (const r of runtimes) samples.get(r.name)!.push(await timed(r.cmd, r.args(`seq-${i}`), r.env));
    }
    console.log(`\nsequential, ${RUNS} runs each (ms):`);
    const floor = latencyStats(nodeFloor);
    console.log(`  ${'node -e 0 (floor)'.padEnd(20)} median ${floor.median.toFixed(1)}  p95 ${floor.p95.toFixed(1)}`);
    for (const r of runtimes) {
      const s = latencyStats(samples.get(r.name)!);
      console.log(`  ${r.name.padEnd(20)} median ${s.median.toFixed(1)}  p95 ${s.p95.toFixed(1)}`);
    }
    const ours = latencyStats(samples.get('dockless-runtime')!).median;
    const runc = latencyStats(samples.get('runc')!).median;
    console.log(`  ${ratioLine('sequential, dockless-runtime / runc', ours, runc, 0.5)}`);
    rows.push(compare('dockless-runtime run, sequential', ours, 'ms', { name: 'runc run', value: runc }, { target: '≤ 0.5× runc' }));
    const plainRun = latencyStats(samples.get(NO_SNAPSHOT)!).median;
    console.log(`  ${ratioLine('sequential, without snapshot / runc', plainRun, runc, 0.5)}`);
    rows.push(compare('dockless-runtime run, sequential, Node front end without its snapshot', plainRun, 'ms', { name: 'runc run', value: runc }));
    rows.push(compare('node -e 0 (Node start alone)', floor.median, 'ms', { name: 'runc run', value: runc }));

    console.log(`\n${CONCURRENT} at once (wall ms):`);
    const wall = new Map<string, number>();
    for (const r of runtimes) {
      const started = performance.now();
      await Promise.all(Array.from({ length: CONCURRENT }, (_, i) => timed(r.cmd, r.args(`par-${i}`), r.env)));
      wall.set(r.name, performance.now() - started);
      console.log(`  ${r.name.padEnd(20)} ${wall.get(r.name)!.toFixed(0)} ms (${((CONCURRENT * 1000) / wall.get(r.name)!).toFixed(1)} containers/s)`);
    }
    console.log(`  ${ratioLine(`${CONCURRENT} at once, dockless-runtime / runc`, wall.get('dockless-runtime')!, wall.get('runc')!, 0.5)}`);
    rows.push(
      compare(`dockless-runtime run, ${CONCURRENT} at once (wall)`, wall.get('dockless-runtime')!, 'ms', { name: 'runc', value: wall.get('runc')! }, { target: '≤ 0.5× runc' }),
    );

    console.log(`\nrunc's model, sequential, ${RUNS} each (ms): create, start, state, kill, delete --force`);
    const steps = ['create', 'start', 'state', 'kill', 'delete'] as const;
    const lifecycleRuntimes = runtimes.slice(0, 3);
    const stepSamples = new Map(lifecycleRuntimes.map((r) => [r.name, new Map(steps.map((s) => [s, [] as number[]]))]));
    const lifecycle = new Map(lifecycleRuntimes.map((r) => [r.name, [] as number[]]));
    // `sleep` rather than `true`: kill and delete then act on a running container, as podman stop/rm do.
    await symlink('busybox', join(rootfs, 'bin', 'sleep'));
    const sleeper = join(base, 'sleeper');
    await mkdir(sleeper);
    await writeFile(join(sleeper, 'config.json'), JSON.stringify({ ...config, process: { ...config.process, args: ['sleep', '60'] }, root: { ...config.root, path: rootfs } }));
    for (let i = 0; i < RUNS; i++) {
      for (const r of lifecycleRuntimes) {
        const root = r.name === 'runc' ? peer.root : join(base, r.name === NO_SNAPSHOT ? 'dl-state-plain' : 'dl-state');
        const id = `life-${i}`;
        const argv: Record<(typeof steps)[number], string[]> = {
          create: ['--root', root, 'create', '--bundle', sleeper, id],
          start: ['--root', root, 'start', id],
          state: ['--root', root, 'state', id],
          kill: ['--root', root, 'kill', id, 'KILL'],
          delete: ['--root', root, 'delete', '--force', id],
        };
        let total = 0;
        for (const step of steps) {
          const ms = await timed(r.cmd, argv[step], r.env);
          stepSamples.get(r.name)!.get(step)!.push(ms);
          total += ms;
        }
        lifecycle.get(r.name)!.push(total);
      }
    }
    for (const step of steps) {
      const [a, b, c] = lifecycleRuntimes.map((r) => latencyStats(stepSamples.get(r.name)!.get(step)!).median);
      console.log(`  ${step.padEnd(8)} dockless-runtime ${a!.toFixed(1)}   runc ${b!.toFixed(1)}   ratio ${(a! / b!).toFixed(2)}   (without snapshot ${c!.toFixed(1)}, ratio ${(c! / b!).toFixed(2)})`);
    }
    const nativeSteps = (name: string) => latencyStats(stepSamples.get(name)!.get('start')!).median + latencyStats(stepSamples.get(name)!.get('state')!).median + latencyStats(stepSamples.get(name)!.get('kill')!).median + latencyStats(stepSamples.get(name)!.get('delete')!).median;
    rows.push(compare('dockless-runtime start+state+kill+delete (native front end)', nativeSteps('dockless-runtime'), 'ms', { name: 'runc', value: nativeSteps('runc') }, { target: '≤ 0.5× runc' }));
    const runcCreate = latencyStats(stepSamples.get('runc')!.get('create')!).median;
    rows.push(compare('dockless-runtime create', latencyStats(stepSamples.get('dockless-runtime')!.get('create')!).median, 'ms', { name: 'runc create', value: runcCreate }));
    rows.push(compare('dockless-runtime create, Node front end without its snapshot', latencyStats(stepSamples.get(NO_SNAPSHOT)!.get('create')!).median, 'ms', { name: 'runc create', value: runcCreate }));
    rows.push(compare('dockless-runtime create→delete, whole lifecycle', latencyStats(lifecycle.get('dockless-runtime')!).median, 'ms', { name: 'runc', value: latencyStats(lifecycle.get('runc')!).median }, { target: '≤ 0.5× runc' }));

    const podman = which('podman');
    if (podman === undefined) console.log('\npodman: not installed, not measured');
    else rows.push(...(await podmanRows(podman, base, rootfs, peer.runc)));
    await writeResults('oci-runtime', rows, { dir: base, kind, cacheDropped });
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

/** `podman run --rm IMAGE true` with each runtime, on a private podman storage. */
async function podmanRows(podman: string, base: string, rootfs: string, runc: string): Promise<ResultRow[]> {
  const storage = ['--root', join(base, 'podman-root'), '--runroot', join(base, 'podman-run'), '--cgroup-manager=cgroupfs', '--events-backend=none'];
  const image = 'localhost/dockless-oci-bench:latest';
  const tar = join(base, 'rootfs.tar');
  await timed('tar', ['-C', rootfs, '-cf', tar, '.']);
  await timed(podman, [...storage, 'import', tar, image]);
  // No CAP_SYS_RESOURCE here: podman's default rlimits would be above the hard limits of this process.
  const runArgs = (runtime: string) => [...storage, '--runtime', runtime, 'run', '--rm', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', image, 'true'];
  const peers = [
    { name: 'dockless-runtime', runtime: BIN },
    { name: 'runc', runtime: runc },
    // What the bin was before the native front end: every command a Node process.
    { name: 'Node front end only', runtime: NODE_FRONT },
  ];
  const samples = new Map(peers.map((p) => [p.name, [] as number[]]));
  try {
    for (const p of peers) await timed(podman, runArgs(p.runtime));
    for (let i = 0; i < PODMAN_RUNS; i++) for (const p of peers) samples.get(p.name)!.push(await timed(podman, runArgs(p.runtime)));
  } finally {
    await timed(podman, [...storage, 'rmi', '-f', image]).catch(() => undefined);
    // podman leaves its overlay mounts and storage lock under --root until told to go.
    await timed(podman, [...storage, 'system', 'reset', '-f']).catch(() => undefined);
  }
  console.log(`\npodman run --rm IMAGE true, ${PODMAN_RUNS} runs each (ms):`);
  const [ours, theirs, nodeOnly] = peers.map((p) => latencyStats(samples.get(p.name)!));
  peers.forEach((p, i) => console.log(`  ${p.name.padEnd(20)} median ${[ours, theirs, nodeOnly][i]!.median.toFixed(1)}  p95 ${[ours, theirs, nodeOnly][i]!.p95.toFixed(1)}`));
  return [
    compare('podman --runtime dockless-runtime run --rm IMAGE true', ours!.median, 'ms', { name: 'podman --runtime runc', value: theirs!.median }, { target: '≤ 0.5× runc' }),
    compare('podman run --rm: native front end vs Node front end only', ours!.median, 'ms', { name: 'Node front end only', value: nodeOnly!.median }),
  ];
}

await main();
