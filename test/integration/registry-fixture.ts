/**
 * A real distribution registry (Debian's `docker-registry`) for the transfer
 * tests: started on 127.0.0.1 on a free port with a temporary storage
 * directory, optionally behind htpasswd Basic auth or Bearer token auth
 * (with {@link startTokenServer}), and stopped by pid afterwards. Also a
 * small TCP proxy that cuts connections, to test resumption.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, createPrivateKey, randomUUID, sign, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ImageStore } from '../../src/image-store.js';

const run = promisify(execFile);

/** The registry binary, as Debian installs it. */
export const REGISTRY_BIN = '/usr/bin/docker-registry';

/** Why registry tests cannot run here, or `undefined` when they can. */
export async function registryMissing(): Promise<string | undefined> {
  if (!existsSync(REGISTRY_BIN)) return `${REGISTRY_BIN} not installed (apt-get install docker-registry, see .ci/install-deps)`;
  return undefined;
}

/** Whether a command-line tool is on the PATH. */
export async function installed(tool: string): Promise<boolean> {
  try {
    await run('sh', ['-c', 'command -v "$1"', 'sh', tool]);
    return true;
  } catch {
    return false;
  }
}

/** A running registry. */
export interface RegistryFixture extends AsyncDisposable {
  /** `127.0.0.1:<port>`, the registry part of references. */
  host: string;
  port: number;
  /** The registry's storage root (`<storage>/docker/registry/v2/…`). */
  storage: string;
  /** The registry process. */
  process: ChildProcess;
  /** The path of a blob's data file on the registry's disk. */
  blobPath(digest: string): string;
  /** Stops the registry (SIGTERM by pid, then SIGKILL) and removes its directory. */
  stop(): Promise<void>;
}

/** How the registry authenticates. */
export type RegistryAuth =
  | { type: 'none' }
  | { type: 'htpasswd'; users: Record<string, string> }
  | { type: 'token'; realm: string; service: string; issuer: string; certPath: string };

/** A free TCP port on 127.0.0.1 (bound and released: fine for tests on one machine). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts a registry; resolves once `GET /v2/` answers (200, or 401 with auth). */
export async function startRegistry(auth: RegistryAuth = { type: 'none' }): Promise<RegistryFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'dockless-registry-'));
  const storage = join(dir, 'storage');
  const port = await freePort();
  const lines = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storage}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${randomUUID()}`,
  ];
  if (auth.type === 'htpasswd') {
    const entries: string[] = [];
    for (const [user, password] of Object.entries(auth.users)) {
      const { stdout } = await run('htpasswd', ['-Bbn', user, password]);
      entries.push(stdout.trim());
    }
    const file = join(dir, 'htpasswd');
    await writeFile(file, `${entries.join('\n')}\n`);
    lines.push('auth:', '  htpasswd:', '    realm: dockless-test', `    path: ${file}`);
  } else if (auth.type === 'token') {
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${auth.realm}`,
      `    service: ${auth.service}`,
      `    issuer: ${auth.issuer}`,
      `    rootcertbundle: ${auth.certPath}`,
    );
  }
  const config = join(dir, 'config.yml');
  await writeFile(config, `${lines.join('\n')}\n`);
  const child = spawn(REGISTRY_BIN, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // A test process that dies (an uncaught error, a closed stdout) takes its registry with it.
  const killOnExit = (): void => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  };
  process.once('exit', killOnExit);
  const stop = async (): Promise<void> => {
    process.off('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, 'SIGTERM');
      const killed = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
      }, 3000);
      await exited;
      clearTimeout(killed);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`docker-registry exited with ${child.exitCode}: ${stderr}`);
    }
    const status = await new Promise<number>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/v2/', agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', () => resolve(0));
    });
    if (status === 200 || status === 401) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not answer on 127.0.0.1:${port}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host: `127.0.0.1:${port}`,
    port,
    storage,
    process: child,
    blobPath: (digest: string) => {
      const hex = digest.replace(/^sha256:/, '');
      return join(storage, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** A token server for Bearer auth: issues JWTs the registry verifies with a self-signed certificate. */
export interface TokenServer extends AsyncDisposable {
  realm: string;
  service: string;
  issuer: string;
  certPath: string;
  /** Every token request received: the scopes asked for and the account, if any. */
  requests: Array<{ scopes: string[]; account: string | undefined; authorized: boolean }>;
  /** When set, the next token issued is already expired (to test the refresh on 401). */
  expireNext: boolean;
  stop(): Promise<void>;
}

/**
 * Starts a token server on 127.0.0.1. `users` may have any access; anonymous
 * callers get `pull` on repositories under `public/` only.
 */
export async function startTokenServer(users: Record<string, string>): Promise<TokenServer> {
  const dir = await mkdtemp(join(tmpdir(), 'dockless-token-'));
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  await run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath,
    '-days', '2', '-subj', '/CN=dockless-test-token',
  ]);
  const key = createPrivateKey(await readFile(keyPath));
  const cert = new X509Certificate(await readFile(certPath));
  const x5c = cert.raw.toString('base64');
  const service = 'dockless-test-registry';
  const issuer = 'dockless-test-issuer';
  const b64 = (data: Buffer | string): string => Buffer.from(data).toString('base64url');
  const state: TokenServer = {
    realm: '',
    service,
    issuer,
    certPath,
    requests: [],
    expireNext: false,
    stop: async () => {},
    [Symbol.asyncDispose]: async () => state.stop(),
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    let account: string | undefined;
    let authorized = false;
    const header = req.headers.authorization;
    if (header?.startsWith('Basic ')) {
      const [user, ...rest] = Buffer.from(header.slice(6), 'base64').toString().split(':');
      account = user;
      if (user !== undefined && users[user] !== undefined && users[user] === rest.join(':')) {
        authorized = true;
      } else {
        state.requests.push({ scopes, account, authorized: false });
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end('{"details":"incorrect username or password"}');
        return;
      }
    }
    state.requests.push({ scopes, account, authorized });
    const access = scopes.map((scope) => {
      const [type, name, actions] = scope.split(':') as [string, string, string];
      const wanted = (actions ?? '').split(',').filter(Boolean);
      const granted = authorized ? wanted : name?.startsWith('public/') ? wanted.filter((a) => a === 'pull') : [];
      return { type, name, actions: granted };
    });
    const now = Math.floor(Date.now() / 1000);
    const expired = state.expireNext;
    state.expireNext = false;
    const claims = {
      iss: issuer,
      sub: account ?? '',
      aud: service,
      exp: expired ? now - 120 : now + 300,
      nbf: now - 300,
      iat: now - (expired ? 400 : 0),
      jti: randomUUID(),
      access,
    };
    const head = b64(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [x5c] }));
    const body = b64(JSON.stringify(claims));
    const signature = b64(sign('sha256', Buffer.from(`${head}.${body}`), key));
    const token = `${head}.${body}.${signature}`;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  state.realm = `http://127.0.0.1:${port}/token`;
  state.stop = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  };
  return state;
}

/** A TCP proxy in front of a registry that can cut blob downloads. */
export interface CuttingProxy extends AsyncDisposable {
  host: string;
  /** Requests seen, as their first line plus the Range header when there is one. */
  requests: string[];
  /**
   * How many more blob responses to cut, and after how many response bytes.
   * A cut closes both sockets. `Infinity` cuts every one.
   */
  cut: { remaining: number; afterBytes: number };
  /** Refuse every new connection from now on (close it at once). */
  refuseAll: boolean;
  stop(): Promise<void>;
}

/**
 * Starts a proxy on 127.0.0.1 that forwards to `target` and, while
 * `cut.remaining > 0`, closes a connection carrying a blob download after
 * `cut.afterBytes` bytes of response.
 */
export async function startCuttingProxy(target: { port: number }): Promise<CuttingProxy> {
  const sockets = new Set<net.Socket>();
  const state: CuttingProxy = {
    host: '',
    requests: [],
    cut: { remaining: 0, afterBytes: 0 },
    refuseAll: false,
    stop: async () => {},
    [Symbol.asyncDispose]: async () => state.stop(),
  };
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    if (state.refuseAll) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    let blobDownload = false;
    let sent = 0;
    let cutThis = false;
    client.on('data', (data: Buffer) => {
      const text = data.toString('latin1');
      const first = /^(GET|HEAD|POST|PUT|PATCH) (\S+) HTTP\/1\.1/m.exec(text);
      if (first) {
        const range = /^range: *(.*)$/im.exec(text);
        state.requests.push(`${first[1]} ${first[2]}${range ? ` range=${range[1]!.trim()}` : ''}`);
        blobDownload = first[1] === 'GET' && /\/blobs\/sha256:/.test(first[2]!);
        if (blobDownload && state.cut.remaining > 0) {
          state.cut.remaining--;
          cutThis = true;
          sent = 0;
        }
      }
      upstream.write(data);
    });
    upstream.on('data', (data: Buffer) => {
      if (cutThis) {
        const room = state.cut.afterBytes - sent;
        if (data.length >= room) {
          client.write(data.subarray(0, Math.max(room, 0)), () => {
            client.destroy();
            upstream.destroy();
          });
          cutThis = false;
          return;
        }
        sent += data.length;
      }
      client.write(data);
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  state.stop = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return state;
}

/** sha256 digest of bytes, as `sha256:<hex>`. */
export function sha256(data: Uint8Array | string): `sha256:${string}` {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/**
 * What "unchanged" compares after a failed transfer: every file name under the
 * store's blobs, snapshots and ingest, and index.json.
 */
export async function storeState(store: ImageStore): Promise<string> {
  const list = async (dir: string): Promise<string[]> => (await readdir(dir).catch(() => [] as string[])).sort();
  return JSON.stringify({
    blobs: await list(join(store.root, 'blobs', 'sha256')),
    snapshots: await list(join(store.root, 'dockless', 'snapshots')),
    ingest: await list(join(store.root, 'dockless', 'ingest')),
    index: await readFile(join(store.root, 'index.json'), 'utf8'),
  });
}
