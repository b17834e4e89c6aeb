/**
 * Exec latency: `container.exec(['true'])` to `wait()` resolving in a running
 * container, N sequential execs (median, p95), beside `runc exec … true` into a
 * runc container of the same rootfs, in the same run, and the ratio ours/runc.
 * Also `container.output(['true'])`, the one-call form.
 *
 * In a directory on disk (`--shm` for /dev/shm, `--dir PARENT` for another),
 * with the page cache dropped first when root.
 *
 * Run: node --import tsx bench/exec.ts [runs] [--shm | --dir PARENT]   (root, for runc)
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Runtime, rootfsFromHost } from '../src/index.js';
import { benchParent, compare, dropCaches, latencyStats, runcBundle, writeResults, type ResultRow } from './common.js';

const RUNS = /^\d+$/.test(process.argv[2] ?? '') ? Number(process.argv[2]) : 200;

const fmt = (n: number) => n.toFixed(2).padStart(8);

const parent = await benchParent();
const base = await mkdtemp(join(parent.dir, 'dockless-bench-exec-'));
const rows: ResultRow[] = [];
try {
  const rootfs = await rootfsFromHost(join(base, 'rootfs'));
  const runtime = new Runtime({ root: join(base, 'data'), stateDir: join(base, 'state') });
  await using c = await runtime.run({ rootfs: rootfs.path, cmd: ['sleep', '100000'], stdio: 'ignore' });

  const execOnce = async () => {
    const t = performance.now();
    const p = await c.exec(['true'], { stdio: 'ignore' });
    await p.wait();
    return performance.now() - t;
  };
  const outputOnce = async () => {
    const t = performance.now();
    await c.output(['true']);
    return performance.now() - t;
  };
  for (let i = 0; i < 10; i++) await execOnce();
  const cacheDropped = dropCaches();
  const ours: number[] = [];
  const outputs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    ours.push(await execOnce());
    outputs.push(await outputOnce());
  }
  const o = latencyStats(ours);
  const out = latencyStats(outputs);
  console.log(`dockless exec true → wait (${RUNS} sequential):   median ${fmt(o.median)} ms   p95 ${fmt(o.p95)} ms`);
  console.log(`dockless container.output(['true']) (${RUNS}):     median ${fmt(out.median)} ms   p95 ${fmt(out.p95)} ms`);

  const setup = await runcBundle(base, rootfs.path, ['sleep', '100000']);
  if ('skip' in setup) {
    console.log(`runc: not measured (${setup.skip})`);
    rows.push(compare('exec `true` → wait', o.median, 'ms'));
  } else {
    const { runc, bundle, root: runcRoot } = setup;
    const id = `bench-exec-${process.pid}`;
    const started = spawnSync(runc, ['--root', runcRoot, 'run', '--detach', '--bundle', bundle, id], { stdio: 'ignore' });
    if (started.status !== 0) throw new Error(`runc run --detach exited ${started.status}`);
    try {
      const runcOnce = () => {
        const t0 = performance.now();
        const r = spawnSync(runc, ['--root', runcRoot, 'exec', id, 'true'], { stdio: 'ignore' });
        if (r.status !== 0) throw new Error(`runc exec exited ${r.status}`);
        return performance.now() - t0;
      };
      for (let i = 0; i < 5; i++) runcOnce();
      const theirs: number[] = [];
      for (let i = 0; i < RUNS; i++) theirs.push(runcOnce());
      const r = latencyStats(theirs);
      console.log(`runc exec true (${RUNS} sequential):              median ${fmt(r.median)} ms   p95 ${fmt(r.p95)} ms`);
      rows.push(compare('exec `true` → wait', o.median, 'ms', { name: 'runc exec', value: r.median }));
    } finally {
      spawnSync(runc, ['--root', runcRoot, 'delete', '--force', id], { stdio: 'ignore' });
    }
  }
  await writeResults('exec', rows, { dir: parent.dir, kind: parent.kind, cacheDropped });
} finally {
  await rm(base, { recursive: true, force: true });
}
