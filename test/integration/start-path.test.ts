import { strict as assert } from 'node:assert';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HelperError, Runtime } from '../../src/index.js';
import { moveForked, spawnHelper } from '../../src/helper/spawn.js';
import { processStartTime } from '../../src/util/index.js';
import { rootfsFromHost } from '../../src/runtime/host-rootfs.js';
import type { ContainerRecord } from '../../src/runtime/state.js';
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
      // The launch's records, written by the shim too, in one file (an inode less per container): owner-only (the environment is in them).
      assert.equal((await stat(paths.config)).mode & 0o7777, 0o600);
      const config = JSON.parse(await readFile(paths.config, 'utf8')) as { process: object; launch: { plan: { cmd: string[] } } };
      assert.equal(typeof config.process, 'object');
      assert.deepEqual(config.launch.plan.cmd.slice(-2), ['-c', 'cat /etc/hostname /etc/hosts /etc/resolv.conf']);
      await assert.rejects(stat(paths.launch), { code: 'ENOENT' });
    } finally {
      await c.remove();
    }
  });

  // Each /etc target the image lacks came from creating it in the merged view: a copy-up of /etc and three new files in the
  // upper dir, four inodes per container (issue 13). A shared lower gives them now; what the container sees must not change.
  it("an image without the /etc targets: no copy-up of /etc, and /etc keeps the image's mode and owner", async (t) => {
    if (process.getuid?.() !== 0) return t.skip('the shared lower is made as root');
    const rootfs = join(await mkdtemp(join(world.base, 'etc-targets-')), 'rootfs');
    await rootfsFromHost(rootfs);
    await rm(join(rootfs, 'etc', 'hostname'), { force: true });
    await rm(join(rootfs, 'etc', 'resolv.conf'), { force: true });
    // A target the image has as a regular file is covered by its bind mount all the same.
    await writeFile(join(rootfs, 'etc', 'hosts'), 'the image\'s hosts\n');
    await chown(join(rootfs, 'etc'), 5, 6);
    await chmod(join(rootfs, 'etc'), 0o750);
    for (const round of [1, 2]) {
      const c = await world.runtime.run({ rootfs, cmd: ['sh', '-c', 'stat -c "%a %u %g" /etc; cat /etc/hostname /etc/hosts'], hostname: `round${round}` });
      const [out] = await Promise.all([text(c.stdout), c.wait()]);
      try {
        const paths = world.runtime.pathsOf(c.id);
        const hosts = await readFile(paths.hosts, 'utf8');
        assert.equal(out, `750 5 6\nround${round}\n${hosts}`, `round ${round}`);
        assert.deepEqual(await readdir(paths.upper), [], `round ${round}: the upper dir holds nothing`);
      } finally {
        await c.remove();
      }
    }
    // The image is as it was.
    await assert.rejects(stat(join(rootfs, 'etc', 'hostname')), { code: 'ENOENT' });
    assert.equal(await readFile(join(rootfs, 'etc', 'hosts'), 'utf8'), "the image's hosts\n");
  });

  // A mount point per container was one more inode made and freed per launch (issue 13): every container mounts its
  // rootfs on one shared directory, each in its own mount namespace, which leaves it empty on the host.
  it('the rootfs is mounted on one shared directory, in the mount namespace of each container: none made per container', async () => {
    // A named container's state directory is made by this process, an unnamed one's by the shim.
    const [a, b] = await Promise.all([
      world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '10'], name: `mount-point-${process.pid}` }),
      world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '10'] }),
    ]);
    try {
      for (const c of [a, b]) {
        const paths = world.runtime.pathsOf(c.id);
        assert.equal(paths.target, join(world.runtime.stateDir, '.rootfs'));
        assert.ok(!(await readdir(paths.state)).includes('rootfs'), 'a mount point in the state directory');
        assert.ok((await readdir(`/proc/${c.pid}/root/bin`)).includes('sleep'), 'the container sees its rootfs');
      }
      assert.deepEqual(await readdir(join(world.runtime.stateDir, '.rootfs')), [], 'the shared mount point is empty on the host');
    } finally {
      await Promise.all([a.remove({ force: true }), b.remove({ force: true })]);
    }
  });

  // Containers made before the launch record moved into config.json keep it in launch.json: they restart all the same.
  it('a container whose launch record is in its own launch.json (an older layout) restarts', async () => {
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sh', '-c', 'echo ran'], stdio: 'ignore' });
    try {
      await c.wait();
      const paths = world.runtime.pathsOf(c.id);
      const { launch, ...config } = JSON.parse(await readFile(paths.config, 'utf8')) as Record<string, unknown>;
      assert.equal(typeof launch, 'object');
      await writeFile(paths.launch, JSON.stringify(launch), { mode: 0o600 });
      await writeFile(paths.config, JSON.stringify(config), { mode: 0o600 });
      await c.restart();
      assert.equal((await c.wait()).exitCode, 0);
      assert.equal(typeof (await c.inspect()).Config, 'object');
    } finally {
      await c.remove({ force: true });
    }
  });

  // Without a journal ext4 passes over every inode freed in the last minute when it allocates one, from the start of the
  // group: containers made and removed in one group made that the largest cost of a launch (issue 13). A runtime that makes
  // its containers directory and state directory marks them +T, so that ext4 spreads the containers' directories.
  it('a new root and state directory are marked FS_TOPDIR_FL (chattr +T) where the filesystem has the flag', async (t) => {
    const dir = await mkdtemp(join(world.base, 'topdir-'));
    const fs = spawnSync('findmnt', ['-n', '-o', 'FSTYPE', '-T', dir], { encoding: 'utf8' }).stdout.trim();
    if (!/^ext[234]$/.test(fs) || spawnSync('lsattr', ['-d', dir]).status !== 0) return t.skip(`no inode flags to see here (${fs || 'findmnt failed'}, or no lsattr)`);
    const runtime = new Runtime({ root: join(dir, 'data'), stateDir: join(dir, 'state') });
    const c = await runtime.run({ rootfs: world.rootfs, cmd: ['true'], stdio: 'ignore' });
    await c.wait();
    await c.remove();
    const flags = (path: string) => spawnSync('lsattr', ['-d', path], { encoding: 'utf8' }).stdout.split(' ')[0]!;
    assert.match(flags(join(dir, 'data', 'containers')), /T/);
    assert.match(flags(join(dir, 'state')), /T/);
    // Only those: what a container's directory holds stays in the container's group.
    assert.doesNotMatch(flags(join(dir, 'data')), /T/);
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

  // A warm launch (the second: the first makes its cgroups here) leaves its state directory, record and
  // events to the shim, and its removal to the fork server: others must find them as this side wrote them.
  it('a warm launch: the shim makes the state directory and record, and appends the launch events; the fork server the removal', async () => {
    const first = await world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], stdio: 'ignore' });
    await first.wait();
    await first.remove();
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '30'], stdio: 'ignore', labels: { k: 'v' } });
    const paths = world.runtime.pathsOf(c.id);
    try {
      // Records only: the rootfs is mounted on the state directory's shared `.rootfs`.
      assert.deepEqual((await readdir(paths.state)).filter((f) => !f.endsWith('.json')), []);
      assert.equal((await stat(paths.state)).mode & 0o777, 0o711);
      assert.deepEqual(JSON.parse(await readFile(paths.owner, 'utf8')), { pid: process.pid, start: processStartTime(process.pid) });
      const record = JSON.parse(await readFile(paths.record, 'utf8')) as ContainerRecord;
      assert.equal(record.id, c.id);
      assert.equal(record.pid, c.pid);
      assert.equal(record.pidStart, processStartTime(c.pid), 'the start time of pid 1, as /proc gives it');
      assert.equal(record.ownerPid, process.pid);
      assert.deepEqual(record.labels, { k: 'v' });
      assert.equal(record.started, record.created);
      // Another runtime takes it for the running container it is.
      const other = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir });
      assert.equal((await other.get(c.id)).status, 'running');
      const { mode } = await stat(paths.bundle);
      assert.equal(mode & 0o7777, 0o755);
    } finally {
      await c.remove({ force: true });
    }
    await assert.rejects(stat(paths.state), { code: 'ENOENT' });
    await assert.rejects(stat(paths.bundle), { code: 'ENOENT' });
    const events = (await readFile(join(world.runtime.stateDir, 'events.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { action: string; id: string; attributes: Record<string, unknown> })
      .filter((e) => e.id === c.id);
    assert.deepEqual(
      events.map((e) => e.action),
      ['create', 'start', 'kill', 'die', 'remove'],
    );
    assert.deepEqual(events[0]!.attributes, { labels: { k: 'v' } });
    assert.deepEqual(events[4]!.attributes, { labels: { k: 'v' } });
  });

  // `--make-state` and `--record` (the shim's side of the above): pid 1's start time is the one /proc gives.
  it('the shim writes the record with pid 1\'s pid and start time, and reports the start time in its pid line', async () => {
    const dir = await mkdtemp(join(world.base, 'make-state-'));
    const state = join(dir, 'c1');
    const helper = spawnHelper(
      'run',
      [
        ...['--id', 'make-state', '--make-state', state, 'TOKEN', '{"pid":1,"start":2}'],
        ...['--write-file-late', join(state, 'config.json'), '600', '{"c":3}', '--record', join(state, 'state.json'), '{"a":1,', ',"b":2}'],
        ...['--', '/bin/sleep', '30'],
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], context: 'run container make-state' },
    );
    try {
      const line = await helper.next('pid');
      assert.equal(line.start, processStartTime(line.pid));
      assert.deepEqual(await readdir(dir), ['c1'], 'no .new- directory is left');
      // The state directory and the late files (made once pid 1 exists) are there by the pid line too.
      assert.deepEqual((await readdir(state)).sort(), ['config.json', 'owner.json', 'state.json']);
      assert.equal(await readFile(join(state, 'owner.json'), 'utf8'), '{"pid":1,"start":2}');
      assert.equal(await readFile(join(state, 'config.json'), 'utf8'), '{"c":3}');
      assert.equal((await stat(join(state, 'config.json'))).mode & 0o7777, 0o600);
      assert.deepEqual(JSON.parse(await readFile(join(state, 'state.json'), 'utf8')), { a: 1, pid: line.pid, pidStart: line.start, b: 2 });
    } finally {
      helper.child.kill('SIGKILL');
      await helper.exit;
    }
  });

  // Written once pid 1 is cloned: a failure there fails the run before its pid line, as one before the clone does.
  it('a late file that cannot be written fails the run at `write file`, before the pid line', async () => {
    const dir = await mkdtemp(join(world.base, 'late-file-'));
    const missing = join(dir, 'missing', 'config.json');
    const helper = spawnHelper('run', ['--id', 'late-file', '--write-file-late', missing, '600', '{}', '--', '/bin/sleep', '30'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      context: 'run container late-file',
    });
    await helper.exit;
    assert.ok(helper.failure instanceof HelperError);
    assert.equal(helper.failure.step, 'write file');
    assert.equal(helper.failure.path, missing);
    assert.equal(helper.failure.errnoCode, 'ENOENT');
    assert.deepEqual(
      helper.statuses.map((s) => s.type),
      ['error'],
      'no pid line, no exited line',
    );
  });

  it('a state directory that cannot be made fails the run at `make state`, leaving no .new- directory', async () => {
    const dir = await mkdtemp(join(world.base, 'make-state-'));
    const state = join(dir, 'taken');
    await mkdir(state);
    await writeFile(join(state, 'file'), '');
    const helper = spawnHelper('run', ['--id', 'make-state', '--make-state', state, 'TOKEN', '{}', '--', '/nonexistent'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      context: 'run container make-state',
    });
    await helper.exit;
    assert.ok(helper.failure instanceof HelperError);
    assert.equal(helper.failure.step, 'make state');
    assert.equal(helper.failure.errnoCode, 'ENOTEMPTY');
    assert.deepEqual(await readdir(dir), ['taken']);
    assert.deepEqual(await readdir(state), ['file']);
  });

  // The fork server's `move` request (a removal's last steps): the event first, then each rename, with its errno.
  it("the fork server appends a removal's event and renames in order, reporting each rename's errno", async () => {
    // A run through the server, so that one is up.
    for (let i = 0; i < 2; i++) await (await world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], stdio: 'ignore' })).remove({ force: true });
    const dir = await mkdtemp(join(world.base, 'move-'));
    await mkdir(join(dir, 'a'));
    const file = join(dir, 'events.jsonl');
    const errnos = await moveForked({ file, line: '{"x":1}\n' }, [
      [join(dir, 'a'), join(dir, 'b')],
      [join(dir, 'missing'), join(dir, 'c')],
    ]);
    assert.deepEqual(errnos, [0, 2]);
    assert.deepEqual((await readdir(dir)).sort(), ['b', 'events.jsonl']);
    assert.equal(await readFile(file, 'utf8'), '{"x":1}\n');
  });
});
