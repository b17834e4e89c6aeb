/**
 * `dockless-runtime run` of a bundle beside `runc run` of the same bundle (and
 * `crun run` where crun is installed), in the same run, on disk by default:
 *
 * 1. Sequential: N runs of each, interleaved, of a read-only busybox rootfs
 *    running `true`; median and p95 of the whole command (process start,
 *    config.json, cgroups, helper, container, delete).
 * 2. 20 at once: wall time for 20 concurrent runs of each (distinct ids).
 *
 * Target (issue 16): ≤ 0.5× runc's time. A Node process start is a fixed
 * ~40 ms floor of ours that runc (a Go binary) does not pay; the section
 * prints `node -e 0` beside it so the floor is visible.
 *
 * Run: node --import tsx bench/oci-runtime.ts [--runs N] [--shm | --dir PARENT]
 *      (root; `npm run build` first: it runs dist/bundle/runtime.js, the package's bin)
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { arg, benchParent, latencyStats, ratioLine, runcBundle, which } from './common.js';

const RUNS = Number(arg('--runs') ?? 30);
const CONCURRENT = 20;
const BIN = resolve(import.meta.dirname, '..', 'dist', 'bundle', 'runtime.js');

function timed(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.slice(-1000)}`));
      else resolvePromise(performance.now() - started);
    });
  });
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/oci-runtime.ts needs root (runc)');
  if (!existsSync(BIN)) throw new Error('run `npm run build` first: dist/bundle/runtime.js is missing');
  const { dir: parent, kind } = await benchParent();
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
    const runtimes: { name: string; cmd: string; args: (id: string) => string[] }[] = [
      { name: 'dockless-runtime', cmd: process.execPath, args: (id) => [BIN, '--root', join(base, 'dl-state'), 'run', '--bundle', peer.bundle, id] },
      { name: 'runc', cmd: peer.runc, args: (id) => ['--root', peer.root, 'run', '--bundle', peer.bundle, id] },
    ];
    const crun = which('crun');
    if (crun !== undefined) runtimes.push({ name: 'crun', cmd: crun, args: (id) => ['--root', join(base, 'crun-state'), 'run', '--bundle', peer.bundle, id] });
    else console.log('crun: not installed, not measured');

    console.log(`dockless-runtime run vs runc run, ${kind === 'disk' ? 'on disk' : 'on tmpfs'} (${base})`);
    const nodeFloor: number[] = [];
    const samples = new Map(runtimes.map((r) => [r.name, [] as number[]]));
    for (let i = 0; i < 3; i++) for (const r of runtimes) await timed(r.cmd, r.args(`warm-${r.name}-${i}`));
    for (let i = 0; i < RUNS; i++) {
      nodeFloor.push(await timed(process.execPath, ['-e', '0']));
      for (const r of runtimes) samples.get(r.name)!.push(await timed(r.cmd, r.args(`seq-${i}`)));
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

    console.log(`\n${CONCURRENT} at once (wall ms):`);
    const wall = new Map<string, number>();
    for (const r of runtimes) {
      const started = performance.now();
      await Promise.all(Array.from({ length: CONCURRENT }, (_, i) => timed(r.cmd, r.args(`par-${i}`))));
      wall.set(r.name, performance.now() - started);
      console.log(`  ${r.name.padEnd(20)} ${wall.get(r.name)!.toFixed(0)} ms (${((CONCURRENT * 1000) / wall.get(r.name)!).toFixed(1)} containers/s)`);
    }
    console.log(`  ${ratioLine(`${CONCURRENT} at once, dockless-runtime / runc`, wall.get('dockless-runtime')!, wall.get('runc')!, 0.5)}`);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

await main();
