import { strict as assert } from 'node:assert';
import { mkdtemp, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HelperError } from '../../src/index.js';
import { spawnHelper } from '../../src/helper/spawn.js';
import { cannotRun, makeWorld, text, type World } from '../fixtures/world.js';

const skip = cannotRun();
if (skip !== undefined) console.log(`# skipping start path integration tests: ${skip}`);

/** Runs the helper's `run` with `--write-file PATH 644 CONTENT` alone: it fails at that step or goes on to run `true`. */
async function writeThroughShim(path: string, content: string): Promise<HelperError | undefined> {
  const helper = spawnHelper('run', ['--id', 'write-file', '--write-file', path, '644', content, '--', '/nonexistent'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    context: 'run container write-file',
  });
  await helper.exit;
  return helper.failure instanceof HelperError ? helper.failure : undefined;
}

describe('start path: files the shim writes', { skip }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    await world?.dispose();
  });

  // The runtime hands hostname, hosts and resolv.conf to the shim (`--write-file`): they must be what this side wrote before.
  it("a container's hostname, hosts and resolv.conf have their content, mode 0644 and root's ownership", async () => {
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'cat /etc/hostname /etc/hosts /etc/resolv.conf'], hostname: 'shim-made' });
    const [out] = await Promise.all([text(c.stdout), c.wait()]);
    try {
      const paths = world.runtime.pathsOf(c.id);
      const hostname = await readFile(paths.hostname, 'utf8');
      assert.equal(hostname, 'shim-made\n');
      const hosts = await readFile(paths.hosts, 'utf8');
      assert.match(hosts, /127\.0\.0\.1\s+localhost/);
      assert.match(hosts, /shim-made/);
      const resolv = await readFile(paths.resolv, 'utf8');
      assert.equal(out, hostname + hosts + resolv, 'the container sees the same files');
      for (const p of [paths.hostname, paths.hosts, paths.resolv]) {
        const st = await stat(p);
        assert.equal(st.mode & 0o7777, 0o644, `${p} mode ${(st.mode & 0o7777).toString(8)}`);
        assert.deepEqual([st.uid, st.gid], [0, 0], p);
      }
      // The upper directory (made by the shim, `--make-dir`) takes the lower root's mode and owner: it is the container's `/`.
      const [upper, lower] = await Promise.all([stat(paths.upper), stat(world.rootfs)]);
      assert.equal(upper.mode & 0o7777, lower.mode & 0o7777);
      assert.deepEqual([upper.uid, upper.gid], [lower.uid, lower.gid]);
      assert.equal((await stat(paths.work)).mode & 0o7777, 0o700);
      // The launch's records, written by the shim too: owner-only (the environment is in them).
      for (const p of [paths.config, paths.launch]) {
        assert.equal((await stat(p)).mode & 0o7777, 0o600, p);
        assert.equal(typeof JSON.parse(await readFile(p, 'utf8')), 'object', p);
      }
    } finally {
      await c.remove();
    }
  });

  it('refuses a symlink planted at the path, and writes nothing through it', async () => {
    const dir = await mkdtemp(join(world.base, 'write-file-'));
    const victim = join(dir, 'victim');
    await writeFile(victim, 'original\n');
    await symlink(victim, join(dir, 'hostname'));
    const error = await writeThroughShim(join(dir, 'hostname'), 'evil\n');
    assert.ok(error !== undefined, 'the shim wrote through a symlink');
    assert.equal(error.step, 'write file');
    assert.equal(error.path, join(dir, 'hostname'));
    assert.equal(error.errnoCode, 'EEXIST');
    assert.equal(await readFile(victim, 'utf8'), 'original\n');
    // A dangling symlink too: O_CREAT would otherwise create its target.
    await symlink(join(dir, 'made-through-link'), join(dir, 'hosts'));
    assert.equal((await writeThroughShim(join(dir, 'hosts'), 'evil\n'))?.errnoCode, 'EEXIST');
    await assert.rejects(stat(join(dir, 'made-through-link')), { code: 'ENOENT' });
  });

  it('refuses a file already at the path, leaving it as it was', async () => {
    const dir = await mkdtemp(join(world.base, 'write-file-'));
    await writeFile(join(dir, 'resolv.conf'), 'nameserver 192.0.2.1\n');
    const error = await writeThroughShim(join(dir, 'resolv.conf'), 'nameserver 198.51.100.1\n');
    assert.equal(error?.errnoCode, 'EEXIST');
    assert.equal(await readFile(join(dir, 'resolv.conf'), 'utf8'), 'nameserver 192.0.2.1\n');
  });
});
