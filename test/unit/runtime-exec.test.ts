import { strict as assert } from 'node:assert';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { InvalidArgumentError, OutputLimitError } from '../../src/errors.js';
import { execArgs, type ExecPlan } from '../../src/runtime/exec-args.js';
import { collectOutput, DEFAULT_MAX_BUFFER, encodeOutput, maxBufferOf } from '../../src/runtime/output.js';

const nativeDir = join(import.meta.dirname, '..', '..', 'native');

const plan: ExecPlan = {
  id: 'abc',
  pid: 42,
  pidStart: 1234,
  namespaces: ['mount', 'pid'],
  userns: true,
  cgroups: ['/sys/fs/cgroup/memory/x'],
  cwd: '/w',
  user: { uid: 1, gid: 2, groups: [3, 4] },
  env: ['A=b'],
  caps: 0xa80425fbn,
  noNewPrivileges: true,
  seccomp: Buffer.alloc(8),
  rlimits: [{ name: 'nofile', soft: '10', hard: '20' }],
  dieWithParent: 7,
  cmd: ['sh', '-c', 'x'],
};

test('execArgs encodes a plan as flat argv', () => {
  assert.deepEqual(execArgs(plan), [
    '--id', 'abc', '--pid', '42', '--pid-start', '1234', '--ns', 'mount,pid', '--userns',
    '--cgroup', '/sys/fs/cgroup/memory/x', '--cwd', '/w', '--uid', '1', '--gid', '2', '--groups', '3,4',
    '--env', 'A=b', '--caps', '00000000a80425fb', '--no-new-privs', '--seccomp-fd', '4',
    '--rlimit', 'nofile', '10', '20', '--die-with-parent', '7', '--', 'sh', '-c', 'x',
  ]);
  const privileged: ExecPlan = { ...plan, userns: false, cgroups: [], noNewPrivileges: false, rlimits: [], user: { uid: 0, gid: 0, groups: [] } };
  delete privileged.caps;
  delete privileged.seccomp;
  delete privileged.dieWithParent;
  const args = execArgs(privileged);
  for (const option of ['--userns', '--cgroup', '--caps', '--no-new-privs', '--seccomp-fd', '--groups', '--die-with-parent']) {
    assert.ok(!args.includes(option), `${option} without its setting`);
  }
});

// Options the TS side emits but the C side does not parse would be usage errors at the first exec.
test('the exec options execArgs emits are all parsed by the helper', async () => {
  const sources = (await readdir(nativeDir)).filter((f) => ['exec.c', 'process.c', 'security.c'].includes(f));
  assert.equal(sources.length, 3);
  const text = (await Promise.all(sources.map((f) => readFile(join(nativeDir, f), 'utf8')))).join('\n');
  for (const option of new Set(execArgs(plan).filter((a) => /^--[a-z]/.test(a)))) {
    assert.match(text, new RegExp(`"${option}"`), `${option} not parsed by the helper's exec`);
  }
});

test('collectOutput keeps each stream up to maxBuffer, and past it calls onLimit once and throws OutputLimitError', async () => {
  const ok = await collectOutput({ stdout: Readable.from([Buffer.from('ab'), Buffer.from('c')]), stderr: null }, 3, 'x', () => assert.fail('onLimit'));
  assert.deepEqual(ok, { stdout: Buffer.from('abc'), stderr: Buffer.alloc(0) });
  let calls = 0;
  await assert.rejects(
    collectOutput(
      { stdout: Readable.from([Buffer.from('ab')]), stderr: Readable.from([Buffer.from('abc'), Buffer.from('d'), Buffer.from('e')]) },
      3,
      'exec in container 1',
      () => calls++,
    ),
    (e) => e instanceof OutputLimitError && e.stream === 'stderr' && e.maxBuffer === 3 && e.code === 'ERR_DOCKLESS_OUTPUT_LIMIT',
  );
  assert.equal(calls, 1);
});

test('output options: maxBuffer defaults to 10 MiB, bad values and encodings are InvalidArgumentErrors', () => {
  assert.equal(maxBufferOf({}, 'x'), DEFAULT_MAX_BUFFER);
  assert.equal(DEFAULT_MAX_BUFFER, 10 * 1024 * 1024);
  assert.equal(maxBufferOf({ maxBuffer: Infinity }, 'x'), Infinity);
  for (const maxBuffer of [-1, NaN, 1.5, '10' as unknown as number]) assert.throws(() => maxBufferOf({ maxBuffer }, 'x'), InvalidArgumentError);
  assert.throws(() => maxBufferOf({ encoding: 'latin1' as 'utf8' }, 'x'), InvalidArgumentError);
  const exit = { exitCode: 1, signal: null };
  assert.deepEqual(encodeOutput({ stdout: Buffer.from('é'), stderr: Buffer.alloc(0) }, exit, undefined), { stdout: 'é', stderr: '', ...exit });
  assert.deepEqual(encodeOutput({ stdout: Buffer.from('é'), stderr: Buffer.alloc(0) }, exit, 'buffer').stdout, Buffer.from('é'));
});
