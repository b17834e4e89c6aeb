import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import zlib from 'node:zlib';
import { decompress } from '../../src/layer/streams.js';
import { doneWithBuffer, releaseBuffer, releaseChunk, shareBuffer } from '../../src/util/index.js';

/** `size` bytes that gzip well but not trivially: random 4 KiB blocks, each repeated a few times. */
function compressible(size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  for (let at = 0; at < size; at += 16 * 1024) {
    const block = randomBytes(4096);
    for (let i = at; i < Math.min(size, at + 16 * 1024); i += 4096) block.copy(out, i, 0, Math.min(4096, size - i));
  }
  return out;
}

async function* pieces(buf: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < buf.byteLength; at += size) yield buf.subarray(at, at + size);
}

describe('releaseBuffer', () => {
  it('detaches the buffer and frees its memory while it is still referenced', async () => {
    const big = Buffer.allocUnsafeSlow(64 << 20).fill(7);
    const before = process.memoryUsage().arrayBuffers;
    releaseBuffer(big.buffer);
    assert.equal(big.byteLength, 0);
    // The first release waits for the port's peer to be closed, a turn or two of the event loop; later ones free at once.
    for (let turn = 0; turn < 100 && before - process.memoryUsage().arrayBuffers < 60 << 20; turn++) await new Promise((r) => setImmediate(r));
    const freed = before - process.memoryUsage().arrayBuffers;
    assert.ok(freed >= 60 << 20, `freed ${freed} bytes`);
    const again = Buffer.allocUnsafeSlow(64 << 20).fill(7);
    const held = process.memoryUsage().arrayBuffers;
    releaseBuffer(again.buffer);
    assert.ok(held - process.memoryUsage().arrayBuffers >= 60 << 20, 'a later release frees at once');
  });

  it('leaves alone what cannot be transferred: a detached buffer, a SharedArrayBuffer', () => {
    const small = new Uint8Array(16);
    releaseBuffer(small.buffer);
    releaseBuffer(small.buffer);
    const shared = new SharedArrayBuffer(16);
    releaseBuffer(shared);
    assert.equal(shared.byteLength, 16);
  });

  it('releaseChunk frees a chunk that spans its buffer, never a view of part of one', () => {
    const whole = Buffer.allocUnsafeSlow(64 << 10);
    releaseChunk(whole);
    assert.equal(whole.byteLength, 0, 'a whole chunk was not freed');
    const backing = Buffer.allocUnsafeSlow(64 << 10);
    const head = backing.subarray(0, 1024);
    const tail = backing.subarray(1024);
    releaseChunk(head);
    releaseChunk(tail);
    assert.equal(backing.byteLength, 64 << 10, 'a view freed the buffer others hold');
  });
});

describe('decompress', () => {
  it('with consumed: frees each gunzip output buffer once read through, and the bytes read are intact', async () => {
    const plain = compressible(8 << 20);
    const gz = zlib.gzipSync(plain, { level: 1 });
    const seen: Uint8Array[] = [];
    const copies: Buffer[] = [];
    for await (const chunk of decompress(pieces(gz, 64 * 1024), 'gzip', 'test', { consumed: true })) {
      seen.push(chunk);
      copies.push(Buffer.from(chunk));
    }
    assert.equal(Buffer.concat(copies).compare(plain), 0);
    const freed = seen.filter((chunk) => chunk.byteLength === 0).length;
    // 8 MiB in 256 KiB output buffers: all but the last were read through and freed.
    assert.ok(freed >= 20, `${freed} of ${seen.length} chunks freed`);
  });

  it('with consumed, keeps the resident memory of gunzip output flat: dead output buffers do not pile up', async () => {
    const plain = compressible(96 << 20);
    const gz = zlib.gzipSync(plain, { level: 1 });
    let most = 0;
    let bytes = 0;
    for await (const chunk of decompress(pieces(gz, 64 * 1024), 'gzip', 'test', { consumed: true })) {
      bytes += chunk.byteLength;
      most = Math.max(most, process.memoryUsage().arrayBuffers);
    }
    assert.equal(bytes, plain.byteLength);
    const held = most - plain.byteLength - gz.byteLength;
    // Without freeing, V8 lets about 32 MiB of dead young buffers wait for a scavenge.
    assert.ok(held < 8 << 20, `gunzip held ${(held / 2 ** 20).toFixed(1)} MiB of buffers at its peak`);
  });

  it('with consumed and a slow reader, hands out zlib\'s own output chunks, never a joined copy, and frees them all', async () => {
    // A reader slower than zlib let the stream buffer two outputs, which a read then joined into a fresh
    // copy: the copy was freed, zlib's buffers behind it were left for a garbage collection.
    const plain = compressible(8 << 20);
    const gz = zlib.gzipSync(plain, { level: 1 });
    const seen: Uint8Array[] = [];
    const copies: Buffer[] = [];
    for await (const chunk of decompress(pieces(gz, 1 << 20), 'gzip', 'test', { consumed: true })) {
      assert.ok(chunk.byteLength <= 256 * 1024, `a chunk of ${chunk.byteLength} bytes: zlib hands out at most 256 KiB`);
      copies.push(Buffer.from(chunk));
      seen.push(chunk);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    assert.equal(Buffer.concat(copies).compare(plain), 0);
    const freed = seen.filter((chunk) => chunk.byteLength === 0).length;
    assert.ok(freed >= 31, `${freed} of ${seen.length} chunks freed`);
  });

  it('without consumed, leaves every chunk as it was handed out', async () => {
    const plain = compressible(2 << 20);
    const gz = zlib.gzipSync(plain, { level: 1 });
    const seen: Uint8Array[] = [];
    for await (const chunk of decompress(pieces(gz, 64 * 1024), 'gzip', 'test')) seen.push(chunk);
    assert.equal(Buffer.concat(seen).compare(plain), 0);
  });
});

describe('shareBuffer and doneWithBuffer', () => {
  it('free a chunk when its last reader is done, and leave views of part of a buffer alone', async () => {
    const chunk = Buffer.allocUnsafeSlow(1024).fill(1);
    shareBuffer(chunk, 2);
    doneWithBuffer(chunk);
    assert.equal(chunk.byteLength, 1024, 'one reader is left');
    doneWithBuffer(chunk);
    assert.equal(chunk.byteLength, 0);
    const whole = Buffer.allocUnsafeSlow(1024).fill(1);
    const part = whole.subarray(0, 512);
    shareBuffer(part, 1);
    doneWithBuffer(part);
    doneWithBuffer(whole);
    assert.equal(whole.byteLength, 1024, 'neither a part shared nor a buffer never shared is freed');
  });

  it('gunzip is a reader: it is done with an input chunk once zlib consumed it', async () => {
    const plain = compressible(4 << 20);
    const gz = zlib.gzipSync(plain, { level: 1 });
    const inputs: Buffer[] = [];
    for (let at = 0; at < gz.byteLength; at += 64 * 1024) inputs.push(Buffer.from(gz.subarray(at, at + 64 * 1024)));
    async function* given(): AsyncGenerator<Uint8Array> {
      for (const chunk of inputs) {
        shareBuffer(chunk, 1);
        yield chunk;
      }
    }
    const out: Buffer[] = [];
    for await (const chunk of decompress(given(), 'gzip', 'test')) out.push(Buffer.from(chunk));
    assert.equal(Buffer.concat(out).compare(plain), 0);
    assert.ok(inputs.every((chunk) => chunk.byteLength === 0), 'every input chunk freed');
  });
});
