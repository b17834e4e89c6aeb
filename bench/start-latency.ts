/**
 * Start latency, measured beside its peers in the same run, in a directory on
 * disk (`--shm` for /dev/shm, `--dir PARENT` for any other):
 *
 * 1. Whole process, hyperfine-style (warm-up rounds, then many rounds of one
 *    run of each, interleaved; median and min): `node -e 0`; `node` + `import('dockless')`; `node app.mjs` that
 *    imports dockless and runs one `true` container; `runc run`; `podman run
 *    --rm --network none` of the same rootfs.
 * 2. In process: `runtime.run({ cmd: ['true'] })` → `wait()` → `remove()`,
 *    sequentially, beside `runc run` (median, p95), and interleaved with the
 *    same run spawned from Node instead of forked by the fork server.
 * 3. 20 at once in one process: containers/s and CPU per container (the Node
 *    side from `process.cpuUsage()`, the helper side — helpers and the
 *    containers' processes: reaped children from /proc/self/stat, and the fork
 *    servers with the ops they reaped from theirs), beside the same spawned from Node, 20
 *    `runc run` at once; and the kernel floor: `unshare` creating the same
 *    namespaces (mount, pid, uts, ipc, net, cgroup), 8 at once, with our
 *    fraction of it.
 * 4. With `--parts`: the cost of each part of the default security profile.
 *
 * The page cache is dropped (when root and /proc/sys is writable) before each
 * section, not before each run: a per-run drop would time the disk reading
 * node's own 90 MB binary, not the start path.
 *
 * The runtimes' state directories (and podman's --runroot) are on tmpfs, as the
 * default `/run/dockless` is on a host whose /run is tmpfs (systemd's); the data
 * (rootfs, containers' upper dirs) on disk. `--state-on-disk` puts them beside the data.
 *
 * Run: node --import tsx bench/start-latency.ts [--runs N] [--shm | --dir PARENT] [--state-on-disk] [--parts]
 *      (root, for runc and podman; `npm run build` first, the whole-process
 *      runs import the built package)
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Runtime, rootfsFromHost } from '../src/index.js';
import { FORK_SERVER_ENV } from '../src/helper/index.js';
import { securityPlan } from '../src/runtime/security.js';
import type { ContainerSpec } from '../src/runtime/spec.js';
import { arg, benchParent, compare, dropCaches, latencyStats, nodeEnv, runcBundle, which, writeResults, type ResultRow } from './common.js';

const RUNS = Number(arg('--runs') ?? (/^\d+$/.test(process.argv[2] ?? '') ? process.argv[2] : 200));
const PROCESS_RUNS = Math.max(10, Math.min(40, Math.floor(RUNS / 5)));
const CONCURRENT = 20;
const FLOOR_CONCURRENT = 8;
const REPO = resolve(import.meta.dirname, '..');

const fmt = (n: number) => n.toFixed(2).padStart(8);
const rows: ResultRow[] = [];

/**
 * Runs each command line `runs` times, hyperfine-style (3 warm-up rounds
 * first), interleaved (one run of each per round) so that a load that changes
 * during the bench hits every command alike; wall-clock median and min of each.
 */
function hyperfine(commands: string[][], runs: number, env?: NodeJS.ProcessEnv): { median: number; min: number }[] {
  const times = commands.map((): number[] => []);
  for (let i = -3; i < runs; i++) {
    for (const [k, argv] of commands.entries()) {
      const t = performance.now();
      const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env: env ?? process.env });
      const elapsed = performance.now() - t;
      if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr?.toString().slice(-400)}`);
      if (i >= 0) times[k]!.push(elapsed);
    }
  }
  return times.map((t) => ({ median: latencyStats(t).median, min: Math.min(...t) }));
}

/** The CPU time (ms, user + system) of this process's reaped children, from /proc/self/stat. */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 16 and 17 (cutime, cstime), counted from 1 with pid and comm before the state.
  const ticks = Number(fields[13]) + Number(fields[14]);
  return (ticks * 1000) / 100;
}

/**
 * The CPU time (ms) of this process's fork servers and of the ops they reaped: they
 * are not this process's reaped children while they run.
 */
function forkServersCpuMs(): number {
  let ms = 0;
  for (const task of readdirSync('/proc/self/task')) {
    const children = readFileSync(`/proc/self/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    for (const pid of children) {
      try {
        if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('fork-server')) continue;
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        // utime, stime, cutime, cstime (fields 14–17, counted from 1).
        ms += ((Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 1000) / 100;
      } catch {
        // gone meanwhile
      }
    }
  }
  return ms;
}

/** Runs `job` `total` times, `width` at a time: containers/s, and the children's CPU ms per job. */
async function throughput(width: number, total: number, job: () => Promise<void>) {
  const cpu0 = process.cpuUsage();
  const children0 = childrenCpuMs() + forkServersCpuMs();
  const t = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next++ < total) await job();
    }),
  );
  const seconds = (performance.now() - t) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    perSecond: total / seconds,
    nodeCpu: (cpu.user + cpu.system) / 1000 / total,
    childCpu: (childrenCpuMs() + forkServersCpuMs() - children0) / total,
  };
}

/** Spawns `argv` and resolves when it exits 0. */
function run(argv: string[]): Promise<void> {
  return new Promise((res, rej) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
    child.on('error', rej);
    child.on('exit', (code) => (code === 0 ? res() : rej(new Error(`${argv.join(' ')} exited ${code}`))));
  });
}

const parent = await benchParent();
const base = await mkdtemp(join(parent.dir, 'dockless-bench-start-'));
const stateBase = process.argv.includes('--state-on-disk') ? base : await mkdtemp('/dev/shm/dockless-bench-state-');
let cacheDropped = false;
console.log(`working in ${base} (${parent.kind === 'disk' ? 'disk' : 'tmpfs'}), state directories in ${stateBase}, ${RUNS} runs in process, ${PROCESS_RUNS} per command line`);
try {
  const rootfs = await rootfsFromHost(join(base, 'rootfs'));
  const runc = await runcBundle(base, rootfs.path, ['true']);
  const runcRun = (id: string) =>
    'skip' in runc ? [] : [runc.runc, '--root', runc.root, 'run', '--bundle', runc.bundle, `bench-${process.pid}-${id}`];
  if ('skip' in runc) console.log(`runc: not measured (${runc.skip})`);

  // ------------------------------------------------------------ 1. whole process
  console.log('\n1. whole process (one command line, start to exit)');
  if (!existsSync(join(REPO, 'dist', 'index.js'))) throw new Error('dist/index.js is missing: npm run build first');
  const app = join(base, 'app');
  await mkdir(join(app, 'node_modules'), { recursive: true });
  await symlink(REPO, join(app, 'node_modules', 'dockless'));
  await writeFile(join(app, 'import.mjs'), "await import('dockless');\n");
  await writeFile(
    join(app, 'app.mjs'),
    [
      "import { Runtime } from 'dockless';",
      'const [root, stateDir, rootfs] = process.argv.slice(2);',
      'const runtime = new Runtime({ root, stateDir });',
      "const c = await runtime.run({ rootfs, cmd: ['true'], stdio: 'ignore' });",
      'await c.wait();',
      'await c.remove();',
      '',
    ].join('\n'),
  );
  const node = process.execPath;
  // Nothing of the bench's own loader (tsx) in the measured node processes.
  const env = nodeEnv();
  cacheDropped = dropCaches();
  const runcCmd = 'skip' in runc ? undefined : runcRun('whole');
  const podmanBin = which('podman');
  let podmanCmd: string[] | undefined;
  if (podmanBin === undefined) console.log('podman: not measured (not installed: apt-get install podman)');
  else if (process.getuid?.() !== 0) console.log('podman: not measured (root only here)');
  else {
    const podmanArgs = [podmanBin, '--root', join(base, 'podman-root'), '--runroot', join(stateBase, 'podman-run'), 'run', '--rm'];
    // No CAP_SYS_RESOURCE here: podman's default rlimits (nofile 1048576) would fail to apply.
    const limits = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];
    podmanCmd = [...podmanArgs, '--network', 'none', ...limits, '--rootfs', rootfs.path, 'true'];
  }
  const commands = [
    [node, '-e', '0'],
    [node, join(app, 'import.mjs')],
    [node, join(app, 'app.mjs'), join(base, 'app-data'), join(stateBase, 'app-state'), rootfs.path],
    ...(runcCmd ? [runcCmd] : []),
    ...(podmanCmd ? [podmanCmd] : []),
  ];
  const results = hyperfine(commands, PROCESS_RUNS, env);
  const [bare, imported, whole] = results as [(typeof results)[0], (typeof results)[0], (typeof results)[0]];
  const runcWhole = runcCmd ? results[3] : undefined;
  const podman = podmanCmd ? results[runcCmd ? 4 : 3] : undefined;
  const line = (what: string, r: { median: number; min: number }) =>
    console.log(`  ${what.padEnd(52)} median ${fmt(r.median)} ms   min ${fmt(r.min)} ms`);
  line('node -e 0', bare);
  line("node + import('dockless')", imported);
  line('node app.mjs (import, run one `true`, wait, remove)', whole);
  if (runcWhole) line('runc run', runcWhole);
  if (podman) line('podman run --rm --network none --rootfs', podman);
  rows.push(compare("import('dockless') adds to a bare node start", imported.median - bare.median, 'ms', undefined, { target: '≤ 15 ms' }));
  rows.push(compare('node app.mjs vs node -e 0', whole.median, 'ms', { name: 'node -e 0', value: bare.median }, { target: '≤ 2×' }));
  if (podman) rows.push(compare('node app.mjs vs podman run --rm', whole.median, 'ms', { name: 'podman run --rm', value: podman.median }, { target: '≤ 0.5×' }));
  if (runcWhole) rows.push(compare('node app.mjs vs runc run', whole.median, 'ms', { name: 'runc run', value: runcWhole.median }));

  // ------------------------------------------------------------ 2. in process, one at a time
  console.log('\n2. in process, one at a time');
  const runtime = new Runtime({ root: join(base, 'data'), stateDir: join(stateBase, 'state') });
  const once = async (extra: Partial<ContainerSpec> = {}) => {
    const t = performance.now();
    const c = await runtime.run({ rootfs: rootfs.path, cmd: ['true'], stdio: 'ignore', ...extra });
    await c.wait();
    const waited = performance.now() - t;
    await c.remove();
    return { waited, removed: performance.now() - t };
  };
  for (let i = 0; i < 10; i++) await once();
  cacheDropped = dropCaches() && cacheDropped;
  const waited: number[] = [];
  const removed: number[] = [];
  const spawnedRemoved: number[] = [];
  // Interleaved with the same run spawned from Node (no fork server), so that both meet the same load.
  for (let i = 0; i < RUNS; i++) {
    const r = await once();
    waited.push(r.waited);
    removed.push(r.removed);
    process.env[FORK_SERVER_ENV] = '0';
    spawnedRemoved.push((await once()).removed);
    delete process.env[FORK_SERVER_ENV];
  }
  const w = latencyStats(waited);
  const rm_ = latencyStats(removed);
  const spawned = latencyStats(spawnedRemoved);
  console.log(`  run→wait (${RUNS}):          median ${fmt(w.median)} ms   p95 ${fmt(w.p95)} ms`);
  console.log(`  run→wait→remove (${RUNS}):   median ${fmt(rm_.median)} ms   p95 ${fmt(rm_.p95)} ms`);
  console.log(`  the same, spawned from Node (${FORK_SERVER_ENV}=0): median ${fmt(spawned.median)} ms   p95 ${fmt(spawned.p95)} ms`);
  let runcOne: ReturnType<typeof latencyStats> | undefined;
  if (!('skip' in runc)) {
    const theirs: number[] = [];
    const runcRuns = Math.min(RUNS, 100);
    for (let i = 0; i < runcRuns; i++) {
      const t0 = performance.now();
      const r = spawnSync(runcRun(String(i))[0]!, runcRun(String(i)).slice(1), { stdio: 'ignore' });
      if (r.status !== 0) throw new Error(`runc run exited ${r.status}`);
      theirs.push(performance.now() - t0);
    }
    runcOne = latencyStats(theirs);
    console.log(`  runc run (${runcRuns}):          median ${fmt(runcOne.median)} ms   p95 ${fmt(runcOne.p95)} ms`);
  }
  const runcPeer = runcOne && { name: 'runc run', value: runcOne.median };
  rows.push(compare('in process: run→wait→remove of `true`', rm_.median, 'ms', runcPeer, { target: '≤ 5 ms, ≤ 0.2× runc' }));
  rows.push(compare('in process: run→wait of `true`', w.median, 'ms', runcPeer));
  rows.push(compare('in process: run→wait→remove, fork server vs spawned from Node', rm_.median, 'ms', { name: 'spawned', value: spawned.median }));

  // ------------------------------------------------------------ 3. many at once, and the kernel floor
  console.log(`\n3. ${CONCURRENT} at once in one process; the kernel floor`);
  const total = Math.max(RUNS, 100);
  await throughput(CONCURRENT, 40, async () => void (await once()));
  const ours = await throughput(CONCURRENT, total, async () => void (await once()));
  process.env[FORK_SERVER_ENV] = '0';
  const spawnedMany = await throughput(CONCURRENT, total, async () => void (await once()));
  delete process.env[FORK_SERVER_ENV];
  let runcMany: Awaited<ReturnType<typeof throughput>> | undefined;
  if (!('skip' in runc)) {
    let n = 0;
    runcMany = await throughput(CONCURRENT, Math.min(total, 100), () => run(runcRun(`many-${n++}`)));
  }
  const unshareArgs = ['unshare', '--mount', '--pid', '--fork', '--uts', '--ipc', '--net', '--cgroup', 'true'];
  let floor: Awaited<ReturnType<typeof throughput>> | undefined;
  if (process.getuid?.() === 0) floor = await throughput(FLOOR_CONCURRENT, total, () => run(unshareArgs));
  else console.log('  kernel floor: not measured (unshare of these namespaces needs root)');
  console.log(
    `  dockless: ${ours.perSecond.toFixed(0)} containers/s; CPU per container ${(ours.nodeCpu + ours.childCpu).toFixed(1)} ms ` +
      `(Node ${ours.nodeCpu.toFixed(1)} ms, helper and container ${ours.childCpu.toFixed(1)} ms)`,
  );
  console.log(
    `  the same, spawned from Node (${FORK_SERVER_ENV}=0): ${spawnedMany.perSecond.toFixed(0)} containers/s; CPU per container ` +
      `${(spawnedMany.nodeCpu + spawnedMany.childCpu).toFixed(1)} ms (Node ${spawnedMany.nodeCpu.toFixed(1)} ms, helper and container ${spawnedMany.childCpu.toFixed(1)} ms)`,
  );
  if (runcMany) {
    console.log(`  ${CONCURRENT} × runc run: ${runcMany.perSecond.toFixed(0)} containers/s; CPU per container ${runcMany.childCpu.toFixed(1)} ms`);
  }
  if (floor) console.log(`  kernel floor (${unshareArgs.join(' ')}, ${FLOOR_CONCURRENT} at once): ${floor.perSecond.toFixed(0)}/s`);
  const runcRate = runcMany && { name: `${CONCURRENT} × runc run`, value: runcMany.perSecond };
  rows.push(compare(`${CONCURRENT} at once in one process`, ours.perSecond, 'containers/s', runcRate, { higher: true, target: '≥ 300/s' }));
  if (floor) {
    const fraction = ours.perSecond / floor.perSecond;
    console.log(`  our fraction of the kernel floor: ${(fraction * 100).toFixed(0)} %`);
    rows.push(compare(`${CONCURRENT} at once vs kernel floor (unshare, ${FLOOR_CONCURRENT} at once)`, ours.perSecond, 'containers/s', { name: 'unshare', value: floor.perSecond }, { higher: true }));
  }
  rows.push(compare(`${CONCURRENT} at once, fork server vs spawned from Node`, ours.perSecond, 'containers/s', { name: 'spawned', value: spawnedMany.perSecond }, { higher: true }));
  rows.push(compare('Node-side CPU per container (20 at once)', ours.nodeCpu, 'ms', { name: 'spawned', value: spawnedMany.nodeCpu }, { target: '≤ 2 ms' }));
  rows.push(
    compare('total CPU per container (20 at once)', ours.nodeCpu + ours.childCpu, 'ms', runcMany && { name: 'runc run', value: runcMany.childCpu }),
  );

  // ------------------------------------------------------------ 4. security parts
  if (process.argv.includes('--parts')) {
    const variants: [string, Partial<ContainerSpec>][] = [
      ['default (caps, no_new_privs, seccomp, masked paths)', {}],
      ["seccomp: 'unconfined'", { seccomp: 'unconfined' }],
      ['noNewPrivileges: false (seccomp before the caps drop)', { noNewPrivileges: false }],
      ['privileged (no caps drop, seccomp or masked paths)', { privileged: true }],
      ['resources: memory, cpus and pids limits (cgroup files)', { resources: { memory: 256 * 1024 * 1024, cpus: 1, pids: 512 } }],
    ];
    if (process.getuid?.() === 0) variants.push(["userns: 'auto' (root as a host id; idmapped root)", { userns: 'auto' }]);
    const rounds = Math.min(RUNS, 100);
    const samples = variants.map((): number[] => []);
    for (let i = 0; i < rounds; i++) for (const [k, [, extra]] of variants.entries()) samples[k]!.push((await once(extra)).waited);
    const reference = latencyStats(samples[0]!).median;
    console.log(`\n4. security parts (${rounds} interleaved rounds, run→wait):`);
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
    console.log(`  TS policy per container, default profile (cached): ${policy({}, 1000).toFixed(3)} ms`);
  }

  await writeResults('start-latency', rows, { dir: parent.dir, kind: parent.kind, cacheDropped });
} finally {
  // podman mounts its storage directory on itself.
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '');
  for (const m of mounts.filter((m) => m.startsWith(`${base}/`) || m.startsWith(`${stateBase}/`)).reverse()) spawnSync('umount', [m]);
  await rm(base, { recursive: true, force: true });
  if (stateBase !== base) await rm(stateBase, { recursive: true, force: true });
}
