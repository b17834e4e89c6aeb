import { strict as assert } from 'node:assert';
import { setImmediate as tick } from 'node:timers/promises';
import { it } from 'node:test';
import { AbortError } from '../../src/errors.js';
import { raceAbort } from '../../src/util/abort.js';

// A launch aborted before it waited for the helper's pid left that wait's later
// rejection (the helper killed by SIGKILL) unhandled, which fails whatever test runs next.
it('raceAbort on an aborted signal leaves no unhandled rejection of the promise it was given', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    let fail!: (error: Error) => void;
    const later = new Promise<never>((_, reject) => (fail = reject));
    await assert.rejects(raceAbort(later, AbortSignal.abort(), 'run container x'), AbortError);
    fail(new Error('helper killed by SIGKILL'));
    await tick();
    await tick();
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
