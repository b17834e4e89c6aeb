// dockless/testing `reuse` across worker processes: four workers asking at the
// same moment get one container, made once; it lives until the last live user
// lets go, and a worker killed by SIGKILL stops counting.
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { startContainer } from '../../src/testing/index.js';
import { cannotRun, makeWorld, type World } from '../fixtures/world.js';

const why = cannotRun();
if (why !== undefined) console.log(`# skipped testing-reuse: ${why}`);
const child = join(import.meta.dirname, '..', 'fixtures', 'reuse-child.ts');

interface Worker {
  proc: ChildProcess;
  lines: AsyncIterator<string>;
  stderr: string[];
}

function worker(world: World): Worker {
  const proc = spawn(process.execPath, ['--import', 'tsx', child, join(world.base, 'root'), world.runtime.stateDir, world.rootfs], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stderr: string[] = [];
  proc.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  return { proc, lines: createInterface({ input: proc.stdout! })[Symbol.asyncIterator](), stderr };
}

async function nextLine(w: Worker): Promise<string> {
  const { value, done } = await w.lines.next();
  if (done) await new Promise((resolve) => (w.proc.exitCode !== null ? resolve(undefined) : w.proc.once('exit', resolve)));
  assert.ok(!done, `worker ended early (exit ${w.proc.exitCode}): ${w.stderr.join('')}`);
  return value;
}

describe('dockless/testing reuse', { skip: why }, () => {
  let world: World;
  const workers: Worker[] = [];
  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    for (const w of workers) w.proc.kill('SIGKILL');
    await world?.dispose();
  });

  it('four racing workers share one container, removed after the last live user lets go', async () => {
    for (let i = 0; i < 4; i++) workers.push(worker(world));
    const ready = await Promise.all(workers.map(nextLine));
    const ids = new Set(ready.map((l) => l.split(' ')[1]));
    assert.equal(ids.size, 1, ready.join('\n'));
    const [id] = [...ids] as [string];
    assert.deepEqual((await world.runtime.list()).map((c) => c.id), [id], 'created exactly once');

    // A worker that dies without letting go no longer holds the container.
    workers[0]!.proc.kill('SIGKILL');
    for (const w of workers.slice(1, 3)) {
      w.proc.stdin!.write('release\n');
      assert.equal(await nextLine(w), 'released');
    }
    assert.deepEqual((await world.runtime.list()).map((c) => c.id), [id], 'kept while a user remains');
    workers[3]!.proc.stdin!.write('release\n');
    assert.equal(await nextLine(workers[3]!), 'released');
    assert.deepEqual(await world.runtime.list(), []);
    assert.ok(!existsSync(join(world.runtime.stateDir, 'testing-reuse', 'race')), 'the reuse directory is gone');
  });

  it('keep leaves the container for the next run; a kept container that died is made again', async () => {
    const options = { rootfs: world.rootfs, cmd: ['sleep', '1000'] };
    const first = await startContainer(world.runtime, { ...options, reuse: { key: 'kept', keep: true } });
    await first[Symbol.asyncDispose]();
    assert.deepEqual((await world.runtime.list()).map((c) => c.id), [first.id], 'kept after its last user');
    const second = await startContainer(world.runtime, { ...options, reuse: { key: 'kept', keep: true } });
    assert.equal(second.id, first.id, 'the next run finds it');
    await second.container.kill('SIGKILL');
    await second.container.wait();
    await second[Symbol.asyncDispose]();
    const third = await startContainer(world.runtime, { ...options, reuse: { key: 'kept' } });
    assert.notEqual(third.id, first.id, 'a dead one is not handed out');
    await third[Symbol.asyncDispose]();
    assert.deepEqual(await world.runtime.list(), [], 'the last user without keep removes it, and the dead one is gone too');
  });
});
