// The helper's `apply` op: a large layer is parsed in Node and its files are created by
// the helper, in a process of its own. The same tree, the same errors, nothing left behind.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it, type TestContext } from 'node:test';
import zlib from 'node:zlib';
import { DocklessError, InvalidArgumentError } from '../../src/errors.js';
import { locateHelper } from '../../src/helper/locate.js';
import { unpackLayer, unpackThreadFor } from '../../src/layer/index.js';
import { HelperTreeWriter } from '../../src/layer/tree-writer.js';
import { chunked, makeTar } from '../fixtures/layer-tar.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const isRoot = process.getuid?.() === 0;

let base: string;
let counter = 0;
const fresh = async (): Promise<string> => {
  const dir = path.join(base, `case-${++counter}`);
  await fs.mkdir(dir);
  return dir;
};

/** Type, mode, owner, size, mtime, link target and link count of every path below `dir`. */
const listing = (dir: string): string =>
  execFileSync('find', ['.', '-mindepth', '1', '-printf', '%p %y %m %U:%G %s %T@ %l %n\n'], { cwd: dir }).toString().split('\n').sort().join('\n');

/** Command lines of this process's helper children (spawned and not reaped; tsx's esbuild is another child). */
const children = (): string[] =>
  readdirSync(`/proc/${process.pid}/task`)
    .flatMap((tid) => readFileSync(`/proc/${process.pid}/task/${tid}/children`, 'utf8').trim().split(' '))
    .filter((pid) => pid !== '')
    .map((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8'))
    .filter((cmdline) => cmdline.includes('dockless-helper'));

const threads = (): number => readdirSync('/proc/self/task').length;

before(async () => {
  base = await fs.mkdtemp(path.join(os.tmpdir(), 'dockless-layer-apply-'));
});

after(async () => {
  await fs.rm(base, { recursive: true, force: true });
});

describe('unpackLayer with the helper creating the files', () => {
  it('passes the whole unpack suite, hostile layers included, with the helper creating the files', () => {
    // Policy stays in Node, the syscalls moved to C: every case of the calling thread must hold there too.
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=tap', path.join(REPO, 'test/unit/layer-unpack.test.ts')],
      // Without NODE_TEST_CONTEXT: a `node --test` started by a test would report to this runner instead of running.
      { cwd: REPO, encoding: 'utf8', env: { ...process.env, NODE_TEST_CONTEXT: undefined, DOCKLESS_TEST_UNPACK_THREAD: 'helper' } },
    );
    assert.equal(r.status, 0, `unit suite with the helper failed:\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-2000)}`);
    assert.match(r.stdout, /pass [1-9]\d*\n/, r.stdout.slice(-2000));
    assert.match(r.stdout, /fail 0\n/);
  });

  it('writes the same tree as the calling thread: owners, special bits, replaced entries, hard links', async (t: TestContext) => {
    if (!isRoot) {
      t.skip('needs root (ownership)');
      console.log(`# skipped ${t.name}: needs root`);
      return;
    }
    const layer = await makeTar([
      { name: 'usr/', type: 'directory', mode: 0o755 },
      { name: 'usr/bin/', type: 'directory', mode: 0o1777, uid: 7, gid: 8 },
      { name: 'usr/bin/su', body: 'su', mode: 0o4755, uid: 0, gid: 0 },
      { name: 'usr/bin/wall', body: 'wall', mode: 0o2711, uid: 1000, gid: 5 },
      { name: 'usr/bin/big', body: randomBytes(3 * 1024 * 1024 + 5), mode: 0o640, uid: 1000, gid: 1000 },
      { name: 'usr/bin/again', type: 'link', linkname: 'usr/bin/big' },
      { name: 'usr/bin/sl', type: 'symlink', linkname: 'big', uid: 1000, gid: 1001 },
      { name: 'dir/', type: 'directory' },
      { name: 'dir/inner', body: 'inner' },
      { name: 'dir', body: 'a file now' },
      { name: 'file', body: 'a file first' },
      { name: 'file/', type: 'directory', mode: 0o700 },
      { name: 'file/x', body: 'x', mode: 0o600 },
      { name: 'ro/', type: 'directory', mode: 0o555 },
      { name: 'ro/in', body: 'y', mode: 0o444 },
      { name: 'empty', body: '' },
    ]);
    const gz = zlib.gzipSync(layer);
    const onMain = await fresh();
    const onHelper = await fresh();
    const main = await unpackLayer(chunked(gz, 64 * 1024), onMain, { thread: 'main' });
    const helper = await unpackLayer(chunked(gz, 64 * 1024), onHelper, { thread: 'helper' });
    assert.deepEqual(helper, main);
    assert.equal(listing(onHelper), listing(onMain));
    assert.ok(listing(onHelper).includes('./usr/bin/su f 4755 0:0'), listing(onHelper));
    for (const dir of [onMain, onHelper]) await fs.chmod(path.join(dir, 'ro'), 0o755);
  });

  it('reports a failure of the helper with the class, path and errno code the calling thread gives', async () => {
    const layer = await makeTar([{ name: 'd/', type: 'directory' }, { name: `d/${'n'.repeat(300)}`, body: 'x' }]);
    const errors: DocklessError[] = [];
    for (const thread of ['main', 'helper'] as const) {
      errors.push(await unpackLayer(chunked(layer), await fresh(), { thread }).then(() => assert.fail('unpacked'), (e: DocklessError) => e));
    }
    const [onMain, onHelper] = errors as [DocklessError, DocklessError];
    assert.ok(onHelper instanceof DocklessError, String(onHelper));
    assert.equal(onHelper.constructor, onMain.constructor);
    assert.equal(onHelper.code, onMain.code);
    assert.equal(onHelper.message, onMain.message);
    assert.equal(onHelper.path, onMain.path);
    assert.equal((onHelper as { errnoCode?: string }).errnoCode, 'ENAMETOOLONG');
  });

  it('ends the helper of a layer whose tar breaks off, and leaves no process behind', async () => {
    const big = await makeTar([
      { name: 'a', body: 'a' },
      { name: 'big', body: Buffer.alloc(4 * 1024 * 1024, 1) },
    ]);
    await assert.rejects(unpackLayer(chunked(big.subarray(0, 2 * 1024 * 1024), 64 * 1024), await fresh(), { thread: 'helper' }), InvalidArgumentError);
    // The kill is sent at once; the kernel may take a moment to reap.
    for (let i = 0; i < 50 && children().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(children(), []);
  });

  it('flushes the filesystem in the background with --writeback: syncfs(2) is given an fd it takes', async (t: TestContext) => {
    // syncfs(2) refuses an O_PATH fd (EBADF), and the background flush's errors are ignored by design:
    // only a trace of the child shows whether it flushed anything.
    const probe = spawnSync('strace', ['-f', '-e', 'trace=none', 'true']);
    if (probe.error !== undefined || probe.status !== 0) {
      t.skip('needs strace');
      console.log(`# skipped ${t.name}: needs strace`);
      return;
    }
    const root = await fresh();
    const trace = path.join(await fresh(), 'trace');
    const content = Buffer.alloc(4096, 7);
    const records = Buffer.concat([Buffer.from(`${['f', 'a', '644', '-', '-', '0', '0', String(content.byteLength)].join('\0')}\0`), content]);
    const r = spawnSync('strace', ['-f', '-qq', '-e', 'trace=syncfs', '-o', trace, locateHelper(), 'apply', '--root', root, '--status-fd', '1', '--writeback', '1'], {
      input: records,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /"done"/);
    const calls = readFileSync(trace, 'utf8');
    assert.match(calls, /syncfs\(\d+\)\s+= 0/, calls);
    assert.equal(readFileSync(path.join(root, 'a')).compare(content), 0);
  });

  it('copies content it queues for the helper: the caller may reuse or free a chunk once write returns', async () => {
    const root = await fresh();
    const content = randomBytes(1 << 20);
    const chunk = Buffer.from(content);
    const writer = new HelperTreeWriter(root, { context: 'test', umask: 0o022 });
    const sink = writer.file('a', { mode: 0o644, owner: undefined, mtime: 0, mtimeNsec: 0 }, chunk.byteLength, 'a');
    sink.write(chunk);
    sink.end();
    // What unpackLayer does with gunzip's output once the sink returned (see releaseBuffer).
    chunk.fill(0);
    await writer.close();
    assert.equal(readFileSync(path.join(root, 'a')).compare(content), 0);
  });

  it('unpacks a large layer with no unpack thread (a thread held 13–20 MiB of a pull\'s peak memory)', async () => {
    // What the store does: a layer over the small-layer limit goes where unpackThreadFor says.
    const layer = zlib.gzipSync(await makeTar(Array.from({ length: 64 }, (_, i) => ({ name: `f${i}`, body: randomBytes(32 * 1024) }))));
    assert.ok(layer.byteLength > 1024 * 1024);
    await promisify(zlib.gunzip)(layer); // the thread pool starts now, not during the count
    await new Promise((r) => setTimeout(r, 50));
    const before = threads();
    let most = before;
    await unpackLayer(chunked(layer, 64 * 1024), await fresh(), {
      thread: unpackThreadFor(layer.byteLength),
      onProgress: () => {
        most = Math.max(most, threads());
      },
    });
    assert.equal(most, before, `threads during the unpack: ${most}, before: ${before}`);
  });
});
