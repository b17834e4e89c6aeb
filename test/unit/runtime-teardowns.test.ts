import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { noteTeardown, notedTeardowns, settleTeardowns } from '../../src/runtime/teardowns.js';
import { processStartTime } from '../../src/util/index.js';

describe('teardowns', () => {
  const self = { type: 'teardown' as const, pid: process.pid, start: processStartTime(process.pid)! };

  it('a teardown whose process is running is listed by the settle', async () => {
    const dir = `/nonexistent/teardowns-running-${process.pid}`;
    noteTeardown(dir, 'a'.repeat(64), self);
    assert.deepEqual((await settleTeardowns(dir, 0)).map((t) => t.pid), [process.pid]);
  });

  // A forked shim is its own teardown, and the fork server reports its exit: once that exit is in, the
  // teardown is over without a read of /proc (a read per removal, when the noted ones are pruned).
  it('a teardown whose process was seen to exit is not listed, though its pid and start time still match', async () => {
    const dir = `/nonexistent/teardowns-exited-${process.pid}`;
    noteTeardown(dir, 'b'.repeat(64), self, Promise.resolve(true));
    await Promise.resolve();
    assert.equal(notedTeardowns(dir).length, 1);
    assert.deepEqual(await settleTeardowns(dir, 0), []);
  });

  // A fork server that dies reports its ops killed, while a detached one lives on: such an end is no proof.
  it('a teardown whose process was not seen to exit normally is listed', async () => {
    const dir = `/nonexistent/teardowns-killed-${process.pid}`;
    noteTeardown(dir, 'd'.repeat(64), self, Promise.resolve(false));
    await Promise.resolve();
    assert.deepEqual((await settleTeardowns(dir, 0)).map((t) => t.pid), [process.pid]);
  });

  it('a teardown whose process has not exited yet is listed', async () => {
    const dir = `/nonexistent/teardowns-pending-${process.pid}`;
    noteTeardown(dir, 'c'.repeat(64), self, new Promise(() => undefined));
    assert.deepEqual((await settleTeardowns(dir, 0)).map((t) => t.pid), [process.pid]);
  });
});
