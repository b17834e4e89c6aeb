/**
 * Tags: the layout's `index.json` (one manifest descriptor per tag, named by
 * its `org.opencontainers.image.ref.name` annotation) and the tag history in
 * `dockless/history.json`. Both are read-modify-written under the store lock
 * and replaced atomically. `index.json` is the truth about what a tag points
 * to now; the history records how it got there.
 *
 * @module
 */

import { readFile, stat } from 'node:fs/promises';
import { InvalidArgumentError, InvalidStateError } from '../errors.js';
import {
  ANNOTATION_CONTAINERD_IMAGE_NAME,
  ANNOTATION_REF_NAME,
  type Descriptor,
  type Digest,
  type ImageIndex,
  isDigest,
  MEDIA_TYPE_OCI_INDEX,
  parseReference,
  type Reference,
} from '../oci/index.js';
import { isErrno, writeFileAtomic } from '../util/index.js';
import type { StorePaths } from './paths.js';

/** What changed a tag. */
export type TagAction =
  /** `store.tag()` pointed it at an image. */
  | 'tag'
  /** `store.untag()` or `store.remove()` removed it. */
  | 'untag'
  /** `store.rollback()` pointed it back at an earlier image. */
  | 'rollback'
  /** Something else changed `index.json` (another tool, or a crash between the two writes of a change). */
  | 'external';

/** One change of a tag, as stored in `history.json`. */
export interface TagChangeRecord {
  /** Increases with every change in the store. */
  seq: number;
  /** The manifest the tag pointed to after the change; `null` when it was removed. */
  digest: Digest | null;
  /** The media type of that manifest. */
  mediaType?: string;
  /** The size of that manifest. */
  size?: number;
  /** When the change happened, ISO 8601. */
  time: string;
  action: TagAction;
  /** For a rollback: the `seq` of the change whose target it restored. */
  restores?: number;
}

/** The content of `history.json`. */
export interface HistoryFile {
  version: 1;
  /** The last `seq` handed out. */
  seq: number;
  /** Per full reference, its changes, oldest first. */
  tags: Record<string, TagChangeRecord[]>;
}

/** The normalised reference an `index.json` entry is tagged with, or `undefined` when it has none that parses. */
export function entryReference(entry: Descriptor): Reference | undefined {
  const name = entry.annotations?.[ANNOTATION_CONTAINERD_IMAGE_NAME] ?? entry.annotations?.[ANNOTATION_REF_NAME];
  if (name === undefined) return undefined;
  try {
    const ref = parseReference(name);
    return ref.tag !== undefined && ref.digest === undefined ? ref : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Parses a tag reference (`name:tag`; the tag defaults to `latest`).
 *
 * @throws {InvalidArgumentError} when it is malformed or carries a digest.
 */
export function parseTagReference(ref: string, what: string): Reference {
  const parsed = parseReference(ref);
  if (parsed.digest !== undefined) {
    throw new InvalidArgumentError(`${what} ${JSON.stringify(ref)}: a tag reference (name:tag) is needed, not a digest`);
  }
  return parsed;
}

/** The `index.json` entry for a tag: the manifest descriptor with both name annotations. */
export function tagEntry(ref: Reference, target: Descriptor): Descriptor {
  const entry: Descriptor = { mediaType: target.mediaType, digest: target.digest, size: target.size };
  if (target.platform !== undefined) entry.platform = target.platform;
  entry.annotations = {
    [ANNOTATION_CONTAINERD_IMAGE_NAME]: ref.toString(),
    [ANNOTATION_REF_NAME]: ref.toString(),
  };
  return entry;
}

/** An empty OCI image index. */
export function emptyIndex(): ImageIndex {
  return { schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: [] };
}

/**
 * Reads `index.json`; a missing one is an empty index.
 *
 * @throws {InvalidStateError} when it is not a valid image index.
 */
export async function readIndex(paths: StorePaths): Promise<ImageIndex> {
  let text: string;
  try {
    text = await readFile(paths.index, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return emptyIndex();
    throw err;
  }
  let index: ImageIndex;
  try {
    index = JSON.parse(text) as ImageIndex;
  } catch (err) {
    throw new InvalidStateError(`store index \`${paths.index}\`: not valid JSON`, { cause: err, path: paths.index });
  }
  if (typeof index !== 'object' || index === null || !Array.isArray(index.manifests)) {
    throw new InvalidStateError(`store index \`${paths.index}\`: not an image index`, { path: paths.index });
  }
  return index;
}

/** Replaces `index.json` atomically. */
export async function writeIndex(paths: StorePaths, index: ImageIndex): Promise<void> {
  await writeFileAtomic(paths.index, `${JSON.stringify(index)}\n`, paths.tmp);
}

/**
 * Reads `history.json`; a missing one is empty.
 *
 * @throws {InvalidStateError} when it is malformed.
 */
export async function readHistory(paths: StorePaths): Promise<HistoryFile> {
  let text: string;
  try {
    text = await readFile(paths.history, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return { version: 1, seq: 0, tags: {} };
    throw err;
  }
  try {
    const history = JSON.parse(text) as HistoryFile;
    if (history.version !== 1 || typeof history.tags !== 'object' || history.tags === null) throw new Error('bad shape');
    return history;
  } catch (err) {
    throw new InvalidStateError(`tag history \`${paths.history}\`: malformed`, { cause: err, path: paths.history });
  }
}

/** Replaces `history.json` atomically. */
export async function writeHistory(paths: StorePaths, history: HistoryFile): Promise<void> {
  await writeFileAtomic(paths.history, `${JSON.stringify(history)}\n`, paths.tmp);
}

/** The current target of each tag in an index, by full reference. */
export function currentTargets(index: ImageIndex): Map<string, Descriptor> {
  const targets = new Map<string, Descriptor>();
  for (const entry of index.manifests) {
    const ref = entryReference(entry);
    if (ref !== undefined && isDigest(entry.digest)) targets.set(ref.toString(), entry);
  }
  return targets;
}

/**
 * The changes of one tag, oldest first, reconciled with `index.json`: when
 * the newest recorded change does not match what the tag points to now (the
 * index was changed by another tool, or a crash fell between the two writes),
 * an `external` change is appended, timed at the index's last modification.
 */
export function reconciledChanges(
  history: HistoryFile,
  ref: string,
  current: Descriptor | undefined,
  indexTime: string,
): TagChangeRecord[] {
  const changes = history.tags[ref] ?? [];
  const last = changes.at(-1);
  const currentDigest = current?.digest ?? null;
  if ((last?.digest ?? null) === currentDigest) return changes;
  const external: TagChangeRecord = {
    seq: history.seq + 1,
    digest: currentDigest,
    time: indexTime,
    action: 'external',
  };
  if (current !== undefined) {
    external.mediaType = current.mediaType;
    external.size = current.size;
  }
  return [...changes, external];
}

/** Appends a change to a tag's history, reconciling it first; mutates `history`. */
export function recordChange(
  history: HistoryFile,
  ref: string,
  before: Descriptor | undefined,
  indexTime: string,
  change: Omit<TagChangeRecord, 'seq' | 'time'>,
): TagChangeRecord {
  const changes = reconciledChanges(history, ref, before, indexTime);
  if (changes.length > (history.tags[ref]?.length ?? 0)) history.seq++;
  const record: TagChangeRecord = { seq: ++history.seq, time: new Date().toISOString(), ...change };
  history.tags[ref] = [...changes, record];
  return record;
}

/** The modification time of `index.json` as ISO 8601, or now when it does not exist. */
export async function indexTime(paths: StorePaths): Promise<string> {
  try {
    return (await stat(paths.index)).mtime.toISOString();
  } catch {
    return new Date().toISOString();
  }
}
