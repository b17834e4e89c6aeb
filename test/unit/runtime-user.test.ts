import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { InvalidArgumentError, NotFoundError } from '../../src/errors.js';
import { readFileInRoot, resolveInRoot } from '../../src/runtime/in-root.js';
import { resolveUserFrom, resolveUserInLayers } from '../../src/runtime/user.js';

const passwd = [
  'root:x:0:0:root:/root:/bin/sh',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  'app:x:1000:1000:App:/home/app:/bin/sh',
  'broken line',
  'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
].join('\n');
const group = ['root:x:0:', 'wheel:x:10:app,daemon', 'app:x:1000:', 'audio:x:29:app', 'nogroup:x:65534:'].join('\n');

test('resolveUserFrom: Docker user specs', () => {
  const cases: [string, { uid: number; gid: number; groups: number[]; home?: string }][] = [
    ['root', { uid: 0, gid: 0, groups: [], home: '/root' }],
    ['0', { uid: 0, gid: 0, groups: [], home: '/root' }],
    ['app', { uid: 1000, gid: 1000, groups: [10, 29], home: '/home/app' }],
    ['1000', { uid: 1000, gid: 1000, groups: [10, 29], home: '/home/app' }],
    ['app:wheel', { uid: 1000, gid: 10, groups: [29], home: '/home/app' }],
    ['app:4242', { uid: 1000, gid: 4242, groups: [10, 29], home: '/home/app' }],
    // A numeric uid need not be listed: Docker runs it with gid 0.
    ['4321', { uid: 4321, gid: 0, groups: [] }],
    ['4321:77', { uid: 4321, gid: 77, groups: [] }],
  ];
  for (const [spec, want] of cases) assert.deepEqual(resolveUserFrom(spec, passwd, group), want, spec);
});

test('resolveUserFrom: bad specs are typed errors', () => {
  assert.throws(() => resolveUserFrom('ghost', passwd, group), NotFoundError);
  assert.throws(() => resolveUserFrom('app:ghosts', passwd, group), NotFoundError);
  assert.throws(() => resolveUserFrom('', passwd, group), InvalidArgumentError);
  assert.throws(() => resolveUserFrom(':1', passwd, group), InvalidArgumentError);
  assert.throws(() => resolveUserFrom('a:b:c', passwd, group), InvalidArgumentError);
  assert.throws(() => resolveUserFrom('99999999999', passwd, group), InvalidArgumentError);
});

test('resolveInRoot never leaves the root, even through absolute or climbing symlinks', async () => {
  const root = await mkdtemp(join(tmpdir(), 'dl-inroot-'));
  try {
    await mkdir(join(root, 'etc'));
    await writeFile(join(root, 'etc', 'passwd'), passwd);
    await symlink('/etc', join(root, 'abs'));
    await symlink('../../../../etc', join(root, 'climb'));
    await symlink('loop2', join(root, 'loop1'));
    await symlink('loop1', join(root, 'loop2'));
    assert.equal(await resolveInRoot(root, '/abs/passwd'), join(root, 'etc', 'passwd'));
    assert.equal(await resolveInRoot(root, '/climb/passwd'), join(root, 'etc', 'passwd'));
    assert.equal(await resolveInRoot(root, '/../../etc/passwd'), join(root, 'etc', 'passwd'));
    // Below a missing component, `..` was left to path.join, which climbed above the root.
    assert.equal(await resolveInRoot(root, '/missing/../../../etc/passwd'), join(root, 'etc', 'passwd'));
    assert.equal(await readFileInRoot(root, '/abs/passwd'), passwd);
    assert.equal(await readFileInRoot(root, '/nope'), undefined);
    await assert.rejects(resolveInRoot(root, '/loop1/x'), InvalidArgumentError);
    // /etc/passwd as a symlink to the host's file must resolve inside the root.
    await rm(join(root, 'etc', 'passwd'));
    await symlink('/etc/shadow', join(root, 'etc', 'passwd'));
    assert.equal(await resolveInRoot(root, '/etc/passwd'), join(root, 'etc', 'shadow'));
    assert.equal(await readFileInRoot(root, '/etc/passwd'), undefined);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('resolveUserInLayers reads passwd and group inside the layers, the top-most first', async () => {
  const root = await mkdtemp(join(tmpdir(), 'dl-user-'));
  try {
    await mkdir(join(root, 'etc'));
    await writeFile(join(root, 'etc', 'passwd'), passwd);
    await writeFile(join(root, 'etc', 'group'), group);
    assert.deepEqual(await resolveUserInLayers([root], 'app'), { uid: 1000, gid: 1000, groups: [10, 29], home: '/home/app' });
    const top = join(root, 'top');
    await mkdir(join(top, 'etc'), { recursive: true });
    await writeFile(join(top, 'etc', 'passwd'), 'app:x:2000:2000::/srv:/bin/sh\n');
    assert.deepEqual(await resolveUserInLayers([top, root], 'app'), { uid: 2000, gid: 2000, groups: [10, 29], home: '/srv' });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

// A hostile image's /etc/passwd as a FIFO hung user lookup (and as /dev/zero would have read without end).
test('user lookup in an image whose /etc/passwd is a FIFO is an InvalidArgumentError, not a hang', { timeout: 5000 }, async () => {
  const root = await mkdtemp(join(tmpdir(), 'dl-user-fifo-'));
  try {
    await mkdir(join(root, 'etc'));
    execFileSync('mkfifo', [join(root, 'etc', 'passwd')]);
    await assert.rejects(readFileInRoot(root, '/etc/passwd'), InvalidArgumentError);
    await assert.rejects(resolveUserInLayers([root], 'nobody'), InvalidArgumentError);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
