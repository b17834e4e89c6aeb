// dockless/testing against real containers: each wait strategy (and its
// timeout), published ports reached through getMappedPort/url, files copied in
// before the command runs, and `await using` removing the container.
import { strict as assert } from 'node:assert';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImageStore, importRootfs, InvalidArgumentError, NotReadyError, Runtime } from '../../src/index.js';
import { startContainer, Wait } from '../../src/testing/index.js';
import { cannotRun, makeWorld, type World } from '../fixtures/world.js';

const why = cannotRun();
if (why !== undefined) console.log(`# skipped testing-harness: ${why}`);

describe('dockless/testing', { skip: why }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
    // busybox-static's httpd: a real HTTP server, with nothing else to install.
    await copyFile('/usr/bin/busybox', join(world.rootfs, 'bin', 'busybox'));
  });
  after(async () => world?.dispose());

  const remaining = async () => (await world.runtime.list()).map((c) => c.id);

  function echo(host: string, port: number, message: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host, port }, () => socket.end(message));
      let got = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => (got += d));
      socket.on('end', () => resolve(got));
      socket.on('error', reject);
    });
  }

  it('forListeningPorts sees a TCP server with no shell in the image, and getMappedPort reaches it on host', async () => {
    await using c = await startContainer(world.runtime, {
      rootfs: world.rootfs,
      cmd: ['/bin/probe', 'serve-tcp', '7000'],
      ports: [7000],
      wait: Wait.forListeningPorts(7000),
      startupTimeout: 10_000,
    });
    assert.equal(c.host, '127.0.0.1');
    assert.deepEqual(
      c.container.ports().map((p) => p.hostIp),
      ['127.0.0.1'],
    );
    assert.equal(await echo(c.host, c.getMappedPort(7000), 'ping'), 'ping');
  });

  it('forListeningPorts sees a UDP socket', async () => {
    await using c = await startContainer(world.runtime, {
      rootfs: world.rootfs,
      cmd: ['/bin/probe', 'echo-udp', '5300'],
      wait: Wait.forListeningPorts('5300/udp'),
      startupTimeout: 10_000,
    });
    assert.equal(c.container.status, 'running');
  });

  it('forListeningPorts times out with a NotReadyError carrying what it waited for and the last log lines', async () => {
    const before = await remaining();
    await assert.rejects(
      startContainer(world.runtime, {
        rootfs: world.rootfs,
        cmd: ['sh', '-c', 'echo first line; echo still not listening >&2; exec sleep 1000'],
        wait: Wait.forListeningPorts(7001),
        startupTimeout: 800,
      }),
      (error: unknown) => {
        assert.ok(error instanceof NotReadyError, String(error));
        assert.equal(error.code, 'ERR_DOCKLESS_NOT_READY');
        assert.equal(error.reason, 'timeout');
        assert.equal(error.waitedFor, 'listening ports 7001/tcp');
        assert.deepEqual(error.logTail, ['first line', 'still not listening']);
        return true;
      },
    );
    assert.deepEqual(await remaining(), before, 'the container that was not ready is removed');
  });

  it('a container that exits before it is ready fails the wait at once, with reason exited', async () => {
    const started = Date.now();
    await assert.rejects(
      startContainer(world.runtime, { rootfs: world.rootfs, cmd: ['sh', '-c', 'echo boom; exit 3'], wait: Wait.forListeningPorts(7002), startupTimeout: 20_000 }),
      (error: unknown) => error instanceof NotReadyError && error.reason === 'exited' && error.logTail.includes('boom') && /code 3/.test(error.message),
    );
    assert.ok(Date.now() - started < 10_000);
  });

  it('forHttp and url() reach a server serving a file copied in before start', async () => {
    await using c = await startContainer(world.runtime, {
      rootfs: world.rootfs,
      cmd: ['/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', '/srv'],
      files: [
        { path: '/srv/index.html', content: 'hello from a copied file\n' },
        { path: '/srv/health', content: 'ok\n', mode: 0o600 },
      ],
      ports: [8080],
      wait: Wait.forHttp('/index.html', 8080, { status: 200, body: /copied file/ }),
      startupTimeout: 10_000,
    });
    const url = c.url(8080, '/index.html');
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/index\.html$/);
    const response = await fetch(url);
    assert.equal(await response.text(), 'hello from a copied file\n');
    assert.equal((await c.exec(['stat', '-c', '%a', '/srv/health'])).stdout, '600\n');
  });

  it('forHttp times out when the body never matches', async () => {
    await assert.rejects(
      startContainer(world.runtime, {
        rootfs: world.rootfs,
        cmd: ['/bin/busybox', 'httpd', '-f', '-vv', '-p', '8080', '-h', '/srv'],
        files: [{ path: '/srv/index.html', content: 'starting' }],
        ports: [8080],
        wait: Wait.forHttp('/index.html', 8080, { body: 'ready' }),
        startupTimeout: 1000,
      }),
      (error: unknown) => error instanceof NotReadyError && error.reason === 'timeout' && /GET \/index\.html on port 8080/.test(error.waitedFor ?? ''),
    );
  });

  it('forLogMessage counts occurrences from the start of the log', async () => {
    await using c = await startContainer(world.runtime, {
      rootfs: world.rootfs,
      cmd: ['sh', '-c', 'echo ready; sleep 0.3; echo not yet; echo ready >&2; exec sleep 1000'],
      wait: Wait.forLogMessage(/^ready$/, 2),
      startupTimeout: 10_000,
    });
    const lines = [];
    for await (const line of c.logs()) lines.push(line.text);
    assert.deepEqual(lines, ['ready\n', 'not yet\n', 'ready\n']);
  });

  it('forLogMessage times out with the last log lines', async () => {
    await assert.rejects(
      startContainer(world.runtime, {
        rootfs: world.rootfs,
        cmd: ['sh', '-c', 'for i in 1 2 3 4 5; do echo line $i; done; exec sleep 1000'],
        wait: Wait.forLogMessage('database system is ready'),
        startupTimeout: 700,
        logTailLines: 2,
      }),
      (error: unknown) =>
        error instanceof NotReadyError && error.reason === 'timeout' && error.waitedFor === 'log message "database system is ready"' && error.logTail.join('|') === 'line 4|line 5',
    );
  });

  it('forHealthcheck waits for the healthcheck, and times out while it fails', async () => {
    await using c = await startContainer(world.runtime, {
      rootfs: world.rootfs,
      cmd: ['sh', '-c', 'sleep 0.3; touch /tmp/up; exec sleep 1000'],
      healthcheck: { test: ['CMD', 'test', '-e', '/tmp/up'], interval: 100, startInterval: 100, startPeriod: 5000, retries: 50 },
      wait: Wait.forHealthcheck(),
      startupTimeout: 10_000,
    });
    assert.equal((await c.exec(['test', '-e', '/tmp/up'])).exitCode, 0);
    await assert.rejects(
      startContainer(world.runtime, {
        rootfs: world.rootfs,
        cmd: ['sh', '-c', 'echo never healthy; exec sleep 1000'],
        healthcheck: { test: ['CMD', 'false'], interval: 100, startInterval: 100, startPeriod: 5000, retries: 50 },
        wait: Wait.forHealthcheck(),
        startupTimeout: 700,
      }),
      (error: unknown) => error instanceof NotReadyError && error.reason === 'timeout' && error.waitedFor === 'healthcheck' && error.logTail.includes('never healthy'),
    );
  });

  it('forSuccessfulCommand retries until the command exits 0, and times out when it never does', async () => {
    await using c = await startContainer(world.runtime, {
      rootfs: world.rootfs,
      cmd: ['sh', '-c', 'sleep 0.3; touch /tmp/migrated; exec sleep 1000'],
      wait: Wait.forSuccessfulCommand(['test', '-e', '/tmp/migrated']),
      startupTimeout: 10_000,
    });
    assert.equal(c.container.status, 'running');
    await assert.rejects(
      startContainer(world.runtime, {
        rootfs: world.rootfs,
        cmd: ['sleep', '1000'],
        wait: Wait.forSuccessfulCommand(['test', '-e', '/tmp/never']),
        startupTimeout: 700,
      }),
      (error: unknown) => error instanceof NotReadyError && error.reason === 'timeout' && /test.*never/.test(error.waitedFor ?? ''),
    );
  });

  it('forExit waits for a one-shot job; a non-zero exit fails; a job that runs on times out', async () => {
    await using job = await startContainer(world.runtime, { rootfs: world.rootfs, cmd: ['sh', '-c', 'echo migrated'], wait: Wait.forExit(), startupTimeout: 10_000 });
    assert.equal(job.container.status, 'stopped');
    await assert.rejects(
      startContainer(world.runtime, { rootfs: world.rootfs, cmd: ['sh', '-c', 'echo migration failed; exit 4'], wait: Wait.forExit(), startupTimeout: 10_000 }),
      (error: unknown) => error instanceof NotReadyError && error.reason === 'failed' && /code 4/.test(error.message) && error.logTail.includes('migration failed'),
    );
    await assert.rejects(
      startContainer(world.runtime, { rootfs: world.rootfs, cmd: ['sleep', '1000'], wait: Wait.forExit(), startupTimeout: 500 }),
      (error: unknown) => error instanceof NotReadyError && error.reason === 'timeout' && error.waitedFor === 'exit with code 0',
    );
  });

  it('Wait.all needs every strategy, Wait.any one, under one deadline', async () => {
    await using both = await startContainer(world.runtime, {
      rootfs: world.rootfs,
      cmd: ['/bin/probe', 'serve-tcp', '7003'],
      wait: Wait.all(Wait.forListeningPorts(7003), Wait.forLogMessage('listening')),
      startupTimeout: 10_000,
    });
    assert.equal(both.container.status, 'running');
    await using either = await startContainer(world.runtime, {
      rootfs: world.rootfs,
      cmd: ['/bin/probe', 'serve-tcp', '7004'],
      wait: Wait.any(Wait.forLogMessage('never printed'), Wait.forListeningPorts(7004)),
      startupTimeout: 10_000,
    });
    assert.equal(either.container.status, 'running');
    await assert.rejects(
      startContainer(world.runtime, {
        rootfs: world.rootfs,
        cmd: ['/bin/probe', 'serve-tcp', '7005'],
        wait: Wait.all(Wait.forListeningPorts(7005), Wait.forLogMessage('never printed')),
        startupTimeout: 700,
      }),
      (error: unknown) => error instanceof NotReadyError && error.reason === 'timeout' && error.waitedFor === 'listening ports 7005/tcp and log message "never printed"',
    );
  });

  it('await using removes the container at the end of the scope', async () => {
    let id: string;
    {
      await using c = await startContainer(world.runtime, { rootfs: world.rootfs, cmd: ['sleep', '1000'] });
      id = c.id;
      assert.ok((await remaining()).includes(id));
    }
    assert.ok(!(await remaining()).includes(id));
  });

  it('restart() restarts in place and waits again: the same mapped port serves once it returns', async () => {
    await using c = await startContainer(world.runtime, {
      rootfs: world.rootfs,
      cmd: ['sh', '-c', 'sleep 0.3; exec /bin/probe serve-tcp 7010'],
      ports: [7010],
      startupTimeout: 10_000,
    });
    const port = c.getMappedPort(7010);
    const pid = c.container.pid;
    await c.restart({ timeoutMs: 100 });
    assert.notEqual(c.container.pid, pid);
    assert.equal(c.getMappedPort(7010), port);
    // Waited for again: the server of the new run listens as restart() resolves, 0.3 s after its start.
    const listening = await c.exec(['sh', '-c', 'cat /proc/net/tcp']);
    assert.match(listening.stdout, new RegExp(`:${(7010).toString(16).toUpperCase()} 00000000:0000 0A`));
  });

  it('ipFamily 6 publishes on ::1 and reports ::1, so the listen address and host agree', async () => {
    await using c = await startContainer(world.runtime, {
      rootfs: world.rootfs,
      cmd: ['/bin/probe', 'serve-tcp', '7006'],
      ports: [7006],
      ipFamily: 6,
      startupTimeout: 10_000,
    });
    assert.equal(c.host, '::1');
    assert.deepEqual(c.container.ports().map((p) => p.hostIp), ['::1']);
    assert.match(c.url(7006, 'x'), /^http:\/\/\[::1\]:\d+\/x$/);
    assert.equal(await echo(c.host, c.getMappedPort(7006), 'six'), 'six');
    await using short = await startContainer(world.runtime, { rootfs: world.rootfs, cmd: ['/bin/probe', 'serve-tcp', '7008'], ports: ['7008'], ipFamily: 6 });
    assert.deepEqual(short.container.ports().map((p) => p.hostIp), ['::'], 'a short form with no address takes the family wildcard');
    assert.equal(await echo(short.host, short.getMappedPort(7008), 'wild'), 'wild');
    await assert.rejects(
      startContainer(world.runtime, { rootfs: world.rootfs, cmd: ['sleep', '1'], ports: ['127.0.0.1::7007'], ipFamily: 6 }),
      InvalidArgumentError,
    );
    await assert.rejects(startContainer(world.runtime, { rootfs: world.rootfs, cmd: ['sleep', '1'], ports: ['10.9.8.7::7007'] }), InvalidArgumentError);
  });

  it('a host file is copied in before start, and an image-based container is committed with what it wrote', async () => {
    const store = await ImageStore.open({ root: join(world.base, 'store') });
    const runtime = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir, store });
    await importRootfs(store, world.rootfs, { tag: 'harness-base:1' });
    const hostFile = join(world.base, 'seed.sql');
    await writeFile(hostFile, 'create table t;\n');
    let committed: string;
    {
      await using c = await startContainer(runtime, {
        image: 'harness-base:1',
        cmd: ['sh', '-c', 'cat /docker-entrypoint-initdb.d/seed.sql; exec sleep 1000'],
        files: [{ path: '/docker-entrypoint-initdb.d/seed.sql', hostPath: hostFile }],
        wait: Wait.forLogMessage('create table t;'),
        startupTimeout: 10_000,
      });
      committed = (await c.commit(store, { tag: 'harness-committed:1' })).reference!;
    }
    const { stdout } = await runtime.output({ image: committed, cmd: ['cat', '/docker-entrypoint-initdb.d/seed.sql'] });
    assert.equal(stdout, 'create table t;\n');
  });

  it('build: a Dockerfile fixture is built into the store, and built again only when its inputs change', async () => {
    const store = await ImageStore.open({ root: join(world.base, 'store-build') });
    const runtime = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir, store });
    await importRootfs(store, world.rootfs, { tag: 'harness-build-base:1' });
    const context = join(world.base, 'build-context');
    await mkdir(context, { recursive: true });
    await writeFile(join(context, 'Dockerfile'), 'FROM harness-build-base:1\nRUN echo migrated > /state\nCOPY greeting /greeting\nCMD ["sh", "-c", "cat /state /greeting; exec sleep 1000"]\n');
    await writeFile(join(context, 'greeting'), 'hello\n');
    const run = async () => {
      await using c = await startContainer(runtime, { store, build: { context, tag: 'harness-built:dev' }, wait: Wait.forLogMessage('hello'), startupTimeout: 20_000 });
      return { image: c.container.info().image, log: (await c.logs().collect()).stdout.toString() };
    };
    const first = await run();
    assert.equal(first.log, 'migrated\nhello\n');
    const digest = (await store.resolve('harness-built:dev')).digest;
    assert.deepEqual(await run(), first);
    assert.equal((await store.resolve('harness-built:dev')).digest, digest, 'unchanged inputs: the same image');
    await writeFile(join(context, 'greeting'), 'hello again\n');
    assert.equal((await run()).log, 'migrated\nhello again\n');
  });
});
