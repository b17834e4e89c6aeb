// dockless-runtime as its real clients drive it: runc's create/start/state/
// exec/kill/delete sequence on a bundle, and podman with `--runtime` pointing at
// the package's bin, and containerd's runc v2 shim with it as its runc binary.
// The bundle's rootfs is a static busybox.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';

// The package's bin: the launcher, which runs the native front end built in place (npm install puts that front end there itself).
const BIN = resolve('dist/bin/dockless-runtime');
const NODE_FRONT = resolve('dist/bundle/runtime.js');
const NATIVE = resolve('native/build/dockless-runtime');
const BUSYBOX = '/bin/busybox';
const PODMAN = '/usr/bin/podman';
const CONTAINERD = '/usr/bin/containerd';
const IMAGE = `localhost/dockless-oci-test-${process.pid}`;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

interface RunAs {
  uid: number;
  gid: number;
  cwd: string;
}

function run(cmd: string, args: readonly string[], timeoutMs = 60_000, env?: NodeJS.ProcessEnv, as?: RunAs): Promise<Result> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(env !== undefined ? { env } : {}), ...(as ?? {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    // Not 'close': a created container's process holds the pipes it inherited (as with runc).
    child.on('exit', (code) => {
      clearTimeout(timer);
      const done = () => resolvePromise({ code: code ?? -1, stdout, stderr });
      const grace = setTimeout(done, 200);
      child.on('close', () => (clearTimeout(grace), done()));
    });
  });
}

const missing =
  process.getuid?.() !== 0
    ? 'needs root'
    : !existsSync(BIN) || !existsSync(NATIVE)
      ? 'needs `npm run build` (dist/bin/dockless-runtime)'
      : !existsSync(BUSYBOX)
        ? 'needs busybox-static'
        : undefined;

let base = '';
let root = '';
let rootfs = '';

async function bundle(name: string, edit: (c: Record<string, any>) => void): Promise<string> {
  const dir = join(base, name);
  await mkdir(dir);
  const r = await run(BIN, ['spec', '--bundle', dir]);
  assert.equal(r.code, 0, r.stderr);
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
  config.root.path = rootfs;
  config.process.terminal = false;
  edit(config);
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

const rt = (...args: string[]) => run(BIN, ['--root', root, ...args]);
const nodeRt = (...args: string[]) => run(process.execPath, [NODE_FRONT, '--root', root, ...args]);
// The native front end alone: a command it handed to Node would fail.
const nativeRt = (...args: string[]) => run(NATIVE, ['--root', root, ...args], 60_000, { ...process.env, DOCKLESS_RUNTIME_NODE: '/bin/false' });

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('dockless-runtime', { skip: missing }, () => {
  before(async () => {
    if (missing !== undefined) return;
    base = await mkdtemp(join(tmpdir(), 'dockless-oci-'));
    // The user namespace case's root (a host id of the mappings) must reach the rootfs, as with runc.
    await chmod(base, 0o755);
    root = join(base, 'state');
    rootfs = join(base, 'rootfs');
    await mkdir(join(rootfs, 'bin'), { recursive: true });
    await copyFile(BUSYBOX, join(rootfs, 'bin', 'busybox'));
    for (const applet of ['sh', 'echo', 'cat', 'sleep', 'id', 'hostname', 'ps', 'ls', 'tty']) await symlink('busybox', join(rootfs, 'bin', applet));
    // Mount points exist, as in any image: a user namespace's root may not create them in a root-owned rootfs.
    for (const d of ['tmp', 'proc', 'dev', 'sys']) await mkdir(join(rootfs, d));
  });
  after(async () => {
    if (missing !== undefined) return;
    for (const id of ['life', 'refused', 'hooked', 'userns', 'upd', 'twin', 'twin2', 'posthooks', 'ev', 'starthook', 'badhook', 'order', 'badcreate', 'warnhooks', 'failrt', 'conf', 'stdinhook']) await rt('delete', '--force', id);
    await rm(base, { recursive: true, force: true });
  });

  it('create leaves pid 1 blocked and no helper behind; start, exec, kill, delete follow runc', async () => {
    const dir = await bundle('life', (c) => {
      c.process.args = ['sh', '-c', 'echo started > /tmp/mark; exec sleep 60'];
      c.root.readonly = false;
    });
    const pidFile = join(base, 'life.pid');
    const created = await rt('create', '--bundle', dir, '--pid-file', pidFile, 'life');
    assert.equal(created.code, 0, created.stderr);
    const pid = Number(await readFile(pidFile, 'utf8'));
    let state = JSON.parse((await rt('state', 'life')).stdout);
    assert.equal(state.status, 'created');
    assert.equal(state.pid, pid);
    assert.equal(state.bundle, dir);
    // The runc model: the helper is gone, pid 1 was reparented (to init or the caller's subreaper).
    const ppid = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
    assert.notEqual(readFileSync(`/proc/${ppid}/comm`, 'utf8').trim(), 'dockless-helpe');
    assert.equal(existsSync(join(rootfs, 'tmp', 'mark')), false, 'the process ran before start');

    assert.equal((await rt('start', 'life')).code, 0);
    await waitFor(async () => existsSync(join(rootfs, 'tmp', 'mark')), 'the process to run');
    state = JSON.parse((await rt('state', 'life')).stdout);
    assert.equal(state.status, 'running');
    const exec = await rt('exec', 'life', 'sh', '-c', 'hostname; id -u; exit 3');
    assert.equal(exec.code, 3, exec.stderr);
    assert.equal(exec.stdout, 'runc\n0\n');
    const ps = JSON.parse((await rt('ps', '--format', 'json', 'life')).stdout);
    assert.ok(ps.includes(pid));
    assert.equal((await rt('delete', 'life')).code, 1, 'a running container is not deleted without --force');

    assert.equal((await rt('kill', 'life', 'KILL')).code, 0);
    await waitFor(async () => JSON.parse((await rt('state', 'life')).stdout).status === 'stopped', 'stopped');
    const cgroups: { dir: string }[] = JSON.parse(await readFile(join(root, 'life', 'state.json'), 'utf8')).cgroups;
    assert.equal((await rt('delete', 'life')).code, 0);
    assert.equal(existsSync(join(root, 'life')), false);
    for (const c of cgroups) assert.equal(existsSync(c.dir), false, `cgroup ${c.dir} left behind`);
    assert.equal((await rt('state', 'life')).code, 1);
  });

  it('runtime-spec operations: state fields, a taken id, start and kill in the wrong state, kill of a created container, the id free again after delete', async () => {
    // The OCI validation suite cannot be built here (its Go sources and TAP library are not packaged): these are its MUSTs on the operations, written from runtime.md.
    const dir = await bundle('conf', (c) => (c.process.args = ['sleep', '60']));
    assert.equal((await rt('state', 'conf')).code, 1, 'state of an unknown id must fail');
    assert.equal((await rt('create', '--bundle', dir, 'conf')).code, 0);
    const state = JSON.parse((await rt('state', 'conf')).stdout);
    assert.deepEqual(Object.keys(state).filter((k) => ['ociVersion', 'id', 'status', 'pid', 'bundle'].includes(k)).sort(), ['bundle', 'id', 'ociVersion', 'pid', 'status']);
    assert.deepEqual([state.id, state.status, state.bundle], ['conf', 'created', dir]);
    assert.ok(state.pid > 0);
    const again = await rt('create', '--bundle', dir, 'conf');
    assert.equal(again.code, 1, 'create with a taken id must fail');
    assert.equal(JSON.parse((await rt('state', 'conf')).stdout).pid, state.pid, 'the failed create changed the container');
    // kill of a created container signals its process.
    assert.equal((await rt('kill', 'conf', 'KILL')).code, 0);
    await waitFor(async () => JSON.parse((await rt('state', 'conf')).stdout).status === 'stopped', 'stopped');
    assert.equal((await rt('start', 'conf')).code, 1, 'start of a stopped container must fail');
    assert.equal((await rt('kill', 'conf', 'TERM')).code, 1, 'kill of a stopped container must fail');
    assert.equal((await rt('delete', 'conf')).code, 0);
    assert.equal((await rt('state', 'conf')).code, 1);
    // The id is free again; start of a running container fails and leaves it running.
    assert.equal((await rt('create', '--bundle', dir, 'conf')).code, 0);
    assert.equal((await rt('start', 'conf')).code, 0);
    assert.equal((await rt('start', 'conf')).code, 1, 'start of a running container must fail');
    assert.equal(JSON.parse((await rt('state', 'conf')).stdout).status, 'running');
    assert.equal((await rt('delete', 'conf')).code, 1, 'delete of a running container must fail');
    assert.equal(JSON.parse((await rt('state', 'conf')).stdout).status, 'running');
    assert.equal((await rt('kill', 'conf', '9')).code, 0);
    await waitFor(async () => JSON.parse((await rt('state', 'conf')).stdout).status === 'stopped', 'stopped');
    assert.equal((await rt('delete', 'conf')).code, 0);
  });

  it('the native front end runs state, start, kill, list and delete itself, printing what the Node front end prints byte for byte', async () => {
    // The JSON that podman and containerd parse must not change with the front end that printed it.
    const dir = await bundle('twin', (c) => {
      c.process.args = ['sleep', '60'];
      c.annotations = { 'org.example/a': 'b', quote: 'x"y\\z', empty: '' };
    });
    const noAnnotations = await bundle('twin2', (c) => (c.process.args = ['sleep', '60']));
    assert.equal((await rt('create', '--bundle', dir, 'twin')).code, 0);
    assert.equal((await rt('create', '--bundle', noAnnotations, 'twin2')).code, 0);
    const same = async (...args: string[]) => {
      const [n, j] = [await nativeRt(...args), await nodeRt(...args)];
      assert.equal(n.code, j.code, `${args.join(' ')}: ${n.stderr}`);
      assert.equal(n.stdout, j.stdout, args.join(' '));
      assert.equal(n.stderr, j.stderr, args.join(' '));
      return n;
    };
    const listings = async () => {
      for (const format of [[], ['--format', 'json'], ['-f', 'table'], ['-q']]) await same('list', ...format);
    };
    assert.equal(JSON.parse((await same('state', 'twin')).stdout).status, 'created');
    assert.deepEqual(JSON.parse((await same('features')).stdout).hooks.length, 6);
    await same('state', 'twin2');
    await listings();
    assert.equal((await nativeRt('start', 'twin')).code, 0);
    assert.equal(JSON.parse((await same('state', 'twin')).stdout).status, 'running');
    await same('start', 'twin');
    // What the containerd shim runs for `ctr task ps`.
    assert.ok(JSON.parse((await same('ps', '--format', 'json', 'twin')).stdout).includes(JSON.parse((await nativeRt('state', 'twin')).stdout).pid));
    await listings();
    assert.equal((await nativeRt('pause', 'twin')).code, 0);
    assert.equal(JSON.parse((await same('state', 'twin')).stdout).status, 'paused');
    assert.equal((await nativeRt('resume', 'twin')).code, 0);
    await same('delete', 'twin');
    assert.equal((await nativeRt('kill', 'twin', 'KILL')).code, 0);
    await waitFor(async () => JSON.parse((await nativeRt('state', 'twin')).stdout).status === 'stopped', 'stopped');
    await same('state', 'twin');
    await same('kill', 'twin');
    assert.equal((await same('ps', '-f', 'json', 'twin')).stdout, '[]\n');
    await listings();
    const cgroups: { dir: string }[] = JSON.parse(await readFile(join(root, 'twin', 'state.json'), 'utf8')).cgroups;
    assert.equal((await nativeRt('delete', 'twin')).code, 0);
    for (const c of cgroups) assert.equal(existsSync(c.dir), false, `cgroup ${c.dir} left behind`);
    assert.equal(existsSync(join(root, 'twin')), false);
    await same('state', 'twin');
    assert.equal((await nativeRt('delete', '--force', 'twin')).code, 0, 'forcing the deletion of a gone container is no error');
    // A record without native-state (written by a version before the native front end) is Node's to read.
    const pid = JSON.parse((await nativeRt('state', 'twin2')).stdout).pid as number;
    await rm(join(root, 'twin2', 'native-state'));
    assert.equal((await nativeRt('state', 'twin2')).code, 1, 'the native front end read a record it does not know');
    assert.equal((await rt('state', 'twin2')).stdout, (await nodeRt('state', 'twin2')).stdout);
    // A created container's forced delete kills its pid 1 first.
    assert.equal((await rt('delete', '--force', 'twin2')).code, 0);
    assert.equal(existsSync(join(root, 'twin2')), false);
    assert.equal(existsSync(`/proc/${pid}/cmdline`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z'), false, 'pid 1 survived delete --force');
    // Errors in the log as the shim reads them.
    const log = join(base, 'twin.log');
    const gone = await run(NATIVE, ['--root', root, '--log', log, '--log-format', 'json', 'kill', 'twin', 'TERM']);
    assert.equal(gone.code, 1);
    assert.equal(gone.stderr, 'dockless-runtime: container `twin` does not exist\n');
    assert.equal(JSON.parse(await readFile(log, 'utf8')).msg, 'container `twin` does not exist');
  });

  it('with poststart and poststop hooks, the native front end hands start and delete to Node, which runs them', async () => {
    const out = join(base, 'posthooks-out');
    await mkdir(out);
    const hook = (kind: string) => ({ path: '/bin/sh', args: ['sh', '-c', `cat > ${out}/${kind}`], timeout: 10 });
    const dir = await bundle('posthooks', (c) => {
      c.process.args = ['sleep', '60'];
      c.hooks = { poststart: [hook('poststart')], poststop: [hook('poststop')] };
    });
    assert.equal((await rt('create', '--bundle', dir, 'posthooks')).code, 0);
    assert.equal((await nativeRt('start', 'posthooks')).code, 1, 'the native front end ran start without the hook');
    assert.equal((await rt('start', 'posthooks')).code, 0);
    assert.equal(JSON.parse(await readFile(join(out, 'poststart'), 'utf8')).status, 'running');
    assert.equal((await rt('kill', 'posthooks', 'KILL')).code, 0);
    await waitFor(async () => JSON.parse((await rt('state', 'posthooks')).stdout).status === 'stopped', 'stopped');
    assert.equal((await rt('delete', 'posthooks')).code, 0);
    assert.equal(JSON.parse(await readFile(join(out, 'poststop'), 'utf8')).status, 'stopped');
  });

  it('events --stats prints runc\'s stats JSON from the container\'s cgroups; events streams them until it stops', async () => {
    const dir = await bundle('ev', (c) => {
      // Some CPU time first, so that the figures are not all zero.
      c.process.args = ['sh', '-c', 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 60'];
      c.linux.resources = { ...c.linux.resources, memory: { limit: 64 * 1024 * 1024 }, pids: { limit: 50 } };
    });
    assert.equal((await rt('create', '--bundle', dir, 'ev')).code, 0);
    assert.equal((await rt('start', 'ev')).code, 0);
    await new Promise((r) => setTimeout(r, 300));
    const once = await rt('events', '--stats', 'ev');
    assert.equal(once.code, 0, once.stderr);
    assert.equal(once.stdout.split('\n').length, 2, 'one line');
    const event = JSON.parse(once.stdout);
    assert.equal(event.type, 'stats');
    assert.equal(event.id, 'ev');
    assert.equal(event.data.memory.usage.limit, 64 * 1024 * 1024);
    assert.ok(event.data.memory.usage.usage > 0);
    assert.ok(event.data.pids.current >= 1);
    assert.equal(event.data.pids.limit, 50);
    assert.ok(event.data.cpu.usage.total > 0);
    assert.equal(typeof event.data.cpu.usage.kernel, 'number');
    assert.equal(typeof event.data.blkio, 'object');

    const stream = spawn(BIN, ['--root', root, 'events', '--interval', '100ms', 'ev'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let lines = '';
    stream.stdout.on('data', (d: Buffer) => (lines += d.toString()));
    const ended = new Promise<number | null>((r) => stream.on('exit', (code) => r(code)));
    try {
      await waitFor(async () => lines.split('\n').length > 3, 'three stats lines');
      assert.equal((await rt('kill', 'ev', 'KILL')).code, 0);
      assert.equal(await ended, 0, 'events ends with the container');
    } finally {
      stream.kill('SIGKILL');
    }
    for (const line of lines.trim().split('\n')) assert.equal(JSON.parse(line).type, 'stats');
    assert.equal((await rt('events', '--stats', 'ev')).code, 1, 'a stopped container has no stats');
    assert.equal((await rt('delete', 'ev')).code, 0);
  });

  it('startContainer hooks run inside the created container before its process, with the state on stdin; a failing one fails start', async () => {
    const dir = await bundle('starthook', (c) => {
      c.root.readonly = false;
      c.hostname = 'inside';
      // The path resolves in the container's root: this is the container's sh, and /tmp its /tmp.
      c.hooks = { startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'cat > /tmp/hook-state; hostname > /tmp/hook-host'], timeout: 10 }] };
      c.process.args = ['sh', '-c', 'test -s /tmp/hook-state && echo before > /tmp/order; exec sleep 60'];
    });
    assert.equal((await rt('create', '--bundle', dir, 'starthook')).code, 0);
    assert.equal(existsSync(join(rootfs, 'tmp', 'hook-state')), false, 'the hook ran at create');
    const started = await rt('start', 'starthook');
    assert.equal(started.code, 0, started.stderr);
    await waitFor(async () => existsSync(join(rootfs, 'tmp', 'order')), 'the process to run');
    const state = JSON.parse(await readFile(join(rootfs, 'tmp', 'hook-state'), 'utf8'));
    assert.equal(state.id, 'starthook');
    assert.equal(state.status, 'created');
    assert.equal((await readFile(join(rootfs, 'tmp', 'hook-host'), 'utf8')).trim(), 'inside', 'the hook is not in the container\'s uts namespace');
    assert.equal((await readFile(join(rootfs, 'tmp', 'order'), 'utf8')).trim(), 'before');
    assert.equal((await rt('delete', '--force', 'starthook')).code, 0);
    for (const f of ['hook-state', 'hook-host', 'order']) await rm(join(rootfs, 'tmp', f), { force: true });

    const bad = await bundle('badhook', (c) => {
      c.hooks = { startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'exit 3'] }] };
      c.process.args = ['sh', '-c', 'echo ran > /tmp/badhook-ran'];
      c.root.readonly = false;
    });
    assert.equal((await rt('create', '--bundle', bad, 'badhook')).code, 0);
    const refused = await rt('start', 'badhook');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /hooks\.startContainer\[0\]: `\/bin\/sh` failed: exit code 3/);
    assert.equal(existsSync(join(rootfs, 'tmp', 'badhook-ran')), false, 'the process ran after its startContainer hook failed');
    // The runtime-spec: a failed startContainer hook stops the container.
    await waitFor(async () => JSON.parse((await rt('state', 'badhook')).stdout).status === 'stopped', 'the container to stop');
    assert.equal((await rt('delete', '--force', 'badhook')).code, 0);
  });

  it('update writes runc flags and -r JSON into the running container\'s cgroups; a bad value fails naming it', async () => {
    const dir = await bundle('upd', (c) => {
      c.process.args = ['sleep', '60'];
      c.linux.resources = { ...c.linux.resources, memory: { limit: 64 * 1024 * 1024 } };
    });
    assert.equal((await rt('create', '--bundle', dir, 'upd')).code, 0);
    assert.equal((await rt('start', 'upd')).code, 0);
    const cgroups: { dir: string; controllers: string[] }[] = JSON.parse(await readFile(join(root, 'upd', 'state.json'), 'utf8')).cgroups;
    const file = async (controller: string, v1: string, v2: string) => {
      const c = cgroups.find((x) => x.controllers.includes(controller))!;
      return (await readFile(join(c.dir, c.dir.includes('/unified/') ? v2 : v1), 'utf8')).trim();
    };
    const flags = await rt('update', '--memory', '128m', '--pids-limit', '20', '--cpu-quota', '50000', '--cpu-period', '100000', 'upd');
    assert.equal(flags.code, 0, flags.stderr);
    assert.equal(await file('memory', 'memory.limit_in_bytes', 'memory.max'), String(128 * 1024 * 1024));
    assert.equal(await file('pids', 'pids.max', 'pids.max'), '20');
    assert.match(await file('cpu', 'cpu.cfs_quota_us', 'cpu.max'), /^50000\b/);
    const json = join(base, 'upd-resources.json');
    await writeFile(json, JSON.stringify({ memory: { limit: 96 * 1024 * 1024 }, pids: { limit: 12 } }));
    const r = await rt('update', '-r', json, 'upd');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await file('memory', 'memory.limit_in_bytes', 'memory.max'), String(96 * 1024 * 1024));
    assert.equal(await file('pids', 'pids.max', 'pids.max'), '12');
    const bad = await rt('update', '--memory', '1k', 'upd');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /resources\.memory must be/);
    assert.equal(await file('memory', 'memory.limit_in_bytes', 'memory.max'), String(96 * 1024 * 1024));
    assert.equal((await rt('delete', '--force', 'upd')).code, 0);
  });

  it('hooks run at the runtime-spec\'s points: prestart and createRuntime in the host\'s mount namespace, createContainer in the container\'s before pivot_root, then startContainer and poststart', async () => {
    // createContainer hooks were refused and createRuntime ran after pivot_root: the helper set the container up in one go.
    const out = join(base, 'order-out');
    await mkdir(out);
    const log = join(out, 'log');
    const target = join(root, 'order', 'rootfs');
    // bash is the host's (the rootfs has none): the path resolves on the host, as the spec says.
    const hook = (kind: string) => ({
      path: '/bin/bash',
      args: ['bash', '-c', `echo ${kind} $(readlink /proc/self/ns/mnt) $(test -e ${target}/bin/busybox && echo root-mounted) >> ${log}; cat > ${out}/${kind}.state`],
      timeout: 10,
    });
    const dir = await bundle('order', (c) => {
      c.process.args = ['sh', '-c', 'echo process >> /hooklog/log; exec sleep 60'];
      c.mounts.push({ destination: '/hooklog', type: 'bind', source: out, options: ['rbind'] });
      c.hooks = {
        prestart: [hook('prestart')],
        createRuntime: [hook('createRuntime')],
        createContainer: [hook('createContainer')],
        startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'test -e /bin/bash || echo startContainer >> /hooklog/log'] }],
        poststart: [hook('poststart')],
      };
    });
    const created = await rt('create', '--bundle', dir, 'order');
    assert.equal(created.code, 0, created.stderr);
    const pid = JSON.parse((await rt('state', 'order')).stdout).pid as number;
    const hostMnt = execFileSync('readlink', ['/proc/self/ns/mnt'], { encoding: 'utf8' }).trim();
    const containerMnt = execFileSync('readlink', [`/proc/${pid}/ns/mnt`], { encoding: 'utf8' }).trim();
    assert.notEqual(hostMnt, containerMnt);
    const lines = async () => (await readFile(log, 'utf8')).trim().split('\n').map((l) => l.trim());
    assert.deepEqual(await lines(), [`prestart ${hostMnt}`, `createRuntime ${hostMnt}`, `createContainer ${containerMnt} root-mounted`]);
    for (const kind of ['prestart', 'createRuntime', 'createContainer']) {
      const state = JSON.parse(await readFile(join(out, `${kind}.state`), 'utf8'));
      assert.deepEqual([state.id, state.status, state.pid], ['order', 'creating', pid], kind);
    }
    assert.equal((await rt('start', 'order')).code, 0);
    await waitFor(async () => (await lines()).includes('process'), 'the process to run');
    const after = await lines();
    assert.equal(after[3], 'startContainer');
    assert.ok(after.indexOf('process') > 3 && after.some((l) => l.startsWith(`poststart ${hostMnt}`)), after.join('\n'));
    assert.equal((await rt('delete', '--force', 'order')).code, 0);
  });

  it('a createContainer hook that does not read a state larger than a pipe is still killed at its timeout', async () => {
    // pid 1 wrote the whole state to the hook's stdin before its timeout began: a hook that read nothing held create for as long as it liked.
    const dir = await bundle('stdinhook', (c) => {
      c.process.args = ['sleep', '60'];
      c.annotations = { big: 'x'.repeat(256 * 1024) };
      c.hooks = { createContainer: [{ path: '/bin/sleep', args: ['sleep', '30'], timeout: 1 }] };
    });
    const created = await rt('create', '--bundle', dir, 'stdinhook');
    assert.notEqual(created.code, 0, 'create waited for the hook past its timeout');
    assert.match(created.stderr, /hooks\.createContainer\[0\]: `\/bin\/sleep` failed: killed after its timeout of 1 s/);
  });

  it('failed poststart and poststop hooks are warnings and the next hooks run; a failed createRuntime hook destroys the container, then runs poststop', async () => {
    // The runtime-spec's lifecycle: a failing poststart hook failed start (and skipped the next ones), a failing poststop hook skipped the next ones, and create's failures ran no poststop.
    const out = join(base, 'warn-out');
    await mkdir(out);
    const fail = { path: '/bin/sh', args: ['sh', '-c', 'echo broken >&2; exit 5'] };
    const mark = (name: string) => ({ path: '/bin/sh', args: ['sh', '-c', `cat > ${out}/${name}`] });
    const dir = await bundle('warnhooks', (c) => {
      c.process.args = ['sleep', '60'];
      c.hooks = { poststart: [fail, mark('poststart')], poststop: [fail, mark('poststop')] };
    });
    assert.equal((await rt('create', '--bundle', dir, 'warnhooks')).code, 0);
    const started = await rt('start', 'warnhooks');
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.stderr, /warning: hooks\.poststart\[0\]: `\/bin\/sh` failed: exit code 5: broken/);
    assert.equal(JSON.parse(await readFile(join(out, 'poststart'), 'utf8')).status, 'running');
    assert.equal(JSON.parse((await rt('state', 'warnhooks')).stdout).status, 'running');
    const deleted = await rt('delete', '--force', 'warnhooks');
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.match(deleted.stderr, /warning: hooks\.poststop\[0\]/);
    assert.equal(JSON.parse(await readFile(join(out, 'poststop'), 'utf8')).status, 'stopped');

    const failing = await bundle('failrt', (c) => {
      c.hooks = { createRuntime: [fail], poststop: [mark('failrt-poststop')] };
    });
    const r = await rt('create', '--bundle', failing, 'failrt');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /hooks\.createRuntime\[0\]: `\/bin\/sh` failed: exit code 5/);
    assert.equal(existsSync(join(root, 'failrt')), false);
    const poststop = JSON.parse(await readFile(join(out, 'failrt-poststop'), 'utf8'));
    assert.deepEqual([poststop.id, poststop.status], ['failrt', 'stopped']);
  });

  it('a failing createContainer hook fails create with its name and leaves nothing', async () => {
    const dir = await bundle('badcreate', (c) => {
      c.hooks = { createContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'exit 3'] }] };
    });
    const r = await rt('create', '--bundle', dir, 'badcreate');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /hooks\.createContainer\[0\]: `\/bin\/sh` failed: exit code 3/);
    assert.equal(existsSync(join(root, 'badcreate')), false);
  });

  it('runs createRuntime, poststart and poststop hooks with the state on stdin', async () => {
    const out = join(base, 'hooks');
    await mkdir(out);
    const hook = (kind: string) => ({ path: '/bin/sh', args: ['sh', '-c', `cat > ${out}/${kind}`], timeout: 10 });
    const dir = await bundle('hooked', (c) => {
      c.process.args = ['sh', '-c', 'exit 0'];
      c.hooks = { createRuntime: [hook('createRuntime')], poststart: [hook('poststart')], poststop: [hook('poststop')] };
    });
    const r = await rt('run', '--bundle', dir, 'hooked');
    assert.equal(r.code, 0, r.stderr);
    const created = JSON.parse(await readFile(join(out, 'createRuntime'), 'utf8'));
    assert.equal(created.id, 'hooked');
    assert.equal(created.status, 'creating');
    assert.ok(created.pid > 0);
    assert.equal(JSON.parse(await readFile(join(out, 'poststart'), 'utf8')).id, 'hooked');
    assert.equal(JSON.parse(await readFile(join(out, 'poststop'), 'utf8')).status, 'stopped');
  });

  it('a user namespace from linux.uidMappings/gidMappings, with the host\'s device nodes bound', async () => {
    const dir = await bundle('userns', (c) => {
      c.process.args = ['sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map; id -u; echo > /dev/null && echo null-ok'];
      c.linux.namespaces.push({ type: 'user' });
      c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      c.linux.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
    });
    const r = await rt('run', '--bundle', dir, 'userns');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\s*0\s+100000\s+65536\n\s*0\s+200000\s+65536\n0\nnull-ok\n$/);
  });

  it('a field it cannot honour fails create, names the field in the json log, and leaves nothing', async () => {
    const dir = await bundle('refused', (c) => (c.process.apparmorProfile = 'docker-default'));
    const log = join(base, 'refused.log');
    const r = await run(BIN, ['--root', root, '--log', log, '--log-format', 'json', 'create', '--bundle', dir, 'refused']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /`process\.apparmorProfile`: AppArmor is not supported/);
    const line = JSON.parse((await readFile(log, 'utf8')).trim().split('\n').at(-1)!);
    assert.equal(line.level, 'error');
    assert.match(line.msg, /process\.apparmorProfile/);
    assert.equal(existsSync(join(root, 'refused')), false);
  });

  describe('through podman --runtime', { skip: !existsSync(PODMAN) ? 'needs podman' : undefined }, () => {
    const podman = (...args: string[]) =>
      run(PODMAN, ['--runtime', BIN, '--cgroup-manager=cgroupfs', ...args], 120_000);
    // No CAP_SYS_RESOURCE here: podman's default rlimits would be above the hard limits this process has.
    const ulimits = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];
    const name = `dockless-oci-${process.pid}`;

    before(async () => {
      if (missing !== undefined || !existsSync(PODMAN)) return;
      const tar = join(base, 'rootfs.tar');
      assert.equal((await run('tar', ['-C', rootfs, '-cf', tar, '.'])).code, 0);
      const imported = await podman('import', tar, IMAGE);
      assert.equal(imported.code, 0, imported.stderr);
    });
    after(async () => {
      if (missing !== undefined || !existsSync(PODMAN)) return;
      await podman('rm', '-f', '-t', '0', name);
      await podman('rmi', '-f', IMAGE);
    });

    it('run --rm echo', async () => {
      const r = await podman('run', '--rm', ...ulimits, IMAGE, 'echo', 'hi');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'hi\n');
      // containers.conf's default_sysctls, written in the container's own network namespace.
      const sysctl = await podman('run', '--rm', ...ulimits, '--sysctl', 'net.ipv4.ping_group_range=0 7', IMAGE, 'cat', '/proc/sys/net/ipv4/ping_group_range');
      assert.equal(sysctl.code, 0, sysctl.stderr);
      assert.match(sysctl.stdout, /^0\s+7\n$/);
      const code = await podman('run', '--rm', ...ulimits, IMAGE, 'sh', '-c', 'exit 7');
      assert.equal(code.code, 7);
    });

    it('run -d, exec, ps, logs, stop, rm', async () => {
      const started = await podman('run', '-d', '--name', name, ...ulimits, IMAGE, 'sh', '-c', 'echo up; exec sleep 100');
      assert.equal(started.code, 0, started.stderr);
      const exec = await podman('exec', name, 'sh', '-c', 'echo from exec; hostname');
      assert.equal(exec.code, 0, exec.stderr);
      assert.match(exec.stdout, /^from exec\n/);
      const ps = await podman('ps', '--filter', `name=${name}`, '--format', '{{.Names}} {{.Status}}');
      assert.match(ps.stdout, new RegExp(`^${name} Up`));
      await waitFor(async () => (await podman('logs', name)).stdout === 'up\n', 'the log line');
      const stopped = await podman('stop', '-t', '1', name);
      assert.equal(stopped.code, 0, stopped.stderr);
      const removed = await podman('rm', name);
      assert.equal(removed.code, 0, removed.stderr);
    });

    it('pod create, then two containers of the pod in the infra container\'s network, uts and ipc namespaces', async () => {
      // Pods were untested with this runtime: their containers join the infra container's namespaces by path.
      const pod = `${name}-pod`;
      const infra = `${IMAGE}-infra`;
      // The infra container takes containers.conf's ulimits (pod create has no --ulimit); podman's default is above this process's hard limit.
      const conf = join(base, 'containers.conf');
      await writeFile(conf, '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n');
      const env = { ...process.env, CONTAINERS_CONF: conf };
      const podmanConf = (...args: string[]) => run(PODMAN, ['--runtime', BIN, '--cgroup-manager=cgroupfs', ...args], 120_000, env);
      const tar = join(base, 'rootfs.tar');
      try {
        assert.equal((await podmanConf('import', '--change', 'ENTRYPOINT ["sleep","1000"]', tar, infra)).code, 0);
        const created = await podmanConf('pod', 'create', '--name', pod, '--infra-image', infra);
        assert.equal(created.code, 0, created.stderr);
        const nsOf = 'for n in net uts ipc mnt; do readlink /proc/self/ns/$n; done; hostname';
        const a = await podmanConf('run', '-d', '--pod', pod, '--name', `${pod}-a`, IMAGE, 'sh', '-c', `${nsOf}; exec sleep 1000`);
        assert.equal(a.code, 0, a.stderr);
        const b = await podmanConf('run', '--rm', '--pod', pod, IMAGE, 'sh', '-c', nsOf);
        assert.equal(b.code, 0, b.stderr);
        await waitFor(async () => (await podmanConf('logs', `${pod}-a`)).stdout.split('\n').length > 5, 'the first container\'s lines');
        const [netA, utsA, ipcA, mntA, hostA] = (await podmanConf('logs', `${pod}-a`)).stdout.trim().split('\n');
        const [netB, utsB, ipcB, mntB, hostB] = b.stdout.trim().split('\n');
        assert.deepEqual([netB, utsB, ipcB, hostB], [netA, utsA, ipcA, hostA]);
        assert.equal(hostA, pod);
        assert.notEqual(mntA, mntB, 'each container has its own mount namespace');
        const ps = await podmanConf('pod', 'ps', '--filter', `name=${pod}`, '--format', '{{.Status}} {{.NumberOfContainers}}');
        assert.equal(ps.stdout.trim(), 'Running 2');
      } finally {
        await podmanConf('pod', 'rm', '-f', '-t', '0', pod);
        await podmanConf('rmi', '-f', infra);
      }
    });

    describe('through containerd (ctr run --runc-binary, the runc v2 shim)', { skip: !existsSync(CONTAINERD) ? 'needs containerd' : undefined }, () => {
      let daemon: ChildProcess | undefined;
      let ctrd = '';
      const ctr = (...args: string[]) => run('ctr', ['-a', join(ctrd, 'sock'), ...args], 120_000);

      before(async () => {
        if (missing !== undefined || !existsSync(CONTAINERD)) return;
        // A private containerd (root, state, socket of its own), not the machine's.
        ctrd = join(base, 'containerd');
        await mkdir(ctrd);
        await writeFile(
          join(ctrd, 'config.toml'),
          `version = 2\nroot = "${ctrd}/root"\nstate = "${ctrd}/state"\n[grpc]\n  address = "${ctrd}/sock"\n`,
        );
        daemon = spawn(CONTAINERD, ['-c', join(ctrd, 'config.toml')], { stdio: 'ignore' });
        await waitFor(async () => (await ctr('version')).code === 0, 'containerd');
        const archive = join(ctrd, 'image.tar');
        assert.equal((await podman('save', '--format', 'oci-archive', '-o', archive, IMAGE)).code, 0);
        const imported = await ctr('images', 'import', '--base-name', IMAGE, archive);
        assert.equal(imported.code, 0, imported.stderr);
      });
      after(async () => {
        if (daemon === undefined) return;
        await ctr('task', 'kill', '-s', 'SIGKILL', name);
        await ctr('task', 'delete', name);
        await ctr('container', 'delete', name);
        daemon.kill('SIGTERM');
        await new Promise((r) => daemon!.once('exit', r));
      });

      it('run --rm, run -d, exec, pause, kill, delete', async () => {
        const once = await ctr('run', '--rm', '--runc-binary', BIN, `${IMAGE}:latest`, `${name}-once`, 'echo', 'hi');
        assert.equal(once.code, 0, once.stderr);
        assert.equal(once.stdout, 'hi\n');
        const started = await ctr('run', '-d', '--runc-binary', BIN, `${IMAGE}:latest`, name, 'sleep', '100');
        assert.equal(started.code, 0, started.stderr);
        const exec = await ctr('task', 'exec', '--exec-id', 'e1', name, 'sh', '-c', 'echo exec-ok; exit 4');
        assert.equal(exec.stdout, 'exec-ok\n');
        assert.equal(exec.code, 4);
        assert.equal((await ctr('task', 'pause', name)).code, 0);
        assert.match((await ctr('task', 'ls')).stdout, new RegExp(`${name}\\s+\\d+\\s+PAUSED`));
        assert.equal((await ctr('task', 'resume', name)).code, 0);
        assert.equal((await ctr('task', 'kill', '-s', 'SIGKILL', name)).code, 0);
        await waitFor(async () => /STOPPED/.test((await ctr('task', 'ls')).stdout), 'the task to stop');
        assert.equal((await ctr('task', 'delete', name)).code, 0);
        assert.equal((await ctr('container', 'delete', name)).code, 0);
      });
    });

    it('a terminal through the console socket (run -t, exec -t)', async () => {
      const r = await podman('run', '--rm', '-t', ...ulimits, IMAGE, 'tty');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^\/dev\/pts\/\d+\r?\n$/);
      const tty = `${name}-tty`;
      try {
        assert.equal((await podman('run', '-d', '-t', '--name', tty, ...ulimits, IMAGE, 'sleep', '100')).code, 0);
        const exec = await podman('exec', '-t', tty, 'tty');
        assert.equal(exec.code, 0, exec.stderr);
        assert.match(exec.stdout, /^\/dev\/pts\/\d+\r?\n$/);
      } finally {
        await podman('rm', '-f', '-t', '0', tty);
      }
    });
  });
});

const hasUserTools = ['useradd', 'userdel', 'newuidmap'].every((c) => ['/usr/sbin', '/usr/bin', '/sbin'].some((d) => existsSync(join(d, c))));

describe('dockless-runtime rootless, as a real non-root user', { skip: missing ?? (hasUserTools ? undefined : 'needs useradd, userdel and uidmap') }, () => {
  const user = `dl-ocirt-${process.pid}`;
  let as: RunAs;
  let home = '';
  let env: NodeJS.ProcessEnv = {};
  const urt = (...args: string[]) => run(BIN, args, 60_000, env, as);

  before(async () => {
    if (missing !== undefined || !hasUserTools) return;
    execFileSync('useradd', ['-m', '-s', '/bin/sh', user]);
    as = {
      uid: Number(execFileSync('id', ['-u', user], { encoding: 'utf8' })),
      gid: Number(execFileSync('id', ['-g', user], { encoding: 'utf8' })),
      cwd: '/',
    };
    home = execFileSync('sh', ['-c', `getent passwd ${user} | cut -d: -f6`], { encoding: 'utf8' }).trim();
    env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: home, USER: user, XDG_RUNTIME_DIR: join(home, 'run') };
    const rootfsDir = join(home, 'bundle', 'rootfs');
    await mkdir(join(rootfsDir, 'bin'), { recursive: true });
    await copyFile(BUSYBOX, join(rootfsDir, 'bin', 'busybox'));
    for (const applet of ['sh', 'sleep', 'id', 'cat']) await symlink('busybox', join(rootfsDir, 'bin', applet));
    for (const d of ['tmp', 'proc', 'dev', 'sys']) await mkdir(join(rootfsDir, d));
    await mkdir(join(home, 'run'), { mode: 0o700 });
    execFileSync('chown', ['-R', `${as.uid}:${as.gid}`, home]);
    as = { ...as, cwd: join(home, 'bundle') };
  });
  after(async () => {
    if (missing !== undefined || !hasUserTools) return;
    await urt('delete', '--force', 'rl');
    // userdel -r takes the home directory (bundle and state) with it.
    execFileSync('userdel', ['-r', '-f', user], { stdio: 'ignore' });
  });

  it('spec --rootless, then create, start, state, kill and delete with the state under $XDG_RUNTIME_DIR', async () => {
    const spec = await urt('spec', '--rootless');
    assert.equal(spec.code, 0, spec.stderr);
    const configPath = join(home, 'bundle', 'config.json');
    const config = JSON.parse(await readFile(configPath, 'utf8'));
    assert.deepEqual(config.linux.uidMappings, [{ containerID: 0, hostID: as.uid, size: 1 }]);
    config.process.terminal = false;
    config.process.args = ['sh', '-c', 'id -u > /tmp/who; cat /proc/self/uid_map >> /tmp/who; exec sleep 60'];
    config.root.readonly = false;
    await writeFile(configPath, JSON.stringify(config));
    execFileSync('chown', [`${as.uid}:${as.gid}`, configPath]);

    const created = await urt('--rootless', 'true', 'create', 'rl');
    assert.equal(created.code, 0, created.stderr);
    const stateDir = join(home, 'run', 'dockless-runtime', 'rl');
    assert.ok(existsSync(join(stateDir, 'native-state')), 'the state is not under $XDG_RUNTIME_DIR/dockless-runtime');
    let state = JSON.parse((await urt('state', 'rl')).stdout);
    assert.equal(state.status, 'created');
    assert.equal(state.owner, String(as.uid));
    // pid 1 runs as the user on the host: nothing of the container's has root's ids.
    const status = readFileSync(`/proc/${state.pid}/status`, 'utf8');
    assert.match(status, new RegExp(`^Uid:\\s+${as.uid}\\s`, 'm'));
    assert.equal((await urt('start', 'rl')).code, 0);
    const who = join(home, 'bundle', 'rootfs', 'tmp', 'who');
    const written = new RegExp(`^0\\n\\s*0\\s+${as.uid}\\s+1\\n$`);
    await waitFor(async () => existsSync(who) && written.test(await readFile(who, 'utf8')), 'the process to run');
    state = JSON.parse((await urt('state', 'rl')).stdout);
    assert.equal(state.status, 'running');
    assert.deepEqual((await urt('list', '-q')).stdout, 'rl\n');
    const exec = await urt('exec', 'rl', 'id', '-u');
    assert.equal(exec.code, 0, exec.stderr);
    assert.equal(exec.stdout, '0\n');
    const refused = await urt('--rootless', 'false', 'state', 'rl');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /--rootless false/);
    assert.equal((await urt('kill', 'rl', 'KILL')).code, 0);
    await waitFor(async () => JSON.parse((await urt('state', 'rl')).stdout).status === 'stopped', 'stopped');
    assert.equal((await urt('delete', 'rl')).code, 0);
    assert.equal(existsSync(stateDir), false);
  });

  it('rootless podman: run --rm, and a pod whose two containers share the infra container\'s namespaces', { skip: !existsSync(PODMAN) ? 'needs podman' : undefined }, async () => {
    // Rootless podman runs its runtime as root of its own user namespace: the state went to /run (EACCES), then v1 cgroupfs, cgroup2 and device nodes failed (EPERM).
    const conf = join(home, 'containers.conf');
    await writeFile(conf, '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n');
    const upodman = (...args: string[]) => run(PODMAN, ['--runtime', BIN, ...args], 120_000, { ...env, CONTAINERS_CONF: conf }, as);
    const tar = join(home, 'rootfs.tar');
    assert.equal((await run('tar', ['-C', join(home, 'bundle', 'rootfs'), '-cf', tar, '.'], 60_000, env, as)).code, 0);
    const pod = 'rlpod';
    try {
      assert.equal((await upodman('import', tar, 'localhost/rl')).code, 0);
      assert.equal((await upodman('import', '--change', 'ENTRYPOINT ["sleep","1000"]', tar, 'localhost/rl-infra')).code, 0);
      const plain = await upodman('run', '--rm', 'localhost/rl', 'id', '-u');
      assert.equal(plain.code, 0, plain.stderr);
      assert.equal(plain.stdout, '0\n');
      const created = await upodman('pod', 'create', '--name', pod, '--infra-image', 'localhost/rl-infra');
      assert.equal(created.code, 0, created.stderr);
      const nsOf = 'for n in net uts; do readlink /proc/self/ns/$n; done; hostname';
      const a = await upodman('run', '-d', '--pod', pod, '--name', `${pod}-a`, 'localhost/rl', 'sh', '-c', `${nsOf}; exec sleep 1000`);
      assert.equal(a.code, 0, a.stderr);
      const b = await upodman('run', '--rm', '--pod', pod, 'localhost/rl', 'sh', '-c', nsOf);
      assert.equal(b.code, 0, b.stderr);
      await waitFor(async () => (await upodman('logs', `${pod}-a`)).stdout.split('\n').length > 3, 'the first container\'s lines');
      assert.equal((await upodman('logs', `${pod}-a`)).stdout, b.stdout);
      assert.equal(b.stdout.trim().split('\n')[2], pod);
    } finally {
      await upodman('pod', 'rm', '-f', '-t', '0', pod);
      // The user's podman keeps a pause process (its user namespace) alive: it goes before the user does.
      const pause = await readFile(join(home, 'run', 'libpod', 'tmp', 'pause.pid'), 'utf8').catch(() => '');
      if (/^\d+$/.test(pause.trim())) process.kill(Number(pause.trim()), 'SIGKILL');
    }
  });
});
