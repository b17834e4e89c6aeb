// Warm once, fork many: snapshots of a prepared container and copy-on-write
// clones of it, as root (the rootless run of the same cases is in
// rootless.test.ts), and process-state clones where CRIU can checkpoint.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { commitContainer, ImageStore, importRootfs, InvalidArgumentError, InvalidStateError, processStateSupport, Runtime, UnavailableError } from '../../src/index.js';
import { CLONE_CASES } from '../fixtures/clone-cases.js';
import { cannotRun, makeWorld, type World } from '../fixtures/world.js';

const why = cannotRun();
if (why !== undefined) console.log(`# skipped clone: ${why}`);

describe('snapshots and clones (root)', { skip: why }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => world?.dispose());

  for (const c of CLONE_CASES) {
    it(c.name, async () => {
      await c.run(world.runtime, world.rootfs);
      assert.deepEqual(await world.runtime.list(), [], 'the case leaves no container');
    });
  }

  it("a clone of an image's container leases the image, a commit of it is refused (it would lose the snapshot's files), and a moved tag is refused rather than mixed", async () => {
    const store = await ImageStore.open({ root: join(world.base, 'store') });
    await using runtime = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir, store });
    await importRootfs(store, world.rootfs, { tag: 'clone-base:1' });
    const tpl = await runtime.run({ image: 'clone-base:1', cmd: ['sleep', '1000'] });
    assert.equal((await tpl.output(['sh', '-c', 'echo from-image-template > /state'])).exitCode, 0);
    await using snapshot = await runtime.snapshot(tpl);
    await using a = await snapshot.clone();
    assert.equal((await a.output(['cat', '/state'])).stdout, 'from-image-template\n');
    assert.ok((await store.leases()).some((l) => l.id === `container-${a.id}`), "the clone leases the image's snapshots");
    // Its upper dir lacks the snapshot's files: a commit of it alone would be an image without /state.
    await assert.rejects(commitContainer(store, runtime, a, { tag: 'clone-commit:1' }), (error: unknown) => {
      assert.ok(error instanceof InvalidStateError, String(error));
      assert.match(error.message, /runs on snapshot/);
      return true;
    });
    // The tag now names another image: the layer belongs over the old one's layers only.
    const other = join(world.base, 'other-rootfs');
    await mkdir(join(other, 'etc'), { recursive: true });
    await writeFile(join(other, 'etc', 'other'), 'other\n');
    await importRootfs(store, other, { tag: 'clone-base:1' });
    const before = await readdir(join(runtime.root, 'templates', snapshot.id, 'holds'));
    await assert.rejects(snapshot.clone(), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError, String(error));
      assert.match(error.message, /not its template's/);
      return true;
    });
    assert.deepEqual(await readdir(join(runtime.root, 'templates', snapshot.id, 'holds')), before, 'the refused clone left no hold');
    await a.remove({ force: true });
    await tpl.remove();
  });

  it('four clones started at once each get their own upper dir over the one layer, and all four holds go with them', async () => {
    const tpl = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '1000'] });
    assert.equal((await tpl.output(['sh', '-c', 'echo 0 > /n'])).exitCode, 0);
    const snapshot = await world.runtime.snapshot(tpl);
    const clones = await Promise.all([1, 2, 3, 4].map(() => snapshot.clone({ cmd: ['sleep', '1000'] })));
    await Promise.all(clones.map((c, i) => c.output(['sh', '-c', `echo ${i + 1} > /n`])));
    assert.deepEqual(await Promise.all(clones.map(async (c) => (await c.output(['cat', '/n'])).stdout)), ['1\n', '2\n', '3\n', '4\n']);
    const holds = join(world.runtime.root, 'templates', snapshot.id, 'holds');
    assert.equal((await readdir(holds)).filter((n) => n.startsWith('clone-')).length, 5, 'four clones and the template');
    await Promise.all(clones.map((c) => c.remove({ force: true })));
    await tpl.remove();
    assert.ok(existsSync(snapshot.layer), 'the handle still holds it');
    await snapshot.release();
    assert.equal(existsSync(snapshot.layer), false);
  });

  it("a snapshot whose handle is gone goes with its template's removal", async () => {
    const tpl = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '1000'] });
    const snapshot = await world.runtime.snapshot(tpl);
    const dir = join(world.runtime.root, 'templates', snapshot.id);
    // As a handle of a process that died would be: its hold file gone, nothing else holding.
    for (const name of await readdir(join(dir, 'holds'))) if (name.startsWith('handle-')) await unlink(join(dir, 'holds', name));
    assert.ok(existsSync(dir));
    await tpl.remove();
    assert.equal(existsSync(dir), false, "the template's removal was its last hold");
    await world.runtime.prune();
  });

  it("SIGKILL of the process that made a snapshot and its clone leaves nothing after prune: the clone dies, then the layer goes", async () => {
    // No reaper: the clone dies with its owner, and its record, then the snapshot with no live hold, go at the next prune.
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', 'fixtures', 'clone-child.ts'), world.runtime.root, world.runtime.stateDir, world.rootfs], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    for await (const chunk of child.stdout!) {
      out += (chunk as Buffer).toString();
      if (out.includes('\n')) break;
    }
    const made = JSON.parse(out) as { snapshot: string; layer: string; clone: string; template: string };
    assert.ok(existsSync(made.layer));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const clone = await world.runtime.get(made.clone);
    await clone.wait();
    assert.ok(existsSync(made.layer), 'the dead clone and the stopped template still hold the layer until pruned');
    await world.runtime.prune();
    assert.equal(existsSync(made.layer), false);
    assert.deepEqual(await readdir(join(world.runtime.root, 'templates')).then((names) => names.filter((n) => !n.startsWith('.'))), []);
    assert.deepEqual(await world.runtime.list(), []);
  });

  it('processState: true is refused with CRIU\'s own reason, or as not built where CRIU works, and stops nothing', async () => {
    const tpl = await world.runtime.run({ rootfs: world.rootfs, cmd: ['sleep', '1000'] });
    try {
      const reason = processStateSupport();
      if (reason !== undefined) console.log(`# process-state clones unavailable here: ${reason}`);
      await assert.rejects(world.runtime.snapshot(tpl, { processState: true }), (error: unknown) => {
        assert.ok(error instanceof UnavailableError, String(error));
        assert.match(error.message, reason !== undefined ? /process state cannot be cloned: criu/ : /not implemented/);
        return true;
      });
      assert.equal(tpl.status, 'running', 'nothing was stopped');
    } finally {
      await tpl.remove({ force: true });
    }
  });
});
