// Healthchecks, restart policies and events against real containers: the
// state each one keeps must be the same from every process that uses the
// state directory, and restarts must not need the process that started the
// container.
import { strict as assert } from 'node:assert';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { ImageStore, Runtime, UnhealthyError, type ContainerEvent, type ImageConfig } from '../../src/index.js';
import { cannotRun, makeWorld, type World } from '../fixtures/world.js';

const skip = cannotRun();
if (skip !== undefined) console.log(`# skipping lifecycle integration tests: ${skip}`);
const repo = join(import.meta.dirname, '..', '..');
const child = join(repo, 'test', 'fixtures', 'lifecycle-child.ts');

async function childJson(world: World, ...args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', child, world.runtime.root, world.runtime.stateDir, ...args], {
    cwd: repo,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function collect(runtime: Runtime, options: Parameters<Runtime['events']>[0]): Promise<ContainerEvent[]> {
  const out: ContainerEvent[] = [];
  for await (const e of runtime.events(options)) out.push(e);
  return out;
}

describe('healthchecks', { skip }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    await world?.dispose();
  });

  it('a spec healthcheck that passes makes the container healthy, and another process sees it', async () => {
    const c = await world.runtime.run({
      rootfs: world.rootfs,
      cmd: ['sleep', '60'],
      stdio: 'ignore',
      healthcheck: { test: ['CMD', 'sh', '-c', 'echo fine'], interval: 100 },
    });
    await c.waitHealthy({ timeout: 5000 });
    const seen = await childJson(world, 'inspect', c.id);
    const health = seen.Health as { Status: string; FailingStreak: number; Log: { ExitCode: number; Output: string }[] };
    assert.equal(health.Status, 'healthy');
    assert.equal(health.FailingStreak, 0);
    assert.deepEqual(health.Log.at(-1)?.Output, 'fine\n');
    assert.equal(health.Log.at(-1)?.ExitCode, 0);
    await c.remove({ force: true });
  });

  it('an image Healthcheck (CMD-SHELL, durations in ns) is run, and the spec can disable it', async () => {
    const store = await ImageStore.open({ root: join(world.base, 'store') });
    const runtime = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir, store });
    const tar = execFileSync('tar', ['-C', world.rootfs, '--numeric-owner', '-cf', '-', '.'], { maxBuffer: 1 << 30 });
    const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
    const layer = await store.putBlob(gzipSync(tar), { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' });
    const config = {
      architecture: 'amd64',
      os: 'linux',
      config: {
        Env: ['PATH=/usr/bin:/bin'],
        Cmd: ['sleep', '60'],
        Healthcheck: { Test: ['CMD-SHELL', 'echo from-image && test -d /proc/1'], Interval: 100_000_000, Retries: 2 },
      },
      rootfs: { type: 'layers', diff_ids: [diffId] },
    } as ImageConfig;
    const manifest = await store.putImage({ config, layers: [{ descriptor: layer, diffId }] });
    await store.tag(manifest.digest, 'example.test/health:1');
    const c = await runtime.run({ image: 'example.test/health:1', stdio: 'ignore' });
    await c.waitHealthy({ timeout: 5000 });
    assert.equal((await c.inspect()).State.Health?.Log.at(-1)?.Output, 'from-image\n');
    const none = await runtime.run({ image: 'example.test/health:1', stdio: 'ignore', healthcheck: { test: 'none' } });
    assert.equal((await none.inspect()).State.Health, undefined);
    await Promise.all([c.remove({ force: true }), none.remove({ force: true })]);
  });

  it('becomes unhealthy after `retries` consecutive failures, and waitHealthy says so with the output', async () => {
    const c = await world.runtime.run({
      rootfs: world.rootfs,
      cmd: ['sleep', '60'],
      stdio: 'ignore',
      healthcheck: { test: 'echo broken >&2; exit 1', interval: 50, retries: 3 },
    });
    const error = await c.waitHealthy({ timeout: 10_000 }).then(
      () => assert.fail('became healthy'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof UnhealthyError);
    assert.equal(error.reason, 'unhealthy');
    assert.equal(error.output, 'broken\n');
    assert.equal(error.exitCode, 1);
    const health = (await c.inspect()).State.Health!;
    assert.equal(health.Status, 'unhealthy');
    assert.equal(health.FailingStreak, 3);
    assert.equal(health.Log.length, 3);
    const changes = await collect(world.runtime, { since: 0, until: Date.now(), filters: { container: [c.id], event: ['health_status'] } });
    assert.deepEqual(changes.map((e) => e.attributes.healthStatus), ['unhealthy']);
    await c.remove({ force: true });
  });

  it('a check that outlives its timeout is killed and counts as a failure', async () => {
    const c = await world.runtime.run({
      rootfs: world.rootfs,
      cmd: ['sleep', '60'],
      stdio: 'ignore',
      healthcheck: { test: 'sleep 30', interval: 50, timeout: 200, retries: 1 },
    });
    const started = Date.now();
    const error = await c.waitHealthy({ timeout: 10_000 }).catch((e: unknown) => e);
    assert.ok(error instanceof UnhealthyError, String(error));
    assert.equal(error.reason, 'unhealthy');
    assert.equal(error.exitCode, -1);
    assert.match(error.output ?? '', /exceeded timeout/);
    assert.ok(Date.now() - started < 5000, 'the check was not cut short at its timeout');
    await c.remove({ force: true });
  });

  it('a check that leaves a child holding its output is judged when it exits, not when the child does', async () => {
    // The check's pipes stay open as long as the child lives: waiting for their end held the check until its timeout.
    const c = await world.runtime.run({
      rootfs: world.rootfs,
      cmd: ['sleep', '60'],
      stdio: 'ignore',
      healthcheck: { test: 'sleep 30 & echo up', interval: 50, timeout: 4000 },
    });
    await c.waitHealthy({ timeout: 3000 });
    assert.equal((await c.inspect()).State.Health?.Log.at(-1)?.Output, 'up\n');
    await c.remove({ force: true });
  });

  it('failures during the start period do not count while starting', async () => {
    const c = await world.runtime.run({
      rootfs: world.rootfs,
      cmd: ['sleep', '60'],
      stdio: 'ignore',
      healthcheck: { test: 'exit 1', interval: 50, startInterval: 50, startPeriod: 1500, retries: 1 },
    });
    await sleep(700);
    const early = (await c.inspect()).State.Health!;
    assert.equal(early.Status, 'starting');
    assert.equal(early.FailingStreak, 0);
    assert.ok(early.Log.length >= 2, `checks ran during the start period: ${early.Log.length}`);
    const error = await c.waitHealthy({ timeout: 10_000 }).catch((e: unknown) => e);
    assert.ok(error instanceof UnhealthyError && error.reason === 'unhealthy', String(error));
    await c.remove({ force: true });
  });

  it('waitHealthy gives up at its timeout with the last check’s output', async () => {
    const c = await world.runtime.run({
      rootfs: world.rootfs,
      cmd: ['sleep', '60'],
      stdio: 'ignore',
      healthcheck: { test: 'echo not yet; exit 1', interval: 50, retries: 1000 },
    });
    const error = await c.waitHealthy({ timeout: 600 }).catch((e: unknown) => e);
    assert.ok(error instanceof UnhealthyError, String(error));
    assert.equal(error.reason, 'timeout');
    assert.equal(error.output, 'not yet\n');
    await c.remove({ force: true });
  });
});

describe('restart policies', { skip }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    await world?.dispose();
  });

  it('on-failure with maxRetries restarts n times, then the exit is final (init: false is overridden)', async () => {
    const c = await world.runtime.run({
      rootfs: world.rootfs,
      cmd: ['sh', '-c', 'echo run >> /tmp/runs; exit 3'],
      stdio: 'ignore',
      init: false,
      restart: { policy: 'on-failure', maxRetries: 2 },
    });
    assert.deepEqual(await c.wait(), { exitCode: 3, signal: null, oomKilled: false });
    assert.equal(c.info().restartCount, 2);
    const inspected = await c.inspect();
    assert.equal(inspected.RestartCount, 2);
    assert.deepEqual(inspected.HostConfig.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 2 });
    assert.equal(inspected.HostConfig.Init, true);
    await c.remove();
  });

  it('on-failure does not restart a command that exits 0', async () => {
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], stdio: 'ignore', restart: 'on-failure' });
    assert.equal((await c.wait()).exitCode, 0);
    assert.equal(c.info().restartCount, 0);
    await c.remove();
  });

  it('always: the helper restarts a detached container after the process that started it exited', async () => {
    const { id } = (await childJson(world, 'start-always', world.rootfs)) as { id: string };
    assert.match(id, /^[0-9a-f]{64}$/);
    const c = await world.runtime.get(id);
    await until('three restarts', 15_000, () => (c.info().restartCount >= 3 ? true : undefined));
    assert.equal(c.status, 'running');
    // The count in the record can come before the restart event is appended to the log.
    let events = await collect(world.runtime, { since: 0, until: Date.now(), filters: { container: [id] } });
    for (let i = 0; i < 50 && events.filter((e) => e.action === 'restart').length < 3; i++) {
      await new Promise((r) => setTimeout(r, 100));
      events = await collect(world.runtime, { since: 0, until: Date.now(), filters: { container: [id] } });
    }
    const restarts = events.filter((e) => e.action === 'restart');
    const deaths = events.filter((e) => e.action === 'die');
    assert.ok(restarts.length >= 3);
    assert.ok(deaths.length >= 3 && deaths.every((e) => e.attributes.exitCode === 1));
    await c.stop({ timeoutMs: 2000 });
  });

  it('backoff: the delay before each restart doubles', async () => {
    const c = await world.runtime.run({
      rootfs: world.rootfs,
      cmd: ['sh', '-c', 'exit 1'],
      stdio: 'ignore',
      restart: { policy: 'on-failure', maxRetries: 4 },
    });
    await c.wait();
    const events = await collect(world.runtime, { since: 0, until: Date.now(), filters: { container: [c.id], event: ['die', 'restart'] } });
    const gaps: number[] = [];
    for (let i = 0; i + 1 < events.length; i++) {
      if (events[i]!.action === 'die' && events[i + 1]!.action === 'restart') gaps.push(events[i + 1]!.time.getTime() - events[i]!.time.getTime());
    }
    assert.equal(gaps.length, 4, JSON.stringify(events.map((e) => e.action)));
    // 100, 200, 400, 800 ms. Both events are written by the shim as the init reports them: on a loaded
    // machine either write may come late, so each gap is only held to most of its delay, and to growing.
    for (let i = 0; i < gaps.length; i++) {
      const expected = 100 * 2 ** i;
      assert.ok(gaps[i]! >= expected * 0.6 && gaps[i]! < expected + 1000, `gap ${i}: ${gaps[i]} ms, expected about ${expected}: ${gaps.join(', ')}`);
    }
    assert.ok(gaps[2]! > gaps[0]! && gaps[3]! > gaps[1]!, `the delays do not grow: ${gaps.join(', ')}`);
    await c.remove();
  });

  it('stop() ends an always container for good: no restart after it', async () => {
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '60'], stdio: 'ignore', restart: 'always' });
    const exit = await c.stop({ timeoutMs: 5000 });
    assert.equal(exit.exitCode, 143);
    assert.equal(c.info().restartCount, 0);
    assert.equal(c.status, 'stopped');
    await c.remove();
  });
});

describe('events', { skip }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    await world?.dispose();
  });

  it('another process sees create, start, die with the exit code, restart and remove, in order', async () => {
    const name = 'ev-order';
    const reader = spawn(process.execPath, ['--import', 'tsx', child, world.runtime.root, world.runtime.stateDir, 'events', name], {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines: Record<string, unknown>[] = [];
    const done = new Promise<void>((resolve) => reader.on('exit', () => resolve()));
    let ready: () => void;
    const isReady = new Promise<void>((resolve) => (ready = resolve));
    createInterface({ input: reader.stdout! }).on('line', (line) => {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if (parsed.ready === true) ready();
      else lines.push(parsed);
    });
    try {
      await isReady;
      const c = await world.runtime.run({
        rootfs: world.rootfs,
        name,
        cmd: ['sh', '-c', 'exit 7'],
        stdio: 'ignore',
        restart: { policy: 'on-failure', maxRetries: 1 },
      });
      await c.wait();
      await c.remove();
      await Promise.race([done, sleep(10_000)]);
    } finally {
      reader.kill();
    }
    assert.deepEqual(lines, [
      { action: 'create', exitCode: null, restartCount: null },
      { action: 'start', exitCode: null, restartCount: null },
      { action: 'die', exitCode: 7, restartCount: null },
      { action: 'restart', exitCode: null, restartCount: 1 },
      { action: 'die', exitCode: 7, restartCount: null },
      { action: 'remove', exitCode: null, restartCount: null },
    ]);
  });

  it('since replays the past and until ends the stream; filters by event, container and label', async () => {
    const t0 = Date.now();
    const a = await world.runtime.run({ rootfs: world.rootfs, name: 'ev-a', cmd: ['true'], stdio: 'ignore', labels: { team: 'red' } });
    const b = await world.runtime.run({ rootfs: world.rootfs, name: 'ev-b', cmd: ['sh', '-c', 'exit 2'], stdio: 'ignore', labels: { team: 'blue' } });
    await Promise.all([a.wait(), b.wait()]);
    await sleep(50);
    const end = Date.now();
    const all = await collect(world.runtime, { since: t0, until: end });
    assert.deepEqual(
      all.filter((e) => e.id === a.id).map((e) => e.action),
      ['create', 'start', 'die'],
    );
    const deaths = await collect(world.runtime, { since: t0, until: end, filters: { event: ['die'] } });
    assert.deepEqual(deaths.map((e) => [e.attributes.name, e.attributes.exitCode]).sort(), [['ev-a', 0], ['ev-b', 2]]);
    const ofB = await collect(world.runtime, { since: t0, until: end, filters: { container: ['ev-b'] } });
    assert.ok(ofB.length === 3 && ofB.every((e) => e.id === b.id));
    const red = await collect(world.runtime, { since: t0, until: end, filters: { label: ['team=red'] } });
    assert.deepEqual(red.map((e) => e.action), ['create', 'start', 'die']);
    assert.ok(red.every((e) => e.id === a.id));
    const before = await collect(world.runtime, { since: 0, until: t0 - 1, filters: { container: [a.id] } });
    assert.deepEqual(before, []);
    await Promise.all([a.remove(), b.remove()]);
  });

  it('an OOM kill is an oom event before the die event, from the helper', async () => {
    const MiB = 1024 * 1024;
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['probe', 'hog', '1024'], stdio: 'ignore', resources: { memory: 64 * MiB, memorySwap: 64 * MiB } });
    const exit = await c.wait();
    assert.ok(exit.oomKilled, JSON.stringify(exit));
    const events = await collect(world.runtime, { since: 0, until: Date.now(), filters: { container: [c.id] } });
    assert.deepEqual(events.map((e) => e.action), ['create', 'start', 'oom', 'die']);
    assert.equal(events.at(-1)!.attributes.exitCode, 137);
    await c.remove();
  });

  it('a follower ends when its signal aborts', async () => {
    const ac = new AbortController();
    const got: ContainerEvent[] = [];
    const following = (async () => {
      for await (const e of world.runtime.events({ signal: ac.signal, filters: { event: ['create'] } })) got.push(e);
    })();
    await sleep(150);
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], stdio: 'ignore' });
    await until('the create event', 5000, () => (got.some((e) => e.id === c.id) ? true : undefined));
    ac.abort();
    await following;
    await c.remove({ force: true });
  });
});
