// The newcomer's first command, checked the hard way (slow, not part of `npm test`):
// a minimal Debian (debootstrap minbase: no busybox, no C compiler) with the host's
// Node 20 and npm bound in runs the README's demo command inside a dockless
// container, the repository's committed files (no node_modules) at /root/dockless.
//
//   node --import tsx .ci/fresh-debian-demo.ts [ROOTFS]
//
// ROOTFS is a `debootstrap --variant=minbase bookworm` tree; when not given, one is
// made in a temporary directory (needs `apt-get install -y debootstrap`). It is only
// read: the container writes to its own layer. As root; about 6 minutes. Exits with
// the command's exit code.
//
// The container has only loopback (the runtime has no host network), so a proxy in
// this process, reached through a Unix socket bound into the container and a
// loopback forwarder inside it, carries apt's and npm's traffic (http_proxy).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Runtime } from '../src/index.js';

/** The README's set-up command for the demo, as a newcomer types it. */
export const DEMO_COMMAND = 'apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && npm ci && npm run demo';

// Inside the container: listens on 127.0.0.1:3128 for the proxy's Unix socket, then
// runs the command (so nothing connects before the listener is up) and exits with its code.
const FORWARDER = `const net = require('node:net');
const { spawn } = require('node:child_process');
const server = net.createServer((c) => { const u = net.connect('/run/proxy.sock'); c.pipe(u).pipe(c); u.on('error', () => c.destroy()); c.on('error', () => u.destroy()); });
server.listen(3128, '127.0.0.1', () => {
  const child = spawn(process.argv[2], process.argv.slice(3), { stdio: 'inherit' });
  child.on('exit', (code, signal) => process.exit(code ?? 128));
});
`;

const repo = resolve(import.meta.dirname, '..');
const work = await mkdtemp(join(tmpdir(), 'dl-fresh-debian-'));
let status = 1;
const proxy = createServer(handleProxyClient);
try {
  let rootfs = process.argv[2];
  if (rootfs === undefined) {
    rootfs = join(work, 'debian');
    console.log(`debootstrap --variant=minbase bookworm ${rootfs}`);
    execFileSync('debootstrap', ['--variant=minbase', 'bookworm', rootfs], { stdio: 'inherit' });
  }
  // The point is a machine without these: a rootfs that has one checks nothing.
  for (const absent of ['bin/busybox', 'usr/bin/busybox', 'usr/bin/cc', 'usr/bin/gcc', 'usr/bin/make']) {
    if (existsSync(join(rootfs, absent))) throw new Error(`${rootfs} has /${absent}: not a fresh minbase`);
  }

  // The committed tree only: what a clone has.
  const source = join(work, 'dockless');
  await mkdir(source);
  execFileSync('sh', ['-c', 'git -C "$1" archive --format=tar HEAD | tar -x -C "$2"', 'sh', repo, source]);

  const bin = join(work, 'bin');
  await mkdir(bin);
  await symlink('/usr/lib/node_modules/npm/bin/npm-cli.js', join(bin, 'npm'));
  await symlink('/usr/lib/node_modules/npm/bin/npx-cli.js', join(bin, 'npx'));
  await writeFile(join(bin, 'loopback-proxy.cjs'), FORWARDER);

  const socket = join(work, 'proxy.sock');
  await new Promise<void>((done) => proxy.listen(socket, done));

  // Where TLS to the registry passes through an intercepting proxy, the host trusts an
  // extra CA through NODE_EXTRA_CA_CERTS; the container gets the same file, nothing more.
  const extraCa = process.env['NODE_EXTRA_CA_CERTS'];
  const caMount = extraCa ? [{ type: 'bind' as const, source: resolve(extraCa), target: '/etc/ssl/certs/host-extra-ca.crt', readonly: true }] : [];
  const caEnv: Record<string, string> = extraCa ? { NODE_EXTRA_CA_CERTS: '/etc/ssl/certs/host-extra-ca.crt' } : {};

  const runtime = new Runtime({ root: join(work, 'root'), stateDir: join(work, 'state') });
  const npmRoot = dirname(dirname(execFileSync('sh', ['-c', 'readlink -f "$(command -v npm)"'], { encoding: 'utf8' }).trim()));
  console.log(`$ ${DEMO_COMMAND}`);
  await using container = await runtime.run({
    rootfs,
    cwd: '/root/dockless',
    // The demo starts containers of its own: capabilities, no seccomp filter, overlay on tmpfs.
    privileged: true,
    mounts: [
      { type: 'bind', source: process.execPath, target: '/usr/bin/node', readonly: true },
      { type: 'bind', source: npmRoot, target: '/usr/lib/node_modules/npm', readonly: true },
      { type: 'bind', source: bin, target: '/opt/host-node/bin', readonly: true },
      { type: 'bind', source: source, target: '/root/dockless' },
      { type: 'bind', source: socket, target: '/run/proxy.sock' },
      { type: 'tmpfs', target: '/tmp', size: 4 * 1024 ** 3 },
      ...caMount,
    ],
    env: {
      PATH: '/opt/host-node/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: '/root',
      DEBIAN_FRONTEND: 'noninteractive',
      http_proxy: 'http://127.0.0.1:3128',
      https_proxy: 'http://127.0.0.1:3128',
      ...caEnv,
    },
    cmd: ['node', '/opt/host-node/bin/loopback-proxy.cjs', 'sh', '-c', DEMO_COMMAND],
    stdio: 'inherit',
  });
  const exit = await container.wait();
  console.log(`exit ${JSON.stringify(exit)}`);
  status = exit.exitCode ?? 1;
} finally {
  proxy.close();
  await rm(work, { recursive: true, force: true });
}
process.exit(status);

/** A forward proxy: CONNECT tunnels (https) and absolute-URI requests (plain http, apt's). */
function handleProxyClient(client: Socket): void {
  client.once('data', (head: Buffer) => {
    const text = head.toString('latin1');
    const [requestLine = ''] = text.split('\r\n');
    const [method = '', target = ''] = requestLine.split(' ');
    let host: string;
    let port: number;
    let replay: Buffer | undefined;
    if (method === 'CONNECT') {
      const colon = target.lastIndexOf(':');
      host = target.slice(0, colon);
      port = Number(target.slice(colon + 1));
    } else {
      const url = new URL(target);
      host = url.hostname;
      port = Number(url.port || 80);
      replay = Buffer.from(text.replace(target, `${url.pathname}${url.search}`), 'latin1');
    }
    const upstream = connect(port, host, () => {
      if (replay === undefined) client.write('HTTP/1.1 200 Connection established\r\n\r\n');
      else upstream.write(replay);
      client.pipe(upstream).pipe(client);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
}
