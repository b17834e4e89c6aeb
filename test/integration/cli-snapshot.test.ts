import { strict as assert } from 'node:assert';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, chmod, chown, copyFile, mkdir, mkdtemp, readFile, rename, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const repo = resolve(import.meta.dirname, '..', '..');
const launcher = join(repo, 'native', 'build', 'dockless-cli');

const skip = !existsSync(join(repo, 'dist', 'bundle', 'core.js'))
  ? 'dist/bundle not built: run npm run build'
  : !existsSync(launcher)
    ? 'native/build/dockless-cli not built (no C compiler?): run npm run build'
    : undefined;
if (skip !== undefined) console.log(`# skipping cli-snapshot tests: ${skip}`);

// The plain bundle's stand-in: what the launcher runs when it does not use the snapshot.
const PLAIN = "console.log('plain ' + JSON.stringify(process.argv.slice(2)));\n";

/**
 * A package as an install leaves it: dist/bundle/core.js, the launcher as dist/bin/dockless,
 * native/build/ with the blob and its key, made by native/snapshot.mjs as the install does;
 * dist/bundle/cli.js prints `plain`, so the output says which way the command started.
 */
async function makePackage(base: string, name: string): Promise<string> {
  const pkg = join(base, name);
  await mkdir(join(pkg, 'dist', 'bundle'), { recursive: true });
  await mkdir(join(pkg, 'dist', 'bin'), { recursive: true });
  await mkdir(join(pkg, 'native', 'build'), { recursive: true, mode: 0o755 });
  await chmod(join(pkg, 'native', 'build'), 0o755);
  await copyFile(join(repo, 'dist', 'bundle', 'core.js'), join(pkg, 'dist', 'bundle', 'core.js'));
  await writeFile(join(pkg, 'dist', 'bundle', 'cli.js'), PLAIN);
  await copyFile(join(repo, 'native', 'snapshot-entry.cjs'), join(pkg, 'native', 'snapshot-entry.cjs'));
  await copyFile(launcher, join(pkg, 'dist', 'bin', 'dockless'));
  await chmod(join(pkg, 'dist', 'bin', 'dockless'), 0o755);
  const script = `import { buildCliSnapshot } from ${JSON.stringify(join(repo, 'native', 'snapshot.mjs'))};
const failed = buildCliSnapshot({ pkg: process.argv[1], outDir: process.argv[2] });
if (failed !== undefined) { console.error(failed); process.exit(1); }`;
  const built = spawnSync(process.execPath, ['--input-type=module', '-e', script, pkg, join(pkg, 'native', 'build')], { encoding: 'utf8' });
  assert.equal(built.status, 0, `building the snapshot failed: ${built.stderr}`);
  return pkg;
}

/** Runs the package's `dockless` with `args`: its stdout and exit code. */
async function dockless(pkg: string, args: string[], env: Record<string, string> = {}): Promise<{ stdout: string; code: number }> {
  const { DOCKLESS_SNAPSHOT: _, ...rest } = process.env;
  try {
    const { stdout } = await execFileAsync(join(pkg, 'dist', 'bin', 'dockless'), args, { env: { ...rest, ...env }, timeout: 60_000 });
    return { stdout, code: 0 };
  } catch (error) {
    const e = error as { stdout?: string; code?: number | string; signal?: string };
    assert.equal(e.signal ?? null, null, `dockless was killed by ${e.signal}: Node was given a blob it could not take`);
    return { stdout: e.stdout ?? '', code: typeof e.code === 'number' ? e.code : -1 };
  }
}

const fromSnapshot = (out: { stdout: string }): void => assert.match(out.stdout, /^dockless version /, `not started from the snapshot: ${out.stdout}`);
const plain = (out: { stdout: string }, args = ['version']): void => assert.equal(out.stdout, `plain ${JSON.stringify(args)}\n`);

describe('the dockless launcher and its startup snapshot', { skip }, () => {
  let base: string;
  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'dl-snapshot-'));
    await chmod(base, 0o755);
  });
  after(async () => {
    if (base !== undefined) await rm(base, { recursive: true, force: true });
  });

  it('starts the command from the snapshot, with its arguments and exit code', async () => {
    const pkg = await makePackage(base, 'ok');
    fromSnapshot(await dockless(pkg, ['version']));
    // Node's own options after the blob are the command's: the launcher ends Node's with `--`.
    const unknown = await dockless(pkg, ['--version-nosuch']);
    assert.equal(unknown.code, 125);
    assert.equal((await dockless(pkg, ['nosuch'])).code, 125);
  });

  it('runs the plain bundle when DOCKLESS_SNAPSHOT=0', async () => {
    const pkg = await makePackage(base, 'off');
    plain(await dockless(pkg, ['version'], { DOCKLESS_SNAPSHOT: '0' }));
  });

  // A damaged blob makes Node abort (SIGTRAP on its checksum, SIGSEGV when short) before any fallback could run.
  it('does not hand Node a blob changed after its key was written (damaged, truncated)', async () => {
    const damaged = await makePackage(base, 'damaged');
    const blob = join(damaged, 'native', 'build', 'dockless-cli.blob');
    const bytes = await readFile(blob);
    bytes[bytes.length >> 1] ^= 0xff;
    await writeFile(blob, bytes);
    plain(await dockless(damaged, ['version']));
    const truncated = await makePackage(base, 'truncated');
    await truncate(join(truncated, 'native', 'build', 'dockless-cli.blob'), 4096);
    plain(await dockless(truncated, ['version']));
    const grown = await makePackage(base, 'grown');
    await appendFile(join(grown, 'native', 'build', 'dockless-cli.blob'), 'x');
    plain(await dockless(grown, ['version']));
  });

  it('does not use a blob made from another core.js or for another Node', async () => {
    const rebuilt = await makePackage(base, 'rebuilt');
    await appendFile(join(rebuilt, 'dist', 'bundle', 'core.js'), '\n');
    plain(await dockless(rebuilt, ['version']));
    const otherNode = await makePackage(base, 'other-node');
    const key = join(otherNode, 'native', 'build', 'dockless-cli.blob.key');
    const lines = (await readFile(key, 'utf8')).split('\n');
    lines[2] = lines[2]!.replace(/^(\d+) (\d+)/, (_, dev: string, ino: string) => `${dev} ${BigInt(ino) + 1n}`);
    await writeFile(key, lines.join('\n'));
    plain(await dockless(otherNode, ['version']));
    const noKey = await makePackage(base, 'no-key');
    await rm(join(noKey, 'native', 'build', 'dockless-cli.blob.key'));
    plain(await dockless(noKey, ['version']));
  });

  // The blob is code Node runs unchecked: only its owner (or root) may be able to change it.
  it('does not use a blob, key or directory that others can write', async () => {
    for (const [name, file, mode] of [
      ['blob-writable', 'dockless-cli.blob', 0o666],
      ['blob-group-writable', 'dockless-cli.blob', 0o664],
      ['key-writable', 'dockless-cli.blob.key', 0o646],
      ['dir-writable', '', 0o777],
    ] as const) {
      const pkg = await makePackage(base, name);
      await chmod(join(pkg, 'native', 'build', file), mode);
      plain(await dockless(pkg, ['version']));
    }
  });

  it('does not use a blob that is a symbolic link', async () => {
    const pkg = await makePackage(base, 'symlink');
    const blob = join(pkg, 'native', 'build', 'dockless-cli.blob');
    // A rename keeps the identity the key names: only the link's being a link can turn it off.
    await rename(blob, `${blob}.real`);
    await symlink(`${blob}.real`, blob);
    plain(await dockless(pkg, ['version']));
  });

  it('does not use a blob owned by another user', { skip: process.getuid?.() !== 0 ? 'chown needs root' : undefined }, async () => {
    const pkg = await makePackage(base, 'other-owner');
    await chown(join(pkg, 'native', 'build', 'dockless-cli.blob'), 65534, 65534);
    plain(await dockless(pkg, ['version']));
    const dir = await makePackage(base, 'other-owner-dir');
    await chown(join(dir, 'native', 'build'), 65534, 65534);
    plain(await dockless(dir, ['version']));
  });
});
