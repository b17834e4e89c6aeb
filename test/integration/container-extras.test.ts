// rename, diff, labels and the stop settings of a container, as docker rename,
// docker diff, --label, --stop-signal and --stop-timeout give them.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AlreadyExistsError, InvalidArgumentError } from '../../src/index.js';
import { cannotRun, makeWorld, type World } from '../fixtures/world.js';

describe('container extras', { skip: cannotRun(), concurrency: false }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    await world.dispose();
  });

  it('rename claims the new name first and frees the old one', async () => {
    const { runtime, rootfs } = world;
    await using a = await runtime.run({ rootfs, cmd: ['sleep', '300'], name: 'extras-a', detached: true });
    await using b = await runtime.run({ rootfs, cmd: ['sleep', '300'], name: 'extras-b', detached: true });
    await assert.rejects(a.rename('extras-b'), AlreadyExistsError);
    await assert.rejects(a.rename('bad name!'), InvalidArgumentError);
    await a.rename('extras-c');
    assert.equal(a.name, 'extras-c');
    assert.equal((await runtime.get('extras-c')).id, a.id);
    await assert.rejects(runtime.get('extras-a'));
    // The old name is free for another container at once.
    await b.rename('extras-a');
    assert.equal((await runtime.get('extras-a')).id, b.id);
    assert.equal((await runtime.list()).find((c) => c.id === a.id)?.name, 'extras-c');
  });

  it('diff lists added, changed and deleted paths', async () => {
    const { runtime, rootfs } = world;
    await using c = await runtime.run({ rootfs, cmd: ['sh', '-c', 'mkdir -p /new/sub && echo x > /new/sub/f && echo y >> /etc/passwd && rm /etc/group && sleep 300'], detached: true });
    let changes: { path: string; kind: string }[] = [];
    for (let i = 0; i < 100 && !changes.some((ch) => ch.path === '/etc/group'); i++) {
      changes = await c.diff();
      await new Promise((r) => setTimeout(r, 50));
    }
    const byPath = new Map(changes.map((ch) => [ch.path, ch.kind]));
    assert.equal(byPath.get('/new'), 'A');
    assert.equal(byPath.get('/new/sub/f'), 'A');
    assert.equal(byPath.get('/etc'), 'C');
    assert.equal(byPath.get('/etc/passwd'), 'C');
    assert.equal(byPath.get('/etc/group'), 'D');
    assert.deepEqual(changes.map((ch) => ch.path), [...changes.map((ch) => ch.path)].sort());
  });

  it('labels show in info and inspect; the stop signal and timeout are honoured', async () => {
    const { runtime, rootfs } = world;
    await using c = await runtime.run({
      rootfs,
      cmd: ['sh', '-c', 'trap "exit 5" USR1; trap "" TERM; while :; do sleep 0.1; done'],
      labels: { team: 'db', tier: '' },
      stopSignal: 'SIGUSR1',
      detached: true,
    });
    assert.deepEqual(c.info().labels, { team: 'db', tier: '' });
    assert.deepEqual((await c.inspect()).Config.Labels, { team: 'db', tier: '' });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await c.stop({ timeoutMs: 5000 })).exitCode, 5, 'SIGUSR1, not SIGTERM, ended it');
    await using d = await runtime.run({ rootfs, cmd: ['sh', '-c', 'trap "" TERM; while :; do sleep 0.1; done'], stopTimeoutMs: 200, detached: true });
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    assert.equal((await (await runtime.get(d.id)).stop()).exitCode, 137);
    assert.ok(Date.now() - started < 5000, "the record's 200 ms, not the 10 s default, before SIGKILL");
    await assert.rejects(runtime.run({ rootfs, cmd: ['true'], stopSignal: 'SIGNOPE' as NodeJS.Signals }), InvalidArgumentError);
  });
});
