import assert from 'node:assert/strict';
import { lstatSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { LayerStream } from '../../src/builder/layer-stream.js';
import { InvalidStateError } from '../../src/index.js';
import { diffToTar } from '../../src/layer/index.js';

async function bytes(tar: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of tar) parts.push(part);
  return Buffer.concat(parts);
}

describe('LayerStream', () => {
  let dir: string;
  const st = (rel: string) => lstatSync(join(dir, rel), { bigint: true });
  /** Every entry of `dir`, as the builder's settling walk gives them. */
  const entries = (...rels: string[]) => new Map(rels.map((rel) => [rel, st(rel)]));

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-layer-stream-'));
    await mkdir(join(dir, 'srv', 'a'), { recursive: true });
    await writeFile(join(dir, 'srv', 'a', 'x'), 'x\n');
    await writeFile(join(dir, 'srv', 'a-b'), 'ab\n');
    await symlink('a/x', join(dir, 'srv', 'link'));
    for (const rel of ['srv/a/x', 'srv/a', 'srv']) await utimes(join(dir, rel), 1000, 1000);
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  // The tar written entry by entry must be the one diffing the finished directory gives.
  it('given the entries in the layer order, is the tar diffToTar makes of the directory', async () => {
    const stream = new LayerStream(dir, { epoch: undefined, blockSize: 1 << 20 });
    const reading = bytes(stream.tar());
    stream.directory('srv', st('srv'), 1000);
    stream.directory('srv/a', st('srv/a'), 1000);
    stream.file('srv/a/x', st('srv/a/x'), Buffer.from('x\n'));
    stream.file('srv/a-b', st('srv/a-b'), Buffer.from('ab\n'));
    stream.symlink('srv/link', st('srv/link'), 'a/x');
    assert.ok(stream.matches(entries('srv', 'srv/a', 'srv/a/x', 'srv/a-b', 'srv/link'), new Map()));
    stream.end();
    assert.ok((await reading).equals(await bytes(diffToTar(dir, { readXattrs: async () => new Map() }))));
  });

  // `a/x` sorts before `a-b` in a layer (depth first), after it as a plain string.
  it('fails on an entry given out of the layer order, and its reader sees why', async () => {
    const stream = new LayerStream(dir, { epoch: undefined, blockSize: 1 << 20 });
    const reading = bytes(stream.tar());
    stream.directory('srv', st('srv'), 1000);
    stream.file('srv/a-b', st('srv/a-b'), Buffer.from('ab\n'));
    stream.directory('srv/a', st('srv/a'), 1000);
    assert.equal(stream.usable, false);
    await assert.rejects(reading, (err: Error) => err instanceof InvalidStateError && /`srv\/a` given after `srv\/a-b`/.test(err.message));
    assert.equal(stream.matches(entries('srv', 'srv/a', 'srv/a-b'), new Map()), false);
  });

  it('does not match a directory changed after its entries were given, or one with an entry more, or xattrs', async () => {
    const stream = new LayerStream(dir, { epoch: undefined, blockSize: 1 << 20 });
    void bytes(stream.tar()).catch(() => undefined);
    stream.directory('srv', st('srv'), 1000);
    stream.directory('srv/a', st('srv/a'), 1000);
    stream.file('srv/a/x', st('srv/a/x'), Buffer.from('x\n'));
    assert.ok(stream.matches(entries('srv', 'srv/a', 'srv/a/x'), new Map()));
    assert.equal(stream.matches(entries('srv', 'srv/a', 'srv/a/x', 'srv/a-b'), new Map()), false, 'an entry more');
    assert.equal(stream.matches(entries('srv', 'srv/a', 'srv/a/x'), new Map([['srv/a/x', new Map([['user.k', new Uint8Array([1])]])]])), false, 'xattrs');
    await utimes(join(dir, 'srv', 'a', 'x'), 2000, 2000);
    assert.equal(stream.matches(entries('srv', 'srv/a', 'srv/a/x'), new Map()), false, 'a new mtime');
    stream.fail('done');
  });

  it('holds a writer back while the tar queued ahead of its reader is large, and frees it when it fails', async () => {
    const stream = new LayerStream(dir, { epoch: undefined, blockSize: 1 << 20 });
    await writeFile(join(dir, 'big'), Buffer.alloc(5 << 20));
    stream.file('big', st('big'), Buffer.alloc(5 << 20));
    let freed = false;
    const waiting = stream.drained().then(() => (freed = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(freed, false);
    stream.fail('the store failed');
    await waiting;
    assert.equal(freed, true);
  });
});
