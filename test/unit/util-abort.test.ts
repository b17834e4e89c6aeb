import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { AbortError } from '../../src/errors.js';
import { raceAbort } from '../../src/util/abort.js';

describe('raceAbort', () => {
  it('settles as the promise does while the signal is quiet', async () => {
    assert.equal(await raceAbort(Promise.resolve(7), new AbortController().signal, 'x'), 7);
    await assert.rejects(raceAbort(Promise.reject(new Error('boom')), new AbortController().signal, 'x'), /boom/);
  });

  it('rejects with an AbortError naming the context when the signal aborts first', async () => {
    const controller = new AbortController();
    const racing = raceAbort(new Promise(() => undefined), controller.signal, 'run container abc');
    controller.abort();
    await assert.rejects(racing, (error: unknown) => error instanceof AbortError && /run container abc: aborted/.test(error.message));
  });

  // A launch aborted before a helper step began raced an already-aborted signal; the helper's
  // step rejected later with nobody listening, and Node reported an unhandled rejection.
  it('leaves no unhandled rejection behind when the signal was aborted before the race', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      let fail!: (error: Error) => void;
      const step = new Promise<never>((_, reject) => {
        fail = reject;
      });
      await assert.rejects(raceAbort(step, AbortSignal.abort(), 'run container abc'), AbortError);
      fail(new Error('helper killed by SIGKILL'));
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(unhandled.map(String), []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('leaves no unhandled rejection behind when the promise fails after the abort', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const controller = new AbortController();
      let fail!: (error: Error) => void;
      const step = new Promise<never>((_, reject) => {
        fail = reject;
      });
      const racing = raceAbort(step, controller.signal, 'x');
      controller.abort();
      await assert.rejects(racing, AbortError);
      fail(new Error('late'));
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(unhandled.map(String), []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
