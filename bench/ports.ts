/**
 * Published-port throughput: 1 GiB over TCP into a container's sink through a
 * port published on 127.0.0.1 (dockless's forwarder, native/forward.c), beside
 * a direct connection from the host to the container's address (the issue's
 * yardstick: what a caller gets without publishing), and, for scale, a
 * connection from inside the container's own network namespace to its
 * 127.0.0.1 (one loopback hop, no veth: the ceiling no proxy reaches), all
 * in the same run, rounds interleaved so that load on the shared machine hits
 * each alike. No podman figure: Debian 12's podman (CNI portmap) accepts a
 * connection to its `-p 127.0.0.1:…` port in a throwaway namespace and then
 * stalls the transfer.
 * The client is the static probe (`send-tcp`), so Node is not what is measured.
 * Runs in a throwaway network namespace ({@link inNetSandbox}): the bridge and
 * firewall table the published port makes never reach the machine's own.
 *
 *   node --import tsx bench/ports.ts [--mib 1024] [--rounds 3] [--dir DIR]
 *
 * Root only (the in-namespace figure enters the container's namespace with nsenter).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Runtime, rootfsFromHost } from '../src/index.js';
import { nativeBuildDir } from '../src/helper/locate.js';
import { arg, benchParent, compare, inNetSandbox, median, writeResults, type ResultRow } from './common.js';

inNetSandbox();

const MIB = Number(arg('--mib') ?? 1024);
const ROUNDS = Number(arg('--rounds') ?? 3);
const probe = join(nativeBuildDir, 'probe');

/** MiB/s of one send-tcp run; `prefix` runs it elsewhere (nsenter into the container). */
function send(prefix: string[], host: string, port: number): number {
  const argv = [...prefix, probe, 'send-tcp', host, String(port), String(MIB)];
  const out = execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 300_000 }).trim();
  const [bytes, seconds] = out.split(' ').map(Number) as [number, number];
  if (bytes !== MIB * 1024 * 1024) throw new Error(`sink read ${bytes} bytes, not ${MIB} MiB: ${out}`);
  return MIB / seconds;
}

async function waitFor(fn: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (fn()) return;
    await sleep(25);
  }
  throw new Error(`${what}: not ready`);
}

function canConnect(host: string, port: number, prefix: string[] = []): boolean {
  const argv = [...prefix, probe, 'ask-tcp', host, String(port), ''];
  return spawnSync(argv[0]!, argv.slice(1), { stdio: 'ignore' }).status === 0;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/ports.ts needs root (nsenter for the in-namespace figure)');
  const parent = arg('--dir') !== undefined ? { dir: arg('--dir')!, kind: 'disk' as const } : await benchParent();
  const dir = await mkdtemp(join(parent.dir, 'dl-bench-ports-'));
  try {
    const rootfs = join(dir, 'rootfs');
    await rootfsFromHost(rootfs);
    await copyFile(probe, join(rootfs, 'bin', 'probe'));
    await using runtime = new Runtime({ root: join(dir, 'root'), stateDir: join(dir, 'state') });
    await using c = await runtime.run({ rootfs, cmd: ['/bin/probe', 'sink-tcp', '80'], ports: ['127.0.0.1::80'], stdio: 'ignore' });
    const { host } = c.ports()[0]!;
    const address = (await c.inspect()).NetworkSettings.IPAddress;
    const inside = ['nsenter', `--net=/proc/${c.pid}/ns/net`];
    await waitFor(() => canConnect(address, 80), 'sink');

    const direct: number[] = [];
    const loopback: number[] = [];
    const published: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      direct.push(send([], address, 80));
      loopback.push(send(inside, '127.0.0.1', 80));
      published.push(send([], '127.0.0.1', host));
    }

    const d = median(direct);
    const p = median(published);
    console.log(`published-port TCP throughput, ${MIB} MiB per transfer, median of ${ROUNDS} (MiB/s):`);
    const rows: ResultRow[] = [
      compare('published port 127.0.0.1 (forwarder) vs direct to the container address, MiB/s', p, 'MiB/s', { name: 'direct', value: d }, { higher: true, target: '≤ 2× (≥ 50 % of direct)' }),
      compare("  the same beside the container's own loopback (one hop, no veth)", p, 'MiB/s', { name: 'loopback inside', value: median(loopback) }, { higher: true }),
    ];
    console.log(`  published / direct: ${((p / d) * 100).toFixed(0)} % (target ≥ 50 %)`);
    await writeResults('ports', rows, { dir: parent.dir, kind: parent.kind, cacheDropped: false });
    for (const n of await runtime.listNetworks()) await n.remove({ force: true });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
