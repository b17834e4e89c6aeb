import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { InvalidArgumentError } from '../../src/errors.js';
import { execArgBytes, execArgLimit, MAX_ARG_STRLEN, ownStackLimit, shown } from '../../src/helper/exec-limits.js';
import { spawnHelper } from '../../src/helper/spawn.js';
import { Runtime } from '../../src/runtime/runtime.js';
import type { ContainerSpec } from '../../src/runtime/spec.js';
import type { ImageStore } from '../../src/image-store.js';

let base: string;
let rootfs: string;
let runtime: Runtime;

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'dl-spec-strings-'));
  rootfs = join(base, 'rootfs');
  await mkdir(rootfs);
  runtime = new Runtime({ root: join(base, 'root'), stateDir: join(base, 'state'), helperPath: '/bin/false' });
});

after(async () => {
  await rm(base, { recursive: true, force: true });
});

/** Runs a spec that must be refused before anything of the container is made, and returns the error. */
async function refused(spec: Partial<ContainerSpec>, field: RegExp): Promise<InvalidArgumentError> {
  const error = await runtime.run({ rootfs, cmd: ['/bin/probe'], stdio: 'ignore', ...spec }).then(
    () => assert.fail('the container was started'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof InvalidArgumentError, `expected an InvalidArgumentError, got ${String(error)}`);
  assert.match(error.message, field);
  assert.ok(error.message.length < 600, `the message echoes too much: ${error.message.length} characters`);
  const made = await readdir(join(base, 'state')).catch(() => [] as string[]);
  // names/, .trash/ and .rootfs/ (the shared mount point) are the runtime's own, made at its first launch.
  assert.deepEqual(made.filter((e) => e !== 'names' && e !== '.trash' && e !== '.rootfs'), [], 'a container directory was written');
  return error;
}

// Node refuses a NUL byte in spawn's args with a bare TypeError naming an index into the helper's argv (args[189]).
test('a NUL byte in any spec string is an InvalidArgumentError naming the field, not a TypeError from spawn', async () => {
  await refused({ cmd: ['/bin/probe', 'a\0b'] }, /^container spec: cmd\[1\] contains a NUL byte: `a\\x00b`$/);
  await refused({ entrypoint: ['/bin/\0sh'] }, /entrypoint\[0\] contains a NUL byte/);
  await refused({ env: { A: 'x\0y' } }, /env `A` contains a NUL byte/);
  await refused({ env: { 'A\0B': 'x' } }, /env `A\\x00B` is not a valid variable name/);
  await refused({ cwd: '/a\0b' }, /cwd contains a NUL byte/);
  await refused({ user: 'root\0' }, /user contains a NUL byte/);
  await refused({ hostname: 'box\0' }, /hostname contains a NUL byte/);
  await refused({ name: 'n\0' }, /name contains a NUL byte/);
  await refused({ mounts: [{ type: 'tmpfs', target: '/t\0' }] }, /mounts\[0\]\.target contains a NUL byte/);
  await refused({ mounts: [{ type: 'bind', source: '/s\0', target: '/t' }] }, /mounts\[0\]\.source contains a NUL byte/);
});

// fs threw a bare TypeError (`The argument 'path' must be … without null bytes`) at the first create.
test('a NUL byte in the Runtime’s own directories is an InvalidArgumentError naming the option', () => {
  for (const key of ['root', 'stateDir', 'helperPath'] as const) {
    assert.throws(
      () => new Runtime({ root: join(base, 'root'), stateDir: join(base, 'state'), [key]: '/tmp/x\0' }),
      (e: unknown) => e instanceof InvalidArgumentError && e.message === `runtime options: ${key} contains a NUL byte: \`/tmp/x\\x00\``,
    );
  }
});

// A hostile image's config reaches the helper's argv as much as the caller's spec does.
test('a hostile image config with a NUL byte in Entrypoint, Cmd, Env, WorkingDir or User is refused by field', async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ Cmd: ['sh', '-c\0'] }, /command argument 1 \(entrypoint and cmd\) contains a NUL byte/],
    [{ Entrypoint: ['/bin\0/sh'] }, /command argument 0/],
    [{ Cmd: ['sh'], Env: ['A=1\0'] }, /env `A` contains a NUL byte/],
    [{ Cmd: ['sh'], Env: ['A\0B=1'] }, /env `A\\x00B` is not a valid variable name/],
    [{ Cmd: ['sh'], WorkingDir: '/w\0' }, /cwd \(or the image's WorkingDir\) contains a NUL byte/],
    [{ Cmd: ['sh'], User: '0\0' }, /user \(or the image's User\) contains a NUL byte/],
  ];
  for (const [config, message] of cases) {
    // Just what Runtime asks of its store: the image's snapshot and a lease on it.
    const store = {
      snapshot: async () => ({ lowerDirs: [rootfs], config: { config }, digest: `sha256:${'0'.repeat(64)}`, chainIds: [] }),
      lease: async () => ({ release: async () => undefined }),
      releaseLease: async () => true,
    } as unknown as ImageStore;
    const withImage = new Runtime({ root: join(base, 'root'), stateDir: join(base, 'state'), helperPath: '/bin/false', store });
    const error = await withImage.run({ image: 'hostile:1', stdio: 'ignore' }).then(
      () => assert.fail('the container was started'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof InvalidArgumentError, `expected an InvalidArgumentError, got ${String(error)}`);
    assert.match(error.message, message);
  }
});

// spawn threw a bare `Error: spawn E2BIG` for a command or environment execve refuses.
test('an argument or environment too large for execve is an InvalidArgumentError giving size, limit and field', async () => {
  const one = await refused({ cmd: ['/bin/probe', 'x'.repeat(MAX_ARG_STRLEN)] }, /cmd\[1\] is 131073 bytes with its NUL, above execve's limit of 131072 bytes/);
  assert.match(one.message, /\(131072 bytes\)$/);
  const env = Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`V${i}`, 'y'.repeat(100_000)]));
  const limit = execArgLimit(ownStackLimit());
  const total = await refused({ env }, new RegExp(`^container spec: cmd and env take \\d+ bytes \\(cmd \\d+, env \\d+, .*above execve's limit of ${limit} bytes`));
  assert.doesNotMatch(total.message, /yyyy/);
  // The workload's own stack limit decides its execve, not the caller's.
  const small = Object.fromEntries(Array.from({ length: 3 }, (_, i) => [`V${i}`, 'y'.repeat(100_000)]));
  await refused({ env: small, rlimits: { stack: { soft: 512 * 1024, hard: Infinity } } }, /above execve's limit of 131072 bytes \(a quarter of the stack limit, 524288 bytes/);
});

// A long hostname was refused with the whole of it in the message.
test('a hostname longer than HOST_NAME_MAX is refused with its length, without echoing it whole', async () => {
  const e = await refused({ hostname: 'h'.repeat(1_000_000) }, /^container spec: hostname is 1000000 bytes, longer than HOST_NAME_MAX \(64\): `h{64}…` \(1000000 bytes\)$/);
  assert.ok(e.message.length < 200);
  await refused({ name: 'n'.repeat(100_000) }, /name is 100000 bytes, longer than the longest container name \(128\)/);
  await refused({ cwd: `/${'d'.repeat(100_000)}` }, /cwd is 100001 bytes, longer than PATH_MAX \(4095\)/);
  await refused({ hostname: 'a-bad_host' }, /hostname `a-bad_host` is not a valid hostname/);
  await refused({ capAdd: ['C'.repeat(100_000)] }, /capAdd\[0\] is 100000 bytes/);
  await refused({ rlimits: { ['r'.repeat(100_000)]: { soft: 1, hard: 1 } } as ContainerSpec['rlimits'] }, /rlimits key is 100000 bytes/);
});

test('shown() cuts long values and makes control characters visible', () => {
  assert.equal(shown('abc'), '`abc`');
  assert.equal(shown('a\nb'), '`a\\x0ab`');
  assert.equal(shown('z'.repeat(65)), `\`${'z'.repeat(64)}…\` (65 bytes)`);
});

// If the computed limit were looser than the kernel's, a spec would pass the check and still fail with E2BIG.
test('execArgLimit is exactly the limit the kernel applies to this process’s execve', () => {
  const limit = execArgLimit(ownStackLimit());
  const file = '/bin/true';
  const attempt = (total: number): string => {
    const env: Record<string, string> = {};
    let rest = total - (execArgBytes([file]) + Buffer.byteLength(file) + 1);
    for (let i = 0; rest > 0; i++) {
      const chunk = Math.min(rest, 100_000);
      const key = `V${i}`;
      env[key] = 'x'.repeat(chunk - key.length - 2 - 8);
      rest -= chunk;
    }
    const r = spawnSync(file, [], { env });
    return r.error !== undefined ? String((r.error as NodeJS.ErrnoException).code) : 'ok';
  };
  assert.equal(attempt(limit), 'ok');
  assert.equal(attempt(limit + 8), 'E2BIG');
});

// The boundary's own guard, for callers of spawnHelper other than Runtime: the
// arguments travel NUL-separated over the config fd, where a NUL would split one in two.
test('spawnHelper refuses a NUL byte with an InvalidArgumentError naming the option', () => {
  const spawn = (args: string[]) => () => spawnHelper('run', args, { stdio: ['ignore', 'ignore', 'ignore'], context: 'run container x', helperPath: '/bin/true' });
  assert.throws(spawn(['--env', 'A=\0']), (e: unknown) => e instanceof InvalidArgumentError && /`--env`.*NUL byte/.test(e.message));
});
