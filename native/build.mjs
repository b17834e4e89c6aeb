// Builds the native helper with the system C compiler.
//
//   node native/build.mjs             the helper and dockless-runtime's native front end into native/build/ (`npm install`);
//                                     the front end also replaces the launcher dist/bin/dockless-runtime, the package's bin
//   node native/build.mjs --out DIR   the helper into DIR (first use, see src/helper/locate.ts)
//   node native/build.mjs --all       helper and test probe through the Makefile (`npm run build`)
//   node native/build.mjs --cli       the `dockless` launcher and the V8 startup snapshots of it and of
//                                     dockless-runtime's Node front end (also at install; tools/bundle.mjs
//                                     runs it after each build: a blob is tied to the script it was made from)
//
// Only `--all` needs make and builds the probe: a package installed from the registry
// ships neither native/test/ nor a guarantee that make is installed.
// Exit codes: 0 built (or not Linux), 1 the compiler failed, 3 no C compiler.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSnapshot } from './snapshot.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const NO_COMPILER = 3;
const INSTALL_HINT = 'apt-get install -y gcc libc6-dev';
// The snapshot checks both launchers share (native/snapshot/check.c).
const snapshotDir = join(here, 'snapshot');

const args = process.argv.slice(2);
const all = args.includes('--all');
const outIndex = args.indexOf('--out');
const outDir = outIndex === -1 ? join(here, 'build') : resolve(args[outIndex + 1] ?? '');
const cliOnly = args.includes('--cli');
const installing = !all && !cliOnly && outIndex === -1;

if (process.platform !== 'linux') {
  console.error('dockless: the native helper needs Linux; skipping its build');
  process.exit(0);
}
const cc = process.env.CC || 'cc';
const version = spawnSync(cc, ['--version'], { stdio: 'ignore' });
if (version.error || version.status !== 0) {
  console.error(`dockless: no C compiler found (\`${cc}\`) to build the native helper; install one: ${INSTALL_HINT}`);
  // An install without a compiler still succeeds: the first use builds the helper or
  // throws an error naming this command, which a user sees (npm hides install output).
  process.exit(installing ? 0 : NO_COMPILER);
}

if (all) {
  execFileSync('make', ['-s', '-C', here, `CC=${cc}`, `NODE=${process.execPath}`], { stdio: 'inherit' });
  process.exit(0);
}

const cFiles = (dir, ext) =>
  readdirSync(dir)
    .filter((name) => name.endsWith(ext))
    .sort()
    .map((name) => join(dir, name));
// No -Werror here: a newer compiler's new warning must not break a user's install.
const flags = ['-std=gnu11', '-O2', '-D_GNU_SOURCE', '-Wall'];
mkdirSync(outDir, { recursive: true });
// A static binary skips the dynamic loader on every start; not every host has a static libc.
const link = linksStatically() ? ['-static'] : [];

if (cliOnly) {
  // A checkout's dist/bin/dockless stays the shell launcher (it is what `npm pack` ships); it runs native/build/dockless-cli.
  buildCli(false);
  buildRuntimeSnapshot();
  process.exit(0);
}

if (!compile('dockless-helper', cFiles(here, '.c'), cFiles(here, '.h'), [])) {
  console.error(`dockless: building the native helper with \`${cc}\` failed (the C library headers come with: ${INSTALL_HINT})`);
  process.exit(1);
}
if (installing) {
  const runtimeDir = join(here, 'runtime');
  const sources = [...cFiles(runtimeDir, '.c'), join(here, 'error.c'), ...cFiles(snapshotDir, '.c')];
  const headers = [...cFiles(runtimeDir, '.h'), join(here, 'error.h'), ...cFiles(snapshotDir, '.h')];
  // Without it the launcher runs the Node front end for every command: slower, not broken.
  if (!compile('dockless-runtime', sources, headers, [`-DDLRT_NODE_PATH=${JSON.stringify(process.execPath)}`])) {
    console.error('dockless: building dockless-runtime\'s native front end failed; `dockless-runtime` runs on Node alone');
  } else {
    installRuntimeBin();
  }
  buildCli(true);
  buildRuntimeSnapshot();
}

/**
 * The `dockless` launcher and the blob it starts Node from; either failing leaves the
 * shell launcher (dist/bin/dockless), which runs the plain bundle: slower, not broken.
 */
function buildCli(install) {
  if (!compile('dockless-cli', [join(here, 'cli', 'main.c'), ...cFiles(snapshotDir, '.c')], cFiles(snapshotDir, '.h'), [`-DDLCLI_NODE_PATH=${JSON.stringify(process.execPath)}`])) {
    console.error('dockless: building the `dockless` launcher failed; the command starts without its snapshot');
    return;
  }
  const failed = buildSnapshot({ kind: 'cli', pkg: join(here, '..'), outDir });
  if (failed !== undefined) console.error(`dockless: the command's startup snapshot was not built (${failed}); it starts without it`);
  if (install) installBin('dockless-cli', 'dockless');
}

/** The blob dockless-runtime's native front end (install, or the Makefile) starts its Node front end from when it checks out. */
function buildRuntimeSnapshot() {
  const failed = buildSnapshot({ kind: 'runtime', pkg: join(here, '..'), outDir });
  if (failed !== undefined) console.error(`dockless: dockless-runtime's startup snapshot was not built (${failed}); it starts without it`);
}

/** Compiles SOURCES into outDir/NAME unless it is newer than every source; false when the compiler fails. */
function compile(name, sources, headers, extra) {
  const target = join(outDir, name);
  const newestSource = Math.max(...[...sources, ...headers].map((file) => statSync(file).mtimeMs));
  if (mtimeOf(target) >= newestSource) return true;
  const temp = `${target}.tmp-${process.pid}`;
  try {
    const compiled = spawnSync(cc, [...flags, ...extra, ...link, '-o', temp, ...sources], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (compiled.error || compiled.status !== 0) return false;
    // Concurrent first uses each build their own file; the rename makes one of them win whole.
    renameSync(temp, target);
    return true;
  } finally {
    rmSync(temp, { force: true });
  }
}

/** Puts the front end where the package's bin points (npm linked the shell launcher there before this script ran). */
function installRuntimeBin() {
  installBin('dockless-runtime', 'dockless-runtime');
}

/** Replaces the shell launcher dist/bin/NAME, where a package's bin points, with the built BUILT. */
function installBin(built, name) {
  const bin = join(here, '..', 'dist', 'bin', name);
  if (mtimeOf(bin) < 0) return;
  const temp = `${bin}.tmp-${process.pid}`;
  try {
    copyFileSync(join(outDir, built), temp);
    chmodSync(temp, 0o755);
    renameSync(temp, bin);
  } finally {
    rmSync(temp, { force: true });
  }
}

function mtimeOf(file) {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return -1;
  }
}

function linksStatically() {
  const test = join(outDir, `.static-test-${process.pid}`);
  try {
    const r = spawnSync(cc, ['-static', '-x', 'c', '-o', test, '-'], {
      input: 'int main(void){return 0;}\n',
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    return !r.error && r.status === 0;
  } finally {
    rmSync(test, { force: true });
  }
}
