/**
 * First-call costs: what the first container of a fresh Node process pays
 * that later ones do not, each timed in its own fresh process (so each is a
 * first call, JIT cold): finding the helper, detecting cgroups and their
 * mounts, compiling the default seccomp profile, the sealed helper copy, the
 * runtime's directory checks, starting the fork server; then, from the built
 * bundle as users load it (`npm run build` first): `import('dockless')` with
 * its V8 code cache beside the same import compiled from source
 * (`DOCKLESS_CODE_CACHE=0`), loading `child_process` (what the first helper
 * spawn loads), and the first and second `run`→`wait`→`remove` of
 * `true` in one fresh process, the first spawned (the default) and through a
 * fork server started for it (`DOCKLESS_FORK_SERVER=1`); and a whole one-container program
 * phase by phase (import, run, wait, remove, exit) beside `node -e 0`. Disk by default (`--shm`, `--dir PARENT`).
 *
 * Run: npm run build && node --import tsx bench/first-call.ts [--runs N]   (root)
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { rootfsFromHost } from '../src/index.js';
import { arg, benchParent, compare, dropCaches, median, nodeEnv, writeResults, type ResultRow } from './common.js';

const RUNS = Number(arg('--runs') ?? 9);

/** Each step, timed in a fresh process: [name, module to import, code run on it (with `m`)]. */
const STEPS: [string, string, string][] = [
  ['locate the helper', '../src/helper/index.ts', 'm.locateHelper()'],
  ['sealed helper copy (seal and its check, 1 spawn)', '../src/helper/index.ts', 'await m.sealedHelperPath(); await m.sealedHelperPath()'],
  ['detect cgroups (/proc/self/cgroup, mounts)', '../src/runtime/cgroups/detect.ts', 'm.detectCgroups(); m.detectCgroupMounts()'],
  ['compile the default seccomp profile (first, JIT cold; from the sources: the bundle serves the build-time program)', '../src/runtime/security.ts', 'm.securityPlan({})'],
  ['start the fork server (1 spawn, its ready message; at the second op)', '../src/helper/index.ts', 'const p = m.locateHelper(); await m.ForkServer.for(p); await m.ForkServer.for(p)'],
];
const BUNDLE = resolve(import.meta.dirname, '..', 'dist', 'bundle', 'index.js');
if (!existsSync(BUNDLE)) throw new Error('dist/bundle/index.js is missing: npm run build first');

const parent = await benchParent();
const base = await mkdtemp(join(parent.dir, 'dockless-bench-first-'));
const rows: ResultRow[] = [];
let cacheDropped = true;
try {
  const rootfs = await rootfsFromHost(join(base, 'rootfs'));
  const timed = (module: string, code: string): number => {
    const script = `const m = await import(${JSON.stringify(new URL(module, import.meta.url).pathname)}); const t = performance.now(); ${code}; console.log(performance.now() - t);`;
    return Number(execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' }).trim().split('\n').pop());
  };
  for (const [name, module, code] of STEPS) {
    const samples: number[] = [];
    for (let i = 0; i < RUNS; i++) samples.push(timed(module, code));
    rows.push(compare(`first call: ${name}`, median(samples), 'ms'));
  }
  // From the bundle, as a user's program loads it: no TypeScript loader in these processes.
  const plain = (script: string, env: NodeJS.ProcessEnv = {}): number[] =>
    execFileSync(process.execPath, [script], { encoding: 'utf8', env: nodeEnv(env) })
      .trim()
      .split('\n')
      .pop()!
      .split(' ')
      .map(Number);
  const importScript = join(base, 'import.mjs');
  await writeFile(importScript, `const t = performance.now(); await import(${JSON.stringify(BUNDLE)}); console.log(performance.now() - t);\n`);
  const cacheHome = join(base, 'cache');
  plain(importScript, { XDG_CACHE_HOME: cacheHome });
  const cached: number[] = [];
  const uncached: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    cached.push(plain(importScript, { XDG_CACHE_HOME: cacheHome })[0]!);
    uncached.push(plain(importScript, { DOCKLESS_CODE_CACHE: '0' })[0]!);
  }
  rows.push(compare("import('dockless') in a fresh process, V8 code cache", median(cached), 'ms', { name: 'compiled from source', value: median(uncached) }));

  // What a process's first helper spawn loads (child_process brings net, dgram and Node's streams): paid by
  // the first container of a program that imports dockless; the commands' startup snapshots hold it loaded.
  const builtinScript = join(base, 'builtin.mjs');
  await writeFile(builtinScript, "const t = performance.now(); process.getBuiltinModule('node:child_process'); console.log(performance.now() - t);\n");
  const builtin: number[] = [];
  for (let i = 0; i < RUNS; i++) builtin.push(plain(builtinScript)[0]!);
  rows.push(compare('first call: load child_process (net, dgram, streams; the first spawn)', median(builtin), 'ms'));

  const runScript = join(base, 'run.mjs');
  await writeFile(
    runScript,
    `const { Runtime } = await import(${JSON.stringify(BUNDLE)});
     const runtime = new Runtime({ root: ${JSON.stringify(join(base, 'data'))}, stateDir: ${JSON.stringify(join(base, 'state'))} });
     const once = async () => { const t = performance.now(); const c = await runtime.run({ rootfs: ${JSON.stringify(rootfs.path)}, cmd: ['true'], stdio: 'ignore' }); await c.wait(); await c.remove(); return performance.now() - t; };
     console.log(await once(), await once());\n`,
  );
  plain(runScript, { XDG_CACHE_HOME: cacheHome });
  const firsts: number[] = [];
  const seconds: number[] = [];
  const serverFirsts: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    cacheDropped = dropCaches() && cacheDropped;
    const [a, b] = plain(runScript, { XDG_CACHE_HOME: cacheHome });
    firsts.push(a!);
    seconds.push(b!);
    cacheDropped = dropCaches() && cacheDropped;
    serverFirsts.push(plain(runScript, { XDG_CACHE_HOME: cacheHome, DOCKLESS_FORK_SERVER: '1' })[0]!);
  }
  rows.push(compare('first run→wait→remove of a process', median(firsts), 'ms', { name: 'second', value: median(seconds) }));
  rows.push(compare('first run→wait→remove: spawned vs a fork server started for it', median(firsts), 'ms', { name: 'DOCKLESS_FORK_SERVER=1', value: median(serverFirsts) }));

  // A whole one-container program (start-latency's `node app.mjs`), phase by phase on its own clock (ms since
  // Node's time origin), beside a bare `node -e 0` timed alike: where the time above a bare start goes. `exit`
  // is what follows the `exit` event (Node's teardown, and the parent seeing the end), from the parent's clock.
  const phasesScript = join(base, 'phases.mjs');
  await writeFile(
    phasesScript,
    `const t = [performance.now()];
     const { Runtime } = await import(${JSON.stringify(BUNDLE)});
     t.push(performance.now());
     const runtime = new Runtime({ root: ${JSON.stringify(join(base, 'data'))}, stateDir: ${JSON.stringify(join(base, 'state'))} });
     const c = await runtime.run({ rootfs: ${JSON.stringify(rootfs.path)}, cmd: ['true'], stdio: 'ignore' });
     t.push(performance.now());
     await c.wait();
     t.push(performance.now());
     await c.remove();
     t.push(performance.now());
     process.on('exit', () => { t.push(performance.now()); console.log(t.join(' ')); });\n`,
  );
  const PHASES = ['node start (to the first line)', 'import', 'run', 'wait', 'remove', 'the loop ends', 'exit'];
  const phases: number[][] = PHASES.map(() => []);
  const walls: number[] = [];
  const bare: number[] = [];
  for (let i = -1; i < RUNS; i++) {
    let t = performance.now();
    const marks = plain(phasesScript, { XDG_CACHE_HOME: cacheHome });
    const wall = performance.now() - t;
    t = performance.now();
    execFileSync(process.execPath, ['-e', '0'], { env: nodeEnv() });
    if (i < 0) continue;
    bare.push(performance.now() - t);
    walls.push(wall);
    [...marks, wall].forEach((mark, k) => phases[k]!.push(k === 0 ? mark : mark - marks[k - 1]!));
  }
  for (const [k, name] of PHASES.entries()) rows.push(compare(`first process, by phase: ${name}`, median(phases[k]!), 'ms'));
  rows.push(compare('first process, whole (node app.mjs)', median(walls), 'ms', { name: 'node -e 0', value: median(bare) }));
  await writeResults('first-call', rows, { dir: parent.dir, kind: parent.kind, cacheDropped });
} finally {
  await rm(base, { recursive: true, force: true });
}
