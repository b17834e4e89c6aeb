// runc CVE-2024-21626: a working directory of /proc/self/fd/N (the spec's cwd,
// or WorkingDir from an untrusted image) reached a host directory through a
// descriptor the helper still held at chdir. Every mode as root here; the
// rootless mode runs the same check in rootless-cases.ts. Root only.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImageStore, Runtime } from '../../src/index.js';
import { cannotRun, makeWorld, type World } from './fixtures.js';
import { findCwdEscapes, prepareEscape, type EscapeFixture } from './cwd-escape.js';

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

  it('with explicit user namespace maps', { skip: usernsOff }, async () => {
    const userns = {
      uidMap: [{ containerId: 0, hostId: 1_310_000_000, size: 65536 }],
      gidMap: [{ containerId: 0, hostId: 1_310_000_000, size: 65536 }],
    };
    assert.deepEqual(await findCwdEscapes(fixture, world.runtime, imageRuntime, { userns }), []);
  });
});
