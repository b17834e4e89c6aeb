import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isoTime } from '../../src/util/index.js';

// Records keep `created`/`started`/`finishedAt` as Date.prototype.toISOString writes them: isoTime must agree to the character.
test('isoTime writes what Date.prototype.toISOString writes', () => {
  const edges = [
    0, 1, 999, 1000, 86_399_999, 86_400_000, -1, -86_400_001,
    951_782_400_000, // 2000-02-29
    951_868_799_999, // 2000-02-29T23:59:59.999Z
    4_107_542_400_000, // 2100-03-01: not a leap year
    253_402_300_799_999, // 9999-12-31T23:59:59.999Z
    -62_167_219_200_000, // 0000-01-01
  ];
  let seed = 12345;
  const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  const samples = [...edges, ...Array.from({ length: 20_000 }, () => Math.floor(random() * 253_402_300_799_999 * 1.2) - 62_167_219_200_000 / 5)];
  for (const ms of samples.filter((t) => t >= -62_167_219_200_000 && t <= 253_402_300_799_999)) {
    assert.equal(isoTime(ms), new Date(ms).toISOString(), `at ${ms}`);
  }
});

test('isoTime defaults to now', () => {
  const before = Date.now();
  const at = Date.parse(isoTime());
  assert.ok(at >= before && at <= Date.now());
});
