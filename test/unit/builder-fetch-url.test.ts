import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createHash } from 'node:crypto';
import { fetchTo } from '../../src/builder/fetch-url.js';
import { AbortError, InvalidArgumentError, NotFoundError, PermissionError, UnavailableError } from '../../src/errors.js';

const BIG = 256 * 1024 * 1024;
const CHUNK = Buffer.alloc(1024 * 1024, 0x61);

describe('ADD <url> download (fetchTo)', () => {
  let server: Server;
  let base: string;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-fetch-'));
    server = createServer((req, res) => {
      const status = /^\/status\/(\d+)$/.exec(req.url ?? '');
      if (status !== null) {
        res.writeHead(Number(status[1])).end('nope');
      } else if (req.url === '/file.txt') {
        res.writeHead(200, { 'last-modified': 'Sun, 02 Feb 2020 02:02:02 GMT' }).end('hello\n');
      } else if (req.url === '/big') {
        res.writeHead(200, { 'content-length': String(BIG) });
        let sent = 0;
        const more = (): void => {
          while (sent < BIG) {
            sent += CHUNK.length;
            if (!res.write(CHUNK)) return void res.once('drain', more);
          }
          res.end();
        };
        more();
      } else if (req.url === '/cut') {
        res.writeHead(200, { 'content-length': '1000000' });
        res.write('partial');
        setTimeout(() => res.destroy(), 20);
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('writes the body, its digest, its name and its Last-Modified time', async () => {
    const got = await fetchTo(`${base}/file.txt`, join(dir, 'a'), 'add', undefined);
    assert.equal(await readFile(got.path, 'utf8'), 'hello\n');
    assert.equal(got.name, 'file.txt');
    assert.equal(got.digest, `sha256:${createHash('sha256').update('hello\n').digest('hex')}`);
    assert.equal((await stat(got.path)).mtime.toISOString(), '2020-02-02T02:02:02.000Z');
  });

  // A server error says nothing about whether the file exists: it is a failure to retry later, not a missing file.
  it('a 5xx or 429 answer is an UnavailableError, not a NotFoundError', async () => {
    for (const status of [500, 502, 503, 429]) {
      await assert.rejects(fetchTo(`${base}/status/${status}`, join(dir, 's'), 'add', undefined), (err: unknown) => {
        assert.ok(err instanceof UnavailableError, `${status}: ${String(err)}`);
        assert.equal(err.status, status);
        assert.match(err.message, new RegExp(`^add: fetch \`.*\`: HTTP ${status}$`));
        return true;
      });
    }
  });

  it('only a 404 is a NotFoundError; 401/403 a PermissionError; another 4xx an InvalidArgumentError', async () => {
    await assert.rejects(fetchTo(`${base}/status/404`, join(dir, 's'), 'add', undefined), NotFoundError);
    await assert.rejects(fetchTo(`${base}/status/403`, join(dir, 's'), 'add', undefined), PermissionError);
    await assert.rejects(fetchTo(`${base}/status/401`, join(dir, 's'), 'add', undefined), PermissionError);
    await assert.rejects(fetchTo(`${base}/status/400`, join(dir, 's'), 'add', undefined), InvalidArgumentError);
  });

  // A network failure is not a bare DocklessError: callers retry on UnavailableError.
  it('a refused connection, or one cut midway, is an UnavailableError', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await assert.rejects(fetchTo(`http://127.0.0.1:${port}/x`, join(dir, 'r'), 'add', undefined), (err: unknown) => {
      assert.ok(err instanceof UnavailableError, String(err));
      assert.match(err.message, /ECONNREFUSED/);
      return true;
    });
    await assert.rejects(fetchTo(`${base}/cut`, join(dir, 'c'), 'add', undefined), UnavailableError);
  });

  it('an aborted download is an AbortError', async () => {
    await assert.rejects(fetchTo(`${base}/big`, join(dir, 'abort'), 'add', AbortSignal.timeout(50)), AbortError);
  });

  // A download is streamed to disk: a body larger than one would hold in memory must not be buffered.
  it('a large download streams to disk instead of buffering in memory', async () => {
    globalThis.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 5);
    try {
      const got = await fetchTo(`${base}/big`, join(dir, 'big'), 'add', undefined);
      assert.equal((await stat(got.path)).size, BIG);
    } finally {
      clearInterval(sampler);
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    const grown = peak - before;
    assert.ok(grown < BIG / 4, `RSS grew by ${Math.round(grown / 1048576)} MiB while downloading ${BIG / 1048576} MiB`);
  });
});
