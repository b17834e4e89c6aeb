/**
 * Container snapshots, "warm once, fork many": a stopped container's upper
 * directory becomes, in place, a read-only layer that any number of clones
 * take as their top-most overlay lower dir. No tar, no commit, no copy: the
 * directory is renamed out of the container's bundle into
 * `<root>/templates/<id>/layer`, where no overlay writes to it again.
 *
 * A snapshot lives as long as something holds it: the handle that made it
 * (`holds/handle-…`, ends with its process) and every clone
 * (`holds/clone-<id>`, ends when the clone's state directory is gone and
 * its launching process too). The last release, clone removal or
 * `runtime.prune()` that finds no live hold removes it, so removing the
 * template container, or the handle, while clones exist keeps the layer
 * until the last clone is gone. Holds are files, checked under one lock, so
 * this holds across processes and through SIGKILL, as the store's leases do.
 *
 * @module
 */

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { access, chmod, chown, mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import createDebug from 'debug';
import { InvalidArgumentError, InvalidStateError, NotFoundError, UnavailableError } from '../errors.js';
import { withLock } from '../store/index.js';
import { isErrno, isProcessAlive, ownerToken, randomHex, selfStartTime } from '../util/index.js';
import type { Container } from './container.js';
import type { LaunchOptions } from './options.js';
import type { ContainerSpec } from './spec.js';
import { readJson, writeJsonAtomic, type ContainerConfigRecord, type ContainerPaths, type ContainerRecord } from './state.js';
import { removeContainerDir, type UsernsPlan, type UsernsRecord } from './userns.js';

const debug = createDebug('dockless:runtime');

const ID_RE = /^[0-9a-f]{64}$/;

/** Options of `runtime.snapshot()`. */
export interface ContainerSnapshotOptions {
  /**
   * The spec the container was launched with, which clones start from. Needed
   * only for a container this runtime did not launch (one found with
   * `runtime.get()` from another process).
   */
  spec?: ContainerSpec;
  /**
   * Milliseconds a running container is given to exit after its stop signal
   * before SIGKILL: a database that shuts down cleanly leaves a snapshot its
   * clones start without crash recovery.
   * @default the container's stop timeout (10000)
   */
  stopTimeoutMs?: number;
  /**
   * Let clones share the template's writable bind mounts. Off by default: a
   * bind mount's files are a host directory, not part of the snapshot, and
   * every clone would write the same one; give clones their own `mounts`.
   * @default false
   */
  shareBindMounts?: boolean;
  /**
   * Also checkpoint the running processes with CRIU and restore them in each
   * clone. Not available: see {@link processStateSupport}.
   * @default false
   */
  processState?: boolean;
}

/** Options of `runtime.clone()`, besides {@link LaunchOptions}. */
export interface CloneOptions extends LaunchOptions {
  /** Start the clone's command (`run`), or only create it (`create`). @default true */
  start?: boolean;
}

/** What `template.json` records of a snapshot. */
export interface SnapshotRecord {
  version: 1;
  id: string;
  /** The container the snapshot was taken of. */
  container: string;
  created: string;
  /** The template's own lower dirs, top-most first: the layer goes above them. */
  lowers: string[];
  /** Rootless: the maps the layer's files were written under, which a clone must share. */
  userns?: UsernsRecord;
}

/** A hold on a snapshot, `holds/<name>.json`: live while its process lives, or while `alive` exists. */
interface HoldRecord {
  pid?: number;
  start?: number;
  /** A clone's state directory, or a snapshot's directory (of a snapshot of a clone). */
  alive?: string;
}

/** The directories of snapshot `id` below the runtime's root. */
export function snapshotPaths(root: string, id: string): { dir: string; layer: string; record: string; holds: string } {
  const dir = join(root, 'templates', id);
  return { dir, layer: join(dir, 'layer'), record: join(dir, 'template.json'), holds: join(dir, 'holds') };
}

/**
 * Whether any container below `root` may run on a snapshot, or hold one: not before the first snapshot
 * made the templates directory, which {@link freezeUpper} makes before it names a layer in it anywhere.
 * One stat, where reading a container's config to find out is an open, a read and a parse.
 */
export function snapshotsMayExist(root: string): boolean {
  return existsSync(join(root, 'templates'));
}

function templatesLock(root: string): string {
  return join(root, 'templates', '.lock');
}

/**
 * A frozen container state that clones start from: its files (the template's
 * upper directory, now a read-only layer) and the spec it was launched with.
 * Made by `runtime.snapshot()`; `await using` (or {@link release}) lets go
 * of it, and the layer goes with the last clone.
 *
 * @example
 * ```ts
 * const db = await runtime.run({ rootfs, cmd: ['my-db'] });
 * // … run the migrations, load the fixtures …
 * await using tpl = await runtime.snapshot(db); // stops db, freezes its files
 * await using a = await tpl.clone();            // each clone writes only its own upper dir
 * await using b = await tpl.clone();
 * ```
 */
export class ContainerSnapshot implements AsyncDisposable {
  /** The snapshot's id (64 hex digits). */
  readonly id: string;
  /** The layer: the frozen upper directory, read-only from now on. */
  readonly layer: string;
  /** The id of the container it was taken of. */
  readonly container: string;
  /** The spec clones start from (without `name`: names are unique). */
  readonly spec: Readonly<ContainerSpec>;
  readonly #clone: (overrides: Partial<ContainerSpec>, options: CloneOptions) => Promise<Container>;
  readonly #release: () => Promise<void>;
  #released = false;

  /** @internal Snapshots are made by `runtime.snapshot()`. */
  constructor(init: {
    id: string;
    layer: string;
    container: string;
    spec: ContainerSpec;
    clone: (overrides: Partial<ContainerSpec>, options: CloneOptions) => Promise<Container>;
    release: () => Promise<void>;
  }) {
    this.id = init.id;
    this.layer = init.layer;
    this.container = init.container;
    this.spec = init.spec;
    this.#clone = init.clone;
    this.#release = init.release;
  }

  /**
   * A new container whose root starts as the template's was when the
   * snapshot was taken: the spec of the template with `overrides` on top
   * (`rootfs`/`image` cannot change). Its writes go to its own upper dir.
   *
   * @throws {@link InvalidStateError} when the snapshot was released.
   * @throws what `runtime.run()` throws.
   */
  clone(overrides: Partial<ContainerSpec> = {}, options: CloneOptions = {}): Promise<Container> {
    if (this.#released) return Promise.reject(new InvalidStateError(`clone snapshot ${this.id.slice(0, 12)}: snapshot was released`));
    return this.#clone(overrides, options);
  }

  /** Lets go of the snapshot: no new clones; its layer goes once its last clone is removed. Idempotent. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    await this.#release();
  }

  /** Releases the snapshot; for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

/**
 * Whether process state can be cloned here: `criu check` must pass. CRIU
 * 3.17 (Debian 12) fails on kernels that map `[vvar_vclock]` apart from
 * `[vvar]` (6.13 on): "vdso: Unexpected rt vDSO area bounds".
 *
 * @returns `undefined` when criu works, else why not (its first error line).
 */
export function processStateSupport(): string | undefined {
  const run = spawnSync('criu', ['check'], { encoding: 'utf8', timeout: 10_000 });
  if (run.error !== undefined) return `criu check: ${(run.error as NodeJS.ErrnoException).code ?? run.error.message} (install Debian's criu)`;
  if (run.status === 0) return undefined;
  const line = `${run.stderr}\n${run.stdout}`.split('\n').find((l) => /error/i.test(l)) ?? `exit ${run.status}`;
  return `criu check: ${line.trim()}`;
}

/** The writable bind mounts clones would share. */
export function sharedBindTargets(spec: ContainerSpec): string[] {
  return (spec.mounts ?? []).filter((m) => m.type === 'bind' && m.readonly !== true).map((m) => m.target);
}

/** The snapshot ids among `lowers` (layers of snapshots below `root`). */
export function snapshotLayers(root: string, lowers: readonly string[]): string[] {
  const ids: string[] = [];
  for (const lower of lowers) {
    const id = /^([0-9a-f]{64})\/layer$/.exec(lower.startsWith(`${join(root, 'templates')}/`) ? lower.slice(join(root, 'templates').length + 1) : '');
    if (id !== null) ids.push(id[1]!);
  }
  return ids;
}

/**
 * Freezes stopped container `template`'s upper directory as a new snapshot:
 * moved (renamed, so nothing is copied) into the templates directory, held
 * by a handle of this process and by the template itself. The template gets
 * a new empty upper dir and the layer as its top-most lower, so it still
 * shows what it wrote. Snapshots the template was cloned from are held by
 * the new one for as long as it exists.
 */
export async function freezeUpper(
  root: string,
  stateDir: string,
  paths: ContainerPaths,
  template: { id: string; lowers: string[]; userns?: UsernsRecord | undefined },
  context: string,
): Promise<{ id: string; layer: string; hold: string }> {
  const id = randomHex(32);
  const sp = snapshotPaths(root, id);
  const hold = `handle-${ownerToken()}`;
  const self = { pid: process.pid, start: selfStartTime() };
  await mkdir(join(root, 'templates'), { recursive: true, mode: 0o711 });
  await withLock(templatesLock(root), async () => {
    await mkdir(sp.holds, { recursive: true, mode: 0o711 });
    const record: SnapshotRecord = {
      version: 1,
      id,
      container: template.id,
      created: new Date().toISOString(),
      lowers: template.lowers,
      ...(template.userns !== undefined ? { userns: template.userns } : {}),
    };
    await writeJsonAtomic(sp.record, record);
    await writeHold(sp.holds, hold, self);
    await writeHold(sp.holds, `clone-${template.id}`, { alive: join(stateDir, template.id) });
    for (const parent of snapshotLayers(root, template.lowers)) {
      await writeHold(snapshotPaths(root, parent).holds, `snapshot-${id}`, { alive: sp.dir });
    }
  });
  try {
    await rename(paths.upper, sp.layer);
  } catch (cause) {
    await unlink(join(sp.holds, `clone-${template.id}.json`)).catch(() => undefined);
    await dropHold(root, id, hold, undefined).catch(() => undefined);
    throw new InvalidStateError(`${context}: rename \`${paths.upper}\`: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, { cause });
  }
  // The template goes on as a clone of its own snapshot: a fresh upper over the layer.
  const top = await stat(sp.layer);
  await mkdir(paths.upper, { mode: 0o755 });
  if (template.userns?.rootless !== true) await chown(paths.upper, top.uid, top.gid);
  await chmod(paths.upper, top.mode & 0o7777);
  const config = await readJson<ContainerConfigRecord>(paths.config);
  if (config !== undefined) {
    await writeJsonAtomic(paths.config, { ...config, process: { ...config.process, lowers: [sp.layer, ...config.process.lowers] } }, 0o600);
  }
  debug('%s: snapshot %s', context, id.slice(0, 12));
  return { id, layer: sp.layer, hold };
}

async function writeHold(holds: string, name: string, hold: HoldRecord): Promise<void> {
  await writeFile(join(holds, `${name}.json`), JSON.stringify(hold));
}

/**
 * Takes a hold on snapshot `id` for clone `cloneId` before its launch, under
 * the lock, so a concurrent collection cannot remove the layer under it.
 *
 * @returns the snapshot's record.
 * @throws {@link NotFoundError} when the snapshot is gone.
 */
export async function holdForClone(root: string, stateDir: string, id: string, cloneId: string, context: string): Promise<SnapshotRecord> {
  const sp = snapshotPaths(root, id);
  return withLock(templatesLock(root), async () => {
    const record = await readJson<SnapshotRecord>(sp.record).catch(() => undefined);
    if (record === undefined || !(await access(sp.layer).then(() => true, () => false))) {
      throw new NotFoundError(`${context}: snapshot ${id.slice(0, 12)} no longer exists`);
    }
    await writeHold(sp.holds, `clone-${cloneId}`, { pid: process.pid, start: selfStartTime(), alive: join(stateDir, cloneId) });
    return record;
  });
}

/** Drops a hold (a clone's, or a handle's) and removes the snapshot when it was the last live one. */
export async function dropHold(root: string, id: string, name: string, helperPath: string | undefined): Promise<void> {
  await unlink(join(snapshotPaths(root, id).holds, `${name}.json`)).catch((error: unknown) => {
    if (!isErrno(error, 'ENOENT')) throw error;
  });
  await collectSnapshot(root, id, helperPath);
}

async function isHoldAlive(hold: HoldRecord | undefined): Promise<boolean> {
  if (hold === undefined) return false;
  // A clone's launcher holds it until the clone's state directory exists.
  if (typeof hold.pid === 'number' && isProcessAlive(hold.pid, hold.start ?? 0)) return true;
  if (typeof hold.alive !== 'string') return false;
  return access(hold.alive).then(() => true, () => false);
}

/**
 * Removes snapshot `id` when nothing holds it any more: dead holds (a
 * process gone, a clone whose state directory went) are dropped first.
 *
 * @returns whether the snapshot was removed.
 */
export async function collectSnapshot(root: string, id: string, helperPath: string | undefined): Promise<boolean> {
  const sp = snapshotPaths(root, id);
  const gone = await withLock(templatesLock(root), async () => {
    const names = await readdir(sp.holds).catch(() => [] as string[]);
    let live = 0;
    for (const file of names.filter((n) => n.endsWith('.json'))) {
      const hold = await readFile(join(sp.holds, file), 'utf8').then((t) => JSON.parse(t) as HoldRecord, () => undefined);
      if (await isHoldAlive(hold)) live += 1;
      else await unlink(join(sp.holds, file)).catch(() => undefined);
    }
    if (live > 0) return undefined;
    const record = await readJson<SnapshotRecord>(sp.record).catch(() => undefined);
    // Renamed aside under the lock: a clone launch from now on finds no snapshot.
    const aside = join(root, 'templates', `.gone-${id}-${randomHex(4)}`);
    try {
      await rename(sp.dir, aside);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return undefined;
      throw error;
    }
    return { aside, userns: record?.userns, lowers: record?.lowers ?? [] };
  });
  if (gone === undefined) return false;
  await removeContainerDir(gone.aside, gone.userns, helperPath);
  debug('snapshot %s removed', id.slice(0, 12));
  // Its hold on the snapshots it was stacked on is dead now.
  for (const parent of snapshotLayers(root, gone.lowers)) await collectSnapshot(root, parent, helperPath);
  return true;
}

/** Every snapshot below `root`, for `runtime.prune()`; directories set aside by a collection that died are removed too. */
export async function collectSnapshots(root: string, helperPath: string | undefined): Promise<string[]> {
  const dir = join(root, 'templates');
  const removed: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    try {
      if (ID_RE.test(name)) {
        if (await collectSnapshot(root, name, helperPath)) removed.push(name);
      } else if (name.startsWith('.gone-')) {
        const id = name.slice('.gone-'.length, '.gone-'.length + 64);
        const record = await readJson<SnapshotRecord>(join(dir, name, 'template.json')).catch(() => undefined);
        await removeContainerDir(join(dir, name), record?.userns, helperPath);
        removed.push(id);
      }
    } catch (error) {
      debug('prune: snapshot %s not removed: %s', name.slice(0, 12), error instanceof Error ? error.message : String(error));
    }
  }
  return removed;
}

/** Checks a clone's overrides: its root is the template's. */
export function cloneSpec(template: ContainerSpec, overrides: Partial<ContainerSpec>, context: string): ContainerSpec {
  if (overrides === null || typeof overrides !== 'object') throw new InvalidArgumentError(`${context}: overrides must be an object`);
  for (const key of ['rootfs', 'image'] as const) {
    if (overrides[key] !== undefined && overrides[key] !== template[key]) {
      throw new InvalidArgumentError(`${context}: a clone's ${key} is its template's; \`${key}\` cannot be overridden`);
    }
  }
  const { name: _name, ...rest } = template;
  return { ...rest, ...overrides };
}

/** Whether two lists of lower dirs are the same. */
export function sameLowers(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Stops a container that is not stopped yet and freezes its upper dir (see
 * {@link freezeUpper}), after the checks that a snapshot of it makes sense.
 */
export async function freezeContainer(
  container: Container,
  spec: ContainerSpec | undefined,
  paths: ContainerPaths,
  options: ContainerSnapshotOptions,
  dirs: { root: string; stateDir: string },
): Promise<{ id: string; layer: string; hold: string }> {
  const context = `snapshot container ${container.id.slice(0, 12)}`;
  if (spec === undefined) throw new InvalidArgumentError(`${context}: not launched by this runtime; pass the spec it was launched with (options.spec)`);
  if (options.processState === true) {
    const why = processStateSupport() ?? 'restoring a checkpoint into a clone is not implemented';
    throw new UnavailableError(`${context}: process state cannot be cloned: ${why}`);
  }
  const shared = sharedBindTargets(spec);
  if (shared.length > 0 && options.shareBindMounts !== true) {
    throw new InvalidStateError(
      `${context}: writable bind mount${shared.length > 1 ? 's' : ''} ${shared.map((t) => `\`${t}\``).join(', ')} would be shared by every clone (a host directory is not part of the snapshot); give clones their own mounts, or pass { shareBindMounts: true }`,
    );
  }
  if (container.status === 'removed') throw new InvalidStateError(`${context}: container was removed`);
  if (container.status !== 'stopped') await container.stop(options.stopTimeoutMs !== undefined ? { timeoutMs: options.stopTimeoutMs } : {});
  const [record, config] = await Promise.all([readJson<ContainerRecord>(paths.record), readJson<ContainerConfigRecord>(paths.config)]);
  if (record === undefined) throw new InvalidStateError(`${context}: container was removed`);
  const lowers = config?.process.lowers ?? [record.rootfs];
  return freezeUpper(dirs.root, dirs.stateDir, paths, { id: container.id, lowers, userns: record.userns }, context);
}

/** Checks that a clone's root is its snapshot's template's: the same lower dirs and id maps. */
export function checkCloneRoot(
  template: { lowers: string[]; userns?: { uidMap: unknown; gidMap: unknown; rootless: boolean } },
  layers: readonly string[],
  lowers: readonly string[],
  userns: UsernsPlan | undefined,
  context: string,
): void {
  // A template that was itself a clone has snapshot layers above its root.
  const root = template.lowers.slice(layers.length);
  if (!sameLowers(root, lowers)) {
    throw new InvalidArgumentError(`${context}: the clone's root is not its template's (\`${lowers[0]}\` instead of \`${root[0]}\`): an image tag moved, or the spec names another root`);
  }
  const mine = userns !== undefined ? JSON.stringify([userns.uidMap, userns.gidMap, userns.rootless]) : undefined;
  const theirs = template.userns !== undefined ? JSON.stringify([template.userns.uidMap, template.userns.gidMap, template.userns.rootless]) : undefined;
  if (mine !== theirs) {
    throw new InvalidArgumentError(`${context}: the clone's user namespace maps are not its template's: the snapshot's files would have the wrong owners`);
  }
}
