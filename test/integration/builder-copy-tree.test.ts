import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { chmod, chown, link, lstat, lutimes, mkdir, mkdtemp, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { copyTree } from '../../src/builder/copy-tree.js';
import { readXattrs, runHelperOp } from '../../src/helper/index.js';
import { cannotRun } from '../fixtures/world.js';

const skip = cannotRun();
if (skip !== undefined) console.log(`# skipping copyTree tests: ${skip}`);

/** Every entry under `root` as one comparable line: type and mode, owner, size, device, mtime, link group, xattrs. */
async function describeTree(root: string): Promise<string[]> {
  const paths: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    paths.push(rel);
    const stats = await lstat(rel === '' ? root : join(root, rel));
    if (!stats.isDirectory()) return;
    for (const name of (await readdir(join(root, rel))).sort()) await walk(rel === '' ? name : `${rel}/${name}`);
  };
  await walk('');
  const xattrs = await readXattrs(root, paths.map((p) => p || '.'));
  const inodes = new Map<number, string>();
  const out: string[] = [];
  for (const rel of paths) {
    const s = await lstat(rel === '' ? root : join(root, rel));
    const group = s.nlink > 1 && !s.isDirectory() ? (inodes.get(s.ino) ?? (inodes.set(s.ino, rel), rel)) : '';
    const attrs = [...(xattrs.get(rel || '.') ?? new Map())].map(([k, v]) => `${k}=${Buffer.from(v).toString('hex')}`).sort().join(',');
    out.push(`${rel || '.'} ${s.mode.toString(8)} ${s.uid}:${s.gid} ${s.isFile() ? s.size : '-'} ${s.rdev} ${Math.floor(s.mtimeMs)} ${group} ${attrs}`);
  }
  return out;
}

describe('copyTree', { skip }, () => {
  let base: string;
  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'dockless-copy-tree-'));
  });
  after(async () => {
    if (base !== undefined) await rm(base, { recursive: true, force: true });
  });

  // commit copies a running container's upper dir: the copy must keep all that `cp -a` kept, or the layer changes.
  it('keeps modes, owners, times, symlinks, hardlinks, device nodes and xattrs as `cp -a` does', async () => {
    const src = join(base, 'src');
    await mkdir(join(src, 'd', 'sub'), { recursive: true });
    await mkdir(join(src, 'ro'));
    await writeFile(join(src, 'd', 'f'), 'hello\n');
    await chown(join(src, 'd', 'f'), 1000, 1001);
    await chmod(join(src, 'd', 'f'), 0o4755);
    await link(join(src, 'd', 'f'), join(src, 'hard'));
    await symlink('d/f', join(src, 'l'));
    await writeFile(join(src, 'ro', 'inside'), 'x');
    await writeFile(join(src, 'd', 'sub', 'secret'), 's');
    await chmod(join(src, 'd', 'sub', 'secret'), 0o600);
    await chown(join(src, 'd', 'sub'), 1000, 1000);
    await runHelperOp('meta', ['--root', src], {
      context: 'test',
      input: Buffer.from(
        [
          ['mknod', 'wh', 'c', '0', '0', '0'],
          ['mknod', 'tty', 'c', '620', '136', '300000'],
          ['mknod', 'fifo', 'p', '640', '0', '0'],
          ['xattr', 'd', 'trusted.overlay.opaque', Buffer.from('y').toString('hex')],
          ['xattr', 'd/f', 'user.note', Buffer.from('kept').toString('hex')],
        ]
          .flat()
          .join('\0') + '\0',
      ),
    });
    await chmod(join(src, 'ro'), 0o555);
    await chmod(join(src, 'd'), 0o750);
    const t = new Date('2020-02-02T02:02:02.123Z');
    for (const p of ['d/f', 'ro/inside', 'd/sub/secret', 'wh', 'tty', 'fifo']) await utimes(join(src, p), t, t);
    await lutimes(join(src, 'l'), new Date('2019-01-01T00:00:00Z'), new Date('2019-01-01T00:00:00Z'));
    for (const p of ['d/sub', 'd', 'ro', '']) await utimes(join(src, p), t, t);

    execFileSync('cp', ['-a', '--', src, join(base, 'oracle')]);
    await copyTree(src, join(base, 'copy'), { context: 'test' });

    const expected = await describeTree(join(base, 'oracle'));
    assert.ok(expected.some((l) => l.startsWith('d 40750 ') && l.includes('trusted.overlay.opaque=79')), expected.join('\n'));
    assert.ok(expected.some((l) => l.startsWith('hard ') && l.includes(' d/f ')), expected.join('\n'));
    assert.deepEqual(await describeTree(join(base, 'copy')), expected);
  });

  it('refuses a source that is not a directory', async () => {
    await writeFile(join(base, 'file'), 'x');
    await assert.rejects(copyTree(join(base, 'file'), join(base, 'nope'), { context: 'test' }), /not a directory/);
  });
});
