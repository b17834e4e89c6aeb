// User namespaces and rootless mode.
//
// - As a real non-root user: the set-up (root) creates a user with /etc/subuid
//   and /etc/subgid ranges and runs rootless-cases.ts as that user in a child
//   process; each of its cases is one test here. Removed in `after`.
// - As root with `userns`: the container's root is an unprivileged host id,
//   while the files it sees and writes keep their ids on disk (idmapped mounts).
import { strict as assert } from 'node:assert';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { ImageStore, InvalidArgumentError, type ImageConfig } from '../../src/index.js';
import type { ContainerSpec } from '../../src/runtime/spec.js';
import { cannotRun, hostMounts, makeWorld, text, type World } from '../fixtures/world.js';
import { CASES } from '../fixtures/rootless-cases.js';

const repo = join(import.meta.dirname, '..', '..');

function hasCommand(name: string): boolean {
  return ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].some((d) => existsSync(join(d, name)));
}

function whyNotUserns(): string | undefined {
  const base = cannotRun();
  if (base !== undefined) return base;
  if (Number(readFileSync('/proc/sys/user/max_user_namespaces', 'utf8')) === 0) return 'user namespaces are disabled (user.max_user_namespaces = 0)';
  return undefined;
}

function whyNotRootless(): string | undefined {
  const base = whyNotUserns();
  if (base !== undefined) return base;
  if (!hasCommand('newuidmap') || !hasCommand('newgidmap')) return 'newuidmap/newgidmap missing: apt-get install -y uidmap';
  if (!hasCommand('useradd') || !hasCommand('userdel')) return 'useradd/userdel missing';
  return undefined;
}

const skipUserns = whyNotUserns();
const skipRootless = whyNotRootless();
if (skipRootless !== undefined) console.log(`# skipping rootless integration tests: ${skipRootless}`);
if (skipUserns !== undefined) console.log(`# skipping user namespace integration tests: ${skipUserns}`);

interface CaseResult {
  name: string;
  ok: boolean;
  error?: string;
}

describe('rootless: the core cases as a real non-root user', { skip: skipRootless }, () => {
  const user = `dl-rootless-${process.pid}`;
  let work: string | undefined;
  let results = new Map<string, CaseResult>();
  let childError = '';

  before(async () => {
    execFileSync('useradd', ['-m', '-s', '/bin/sh', user]);
    const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }));
    const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }));
    // useradd gives new users subordinate ids where /etc/login.defs says so; make sure of it.
    const listed = (file: string) => readFileSync(file, 'utf8').split('\n').some((l) => l.startsWith(`${user}:`));
    if (!listed('/etc/subuid') || !listed('/etc/subgid')) {
      const start = 1_500_000_000 + (process.pid % 1000) * 65536;
      execFileSync('usermod', ['--add-subuids', `${start}-${start + 65535}`, '--add-subgids', `${start}-${start + 65535}`, user]);
    }
    const home = execFileSync('sh', ['-c', `getent passwd ${user} | cut -d: -f6`], { encoding: 'utf8' }).trim();
    work = join(home, 'work');
    const runtimeDir = join(home, 'run');
    for (const dir of [work, runtimeDir]) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      execFileSync('chown', [`${uid}:${gid}`, dir]);
    }
    const child = spawn(process.execPath, ['--import', 'tsx', join(repo, 'test', 'fixtures', 'rootless-cases.ts')], {
      cwd: repo,
      uid,
      gid,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: home,
        USER: user,
        XDG_RUNTIME_DIR: runtimeDir,
        DL_ROOTLESS_WORK: work,
        ...(process.env.DEBUG !== undefined ? { DEBUG: process.env.DEBUG } : {}),
        ...(process.env.DOCKLESS_HELPER !== undefined ? { DOCKLESS_HELPER: process.env.DOCKLESS_HELPER } : {}),
        ...(process.env.DL_ROOTLESS_CASES !== undefined ? { DL_ROOTLESS_CASES: process.env.DL_ROOTLESS_CASES } : {}),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const [out, err, code] = await Promise.all([
      text(child.stdout),
      text(child.stderr),
      new Promise<number | null>((resolve) => child.on('close', resolve)),
    ]);
    childError = `child exited ${code}; stderr:\n${err.slice(-4000)}`;
    if (process.env.DEBUG !== undefined) process.stderr.write(err);
    for (const line of out.split('\n')) {
      if (!line.startsWith('RESULT ')) continue;
      const r = JSON.parse(line.slice(7)) as CaseResult;
      results.set(r.name, r);
    }
  });

  after(() => {
    // userdel -r takes the home directory (with the cases' files) and the /etc/subuid and /etc/subgid entries.
    execFileSync('userdel', ['-r', '-f', user], { stdio: 'ignore' });
    results = new Map();
  });

  const only = process.env.DL_ROOTLESS_CASES;
  for (const c of CASES) {
    const picked = only === undefined || c.name.includes(only);
    it(c.name, { skip: picked ? false : `DL_ROOTLESS_CASES=${only} picks other cases` }, () => {
      const r = results.get(c.name);
      assert.ok(r !== undefined, `the case did not run: ${childError}`);
      assert.ok(r.ok, r.error);
    });
  }
});

describe("userns as root: the container's root is an unprivileged host id", { skip: skipUserns }, () => {
  let world: World;
  let mountsBefore: string[];
  before(async () => {
    world = await makeWorld();
    // mkdtemp's directory is 0700: the state and data directories below it must still work.
    await chmod(world.base, 0o700);
    mountsBefore = await hostMounts();
  });
  after(async () => {
    await world?.dispose();
    assert.deepEqual(await hostMounts(), mountsBefore);
  });

  async function run(spec: Partial<ContainerSpec> & { cmd: string[] }) {
    const c = await world.runtime.create({ rootfs: world.rootfs, userns: 'auto', ...spec });
    const output = Promise.all([text(c.stdout), text(c.stderr)]);
    await c.start();
    const [[stdout, stderr], exit] = await Promise.all([output, c.wait()]);
    return { c, stdout, stderr, exit };
  }

  it("userns: 'auto': uid 0 inside, pid 1 runs as the mapped host uid outside", async () => {
    const c = await world.runtime.run({
      rootfs: world.rootfs,
      userns: 'auto',
      cmd: ['sh', '-c', 'id -u; cat /proc/self/uid_map; read x'],
    });
    const lines: string[] = [];
    let buffered = '';
    await new Promise<void>((resolve) => {
      c.stdout!.on('data', (d: Buffer) => {
        buffered += d.toString();
        if (buffered.split('\n').length > 2) resolve();
      });
    });
    lines.push(...buffered.trim().split('\n'));
    assert.equal(lines[0], '0');
    const [inside, host, size] = lines[1]!.trim().split(/\s+/).map(Number);
    assert.equal(inside, 0);
    assert.equal(size, 65536);
    assert.ok(host! > 65536, `host id ${host}`);
    // From outside: the container's pid 1 (the init) and every id of it is the mapped host id.
    const status = await readFile(`/proc/${c.info().pid}/status`, 'utf8');
    assert.match(status, new RegExp(`^Uid:\\s+${host}\\s+${host}\\s+${host}\\s+${host}$`, 'm'));
    assert.match(status, new RegExp(`^Gid:\\s+${host}\\s+${host}\\s+${host}\\s+${host}$`, 'm'));
    c.stdin!.end('\n');
    assert.equal((await c.wait()).exitCode, 0);
    await c.remove();
  });

  it("the rootfs keeps its ids: the container owns it, and what it writes is stored with the container's ids", async () => {
    const { c, stdout, stderr, exit } = await run({
      cmd: ['sh', '-c', 'ls -ln /etc/passwd /etc/hosts; echo x > /written; chown 1000:1000 /written; echo y >> /etc/hosts && echo hosts-writable'],
    });
    assert.equal(exit.exitCode, 0, stderr);
    assert.match(stdout, /^-rw-r--r-- +1 0 +0 .*\/etc\/hosts\n/m);
    assert.match(stdout, /^-rw-r--r-- +1 0 +0 .*\/etc\/passwd$/m);
    assert.match(stdout, /hosts-writable/);
    const written = await stat(join(world.runtime.pathsOf(c.id).upper, 'written'));
    assert.deepEqual([written.uid, written.gid], [1000, 1000]);
    // The rootfs itself is untouched.
    assert.equal(existsSync(join(world.rootfs, 'written')), false);
    await c.remove();
    assert.equal(existsSync(world.runtime.pathsOf(c.id).bundle), false);
  });

  it('a bind mount from under a 0700 directory of root works: pid 1 opens its source before it becomes the mapped root', async () => {
    const dir = join(world.base, 'shared');
    await mkdir(join(dir, 'sub'), { recursive: true });
    await writeFile(join(dir, 'sub', 'data.txt'), 'shared data\n');
    const { c, stdout, stderr, exit } = await run({
      cmd: ['sh', '-c', 'cat /mnt/shared/sub/data.txt; touch /mnt/shared/x 2>/dev/null || echo read-only'],
      mounts: [{ type: 'bind', source: dir, target: '/mnt/shared', readonly: true }],
    });
    assert.equal(exit.exitCode, 0, stderr);
    assert.equal(stdout, 'shared data\nread-only\n');
    await c.remove();
  });

  it('a device node that came with the rootfs cannot be used (nodev); /dev/null can', async () => {
    execFileSync('mknod', ['-m', '666', join(world.rootfs, 'null2'), 'c', '1', '3']);
    try {
      const { c, stdout, exit } = await run({ cmd: ['sh', '-c', 'echo x > /dev/null && echo null-ok; echo x > /null2 || echo null2-refused'] });
      assert.equal(exit.exitCode, 0);
      assert.equal(stdout, 'null-ok\nnull2-refused\n');
      await c.remove();
    } finally {
      await rm(join(world.rootfs, 'null2'));
    }
  });

  it('explicit maps are applied as given; an unmapped user is an InvalidArgumentError', async () => {
    const userns = {
      uidMap: [{ containerId: 0, hostId: 1_300_000_000, size: 2000 }],
      gidMap: [{ containerId: 0, hostId: 1_300_000_000, size: 2000 }],
    };
    const { c, stdout, exit } = await run({ cmd: ['sh', '-c', 'cat /proc/self/uid_map; id -u'], userns, user: '1000' });
    assert.equal(exit.exitCode, 0);
    assert.deepEqual(stdout.trim().split(/\s+/).map(Number), [0, 1_300_000_000, 2000, 1000]);
    await c.remove();
    await assert.rejects(world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], userns, user: '65534' }), InvalidArgumentError);
    await assert.rejects(
      world.runtime.run({ rootfs: world.rootfs, cmd: ['true'], userns: { uidMap: [{ containerId: 1, hostId: 5, size: 1 }], gidMap: [] } }),
      InvalidArgumentError,
    );
  });

  it('the default security profile holds in a user namespace', async () => {
    for (const [args, want] of [
      [['mount', 'tmpfs', '/mnt'], 'EPERM'],
      [['unshare-user'], 'EPERM'],
      [['mknod', '/tmp/sda', 'b', '8', '0'], 'EPERM'],
      [['sethostname', 'other'], 'EPERM'],
    ] as const) {
      const { c, stdout, stderr } = await run({ cmd: ['probe', ...args] });
      assert.equal((stdout || stderr).trim(), want, `probe ${args.join(' ')}`);
      await c.remove();
    }
  });

  it('an image runs in a user namespace: snapshots are shared, whiteouts apply, its User is mapped', async () => {
    const store = await ImageStore.open({ root: join(world.base, 'store') });
    const { Runtime } = await import('../../src/index.js');
    const runtime = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir, store });
    const layer = async (dir: string) => {
      const tar = execFileSync('tar', ['-C', dir, '--numeric-owner', '-cf', '-', '.'], { maxBuffer: 1 << 30 });
      const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
      const descriptor = await store.putBlob(gzipSync(tar), { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' });
      return { descriptor, diffId };
    };
    const top = await mkdtemp(join(tmpdir(), 'dl-userns-top-'));
    try {
      // The layer's `./` entry is the container's `/`: 0755 as in any image, not mkdtemp's 0700.
      await chmod(top, 0o755);
      await mkdir(join(top, 'bin'));
      await mkdir(join(top, 'etc'));
      await writeFile(join(top, 'bin', '.wh.cat'), '');
      await writeFile(join(top, 'etc', '.wh..wh..opq'), '');
      await writeFile(join(top, 'etc', 'only'), 'x\n');
      const layers = [await layer(world.rootfs), await layer(top)];
      const config = {
        architecture: 'amd64',
        os: 'linux',
        config: {
          Env: ['PATH=/bin'],
          Cmd: ['sh', '-c', 'cat /etc/only; test -e /etc/passwd && echo passwd || echo no-passwd; test -e /bin/cat && echo cat || echo no-cat; id -u'],
          User: 'nobody',
        },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      } as ImageConfig;
      const manifest = await store.putImage({ config, layers });
      await store.tag(manifest.digest, 'example.test/userns:1');
      for (const userns of ['auto' as const, undefined]) {
        const c = await runtime.create({ image: 'example.test/userns:1', ...(userns ? { userns } : {}) });
        const out = text(c.stdout);
        await c.start();
        const [stdout, exit] = await Promise.all([out, c.wait()]);
        assert.equal(exit.exitCode, 0, stdout);
        assert.equal(stdout, 'x\nno-passwd\nno-cat\n65534\n', `userns ${userns}`);
        await c.remove();
      }
    } finally {
      await rm(top, { recursive: true, force: true });
    }
  });
});
