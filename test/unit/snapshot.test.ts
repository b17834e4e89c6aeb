// The pure parts of container snapshots: which lower dirs are snapshot
// layers, what a clone's spec may override, and which mounts clones would share.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../../src/index.js';
import { cloneSpec, sharedBindTargets, snapshotLayers } from '../../src/runtime/snapshot.js';

const ID1 = 'a'.repeat(64);
const ID2 = 'b'.repeat(64);

describe('snapshot layers among lower dirs', () => {
  it('finds the snapshots of this root, top-most first, and nothing else', () => {
    assert.deepEqual(
      snapshotLayers('/r', [`/r/templates/${ID2}/layer`, `/r/templates/${ID1}/layer`, '/rootfs', `/other/templates/${ID1}/layer`, `/r/templates/${ID1}/layer/x`, `/r/templates/short/layer`]),
      [ID2, ID1],
    );
  });
});

describe("a clone's spec", () => {
  const template = { rootfs: '/rootfs', name: 'db', cmd: ['postgres'], env: { A: '1' } };

  it("is the template's without its name, with the overrides on top", () => {
    assert.deepEqual(cloneSpec(template, { cmd: ['sleep', '1'] }, 'clone'), { rootfs: '/rootfs', cmd: ['sleep', '1'], env: { A: '1' } });
    assert.deepEqual(cloneSpec(template, { name: 'mine' }, 'clone').name, 'mine');
  });

  it('cannot change the root: the layer only makes sense over its own lower dirs', () => {
    assert.throws(() => cloneSpec(template, { rootfs: '/elsewhere' }, 'clone'), InvalidArgumentError);
    assert.throws(() => cloneSpec(template, { image: 'alpine' }, 'clone'), InvalidArgumentError);
    assert.doesNotThrow(() => cloneSpec(template, { rootfs: '/rootfs' }, 'clone'));
  });
});

describe('mounts clones would share', () => {
  it('are the writable bind mounts only', () => {
    assert.deepEqual(
      sharedBindTargets({
        mounts: [
          { type: 'bind', source: '/a', target: '/rw' },
          { type: 'bind', source: '/b', target: '/ro', readonly: true },
          { type: 'tmpfs', target: '/tmp' },
        ],
      }),
      ['/rw'],
    );
  });
});
