import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortError, InvalidStateError } from '../../src/errors.js';
import { processStartTime } from '../../src/util/index.js';
import { withLock } from '../../src/store/lock.js';

describe('store lock', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockless-store-lock-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('serialises holders and leaves no lock behind', async () => {
    const lock = join(dir, 'a.lock');
    let inside = 0;
    let max = 0;
    await Promise.all(
      Array.from({ length: 8 }, () =>
        withLock(lock, async () => {
          inside++;
          max = Math.max(max, inside);
          await sleep(2);
          inside--;
        }),
      ),
    );
    assert.equal(max, 1);
    assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('a.lock')), []);
  });

  // A holder killed by SIGKILL never releases; its lock must be broken at once, not after a timeout.
  it('breaks the lock of a dead process immediately', async () => {
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const deadPid = Number(child.stdout.toString());
    assert.equal(processStartTime(deadPid), undefined);
    const lock = join(dir, 'stale.lock');
    await mkdir(lock);
    await writeFile(join(lock, `owner-${deadPid}-12345-abcdefabcdef`), '');
    const started = Date.now();
    const result = await withLock(lock, async () => 'got it', { timeoutMs: 2000 });
    assert.equal(result, 'got it');
    assert.ok(Date.now() - started < 500);
  });

  it('does not break the lock of a live process, and times out with InvalidStateError', async () => {
    const lock = join(dir, 'live.lock');
    await mkdir(lock);
    // pid 1 is alive; its start time is real, so the owner counts as live.
    await writeFile(join(lock, `owner-1-${processStartTime(1)}-abcdefabcdef`), '');
    await assert.rejects(withLock(lock, async () => 'never', { timeoutMs: 100 }), InvalidStateError);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(withLock(lock, async () => 'never', { signal: controller.signal, timeoutMs: 0 }), AbortError);
  });

  it('treats a reused pid with another start time as dead', async () => {
    const lock = join(dir, 'reused.lock');
    await mkdir(lock);
    await writeFile(join(lock, `owner-1-${(processStartTime(1) ?? 0) + 1}-abcdefabcdef`), '');
    assert.equal(await withLock(lock, async () => 'ok', { timeoutMs: 1000 }), 'ok');
  });
});
