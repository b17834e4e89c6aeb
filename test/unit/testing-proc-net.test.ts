import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { parseProcNet } from '../../src/testing/proc-net.js';

// Lines as Linux 6.1 prints them (the trailing fields trimmed where they do not matter).
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41234 1 0000000000000000 100 0 0 10 0
   1: 00000000:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41235 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 41236 1 0000000000000000 20 4 30 10 -1
  12: 0B00A8C0:0016 0200A8C0:D431 06 00000000:00000000 03:00001567 00000000     0        0 0 3 0000000000000000
garbage line
`;

test('tcp: LISTEN sockets are listening, established and time-wait ones are not', () => {
  assert.deepEqual(parseProcNet(TCP, 'tcp'), [
    { protocol: 'tcp', address: '127.0.0.1', port: 8080, state: 0x0a, listening: true },
    { protocol: 'tcp', address: '0.0.0.0', port: 5432, state: 0x0a, listening: true },
    { protocol: 'tcp', address: '127.0.0.1', port: 8080, state: 0x01, listening: false },
    { protocol: 'tcp', address: '192.168.0.11', port: 22, state: 0x06, listening: false },
  ]);
});

const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:18EB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
   3: B80D0120000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0
`;

test('tcp6: each 32-bit word is in host byte order, and the address is written in its short form', () => {
  assert.deepEqual(
    parseProcNet(TCP6, 'tcp').map((s) => [s.address, s.port]),
    [
      ['::', 8080],
      ['::1', 6379],
      ['::ffff:7f00:1', 80],
      ['2001:db8::1', 443],
    ],
  );
});

const UDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 0
  101: 0100007F:A1B2 0100007F:0035 01 00000000:00000000 00:00000000 00000000     0        0 2 2 0000000000000000 0
`;

test('udp: a bound, unconnected socket is listening; a connected one is a client', () => {
  assert.deepEqual(
    parseProcNet(UDP, 'udp').map((s) => [s.address, s.port, s.listening]),
    [
      ['0.0.0.0', 53, true],
      ['127.0.0.1', 41394, false],
    ],
  );
});

test('an empty or header-only table has no sockets', () => {
  assert.deepEqual(parseProcNet('', 'tcp'), []);
  assert.deepEqual(parseProcNet(TCP.split('\n')[0]!, 'tcp'), []);
});
