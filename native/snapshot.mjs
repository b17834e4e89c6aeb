// Builds the `dockless` command's V8 startup snapshot, native/build/dockless-cli.blob,
// and its key file, which the launcher (native/cli/main.c) checks before it hands the
// blob to Node. Run by native/build.mjs at install and by tools/bundle.mjs after a
// build: the blob belongs to the exact Node binary and core.js it was made from.
import { spawnSync } from 'node:child_process';
import { chmodSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const BLOB = 'dockless-cli.blob';
const KEY_MAGIC = 'dockless-cli-snapshot-1\n';

/** The identity of `path` as native/cli/main.c prints it: path, device, inode, size, mtime. */
export function identity(path) {
  const st = statSync(path, { bigint: true });
  return `${path}\n${st.dev} ${st.ino} ${st.size} ${st.mtimeNs / 1000000000n} ${st.mtimeNs % 1000000000n}\n`;
}

/**
 * Makes `outDir`/dockless-cli.blob from `pkg`'s dist/bundle/core.js with `node`
 * (the launcher's compiled-in Node). Returns an error message, or undefined when built.
 * The blob is whole or absent: built under a temporary name, renamed, and then the key
 * (which names the renamed blob's identity) written the same way.
 */
export function buildCliSnapshot({ pkg, outDir, node = process.execPath }) {
  const root = realpathSync(pkg);
  const core = join(root, 'dist', 'bundle', 'core.js');
  const blob = join(outDir, BLOB);
  const key = `${blob}.key`;
  const temp = `${blob}.tmp-${process.pid}`;
  rmSync(key, { force: true });
  try {
    const built = spawnSync(node, ['--snapshot-blob', temp, '--build-snapshot', join(root, 'native', 'snapshot-entry.cjs')], {
      env: { ...process.env, DOCKLESS_SNAPSHOT_CORE: core },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (built.error || built.status !== 0) return `node --build-snapshot failed: ${built.error?.message ?? built.stderr.trim().split('\n').slice(-3).join(' ')}`;
    chmodSync(temp, 0o644);
    renameSync(temp, blob);
    writeFileSync(`${key}.tmp-${process.pid}`, KEY_MAGIC + identity(node) + identity(core) + identity(blob), { mode: 0o644 });
    renameSync(`${key}.tmp-${process.pid}`, key);
    return undefined;
  } catch (error) {
    return error.message;
  } finally {
    rmSync(temp, { force: true });
    rmSync(`${key}.tmp-${process.pid}`, { force: true });
  }
}
