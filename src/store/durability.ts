/**
 * Deferred durability of snapshots. A snapshot is published before its files
 * reach the disk: its marker says `flushed: false` and names the kernel's boot
 * id, and a background flush per store (one syncfs(2) for every snapshot
 * published meanwhile) then rewrites the markers `flushed: true`.
 *
 * Why this keeps rule 5 (a crash leaves no partial snapshot visible): until
 * the kernel has written the files, they live in the page cache, which a
 * process crash does not lose; only a reboot (power loss, panic) does, and a
 * reboot changes the boot id. So an unflushed marker is trusted only in the
 * boot that wrote it: from another boot it is treated as missing, and the
 * snapshot is unpacked again on its next use (the publisher replaces a
 * directory without a trusted marker). A marker that a power loss left torn
 * does not parse and is missing too. `flushed: true` is written only after the
 * syncfs that covered the files has returned, by an atomic overwrite of the
 * marker's first bytes (see {@link markFlushed} for why not a rename).
 *
 * @module
 */

import { existsSync, readFileSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import createDebug from 'debug';
import { NotFoundError } from '../errors.js';
import { locateHelper, runHelperOp } from '../helper/index.js';
import { isErrno, syncTree } from '../util/index.js';
import { SNAPSHOT_FS_DIR, SNAPSHOT_MARKER } from './paths.js';

const debug = createDebug('dockless:store');

/** What a marker says about its snapshot's durability; both absent in markers older than deferred flushing. */
export interface MarkerDurability {
  /** `false` while the snapshot's files may be in the page cache only. */
  flushed?: boolean;
  /** The boot id (`/proc/sys/kernel/random/boot_id`) of the kernel that wrote an unflushed snapshot. */
  boot?: string;
}

/**
 * How long after a snapshot is published its flush starts at the latest, so
 * that the snapshots of one pull or unpack share one syncfs. The timer is
 * unref'd: it never keeps a process alive.
 */
const FLUSH_DELAY_MS = 1000;
let flushDelayMs = FLUSH_DELAY_MS;

let fakeBootId: string | undefined;
let realBootId: string | null | undefined;
// Snapshot directories whose marker this process has found trusted: trust
// cannot be lost within one boot, so each is read once per process.
const trusted = new Set<string>();

/**
 * The running kernel's boot id, or `undefined` where the kernel does not say
 * (snapshots are then flushed before they are published, as before).
 */
export function bootId(): string | undefined {
  if (fakeBootId !== undefined) return fakeBootId;
  if (realBootId === undefined) {
    try {
      realBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
    } catch {
      realBootId = null;
    }
  }
  return realBootId ?? undefined;
}

/**
 * For tests only (not exported from the package): pretends the kernel has
 * this boot id, to simulate a reboot; `undefined` returns to the real one.
 */
export function setBootIdForTesting(id: string | undefined): void {
  fakeBootId = id;
  trusted.clear();
}

/**
 * For tests only (not exported from the package): how long a published
 * snapshot waits for its background flush (so that a test can keep one
 * unflushed); `undefined` restores the default.
 */
export function setFlushDelayForTesting(ms: number | undefined): void {
  flushDelayMs = ms ?? FLUSH_DELAY_MS;
}

/** Whether a marker's snapshot can be used: flushed, from before deferred flushing, or unflushed in this boot. */
export function markerTrusted(marker: MarkerDurability): boolean {
  if (marker.flushed !== false) return true;
  const boot = bootId();
  return boot !== undefined && marker.boot === boot;
}

/**
 * Whether the snapshot directory `dir` holds a trusted marker (see
 * {@link markerTrusted}); an unreadable or torn marker is none.
 * Synchronous: for the fast path that finds an image's snapshots.
 */
export function snapshotTrustedSync(dir: string): boolean {
  if (trusted.has(dir)) return true;
  let marker: MarkerDurability;
  try {
    marker = JSON.parse(readFileSync(join(dir, SNAPSHOT_MARKER), 'utf8')) as MarkerDurability;
  } catch {
    return false;
  }
  if (!markerTrusted(marker)) return false;
  trusted.add(dir);
  return true;
}

/**
 * Whether an overlay lower dir recorded for a container can be mounted
 * again: `false` only for a snapshot's `fs/` whose marker is not trusted (a
 * reboot caught it unflushed, or tore its marker); a directory that is no
 * snapshot (a rootfs the caller gave) is the caller's business.
 */
export function lowerDirUsable(lower: string): boolean {
  if (basename(lower) !== SNAPSHOT_FS_DIR) return true;
  const dir = dirname(lower);
  if (!existsSync(join(dir, SNAPSHOT_MARKER))) return true;
  return snapshotTrustedSync(dir);
}

/** Remembers that `dir`'s marker, just written by this process, is trusted. */
export function noteTrusted(dir: string): void {
  trusted.add(dir);
}

/** Forgets `dir` (removed, or replaced). */
export function forgetTrusted(dir: string): void {
  trusted.delete(dir);
}

/** The background flush of one store's snapshots in this process. */
class DeferredFlush {
  readonly #helperPath: string | undefined;
  // Snapshot directories published with `flushed: false` and not yet flushed.
  #pending: string[] = [];
  #running: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #error: Error | undefined;

  constructor(helperPath: string | undefined) {
    this.#helperPath = helperPath;
  }

  schedule(dir: string): void {
    this.#pending.push(dir);
    if (this.#timer === undefined && this.#running === undefined) {
      this.#timer = setTimeout(() => void this.#start(true), flushDelayMs);
      this.#timer.unref();
    }
  }

  /** Waits until every snapshot scheduled so far is flushed and marked so. */
  async flush(): Promise<void> {
    // A background flush's helper does not hold the event loop: a caller waiting for it must, or
    // a process with nothing else to do would end (a CLI command) before the flush does.
    const hold = setInterval(() => undefined, 1 << 30);
    try {
      while (this.#pending.length > 0 || this.#running !== undefined) {
        await (this.#running ?? this.#start(false));
      }
    } finally {
      clearInterval(hold);
    }
    const error = this.#error;
    this.#error = undefined;
    if (error !== undefined) throw error;
  }

  #start(background: boolean): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#running !== undefined) return this.#running;
    // Only what was published before the syncfs starts is covered by it.
    const dirs = this.#pending.splice(0);
    this.#running = flushSnapshots(dirs, this.#helperPath, background)
      .catch((err: unknown) => {
        debug('deferred flush: %s', (err as Error).message);
        this.#error = err as Error;
      })
      .finally(() => {
        this.#running = undefined;
        if (this.#pending.length > 0 && this.#timer === undefined) {
          this.#timer = setTimeout(() => void this.#start(true), flushDelayMs);
          this.#timer.unref();
        }
      });
    return this.#running;
  }
}

// One per store root in this process, shared by its store instances.
const flushers = new Map<string, DeferredFlush>();

function flusherOf(root: string, helperPath: string | undefined): DeferredFlush {
  let flusher = flushers.get(root);
  if (flusher === undefined) {
    flusher = new DeferredFlush(helperPath);
    flushers.set(root, flusher);
  }
  return flusher;
}

/** Has the snapshot directory `dir` of the store at `root`, published unflushed, flushed in the background. */
export function scheduleFlush(root: string, dir: string, helperPath: string | undefined): void {
  flusherOf(root, helperPath).schedule(dir);
}

/**
 * Waits until every snapshot this process published unflushed in the store
 * at `root` is on disk and marked so.
 *
 * @throws {HelperError} when the flush failed (the snapshots stay trusted in this boot only).
 */
export async function flushScheduled(root: string): Promise<void> {
  await flushers.get(root)?.flush();
}

/**
 * One syncfs for the filesystem of `dirs` (snapshot directories of one
 * store), then each marker rewritten `flushed: true`. A snapshot (or the
 * whole store) removed meanwhile is skipped: nothing of it is written again.
 */
async function flushSnapshots(dirs: readonly string[], helperPath: string | undefined, background: boolean): Promise<void> {
  const live: string[] = [];
  for (const dir of dirs) if (await exists(join(dir, SNAPSHOT_MARKER))) live.push(dir);
  if (live.length === 0) return;
  let helper: string | undefined;
  try {
    helper = locateHelper(helperPath);
  } catch (err) {
    if (!(err instanceof NotFoundError) || helperPath !== undefined) throw err;
  }
  try {
    if (helper === undefined) {
      for (const dir of live) await syncTree(join(dir, SNAPSHOT_FS_DIR));
    } else {
      await runHelperOp('syncfs', ['--', live[0]!], { context: `flush snapshots \`${live[0]}\``, helperPath: helper, background });
    }
  } catch (err) {
    // The store was removed under the flush: nothing is left to make durable.
    if (!(await exists(live[0]!))) return;
    throw err;
  }
  for (const dir of live) await markFlushed(dir);
  debug('deferred flush: %d snapshot(s) on disk', live.length);
}

/**
 * The start of an unflushed marker: `flushed` is its first field, so that
 * marking it flushed overwrites 5 bytes at a fixed offset (see {@link markFlushed}).
 */
const UNFLUSHED_PREFIX = '{"flushed":false,';
const FLUSHED_VALUE = 'true ';

/**
 * Marks `dir`'s marker flushed by overwriting `false` with `true ` in place,
 * then fsyncs it. In place, not by a temporary file and a rename: a flush
 * nobody waits for may run while the store (or a snapshot gc moved to its
 * trash) is being removed, and a file created in a directory being removed
 * makes that removal fail ENOTEMPTY; overwriting creates no directory entry,
 * and a marker or directory gone meanwhile is simply not found. Still atomic:
 * the 5 bytes lie in the file's first 512-byte sector, which a disk writes
 * whole, so after a power loss the marker reads either as before or as
 * flushed, both valid JSON.
 */
async function markFlushed(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(join(dir, SNAPSHOT_MARKER), 'r+');
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return;
    throw err;
  }
  try {
    const head = Buffer.alloc(UNFLUSHED_PREFIX.length);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    // Replaced meanwhile by a snapshot flushed another way, or written by an older version.
    if (bytesRead !== head.length || head.toString('utf8') !== UNFLUSHED_PREFIX) return;
    await handle.write(FLUSHED_VALUE, UNFLUSHED_PREFIX.indexOf('false'), 'utf8');
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
