// Rule 3 of the house: a container dies with its owner, even one killed by
// SIGKILL. The shim arms the parent-death signal; with userns: 'auto' it then
// mounts the idmapped root as the container's root fsuid, and the kernel
// clears the parent-death signal on any change of fsuid, so until the shim
// armed it again such a container outlived its owner — spawned from Node and
// forked by the fork server alike. Root only.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cannotRun, makeWorld, type World } from '../fixtures/world.js';

const repo = join(import.meta.dirname, '..', '..');
const skip = cannotRun();
if (skip !== undefined) console.log(`# skipping owner death integration tests: ${skip}`);
const usernsOff =
  skip === undefined && Number(readFileSync('/proc/sys/user/max_user_namespaces', 'utf8')) === 0
    ? 'user namespaces are disabled (user.max_user_namespaces = 0)'
    : undefined;
if (usernsOff !== undefined) console.log(`# skipping the userns: 'auto' owner death tests: ${usernsOff}`);

/** Runs a long container (its second, so a fork server may fork it), with EXEC=1 an exec in it; prints the pids and their shims. */
const OWNER = `
  import { readFileSync } from 'node:fs';
  import { Runtime } from './src/index.ts';
  const ppid = (pid) => Number(readFileSync('/proc/' + pid + '/stat', 'utf8').split(') ')[1].split(' ')[1]);
  const r = new Runtime({ root: process.env.ROOT, stateDir: process.env.STATE });
  const first = await r.run({ rootfs: process.env.ROOTFS, cmd: ['true'], stdio: 'ignore' });
  await first.wait();
  await first.remove();
  const userns = process.env.USERNS === 'auto' ? { userns: 'auto' } : {};
  const c = await r.run({ rootfs: process.env.ROOTFS, cmd: ['sleep', '1000'], stdio: 'ignore', ...userns });
  const pids = [c.pid, ppid(c.pid)];
  if (process.env.EXEC === '1') {
    const p = await c.exec(['sleep', '999'], { stdio: 'ignore' });
    pids.push(p.pid, ppid(p.pid));
  }
  console.log(JSON.stringify(pids));
  setInterval(() => undefined, 1000);
`;

/** The start time of `pid` (field 22 of /proc/PID/stat), or undefined once it is gone. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Starts the owner, waits for its line, SIGKILLs it; the processes that outlive it by 5 s. */
async function survivorsOfOwnerKill(env: Record<string, string>): Promise<number[]> {
  const owner = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', OWNER], {
    cwd: repo,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => owner.once('exit', resolve));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('the owner printed nothing in 30 s')), 30_000);
    owner.stdout.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(out.slice(0, out.indexOf('\n')));
      }
    });
    owner.once('exit', (code) => reject(new Error(`the owner exited (${code}) before its line`)));
  }).catch(async (error: unknown) => {
    owner.kill('SIGKILL');
    await exited;
    throw error;
  });
  const watched = (JSON.parse(line) as number[]).map((pid) => ({ pid, start: startTime(pid) }));
  owner.kill('SIGKILL');
  await exited;
  const alive = () => watched.filter((w) => w.start !== undefined && startTime(w.pid) === w.start);
  for (let i = 0; i < 50 && alive().length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  const left = alive();
  // Ours to end (we started them): the next test and the world's disposal must not meet them.
  for (const w of left) {
    try {
      process.kill(w.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  return left.map((w) => w.pid);
}

describe('a container dies with its SIGKILLed owner', { skip }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    await world?.dispose();
  });

  for (const forkServer of ['0', '1']) {
    const how = forkServer === '1' ? 'forked by the fork server' : 'spawned from Node';
    const env = (userns: string, exec = '') => ({
      ROOT: join(world.base, 'data'),
      STATE: join(world.base, 'state'),
      ROOTFS: world.rootfs,
      DOCKLESS_FORK_SERVER: forkServer,
      USERNS: userns,
      EXEC: exec,
    });
    it(`without a user namespace, ${how}`, async () => {
      assert.deepEqual(await survivorsOfOwnerKill(env('')), []);
    });
    it(`with userns: 'auto' (its shim changes fsuid to mount the idmapped root), ${how}`, { skip: usernsOff }, async () => {
      assert.deepEqual(await survivorsOfOwnerKill(env('auto')), []);
    });
    it(`an exec in a userns: 'auto' container, and the container, ${how}`, { skip: usernsOff }, async () => {
      assert.deepEqual(await survivorsOfOwnerKill(env('auto', '1')), []);
    });
  }
});
