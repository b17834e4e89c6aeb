/**
 * The same harness under vitest: one Redis for the file, a fresh PostgreSQL
 * per test, all removed when their scope ends.
 *
 * Run (as root, with redis-server and postgresql installed):
 *   npx vitest run --root examples/vitest
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createClient } from 'redis';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Runtime } from '../../src/index.js';
import { startPostgres, startRedis, type StartedRedis } from '../../src/testing/index.js';

let base: string;
let runtime: Runtime;
let redis: StartedRedis;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'dockless-vitest-'));
  runtime = new Runtime({ root: join(base, 'data'), stateDir: join(base, 'state') });
  redis = await startRedis(runtime);
}, 60_000);

afterAll(async () => {
  await redis?.[Symbol.asyncDispose]();
  await rm(base, { recursive: true, force: true });
});

test('counts visits in redis', async () => {
  const client = await createClient({ url: redis.connectionUrl }).connect();
  await client.incr('visits');
  expect(await client.get('visits')).toBe('1');
  await client.quit();
});

test('stores users in a fresh postgres', async () => {
  await using db = await startPostgres(runtime);
  const client = new pg.Client({ connectionString: db.connectionUri });
  await client.connect();
  await client.query('CREATE TABLE users (name text)');
  await client.query("INSERT INTO users VALUES ('ada')");
  const { rows } = await client.query('SELECT name FROM users');
  expect(rows).toEqual([{ name: 'ada' }]);
  await client.end();
}, 60_000);
