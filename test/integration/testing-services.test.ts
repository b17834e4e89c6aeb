// dockless/testing's ready-made services with their real npm clients: Redis
// (`redis`) and PostgreSQL (`pg`) from the host's Debian packages, and the
// harness's proxy between a client and a service (latency, reset).
import { strict as assert } from 'node:assert';
import { existsSync, readdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createClient } from 'redis';
import { startPostgres, startRedis } from '../../src/testing/index.js';
import { cannotRun, makeWorld, type World } from '../fixtures/world.js';

const hasPostgres = existsSync('/usr/lib/postgresql') && readdirSync('/usr/lib/postgresql').some((v) => existsSync(`/usr/lib/postgresql/${v}/bin/postgres`));
const why = cannotRun() ?? (!existsSync('/usr/bin/redis-server') ? 'no redis-server (Debian package redis-server; .ci/install-deps installs it)' : !hasPostgres ? 'no PostgreSQL server (Debian package postgresql)' : undefined);
if (why !== undefined) console.log(`# skipped testing-services: ${why}`);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('dockless/testing services', { skip: why }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    // The world's own 'bridge' network is a Linux bridge on the host: removed here, or it outlives the world.
    for (const n of (await world?.runtime.listNetworks().catch(() => [])) ?? []) await n.remove({ force: true }).catch(() => undefined);
    await world?.dispose();
  });

  it('startRedis: the redis client sets and gets through the connection URL; disposal removes the container', async () => {
    let id: string;
    {
      await using redis = await startRedis(world.runtime);
      id = redis.id;
      assert.match(redis.connectionUrl, /^redis:\/\/127\.0\.0\.1:\d+$/);
      const client = await createClient({ url: redis.connectionUrl }).connect();
      try {
        assert.equal(await client.set('greeting', 'hello'), 'OK');
        assert.equal(await client.get('greeting'), 'hello');
        assert.equal(await client.incr('n'), 1);
      } finally {
        await client.quit();
      }
    }
    assert.equal((await world.runtime.list()).some((c) => c.id === id), false);
  });

  it('startRedis with a password: refused without it, accepted with it', async () => {
    await using redis = await startRedis(world.runtime, { password: 's3cret' });
    const anonymous = createClient({ url: `redis://${redis.host}:${redis.port}`, socket: { reconnectStrategy: false } });
    anonymous.on('error', () => undefined);
    await assert.rejects(anonymous.connect(), /NOAUTH/);
    const client = await createClient({ url: redis.connectionUrl }).connect();
    assert.equal(await client.ping(), 'PONG');
    await client.quit();
  });

  it('startPostgres: the pg client creates a table, inserts and selects with the credentials given', async () => {
    await using db = await startPostgres(world.runtime, { username: 'app', password: 'pw', database: 'shop' });
    assert.equal(db.connectionUri, `postgres://app:pw@127.0.0.1:${db.port}/shop`);
    const client = new pg.Client({ connectionString: db.connectionUri });
    await client.connect();
    try {
      await client.query('CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)');
      await client.query('INSERT INTO items (name) VALUES ($1), ($2)', ['apple', 'pear']);
      const { rows } = await client.query<{ name: string }>('SELECT name FROM items ORDER BY id');
      assert.deepEqual(rows.map((r) => r.name), ['apple', 'pear']);
      const who = await client.query<{ u: string; d: string }>('SELECT current_user AS u, current_database() AS d');
      assert.deepEqual(who.rows[0], { u: 'app', d: 'shop' });
    } finally {
      await client.end();
    }
    const wrong = new pg.Client({ host: db.host, port: db.port, user: 'app', password: 'nope', database: 'shop' });
    await assert.rejects(wrong.connect(), /password authentication failed/);
  });

  it('each startPostgres is a fresh database: a table made by one is not in the next', async () => {
    for (let i = 0; i < 2; i++) {
      await using db = await startPostgres(world.runtime);
      const client = new pg.Client({ connectionString: db.connectionUri });
      await client.connect();
      const { rows } = await client.query("SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'once'");
      assert.equal(rows[0].n, 0);
      await client.query('CREATE TABLE once (x int)');
      await client.end();
    }
  });

  it('proxy: latency toxic slows pg queries by what was asked (medians); reset_peer reaches the redis client', async () => {
    await using db = await startPostgres(world.runtime);
    const proxy = await db.proxy(5432);
    const client = new pg.Client({ host: proxy.host, port: proxy.port, user: db.username, password: db.password, database: db.database });
    await client.connect();
    const time = async () => {
      const t0 = performance.now();
      await client.query('SELECT 1');
      return performance.now() - t0;
    };
    const base: number[] = [];
    for (let i = 0; i < 7; i++) base.push(await time());
    proxy.addToxic({ type: 'latency', latency: 150 });
    const slow: number[] = [];
    for (let i = 0; i < 7; i++) slow.push(await time());
    const added = median(slow) - median(base);
    assert.ok(added >= 120 && added <= 180, `added ${added.toFixed(1)} ms for 150 asked`);
    await client.end();

    await using redis = await startRedis(world.runtime);
    const rproxy = await redis.proxy(6379);
    const errors: Error[] = [];
    const rclient = createClient({ url: `redis://${rproxy.host}:${rproxy.port}`, socket: { reconnectStrategy: false } });
    rclient.on('error', (e: Error) => errors.push(e));
    await rclient.connect();
    assert.equal(await rclient.ping(), 'PONG');
    rproxy.addToxic({ type: 'reset_peer', stream: 'upstream' });
    await assert.rejects(rclient.ping());
    assert.ok(errors.some((e) => /ECONNRESET|closed/i.test(String(e))), `the client saw the reset: ${errors.map(String).join('; ')}`);
    await rclient.destroy?.();
  });
});
