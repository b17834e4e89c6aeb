/**
 * Root bridge networks. Every case but one runs inside a throwaway "host"
 * network namespace (this file again, in a child under `unshare --net`), so
 * the machine's firewall, routes and ip_forward are never touched: our
 * nftables table, bridges and sysctls are all per network namespace. A fake
 * "WAN" namespace behind a veth stands for the outside. One smoke test runs on
 * the real host, with an internal network (no ip_forward change).
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AlreadyExistsError, HelperError, InvalidArgumentError, InvalidStateError, Network, NotFoundError, Runtime, type Container } from '../../src/index.js';
import { cannotRun, makeWorld, text, type World } from '../fixtures/world.js';
import { IN_NET_SANDBOX, runInNetSandbox } from '../fixtures/net-sandbox.js';

const SANDBOX = IN_NET_SANDBOX;
const THIS = fileURLToPath(import.meta.url);
const repo = join(import.meta.dirname, '..', '..');
const skip = cannotRun() ?? (spawnSync('nft', ['--version']).status !== 0 ? 'nft is not installed (Debian package nftables)' : undefined);
if (skip !== undefined) console.log(`# skipping network tests: ${skip}`);

const links = () => execFileSync('ip', ['-o', 'link', 'show']).toString();
const ourLinks = () => links().split('\n').filter((l) => /: (dlv|dl-)/.test(l));
const nftRuleset = () => execFileSync('nft', ['list', 'ruleset']).toString();

/** Runs `script` in a shell in a new container on `network` and returns its output. */
async function sh(world: World, network: unknown, script: string, extra: Record<string, unknown> = {}) {
  return world.runtime.output({ rootfs: world.rootfs, cmd: ['sh', '-c', script], network: network as never, ...extra });
}

/** A shell loop that retries `cmd` until it succeeds, for a server that may not listen yet. */
const retry = (cmd: string) => `for i in $(seq 50); do ${cmd} && exit 0; sleep 0.1; done; exit 1`;

if (!SANDBOX) {
  describe('networks (root)', { skip }, () => {
    it('every case, in a throwaway host network namespace', () => {
      runInNetSandbox(THIS, 'network', 600_000);
    });

    it('smoke on the real host: an internal network, names, and nothing left after', async () => {
      const world = await makeWorld();
      try {
        const net = await world.runtime.createNetwork({ name: `smoke-${process.pid}`, internal: true });
        const before = links();
        assert.match(before, new RegExp(`: ${net.bridge}:`));
        const srv = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'echo smoke | nc -l -p 5000'], name: `smoke-srv-${process.pid}`, network: net });
        const out = await sh(world, net, retry(`nc smoke-srv-${process.pid} 5000`));
        assert.equal(out.stdout, 'smoke\n');
        await srv.remove({ force: true });
        await net.remove();
        assert.doesNotMatch(links(), new RegExp(`: ${net.bridge}:`));
        assert.doesNotMatch(nftRuleset(), new RegExp(net.bridge));
      } finally {
        for (const n of await world.runtime.listNetworks()) await n.remove({ force: true }).catch(() => undefined);
        await world.dispose();
      }
    });
  });
} else {
  describe('networks in a throwaway host namespace', () => {
    let world: World;
    let wan: ChildProcess;
    let wanServer: ChildProcess;

    before(async () => {
      execFileSync('ip', ['link', 'set', 'lo', 'up']);
      world = await makeWorld();
      // The fake WAN: a namespace behind a veth, 192.0.2.2, with a server that answers with the address it sees.
      wan = spawn('unshare', ['--net', 'sleep', '3600'], { stdio: 'ignore' });
      await sleep(100);
      const ns = `/proc/${wan.pid}/ns/net`;
      execFileSync('ip', ['link', 'add', 'wan0', 'type', 'veth', 'peer', 'name', 'wan1', 'netns', ns]);
      execFileSync('ip', ['addr', 'add', '192.0.2.1/24', 'dev', 'wan0']);
      execFileSync('ip', ['link', 'set', 'wan0', 'up']);
      for (const args of [['addr', 'add', '192.0.2.2/24', 'dev', 'wan1'], ['link', 'set', 'wan1', 'up'], ['link', 'set', 'lo', 'up']]) {
        execFileSync('nsenter', [`--net=${ns}`, 'ip', ...args]);
      }
      wanServer = spawn('nsenter', [`--net=${ns}`, process.execPath, '-e', "require('net').createServer((s) => s.end(s.remoteAddress + '\\n')).listen(7000, '192.0.2.2')"], { stdio: 'ignore' });
      await sleep(300);
    });
    after(async () => {
      for (const n of (await world?.runtime.listNetworks().catch(() => [])) ?? []) await n.remove({ force: true }).catch(() => undefined);
      await world?.dispose();
      wanServer?.kill('SIGKILL');
      wan?.kill('SIGKILL');
    });

    it('containers on a user network reach each other by name and by alias, over TCP and UDP', async () => {
      const net = await world.runtime.createNetwork({ name: 'names' });
      const tcp = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'echo over-tcp | nc -l -p 5000'], name: 'db', network: net, networkAliases: ['database'] });
      const udp = await world.runtime.run({ rootfs: world.rootfs, cmd: ['probe', 'udp-echo', '5001'], name: 'logs', network: net, networkAliases: ['syslog'] });
      try {
        assert.equal((await sh(world, net, retry('nc db 5000'))).stdout, 'over-tcp\n');
        const received = text(udp.stdout);
        // busybox's nc has no UDP here: the probe sends, and prints the answer.
        assert.equal((await sh(world, net, 'probe udp-send syslog 5001 over-udp')).stdout, 'echo:over-udp\n');
        assert.equal((await sh(world, net, 'probe udp-send logs 5001 by-name')).stdout, 'echo:by-name\n');
        await udp.kill('SIGKILL');
        assert.match(await received, /over-udp\n(over-udp\n)*by-name/);
        const alias = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'echo by-alias | nc -l -p 5002'], network: net, networkAliases: ['cache'] });
        assert.equal((await sh(world, net, retry('nc cache 5002'))).stdout, 'by-alias\n');
        await alias.remove({ force: true });
        // The host, by its name.
        const hosts = await sh(world, net, 'cat /etc/hosts');
        assert.match(hosts.stdout, new RegExp(`^${net.gateway.replace(/\./g, '\\.')}\\thost\\.dockless\\.internal$`, 'm'));
        assert.match(hosts.stdout, /\tdb database /);
      } finally {
        await Promise.all([tcp.remove({ force: true }), udp.remove({ force: true })]);
        await net.remove();
      }
    });

    it('inspect shows the address, gateway, MAC and aliases on each network', async () => {
      const net = await world.runtime.createNetwork({ name: 'inspected', subnet: '10.123.4.0/24', gateway: '10.123.4.254' });
      const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '100'], network: net, networkAliases: ['x1'] });
      try {
        const { NetworkSettings: s } = await c.inspect();
        const n = s.Networks['inspected']!;
        assert.equal(n.IPAddress, '10.123.4.1');
        assert.equal(n.Gateway, '10.123.4.254');
        assert.equal(n.IPPrefixLen, 24);
        assert.equal(n.MacAddress, '02:42:0a:7b:04:01');
        assert.deepEqual(n.Aliases, ['x1']);
        assert.equal(s.IPAddress, '10.123.4.1');
        const inside = await c.output(['sh', '-c', 'ip -o -4 addr show eth0; ip route; cat /sys/class/net/eth0/address']);
        assert.match(inside.stdout, /inet 10\.123\.4\.1\/24/);
        assert.match(inside.stdout, /default via 10\.123\.4\.254 dev eth0/);
        assert.match(inside.stdout, /02:42:0a:7b:04:01/);
      } finally {
        await c.remove({ force: true });
        await net.remove();
      }
    });

    it('an IPv6 network: a unique local address, a default route, and TCP between members over IPv6', async () => {
      const net = await world.runtime.createNetwork({ name: 'six', ipv6: true });
      const srv = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'echo over-ipv6 | nc -l -p 5000'], network: net });
      try {
        const { GlobalIPv6Address: ip6, IPv6Gateway: gw6 } = (await srv.inspect()).NetworkSettings.Networks['six']!;
        assert.match(ip6, /^fd[0-9a-f:]+::2$/);
        const out = await sh(world, net, `ip -6 route; ${retry(`nc ${ip6} 5000`)}`);
        assert.match(out.stdout, new RegExp(`default via ${gw6} dev eth0`));
        assert.match(out.stdout, /over-ipv6\n$/);
      } finally {
        await srv.remove({ force: true });
        await net.remove();
      }
    });

    it('two networks are isolated from each other', async () => {
      const a = await world.runtime.createNetwork({ name: 'iso-a' });
      const b = await world.runtime.createNetwork({ name: 'iso-b' });
      const srv = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'while true; do echo reached | nc -l -p 5000; done'], network: a });
      try {
        const ip = (await srv.inspect()).NetworkSettings.Networks['iso-a']!.IPAddress;
        assert.equal((await sh(world, a, retry(`nc ${ip} 5000`))).stdout, 'reached\n');
        const other = await sh(world, b, `nc -w 2 ${ip} 5000; echo exit=$?`);
        assert.doesNotMatch(other.stdout, /reached/);
      } finally {
        await srv.remove({ force: true });
        await Promise.all([a.remove(), b.remove()]);
      }
    });

    it('outbound traffic reaches the WAN masqueraded as the host address', async () => {
      const net = await world.runtime.createNetwork({ name: 'outbound' });
      try {
        assert.equal((await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim(), '1');
        const out = await sh(world, net, retry('nc -w 3 192.0.2.2 7000'));
        assert.equal(out.stdout, '192.0.2.1\n', `server saw ${out.stdout} (stderr ${out.stderr})`);
        // The default network too, made at its first use, with a bridge of this state directory's own.
        assert.equal((await sh(world, 'bridge', retry('nc -w 3 192.0.2.2 7000'))).stdout, '192.0.2.1\n');
        assert.match((await world.runtime.getNetwork('bridge')).bridge, /^dl-[0-9a-f]{12}$/);
      } finally {
        await net.remove();
      }
    });

    it('an internal network reaches its members but not the outside, and has no default route', async () => {
      const net = await world.runtime.createNetwork({ name: 'internal', internal: true });
      const srv = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'echo inside | nc -l -p 5000'], name: 'isrv', network: net });
      try {
        assert.equal((await sh(world, net, retry('nc isrv 5000'))).stdout, 'inside\n');
        const out = await sh(world, net, 'ip route; nc -w 2 192.0.2.2 7000; echo exit=$?');
        assert.doesNotMatch(out.stdout, /default/);
        assert.doesNotMatch(out.stdout, /192\.0\.2\.1/);
        assert.match(nftRuleset(), new RegExp(`internal \\{[^}]*${net.bridge}`));
      } finally {
        await srv.remove({ force: true });
        await net.remove();
      }
    });

    it('connect and disconnect a running container', async () => {
      const net = await world.runtime.createNetwork({ name: 'later' });
      const srv = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'while true; do echo joined | nc -l -p 5000; done'], name: 'late' });
      try {
        await net.connect(srv, { aliases: ['late-alias'] });
        assert.equal((await sh(world, net, retry('nc late-alias 5000'))).stdout, 'joined\n');
        const eth = await srv.output(['sh', '-c', 'ip -o -4 addr show eth0']);
        assert.match(eth.stdout, /inet 10\./);
        await assert.rejects(net.connect(srv), AlreadyExistsError);
        await net.disconnect(srv);
        assert.deepEqual(await net.containers(), []);
        assert.deepEqual((await srv.inspect()).NetworkSettings.Networks, {});
        assert.doesNotMatch(links(), new RegExp(`dlv${srv.id.slice(0, 8)}`));
        const gone = await sh(world, net, 'cat /etc/hosts');
        assert.doesNotMatch(gone.stdout, /late/);
      } finally {
        await srv.remove({ force: true });
        await net.remove();
      }
    });

    it('a detached container and its network are used from a second process', async () => {
      const net = await world.runtime.createNetwork({ name: 'shared' });
      const srv = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'while true; do echo from-first | nc -l -p 5000; done'], name: 'first', network: net, detached: true });
      try {
        const script = `
          import { Runtime, Network } from './src/index.ts';
          const runtime = new Runtime({ root: ${JSON.stringify(join(world.base, 'root'))}, stateDir: ${JSON.stringify(join(world.base, 'state'))} });
          const net = await Network.get(runtime, 'shared');
          const got = await runtime.output({ rootfs: ${JSON.stringify(world.rootfs)}, cmd: ['sh', '-c', ${JSON.stringify(retry('nc first 5000'))}], network: net });
          await runtime.run({ rootfs: ${JSON.stringify(world.rootfs)}, cmd: ['sh', '-c', 'echo from-second | nc -l -p 6000'], name: 'second', network: net, detached: true });
          process.stdout.write(got.stdout);
        `;
        const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repo, encoding: 'utf8', timeout: 60_000 });
        assert.equal(r.stdout, 'from-first\n', r.stderr);
        // The first process's detached container learnt the second's name.
        const back = await srv.output(['sh', '-c', retry('nc second 6000')]);
        assert.equal(back.stdout, 'from-second\n');
      } finally {
        for (const name of ['first', 'second']) await (await world.runtime.get(name).catch(() => undefined))?.remove({ force: true });
        await net.remove();
      }
    });

    it('leaks: after 200 runs no veth, address or nft element is left', async () => {
      const net = await world.runtime.createNetwork({ name: 'leaks' });
      try {
        const ruleset = nftRuleset();
        for (let i = 0; i < 200; i++) {
          const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], stdio: 'ignore', network: net });
          await c.wait();
          await c.remove();
        }
        await sleep(200);
        assert.deepEqual(await net.containers(), []);
        assert.deepEqual(ourLinks().filter((l) => l.includes('dlv')), []);
        assert.equal(nftRuleset(), ruleset);
      } finally {
        await net.remove();
      }
    });

    it('leaks: after the owner is SIGKILLed mid-run, prune() releases what it left', async () => {
      const net = await world.runtime.createNetwork({ name: 'killed' });
      try {
        const script = `
          import { Runtime, Network } from './src/index.ts';
          const runtime = new Runtime({ root: ${JSON.stringify(join(world.base, 'root'))}, stateDir: ${JSON.stringify(join(world.base, 'state'))} });
          await runtime.run({ rootfs: ${JSON.stringify(world.rootfs)}, cmd: ['sleep', '100'], network: await Network.get(runtime, 'killed') });
          process.stdout.write('ready\\n');
          setInterval(() => {}, 1000);
        `;
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'] });
        for await (const chunk of child.stdout!) if (String(chunk).includes('ready')) break;
        assert.equal((await net.containers()).length, 1);
        child.kill('SIGKILL');
        await new Promise((resolve) => child.once('exit', resolve));
        // Its container dies with it (the parent-death signal), a moment later.
        for (let i = 0; i < 100 && (await world.runtime.list()).some((c) => c.status !== 'stopped'); i++) await sleep(20);
        await world.runtime.prune();
        assert.deepEqual(await net.containers(), []);
        for (let i = 0; i < 50 && ourLinks().some((l) => l.includes('dlv')); i++) await sleep(50);
        assert.deepEqual(ourLinks().filter((l) => l.includes('dlv')), []);
      } finally {
        await net.remove({ force: true });
      }
    });

    it('restart keeps the container on its network with the same address, reachable by name', async () => {
      const net = await world.runtime.createNetwork({ name: 'restarted' });
      const srv = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'while true; do echo again | nc -l -p 5000; done'], name: 'kept', network: net });
      try {
        const before = (await srv.inspect()).NetworkSettings.Networks['restarted']!.IPAddress;
        await srv.restart({ timeoutMs: 100 });
        assert.equal((await srv.inspect()).NetworkSettings.Networks['restarted']!.IPAddress, before);
        const eth = await srv.output(['sh', '-c', 'ip -o -4 addr show eth0']);
        assert.match(eth.stdout, new RegExp(`inet ${before.replace(/\./g, '\\.')}/`));
        assert.equal((await sh(world, net, retry('nc kept 5000'))).stdout, 'again\n');
      } finally {
        await srv.remove({ force: true });
        await net.remove();
      }
    });

    it('restart re-wires a network joined later', async () => {
      // A restart wired only the network the container was created on: one joined with connect() kept its address but got no veth.
      const home = await world.runtime.createNetwork({ name: 'home' });
      const joined = await world.runtime.createNetwork({ name: 'joined' });
      const srv = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'while true; do echo rewired | nc -l -p 5000; done'], name: 'rewired', network: home });
      try {
        await joined.connect(srv);
        const before = (await srv.inspect()).NetworkSettings.Networks;
        await srv.restart({ timeoutMs: 100 });
        const after = (await srv.inspect()).NetworkSettings.Networks;
        assert.equal(after['home']!.IPAddress, before['home']!.IPAddress);
        assert.equal(after['joined']!.IPAddress, before['joined']!.IPAddress);
        const addrs = await srv.output(['sh', '-c', 'ip -o -4 addr show eth1; ip route']);
        assert.match(addrs.stdout, new RegExp(`inet ${before['joined']!.IPAddress.replace(/\./g, '\\.')}/`), JSON.stringify(addrs));
        assert.match(addrs.stdout, new RegExp(`default via ${home.gateway.replace(/\./g, '\\.')} dev eth0`), JSON.stringify(addrs));
        assert.equal((await sh(world, joined, retry('nc rewired 5000'))).stdout, 'rewired\n');
        assert.equal((await sh(world, home, retry('nc rewired 5000'))).stdout, 'rewired\n');
      } finally {
        await srv.remove({ force: true });
        await joined.remove();
        await home.remove();
      }
    });

    it('leaks: a SIGKILLed owner leaves no network place, veth or record once the next Runtime opens the state directory', async () => {
      const net = await world.runtime.createNetwork({ name: 'reaped' });
      try {
        const child = spawn(process.execPath, ['--import', 'tsx', join(repo, 'test', 'fixtures', 'leaks-child.ts'), world.runtime.root, world.runtime.stateDir, world.rootfs, 'network', 'reaped'], {
          cwd: repo,
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        for await (const chunk of child.stdout!) if ((out += String(chunk)).includes('\n')) break;
        const { ids } = JSON.parse(out) as { ids: string[] };
        assert.equal((await net.containers()).length, 1);
        child.kill('SIGKILL');
        await new Promise((resolve) => child.once('exit', resolve));
        const next = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir });
        // Their pid 1s die with the owner a moment later; until then they are not the next runtime's to take.
        for (let i = 0; i < 100 && (await next.list()).length > 0; i++) await sleep(50);
        assert.deepEqual(await next.list(), []);
        assert.deepEqual(await net.containers(), []);
        for (let i = 0; i < 50 && ourLinks().some((l) => l.includes('dlv')); i++) await sleep(50);
        assert.deepEqual(ourLinks().filter((l) => l.includes('dlv')), []);
        assert.deepEqual((await next.audit()).filter((e) => e.orphaned), []);
        assert.ok(ids.every((id) => !existsSync(join(world.runtime.stateDir, id))));
      } finally {
        await net.remove({ force: true });
      }
    });

    it('bad input is a typed error and leaves nothing half-created', async () => {
      const net = await world.runtime.createNetwork({ name: 'taken', subnet: '10.77.0.0/16' });
      const linksBefore = ourLinks();
      const rulesBefore = nftRuleset();
      try {
        await assert.rejects(world.runtime.createNetwork({ name: 'taken' }), AlreadyExistsError);
        await assert.rejects(world.runtime.createNetwork({ name: 'overlap', subnet: '10.77.128.0/17' }), InvalidArgumentError);
        // 192.0.2.0/24 is the WAN veth's route in this namespace.
        await assert.rejects(world.runtime.createNetwork({ name: 'routed', subnet: '192.0.2.0/24' }), /collides with the host's route/);
        await assert.rejects(world.runtime.createNetwork({ name: 'bad', subnet: '10.1.2.3/16' }), InvalidArgumentError);
        await assert.rejects(world.runtime.createNetwork({ name: 'bad', subnet: '10.1.0.0/24', gateway: '10.2.0.1' }), InvalidArgumentError);
        await assert.rejects(world.runtime.createNetwork({ name: 'bad name!' }), InvalidArgumentError);
        await assert.rejects(sh(world, { name: 'nowhere' }, 'true'), NotFoundError);
        await assert.rejects(Network.get(world.runtime, 'nowhere'), NotFoundError);
        assert.deepEqual(ourLinks(), linksBefore);
        assert.equal(nftRuleset(), rulesBefore);
        assert.deepEqual((await world.runtime.listNetworks()).map((n) => n.name).sort(), ['bridge', 'taken'].filter((n) => n === 'taken' || existsSync(join(world.base, 'state', 'networks', `${n}.json`))).sort());
        assert.deepEqual(await world.runtime.list(), []);
        // A network with containers on it is not removed unless forced.
        const c: Container = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '100'], network: net });
        await assert.rejects(net.remove(), InvalidStateError);
        await c.remove({ force: true });
      } finally {
        await net.remove();
      }
    });

    it('a link that cannot be wired fails the start with a HelperError and releases the address', async () => {
      const net = await world.runtime.createNetwork({ name: 'broken' });
      try {
        // The bridge taken away behind the network's back: `run` cannot attach the veth to it.
        execFileSync('ip', ['link', 'del', net.bridge]);
        await assert.rejects(sh(world, net, 'true'), (e: unknown) => e instanceof HelperError && e.step === 'netlink');
        assert.deepEqual(await net.containers(), []);
        assert.deepEqual(await world.runtime.list(), []);
        assert.deepEqual(ourLinks().filter((l) => l.includes('dlv')), []);
      } finally {
        await net.remove({ force: true });
      }
    });

    it('leaks: a state directory deleted without prune() leaves its default bridge to the next runtime that prunes', async () => {
      // A Runtime with a state directory of its own that publishes a port makes a 'bridge' network: deleting the directory left its bridge and firewall elements forever.
      const base = await mkdtemp(join(tmpdir(), 'dl-it-orphan-'));
      try {
        const other = new Runtime({ root: join(base, 'root'), stateDir: join(base, 'state') });
        const c = await other.run({ rootfs: world.rootfs, cmd: ['true'], ports: ['127.0.0.1::80'], stdio: 'ignore' });
        await c.wait();
        await c.remove();
        const { bridge } = await other.getNetwork('bridge');
        assert.match(links(), new RegExp(`: ${bridge}:`));
        // One whose state directory only looks gone (another mount namespace's) but has a member stays.
        const busy = new Runtime({ root: join(base, 'root2'), stateDir: join(base, 'state2') });
        const member = await busy.run({ rootfs: world.rootfs, cmd: ['sleep', '1000'], ports: ['127.0.0.1::80'], stdio: 'ignore' });
        const busyBridge = (await busy.getNetwork('bridge')).bridge;
        await rm(join(base, 'state'), { recursive: true, force: true });
        await rm(join(base, 'state2'), { recursive: true, force: true });
        const audited = await world.runtime.audit();
        assert.ok(audited.some((e) => e.kind === 'bridge' && e.what === bridge && e.orphaned), `no orphaned bridge ${bridge} in ${JSON.stringify(audited.filter((e) => e.kind !== 'container'))}`);
        assert.ok(audited.some((e) => e.kind === 'nft-element' && e.what === `bridges ${bridge}` && e.orphaned));
        assert.ok(audited.some((e) => e.kind === 'nft-element' && e.what === `bridges ${busyBridge}` && !e.orphaned));
        await world.runtime.prune();
        assert.doesNotMatch(links(), new RegExp(`: ${bridge}:`));
        assert.doesNotMatch(nftRuleset(), new RegExp(bridge));
        assert.match(links(), new RegExp(`: ${busyBridge}:`));
        process.kill(member.pid, 'SIGKILL');
        for (let i = 0; i < 100 && ourLinks().some((l) => l.includes(': dlv')); i++) await sleep(50);
        await world.runtime.prune();
        assert.doesNotMatch(links(), new RegExp(`: ${busyBridge}:`));
        assert.doesNotMatch(nftRuleset(), new RegExp(busyBridge));
        // The prune's own networks, and another live state directory's, are not touched.
        assert.ok((await world.runtime.audit()).every((e) => !e.orphaned || e.kind === 'container'));
      } finally {
        await rm(base, { recursive: true, force: true });
      }
    });

    it('the last network takes the nftables table with it', async () => {
      for (const n of await world.runtime.listNetworks()) await n.remove({ force: true });
      const net = await world.runtime.createNetwork({ name: 'only' });
      assert.match(nftRuleset(), /table inet dockless/);
      await net.remove();
      assert.doesNotMatch(nftRuleset(), /table inet dockless/);
      assert.deepEqual(ourLinks(), []);
    });
  });
}
