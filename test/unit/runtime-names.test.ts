import { strict as assert } from 'node:assert';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AlreadyExistsError } from '../../src/errors.js';
import { claimName, pruneNames, readNameClaim, releaseName } from '../../src/runtime/names.js';
import { selfStartTime } from '../../src/util/index.js';

let stateDir: string;
const id = (c: string) => c.repeat(64);
const DEAD = { pid: 2 ** 22 + 1, start: 1 }; // above pid_max: no such process
const ME = () => ({ pid: process.pid, start: selfStartTime() });

before(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'dl-names-'));
  await mkdir(join(stateDir, 'names'));
});
after(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

async function holder(name: string, claim: { id: string; pid: number; start: number }, state: 'none' | 'dir' | 'record') {
  await writeFile(join(stateDir, 'names', name), JSON.stringify(claim));
  if (state !== 'none') await mkdir(join(stateDir, claim.id), { recursive: true });
  if (state === 'record') await writeFile(join(stateDir, claim.id, 'state.json'), '{}');
}

// The old claim code took a name whose holder had no state directory yet, i.e. one still launching.
test('a name whose launch is in progress (state directory, no record, live launcher) is not taken over', async () => {
  await holder('launching', { id: id('a'), ...ME() }, 'dir');
  await assert.rejects(claimName(stateDir, 'launching', id('b')), AlreadyExistsError);
  assert.equal((await readNameClaim(stateDir, 'launching'))?.id, id('a'));
});

test('a name held by a recorded container is kept even when its launcher is gone', async () => {
  await holder('recorded', { id: id('c'), ...DEAD }, 'record');
  await assert.rejects(claimName(stateDir, 'recorded', id('d')), AlreadyExistsError);
});

test('a dead claim (launcher gone before the record, or state removed) is taken over once', async () => {
  await holder('crashed', { id: id('e'), ...DEAD }, 'dir');
  await holder('removed', { id: id('f'), ...ME() }, 'none');
  await mkdir(join(stateDir, id('1')));
  await mkdir(join(stateDir, id('2')));
  const results = await Promise.allSettled([claimName(stateDir, 'crashed', id('1')), claimName(stateDir, 'crashed', id('2'))]);
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  const winner = (await readNameClaim(stateDir, 'crashed'))!.id;
  assert.ok([id('1'), id('2')].includes(winner));
  await claimName(stateDir, 'removed', id('1'));
  await releaseName(stateDir, 'removed', id('2')); // not its holder: no effect
  assert.equal((await readNameClaim(stateDir, 'removed'))?.id, id('1'));
  await releaseName(stateDir, 'removed', id('1'));
  assert.equal(await readNameClaim(stateDir, 'removed'), undefined);
});

test('a takeover lock left by a dead process is broken; pruneNames frees dead claims only', async () => {
  await holder('locked', { id: id('9'), ...DEAD }, 'none');
  await writeFile(join(stateDir, 'names', '.lock-locked'), JSON.stringify({ ...DEAD, token: 'x' }));
  await mkdir(join(stateDir, id('3')));
  await claimName(stateDir, 'locked', id('3'));
  assert.equal((await readNameClaim(stateDir, 'locked'))?.id, id('3'));
  await holder('gone', { id: id('8'), ...DEAD }, 'none');
  const freed = await pruneNames(stateDir);
  assert.deepEqual(freed, ['gone']);
  const left = (await readdir(join(stateDir, 'names'))).filter((n) => n.startsWith('.'));
  assert.deepEqual(left, []);
});

// A takeover that judged a claim dead (released, its state directory gone) unlinked by path, and took the
// claim another launch had made in between: both held the name. Every removal now holds the name's lock.
test('a release waits for the name\'s lock, so that no takeover in progress has its judged claim swapped', async () => {
  await holder('busy', { id: id('7'), ...ME() }, 'record');
  const lock = join(stateDir, 'names', '.lock-busy');
  await writeFile(lock, JSON.stringify({ ...ME(), token: 'a-takeover-in-progress' }));
  let released = false;
  const releasing = releaseName(stateDir, 'busy', id('7')).then(() => {
    released = true;
  });
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(released, false, 'released while another holds the name\'s lock');
  assert.equal((await readNameClaim(stateDir, 'busy'))?.id, id('7'));
  await rm(lock);
  await releasing;
  assert.equal(await readNameClaim(stateDir, 'busy'), undefined);
  assert.deepEqual((await readdir(join(stateDir, 'names'))).filter((n) => n.includes('busy')), []);
});
