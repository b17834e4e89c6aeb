import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { InvalidArgumentError, Runtime } from '../../src/index.js';

// A relative or empty directory resolved against whatever the cwd was, and a bad
// value surfaced later as a raw Node error from deep inside the first launch.
test('new Runtime() refuses directories that are not absolute paths, with a typed error', () => {
  for (const bad of [{ stateDir: 'relative/state' }, { root: '' }, { root: '/tmp/a\0b' }, { stateDir: 42 as unknown as string }]) {
    assert.throws(() => new Runtime(bad), InvalidArgumentError, JSON.stringify(bad));
  }
  assert.throws(() => new Runtime({ helperPath: '' }), InvalidArgumentError);
  const ok = new Runtime({ root: '/tmp/dl-root', stateDir: '/tmp/dl-state' });
  assert.equal(ok.stateDir, '/tmp/dl-state');
});

test('Runtime is AsyncDisposable', async () => {
  await using runtime = new Runtime({ root: '/tmp/dl-root-unused', stateDir: '/tmp/dl-state-unused' });
  assert.equal(typeof runtime[Symbol.asyncDispose], 'function');
});
