import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const repo = resolve(import.meta.dirname, '..', '..');

const skip =
  process.getuid?.() !== 0
    ? 'running a container through the installed package needs root'
    : !existsSync(join(repo, 'dist', 'index.js'))
      ? 'dist/ not built: run npm run build'
      : undefined;
if (skip !== undefined) console.log(`# skipping package-install tests: ${skip}`);

/** The environment of a user's shell: none of npm's own run-script variables, no helper override. */
function userEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== 'DOCKLESS_HELPER' && k !== 'INIT_CWD'),
  );
  return { ...env, ...extra };
}

// What an app does first: import the package, make a rootfs, run `true` in it.
const APP = `
import { Runtime, rootfsFromHost } from 'dockless';
import { join } from 'node:path';
const base = process.argv[2];
const rootfs = await rootfsFromHost(join(base, 'rootfs'));
const runtime = new Runtime({ root: join(base, 'root'), stateDir: join(base, 'state') });
const container = await runtime.run({ rootfs: rootfs.path, cmd: ['true'], stdio: 'ignore' });
const exit = await container.wait();
await container.remove();
console.log(JSON.stringify(exit));
`;

describe('the packed package', { skip }, () => {
  let base: string;
  let tarball: string;

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'dl-pack-'));
    // prepack's tsc is skipped: dist/ is what `npm run build` just made.
    const { stdout } = await execFileAsync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', base], {
      cwd: repo,
      env: userEnv({}),
      maxBuffer: 64 << 20,
    });
    const [packed] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    assert.ok(packed, 'npm pack reported no tarball');
    tarball = join(base, packed.filename);
  });

  after(async () => {
    if (base !== undefined) await rm(base, { recursive: true, force: true });
  });

  async function install(name: string, extraArgs: string[], env: Record<string, string>): Promise<string> {
    const app = join(base, name);
    await mkdir(app);
    await writeFile(join(app, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true, type: 'module' }));
    await writeFile(join(app, 'app.mjs'), APP);
    await execFileAsync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...extraArgs, tarball], {
      cwd: app,
      env: userEnv(env),
      maxBuffer: 64 << 20,
      timeout: 300_000,
    }).catch((error: { stderr?: string }) => {
      assert.fail(`npm install of the packed tarball failed:\n${error.stderr ?? String(error)}`);
    });
    return app;
  }

  async function runApp(app: string, env: Record<string, string>): Promise<unknown> {
    const work = await mkdtemp(join(app, 'work-'));
    const { stdout } = await execFileAsync(process.execPath, ['app.mjs', work], { cwd: app, env: userEnv(env), timeout: 300_000 });
    return JSON.parse(stdout.trim().split('\n').at(-1)!);
  }

  // Item 9 of issue 10: the install built the test probe, whose source the package does not ship, and failed.
  it('installs into an empty project, builds only the helper, and runs a container through it', async () => {
    const cache = join(base, 'cache-installed');
    const app = await install('app-installed', [], { XDG_CACHE_HOME: cache });
    const build = join(app, 'node_modules', 'dockless', 'native', 'build');
    assert.deepEqual(
      (await readdir(build)).sort(),
      ['dockless-cli', 'dockless-cli.blob', 'dockless-cli.blob.key', 'dockless-helper', 'dockless-runtime', 'dockless-runtime.blob', 'dockless-runtime.blob.key'],
      'the install builds the helper, the runtime front end, the command launcher and both snapshots, nothing else',
    );
    // The `dockless` bin is the launcher, which starts Node from the command line's snapshot (issue 15's speed).
    const cli = join(app, 'node_modules', '.bin', 'dockless');
    assert.deepEqual([...(await readFile(cli)).subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], 'the dockless bin is not the native launcher');
    assert.match((await execFileAsync(cli, ['version'])).stdout, /^dockless version \d/);
    const rootfs = join(base, 'cli-rootfs');
    await mkdir(join(rootfs, 'bin'), { recursive: true });
    await copyFile('/bin/busybox', join(rootfs, 'bin', 'busybox'));
    await symlink('busybox', join(rootfs, 'bin', 'sh'));
    const cliRoot = join(base, 'cli-root');
    await execFileAsync(cli, ['--root', cliRoot, 'import', rootfs, 'pkg:1'], { env: userEnv({ XDG_CACHE_HOME: cache }) });
    const ran = await execFileAsync(cli, ['--root', cliRoot, 'run', '--rm', '--network', 'none', 'pkg:1', 'sh', '-c', 'echo from the bin'], { env: userEnv({ XDG_CACHE_HOME: cache }) });
    assert.equal(ran.stdout, 'from the bin\n');
    // The package's bin is the native front end itself once the install has built it (issue 16: no Node start for state, start, kill, delete).
    const bin = join(app, 'node_modules', '.bin', 'dockless-runtime');
    assert.deepEqual([...(await readFile(bin)).subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], 'the bin is not the native front end');
    assert.match((await execFileAsync(bin, ['--version'])).stdout, /^dockless-runtime version \d/);
    assert.match((await execFileAsync(bin, ['features'])).stdout, /"ociVersionMax"/, 'the front end does not reach the Node one');
    // `spec` is the Node front end's, started from the install's snapshot of it.
    const specDir = await mkdtemp(join(base, 'spec-'));
    await execFileAsync(bin, ['spec', '--bundle', specDir]);
    assert.equal(JSON.parse(await readFile(join(specDir, 'config.json'), 'utf8')).ociVersion, '1.0.2');
    assert.deepEqual(await runApp(app, { XDG_CACHE_HOME: cache }), { exitCode: 0, signal: null, oomKilled: false });
    // The user cache holds the bundle's V8 code cache (dockless/code), and no helper build.
    const cached = await readdir(join(cache, 'dockless')).catch(() => [] as string[]);
    assert.deepEqual(cached.filter((n) => n.startsWith('helper-')), [], 'no first-use build when the install built the helper');
    assert.ok(cached.includes('code'), 'the installed bundle keeps no V8 code cache');
  });

  // An install that ran no install script (--ignore-scripts, or a package manager that blocks them) must still work.
  it('builds the helper on first use into the user cache when the install ran no script', async () => {
    const cache = join(base, 'cache-ignored');
    const app = await install('app-ignored', ['--ignore-scripts'], { XDG_CACHE_HOME: cache });
    assert.equal(existsSync(join(app, 'node_modules', 'dockless', 'native', 'build')), false);
    // Without the install script the bin is the shell launcher, which runs the Node front end.
    assert.match((await execFileAsync(join(app, 'node_modules', '.bin', 'dockless-runtime'), ['--version'])).stdout, /^dockless-runtime version \d/);
    assert.match((await execFileAsync(join(app, 'node_modules', '.bin', 'dockless'), ['version'])).stdout, /^dockless version \d/);
    await assert.rejects(runApp(app, { XDG_CACHE_HOME: cache, CC: '/nonexistent/cc' }), (error: { stderr?: string }) => {
      assert.match(error.stderr ?? '', /NotFoundError: .*no C compiler .*run `apt-get install -y gcc libc6-dev`/);
      return true;
    });
    assert.deepEqual(await runApp(app, { XDG_CACHE_HOME: cache }), { exitCode: 0, signal: null, oomKilled: false });
    const built = (await readdir(join(cache, 'dockless'))).filter((n) => n !== 'code');
    assert.equal(built.length, 1);
    assert.match(built[0]!, /^helper-[0-9a-f]{16}$/);
    assert.ok(existsSync(join(cache, 'dockless', built[0]!, 'dockless-helper')));
  });
});
