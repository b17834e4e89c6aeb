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
import { Runtime, rootfsFromHost, type Container } from '../src/index.js';

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

async function collect(container: Container): Promise<string> {
  let out = '';
  container.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await container.wait();
  return out;
}

test('a throwaway container answers, then vanishes', async () => {
  await using box = await runtime.run({ rootfs, cmd: ['sh', '-c', 'echo ready; cat /etc/hostname'], hostname: 'under-test' });
  assert.equal(await collect(box), 'ready\nunder-test\n');
});

test('a long-running service is stopped at the end of the scope', async () => {
  await using service = await runtime.run({ rootfs, cmd: ['sleep', '1000'] });
  assert.equal(service.status, 'running');
  // The init forwards SIGTERM to `sleep`, which dies of it: no need for SIGKILL.
  const stopped = await service.stop({ timeoutMs: 5000 });
  assert.deepEqual(stopped, { exitCode: 143, signal: 'SIGTERM', oomKilled: false });
});
