/**
 * A test harness in the style of testcontainers, with no Docker daemon: each
 * test gets a throwaway container that is killed and removed when the test's
 * scope ends, even when the test fails.
 *
 * Run: node --import tsx --test examples/test-harness.ts (as root)
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Runtime, rootfsFromHost } from '../src/index.js';

let base: string;
let rootfs: string;
let runtime: Runtime;

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'dockless-harness-'));
  rootfs = (await rootfsFromHost(join(base, 'rootfs'))).path;
  runtime = new Runtime({ root: join(base, 'data'), stateDir: join(base, 'state') });
});

after(async () => {
  await rm(base, { recursive: true, force: true });
});

test('a throwaway container answers, then vanishes', async () => {
  const { stdout, exitCode } = await runtime.output({ rootfs, cmd: ['sh', '-c', 'echo ready; cat /etc/hostname'], hostname: 'under-test' });
  assert.deepEqual({ stdout, exitCode }, { stdout: 'ready\nunder-test\n', exitCode: 0 });
  assert.deepEqual(await runtime.list(), []);
});

test('a command run inside a running service sees its files', async () => {
  await using service = await runtime.run({ rootfs, cmd: ['sh', '-c', 'echo up > /tmp/state; exec sleep 1000'], stdio: 'ignore' });
  let state = '';
  for (let i = 0; i < 100 && state === ''; i++) state = (await service.output(['cat', '/tmp/state'])).stdout;
  assert.equal(state, 'up\n');
});

test('a long-running service is stopped at the end of the scope', async () => {
  await using service = await runtime.run({ rootfs, cmd: ['sleep', '1000'] });
  assert.equal(service.status, 'running');
  // The init forwards SIGTERM to `sleep`, which dies of it: no need for SIGKILL.
  const stopped = await service.stop({ timeoutMs: 5000 });
  assert.deepEqual(stopped, { exitCode: 143, signal: 'SIGTERM', oomKilled: false });
});
