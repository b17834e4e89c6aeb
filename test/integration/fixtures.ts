import { execFileSync } from 'node:child_process';
import { copyFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { Runtime } from '../../src/index.js';
import { nativeBuildDir } from '../../src/helper/locate.js';
import { rootfsFromHost } from '../../src/runtime/host-rootfs.js';

/** Why integration tests cannot run here, or undefined when they can. */
export function cannotRun(): string | undefined {
  if (process.getuid?.() !== 0) return 'integration tests start real containers and need root (run as root, or see the rootless suite)';
  if (!existsSync(join(nativeBuildDir, 'dockless-helper'))) return 'native helper not built: run npm install';
  if (!existsSync(join(nativeBuildDir, 'probe'))) return 'probe binary not built: run npm install';
  return undefined;
}

/** Skips the test with a printed reason when integration tests cannot run. */
export function skipUnlessCanRun(t: TestContext): boolean {
  const why = cannotRun();
  if (why !== undefined) {
    t.skip(why);
    console.log(`# skipped ${t.name}: ${why}`);
    return true;
  }
  return false;
}

/** A throwaway world for one test file: a rootfs with the probe, and a Runtime with its own dirs. */
export interface World {
  base: string;
  rootfs: string;
  runtime: Runtime;
  dispose(): Promise<void>;
}

/** Builds a host rootfs with /bin/probe and a Runtime whose root and state dir are temporary. */
export async function makeWorld(): Promise<World> {
  const base = await mkdtemp(join(tmpdir(), 'dl-it-'));
  const rootfs = join(base, 'rootfs');
  await rootfsFromHost(rootfs);
  await copyFile(join(nativeBuildDir, 'probe'), join(rootfs, 'bin', 'probe'));
  execFileSync('chmod', ['755', join(rootfs, 'bin', 'probe')]);
  const runtime = new Runtime({ root: join(base, 'root'), stateDir: join(base, 'state') });
  return {
    base,
    rootfs,
    runtime,
    async dispose() {
      for (const c of await runtime.list()) {
        const container = await runtime.get(c.id).catch(() => undefined);
        await container?.remove({ force: true }).catch(() => undefined);
      }
      await rm(base, { recursive: true, force: true });
    },
  };
}

/** Reads a stream to its end as text. */
export async function text(stream: NodeJS.ReadableStream | null): Promise<string> {
  if (stream === null) return '';
  let out = '';
  for await (const chunk of stream) out += chunk.toString();
  return out;
}

/** The host's mount table (mount points only). */
export async function hostMounts(): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4]!)
    .sort();
}

/** Pids of this process's descendants. */
export async function descendants(): Promise<number[]> {
  const children = new Map<number, number[]>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const stack = [process.pid];
  while (stack.length > 0) {
    for (const c of children.get(stack.pop()!) ?? []) {
      out.push(c);
      stack.push(c);
    }
  }
  return out.sort((a, b) => a - b);
}

/** Sub-directories of every cgroup hierarchy this process is in (to see that none leak). */
export async function cgroupDirs(): Promise<string[]> {
  const out: string[] = [];
  const lines = (await readFile('/proc/self/cgroup', 'utf8')).split('\n').filter(Boolean);
  for (const line of lines) {
    const [, controllers, path] = line.split(':') as [string, string, string];
    const mount = controllers === '' ? '/sys/fs/cgroup/unified' : `/sys/fs/cgroup/${controllers.replace(/^name=/, '')}`;
    const dir = join(mount, path);
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) out.push(join(dir, e.name));
  }
  return out.sort();
}
