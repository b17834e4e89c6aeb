import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { detectCgroups } from '../../src/runtime/cgroups/detect.js';
import { rmdirWhenEmpty } from '../fixtures/host.js';
import { cannotRun, makeWorld, type World } from '../fixtures/world.js';

const hasUnshare = spawnSync('sh', ['-c', 'command -v unshare && command -v mount'], { stdio: 'ignore' }).status === 0;
const skip = cannotRun() ?? (hasUnshare ? undefined : 'unshare or mount missing (util-linux)');
if (skip !== undefined) console.log(`# skipping first-launch cgroup tests: ${skip}`);

const SRC = resolve(import.meta.dirname, '..', '..', 'src');

/**
 * The script the test runs in a fresh Node process (so that its first launch is a process's
 * first, the one the shim is let make cgroups for) inside a private mount namespace. It moves
 * itself into a cgroup of its own in every hierarchy (so that what its containers leave is told
 * apart from other processes'), covers its own directory in the stats-only hierarchy `blocked`
 * with a sysfs directory (root may write there, as far as access() says, but mkdir is EPERM), and
 * runs one container.
 */
const CHILD = `
import { execFileSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime } from ${JSON.stringify(join(SRC, 'index.ts'))};
import { detectCgroups } from ${JSON.stringify(join(SRC, 'runtime', 'cgroups', 'detect.ts'))};
import { planCgroups } from ${JSON.stringify(join(SRC, 'runtime', 'cgroups', 'policy.ts'))};
import { shimMayMake } from ${JSON.stringify(join(SRC, 'runtime', 'cgroups', 'cgroup-set.ts'))};
const [ownDirs, blocked, root, stateDir, rootfs] = JSON.parse(process.argv[2]);
for (const dir of ownDirs) writeFileSync(join(dir, 'cgroup.procs'), String(process.pid));
execFileSync('mount', ['--bind', '/sys/kernel', blocked]);
const plan = planCgroups(undefined, detectCgroups(), 'dockless-probe', undefined, undefined);
const out = { blockedPlanned: plan.hierarchies.some((p) => p.parentDir === blocked && p.optional.length === p.controllers.length), shimMayMake: shimMayMake(plan) };
const runtime = new Runtime({ root, stateDir });
try {
  const c = await runtime.run({ rootfs, cmd: ['true'], stdio: 'ignore' });
  out.exit = await c.wait();
  await c.remove();
  const second = await runtime.run({ rootfs, cmd: ['true'], stdio: 'ignore' });
  out.secondExit = await second.wait();
  await second.remove();
} catch (error) {
  out.error = String(error);
}
out.left = ownDirs.filter((d) => d !== blocked).flatMap((d) => readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(d, e.name)));
console.log(JSON.stringify(out));
`;

describe('first launch: cgroups the shim may not make', { skip }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    await world?.dispose();
  });

  // r9b-first lets the shim make a root process's first container's cgroups, where access() says every
  // stats-only hierarchy is writable; a hierarchy that still refuses the mkdir must not fail the run (this
  // process goes without a stats-only cgroup it cannot make): the launch is retried once with Node making them.
  it("retries a first launch whose shim could not make a stats-only cgroup, with this process making them; nothing is left", async () => {
    // This process's v1 hierarchies; a new cpuset cgroup takes no process until its cpus and mems are set (containers get none).
    const own = detectCgroups().hierarchies.filter((h) => h.version === 1 && !h.controllers.includes('cpuset'));
    const statsOnly = own.find((h) => h.controllers.includes('cpuacct'));
    if (statsOnly === undefined) return void console.log('# no v1 cpuacct hierarchy here (stats only): nothing to test');
    const tag = `dl-refusal-test-${process.pid}`;
    const dirs = own.map((h) => join(h.dir, tag));
    const blocked = join(statsOnly.dir, tag);
    for (const d of dirs) await mkdir(d);
    let result: { blockedPlanned: boolean; shimMayMake: boolean; exit?: unknown; secondExit?: unknown; error?: string; left: string[] };
    try {
      const script = join(world.base, 'first-launch.mts');
      await writeFile(script, CHILD);
      const args = JSON.stringify([dirs, blocked, join(world.base, 'root'), join(world.base, 'state'), world.rootfs]);
      const out = execFileSync('unshare', ['--mount', '--propagation', 'private', process.execPath, '--import', 'tsx', script, args], { encoding: 'utf8', timeout: 60_000 });
      result = JSON.parse(out.trim().split('\n').pop()!);
    } finally {
      // The child has exited (and its mount namespace with it), but the helper processes it started (its fork
      // server, its standby `rm`) leave when they see it gone, a moment later: wait for its cgroups to empty.
      // The directories are then empty unless a container's cgroup leaked.
      for (const d of dirs) {
        const code = await rmdirWhenEmpty(d);
        if (code !== undefined) console.log(`# ${d}: ${code}: ${(await readdir(d).catch(() => [])).join(' ')}`);
      }
    }
    // Else the shim would not have been let try, and the retry would not be what this tested.
    assert.equal(result.blockedPlanned, true, 'the blocked hierarchy is a stats-only one of the plan');
    assert.equal(result.shimMayMake, true, 'access() says the blocked directory is writable');
    assert.equal(result.error, undefined);
    assert.deepEqual(result.exit, { exitCode: 0, signal: null, oomKilled: false });
    assert.deepEqual(result.secondExit, { exitCode: 0, signal: null, oomKilled: false });
    assert.deepEqual(result.left, [], 'no container cgroup is left in the other hierarchies');
    for (const d of dirs) await assert.rejects(readdir(d), { code: 'ENOENT' }, `${d} was removed (empty)`);
  });
});
