import { strict as assert } from 'node:assert';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { HelperError, UnsafeContentError } from '../../src/errors.js';
import { HELPER_STEP_MOUNT_TARGET } from '../../src/helper/protocol.js';
import { errorFromStatus } from '../../src/helper/spawn.js';
import { DEFAULT_MOUNTS } from '../../src/runtime/defaults.js';
import { runArgs, type RunPlan } from '../../src/runtime/run-args.js';
import { deviceBindMounts } from '../../src/runtime/userns.js';
import { basePlan } from '../fixtures/run-plan.js';

const nativeDir = join(import.meta.dirname, '..', '..', 'native');

const plan: RunPlan = basePlan({ hostname: 'box' });

// The two sides name the refusal's step in two languages; this keeps them in step.
test('the mount-target step agrees with the C sources', async () => {
  const header = await readFile(join(nativeDir, 'mounts.h'), 'utf8');
  assert.match(header, new RegExp(`#define DL_STEP_MOUNT_TARGET "${HELPER_STEP_MOUNT_TARGET}"`));
  const run = await readFile(join(nativeDir, 'run.c'), 'utf8');
  assert.match(run, /IS\("--mount-nofollow"\)/);
});

// An image must not redirect these (runc's CVE-2019-16884 / CVE-2019-19921): each is the runtime's own.
test('every default mount and every device bind is passed as --mount-nofollow', () => {
  for (const m of [...DEFAULT_MOUNTS, ...deviceBindMounts([{ path: '/dev/null', type: 'c', major: 1, minor: 3, mode: 0o666 }])]) {
    assert.equal(m.nofollow, true, m.target);
  }
  const args = runArgs({
    ...plan,
    mounts: [
      { type: 'proc', source: 'proc', target: '/proc', options: [], nofollow: true },
      { type: 'bind', source: '/h', target: '/c', options: ['rbind'] },
    ],
  });
  const at = args.indexOf('/proc');
  assert.deepEqual(args.slice(at - 3, at + 7), ['--mount-nofollow', 'proc', 'proc', '/proc', '-', '--mount', 'bind', '/h', '/c', 'rbind']);
});

test('a refused mount target becomes an UnsafeContentError naming the path, with the helper error as cause', () => {
  const e = errorFromStatus('run', 'run container abc', {
    type: 'error',
    step: HELPER_STEP_MOUNT_TARGET,
    path: '/proc',
    errno: 40,
    code: 'ELOOP',
    message: 'mount `proc` on `/proc`: `/proc` is a symlink in the rootfs',
  });
  assert.ok(e instanceof UnsafeContentError);
  assert.equal(e.code, 'ERR_DOCKLESS_UNSAFE_CONTENT');
  assert.equal(e.path, '/proc');
  assert.equal(e.message, 'run container abc: mount `proc` on `/proc`: `/proc` is a symlink in the rootfs');
  assert.ok(e.cause instanceof HelperError);
  assert.equal(e.cause.step, HELPER_STEP_MOUNT_TARGET);
  assert.equal(e.cause.errnoCode, 'ELOOP');
});
