// runc CVE-2024-21626: a working directory of /proc/self/fd/N (the spec's cwd,
// or WorkingDir from an untrusted image) reached a host directory through a
// descriptor the helper still held at chdir. Every mode as root here; the
// rootless mode runs the same check in rootless-cases.ts. Root only.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImageStore, Runtime } from '../../src/index.js';
import { cannotRun, makeWorld, text, type World } from '../fixtures/world.js';
import { findCwdEscapes, prepareEscape, type EscapeFixture } from '../fixtures/cwd-escape.js';

const repo = join(import.meta.dirname, '..', '..');
const skip = cannotRun();
if (skip !== undefined) console.log(`# skipping cwd escape integration tests: ${skip}`);
const usernsOff =
  skip === undefined && Number(readFileSync('/proc/sys/user/max_user_namespaces', 'utf8')) === 0
    ? 'user namespaces are disabled (user.max_user_namespaces = 0)'
    : undefined;
if (usernsOff !== undefined) console.log(`# skipping the user namespace modes of the cwd escape tests: ${usernsOff}`);

describe('a cwd of /proc/self/fd/N never lands on the host (CVE-2024-21626)', { skip }, () => {
  let world: World;
  let fixture: EscapeFixture;
  let imageRuntime: Runtime;
  before(async () => {
    world = await makeWorld();
    const store = await ImageStore.open({ root: join(world.base, 'store') });
    imageRuntime = new Runtime({ root: world.runtime.root, stateDir: world.runtime.stateDir, store });
    fixture = await prepareEscape(world.base, store);
  });
  after(async () => {
    await world?.dispose();
  });

  it('as root without a user namespace', async () => {
    assert.deepEqual(await findCwdEscapes(fixture, world.runtime, imageRuntime, {}), []);
  });

  it("with userns: 'auto' (an idmapped root)", { skip: usernsOff }, async () => {
    assert.deepEqual(await findCwdEscapes(fixture, world.runtime, imageRuntime, { userns: 'auto' }), []);
  });

  // The container's stdio are the caller's own fds, which stay open: one that is a host
  // directory leads out of the root however many other fds are closed; only the getcwd check stops it.
  it('a cwd of /proc/self/fd/0 whose stdin is a host directory is refused', async () => {
    const script = `import { HelperError, Runtime } from './src/index.ts';
      const r = new Runtime({ root: process.env.ROOT, stateDir: process.env.STATE });
      try {
        const c = await r.run({ rootfs: process.env.ROOTFS, cmd: ['/bin/probe', 'cwd'], cwd: '/proc/self/fd/0', stdio: 'inherit' });
        const exit = await c.wait();
        await c.remove();
        console.log('ran ' + exit.exitCode);
      } catch (error) {
        console.log(error instanceof HelperError ? 'refused ' + error.step : 'failed ' + error);
      }`;
    const child = spawn('sh', ['-c', 'exec "$0" --import tsx --input-type=module -e "$1" < "$2"', process.execPath, script, fixture.bindSource], {
      cwd: repo,
      env: { ...process.env, ROOT: world.runtime.root, STATE: world.runtime.stateDir, ROOTFS: fixture.rootfs },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    assert.equal((await text(child.stdout)).trim(), 'refused chdir');
  });

  it('with explicit user namespace maps', { skip: usernsOff }, async () => {
    const userns = {
      uidMap: [{ containerId: 0, hostId: 1_310_000_000, size: 65536 }],
      gidMap: [{ containerId: 0, hostId: 1_310_000_000, size: 65536 }],
    };
    assert.deepEqual(await findCwdEscapes(fixture, world.runtime, imageRuntime, { userns }), []);
  });
});
