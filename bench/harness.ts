/**
 * Time to a ready service: from the start call until the service answers
 * (Redis: a `PING` over TCP; PostgreSQL: `SELECT 1` with the `pg` client), for `startRedis()` / `startPostgres()` of
 * dockless/testing, beside testcontainers' practice on podman — `podman run -d`
 * of the same rootfs (imported as an image) and the same client polling until
 * it answers — measured in the same run.
 *
 * The whole bench runs in a throwaway network namespace ({@link inNetSandbox}):
 * our published ports make the default bridge network, whose bridge and
 * firewall table must not reach the shared machine's. podman runs with
 * `--network host` (that namespace's loopback; it spares podman the network
 * namespace and port forwarding that ours sets up) and `--ulimit nofile=…,nproc=1024` (without
 * CAP_SYS_RESOURCE it cannot set its default limits). The image builds (once
 * per host package version, cached) are outside the timed runs and printed apart.
 *
 * Run: node --import tsx bench/harness.ts [--runs N] [--shm]   (root)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { Runtime } from '../src/index.js';
import { startPostgres, startRedis } from '../src/testing/index.js';
import { arg, benchParent, compare, dropCaches, inNetSandbox, latencyStats, which, writeResults, type ResultRow } from './common.js';

inNetSandbox();

const RUNS = Number(arg('--runs') ?? 10);
const parent = process.argv.includes('--shm') ? { dir: '/dev/shm', kind: 'shm' as const } : await benchParent();
const base = await mkdtemp(join(parent.dir, 'dockless-bench-harness-'));
const fmt = (n: number) => n.toFixed(1).padStart(7);

/** One raw `PING` over TCP answered `+PONG` (the `redis` client's own connect costs ~100 ms here, for any server). */
function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => s.write('PING\r\n'));
    s.setTimeout(1000, () => s.destroy());
    s.on('data', (d) => {
      resolve(d.toString().startsWith('+PONG'));
      s.destroy();
    });
    s.on('error', () => resolve(false));
    s.on('close', () => resolve(false));
  });
}

async function redisAnswers(port: number, deadline: number): Promise<void> {
  while (!(await pingOnce(port))) {
    if (performance.now() > deadline) throw new Error(`redis on port ${port}: no answer`);
    await sleep(5);
  }
}

async function pgAnswers(connectionString: string, deadline: number): Promise<void> {
  for (;;) {
    const client = new pg.Client({ connectionString, connectionTimeoutMillis: 1000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return;
    } catch {
      await client.end().catch(() => undefined);
      if (performance.now() > deadline) throw new Error(`postgres at ${connectionString}: no answer`);
      await sleep(5);
    }
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function hardLimit(flag: string): string {
  return execFileSync('bash', ['-c', `ulimit -H${flag}`], { encoding: 'utf8' }).trim().replace('unlimited', '-1');
}

const rows: ResultRow[] = [];
let cacheDropped = false;
try {
  const runtime = new Runtime({ root: join(base, 'data'), stateDir: join(base, 'state') });
  let t = performance.now();
  await (await startRedis(runtime))[Symbol.asyncDispose]();
  console.log(`# redis image built from host binaries (once, cached): ${(performance.now() - t).toFixed(0)} ms`);
  t = performance.now();
  await (await startPostgres(runtime))[Symbol.asyncDispose]();
  console.log(`# postgres image built and initdb'd (once, cached): ${(performance.now() - t).toFixed(0)} ms`);
  cacheDropped = dropCaches();

  const ours = { redis: [] as number[], redisStart: [] as number[], postgres: [] as number[] };
  for (let i = 0; i < RUNS; i++) {
    t = performance.now();
    const redis = await startRedis(runtime);
    ours.redisStart.push(performance.now() - t);
    await redisAnswers(redis.port, performance.now() + 30_000);
    ours.redis.push(performance.now() - t);
    await redis[Symbol.asyncDispose]();

    t = performance.now();
    const db = await startPostgres(runtime);
    await pgAnswers(db.connectionUri, performance.now() + 60_000);
    ours.postgres.push(performance.now() - t);
    await db[Symbol.asyncDispose]();
  }
  const rs = latencyStats(ours.redisStart);
  console.log(`dockless startRedis() resolved (${RUNS} runs):       median ${fmt(rs.median)} ms   p95 ${fmt(rs.p95)} ms`);

  const podman = which('podman');
  const peer: { redis: number[]; postgres: number[] } = { redis: [], postgres: [] };
  if (podman === undefined || process.getuid?.() !== 0) {
    console.log('# podman: not measured (not installed, or not root)');
  } else {
    const storage = ['--root', join(base, 'podman-root'), '--runroot', join(base, 'podman-run'), '--storage-driver', 'overlay'];
    const images = join(base, 'data', 'testing-images');
    for (const dir of await readdir(images)) {
      const name = dir.split('-')[0]!;
      if (name !== 'redis' && name !== 'postgres') continue;
      execFileSync('tar', ['--numeric-owner', '-C', join(images, dir), '-cf', join(base, `${name}.tar`), '.']);
      execFileSync(podman, [...storage, 'import', join(base, `${name}.tar`), `bench-${name}:1`], { stdio: 'ignore' });
    }
    const limits = ['--ulimit', `nofile=${hardLimit('n')}`, '--ulimit', 'nproc=1024:1024'];
    const pgVersion = (await readdir('/usr/lib/postgresql')).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a))[0];
    const pgBin = `/usr/lib/postgresql/${pgVersion}/bin`;
    for (let i = 0; i < RUNS; i++) {
      let port = await freePort();
      t = performance.now();
      let id = execFileSync(podman, [...storage, 'run', '-d', '--network', 'host', ...limits, 'localhost/bench-redis:1', '/bin/redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { encoding: 'utf8' }).trim();
      await redisAnswers(port, performance.now() + 30_000);
      peer.redis.push(performance.now() - t);
      spawnSync(podman, [...storage, 'rm', '-f', id], { stdio: 'ignore' });

      port = await freePort();
      t = performance.now();
      id = execFileSync(podman, [...storage, 'run', '-d', '--network', 'host', ...limits, '--user', '1000:1000', '-e', 'TZ=UTC', 'localhost/bench-postgres:1', join(pgBin, 'postgres'), '-D', '/var/lib/postgresql/data', '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=/tmp', '-c', 'hba_file=/etc/postgresql/pg_hba.conf', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'jit=off'], { encoding: 'utf8' }).trim();
      await pgAnswers(`postgres://test:test@127.0.0.1:${port}/test`, performance.now() + 60_000);
      peer.postgres.push(performance.now() - t);
      spawnSync(podman, [...storage, 'rm', '-f', id], { stdio: 'ignore' });
    }
  }
  const r = latencyStats(ours.redis);
  const p = latencyStats(ours.postgres);
  const pr = peer.redis.length > 0 ? { name: 'podman run + wait', value: latencyStats(peer.redis).median } : undefined;
  const pp = peer.postgres.length > 0 ? { name: 'podman run + wait', value: latencyStats(peer.postgres).median } : undefined;
  rows.push(compare('start call → ready Redis (first PING answered), median', r.median, 'ms', pr, { target: '≤ 100 ms' }));
  rows.push(compare('start call → ready PostgreSQL (first SELECT 1), median', p.median, 'ms', pp));
  await writeResults('harness', rows, { dir: parent.dir, kind: parent.kind, cacheDropped });
  for (const n of await runtime.listNetworks().catch(() => [])) await n.remove({ force: true }).catch(() => undefined);
} finally {
  // podman leaves its storage's overlay mounted after run: unmount what is below our directory first.
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(`${base}/`));
  for (const m of mounts.sort().reverse()) spawnSync('umount', [m]);
  await rm(base, { recursive: true, force: true }).catch(() => undefined);
}
