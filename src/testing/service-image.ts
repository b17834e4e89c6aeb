/**
 * Service images made from the host's own packages, with no network: a rootfs
 * of named host binaries, the modules they load and their data files
 * (`rootfsFromHost`), optionally prepared once by a container (a database's
 * `initdb`), cached under the runtime's root by a hash of everything that went
 * in, so the second test of a run starts from a finished image.
 *
 * @module
 */

import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { rootfsFromHost, type HostRootfsOptions, type Runtime } from '../index.js';

/** What a service image holds, and how it is prepared once built. */
export interface ServiceImageRecipe {
  /** A short name for the cache directory: `redis`, `postgres`. */
  name: string;
  /** What `rootfsFromHost` copies: binaries, modules, data files. */
  rootfs: HostRootfsOptions;
  /** Strings that change the result beyond the host files (credentials baked in by `prepare`). */
  salt?: readonly string[];
  /** Run once on the new rootfs (a path still outside the cache) before it is published. */
  prepare?: (rootfs: string) => Promise<void>;
}

/** The host files named by a recipe, with their size and change time: the cache key's input. */
async function fingerprint(recipe: ServiceImageRecipe): Promise<string> {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ v: 1, name: recipe.name, rootfs: recipe.rootfs, salt: recipe.salt ?? [] }));
  const paths = [...(recipe.rootfs.binaries ?? []), ...(recipe.rootfs.modules ?? []), ...Object.keys(recipe.rootfs.files ?? {})];
  for (const p of paths.filter((p) => p.startsWith('/'))) {
    const st = await stat(p).catch(() => undefined);
    hash.update(`${p}\0${st?.size ?? -1}\0${st?.mtimeMs ?? -1}\0`);
  }
  return hash.digest('hex').slice(0, 24);
}

/**
 * The rootfs of `recipe`, built (and prepared) on first use and found in the
 * cache afterwards. Builders racing on one key each build in their own
 * directory; the first rename wins and the others throw theirs away.
 */
export async function serviceRootfs(runtime: Runtime, recipe: ServiceImageRecipe): Promise<string> {
  const cache = join(runtime.root, 'testing-images');
  const target = join(cache, `${recipe.name}-${await fingerprint(recipe)}`);
  if (await stat(join(target, 'bin')).then(() => true, () => false)) return target;
  await mkdir(cache, { recursive: true });
  // rootfsFromHost renames its own staging dir into place; this one covers `prepare`'s writes too.
  const staging = join(cache, `.${recipe.name}-${randomBytes(6).toString('hex')}`);
  try {
    await rootfsFromHost(staging, { busybox: false, ...recipe.rootfs });
    await recipe.prepare?.(staging);
    await chmod(staging, 0o755);
    await rename(staging, target).catch(async (error: unknown) => {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
    });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return target;
}
