import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { waitForHealthy, type HealthChecker } from '../../src/runtime/health.js';

// waitHealthy() without a timeout slept `Infinity` ms: Node clamps that to 1 ms
// (TimeoutOverflowWarning), so the wait re-read the health record about every
// millisecond instead of every 50.
test('waitHealthy without a timeout polls every 50 ms, not in a 1 ms loop (sleep of Infinity)', async () => {
  let reads = 0;
  const checker = {
    async read() {
      reads++;
      return { Status: 'starting', FailingStreak: 0, Log: [] };
    },
    async runDue() {},
  } as unknown as HealthChecker;
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on('warning', onWarning);
  const stop = new AbortController();
  setTimeout(() => stop.abort(), 300);
  await assert.rejects(waitForHealthy(checker, () => 'running', { signal: stop.signal }, 'wait'));
  await new Promise((resolve) => setImmediate(resolve));
  process.off('warning', onWarning);
  assert.ok(reads <= 12, `${reads} reads in 300 ms`);
  assert.deepEqual(warnings, []);
});
