import { strict as assert } from 'node:assert';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { HELPER_OPS, HELPER_PROTOCOL_VERSION, StatusLineDecoder } from '../../src/helper/protocol.js';
import { errorFromStatus } from '../../src/helper/spawn.js';
import { runArgs, type RunPlan } from '../../src/runtime/run-args.js';

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

test('status lines split across chunks are decoded once each', () => {
  const d = new StatusLineDecoder();
  assert.deepEqual(d.push('{"type":"pid","pid":4'), []);
  assert.deepEqual(d.push('2}\n{"type":"created"}\nnot json\n{"ty'), [{ type: 'pid', pid: 42 }, { type: 'created' }]);
  assert.deepEqual(d.push('pe":"exited","code":3}\n'), [{ type: 'exited', code: 3 }]);
});

test('an error status becomes a HelperError naming step, path and errno', () => {
  const e = errorFromStatus('run', 'run container abc', {
    type: 'error',
    step: 'mount',
    path: '/proc',
    errno: 1,
    code: 'EPERM',
    message: 'Operation not permitted',
  });
  assert.equal(e.message, 'run container abc: mount `/proc`: EPERM (Operation not permitted)');
  assert.equal(e.code, 'ERR_DOCKLESS_HELPER');
  assert.equal(e.step, 'mount');
  assert.equal(e.errnoCode, 'EPERM');
  assert.equal(e.path, '/proc');
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
    '--env', 'PATH=/bin', '--env', 'A=b c', '--init', '--start-fifo', '/f', '--die-with-parent', '77', '--exit-file', '/e',
    '--', 'sh', '-c', 'echo "$A"',
  ]);
});
