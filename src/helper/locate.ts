import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, readFileSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import createDebug from 'debug';
import { NotFoundError, PermissionError } from '../errors.js';

const debug = createDebug('dockless:helper');

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const nativeDir = join(packageRoot, 'native');

/** Where `npm install` builds the helper (and `npm run build` the test probe). */
export const nativeBuildDir = join(nativeDir, 'build');
/** The helper `npm install` builds; asked for on every op. */
const installedHelper = join(nativeBuildDir, 'dockless-helper');

// What building the helper needs, on Debian and Ubuntu.
const HELPER_BUILD_DEPENDENCIES = 'apt-get install -y gcc libc6-dev';

// build.mjs's exit code when no C compiler is installed.
const NO_COMPILER = 3;

/** Paths already found executable: checked once, not on every spawn. */
const checked = new Set<string>();
/** The helper this process built or found in the user cache. */
let firstUseBuild: string | undefined;

/**
 * The path of the native helper: `$DOCKLESS_HELPER` when set, else the binary
 * built into `native/build/` by `npm install`, else one built on first use
 * into the user's cache directory: `$XDG_CACHE_HOME/dockless/helper-<hash>`
 * (else `~/.cache/dockless/…`), where the hash covers the helper's sources and
 * the CPU architecture, so an upgrade builds afresh and never runs a stale binary.
 *
 * The first-use build covers installs that ran no install script (`npm install
 * --ignore-scripts`, a package manager that blocks dependencies' scripts, an
 * install on a machine that had no C compiler yet). It compiles the shipped
 * sources with the system C compiler (`$CC`, else `cc`), synchronously and
 * once per source version: the process waits for it (some seconds), later
 * processes find the cached binary.
 *
 * @param override - An explicit helper path; wins over everything else.
 * @throws {@link NotFoundError} when an explicit helper is not there or not
 *   executable, or when no helper is built and none can be: the message names
 *   the command to run (`apt-get install -y gcc libc6-dev`).
 * @example
 * ```ts
 * const helper = locateHelper(); // '/app/node_modules/dockless/native/build/dockless-helper'
 * ```
 */
export function locateHelper(override?: string): string {
  const explicit = override ?? process.env['DOCKLESS_HELPER'];
  if (explicit !== undefined) {
    if (!checked.has(explicit)) {
      if (!isExecutable(explicit)) {
        throw new NotFoundError(`native helper not found at \`${explicit}\` (given by helperPath or DOCKLESS_HELPER)`, {
          path: explicit,
        });
      }
      checked.add(explicit);
    }
    return explicit;
  }
  if (checked.has(installedHelper)) return installedHelper;
  if (firstUseBuild !== undefined) return firstUseBuild;
  if (isExecutable(installedHelper)) {
    checked.add(installedHelper);
    return installedHelper;
  }
  return buildOnFirstUse();
}

function helperCacheDir(): string {
  const xdg = process.env['XDG_CACHE_HOME'];
  const cache = xdg !== undefined && isAbsolute(xdg) ? xdg : join(homedir(), '.cache');
  return join(cache, 'dockless', `helper-${sourceHash()}`);
}

function buildOnFirstUse(): string {
  const dir = helperCacheDir();
  const built = join(dir, 'dockless-helper');
  // A binary that another user could have planted or changed is never run (root
  // with a user's HOME, through `sudo -E`, would otherwise run it as root).
  if (isExecutable(built)) checkOwnFile(built, dir);
  else {
    const script = join(nativeDir, 'build.mjs');
    debug('no helper in %s: building %s', nativeBuildDir, built);
    process.emitWarning(`building the native helper into \`${dir}\` (once)`, { code: 'DOCKLESS_HELPER_BUILD' });
    try {
      execFileSync(process.execPath, [script, '--out', dir], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
    } catch (cause) {
      const status = (cause as { status?: number | null }).status;
      const stderr = String((cause as { stderr?: Buffer | string }).stderr ?? '').trim();
      const why =
        status === NO_COMPILER
          ? `no C compiler (\`${process.env['CC'] || 'cc'}\`) to build it: run \`${HELPER_BUILD_DEPENDENCIES}\``
          : `\`node ${script} --out ${dir}\` failed: ${stderr.split('\n').slice(-3).join('; ') || String(cause)}`;
      throw new NotFoundError(`native helper not found at \`${installedHelper}\` and not built: ${why}`, {
        cause,
        path: built,
      });
    }
  }
  checkOwnFile(built, dir);
  checked.add(built);
  firstUseBuild = built;
  return built;
}

/** Refuses a first-use build whose file or directories (up to the cache's `dockless` folder) are not this user's alone. */
function checkOwnFile(file: string, dir: string): void {
  const uid = process.getuid?.() ?? 0;
  for (const path of [file, dir, dirname(dir)]) {
    const info = statSync(path);
    if (info.uid !== uid || (info.mode & 0o022) !== 0) {
      throw new PermissionError(
        `native helper \`${file}\`: \`${path}\` must belong to uid ${uid} and be writable by nobody else (owner ${info.uid}, mode ${(info.mode & 0o7777).toString(8)})`,
        { path },
      );
    }
  }
}

function sourceHash(): string {
  let names: string[];
  try {
    names = readdirSync(nativeDir).filter((n) => /\.[ch]$/.test(n)).sort();
  } catch (cause) {
    throw new NotFoundError(`native helper sources not found in \`${nativeDir}\``, { cause, path: nativeDir });
  }
  if (!names.includes('main.c')) {
    throw new NotFoundError(`native helper sources not found in \`${nativeDir}\``, { path: nativeDir });
  }
  const hash = createHash('sha256').update(`${process.arch}\0`);
  for (const name of names) hash.update(`${name}\0`).update(readFileSync(join(nativeDir, name)));
  return hash.digest('hex').slice(0, 16);
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
