// The harness's TCP proxy with toxics, against an echo server in this
// process: each toxic does what Toxiproxy's does, seen from a real client.
import { strict as assert } from 'node:assert';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../../src/index.js';
import { createProxy } from '../../src/testing/index.js';

let echo: Server;
let upstream: { host: string; port: number };

before(async () => {
  echo = createServer((s) => s.on('error', () => undefined).pipe(s));
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  upstream = { host: '127.0.0.1', port: (echo.address() as AddressInfo).port };
});
after(() => new Promise<void>((resolve) => echo.close(() => resolve())));

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: '127.0.0.1', port, noDelay: true }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Sends `message` and resolves with the time until the whole echo came back. */
function roundTrip(s: Socket, message: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let got = '';
    const onData = (d: Buffer) => {
      got += d.toString();
      if (got.length >= message.length) {
        s.off('data', onData).off('error', reject);
        resolve(performance.now() - t0);
      }
    };
    s.on('data', onData).on('error', reject);
    s.write(message);
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('dockless/testing proxy', () => {
  it('passes data through unchanged with no toxic', async () => {
    await using proxy = await createProxy({ upstream });
    const s = await open(proxy.port);
    await roundTrip(s, 'hello');
    s.destroy();
  });

  it('latency: the added round-trip time is within 20 % of what was asked (medians)', async () => {
    await using proxy = await createProxy({ upstream });
    const s = await open(proxy.port);
    const base: number[] = [];
    for (let i = 0; i < 7; i++) base.push(await roundTrip(s, `ping ${i}`));
    proxy.addToxic({ type: 'latency', latency: 150, jitter: 10 });
    const slow: number[] = [];
    for (let i = 0; i < 7; i++) slow.push(await roundTrip(s, `ping ${i}`));
    const added = median(slow) - median(base);
    assert.ok(added >= 120 && added <= 180, `added ${added.toFixed(1)} ms for 150 asked (base ${median(base).toFixed(1)} ms)`);
    proxy.removeToxic('latency_downstream');
    const back: number[] = [];
    for (let i = 0; i < 5; i++) back.push(await roundTrip(s, `ping ${i}`));
    assert.ok(median(back) < median(slow) - 100, 'removing the toxic takes the latency away');
    s.destroy();
  });

  it('reset_peer: the client sees ECONNRESET, on an open connection and on a new one', async () => {
    await using proxy = await createProxy({ upstream });
    const s = await open(proxy.port);
    const reset = new Promise<NodeJS.ErrnoException>((resolve) => s.once('error', resolve));
    proxy.addToxic({ type: 'reset_peer', timeout: 50 });
    assert.equal((await reset).code, 'ECONNRESET');
    const late = await open(proxy.port);
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => late.once('error', resolve));
    assert.equal(err.code, 'ECONNRESET');
  });

  it('reset_peer with no timeout resets before a request sent right after addToxic can pass', async () => {
    // A test adds the toxic and sends at once; a reset left to a timer let that request through.
    await using proxy = await createProxy({ upstream });
    const s = await open(proxy.port);
    await roundTrip(s, 'warm');
    let echoed = '';
    s.on('data', (d) => (echoed += d.toString()));
    const reset = new Promise<NodeJS.ErrnoException>((resolve) => s.once('error', resolve));
    proxy.addToxic({ type: 'reset_peer' });
    s.write('must not pass');
    assert.equal((await reset).code, 'ECONNRESET');
    assert.equal(echoed, '');
  });

  it('timeout: data stops and the connection is closed after the timeout', async () => {
    await using proxy = await createProxy({ upstream });
    proxy.addToxic({ type: 'timeout', timeout: 300, stream: 'upstream' });
    const s = await open(proxy.port);
    let got = '';
    s.on('data', (d) => (got += d.toString()));
    s.write('lost');
    const t0 = performance.now();
    await new Promise<void>((resolve) => s.once('close', () => resolve()));
    assert.equal(got, '', 'nothing came back');
    assert.ok(performance.now() - t0 >= 250, 'closed only after the timeout');
  });

  it('bandwidth and slicer: everything still arrives', async () => {
    await using proxy = await createProxy({ upstream });
    proxy.addToxic({ type: 'bandwidth', rate: 200 });
    proxy.addToxic({ type: 'slicer', averageSize: 7, sizeVariation: 3, delay: 100, stream: 'upstream' });
    const s = await open(proxy.port);
    const message = 'x'.repeat(2000) + 'the end';
    const elapsed = await roundTrip(s, message);
    assert.ok(elapsed >= 5, `2 kB at 200 KB/s takes some time (${elapsed.toFixed(1)} ms)`);
    s.destroy();
  });

  it('cut refuses connections and closes open ones; heal listens again on the same port', async () => {
    await using proxy = await createProxy({ upstream });
    const port = proxy.port;
    const s = await open(port);
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    await proxy.cut();
    await closed;
    await assert.rejects(open(port), (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED');
    await proxy.heal();
    assert.equal(proxy.port, port);
    const again = await open(port);
    await roundTrip(again, 'back');
    again.destroy();
  });

  it('rejects a duplicate name, an unknown one and bad fields with typed errors', async () => {
    await using proxy = await createProxy({ upstream });
    proxy.addToxic({ type: 'latency', latency: 1 });
    assert.throws(() => proxy.addToxic({ type: 'latency', latency: 2 }), AlreadyExistsError);
    assert.throws(() => proxy.removeToxic('nope'), NotFoundError);
    assert.throws(() => proxy.addToxic({ type: 'latency', latency: -1, name: 'neg' }), InvalidArgumentError);
    assert.throws(() => proxy.addToxic({ type: 'bandwidth', rate: 0 }), InvalidArgumentError);
    assert.deepEqual(proxy.toxics().map((t) => t.name), ['latency_downstream']);
    await assert.rejects(createProxy({ upstream: { host: '127.0.0.1', port: 0 } }), InvalidArgumentError);
  });
});
