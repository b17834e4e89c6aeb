import { strict as assert } from 'node:assert';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CONFIG_FD_OPTION, encodeConfig, HELPER_OPS, HELPER_PROTOCOL_VERSION, StatusLineDecoder } from '../../src/helper/protocol.js';
import { HelperError, InvalidArgumentError } from '../../src/errors.js';
import { errorFromStatus, spawnHelper } from '../../src/helper/spawn.js';
import { restartArgs } from '../../src/runtime/restart.js';
import { runArgs, SECCOMP_FD, type RunPlan } from '../../src/runtime/run-args.js';

const nativeDir = join(import.meta.dirname, '..', '..', 'native');

// The two sides of the helper protocol are written in two languages; this keeps them in step.
test('op names and protocol version agree with the C sources', async () => {
  const sources = (await readdir(nativeDir)).filter((f) => f.endsWith('.c') || f.endsWith('.h'));
  const text = (await Promise.all(sources.map((f) => readFile(join(nativeDir, f), 'utf8')))).join('\n');
  for (const op of HELPER_OPS) assert.match(text, new RegExp(`"${op}"`), `op ${op} missing from native dispatch`);
  const ops = [...text.matchAll(/\{\s*"([a-z-]+)"\s*,\s*(?:cmd_|op_)\w+/g)].map((m) => m[1]);
  assert.deepEqual([...new Set(ops)].sort(), [...HELPER_OPS].sort());
  assert.match(text, new RegExp(`PROTOCOL_VERSION\\s+${HELPER_PROTOCOL_VERSION}\\b`));
});

// Env values and host paths travel over this descriptor, not argv: both sides must spell and frame it alike.
test('the config descriptor option and its framing agree with the C sources', async () => {
  const main = await readFile(join(nativeDir, 'main.c'), 'utf8');
  const config = await readFile(join(nativeDir, 'config.c'), 'utf8');
  assert.match(main, /dl_config_argv\(&argc, &argv\)/);
  assert.ok(config.includes(`"${CONFIG_FD_OPTION}"`));
  assert.deepEqual(encodeConfig(['--env', 'A=b c', '']), Buffer.from('--env\0A=b c\0\0'));
  assert.deepEqual(encodeConfig([]), Buffer.alloc(0));
  // Sized in bytes, not characters: a multi-byte argument must not be cut short.
  assert.deepEqual(encodeConfig(['é', 'x']), Buffer.from('é\0x\0'));
  assert.throws(() => encodeConfig(['--env', 'A=b\0--mount']), InvalidArgumentError);
});

test('status lines split across chunks are decoded once each', () => {
  const d = new StatusLineDecoder();
  assert.deepEqual(d.push('{"type":"pid","pid":4'), []);
  assert.deepEqual(d.push('2}\n{"type":"created"}\nnot json\n{"ty'), [{ type: 'pid', pid: 42 }, { type: 'created' }]);
  assert.deepEqual(d.push('pe":"exited","code":3}\n'), [{ type: 'exited', code: 3 }]);
});

// The TS side used to reword the helper's message: ``mount `/proc`: EPERM (mount `tmpfs` on `/proc`)``.
test('an error status becomes a HelperError in the helper\'s own format: context, message, errno', () => {
  const e = errorFromStatus('run', 'run container abc', {
    type: 'error',
    step: 'mount',
    path: '/proc',
    errno: 1,
    code: 'EPERM',
    message: 'mount `tmpfs` on `/proc`',
  });
  assert.equal(e.message, 'run container abc: mount `tmpfs` on `/proc`: EPERM');
  assert.equal(e.code, 'ERR_DOCKLESS_HELPER');
  assert.equal(e.step, 'mount');
  assert.equal(e.errno, 1);
  assert.equal(e.errnoCode, 'EPERM');
  assert.equal(e.path, '/proc');
  assert.equal(
    errorFromStatus('run', 'run container abc', { type: 'error', step: 'die-with-parent', errno: 0, code: '', message: 'getppid `7`: the parent is gone' }).message,
    'run container abc: getppid `7`: the parent is gone',
  );
  assert.equal(
    errorFromStatus('rm', 'remove `/x`', { type: 'error', step: 'unlinkat', path: '/x/y', errno: 13, code: 'EACCES', message: '' }).message,
    'remove `/x`: unlinkat `/x/y`: EACCES',
  );
});

test('runArgs encodes a plan as flat argv', () => {
  const plan: RunPlan = {
    id: 'abc',
    target: '/run/x/rootfs',
    lowers: ['/l1', '/l2'],
    upper: '/u',
    work: '/w',
    namespaces: ['mount', 'pid'],
    hostname: 'box',
    mounts: [{ type: 'proc', source: 'proc', target: '/proc', options: ['nosuid', 'nodev'] }, { type: 'bind', source: '/h', target: '/c', options: [] }],
    devices: [{ path: '/dev/null', type: 'c', major: 1, minor: 3, mode: 0o666 }],
    symlinks: [['/proc/self/fd', '/dev/fd']],
    masked: ['/proc/kcore'],
    readonlyPaths: ['/proc/sys'],
    readonlyRootfs: true,
    cwd: '/work',
    user: { uid: 1000, gid: 1000, groups: [10, 29] },
    env: ['PATH=/bin', 'A=b c'],
    init: true,
    caps: 0xa80425fbn,
    noNewPrivileges: true,
    seccomp: Buffer.alloc(8),
    rlimits: [{ name: 'nofile', soft: '1024', hard: 'unlimited' }],
    startFifo: '/f',
    dieWithParent: 77,
    exitFile: '/e',
    cmd: ['sh', '-c', 'echo "$A"'],
  };
  assert.deepEqual(runArgs(plan), [
    '--id', 'abc', '--target', '/run/x/rootfs', '--lower', '/l1', '--lower', '/l2', '--upper', '/u', '--work', '/w',
    '--ns', 'mount,pid', '--hostname', 'box',
    '--mount', 'proc', 'proc', '/proc', 'nosuid,nodev', '--mount', 'bind', '/h', '/c', '-',
    '--mknod', '/dev/null', 'c', '1', '3', '666', '0', '0', '--symlink', '/proc/self/fd', '/dev/fd',
    '--mask', '/proc/kcore', '--readonly', '/proc/sys', '--readonly-rootfs',
    '--cwd', '/work', '--uid', '1000', '--gid', '1000', '--groups', '10,29',
    '--env', 'PATH=/bin', '--env', 'A=b c', '--init',
    '--caps', '00000000a80425fb', '--no-new-privs', '--seccomp-fd', '4', '--rlimit', 'nofile', '1024', 'unlimited',
    '--start-fifo', '/f', '--die-with-parent', '77', '--exit-file', '/e',
    '--', 'sh', '-c', 'echo "$A"',
  ]);
});

test('the run options runArgs emits are all parsed by the helper', async () => {
  const sources = (await readdir(nativeDir)).filter((f) => f.endsWith('.c'));
  const text = (await Promise.all(sources.map((f) => readFile(join(nativeDir, f), 'utf8')))).join('\n');
  const plan: RunPlan = {
    id: 'a', target: '/t', lowers: ['/l'], upper: '/u', work: '/w', namespaces: ['mount'], hostname: 'h',
    mounts: [{ type: 'proc', source: 'proc', target: '/proc', options: [] }],
    devices: [{ path: '/dev/null', type: 'c', major: 1, minor: 3, mode: 0o666 }], symlinks: [['a', '/b']],
    masked: ['/m'], readonlyPaths: ['/r'], readonlyRootfs: true, cwd: '/', user: { uid: 0, gid: 0, groups: [1] },
    env: ['A=b'], init: true, caps: 0n, noNewPrivileges: true, seccomp: Buffer.alloc(8),
    rlimits: [{ name: 'core', soft: '0', hard: '0' }], startFifo: '/f', dieWithParent: 1, exitFile: '/e', cmd: ['x'],
    restartArgs: restartArgs({ policy: 'on-failure', maxRetries: 3 }, '/r.json'), events: { file: '/ev', name: 'n', image: 'i' },
  };
  const options = runArgs(plan).filter((a) => /^--[a-z]/.test(a));
  for (const option of new Set(options)) assert.match(text, new RegExp(`"${option}"`), `${option} not parsed by the helper`);
  // The seccomp program arrives on the first extra input of spawnHelper: fd 4.
  assert.equal(SECCOMP_FD, 4);
});

// The spawn failure read `spawn helper: spawn /path EACCES`, Node's wording inside ours.
test('a helper that cannot be executed is a HelperError `<context>: spawn `<path>`: <ERRNO>`', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dl-helper-'));
  try {
    // A directory passes the X_OK check and fails execve with EACCES.
    const helper = spawnHelper('version', [], { stdio: ['ignore', 'ignore', 'ignore'], context: 'helper version', helperPath: dir });
    await helper.exit;
    const e = helper.failure;
    assert.ok(e instanceof HelperError, String(e));
    assert.equal(e.message, `helper version: spawn \`${dir}\`: EACCES`);
    assert.equal(e.step, 'spawn');
    assert.equal(e.errnoCode, 'EACCES');
    assert.equal(e.path, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
