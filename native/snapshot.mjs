// Builds the V8 startup snapshots of the `dockless` command (native/build/dockless-cli.blob,
// from dist/bundle/cli-core.js) and of dockless-runtime's Node front end
// (native/build/dockless-runtime.blob, from dist/bundle/runtime-core.js), each with the
// key file that its launcher (native/cli/main.c, native/runtime/main.c, both through
// native/snapshot/check.c) checks before it hands the blob to Node. Run by
// native/build.mjs at install and by tools/bundle.mjs after a build: a blob belongs to
// the exact Node binary and script it was made from.
import { spawnSync } from 'node:child_process';
import { chmodSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Each snapshot (native/snapshot-entry.cjs makes both): its blob's name, the script it is made from, the key's first line (as in the C launchers). */
export const SNAPSHOTS = {
  cli: { blob: 'dockless-cli.blob', script: 'dist/bundle/cli-core.js', magic: 'dockless-cli-snapshot-1\n' },
  runtime: {
    blob: 'dockless-runtime.blob',
    script: 'dist/bundle/runtime-core.js',
    magic: 'dockless-runtime-snapshot-1\n',
  },
};
export const BLOB = SNAPSHOTS.cli.blob;

/** The identity of `path` as native/snapshot/check.c prints it: path, device, inode, size, mtime. */
export function identity(path) {
  const st = statSync(path, { bigint: true });
  return `${path}\n${st.dev} ${st.ino} ${st.size} ${st.mtimeNs / 1000000000n} ${st.mtimeNs % 1000000000n}\n`;
}

/**
 * Makes `outDir`/dockless-cli.blob from `pkg`'s dist/bundle/cli-core.js with `node`
 * (the launcher's compiled-in Node). Returns an error message, or undefined when built.
 */
export function buildCliSnapshot({ pkg, outDir, node = process.execPath }) {
  return buildSnapshot({ kind: 'cli', pkg, outDir, node });
}

/**
 * Makes the `kind` snapshot (a key of {@link SNAPSHOTS}) of `pkg` into `outDir` with `node`.
 * Returns an error message, or undefined when built. The blob is whole or absent: built
 * under a temporary name, renamed, and then the key (which names the renamed blob's
 * identity) written the same way.
 */
export function buildSnapshot({ kind, pkg, outDir, node = process.execPath }) {
  const { blob: name, script, magic } = SNAPSHOTS[kind];
  const root = realpathSync(pkg);
  const core = join(root, script);
  const blob = join(outDir, name);
  const key = `${blob}.key`;
  const temp = `${blob}.tmp-${process.pid}`;
  rmSync(key, { force: true });
  try {
    const built = spawnSync(node, ['--snapshot-blob', temp, '--build-snapshot', join(root, 'native', 'snapshot-entry.cjs')], {
      env: { ...process.env, DOCKLESS_SNAPSHOT_CORE: core, DOCKLESS_SNAPSHOT_KIND: kind },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (built.error || built.status !== 0) return `node --build-snapshot failed: ${built.error?.message ?? built.stderr.trim().split('\n').slice(-3).join(' ')}`;
    chmodSync(temp, 0o644);
    renameSync(temp, blob);
    writeFileSync(`${key}.tmp-${process.pid}`, magic + identity(node) + identity(core) + identity(blob), { mode: 0o644 });
    renameSync(`${key}.tmp-${process.pid}`, key);
    return undefined;
  } catch (error) {
    return error.message;
  } finally {
    rmSync(temp, { force: true });
    rmSync(`${key}.tmp-${process.pid}`, { force: true });
  }
}
