/**
 * First-call costs: what the first container of a fresh Node process pays
 * that later ones do not, each timed in its own fresh process (so each is a
 * first call, JIT cold): finding the helper, detecting cgroups and their
 * mounts, compiling the default seccomp profile, the sealed helper copy, the
 * runtime's directory checks; then the first and second `run`→`wait`→`remove`
 * of `true` in one process. Disk by default (`--shm`, `--dir PARENT`).
 *
 * Run: node --import tsx bench/first-call.ts [--runs N]   (root)
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { rootfsFromHost } from '../src/index.js';
import { arg, benchParent, compare, dropCaches, median, writeResults, type ResultRow } from './common.js';

const RUNS = Number(arg('--runs') ?? 9);

/** Each step, timed in a fresh process: [name, module to import, code run on it (with `m`)]. */
const STEPS: [string, string, string][] = [
  ['locate the helper', '../src/helper/index.ts', 'm.locateHelper()'],
  ['sealed helper copy (seal + check, 2 spawns)', '../src/helper/index.ts', 'await m.sealedHelperPath(); await m.sealedHelperPath()'],
  ['detect cgroups (/proc/self/cgroup, mounts)', '../src/runtime/cgroups/detect.ts', 'm.detectCgroups(); m.detectCgroupMounts()'],
  ['compile the default seccomp profile (first, JIT cold)', '../src/runtime/security.ts', 'm.securityPlan({})'],
];

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
  const firsts: number[] = [];
  const seconds: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    cacheDropped = dropCaches() && cacheDropped;
    const out = execFileSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `const { Runtime } = await import(${JSON.stringify(new URL('../src/index.ts', import.meta.url).pathname)});
         const runtime = new Runtime({ root: ${JSON.stringify(join(base, 'data'))}, stateDir: ${JSON.stringify(join(base, 'state'))} });
         const once = async () => { const t = performance.now(); const c = await runtime.run({ rootfs: ${JSON.stringify(rootfs.path)}, cmd: ['true'], stdio: 'ignore' }); await c.wait(); await c.remove(); return performance.now() - t; };
         console.log(await once(), await once());`,
      ],
      { encoding: 'utf8' },
    );
    const [a, b] = out.trim().split('\n').pop()!.split(' ').map(Number);
    firsts.push(a!);
    seconds.push(b!);
  }
  rows.push(compare('first run→wait→remove of a process', median(firsts), 'ms', { name: 'second', value: median(seconds) }));
  await writeResults('first-call', rows, { dir: parent.dir, kind: parent.kind, cacheDropped });
} finally {
  await rm(base, { recursive: true, force: true });
}
