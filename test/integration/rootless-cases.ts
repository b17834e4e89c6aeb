// The core cases of the integration suite, run by rootless.test.ts as a real
// non-root user (a child process started with that user's uid and gid). Each
// case prints one `RESULT {json}` line; the parent turns them into tests.
// Not a test file itself: node --test does not pick it up.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { ImageStore, importRootfs, InvalidArgumentError, LayerBuilder, PermissionError, Runtime, rootfsFromHost, type ImageConfig } from '../../src/index.js';
import { nativeBuildDir } from '../../src/helper/locate.js';
import type { ContainerSpec } from '../../src/runtime/spec.js';
import { findCwdEscapes, prepareEscape } from './cwd-escape.js';

/** What the parent passes in the environment. */
interface Env {
  /** A directory the user owns, for everything the cases make. */
  work: string;
}

interface Ctx {
  work: string;
  rootfs: string;
  runtime: Runtime;
  store: ImageStore;
  imageRuntime: Runtime;
  uid: number;
  gid: number;
  subuid: number;
}

async function text(stream: NodeJS.ReadableStream | null): Promise<string> {
  if (stream === null) return '';
  let out = '';
  for await (const chunk of stream) out += chunk.toString();
  return out;
}

async function run(runtime: Runtime, spec: ContainerSpec, stdin?: string) {
  const c = await runtime.create(spec);
  const output = Promise.all([text(c.stdout), text(c.stderr)]);
  if (stdin !== undefined) c.stdin?.end(stdin);
  await c.start();
  const [[stdout, stderr], exit] = await Promise.all([output, c.wait()]);
  return { c, stdout, stderr, exit };
}

function mountPoints(): string[] {
  return execFileSync('cat', ['/proc/self/mountinfo'], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4]!)
    .sort();
}

async function layerFrom(store: ImageStore, dir: string) {
  const tar = execFileSync('tar', ['-C', dir, '--numeric-owner', '-cf', '-', '.'], { maxBuffer: 1 << 30 });
  const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
  const descriptor = await store.putBlob(gzipSync(tar), { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' });
  return { descriptor, diffId };
}

/** The owner (`uid:gid`) of each entry of a layer blob, by path (`etc/passwd`). */
function layerOwners(store: ImageStore, digest: string): Map<string, string> {
  const out = new Map<string, string>();
  const listing = execFileSync('tar', ['--numeric-owner', '-tvzf', store.blobPath(digest)], { encoding: 'utf8', maxBuffer: 1 << 28 });
  for (const line of listing.split('\n').filter(Boolean)) {
    const [, owner, , , , ...name] = line.split(/\s+/);
    out.set(name.join(' ').split(' -> ')[0]!.replace(/\/$/, ''), owner!.replace('/', ':'));
  }
  return out;
}

/** The cases, in the order they run; the parent makes one test of each. */
export const CASES: readonly { name: string; run: (ctx: Ctx) => Promise<void> }[] = [
  {
    name: 'runs a container from a rootfs: its hostname, pid 1, root inside, the user outside',
    async run({ runtime, rootfs, uid, subuid }) {
      const { c, stdout, exit } = await run(runtime, {
        rootfs,
        cmd: ['sh', '-c', 'hostname; echo $$; id -u; whoami; cat /proc/self/uid_map'],
        hostname: 'rl-box',
        init: false,
      });
      assert.equal(exit.exitCode, 0, stdout);
      const [host, pid, id, who, ...map] = stdout.trim().split('\n');
      assert.equal(host, 'rl-box');
      assert.equal(pid, '1');
      assert.equal(id, '0');
      assert.equal(who, 'root');
      assert.deepEqual(
        map.map((l) => l.trim().split(/\s+/).map(Number)),
        [
          [0, uid, 1],
          [1, subuid, 65536],
        ],
      );
      await c.remove();
    },
  },
  {
    name: "the container's pid 1 runs as the user's own uid on the host",
    async run({ runtime, rootfs, uid }) {
      const c = await runtime.run({ rootfs, cmd: ['sleep', '30'], stdio: 'ignore' });
      const status = await readFile(`/proc/${c.info().pid}/status`, 'utf8');
      assert.match(status, new RegExp(`^Uid:\\s+${uid}\\s+${uid}\\s+${uid}\\s+${uid}$`, 'm'));
      await c.remove({ force: true });
    },
  },
  {
    name: 'exit codes and signals are reported as with root',
    async run({ runtime, rootfs }) {
      const seven = await run(runtime, { rootfs, cmd: ['sh', '-c', 'exit 7'] });
      assert.equal(seven.exit.exitCode, 7);
      await seven.c.remove();
      const missing = await run(runtime, { rootfs, cmd: ['/no/such/command'] });
      assert.equal(missing.exit.exitCode, 127);
      await missing.c.remove();
      const killed = await run(runtime, { rootfs, cmd: ['sh', '-c', 'kill -9 $$'] });
      assert.equal(killed.exit.signal, 'SIGKILL');
      await killed.c.remove();
    },
  },
  {
    name: 'stdin goes in and stdout and stderr come out',
    async run({ runtime, rootfs }) {
      const { c, stdout, stderr, exit } = await run(runtime, { rootfs, cmd: ['sh', '-c', 'cat; echo err >&2'] }, 'hello from stdin\n');
      assert.equal(exit.exitCode, 0);
      assert.equal(stdout, 'hello from stdin\n');
      assert.equal(stderr, 'err\n');
      await c.remove();
    },
  },
  {
    name: 'kill stops a running container with the signal given',
    async run({ runtime, rootfs }) {
      const c = await runtime.run({ rootfs, cmd: ['sleep', '60'], stdio: 'ignore' });
      await c.kill('SIGTERM');
      const exit = await c.wait();
      assert.equal(exit.signal, 'SIGTERM');
      await c.remove();
    },
  },
  {
    name: 'a detached container is found, killed and removed through the state directory by another Runtime',
    async run({ runtime, rootfs }) {
      const c = await runtime.run({ rootfs, cmd: ['sh', '-c', 'echo up; sleep 60'], detached: true, name: 'rl-detached' });
      const other = new Runtime({ root: runtime.root, stateDir: runtime.stateDir });
      const found = await other.get('rl-detached');
      assert.equal(found.id, c.id);
      assert.equal(found.status, 'running');
      // `started` comes before the command's execve: on a busy machine the kill could beat its echo.
      for (let i = 0; i < 500 && (await found.logs()).stdout.toString() === ''; i++) await sleep(10);
      await found.kill('SIGKILL');
      assert.equal((await found.wait()).signal, 'SIGKILL');
      assert.equal((await found.logs()).stdout.toString(), 'up\n');
      await found.remove();
      assert.deepEqual(await other.list(), []);
    },
  },
  {
    name: 'remove leaves nothing: no state, no upper dir (files of subordinate ids included), no mount',
    async run({ runtime, rootfs, work }) {
      const before = mountPoints();
      // uid 1000 inside is a subordinate id outside, whose files the user cannot remove on the host.
      const { c, exit, stderr } = await run(runtime, {
        rootfs,
        cmd: ['sh', '-c', 'mkdir -p /d/deep/er && echo x > /d/deep/er/file && chown -R 1000:1000 /d && chmod 500 /d/deep'],
      });
      assert.equal(exit.exitCode, 0, stderr);
      const upper = runtime.pathsOf(c.id).upper;
      const owner = execFileSync('stat', ['-c', '%u', join(upper, 'd', 'deep')], { encoding: 'utf8' }).trim();
      assert.notEqual(owner, String(process.getuid!()));
      await c.remove();
      assert.equal(existsSync(runtime.pathsOf(c.id).bundle), false, 'bundle left behind');
      assert.equal(existsSync(runtime.pathsOf(c.id).state), false, 'state left behind');
      assert.deepEqual(await runtime.list(), []);
      assert.deepEqual(mountPoints(), before);
      assert.deepEqual(await readdir(join(work, 'root', 'containers')), []);
    },
  },
  {
    name: 'a container written to keeps the rootfs intact and owns its writes',
    async run({ runtime, rootfs }) {
      const { c, stdout, exit } = await run(runtime, {
        rootfs,
        cmd: ['sh', '-c', 'echo changed > /etc/motd && cat /etc/motd && touch /newfile && ls -n /newfile'],
      });
      assert.equal(exit.exitCode, 0, stdout);
      assert.match(stdout, /^changed\n-rw-r--r-- +1 0 +0 /);
      assert.equal(existsSync(join(rootfs, 'newfile')), false);
      await c.remove();
    },
  },
  {
    name: 'ImageStore imports an image and runs it: layers stack, whiteouts and opaque dirs apply',
    async run({ store, imageRuntime, work, rootfs }) {
      const base = await layerFrom(store, rootfs);
      const top = join(work, 'top');
      await mkdir(join(top, 'bin'), { recursive: true });
      await mkdir(join(top, 'etc'), { recursive: true });
      await writeFile(join(top, 'bin', '.wh.cat'), '');
      await writeFile(join(top, 'etc', '.wh..wh..opq'), '');
      await writeFile(join(top, 'etc', 'only'), 'only file in /etc\n');
      const second = await layerFrom(store, top);
      const config = {
        architecture: 'amd64',
        os: 'linux',
        config: {
          Env: ['PATH=/bin'],
          Cmd: ['sh', '-c', 'cat /etc/only; test -e /etc/passwd && echo passwd || echo no-passwd; test -e /bin/cat && echo cat || echo no-cat; id -u'],
          User: 'nobody',
        },
        rootfs: { type: 'layers', diff_ids: [base.diffId, second.diffId] },
      } as ImageConfig;
      const manifest = await store.putImage({ config, layers: [base, second] });
      await store.tag(manifest.digest, 'example.test/rootless:1');
      const { c, stdout, stderr, exit } = await run(imageRuntime, { image: 'example.test/rootless:1' });
      assert.equal(exit.exitCode, 0, stderr);
      assert.equal(stdout, 'only file in /etc\nno-passwd\nno-cat\n65534\n');
      await c.remove();

      // A root filesystem tar, as `docker import` takes it.
      const tarPath = join(work, 'rootfs.tar');
      execFileSync('tar', ['-C', rootfs, '-cf', tarPath, '.']);
      const [imported] = await store.import(tarPath, { tag: 'example.test/imported:1', changes: ['CMD ["sh", "-c", "echo imported"]'] });
      assert.equal(imported?.reference, 'example.test/imported:1');
      const again = await run(imageRuntime, { image: 'example.test/imported:1' });
      assert.equal(again.stdout, 'imported\n', again.stderr);
      await again.c.remove();
    },
  },
  {
    name: "importRootfs and a LayerBuilder build (RUN, COPY) record the container's owners, not the user's host ids",
    async run({ store, imageRuntime, work, rootfs }) {
      const base = await importRootfs(store, rootfs, { tag: 'example.test/rl-base:1' });
      const baseLayer = (await store.inspect(base.digest)).layers[0]!;
      const baseOwners = new Set(layerOwners(store, baseLayer.digest).values());
      assert.deepEqual([...baseOwners], ['0:0'], 'the import records the user as root');

      const context = join(work, 'build-context');
      await mkdir(context, { recursive: true });
      await writeFile(join(context, 'hello.txt'), 'hello from the context\n');
      const result = await new LayerBuilder(store, { from: 'example.test/rl-base:1', runtime: imageRuntime, context })
        .run('echo built > /built.txt && mkdir /owned && echo x > /owned/f && chown -R 1000:1000 /owned')
        .copy('hello.txt', '/app/')
        .copy('hello.txt', '/app/mine.txt', { chown: '1000:1000' })
        .cmd(['sh', '-c', 'cat /built.txt /app/hello.txt && stat -c %u:%g /built.txt /app /app/hello.txt'])
        .commit('example.test/rl-built:1');
      assert.equal(result.builtSteps, 4);

      const details = await store.inspect(result.digest);
      assert.equal(details.layers.length, 4, 'base, RUN and two COPY layers');
      assert.equal(details.layers[0]!.digest, baseLayer.digest);
      const ran = layerOwners(store, details.layers[1]!.digest);
      assert.equal(ran.get('built.txt'), '0:0', 'RUN: written by root in the container');
      assert.equal(ran.get('owned'), '1000:1000', "RUN: chown'd in the container");
      assert.equal(ran.get('owned/f'), '1000:1000');
      const copy = layerOwners(store, details.layers[2]!.digest);
      assert.equal(copy.get('app'), '0:0');
      assert.equal(copy.get('app/hello.txt'), '0:0');
      const chowned = layerOwners(store, details.layers[3]!.digest);
      assert.equal(chowned.get('app/mine.txt'), '1000:1000', 'COPY --chown');

      const { c, stdout, stderr, exit } = await run(imageRuntime, { image: 'example.test/rl-built:1' });
      assert.equal(exit.exitCode, 0, stderr);
      assert.equal(stdout, 'built\nhello from the context\n0:0\n0:0\n0:0\n');
      await c.remove();
    },
  },
  {
    name: 'resources without delegated cgroups are a PermissionError, not silently dropped',
    async run({ runtime, rootfs }) {
      let c;
      try {
        c = await runtime.run({ rootfs, cmd: ['true'], resources: { pids: 50 }, stdio: 'ignore' });
      } catch (error) {
        assert.ok(error instanceof PermissionError, String(error));
        assert.match(error.message, /rootless: the cgroups are not delegated/);
        assert.deepEqual(await runtime.list(), []);
        return;
      }
      // Delegated to the user (a systemd user session): then the limit holds.
      assert.equal((await c.stats()).pids.limit, 50);
      await c.remove({ force: true });
    },
  },
  {
    name: 'a single-id mapping runs root only, without newuidmap',
    async run({ runtime, rootfs, uid, gid }) {
      const userns = { uidMap: [{ containerId: 0, hostId: uid, size: 1 }], gidMap: [{ containerId: 0, hostId: gid, size: 1 }] };
      const { c, stdout, exit } = await run(runtime, { rootfs, cmd: ['cat', '/proc/self/uid_map'], userns });
      assert.equal(exit.exitCode, 0);
      assert.deepEqual(stdout.trim().split(/\s+/).map(Number), [0, uid, 1]);
      await c.remove();
      await assert.rejects(runtime.run({ rootfs, cmd: ['true'], userns, user: '1000' }), InvalidArgumentError);
    },
  },
  {
    name: 'the default security profile holds: no mount, no new user namespace, no device node',
    async run({ runtime, rootfs }) {
      for (const [args, want] of [
        [['mount', 'tmpfs', '/mnt'], 'EPERM'],
        [['unshare-user'], 'EPERM'],
        [['mknod', '/dev/sda', 'b', '8', '0'], 'EPERM'],
      ] as const) {
        const { c, stdout, stderr } = await run(runtime, { rootfs, cmd: ['probe', ...args] });
        assert.equal((stdout || stderr).trim(), want, `probe ${args.join(' ')}`);
        await c.remove();
      }
    },
  },
  {
    // runc CVE-2024-21626: as a non-root caller with a bind mount, /proc/self/fd/N reached a host directory.
    name: 'a cwd or image WorkingDir of /proc/self/fd/N never lands on the host',
    async run({ work, runtime, store, imageRuntime }) {
      const fixture = await prepareEscape(join(work, 'cwd-escape'), store);
      assert.deepEqual(await findCwdEscapes(fixture, runtime, imageRuntime, {}), []);
    },
  },
];

async function main(env: Env): Promise<void> {
  const uid = process.getuid!();
  const gid = process.getgid!();
  const subuidLine = (await readFile('/etc/subuid', 'utf8'))
    .split('\n')
    .find((l) => l.startsWith(`${execFileSync('id', ['-un'], { encoding: 'utf8' }).trim()}:`));
  const subuid = Number(subuidLine?.split(':')[1]);
  const rootfs = join(env.work, 'rootfs');
  await rootfsFromHost(rootfs);
  await copyFile(join(nativeBuildDir, 'probe'), join(rootfs, 'bin', 'probe'));
  const runtime = new Runtime({ root: join(env.work, 'root'), stateDir: join(env.work, 'state') });
  const store = await ImageStore.open({ root: join(env.work, 'store') });
  const imageRuntime = new Runtime({ root: runtime.root, stateDir: runtime.stateDir, store });
  const ctx: Ctx = { work: env.work, rootfs, runtime, store, imageRuntime, uid, gid, subuid };
  for (const c of CASES) {
    const started = Date.now();
    try {
      await c.run(ctx);
      console.log(`RESULT ${JSON.stringify({ name: c.name, ok: true, ms: Date.now() - started })}`);
    } catch (error) {
      const message = error instanceof Error ? `${error.stack ?? error.message}` : String(error);
      console.log(`RESULT ${JSON.stringify({ name: c.name, ok: false, error: message })}`);
      // Leave nothing running for the next case.
      for (const info of await runtime.list().catch(() => [])) {
        await (await runtime.get(info.id).catch(() => undefined))?.remove({ force: true }).catch(() => undefined);
      }
      await sleep(10);
    }
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await main({ work: process.env.DL_ROOTLESS_WORK ?? process.exit(2) });
}
