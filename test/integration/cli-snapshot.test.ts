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

/**
 * A launcher and the snapshot it starts Node from: the `dockless` command's
 * (native/cli/main.c) and dockless-runtime's native front end (native/runtime/main.c),
 * both checking through native/snapshot/check.c.
 */
interface Launcher {
  name: string;
  /** The built launcher, and where the package puts it. */
  built: string;
  bin: string;
  kind: 'cli' | 'runtime';
  blob: string;
  /** The script the blob is made from, and its plain sibling (what runs without the snapshot). */
  script: string;
  plainScript: string;
  /** A command line that reaches Node, and what it prints when Node started from the snapshot. */
  args: string[];
  fromSnapshot: RegExp;
  /** The exit code of an unknown flag or command. */
  usageExit: number;
}

const LAUNCHERS: Launcher[] = [
  {
    name: 'the dockless launcher',
    built: join(repo, 'native', 'build', 'dockless-cli'),
    bin: join('dist', 'bin', 'dockless'),
    kind: 'cli',
    blob: 'dockless-cli.blob',
    script: 'cli-core.js',
    plainScript: 'cli.js',
    args: ['version'],
    fromSnapshot: /^dockless version /,
    usageExit: 125,
  },
  {
    name: "dockless-runtime's native front end",
    built: join(repo, 'native', 'build', 'dockless-runtime'),
    bin: join('native', 'build', 'dockless-runtime'),
    kind: 'runtime',
    blob: 'dockless-runtime.blob',
    script: 'runtime-core.js',
    plainScript: 'runtime.js',
    args: ['spec', '--help'],
    fromSnapshot: /^Usage: dockless-runtime spec /,
    usageExit: 1,
  },
];

// The plain bundle's stand-in: what the launcher runs when it does not use the snapshot.
const PLAIN = "console.log('plain ' + JSON.stringify(process.argv.slice(2)));\n";

for (const l of LAUNCHERS) {
  const skip = !existsSync(join(repo, 'dist', 'bundle', l.script))
    ? 'dist/bundle not built: run npm run build'
    : !existsSync(l.built)
      ? `${l.built} not built (no C compiler?): run npm run build`
      : undefined;
  if (skip !== undefined) console.log(`# skipping ${l.name}'s snapshot tests: ${skip}`);

  /**
   * A package as an install leaves it: the script, the launcher where the package's bin
   * finds it, native/build/ with the blob and its key, made by native/snapshot.mjs as the
   * install does; the plain script prints `plain`, so the output says which way Node started.
   */
  async function makePackage(base: string, name: string, script?: string): Promise<string> {
    const pkg = join(base, name);
    await mkdir(join(pkg, 'dist', 'bundle'), { recursive: true });
    await mkdir(join(pkg, 'dist', 'bin'), { recursive: true });
    await mkdir(join(pkg, 'native', 'build'), { recursive: true, mode: 0o755 });
    await chmod(join(pkg, 'native', 'build'), 0o755);
    if (script === undefined) await copyFile(join(repo, 'dist', 'bundle', l.script), join(pkg, 'dist', 'bundle', l.script));
    else await writeFile(join(pkg, 'dist', 'bundle', l.script), script);
    await writeFile(join(pkg, 'dist', 'bundle', l.plainScript), PLAIN);
    await copyFile(join(repo, 'native', 'snapshot-entry.cjs'), join(pkg, 'native', 'snapshot-entry.cjs'));
    await copyFile(l.built, join(pkg, l.bin));
    await chmod(join(pkg, l.bin), 0o755);
    const build = `import { buildSnapshot } from ${JSON.stringify(join(repo, 'native', 'snapshot.mjs'))};
  const failed = buildSnapshot({ kind: ${JSON.stringify(l.kind)}, pkg: process.argv[1], outDir: process.argv[2] });
  if (failed !== undefined) { console.error(failed); process.exit(1); }`;
    const built = spawnSync(process.execPath, ['--input-type=module', '-e', build, pkg, join(pkg, 'native', 'build')], { encoding: 'utf8' });
    assert.equal(built.status, 0, `building the snapshot failed: ${built.stderr}`);
    return pkg;
  }

  /** Runs the package's launcher with `args`: its stdout and exit code. */
  async function launch(pkg: string, args: string[], env: Record<string, string> = {}): Promise<{ stdout: string; code: number }> {
    const { DOCKLESS_SNAPSHOT: _, DOCKLESS_RUNTIME_NODE: __, ...rest } = process.env;
    try {
      const { stdout } = await execFileAsync(join(pkg, l.bin), args, { env: { ...rest, ...env }, timeout: 60_000 });
      return { stdout, code: 0 };
    } catch (error) {
      const e = error as { stdout?: string; code?: number | string; signal?: string };
      assert.equal(e.signal ?? null, null, `${l.name} was killed by ${e.signal}: Node was given a blob it could not take`);
      return { stdout: e.stdout ?? '', code: typeof e.code === 'number' ? e.code : -1 };
    }
  }

  const fromSnapshot = (out: { stdout: string }): void => assert.match(out.stdout, l.fromSnapshot, `not started from the snapshot: ${out.stdout}`);
  const plain = (out: { stdout: string }, args = l.args): void => assert.equal(out.stdout, `plain ${JSON.stringify(args)}\n`);

  describe(`${l.name} and its startup snapshot`, { skip }, () => {
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
      fromSnapshot(await launch(pkg, l.args));
      // Node's own options after the blob are the command's: the launcher ends Node's with `--`.
      const unknown = await launch(pkg, ['--version-nosuch']);
      assert.equal(unknown.code, l.usageExit);
      assert.equal((await launch(pkg, ['nosuch'])).code, l.usageExit);
    });

    it('runs the plain bundle when DOCKLESS_SNAPSHOT=0', async () => {
      const pkg = await makePackage(base, 'off');
      plain(await launch(pkg, l.args, { DOCKLESS_SNAPSHOT: '0' }));
    });

    if (l.kind === 'runtime') {
      // The blob belongs to the Node the front end was built with; DOCKLESS_RUNTIME_NODE names another.
      it('runs the plain front end on the Node DOCKLESS_RUNTIME_NODE names', async () => {
        const pkg = await makePackage(base, 'runtime-node');
        plain(await launch(pkg, l.args, { DOCKLESS_RUNTIME_NODE: process.execPath }));
      });
    }

    // A damaged blob makes Node abort (SIGTRAP on its checksum, SIGSEGV when short) before any fallback could run.
    it('does not hand Node a blob changed after its key was written (damaged, truncated)', async () => {
      const damaged = await makePackage(base, 'damaged');
      const blob = join(damaged, 'native', 'build', l.blob);
      const bytes = await readFile(blob);
      bytes[bytes.length >> 1] ^= 0xff;
      await writeFile(blob, bytes);
      plain(await launch(damaged, l.args));
      const truncated = await makePackage(base, 'truncated');
      await truncate(join(truncated, 'native', 'build', l.blob), 4096);
      plain(await launch(truncated, l.args));
      const grown = await makePackage(base, 'grown');
      await appendFile(join(grown, 'native', 'build', l.blob), 'x');
      plain(await launch(grown, l.args));
    });

    it('does not use a blob made from another script or for another Node', async () => {
      const rebuilt = await makePackage(base, 'rebuilt');
      await appendFile(join(rebuilt, 'dist', 'bundle', l.script), '\n');
      plain(await launch(rebuilt, l.args));
      const otherNode = await makePackage(base, 'other-node');
      const key = join(otherNode, 'native', 'build', `${l.blob}.key`);
      const lines = (await readFile(key, 'utf8')).split('\n');
      lines[2] = lines[2]!.replace(/^(\d+) (\d+)/, (_, dev: string, ino: string) => `${dev} ${BigInt(ino) + 1n}`);
      await writeFile(key, lines.join('\n'));
      plain(await launch(otherNode, l.args));
      const noKey = await makePackage(base, 'no-key');
      await rm(join(noKey, 'native', 'build', `${l.blob}.key`));
      plain(await launch(noKey, l.args));
    });

    // The blob is code Node runs unchecked: only its owner (or root) may be able to change it.
    it('does not use a blob, key or directory that others can write', async () => {
      for (const [name, file, mode] of [
        ['blob-writable', l.blob, 0o666],
        ['blob-group-writable', l.blob, 0o664],
        ['key-writable', `${l.blob}.key`, 0o646],
        ['dir-writable', '', 0o777],
      ] as const) {
        const pkg = await makePackage(base, name);
        await chmod(join(pkg, 'native', 'build', file), mode);
        plain(await launch(pkg, l.args));
      }
    });

    // Whoever can rename a directory above the blob can swap in another between the check and Node's open.
    it('does not use a blob under a directory others can write (native/, the package, above it)', async () => {
      const native = await makePackage(base, 'native-writable');
      await chmod(join(native, 'native'), 0o777);
      plain(await launch(native, l.args));
      const above = await mkdtemp(join(base, 'above-'));
      const pkg = await makePackage(above, 'pkg');
      await chmod(above, 0o777);
      plain(await launch(pkg, l.args));
      // A sticky directory (as /tmp) lets no one else rename what is not theirs in it.
      await chmod(above, 0o1777);
      fromSnapshot(await launch(pkg, l.args));
      if (process.getuid?.() === 0) {
        const owned = await makePackage(base, 'pkg-other-owner');
        await chown(owned, 65534, 65534);
        plain(await launch(owned, l.args));
      }
    });

    it('does not use a blob that is a symbolic link', async () => {
      const pkg = await makePackage(base, 'symlink');
      const blob = join(pkg, 'native', 'build', l.blob);
      // A rename keeps the identity the key names: only the link's being a link can turn it off.
      await rename(blob, `${blob}.real`);
      await symlink(`${blob}.real`, blob);
      plain(await launch(pkg, l.args));
    });

    // Each command that runs a container spawns the helper: child_process (with net and dgram, 19 internal
    // modules, ~1.3 ms) is loaded in the blob, not by that first spawn. A stand-in script says what its main finds.
    it('starts Node with child_process loaded from the blob', async () => {
      const report = "async () => { console.log('loaded ' + process.moduleLoadList.includes('NativeModule child_process')); return 0; }";
      const standIn =
        l.kind === 'cli'
          ? `(function (exports) { exports.loadCli = async () => ({ rehearse: async () => undefined, main: ${report} }); })`
          : `(function (exports) { exports.rehearse = async () => undefined; exports.main = ${report}; })`;
      const pkg = await makePackage(base, 'preloaded', standIn);
      assert.equal((await launch(pkg, l.args)).stdout, 'loaded true\n');
    });

    it('does not use a blob owned by another user', { skip: process.getuid?.() !== 0 ? 'chown needs root' : undefined }, async () => {
      const pkg = await makePackage(base, 'other-owner');
      await chown(join(pkg, 'native', 'build', l.blob), 65534, 65534);
      plain(await launch(pkg, l.args));
      const dir = await makePackage(base, 'other-owner-dir');
      await chown(join(dir, 'native', 'build'), 65534, 65534);
      plain(await launch(dir, l.args));
    });
  });
}
