/**
 * Published-port throughput: 1 GiB over TCP into a container's sink, through a
 * port published on 127.0.0.1 (dockless's forwarder), beside a direct
 * connection to the sink from inside the container's network namespace, and
 * beside `podman run -p` where podman can run here, all in the same run.
 * The client is the static probe (`send-tcp`), so Node is not what is measured.
 *
 *   node --import tsx bench/ports.ts [--mib 1024] [--rounds 3] [--dir DIR]
 *
 * Root only (the direct figure enters the container's namespace with nsenter).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Runtime, rootfsFromHost } from '../src/index.js';
import { nativeBuildDir } from '../src/helper/locate.js';
import { arg, defaultParent, median, which } from './common.js';

const MIB = Number(arg('--mib') ?? 1024);
const ROUNDS = Number(arg('--rounds') ?? 3);
const probe = join(nativeBuildDir, 'probe');

/** MiB/s of one send-tcp run; `prefix` runs it elsewhere (nsenter into the container). */
function send(prefix: string[], host: string, port: number): number {
  const argv = [...prefix, probe, 'send-tcp', host, String(port), String(MIB)];
  const out = execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8' }).trim();
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
  if (process.getuid?.() !== 0) throw new Error('bench/ports.ts needs root (nsenter for the direct figure)');
  const dir = await mkdtemp(join(arg('--dir') ?? (await defaultParent()), 'dl-bench-ports-'));
  try {
    const rootfs = join(dir, 'rootfs');
    await rootfsFromHost(rootfs);
    await copyFile(probe, join(rootfs, 'bin', 'probe'));
    await using runtime = new Runtime({ root: join(dir, 'root'), stateDir: join(dir, 'state') });
    await using c = await runtime.run({ rootfs, cmd: ['/bin/probe', 'sink-tcp', '80'], ports: ['127.0.0.1::80'], stdio: 'ignore' });
    const { host } = c.ports()[0]!;
    const inside = ['nsenter', `--net=/proc/${c.pid}/ns/net`];
    await waitFor(() => canConnect('127.0.0.1', 80, inside), 'sink');

    const direct: number[] = [];
    const published: number[] = [];
    const podman: number[] = [];
    let podmanNote = '';
    for (let i = 0; i < ROUNDS; i++) {
      direct.push(send(inside, '127.0.0.1', 80));
      published.push(send([], '127.0.0.1', host));
    }

    const podmanBin = which('podman');
    if (podmanBin === undefined) podmanNote = 'podman not installed';
    else {
      const port = host + 1;
      const started = spawnSync(podmanBin, ['run', '-d', '--rm', '-p', `127.0.0.1:${port}:80`, '--rootfs', rootfs, '/bin/probe', 'sink-tcp', '80'], {
        encoding: 'utf8',
      });
      if (started.status !== 0) podmanNote = `podman run -p failed: ${started.stderr.trim().split('\n').pop()}`;
      else {
        const id = started.stdout.trim();
        try {
          await waitFor(() => canConnect('127.0.0.1', port), 'podman sink');
          for (let i = 0; i < ROUNDS; i++) podman.push(send([], '127.0.0.1', port));
        } catch (error) {
          podmanNote = `podman: ${(error as Error).message}`;
        } finally {
          spawnSync(podmanBin, ['rm', '-f', id], { stdio: 'ignore' });
        }
      }
    }

    const d = median(direct);
    const p = median(published);
    console.log(`published-port TCP throughput, ${MIB} MiB per transfer, median of ${ROUNDS} (MiB/s):`);
    console.log(`  direct (inside the container's netns)  ${d.toFixed(0)}`);
    console.log(`  dockless -p 127.0.0.1 (forwarder)      ${p.toFixed(0)}   ${((p / d) * 100).toFixed(0)} % of direct`);
    console.log(`  podman run -p 127.0.0.1                ${podman.length > 0 ? `${median(podman).toFixed(0)}   ${((median(podman) / d) * 100).toFixed(0)} % of direct` : `n/a (${podmanNote})`}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
