import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { httpRequest } from '../../src/transfer/http.js';
import { releaseChunk, releaseReads } from '../../src/util/index.js';

describe('httpRequest frees the socket reads of a body', () => {
  it('keeps the memory of a large download flat: dead socket reads do not pile up until a scavenge', async () => {
    // Node's HTTP client copies the body out of each socket read, and the read was left for a scavenge:
    // about 32 MiB of them waited at once during a blob download.
    const block = Buffer.alloc(1 << 20, 7);
    const total = 96;
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-length': String(total * block.byteLength) });
      let sent = 0;
      const more = (): void => {
        while (sent < total) {
          sent++;
          if (!res.write(block)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const response = await httpRequest({ method: 'GET', url: new URL(`http://127.0.0.1:${port}/blob`) });
      const base = process.memoryUsage().arrayBuffers;
      let most = 0;
      let bytes = 0;
      for await (const chunk of response.body) {
        bytes += (chunk as Buffer).byteLength;
        // As the pull does: the body chunk is copied where it goes, then freed.
        releaseChunk(chunk as Buffer);
        most = Math.max(most, process.memoryUsage().arrayBuffers - base);
      }
      assert.equal(bytes, total * block.byteLength);
      assert.ok(most < 8 << 20, `the download held ${(most / 2 ** 20).toFixed(1)} MiB of buffers at its peak`);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('releaseReads frees a chunk only after every earlier listener saw it, and stops when the response ends', () => {
    const socket = new EventEmitter();
    const response = new EventEmitter();
    const seen: number[] = [];
    socket.on('data', (chunk: Uint8Array) => seen.push(chunk.byteLength));
    releaseReads(socket, response);
    const first = new Uint8Array(1024);
    socket.emit('data', first);
    assert.deepEqual(seen, [1024], 'the earlier listener read the chunk whole');
    assert.equal(first.byteLength, 0, 'then it was freed');
    // A listener added after (the next request on a kept-alive socket) has not seen the chunk yet: nothing is freed.
    const later: number[] = [];
    socket.on('data', (chunk: Uint8Array) => later.push(chunk.byteLength));
    const second = new Uint8Array(1024);
    socket.emit('data', second);
    assert.deepEqual(later, [1024]);
    assert.equal(second.byteLength, 1024);
    response.emit('end');
    assert.equal(socket.listenerCount('data'), 2, 'removed once the response ended');
  });
});
