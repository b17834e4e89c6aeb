/**
 * Pods on networks and pods publishing ports (root). Every case runs inside a
 * throwaway "host" network namespace (this file again, in a child under
 * `unshare --net`, as network.test.ts does), so the machine's firewall,
 * routes and ip_forward are never touched. A fake "WAN" namespace behind a
 * veth stands for the outside.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect, createServer, type Server } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AlreadyExistsError, Namespace } from '../../src/index.js';
import { readPodRecord } from '../../src/runtime/pods.js';
import { cannotRun, makeWorld, type World } from '../fixtures/world.js';
import { IN_NET_SANDBOX, runInNetSandbox } from '../fixtures/net-sandbox.js';

const SANDBOX = IN_NET_SANDBOX;
const THIS = fileURLToPath(import.meta.url);
const repo = join(import.meta.dirname, '..', '..');
const skip = cannotRun() ?? (spawnSync('nft', ['--version']).status !== 0 ? 'nft is not installed (Debian package nftables)' : undefined);
if (skip !== undefined) console.log(`# skipping pod network tests: ${skip}`);

const ourLinks = () =>
  execFileSync('ip', ['-o', 'link', 'show'])
    .toString()
    .split('\n')
    .filter((l) => /: (dlv|dl-)/.test(l));
const podLink = (id: string) => ourLinks().filter((l) => l.includes(`dlv${id.slice(0, 8)}`));
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** A shell loop that retries `cmd` until it succeeds, for a server that may not listen yet. */
const retry = (cmd: string) => `for i in $(seq 50); do ${cmd} && exit 0; sleep 0.1; done; exit 1`;

/** Connects to 127.0.0.1:`port` from the host, until the reply comes (the member may not listen yet). */
async function fetchFromHost(port: number): Promise<string> {
  for (let i = 0; i < 50; i++) {
    const reply = await new Promise<string>((resolve) => {
      const s = connect(port, '127.0.0.1');
      let data = '';
      s.on('data', (d) => (data += d.toString()));
      s.on('end', () => resolve(data));
      s.on('error', () => resolve(''));
    });
    if (reply !== '') return reply;
    await sleep(100);
  }
  return '';
}

if (!SANDBOX) {
  describe('pod networks (root)', { skip }, () => {
    it('every case, in a throwaway host network namespace', () => {
      runInNetSandbox(THIS, 'pod network', 600_000);
    });
  });
} else {
  describe('pod networks in a throwaway host namespace', () => {
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
      wanServer = spawn('nsenter', [`--net=${ns}`, process.execPath, '-e', "require('net').createServer((s) => s.end(s.remoteAddress + '\\n')).listen(7000, '192.0.2.2')"], {
        stdio: 'ignore',
      });
      await sleep(300);
    });
    after(async () => {
      for (const p of (await Namespace.list(world.runtime).catch(() => [])) ?? []) {
        await (await Namespace.get(world.runtime, p.id)).remove({ force: true }).catch(() => undefined);
      }
      for (const n of (await world?.runtime.listNetworks().catch(() => [])) ?? []) await n.remove({ force: true }).catch(() => undefined);
      await world?.dispose();
      wanServer?.kill('SIGKILL');
      wan?.kill('SIGKILL');
    });

    it("a pod on 'bridge': both members share its eth0 address and reach the outside, masqueraded; remove leaves no veth", async () => {
      const pod = await Namespace.create(world.runtime, { network: 'bridge' });
      try {
        assert.equal((await pod.inspect()).network, 'bridge');
        assert.equal(podLink(pod.id).length, 1, 'the pod has its veth on the host');
        const member = (script: string) => world.runtime.output({ rootfs: world.rootfs, cmd: ['sh', '-c', script], namespace: pod });
        const [a, b] = await Promise.all([member(retry('nc 192.0.2.2 7000')), member(retry('nc 192.0.2.2 7000'))]);
        assert.equal(a.stdout, '192.0.2.1\n');
        assert.equal(b.stdout, '192.0.2.1\n');
        const addrs = await Promise.all([member("ip -o -4 addr show eth0 | awk '{print $4}'"), member("ip -o -4 addr show eth0 | awk '{print $4}'")]);
        assert.match(addrs[0].stdout, /^10\.\d+\.\d+\.\d+\/\d+\n$/);
        assert.equal(addrs[0].stdout, addrs[1].stdout);
        assert.match((await member('cat /etc/hosts')).stdout, new RegExp(`^${addrs[0].stdout.split('/')[0]!.replace(/\./g, '\\.')}\\t`, 'm'));
      } finally {
        await pod.remove({ force: true });
      }
      assert.deepEqual(podLink(pod.id), [], 'no veth of the pod is left');
      assert.equal((await (await world.runtime.getNetwork('bridge')).containers()).includes(pod.id), false);
    });

    it('a container on the same user network reaches the pod by its name, and the pod reaches it by its', async () => {
      const net = await world.runtime.createNetwork({ name: 'podnet' });
      const pod = await Namespace.create(world.runtime, { name: 'web', network: net });
      try {
        const server = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'echo from-pod | nc -l -p 5000'], namespace: pod });
        const out = await world.runtime.output({ rootfs: world.rootfs, cmd: ['sh', '-c', retry('nc web 5000')], network: net });
        assert.equal(out.stdout, 'from-pod\n');
        await server.remove({ force: true });
        const db = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'echo from-db | nc -l -p 5001'], name: 'db', network: net });
        const back = await world.runtime.output({ rootfs: world.rootfs, cmd: ['sh', '-c', retry('nc db 5001')], namespace: pod });
        assert.equal(back.stdout, 'from-db\n');
        await db.remove({ force: true });
      } finally {
        await pod.remove({ force: true });
        await net.remove();
      }
    });

    // Prune took every pod for a dead container (it looked for `<stateDir>/<id>`, a container's directory) and released its address.
    it("prune keeps a live pod's place on its network and releases a dead one's", async () => {
      const net = await world.runtime.createNetwork({ name: 'prunenet' });
      const live = await Namespace.create(world.runtime, { network: net });
      const dead = await Namespace.create(world.runtime, { network: net, detached: true });
      try {
        process.kill((await dead.inspect()).pid, 'SIGKILL');
        await sleep(200);
        await world.runtime.prune();
        const members = await net.containers();
        assert.ok(members.includes(live.id), 'the live pod is still on the network');
        assert.ok(!members.includes(dead.id), 'the dead pod is not');
      } finally {
        await live.remove({ force: true });
        await dead.remove({ force: true }).catch(() => undefined);
        await net.remove({ force: true });
      }
    });

    it('a pod publishing 127.0.0.1::PORT: a host client gets the reply of a member; remove ends the forwarder', async () => {
      const pod = await Namespace.create(world.runtime, { ports: ['127.0.0.1::5000'] });
      let forwarder = 0;
      try {
        const info = await pod.inspect();
        assert.equal(info.ports.length, 1);
        const port = info.ports[0]!;
        assert.equal(port.container, 5000);
        assert.equal(port.hostIp, '127.0.0.1');
        assert.ok(port.host > 0, 'a free host port was chosen');
        const server = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'echo via-forwarder | nc -l -p 5000'], namespace: pod });
        assert.equal(await fetchFromHost(port.host), 'via-forwarder\n');
        await server.remove({ force: true });
        forwarder = (await readPodRecord(world.runtime.stateDir, pod.id))!.forwarder!.pid;
        assert.ok(alive(forwarder));
      } finally {
        await pod.remove({ force: true });
      }
      assert.equal(alive(forwarder), false, 'the forwarder is gone with the pod');
    });

    it("the owner SIGKILLed: the pod's forwarder dies with it, and prune leaves no veth and no place on the network", async () => {
      const script = join(world.base, 'owner.mts');
      await writeFile(
        script,
        [
          `import { Namespace, Runtime } from ${JSON.stringify(join(repo, 'src', 'index.ts'))};`,
          `import { readPodRecord } from ${JSON.stringify(join(repo, 'src', 'runtime', 'pods.ts'))};`,
          `const runtime = new Runtime({ root: ${JSON.stringify(world.runtime.root)}, stateDir: ${JSON.stringify(world.runtime.stateDir)} });`,
          "const pod = await Namespace.create(runtime, { network: 'bridge', ports: ['127.0.0.1::5000'] });",
          'const record = await readPodRecord(runtime.stateDir, pod.id);',
          "console.log(JSON.stringify({ id: pod.id, holder: record.pid, forwarder: record.forwarder.pid }));",
          'setInterval(() => undefined, 1000);',
        ].join('\n'),
      );
      const owner = spawn(process.execPath, ['--import', 'tsx', script], { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'] });
      let line = '';
      for await (const chunk of owner.stdout!) {
        line += chunk.toString();
        if (line.includes('\n')) break;
      }
      const made = JSON.parse(line) as { id: string; holder: number; forwarder: number };
      assert.equal(podLink(made.id).length, 1);
      owner.kill('SIGKILL');
      for (let i = 0; i < 100 && (alive(made.holder) || alive(made.forwarder)); i++) await sleep(20);
      assert.equal(alive(made.forwarder), false, 'the forwarder died with its owner');
      assert.equal(alive(made.holder), false, 'the holder died with its owner');
      await world.runtime.prune();
      assert.equal((await (await world.runtime.getNetwork('bridge')).containers()).includes(made.id), false);
      for (let i = 0; i < 100 && podLink(made.id).length > 0; i++) await sleep(20);
      assert.deepEqual(podLink(made.id), []);
      assert.deepEqual(await Namespace.list(world.runtime), []);
    });

    it('a host port in use: AlreadyExistsError, and no pod, veth or forwarder is made', async () => {
      const taken: Server = createServer();
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
      const port = (taken.address() as { port: number }).port;
      try {
        const before = ourLinks();
        await assert.rejects(Namespace.create(world.runtime, { name: 'busy', network: 'bridge', ports: [`127.0.0.1:${port}:80`] }), AlreadyExistsError);
        assert.deepEqual(await Namespace.list(world.runtime), []);
        assert.deepEqual(ourLinks(), before);
        // The name was not taken either.
        const pod = await Namespace.create(world.runtime, { name: 'busy' });
        await pod.remove();
      } finally {
        taken.close();
      }
    });
  });
}
