/**
 * The network's share of the start: `run → exit` of `true` with `network:
 * 'none'` and with `'bridge'` (the default network: an address from the
 * network's state under its lock, a veth pair wired by the shim over netlink
 * before the workload runs), interleaved so that load on the machine hits
 * both alike, median and p95, and the ratio (the budget: ≤ 2×). Beside it, in
 * the same run, `podman run --network bridge` and `--network none` of the
 * same rootfs when podman is installed. Runs inside a throwaway network
 * namespace ({@link inNetSandbox}), so the host's firewall is not touched.
 *
 * Run: node --import tsx bench/network.ts [runs]
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime, rootfsFromHost } from '../src/index.js';
import { inNetSandbox, latencyStats } from './common.js';

const RUNS = Number(process.argv[2] ?? 100);

inNetSandbox();

const fmt = (n: number) => n.toFixed(2).padStart(8);
const base = await mkdtemp(join(tmpdir(), 'dockless-bench-net-'));
try {
  const rootfs = await rootfsFromHost(join(base, 'rootfs'));
  const runtime = new Runtime({ root: join(base, 'data'), stateDir: join(base, 'state') });
  const once = async (network: 'none' | 'bridge') => {
    const t = performance.now();
    const c = await runtime.run({ rootfs: rootfs.path, cmd: ['true'], stdio: 'ignore', network });
    await c.wait();
    const elapsed = performance.now() - t;
    await c.remove();
    return elapsed;
  };
  for (let i = 0; i < 10; i++) await once(i % 2 === 0 ? 'none' : 'bridge');
  const none: number[] = [];
  const bridge: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    none.push(await once('none'));
    bridge.push(await once('bridge'));
  }
  const n = latencyStats(none);
  const b = latencyStats(bridge);
  console.log(`dockless run→exit, network 'none'   (${RUNS}): median ${fmt(n.median)} ms   p95 ${fmt(n.p95)} ms`);
  console.log(`dockless run→exit, network 'bridge' (${RUNS}): median ${fmt(b.median)} ms   p95 ${fmt(b.p95)} ms   ratio ${(b.median / n.median).toFixed(2)}× (budget ≤ 2×)`);
  await (await runtime.getNetwork('bridge')).remove();

  const podman = spawnSync('podman', ['--version']);
  if (podman.status !== 0) {
    console.log('podman: not installed, no peer figure');
  } else {
    // Without CAP_SYS_RESOURCE podman cannot raise its default limits.
    const hardNofile = spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim().replace('unlimited', '-1');
    const limits = ['--ulimit', `nofile=${hardNofile}`, '--ulimit', 'nproc=1024:1024'];
    const peer = (network: string) => {
      const t = performance.now();
      const r = spawnSync('podman', ['--root', join(base, 'podman-root'), '--runroot', join(base, 'podman-run'), 'run', '--rm', '--network', network, ...limits, '--rootfs', rootfs.path, 'true'], {
        encoding: 'utf8',
      });
      if (r.status !== 0) throw new Error(`podman run --network ${network} failed: ${r.stderr.trim()}`);
      return performance.now() - t;
    };
    let runs = true;
    try {
      peer('none');
      peer('bridge');
    } catch (error) {
      console.log(`podman: cannot run here, no peer figure (${(error as Error).message})`);
      runs = false;
    }
    if (runs) {
      const pn: number[] = [];
      const pb: number[] = [];
      for (let i = 0; i < Math.min(RUNS, 20); i++) {
        pn.push(peer('none'));
        pb.push(peer('bridge'));
      }
      const a = latencyStats(pn);
      const c = latencyStats(pb);
      console.log(`podman run --network none   : median ${fmt(a.median)} ms   (ours/podman ${(n.median / a.median).toFixed(2)})`);
      console.log(`podman run --network bridge : median ${fmt(c.median)} ms   (ours/podman ${(b.median / c.median).toFixed(2)}), podman's own bridge/none ${(c.median / a.median).toFixed(2)}×`);
    }
  }
} finally {
  // podman leaves its storage's overlay mounted (in this bench's own mount namespace), and
  // its `--rm` cleanup process (started by conmon) may write its state again after `run` returned.
  for (let i = 0; i < 10 && existsSync(base); i++) {
    spawnSync('umount', [join(base, 'podman-root', 'overlay')], { stdio: 'ignore' });
    await rm(base, { recursive: true, force: true, maxRetries: 5 }).catch(() => undefined);
    await sleep(300);
  }
}
