import { accessSync, constants } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NotFoundError } from '../errors.js';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where `npm install` builds the helper and the test probe. */
export const nativeBuildDir = join(packageRoot, 'native', 'build');

/** Paths already found executable: checked once, not on every spawn. */
const checked = new Set<string>();

/**
 * The path of the native helper: `$DOCKLESS_HELPER` when set, else the binary
 * built into `native/build/` by `npm install`.
 *
 * @throws {@link NotFoundError} when the helper is not there or not executable.
 */
export function locateHelper(override?: string): string {
  const explicit = override ?? process.env.DOCKLESS_HELPER;
  const path = explicit ?? join(nativeBuildDir, 'dockless-helper');
  if (checked.has(path)) return path;
  try {
    accessSync(path, constants.X_OK);
  } catch (cause) {
    throw new NotFoundError(
      `native helper not found at \`${path}\`: run \`npm install\` (it needs a C compiler: apt-get install -y gcc make libc6-dev) or set DOCKLESS_HELPER`,
      { cause, path },
    );
  }
  checked.add(path);
  return path;
}
