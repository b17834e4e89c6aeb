/**
 * The registry client's HTTP behaviour against small servers on 127.0.0.1
 * that misbehave on purpose: 5xx and 429 answers (retried, then a typed
 * error), redirects to another origin (credentials not forwarded), a server
 * that is not a registry.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { NotFoundError, PermissionError, UnavailableError } from '../../src/errors.js';
import { RegistryClient } from '../../src/transfer/registry-client.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

async function serve(handler: Handler): Promise<{ host: string; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const noAuthFiles = { env: {}, home: '/nonexistent-dockless-home' };
const scopes = ['repository:x:pull'];
const digest = `sha256:${'a'.repeat(64)}` as const;

describe('registry client HTTP behaviour', () => {
  const counts = new Map<string, number>();
  const seenAuth: Array<string | undefined> = [];
  let registry: Awaited<ReturnType<typeof serve>>;
  let storage: Awaited<ReturnType<typeof serve>>;

  before(async () => {
    storage = await serve((req, res) => {
      seenAuth.push(req.headers.authorization);
      res.writeHead(200, { 'content-length': '5' });
      res.end('hello');
    });
    registry = await serve((req, res) => {
      const path = req.url ?? '';
      counts.set(path, (counts.get(path) ?? 0) + 1);
      const n = counts.get(path)!;
      if (path === '/v2/') {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' });
        res.end();
      } else if (path === '/v2/x/manifests/flaky') {
        // Two failures, then an answer.
        if (n <= 2) {
          res.writeHead(n === 1 ? 503 : 429, { 'retry-after': '0' });
          res.end();
        } else {
          res.writeHead(404, { 'content-type': 'application/json' });
          res.end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
        }
      } else if (path === '/v2/x/manifests/down') {
        res.writeHead(502);
        res.end('bad gateway');
      } else if (path === `/v2/x/blobs/${digest}`) {
        res.writeHead(307, { location: `http://${storage.host}/data?sig=1` });
        res.end();
      } else if (path === '/v2/x/manifests/denied') {
        res.writeHead(403, { 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}');
      } else {
        res.writeHead(404);
        res.end();
      }
    });
  });
  after(async () => {
    await registry?.close();
    await storage?.close();
  });

  const connect = (): Promise<RegistryClient> =>
    RegistryClient.connect({
      registry: registry.host,
      credentials: { username: 'u', password: 'p' },
      context: 'test',
      authFiles: noAuthFiles,
    });

  it('retries 5xx and 429 answers, then reports what the registry finally said', async () => {
    const client = await connect();
    await assert.rejects(client.getManifest('x', 'flaky', scopes), (err: unknown) => {
      assert.ok(err instanceof NotFoundError, String(err));
      assert.match(err.message, /MANIFEST_UNKNOWN: manifest unknown/);
      return true;
    });
    assert.equal(counts.get('/v2/x/manifests/flaky'), 3);
  });

  it('gives up on a registry that keeps failing with an UnavailableError carrying the status', async () => {
    const client = await connect();
    await assert.rejects(client.getManifest('x', 'down', scopes), (err: unknown) => {
      assert.ok(err instanceof UnavailableError, String(err));
      assert.equal(err.status, 502);
      assert.equal(err.registry, registry.host);
      assert.match(err.message, /keeps failing: 502/);
      return true;
    });
    assert.equal(counts.get('/v2/x/manifests/down'), 5);
  });

  it('follows a blob redirect to another origin without forwarding the credentials', async () => {
    const client = await connect();
    const { body } = await client.openBlob('x', digest, 0, scopes);
    let text = '';
    for await (const chunk of body) text += String(chunk);
    assert.equal(text, 'hello');
    assert.deepEqual(seenAuth, [undefined]);
  });

  it('reports a 403 as a PermissionError naming whose credentials', async () => {
    const client = await connect();
    await assert.rejects(client.getManifest('x', 'denied', scopes), (err: unknown) => {
      assert.ok(err instanceof PermissionError, String(err));
      assert.match(err.message, /denied access for user "u" from options\.credentials: DENIED/);
      return true;
    });
  });

  it('says when a server is not a registry', async () => {
    const notRegistry = await serve((_req, res) => {
      res.writeHead(404);
      res.end();
    });
    try {
      await assert.rejects(
        RegistryClient.connect({ registry: notRegistry.host, context: 'pull x', authFiles: noAuthFiles }),
        (err: unknown) => err instanceof UnavailableError && /is not a registry: GET \/v2\/ answered 404/.test(err.message),
      );
    } finally {
      await notRegistry.close();
    }
  });
});
