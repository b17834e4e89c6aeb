// dockless/testing pull policies against a real registry: `missing` pulls
// once and then keeps what the store has, `always` follows a moved tag,
// `never` does not reach the registry.
import { strict as assert } from 'node:assert';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImageStore, importRootfs, NotFoundError, Runtime } from '../../src/index.js';
import { startContainer, Wait } from '../../src/testing/index.js';
import { registryMissing, startRegistry, type RegistryFixture } from '../fixtures/registry.js';
import { cannotRun, makeWorld, type World } from '../fixtures/world.js';

const why = cannotRun() ?? (await registryMissing());
if (why !== undefined) console.log(`# skipped testing-pull: ${why}`);

describe('dockless/testing pull policy', { skip: why }, () => {
  let world: World;
  let registry: RegistryFixture;
  let source: ImageStore;
  before(async () => {
    world = await makeWorld();
    registry = await startRegistry();
    source = await ImageStore.open({ root: join(world.base, 'source') });
  });
  after(async () => {
    await registry?.stop();
    await world?.dispose();
  });

  /** Pushes the probe rootfs with /version saying `version` as `ref`. */
  async function publish(ref: string, version: string): Promise<void> {
    await writeFile(join(world.rootfs, 'version'), `${version}\n`);
    await importRootfs(source, world.rootfs, { tag: 'local/versioned:1' });
    await source.push('local/versioned:1', { to: ref });
  }

  async function versionSeen(runtime: Runtime, store: ImageStore, ref: string, pullPolicy: 'never' | 'missing' | 'always'): Promise<string> {
    await using job = await startContainer(runtime, { image: ref, store, pullPolicy, cmd: ['cat', '/version'], wait: Wait.forExit(), startupTimeout: 20_000 });
    let out = '';
    for await (const line of job.logs()) out += line.text;
    return out.trim();
  }

  it('missing pulls once, always follows the moved tag, never does not pull', async () => {
    const ref = `${registry.host}/harness/versioned:1`;
    const store = await ImageStore.open({ root: join(world.base, 'store') });
    const runtime = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir, store });
    await assert.rejects(versionSeen(runtime, store, ref, 'never'), NotFoundError);
    await publish(ref, 'v1');
    assert.equal(await versionSeen(runtime, store, ref, 'missing'), 'v1');
    await publish(ref, 'v2');
    assert.equal(await versionSeen(runtime, store, ref, 'missing'), 'v1', 'missing keeps what the store has');
    assert.equal(await versionSeen(runtime, store, ref, 'never'), 'v1');
    assert.equal(await versionSeen(runtime, store, ref, 'always'), 'v2', 'always follows the tag');
  });
});
