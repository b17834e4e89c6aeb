/**
 * A test suite in the style of testcontainers, with no Docker daemon, using
 * `dockless/testing`: each test starts a container, waits until it is ready,
 * reaches it through its published port, and `await using` removes it when
 * the test's scope ends, even when the test fails.
 *
 * The services are real: Redis and PostgreSQL from the host's Debian packages
 * (`apt-get install redis-server postgresql`), no image pulled, spoken to with
 * their real npm clients (`redis`, `pg`); a proxy in front of one slows or
 * resets its connections on demand.
 *
 * Run: node --import tsx --test examples/test-harness.ts (as root)
 */
import { strict as assert } from 'node:assert';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { createClient } from 'redis';
import { NotReadyError, Runtime, rootfsFromHost } from '../src/index.js';
import { startContainer, startPostgres, startRedis, Wait } from '../src/testing/index.js';

let base: string;
let rootfs: string;
let runtime: Runtime;

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'dockless-harness-'));
  rootfs = (await rootfsFromHost(join(base, 'rootfs'))).path;
  // A static busybox brings an HTTP server (`busybox httpd`) into the host-made rootfs.
  await copyFile('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  runtime = new Runtime({ root: join(base, 'data'), stateDir: join(base, 'state') });
});

after(async () => {
  await rm(base, { recursive: true, force: true });
});

test('a web server with a file copied in is ready when it answers', async () => {
  await using web = await startContainer(runtime, {
    rootfs,
    cmd: ['/bin/busybox', 'httpd', '-f', '-p', '80', '-h', '/srv/www'],
    files: [{ path: '/srv/www/index.html', content: 'hello\n' }],
    ports: [80],
    wait: Wait.forHttp('/', 80, { body: 'hello' }),
  });
  const response = await fetch(web.url(80));
  assert.equal(await response.text(), 'hello\n');
});

test('a service is ready once it listens: read from the host, no nc in the image', async () => {
  await using svc = await startContainer(runtime, {
    rootfs,
    cmd: ['/bin/busybox', 'nc', '-ll', '-p', '6379', '-e', '/bin/busybox', 'echo', '+PONG'],
    ports: [6379],
    wait: Wait.forListeningPorts(6379),
  });
  assert.ok(svc.getMappedPort(6379) > 0);
});

test('a one-shot job (a migration) runs to its end', async () => {
  await using job = await startContainer(runtime, { rootfs, cmd: ['sh', '-c', 'echo migrated'], wait: Wait.forExit() });
  const lines: string[] = [];
  for await (const line of job.logs()) lines.push(line.text);
  assert.deepEqual(lines, ['migrated\n']);
});

test('a service that never becomes ready fails with its last log lines', async () => {
  await assert.rejects(
    startContainer(runtime, { rootfs, cmd: ['sh', '-c', 'echo config error: no password; exec sleep 60'], wait: Wait.forLogMessage('ready'), startupTimeout: 1000 }),
    (error: unknown) => error instanceof NotReadyError && error.logTail.includes('config error: no password'),
  );
});

test('redis: a cache set and read back with the redis client', async () => {
  await using redis = await startRedis(runtime);
  const client = await createClient({ url: redis.connectionUrl }).connect();
  try {
    await client.set('session:1', 'alice', { EX: 60 });
    assert.equal(await client.get('session:1'), 'alice');
  } finally {
    await client.quit();
  }
});

test('postgres: a table created, filled and queried with the pg client', async () => {
  await using db = await startPostgres(runtime, { database: 'shop' });
  const client = new pg.Client({ connectionString: db.connectionUri });
  await client.connect();
  try {
    await client.query('CREATE TABLE orders (id serial PRIMARY KEY, total numeric NOT NULL)');
    await client.query('INSERT INTO orders (total) VALUES (10.5), (4.5)');
    const { rows } = await client.query<{ sum: string }>('SELECT sum(total)::text AS sum FROM orders');
    assert.equal(rows[0]?.sum, '15.0');
  } finally {
    await client.end();
  }
});

test('fault injection: the app sees a reset connection as an error, not a hang', async () => {
  await using redis = await startRedis(runtime);
  const proxy = await redis.proxy(6379);
  const client = createClient({ url: `redis://${proxy.host}:${proxy.port}`, socket: { reconnectStrategy: false } });
  client.on('error', () => undefined);
  await client.connect();
  proxy.addToxic({ type: 'reset_peer' });
  await assert.rejects(client.get('anything'));
});
