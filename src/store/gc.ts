/**
 * Garbage collection: mark everything reachable from the roots (tags, tag
 * history within retention, live leases, build cache entries), sweep the rest.
 *
 * The decision and the removal from view happen under the store lock: victims
 * are renamed into a private trash directory, which is then deleted after
 * the lock is released, so a long deletion never blocks other processes and
 * a crash mid-way leaves only trash (removed by the next `open()`).
 *
 * @module
 */

import { mkdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import createDebug from 'debug';
import { type Descriptor, type Digest, DIGEST_HEX_LENGTH, isDigest } from '../oci/index.js';
import type { DocumentReader } from './documents.js';
import { isAbandoned, ownerToken, readdirOrEmpty } from '../util/index.js';
import { isLeaseOver, deleteLease, listLeases } from './leases.js';
import { buildCacheBlobs } from './build-cache.js';
import { removeStaleLocks, withLock } from './lock.js';
import { markerTrusted, snapshotTrustedSync } from './durability.js';
import { SNAPSHOT_MARKER, SNAPSHOT_TMP_PREFIX, type StorePaths } from './paths.js';
import {
  currentTargets,
  indexTime,
  readHistory,
  readIndex,
  reconciledChanges,
  writeHistory,
  type HistoryFile,
  type TagChangeRecord,
} from './refs.js';
import { removeSnapshotTree, type SnapshotMarker } from './snapshots.js';
import { parseSnapshotDirName } from './snapshot-variant.js';
import type { GcOptions, GcResult, HistoryRetention } from './types.js';

const debug = createDebug('dockless:store');

/** What GC needs of the store. */
export interface GcContext {
  paths: StorePaths;
  docs: DocumentReader;
  retention: Required<HistoryRetention>;
  /** The helper, to remove snapshots of a rootless caller's subordinate ids. */
  helperPath?: string | undefined;
}

/** The default {@link GcOptions.gracePeriodMs}: one minute. */
export const DEFAULT_GC_GRACE_PERIOD_MS = 60_000;

/** Runs one collection; see `ImageStore.gc`. */
export async function collectGarbage(ctx: GcContext, options: GcOptions): Promise<GcResult> {
  const { paths, docs } = ctx;
  const grace = options.gracePeriodMs ?? DEFAULT_GC_GRACE_PERIOD_MS;
  const dryRun = options.dryRun ?? false;
  const result: GcResult = { blobs: [], snapshots: [], leases: [], historyEntries: 0, reclaimedBytes: 0 };
  const trash = join(paths.trash, ownerToken());

  await withLock(paths.storeLock, async () => {
    const now = Date.now();

    // Roots, pruned first so that nothing they drop is marked.
    const { leases } = await listLeases(paths);
    const liveLeases = [];
    for (const lease of leases) {
      if (isLeaseOver(lease, now)) {
        if (!dryRun) await deleteLease(paths, lease.id);
        result.leases.push(lease.id);
      } else {
        liveLeases.push(lease);
      }
    }
    const index = await readIndex(paths);
    const history = await readHistory(paths);
    const targets = currentTargets(index);
    const { kept, dropped } = pruneHistory(history, targets, await indexTime(paths), ctx.retention, now);
    result.historyEntries = dropped;
    if (dropped > 0 && !dryRun) await writeHistory(paths, kept);

    // Mark.
    const blobs = new Set<string>();
    const chains = new Set<string>();
    const visit = {
      blob: (d: Descriptor) => void blobs.add(d.digest),
      chainId: (c: Digest) => void chains.add(c),
      problem: (d: Descriptor, err: unknown) => debug('gc: walk %s: %s', d.digest, (err as Error).message),
    };
    for (const entry of index.manifests) {
      if (isDigest(entry.digest)) await docs.walk(entry, visit);
    }
    const loose = new Set<Digest>();
    for (const changes of Object.values(kept.tags)) {
      for (const change of changes) if (change.digest !== null) loose.add(change.digest);
    }
    for (const lease of liveLeases) for (const d of lease.digests) if (isDigest(d)) loose.add(d);
    for (const d of await buildCacheBlobs(paths)) loose.add(d);
    for (const digest of loose) {
      chains.add(digest);
      if (blobs.has(digest)) continue;
      let size: number;
      try {
        size = (await stat(paths.blob(digest))).size;
      } catch {
        continue;
      }
      let descriptor: Descriptor;
      try {
        descriptor = await docs.describe(digest, size);
      } catch {
        // Not a manifest or index (a layer, a config, any blob): it is kept on its own.
        blobs.add(digest);
        continue;
      }
      await docs.walk(descriptor, visit);
    }

    // Sweep blobs.
    const moveToTrash = async (path: string, name: string): Promise<void> => {
      if (dryRun) return;
      await mkdir(trash, { recursive: true, mode: 0o700 });
      await rename(path, join(trash, name));
    };
    for (const algorithm of await readdirOrEmpty(paths.blobs)) {
      if (!Object.hasOwn(DIGEST_HEX_LENGTH, algorithm)) continue;
      const dir = join(paths.blobs, algorithm);
      for (const hex of await readdirOrEmpty(dir)) {
        const digest = `${algorithm}:${hex}`;
        if (blobs.has(digest) || !isDigest(digest)) continue;
        const path = join(dir, hex);
        let st;
        try {
          st = await stat(path);
        } catch {
          continue;
        }
        if (now - st.mtimeMs < grace) continue;
        await moveToTrash(path, `blob-${algorithm}-${hex}`);
        result.blobs.push(digest);
        result.reclaimedBytes += st.size;
      }
    }

    // Sweep snapshots.
    for (const name of await readdirOrEmpty(paths.snapshots)) {
      const dir = join(paths.snapshots, name);
      if (name.startsWith(SNAPSHOT_TMP_PREFIX)) {
        if (isAbandoned(name)) await moveToTrash(dir, `tmp-snapshot-${name}`);
        continue;
      }
      const chainId = parseSnapshotDirName(name)?.chainId;
      const referenced = chainId !== undefined && chains.has(chainId);
      // Referenced snapshots are kept unless a reboot caught them unflushed: only those need their marker read.
      if (referenced && snapshotTrustedSync(dir)) continue;
      let marker: SnapshotMarker | undefined;
      let mtimeMs = 0;
      try {
        const markerPath = join(dir, SNAPSHOT_MARKER);
        mtimeMs = (await stat(markerPath)).mtimeMs;
        marker = JSON.parse(await readFile(markerPath, 'utf8')) as SnapshotMarker;
      } catch {
        // A snapshot directory without a readable marker is broken: collect it.
      }
      // Unflushed before a reboot: no process of this boot can be using it, and it is no snapshot.
      const lost = marker !== undefined && !markerTrusted(marker);
      if (referenced && !lost) continue;
      if (!lost && now - mtimeMs < grace) continue;
      await moveToTrash(dir, `snapshot-${name}`);
      if (chainId !== undefined) result.snapshots.push(chainId);
      result.reclaimedBytes += typeof marker?.size === 'number' ? marker.size : 0;
    }

    // Fast-path records of images that are gone.
    if (!dryRun) {
      for (const name of await readdirOrEmpty(paths.images)) {
        const hex = name.replace(/\.json$/, '');
        // Records are named by the manifest digest's hex, whose length tells its algorithm.
        const algorithm = Object.entries(DIGEST_HEX_LENGTH).find(([, length]) => length === hex.length)?.[0] ?? 'sha256';
        const digest = `${algorithm}:${hex}`;
        if (!blobs.has(digest)) await unlink(join(paths.images, name)).catch(() => {});
      }
    }
  });

  if (!dryRun) {
    await removeSnapshotTree(trash, ctx.helperPath);
    await removeStaleLocks(paths.locks);
  }
  return result;
}

/**
 * Applies the retention setting to the tag history (reconciled with the
 * index first): a change survives when it is the tag's current one, or among
 * its newest `maxEntries` and not older than `maxAgeMs`. A removed tag whose
 * only surviving change is its removal is forgotten.
 */
export function pruneHistory(
  history: HistoryFile,
  targets: Map<string, Descriptor>,
  time: string,
  retention: Required<HistoryRetention>,
  now: number,
): { kept: HistoryFile; dropped: number } {
  const kept: HistoryFile = { version: 1, seq: history.seq, tags: {} };
  let dropped = 0;
  const keys = new Set([...Object.keys(history.tags), ...targets.keys()]);
  for (const key of keys) {
    const stored = history.tags[key] ?? [];
    let changes = reconciledChanges(history, key, targets.get(key), time);
    if (changes.length > stored.length) {
      // Persist the reconciled change with a seq of its own.
      kept.seq = Math.max(kept.seq, history.seq) + 1;
      changes = [...stored, { ...changes.at(-1)!, seq: kept.seq }];
    }
    const last = changes.length - 1;
    const survivors = changes.filter(
      (c: TagChangeRecord, i) =>
        i === last || (i >= changes.length - retention.maxEntries && now - Date.parse(c.time) <= retention.maxAgeMs),
    );
    dropped += changes.length - survivors.length;
    if (survivors.length === 1 && survivors[0]!.digest === null) {
      dropped += 1;
      continue;
    }
    if (survivors.length > 0) kept.tags[key] = survivors;
  }
  return { kept, dropped };
}

