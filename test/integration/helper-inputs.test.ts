import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { locateHelper, nativeBuildDir } from '../../src/helper/locate.js';
import { spawnHelper } from '../../src/helper/spawn.js';

const skip = !existsSync(join(nativeBuildDir, 'dockless-helper')) ? `${nativeBuildDir}/dockless-helper not built: run npm run build` : undefined;
if (skip !== undefined) console.log(`# skipping the helper input tests: ${skip}`);

/** Blocks this thread (and so its event loop) for `ms`. */
const block = (ms: number): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
};

describe("a spawned helper's inputs", { skip }, () => {
  let base: string;
  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'dl-helper-inputs-'));
  });
  after(async () => {
    if (base !== undefined) await rm(base, { recursive: true, force: true });
  });

  // A process's first container: the helper waited, arguments in hand, for the end of its pipe, which
  // came only once this thread was back in its event loop, after the rest of the launch's cold code.
  it('are whole at its start: it does not wait for this thread to return to its event loop', async () => {
    const tree = join(base, 'tree');
    await mkdir(join(tree, 'a', 'b'), { recursive: true });
    const helper = spawnHelper('rm', ['--', tree], { stdio: ['ignore', 'ignore', 'pipe'], context: 'test rm', helperPath: locateHelper() });
    let removed = false;
    for (let i = 0; i < 100 && !removed; i++) {
      block(20);
      removed = !existsSync(tree);
    }
    await helper.exit;
    assert.equal(helper.failure, undefined);
    assert.ok(removed, 'the helper removed nothing while this thread was busy');
  });
});
