import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSnapshotDirName, snapshotDirName, snapshotVariant } from '../../src/store/snapshot-variant.js';

const CHAIN = `sha256:${'ab'.repeat(32)}` as const;
const CHAIN512 = `sha512:${'cd'.repeat(64)}` as const;

describe('snapshot variants', () => {
  it('names the root variant by the bare hex, as snapshots were named before variants', () => {
    assert.equal(snapshotDirName(CHAIN, 'root'), 'ab'.repeat(32));
    assert.equal(snapshotDirName(CHAIN, 'rootless'), `${'ab'.repeat(32)}-rootless`);
  });

  it('parses the names it makes, and nothing else', () => {
    for (const chainId of [CHAIN, CHAIN512]) {
      for (const variant of ['root', 'rootless'] as const) {
        assert.deepEqual(parseSnapshotDirName(snapshotDirName(chainId, variant)), { chainId, variant });
      }
    }
    for (const name of ['tmp-123-4-abc', `${'ab'.repeat(32)}-other`, 'AB'.repeat(32), '-rootless', `${'ab'.repeat(31)}-rootless`]) {
      assert.equal(parseSnapshotDirName(name), undefined, name);
    }
  });

  it('takes the unpacker default when rootless is not given', () => {
    assert.equal(snapshotVariant(true), 'rootless');
    assert.equal(snapshotVariant(false), 'root');
    assert.equal(snapshotVariant(undefined), process.getuid?.() === 0 ? 'root' : 'rootless');
  });
});
