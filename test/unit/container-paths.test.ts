import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { test } from 'node:test';
import { containerPaths } from '../../src/runtime/state.js';

test('containerPaths: each path is what path.join gives, from roots with a trailing slash or `..` in them too', () => {
  const id = 'a'.repeat(64);
  for (const [root, stateDir] of [
    ['/var/lib/dockless', '/run/dockless'],
    ['/var/lib/dockless/', '/run/dockless//'],
    ['/var/lib/x/../dockless', './state/'],
    ['/', '/'],
  ] as const) {
    const paths = containerPaths(root, stateDir, id);
    const state = join(stateDir, id);
    const bundle = join(root, 'containers', id);
    assert.equal(paths.state, state);
    assert.equal(paths.bundle, bundle);
    for (const [key, name] of Object.entries({ owner: 'owner.json', record: 'state.json', config: 'config.json', launch: 'launch.json', fifo: 'start.fifo' })) {
      assert.equal(paths[key as keyof typeof paths], join(state, name), key);
    }
    // One mount point for every container, each mounting its rootfs there in its own mount namespace.
    assert.equal(paths.target, join(stateDir, '.rootfs'));
    for (const [key, name] of Object.entries({ upper: 'upper', work: 'work', hosts: 'hosts', resolv: 'resolv.conf', log: 'json.log' })) {
      assert.equal(paths[key as keyof typeof paths], join(bundle, name), key);
    }
  }
});
