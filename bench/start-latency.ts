/**
 * Start latency: time from `runtime.run({ cmd: ['true'] })` to `wait()`
 * resolving, 200 sequential runs (median, p95), and throughput with 8 running
 * at once. When runc is installed, `runc run` of the same rootfs is timed in the
 * same run and the ratio ours/runc printed. Then the cost of each part of the
 * default security profile: runs with it switched off in turn, interleaved so
 * that load on the machine hits every variant alike, and the TypeScript policy
 * (capabilities, seccomp compile) timed in-process.
 *
 * Run: node --import tsx bench/start-latency.ts [runs]
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime, rootfsFromHost } from '../src/index.js';
import { latencyStats, runcBundle } from './common.js';
import { securityPlan } from '../src/runtime/security.js';
import type { ContainerSpec } from '../src/runtime/spec.js';

const RUNS = Number(process.argv[2] ?? 200);
const CONCURRENCY = 8;

const fmt = (n: number) => n.toFixed(2).padStart(8);

const base = await mkdtemp(join(tmpdir(), 'dockless-bench-'));
try {
  const rootfs = await rootfsFromHost(join(base, 'rootfs'));
  const runtime = new Runtime({ root: join(base, 'data'), stateDir: join(base, 'state') });

  const once = async (extra: Partial<ContainerSpec> = {}) => {
    const t = performance.now();
    const c = await runtime.run({ rootfs: rootfs.path, cmd: ['true'], stdio: 'ignore', ...extra });
    await c.wait();
    const elapsed = performance.now() - t;
    await c.remove();
    return elapsed;
  };
  for (let i = 0; i < 10; i++) await once();
  const ours: number[] = [];
  for (let i = 0; i < RUNS; i++) ours.push(await once());

  const t = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < RUNS) await once();
    }),
  );
  const throughput = RUNS / ((performance.now() - t) / 1000);

  const o = latencyStats(ours);
  console.log(`dockless run→wait (${RUNS} sequential):   median ${fmt(o.median)} ms   p95 ${fmt(o.p95)} ms`);
  console.log(`dockless throughput (${CONCURRENCY} concurrent):  ${throughput.toFixed(1)} containers/s`);

  // The cost of each security part: the default profile, then with parts switched off.
  const variants: [string, Partial<ContainerSpec>][] = [
    ['default (caps, no_new_privs, seccomp, masked paths)', {}],
    ["seccomp: 'unconfined'", { seccomp: 'unconfined' }],
    ['noNewPrivileges: false (seccomp before the caps drop)', { noNewPrivileges: false }],
    ['privileged (no caps drop, seccomp or masked paths)', { privileged: true }],
    ['resources: memory, cpus and pids limits (cgroup files)', { resources: { memory: 256 * 1024 * 1024, cpus: 1, pids: 512 } }],
  ];
  if (process.getuid?.() === 0) variants.push(["userns: 'auto' (root as a host id; idmapped root)", { userns: 'auto' }]);
  else {
    // Rootless: every run above is in a user namespace already; limits need cgroups delegated to the user.
    const limited = variants.pop()!;
    const delegated = await once(limited[1]).then(() => true, () => false);
    if (delegated) variants.push(limited);
    else console.log('(rootless: resources not measured, no cgroups are delegated to this user)');
  }
  const rounds = Math.min(RUNS, 100);
  const samples = variants.map((): number[] => []);
  for (let i = 0; i < rounds; i++) for (const [k, [, extra]] of variants.entries()) samples[k]!.push(await once(extra));
  const reference = latencyStats(samples[0]!).median;
  console.log(`\nsecurity parts (${rounds} interleaved rounds):`);
  console.log(`  ${'variant'.padEnd(56)} median ms   Δ vs default`);
  for (const [k, [name]] of variants.entries()) {
    const m = latencyStats(samples[k]!).median;
    console.log(`  ${name.padEnd(56)} ${fmt(m)}   ${k === 0 ? '' : (m - reference).toFixed(2).padStart(8)}`);
  }
  const policy = (options: Partial<ContainerSpec>, n: number) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) securityPlan(options);
    return (performance.now() - t0) / n;
  };
  policy({}, 10);
  console.log(`  TS policy per container, default profile (compiled once, cached):  ${policy({}, 1000).toFixed(3)} ms`);
  const custom = { seccomp: JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] }) };
  console.log(`  TS policy per container, custom JSON profile (parsed and compiled each time): ${policy(custom, 100).toFixed(3)} ms`);
  // Each capability set is its own cache key, so each of these compiles the default profile afresh.
  const fresh = ['NET_ADMIN', 'SYS_PTRACE', 'SYS_NICE', 'IPC_LOCK', 'SYS_TIME', 'NET_BROADCAST', 'LEASE', 'SYSLOG'];
  const uncached = fresh.reduce((sum, cap) => sum + policy({ capAdd: [cap], capDrop: ['MKNOD'] }, 1), 0) / fresh.length;
  console.log(`  TS policy per container, default profile compiled afresh (a new capability set): ${uncached.toFixed(3)} ms\n`);

  const setup = await runcBundle(base, rootfs.path, ['true']);
  if ('skip' in setup) {
    console.log(`runc: not measured (${setup.skip})`);
  } else {
    const { runc, bundle, root: runcRoot } = setup;
    const runOnce = (i: number) => {
      const t0 = performance.now();
      const r = spawnSync(runc, ['--root', runcRoot, 'run', '--bundle', bundle, `bench-${process.pid}-${i}`], { stdio: 'ignore' });
      if (r.status !== 0) throw new Error(`runc run exited ${r.status}`);
      return performance.now() - t0;
    };
    for (let i = 0; i < 5; i++) runOnce(-1 - i);
    const theirs: number[] = [];
    const runcRuns = Math.min(RUNS, 100);
    for (let i = 0; i < runcRuns; i++) theirs.push(runOnce(i));
    const r = latencyStats(theirs);
    console.log(`runc run (${runcRuns} sequential):             median ${fmt(r.median)} ms   p95 ${fmt(r.p95)} ms`);
    console.log(`ratio ours/runc (median): ${(o.median / r.median).toFixed(2)}   (target ≤ 0.5)`);
  }
} finally {
  await rm(base, { recursive: true, force: true });
}
