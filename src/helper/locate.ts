import { accessSync, constants } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NotFoundError } from '../errors.js';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where `npm install` builds the helper and the test probe. */
export const nativeBuildDir = join(packageRoot, 'native', 'build');

let cached: string | undefined;

/**
 * The path of the native helper: `$DOCKLESS_HELPER` when set, else the binary
 * built into `native/build/` by `npm install`.
 *
 * @throws {@link NotFoundError} when the helper is not there or not executable.
 */
export function locateHelper(override?: string): string {
  const explicit = override ?? process.env.DOCKLESS_HELPER;
  if (explicit === undefined && cached !== undefined) return cached;
  const path = explicit ?? join(nativeBuildDir, 'dockless-helper');
  try {
    accessSync(path, constants.X_OK);
  } catch (cause) {
    throw new NotFoundError(
      `native helper not found at \`${path}\`: run \`npm install\` (it needs a C compiler: apt-get install -y gcc make libc6-dev) or set DOCKLESS_HELPER`,
      { cause, path },
    );
  }
  if (explicit === undefined) cached = path;
  return path;
}
