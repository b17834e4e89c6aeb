import { strict as assert } from 'node:assert';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InvalidArgumentError, InvalidStateError, Runtime, type Container, type ContainerSpec } from '../../src/index.js';
import { detectCgroups } from '../../src/runtime/cgroups/detect.js';
import { cannotRun, makeWorld, type World } from '../fixtures/world.js';

function whyNot(): string | undefined {
  const base = cannotRun();
  if (base !== undefined) return base;
  const host = detectCgroups();
  const missing = ['memory', 'pids', 'cpu'].filter((c) => !host.controllers.has(c));
  if (missing.length > 0) return `cgroup controllers not available to this process: ${missing.join(', ')} (cgroups: ${host.mode})`;
  return undefined;
}

const skip = whyNot();
if (skip !== undefined) console.log(`# skipping update integration tests: ${skip}`);

const MiB = 1024 * 1024;

/** The directory of host process `pid`'s cgroup for `controller`. */
async function cgroupDir(pid: number, controller: string): Promise<string> {
  const h = detectCgroups().controllers.get(controller)!;
  for (const line of (await readFile(`/proc/${pid}/cgroup`, 'utf8')).split('\n').filter(Boolean)) {
    const [id, controllers, path] = line.split(':') as [string, string, string];
    const mine = h.version === 2 ? id === '0' : controllers.split(',').includes(controller);
    if (mine) return join(h.mount, path.slice(h.mountRoot === '/' ? 0 : h.mountRoot.length));
  }
  throw new Error(`no ${controller} cgroup for pid ${pid}`);
}

async function limitFile(pid: number, controller: string, v1: string, v2: string): Promise<string> {
  const h = detectCgroups().controllers.get(controller)!;
  return (await readFile(join(await cgroupDir(pid, controller), h.version === 1 ? v1 : v2), 'utf8')).trim();
}

describe('container.update', { skip }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    await world?.dispose();
  });

  async function sleeper(extra: Partial<ContainerSpec> = {}): Promise<Container> {
    return world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '60'], stdio: 'ignore', ...extra });
  }

  it('raising the memory limit above the old memory+swap limit (v1 memsw) succeeds', async () => {
    // On v1 memory.limit_in_bytes may never exceed memory.memsw.limit_in_bytes: a raise must write memsw first.
    const c = await sleeper({ resources: { memory: 64 * MiB } });
    try {
      await c.update({ memory: 512 * MiB });
      assert.equal((await c.stats()).memory.limit, 512 * MiB);
      assert.equal((await c.inspect()).HostConfig.MemorySwap, 1024 * MiB);
    } finally {
      await c.remove({ force: true });
    }
  });

  it('raises and lowers the memory limit of a running container: its cgroup, stats(), inspect() and a restart see it', async () => {
    const c = await sleeper({ resources: { memory: 64 * MiB } });
    try {
      await c.update({ memory: 128 * MiB });
      assert.equal(await limitFile(c.pid, 'memory', 'memory.limit_in_bytes', 'memory.max'), String(128 * MiB));
      assert.equal((await c.stats()).memory.limit, 128 * MiB);
      const all = await c.update({ memory: 32 * MiB, cpus: 0.5 });
      assert.deepEqual(all, { memory: 32 * MiB, cpus: 0.5 });
      assert.equal((await c.stats()).memory.limit, 32 * MiB);
      const cpuMax = await limitFile(c.pid, 'cpu', 'cpu.cfs_quota_us', 'cpu.max');
      assert.match(cpuMax, /^50000\b/);
      const inspect = await c.inspect();
      assert.equal(inspect.HostConfig.Memory, 32 * MiB);
      assert.equal(inspect.HostConfig.CpuQuota, 50000);
      await c.restart({ timeoutMs: 0 });
      assert.equal((await c.stats()).memory.limit, 32 * MiB);
    } finally {
      await c.remove({ force: true });
    }
  });

  it('a lowered pids limit makes forks inside fail with EAGAIN', async () => {
    const c = await sleeper();
    try {
      await c.update({ pids: 8 });
      assert.equal(await limitFile(c.pid, 'pids', 'pids.max', 'pids.max'), '8');
      const p = await c.exec(['probe', 'fork-bomb']);
      const out = await new Promise<string>((resolve) => {
        let buf = '';
        p.stdout!.on('data', (d: Buffer) => {
          buf += d.toString();
          if (buf.includes('\n')) resolve(buf.split('\n')[0]!);
        });
      });
      assert.equal(out.split(' ')[1], 'EAGAIN', out);
      assert.ok(Number(out.split(' ')[0]) < 8, out);
      assert.equal((await c.stats()).pids.limit, 8);
    } finally {
      await c.remove({ force: true });
    }
  });

  it('bad values are InvalidArgumentError and change nothing', async () => {
    const c = await sleeper({ resources: { memory: 64 * MiB } });
    try {
      await assert.rejects(c.update({ memory: 1 }), InvalidArgumentError);
      await assert.rejects(c.update({ pids: 0 }), InvalidArgumentError);
      await assert.rejects(c.update({ cpuShares: 1 }), InvalidArgumentError);
      await assert.rejects(c.update({ memorySwap: 16 * MiB }), InvalidArgumentError);
      await assert.rejects(c.update({ bogus: 1 } as never), InvalidArgumentError);
      await assert.rejects(c.update({}), InvalidArgumentError);
      assert.equal((await c.stats()).memory.limit, 64 * MiB);
      assert.equal((await c.inspect()).HostConfig.Memory, 64 * MiB);
    } finally {
      await c.remove({ force: true });
    }
  });

  it('a memory limit below what the container holds (tmpfs, no swap) is a typed error and the old limit stays', async (t) => {
    if (detectCgroups().controllers.get('memory')!.version !== 1) {
      t.skip('cgroup v2 memory.max does not refuse a lower limit: it reclaims, then OOM-kills');
      return;
    }
    const c = await world.runtime.run({
      rootfs: world.rootfs,
      cmd: ['sh', '-c', 'dd if=/dev/zero of=/t/f bs=1048576 count=40 2>/dev/null; echo filled; sleep 60'],
      mounts: [{ type: 'tmpfs', target: '/t' }],
      resources: { memory: 128 * MiB, memorySwap: 128 * MiB },
    });
    try {
      await new Promise<void>((resolve) => c.stdout!.on('data', (d: Buffer) => d.toString().includes('filled') && resolve()));
      await assert.rejects(c.update({ memory: 16 * MiB, memorySwap: 16 * MiB }), (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError, String(e));
        assert.match(e.message, /uses more memory than that/);
        return true;
      });
      assert.equal((await c.stats()).memory.limit, 128 * MiB);
      assert.equal((await c.inspect()).HostConfig.Memory, 128 * MiB);
    } finally {
      await c.remove({ force: true });
    }
  });

  it('updates a detached container from a second Runtime; a removed container is InvalidStateError', async () => {
    const c = await sleeper({ detached: true });
    try {
      const other = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir });
      const found = await other.get(c.id);
      await found.update({ pids: 50, memory: 100 * MiB });
      assert.equal(await limitFile(c.pid, 'pids', 'pids.max', 'pids.max'), '50');
      assert.deepEqual((await c.stats()).pids.limit, 50);
      assert.equal((await (await world.runtime.get(c.id)).inspect()).HostConfig.Memory, 100 * MiB);
    } finally {
      await c.remove({ force: true });
    }
    await assert.rejects(c.update({ pids: 10 }), InvalidStateError);
  });
});
