import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { gzipMembers, prepareForAdoption } from '../../src/builder/layer-from-upper.js';

async function collect(chunks: Buffer[], level = 1): Promise<{ out: Buffer; seen: number }> {
  async function* source(): AsyncGenerator<Buffer> {
    yield* chunks;
  }
  let seen = 0;
  const parts: Buffer[] = [];
  for await (const part of gzipMembers(source(), level, (c) => (seen += c.length))) parts.push(part);
  return { out: Buffer.concat(parts), seen };
}

describe('gzipMembers', () => {
  const data = Buffer.concat([randomBytes(1 << 20), Buffer.alloc(3 << 20, 'dockless '), randomBytes(12345)]);

  it('is gzip that one gunzip reads back whole, and GNU gzip too', async () => {
    const { out, seen } = await collect([data]);
    assert.equal(seen, data.length);
    assert.ok(gunzipSync(out).equals(data));
    assert.ok(execFileSync('gzip', ['-dc'], { input: out, maxBuffer: 1 << 26 }).equals(data));
  });

  // A build's young generation let tens of MiB of zlib's spent output buffers wait for a scavenge.
  it('with consumed, frees zlib\'s output buffers once the reader moved past them, and the output is the same', async () => {
    async function* source(): AsyncGenerator<Buffer> {
      yield data;
    }
    const copies: Buffer[] = [];
    const seen: Buffer[] = [];
    for await (const part of gzipMembers(source(), 1, () => {}, undefined, true)) {
      copies.push(Buffer.from(part));
      seen.push(part);
    }
    assert.ok(gunzipSync(Buffer.concat(copies)).equals(data));
    assert.ok(seen.length >= 5, `${seen.length} pieces for 5 members`);
    const freed = seen.filter((part) => part.byteLength === 0).length;
    assert.equal(freed, seen.length, `${freed} of ${seen.length} pieces freed`);
  });

  // Layer digests must not depend on how the tar happened to be chunked on its way in.
  it('depends on the bytes only, not on how they were chunked', async () => {
    const whole = await collect([data]);
    const pieces: Buffer[] = [];
    for (let i = 0; i < data.length; i += 70_001) pieces.push(data.subarray(i, i + 70_001));
    const chunked = await collect(pieces);
    assert.equal(createHash('sha256').update(chunked.out).digest('hex'), createHash('sha256').update(whole.out).digest('hex'));
  });

  // Layer digests must not change with the output buffers zlib is given (sized from the ratio so far):
  // each member is what zlib makes of its 1 MiB at the level, with zlib's own defaults.
  it('is, member by member, zlib gzip of each 1 MiB at the level, whatever the data compresses to', async () => {
    const mixed = Buffer.concat([Buffer.alloc(2 << 20, 'aaaa'), randomBytes(3 << 20), Buffer.alloc(1 << 20, 'dockless '), randomBytes(777)]);
    for (const level of [1, 6]) {
      const { out } = await collect([mixed], level);
      const expected: Buffer[] = [];
      for (let i = 0; i < mixed.length; i += 1 << 20) expected.push(gzipSync(mixed.subarray(i, i + (1 << 20)), { level }));
      assert.ok(out.equals(Buffer.concat(expected)), `level ${level}`);
    }
  });

  it('gives a valid gzip for empty input', async () => {
    const { out } = await collect([]);
    assert.equal(gunzipSync(out).length, 0);
  });
});

describe('prepareForAdoption', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-adopt-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('sets whole-second mtimes clamped to SOURCE_DATE_EPOCH, and counts the tar entries', async () => {
    await mkdir(join(dir, 'a', 'b'), { recursive: true });
    await writeFile(join(dir, 'a', 'b', 'f'), 'x');
    await symlink('b/f', join(dir, 'a', 'link'));
    const entries = prepareForAdoption(dir, new Map([['a', new Map([['trusted.overlay.opaque', Buffer.from('y')]])]]), 1_000_000);
    // a, a/b, a/b/f, a/link, and the opaque marker of a.
    assert.equal(entries, 5);
    for (const p of ['a', 'a/b', 'a/b/f', 'a/link']) assert.equal(lstatSync(join(dir, p)).mtimeMs, 1_000_000_000, p);
  });

  it('refuses a directory with overlayfs xattrs other than opaque, origin and impure', () => {
    for (const name of ['trusted.overlay.redirect', 'trusted.overlay.metacopy', 'user.overlay.nlink']) {
      assert.equal(prepareForAdoption(dir, new Map([['etc/passwd', new Map([[name, Buffer.from([0, 1])]])]]), undefined), undefined, name);
    }
    const origin = new Map([['etc/passwd', new Map([['trusted.overlay.origin', Buffer.from([0, 1])]])]]);
    assert.equal(prepareForAdoption(dir, origin, undefined), 0);
  });
});
