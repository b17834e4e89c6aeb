/**
 * The store's consistency check: blobs against their digests, references
 * against the blobs they need, snapshots against their completion markers.
 *
 * @module
 */

import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DigestMismatchError, NotFoundError } from '../errors.js';
import {
  type Descriptor,
  DIGEST_HEX_LENGTH,
  type DigestAlgorithm,
  isDigest,
  OCI_LAYOUT_VERSION,
} from '../oci/index.js';
import { hashFile } from './blob-verify.js';
import type { DocumentReader } from './documents.js';
import { isErrno, readdirOrEmpty } from '../util/index.js';
import { listLeases } from './leases.js';
import { markerTrusted } from './durability.js';
import { SNAPSHOT_FS_DIR, SNAPSHOT_MARKER, SNAPSHOT_TMP_PREFIX, type StorePaths } from './paths.js';
import { currentTargets, indexTime, readHistory, readIndex, reconciledChanges, type HistoryFile } from './refs.js';
import type { SnapshotMarker } from './snapshots.js';
import { parseSnapshotDirName } from './snapshot-variant.js';
import type { StoreProblem } from './types.js';

/** What the check needs of the store. */
export interface CheckContext {
  paths: StorePaths;
  docs: DocumentReader;
}

/** Runs the check; see `ImageStore.check`. */
export async function checkStore(ctx: CheckContext): Promise<StoreProblem[]> {
  const { paths, docs } = ctx;
  const problems: StoreProblem[] = [];

  try {
    const layout = JSON.parse(await readFile(paths.ociLayout, 'utf8')) as { imageLayoutVersion?: unknown };
    if (layout.imageLayoutVersion !== OCI_LAYOUT_VERSION) throw new Error(`version ${String(layout.imageLayoutVersion)}`);
  } catch (err) {
    problems.push({ kind: 'invalid-layout', message: `oci-layout: ${(err as Error).message}`, path: paths.ociLayout });
  }

  // Every blob against its name.
  const sizes = new Map<string, number>();
  for (const algorithm of await readdirOrEmpty(paths.blobs)) {
    if (!Object.hasOwn(DIGEST_HEX_LENGTH, algorithm)) continue;
    const dir = join(paths.blobs, algorithm);
    for (const hex of await readdirOrEmpty(dir)) {
      const digest = `${algorithm}:${hex}`;
      const path = join(dir, hex);
      if (!isDigest(digest)) {
        problems.push({ kind: 'corrupt-blob', message: `blob file \`${path}\`: name is not a digest`, path });
        continue;
      }
      try {
        const { size, actual } = await hashFile(path, algorithm as DigestAlgorithm);
        sizes.set(digest, size);
        if (actual !== digest) {
          problems.push({ kind: 'corrupt-blob', message: `blob ${digest}: content is ${actual}`, path, digest });
        }
      } catch (err) {
        if (isErrno(err, 'ENOENT')) continue;
        problems.push({ kind: 'corrupt-blob', message: `blob ${digest}: unreadable: ${(err as Error).message}`, path, digest });
      }
    }
  }

  // Everything a root refers to.
  const reported = new Set<string>();
  const walkFrom = async (root: Descriptor, reference: string | undefined, via: string): Promise<void> => {
    await docs.walk(root, {
      blob: (d, parent) => {
        const size = sizes.get(d.digest);
        const key = `${d.digest} ${reference ?? ''}`;
        if (size === undefined) {
          if (reported.has(key)) return;
          reported.add(key);
          problems.push({
            kind: 'missing-blob',
            message: `${via}: ${parent === 'index.json' ? 'blob' : `blob referenced by ${parent}`} ${d.digest} is missing`,
            path: paths.blob(d.digest),
            digest: d.digest,
            ...(reference === undefined ? {} : { reference }),
          });
        } else if (size !== d.size) {
          problems.push({
            kind: 'invalid-document',
            message: `${via}: blob ${d.digest} is ${size} bytes, its descriptor in ${parent} says ${d.size}`,
            path: paths.blob(d.digest),
            digest: d.digest,
            ...(reference === undefined ? {} : { reference }),
          });
        }
      },
      chainId: () => {},
      problem: (d, err) => {
        // Missing and corrupt blobs are reported once, above.
        if (err instanceof NotFoundError || err instanceof DigestMismatchError) return;
        problems.push({
          kind: 'invalid-document',
          message: `${via}: document ${d.digest}: ${(err as Error).message}`,
          path: paths.blob(d.digest),
          digest: d.digest,
          ...(reference === undefined ? {} : { reference }),
        });
      },
    });
  };

  let targets = new Map<string, Descriptor>();
  try {
    const index = await readIndex(paths);
    targets = currentTargets(index);
    for (const entry of index.manifests) {
      if (!isDigest(entry.digest)) {
        problems.push({ kind: 'invalid-index', message: `index.json: entry with malformed digest ${String(entry.digest)}`, path: paths.index });
        continue;
      }
      const ref = [...targets].find(([, e]) => e === entry)?.[0];
      await walkFrom(entry, ref, ref === undefined ? 'index.json' : `tag ${ref}`);
    }
  } catch (err) {
    problems.push({ kind: 'invalid-index', message: (err as Error).message, path: paths.index });
  }

  let history: HistoryFile | undefined;
  try {
    history = await readHistory(paths);
  } catch (err) {
    problems.push({ kind: 'invalid-history', message: (err as Error).message, path: paths.history });
  }
  if (history !== undefined) {
    const time = await indexTime(paths);
    for (const key of Object.keys(history.tags)) {
      for (const change of reconciledChanges(history, key, targets.get(key), time)) {
        if (change.digest === null || targets.get(key)?.digest === change.digest) continue;
        if (!sizes.has(change.digest)) {
          const k = `${change.digest} ${key}`;
          if (reported.has(k)) continue;
          reported.add(k);
          problems.push({
            kind: 'missing-blob',
            message: `history of ${key}: image ${change.digest} is missing`,
            path: paths.blob(change.digest),
            digest: change.digest,
            reference: key,
          });
        }
      }
    }
  }

  const { leases, invalid } = await listLeases(paths);
  for (const name of invalid) {
    problems.push({ kind: 'invalid-lease', message: `lease file ${name}: unreadable`, path: join(paths.leases, name) });
  }
  for (const lease of leases) {
    for (const digest of lease.digests) {
      if (!isDigest(digest)) {
        problems.push({ kind: 'invalid-lease', message: `lease ${lease.id}: malformed digest ${String(digest)}`, path: paths.lease(lease.id) });
      }
    }
  }

  // Snapshots: a directory outside tmp-* must be complete.
  for (const name of await readdirOrEmpty(paths.snapshots)) {
    if (name.startsWith(SNAPSHOT_TMP_PREFIX)) continue;
    const dir = join(paths.snapshots, name);
    const fail = (why: string): void => {
      problems.push({ kind: 'incomplete-snapshot', message: `snapshot ${name}: ${why}`, path: dir });
    };
    let marker: SnapshotMarker;
    try {
      marker = JSON.parse(await readFile(join(dir, SNAPSHOT_MARKER), 'utf8')) as SnapshotMarker;
    } catch (err) {
      fail(isErrno(err, 'ENOENT') ? 'no completion marker' : `unreadable completion marker: ${(err as Error).message}`);
      continue;
    }
    if (!markerTrusted(marker)) {
      fail('published before its files were flushed, and the machine has rebooted since: its files may be incomplete');
      continue;
    }
    const named = parseSnapshotDirName(name);
    if (typeof marker.chainId !== 'string' || !isDigest(marker.chainId) || marker.chainId !== named?.chainId) {
      fail(`completion marker names chainID ${String(marker.chainId)}`);
      continue;
    }
    if ((marker.variant ?? 'root') !== named.variant) {
      fail(`completion marker says a ${String(marker.variant)} unpack, the directory is for a ${named.variant} one`);
      continue;
    }
    try {
      if (!(await stat(join(dir, SNAPSHOT_FS_DIR))).isDirectory()) fail(`\`${SNAPSHOT_FS_DIR}\` is not a directory`);
    } catch {
      fail(`no \`${SNAPSHOT_FS_DIR}\` directory`);
    }
  }

  return problems;
}

