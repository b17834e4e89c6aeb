// What a container sees of its own filesystem, as Docker shows it: the image's
// root directory as the image made it, and its own cgroups, read-only, at
// /sys/fs/cgroup. Root only.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, chown, copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { ImageStore, Runtime, type ImageConfig } from '../../src/index.js';
import { nativeBuildDir } from '../../src/helper/locate.js';
import { detectCgroups } from '../../src/runtime/cgroups/detect.js';
import type { ContainerSpec } from '../../src/runtime/spec.js';
import { cannotRun, makeWorld, text, type World } from '../fixtures/world.js';

const skip = cannotRun();
if (skip !== undefined) console.log(`# skipping container-view integration tests: ${skip}`);

/** Runs SPEC to its end; its stdout and exit code. */
async function run(runtime: Runtime, spec: ContainerSpec): Promise<{ stdout: string; stderr: string; exitCode: number | null }> {
  const c = await runtime.create(spec);
  const output = Promise.all([text(c.stdout), text(c.stderr)]);
  await c.start();
  const [[stdout, stderr], exit] = await Promise.all([output, c.wait()]);
  await c.remove();
  return { stdout: stdout.trim(), stderr: stderr.trim(), exitCode: exit.exitCode };
}

describe("the image's root directory", { skip }, () => {
  let world: World;
  let runtime: Runtime;
  let rootfs: string;
  before(async () => {
    world = await makeWorld();
    const store = await ImageStore.open({ root: join(world.base, 'store') });
    runtime = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir, store });
    rootfs = join(world.base, 'private-root');
    await mkdir(join(rootfs, 'bin'), { recursive: true });
    await copyFile(join(nativeBuildDir, 'probe'), join(rootfs, 'bin', 'probe'));
    await chmod(join(rootfs, 'bin', 'probe'), 0o755);
    await chown(rootfs, 1000, 1000);
    await chmod(rootfs, 0o700);
    // GNU tar writes the directory's own `./` entry first, with its mode and owner.
    const tar = execFileSync('tar', ['-C', rootfs, '--numeric-owner', '-cf', '-', '.']);
    const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
    const layer = await store.putBlob(gzipSync(tar), { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' });
    const config = {
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['probe', 'stat', '/'] },
      rootfs: { type: 'layers', diff_ids: [diffId] },
    } as ImageConfig;
    const manifest = await store.putImage({ config, layers: [{ descriptor: layer, diffId }] });
    await store.tag(manifest.digest, 'example.test/private-root:1');
  });
  after(async () => {
    await world?.dispose();
  });

  // The upper directory, created 0755 by root, used to win over the image's `./` entry.
  it("an image whose root is 0700 and owned by 1000:1000 shows that at / (not the upper dir's 0755 root:root)", async () => {
    const r = await run(runtime, { image: 'example.test/private-root:1' });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, '700 1000 1000 dir');
  });

  it('so does a rootfs directory whose root is 0700 and owned by 1000:1000', async () => {
    const r = await run(runtime, { rootfs, cmd: ['probe', 'stat', '/'] });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, '700 1000 1000 dir');
  });

  it("and in a user namespace (idmapped root), the ids are the container's own", async () => {
    const r = await run(runtime, { image: 'example.test/private-root:1', userns: 'auto' });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, '700 1000 1000 dir');
  });
});

const MiB = 1024 * 1024;

/** The memory controller's limit file as the container sees it, or why it cannot be tried. */
function memoryLimitFile(): { file: string } | { why: string } {
  const memory = cannotRun() === undefined ? detectCgroups().controllers.get('memory') : undefined;
  if (memory === undefined) return { why: 'no memory controller here' };
  return { file: memory.version === 1 ? '/sys/fs/cgroup/memory/memory.limit_in_bytes' : '/sys/fs/cgroup/memory.max' };
}

describe('/sys/fs/cgroup in the container', { skip }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    await world?.dispose();
  });

  for (const userns of [undefined, 'auto' as const]) {
    const mode = userns === undefined ? 'without a user namespace' : 'in a user namespace';
    // Runtimes size their heaps from it (a memory-limited JVM without it is OOM-killed); it used to be sysfs's empty dir.
    it(`shows the container's own memory limit, read-only, and none of its siblings (${mode})`, async (t) => {
      const where = memoryLimitFile();
      if ('why' in where) {
        console.log(`# skipped: ${where.why}`);
        return t.skip(where.why);
      }
      const spec = { rootfs: world.rootfs, resources: { memory: 64 * MiB }, ...(userns !== undefined ? { userns } : {}) };
      // A sibling: its cgroup is next to the probe's on the host, and must not show inside.
      const sibling = await world.runtime.run({ ...spec, cmd: ['probe', 'sleep', '30'], stdio: 'ignore' });
      try {
        const limit = await run(world.runtime, { ...spec, cmd: ['probe', 'cat', where.file] });
        assert.equal(limit.stdout, String(64 * MiB), limit.stderr);
        const write = await run(world.runtime, { ...spec, cmd: ['probe', 'write', where.file, String(128 * MiB)] });
        assert.equal(write.stdout || write.stderr, 'EROFS');
        const mkdir = await run(world.runtime, { ...spec, cmd: ['probe', 'mkdir', '/sys/fs/cgroup/x'] });
        assert.equal(mkdir.stdout || mkdir.stderr, 'EROFS');
        const dir = where.file.slice(0, where.file.lastIndexOf('/'));
        const list = await run(world.runtime, { ...spec, cmd: ['probe', 'ls', dir] });
        assert.match(list.stdout, /^cgroup\.procs$/m);
        assert.doesNotMatch(list.stdout, /dockless-/);
        assert.ok(!list.stdout.includes(sibling.id.slice(0, 12)));
      } finally {
        await sibling.remove({ force: true });
      }
    });

    // The JVM's container support gives up unless cpu, cpuacct, cpuset and memory are all mounted (cgroup v1).
    it(`every v1 hierarchy the JVM needs is mounted, those without a limit too (${mode})`, async (t) => {
      const v1 = detectCgroups().hierarchies.filter((h) => h.version === 1);
      const needed = v1.filter((h) => h.controllers.some((c) => ['cpu', 'cpuacct', 'cpuset', 'memory'].includes(c)));
      if (needed.length === 0) {
        console.log('# skipped: no cgroup v1 hierarchy here');
        return t.skip('no cgroup v1 hierarchy here');
      }
      const r = await run(world.runtime, {
        rootfs: world.rootfs,
        cmd: ['probe', 'cat', '/proc/self/mountinfo'],
        ...(userns !== undefined ? { userns } : {}),
      });
      const points = r.stdout.split('\n').map((l) => l.split(' ')[4]);
      for (const h of needed) {
        const target = `/sys/fs/cgroup/${h.mount.slice(h.mount.lastIndexOf('/') + 1)}`;
        assert.ok(points.includes(target), `${target} is not mounted:\n${r.stdout}`);
      }
    });

    // Made read-only with a recursive bind on itself, the tmpfs took a second copy
    // of every hierarchy below it: more mounts to make and to tear down at exit.
    it(`/sys/fs/cgroup and each hierarchy below it are mounted once, read-only (${mode})`, async () => {
      const r = await run(world.runtime, {
        rootfs: world.rootfs,
        cmd: ['probe', 'cat', '/proc/self/mountinfo'],
        ...(userns !== undefined ? { userns } : {}),
      });
      const cgroupfs = r.stdout.split('\n').map((l) => l.split(' ')).filter((f) => f[4] === '/sys/fs/cgroup' || f[4]?.startsWith('/sys/fs/cgroup/'));
      assert.ok(cgroupfs.length > 0, r.stdout);
      const points = cgroupfs.map((f) => f[4]!);
      assert.deepEqual(points, [...new Set(points)], `mounted more than once:\n${r.stdout}`);
      for (const f of cgroupfs) assert.match(f[5]!, /^ro,/, `${f[4]} is not read-only`);
    });
  }
});
