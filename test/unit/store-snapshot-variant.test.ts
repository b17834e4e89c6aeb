import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../../src/errors.js';
import { chooseVariant, parseSnapshotDirName, snapshotDirName, snapshotVariant, usernsVariant } from '../../src/store/snapshot-variant.js';

const CHAIN = `sha256:${'ab'.repeat(32)}` as const;
const CHAIN512 = `sha512:${'cd'.repeat(64)}` as const;
const own = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
function maps(sub: number) {
  return {
    uidMap: [{ containerId: 0, hostId: own.uid, size: 1 }, { containerId: 1, hostId: sub, size: 65536 }],
    gidMap: [{ containerId: 0, hostId: own.gid, size: 1 }, { containerId: 1, hostId: sub, size: 65536 }],
  };
}
const MAPS = maps(100_000);

describe('snapshot variants', () => {
  it('names the root variant by the bare hex, as snapshots were named before variants', () => {
    assert.equal(snapshotDirName(CHAIN, 'root'), 'ab'.repeat(32));
    assert.equal(snapshotDirName(CHAIN, 'rootless'), `${'ab'.repeat(32)}-rootless`);
  });

  it('parses the names it makes, and nothing else', () => {
    for (const chainId of [CHAIN, CHAIN512]) {
      for (const variant of ['root', 'rootless', usernsVariant(MAPS)] as const) {
        assert.deepEqual(parseSnapshotDirName(snapshotDirName(chainId, variant)), { chainId, variant });
      }
    }
    for (const name of ['tmp-123-4-abc', `${'ab'.repeat(32)}-other`, `${'ab'.repeat(32)}-userns-`, `${'ab'.repeat(32)}-userns-XYZ0123456789abc`, `${'ab'.repeat(32)}-rootless-x`, 'AB'.repeat(32), '-rootless', `${'ab'.repeat(31)}-rootless`]) {
      assert.equal(parseSnapshotDirName(name), undefined, name);
    }
  });

  it('takes the unpacker default when rootless is not given', () => {
    // A caller that is not root gets its subordinate ids' namespace where it has one.
    const unprivileged = process.getuid?.() === 0 ? /^rootless$/ : /^(rootless|userns-[0-9a-f]{16})$/;
    assert.match(snapshotVariant(true), unprivileged);
    assert.equal(snapshotVariant(false), 'root');
    assert.match(snapshotVariant(undefined), process.getuid?.() === 0 ? /^root$/ : unprivileged);
  });

  // Under other maps the same host id is another owner inside: maps are part of the snapshot's name.
  it('names a user namespace variant by its maps: other maps, another snapshot', () => {
    const a = chooseVariant({ userns: MAPS });
    assert.match(a.variant, /^userns-[0-9a-f]{16}$/);
    assert.equal(a.rootless, true);
    assert.deepEqual(a.userns, MAPS);
    assert.equal(chooseVariant({ userns: maps(100_000) }).variant, a.variant);
    assert.notEqual(chooseVariant({ userns: maps(200_000) }).variant, a.variant);
    assert.match(snapshotDirName(CHAIN, a.variant), /^(ab){32}-userns-[0-9a-f]{16}$/);
  });

  it('takes maps of the caller alone, or none, as the rootless variant', () => {
    const single = { uidMap: [{ containerId: 0, hostId: own.uid, size: 1 }], gidMap: [{ containerId: 0, hostId: own.gid, size: 1 }] };
    assert.deepEqual(chooseVariant({ userns: single }), { variant: 'rootless', rootless: true });
    assert.deepEqual(chooseVariant({ rootless: true, userns: false }), { variant: 'rootless', rootless: true });
    assert.deepEqual(chooseVariant({ rootless: false, userns: false }), { variant: 'root', rootless: false });
  });

  it('refuses maps whose 0 is not the caller: the unpack writes files as the namespace root', () => {
    const other = { uidMap: [{ containerId: 0, hostId: own.uid + 1, size: 2 }], gidMap: [{ containerId: 0, hostId: own.gid, size: 2 }] };
    assert.throws(() => chooseVariant({ userns: other }), InvalidArgumentError);
  });
});
