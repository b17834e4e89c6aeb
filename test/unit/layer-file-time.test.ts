import assert from 'node:assert/strict';
import { closeSync, lstatSync, mkdtempSync, openSync, rmSync, symlinkSync, lutimesSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { paxTime, utimesArg } from '../../src/layer/file-time.js';

describe('paxTime', () => {
  it('reads a PAX time as GNU tar does: towards minus infinity, nine digits, its grammar only', () => {
    const table: Array<[string, { sec: number; nsec: number } | undefined]> = [
      ['1600000000', { sec: 1_600_000_000, nsec: 0 }],
      ['1600000000.987654321', { sec: 1_600_000_000, nsec: 987_654_321 }],
      ['1.123456', { sec: 1, nsec: 123_456_000 }],
      ['1.1234567899', { sec: 1, nsec: 123_456_789 }],
      ['12.', { sec: 12, nsec: 0 }],
      ['4000000000.5', { sec: 4_000_000_000, nsec: 500_000_000 }],
      ['-1', { sec: -1, nsec: 0 }],
      ['-0.5', { sec: -1, nsec: 500_000_000 }],
      ['-86400.5', { sec: -86_401, nsec: 500_000_000 }],
      ['-1.000000000', { sec: -1, nsec: 0 }],
      // GNU tar's own example: digits past the ninth still round a negative time down.
      ['-1.10000000000001', { sec: -2, nsec: 899_999_999 }],
      ['-1.0000000000', { sec: -1, nsec: 0 }],
      ['', undefined],
      ['-', undefined],
      ['+5', undefined],
      [' 5', undefined],
      ['5 ', undefined],
      ['1e9', undefined],
      ['0x10', undefined],
      ['.5', undefined],
      ['Infinity', undefined],
      ['99999999999999999999', undefined],
    ];
    for (const [value, want] of table) assert.deepEqual(paxTime(value), want, value);
  });
});

describe('utimesArg', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dockless-file-time-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('sets through Node the time wanted, to the microsecond, before 1970 too', () => {
    // Node made a negative number the current time; libuv keeps microseconds, truncated towards zero.
    const file = path.join(dir, 'f');
    closeSync(openSync(file, 'w'));
    const link = path.join(dir, 's');
    symlinkSync('f', link);
    const cases: Array<[number, number]> = [
      [0, 0],
      [1, 123_456_789],
      [1_600_000_000, 987_654_321],
      [1_600_000_000, 999_999_999],
      [1_600_000_000, 1_000],
      [4_000_000_000, 999_999],
      [-1, 0],
      [-1, 500_000_000],
      [-1, 999_999_999],
      [-1, 1_000],
      [-86_401, 500_000_000],
      [-2_000_000_000, 123_456_789],
      [-2_000_000_000, 999_999_000],
    ];
    for (const [sec, nsec] of cases) {
      const want = BigInt(sec) * 1_000_000_000n + BigInt(nsec - (nsec % 1000));
      const arg = utimesArg(sec, nsec);
      lutimesSync(link, arg, arg);
      assert.equal(lstatSync(link, { bigint: true }).mtimeNs, want, `${sec} s ${nsec} ns (${arg})`);
    }
  });
});
