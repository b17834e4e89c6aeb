import { strict as assert } from 'node:assert';
import { chmod, readdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HelperError, NotFoundError } from '../../src/index.js';
import { locateHelper } from '../../src/helper/locate.js';
import { spawnHelper } from '../../src/helper/spawn.js';
import type { ContainerSpec } from '../../src/runtime/spec.js';
import { cannotRun, makeWorld, type World } from '../fixtures/world.js';

/** Where remove() renames a container's directories before it deletes them (src/runtime/trash.ts). */
const TRASH_DIR = '.trash';
/** The mount point every container shares (state.ts): made once, kept. */
const ROOTFS_MOUNT_POINT = '.rootfs';

const skip = cannotRun();
if (skip !== undefined) console.log(`# skipping error contract integration tests: ${skip}`);

describe('the error contract at the helper boundary', { skip }, () => {
  let world: World;
  before(async () => {
    world = await makeWorld();
  });
  after(async () => {
    await world?.dispose();
  });

  /** Starts a container that must fail, and returns what was thrown. */
  async function failure(spec: Partial<ContainerSpec>): Promise<unknown> {
    return world.runtime.run({ rootfs: world.rootfs, cmd: ['/bin/probe', 'pid'], stdio: 'ignore', ...spec }).then(
      async (c) => {
        await c.remove({ force: true });
        assert.fail('the container started');
      },
      (e: unknown) => e,
    );
  }

  // Seen once in ~300 failed starts: `ENOTEMPTY: rmdir …/state/<id>` from the cleanup, racing the
  // still-running state-record write, was thrown instead of the start's own failure.
  it('a failed start surfaces its own failure, never its cleanup’s, also when many fail at once', async () => {
    const kinds: [Partial<ContainerSpec>, string][] = [
      [{ cwd: '/nonexistent' }, 'chdir'],
      [{ cwd: '/etc/hostname' }, 'chdir'],
      [{ rlimits: { nofile: { soft: 1e9, hard: 1e9 } } }, 'setrlimit'],
    ];
    const rounds = 40;
    const seen: string[] = [];
    for (let round = 0; round < rounds; round++) {
      const errors = await Promise.all(kinds.map(([spec]) => failure(spec)));
      errors.forEach((error, i) => {
        const step = kinds[i]![1];
        if (!(error instanceof HelperError) || error.step !== step) {
          seen.push(`round ${round}, ${step}: ${error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error)}`);
        }
      });
    }
    assert.deepEqual(seen, [], 'a failed start threw something else than its own HelperError');
    // The events file records the attempts (create, remove) and is meant to outlive them.
    const left = (await readdir(join(world.base, 'state'))).filter((e) => e !== 'names' && e !== TRASH_DIR && e !== ROOTFS_MOUNT_POINT && !e.startsWith('events.jsonl'));
    assert.deepEqual(left, [], 'failed starts left state behind');
    assert.deepEqual((await readdir(join(world.base, 'root', 'containers'))).filter((e) => e !== TRASH_DIR), [], 'failed starts left container directories behind');
  });

  // A create whose start failed stayed `running`: remove() without force refused it.
  it('a created container whose start fails is stopped, with its own HelperError, and removable', async () => {
    const c = await world.runtime.create({ rootfs: world.rootfs, cmd: ['/bin/probe', 'pid'], cwd: '/nonexistent', stdio: 'ignore' });
    const error = await c.start().then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof HelperError && error.step === 'chdir', String(error));
    assert.equal(c.status, 'stopped');
    await c.remove();
    assert.equal(c.status, 'removed');
  });

  it('a missing executable is not a failed start: the command exits 127 and says why on stderr', async () => {
    const c = await world.runtime.run({ rootfs: world.rootfs, cmd: ['/no/such/program'], stdio: 'pipe' });
    let stderr = '';
    for await (const chunk of c.stderr!) stderr += chunk.toString();
    assert.equal((await c.wait()).exitCode, 127);
    assert.match(stderr, /^dockless: exec `\/no\/such\/program`: No such file or directory\n$/);
    await c.remove();
  });

  // The TS side used to reword the helper's message: ``mount `/proc`: EPERM (mount `tmpfs` on `/proc`)``.
  it('a HelperError reads `<op> <context>: <helper message>: <ERRNO>`, as the real helper reports it', async () => {
    const cases: [Partial<ContainerSpec>, RegExp, Partial<HelperError>][] = [
      [{ cwd: '/nonexistent' }, /^run container [0-9a-f]{12}: chdir `\/nonexistent`: ENOENT$/, { step: 'chdir', errnoCode: 'ENOENT', path: '/nonexistent' }],
      [{ cwd: '/etc/hostname' }, /^run container [0-9a-f]{12}: chdir `\/etc\/hostname`: ENOTDIR$/, { step: 'chdir', errnoCode: 'ENOTDIR' }],
      [
        { rlimits: { nofile: { soft: 1e9, hard: 1e9 } } },
        // Above the hard limit without CAP_SYS_RESOURCE; above fs.nr_open with it.
        /^run container [0-9a-f]{12}: setrlimit `nofile` soft 1000000000 hard 1000000000(: above the hard limit \d+)?: EPERM$/,
        { step: 'setrlimit', errnoCode: 'EPERM' },
      ],
      [
        // A bind source the caller's checks accept and the kernel refuses: a file onto a directory.
        { mounts: [{ type: 'bind', source: '/etc/hostname', target: '/etc' }] },
        /^run container [0-9a-f]{12}: mount `\/etc\/hostname` on `\/etc`: ENOTDIR$/,
        { step: 'mount', errnoCode: 'ENOTDIR', path: '/etc' },
      ],
    ];
    for (const [spec, message, fields] of cases) {
      const error = await failure(spec);
      assert.ok(error instanceof HelperError, `expected a HelperError, got ${String(error)}`);
      assert.match(error.message, message);
      for (const [key, value] of Object.entries(fields)) assert.equal(error[key as keyof HelperError], value, key);
      assert.equal(error.op, 'run');
    }
  });

  it('a bind source that does not exist is a NotFoundError naming it, before the helper runs', async () => {
    const error = await failure({ mounts: [{ type: 'bind', source: '/no/such/dir', target: '/mnt' }] });
    assert.ok(error instanceof NotFoundError, String(error));
    assert.equal(error.path, '/no/such/dir');
  });

  // xcalloc used to print `out of memory` on stderr and exit 1 without the `error` line PROTOCOL.md requires.
  it('a helper out of memory while parsing its options reports an error line with step calloc', async (t) => {
    if (!existsSync('/usr/bin/prlimit')) {
      console.log('# skipped: prlimit (util-linux) is not installed');
      return t.skip('prlimit (util-linux) is not installed');
    }
    // A data limit that lets the static helper start but not allocate its option tables for 20000 `--env`.
    const wrapper = join(world.base, 'helper-2mib');
    await writeFile(wrapper, `#!/bin/sh\nexec /usr/bin/prlimit --data=${2 * 1024 * 1024} ${locateHelper()} "$@"\n`);
    await chmod(wrapper, 0o755);
    const args = [...Array.from({ length: 20000 }, () => ['--env', 'A=1']).flat(), '--', '/bin/true'];
    const helper = spawnHelper('run', ['--id', 'oom', ...args], { stdio: ['ignore', 'ignore', 'pipe'], context: 'run container oom', helperPath: wrapper });
    const { exitCode } = await helper.exit;
    assert.equal(exitCode, 1);
    const error = helper.failure;
    assert.ok(error instanceof HelperError, String(error));
    assert.equal(error.step, 'calloc');
    assert.equal(error.errnoCode, 'ENOMEM');
    assert.match(error.message, /^run container oom: calloc `\d+, \d+`: ENOMEM$/);
  });
});
