/**
 * randomHex (src/util/random.ts): the ids and unique names of containers,
 * snapshots and trash entries, read from /dev/urandom so that a run does not
 * load Node's crypto modules.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomHex } from '../../src/util/random.js';
import { ownerToken, parseOwnerToken, withOwnerToken } from '../../src/util/process.js';

test('randomHex gives the asked number of bytes as lowercase hex, never the same twice, across pool refills', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    for (const n of [4, 6, 32, 300]) {
      const hex = randomHex(n);
      assert.match(hex, new RegExp(`^[0-9a-f]{${2 * n}}$`));
      assert.equal(seen.has(hex), false);
      seen.add(hex);
    }
  }
});

test('withOwnerToken replaces the owner at the end of a name, and leaves a name without one', () => {
  const token = ownerToken();
  const other = '12345-678-0123456789ab';
  assert.equal(withOwnerToken(`/s/.trash/abc-${token}`, other), `/s/.trash/abc-${other}`);
  assert.deepEqual(parseOwnerToken(withOwnerToken(`abc-${token}`, other)), { pid: 12345, start: 678 });
  assert.equal(withOwnerToken('/s/.trash/plain', other), '/s/.trash/plain');
});
