/**
 * Log throughput: MB/s a detached container can write to stdout with its log on
 * (json-lines through the helper's shim, rotated at the defaults), beside
 * `podman run -d` of the same rootfs and command with podman's default log
 * driver (conmon writing `k8s-file`, or whatever `podman info` names), in the
 * same run, and the ratio ours/podman. The start cost is taken out: each side
 * also runs the same container writing nothing, and the figure is
 * bytes / (time writing − time of the empty run), medians of the runs. Our
 * figure with `log: false` (output to /dev/null) is printed too, as the ceiling
 * of the writer itself.
 *
 * podman runs with `--ulimit nofile=1024:1024 --ulimit nproc=1024:1024`: its defaults raise
 * those limits, which fails without CAP_SYS_RESOURCE (as on the machine this was written on).
 *
 * Run: node --import tsx bench/logs.ts [MB] [runs]   (root, for podman)
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime, rootfsFromHost, type ContainerSpec } from '../src/index.js';
import { median, which } from './common.js';

const MB = Number(process.argv[2] ?? 200);
const RUNS = Number(process.argv[3] ?? 3);
const BYTES = MB * 1_000_000;
// 100-byte lines: `yes` writes them in large blocks, `head` stops at the size.
const writer = (bytes: number) => ['sh', '-c', `yes ${'x'.repeat(99)} | head -c ${bytes}`];

const base = await mkdtemp(join(tmpdir(), 'dockless-bench-logs-'));
const fmt = (n: number) => n.toFixed(1).padStart(8);
try {
  const rootfs = await rootfsFromHost(join(base, 'rootfs'));
  const runtime = new Runtime({ root: join(base, 'data'), stateDir: join(base, 'state') });

  const oursOnce = async (bytes: number, extra: Partial<ContainerSpec>) => {
    const t = performance.now();
    await using c = await runtime.run({ rootfs: rootfs.path, cmd: writer(bytes), detached: true, ...extra });
    const exit = await c.wait();
    if (exit.exitCode !== 0) throw new Error(`container exited ${exit.exitCode}`);
    return performance.now() - t;
  };
  const rate = async (extra: Partial<ContainerSpec>) => {
    await oursOnce(BYTES, extra);
    const full: number[] = [];
    const empty: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      full.push(await oursOnce(BYTES, extra));
      empty.push(await oursOnce(0, extra));
    }
    return BYTES / 1e6 / ((median(full) - median(empty)) / 1000);
  };
  const logged = await rate({});
  const unlogged = await rate({ log: false, stdio: 'ignore' });
  console.log(`dockless, log on (json-lines, 20 MB × 5), ${MB} MB of 100-byte lines: ${fmt(logged)} MB/s`);
  console.log(`dockless, log: false (output to /dev/null):                  ${fmt(unlogged)} MB/s`);

  const podman = which('podman');
  if (podman === undefined || process.getuid?.() !== 0) {
    console.log(`podman: not measured (${podman === undefined ? 'not installed: apt-get install -y podman' : 'needs root here'})`);
  } else {
    const driver = spawnSync(podman, ['info', '--format', '{{.Host.LogDriver}}'], { encoding: 'utf8' }).stdout.trim();
    const podmanOnce = (bytes: number) => {
      const t = performance.now();
      const run = spawnSync(podman, ['run', '-d', '--net', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--rootfs', rootfs.path, ...writer(bytes)], { encoding: 'utf8' });
      if (run.status !== 0) throw new Error(`podman run exited ${run.status}: ${run.stderr}`);
      const id = run.stdout.trim();
      const wait = spawnSync(podman, ['wait', id], { encoding: 'utf8' });
      const elapsed = performance.now() - t;
      spawnSync(podman, ['rm', '-f', id], { stdio: 'ignore' });
      if (wait.stdout.trim() !== '0') throw new Error(`podman container exited ${wait.stdout.trim()}`);
      return elapsed;
    };
    podmanOnce(BYTES);
    const full: number[] = [];
    const empty: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      full.push(podmanOnce(BYTES));
      empty.push(podmanOnce(0));
    }
    const theirs = BYTES / 1e6 / ((median(full) - median(empty)) / 1000);
    console.log(`podman run -d, log driver ${driver || 'default'}:                    ${fmt(theirs)} MB/s`);
    console.log(`ratio ours/podman: ${(logged / theirs).toFixed(2)}`);
  }
} finally {
  await rm(base, { recursive: true, force: true });
}
