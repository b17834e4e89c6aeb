/**
 * Tags: `index.json` entries naming images, every change recorded in the
 * tag history, and rollback along it.
 *
 * @module
 */

import createDebug from 'debug';
import { InvalidArgumentError, InvalidStateError, NotFoundError } from '../errors.js';
import { type Descriptor, type ImageIndex, isDigest, type Reference, shortDigest } from '../oci/index.js';
import type { ContentStore } from './content.js';
import type { DocumentReader } from './documents.js';
import { parseImageRef, type ImageCatalog } from './images.js';
import { withLock } from './lock.js';
import type { StorePaths } from './paths.js';
import {
  currentTargets,
  entryReference,
  indexTime,
  parseTagReference,
  readHistory,
  readIndex,
  reconciledChanges,
  recordChange,
  tagEntry,
  writeHistory,
  writeIndex,
  type HistoryFile,
  type TagChangeRecord,
} from './refs.js';
import type { RollbackOptions, TagHistoryEntry } from './types.js';

const debug = createDebug('dockless:store');

/** The state read and written under the store lock by a tag change. */
interface RefState {
  index: ImageIndex;
  history: HistoryFile;
  indexTime: string;
  indexDirty: boolean;
  historyDirty: boolean;
}

/** The tags of one store; see {@link ImageStoreCore}'s tag methods. */
export class TagStore {
  readonly #paths: StorePaths;
  readonly #docs: DocumentReader;
  readonly #content: ContentStore;
  readonly #images: ImageCatalog;

  constructor(paths: StorePaths, docs: DocumentReader, content: ContentStore, images: ImageCatalog) {
    this.#paths = paths;
    this.#docs = docs;
    this.#content = content;
    this.#images = images;
  }

  /** See {@link ImageStoreCore.tag}. */
  async tag(image: string, ref: string): Promise<Descriptor> {
    const target = parseTagReference(ref, 'tag');
    const descriptor = await this.#images.resolve(image);
    await this.#withRefs(async (state) => {
      await this.#images.checkComplete(descriptor);
      this.#setTag(state, target, descriptor, { action: 'tag' });
    });
    debug('tag %s -> %s', target.toString(), shortDigest(descriptor.digest));
    return descriptor;
  }

  /** See {@link ImageStoreCore.untag}. */
  async untag(ref: string): Promise<void> {
    const target = parseTagReference(ref, 'untag');
    await this.#withRefs((state) => {
      if (!this.#setTag(state, target, undefined, { action: 'untag' })) {
        throw new NotFoundError(`untag ${target.toString()}: no such tag`);
      }
    });
    debug('untag %s', target.toString());
  }

  /** See {@link ImageStoreCore.remove}. */
  async remove(image: string): Promise<string[]> {
    const parsed = parseImageRef(image);
    const removed = await this.#withRefs((state) => {
      const refs: string[] = [];
      for (const entry of [...state.index.manifests]) {
        const ref = entryReference(entry);
        if (ref === undefined) continue;
        const matches =
          parsed.digest !== undefined ? entry.digest === parsed.digest : ref.toString() === parsed.ref!.toString();
        if (matches && this.#setTag(state, ref, undefined, { action: 'untag' })) refs.push(ref.toString());
      }
      return refs;
    });
    if (removed.length === 0) throw new NotFoundError(`remove ${image}: no tag matches`);
    debug('remove %s: untagged %s', image, removed.join(', '));
    return removed;
  }


  /** See {@link ImageStoreCore.history}. */
  async history(ref: string): Promise<TagHistoryEntry[]> {
    const key = parseTagReference(ref, 'history').toString();
    const [index, history, time] = await Promise.all([
      readIndex(this.#paths),
      readHistory(this.#paths),
      indexTime(this.#paths),
    ]);
    const changes = reconciledChanges(history, key, currentTargets(index).get(key), time);
    if (changes.length === 0) throw new NotFoundError(`history ${key}: no such tag`);
    return changes
      .slice()
      .reverse()
      .map((c, i) => ({ digest: c.digest, time: c.time, action: c.action, current: i === 0 }));
  }

  /** See {@link ImageStoreCore.rollback}. */
  async rollback(ref: string, options: RollbackOptions = {}): Promise<Descriptor> {
    const target = parseTagReference(ref, 'rollback');
    const key = target.toString();
    const steps = options.steps ?? 1;
    if (!Number.isSafeInteger(steps) || steps < 1) {
      throw new InvalidArgumentError(`rollback ${key}: steps must be a positive integer, got ${String(steps)}`);
    }
    const descriptor = await this.#withRefs(async (state) => {
      const changes = reconciledChanges(state.history, key, currentTargets(state.index).get(key), state.indexTime);
      if (changes.length === 0) throw new NotFoundError(`rollback ${key}: no such tag`);
      const chosen = rollbackTarget(changes, steps);
      if (chosen === undefined) {
        throw new InvalidStateError(`rollback ${key}: the history does not go back ${steps} target${steps === 1 ? '' : 's'}`);
      }
      const actual = await this.#content.size(chosen.digest!);
      if (actual === undefined) {
        throw new NotFoundError(`rollback ${key}: image ${chosen.digest} has been garbage-collected`);
      }
      const size = chosen.size ?? actual;
      const descriptor =
        chosen.mediaType !== undefined
          ? { mediaType: chosen.mediaType, digest: chosen.digest!, size }
          : await this.#docs.describe(chosen.digest!, size);
      await this.#images.checkComplete(descriptor);
      this.#setTag(state, target, descriptor, { action: 'rollback', restores: chosen.seq });
      return descriptor;
    });
    debug('rollback %s -> %s', key, shortDigest(descriptor.digest));
    return descriptor;
  }


  async #withRefs<T>(fn: (state: RefState) => Promise<T> | T): Promise<T> {
    return withLock(this.#paths.storeLock, async () => {
      const [index, history, time] = await Promise.all([
        readIndex(this.#paths),
        readHistory(this.#paths),
        indexTime(this.#paths),
      ]);
      const state: RefState = { index, history, indexTime: time, indexDirty: false, historyDirty: false };
      const result = await fn(state);
      // index.json first: it is the truth; a crash before the history write shows as an 'external' change.
      if (state.indexDirty) await writeIndex(this.#paths, state.index);
      if (state.historyDirty) await writeHistory(this.#paths, state.history);
      return result;
    });
  }

  /**
   * Points `ref` at `target` (or removes it) in `state`, recording the
   * change. Returns false when nothing changed.
   */
  #setTag(
    state: RefState,
    ref: Reference,
    target: Descriptor | undefined,
    change: Pick<TagChangeRecord, 'action' | 'restores'>,
  ): boolean {
    const key = ref.toString();
    const before = currentTargets(state.index).get(key);
    if (before?.digest === target?.digest && (target === undefined || before?.mediaType === target.mediaType)) {
      return false;
    }
    const manifests: Descriptor[] = [];
    let placed = false;
    for (const entry of state.index.manifests) {
      if (entryReference(entry)?.toString() !== key) {
        manifests.push(entry);
      } else if (target !== undefined && !placed) {
        manifests.push(tagEntry(ref, target));
        placed = true;
      }
    }
    if (target !== undefined && !placed) manifests.push(tagEntry(ref, target));
    state.index.manifests = manifests;
    state.indexDirty = true;
    const record: Omit<TagChangeRecord, 'seq' | 'time'> = { digest: target?.digest ?? null, action: change.action };
    if (target !== undefined) {
      record.mediaType = target.mediaType;
      record.size = target.size;
    }
    if (change.restores !== undefined) record.restores = change.restores;
    recordChange(state.history, key, before, state.indexTime, record);
    state.historyDirty = true;
    return true;
  }
}
/**
 * The change a rollback of `steps` goes back to, or `undefined` when the
 * history is too short. Counting starts from the current change, or, when
 * that is itself a rollback, from the change it restored.
 */
function rollbackTarget(changes: TagChangeRecord[], steps: number): TagChangeRecord | undefined {
  let pos = changes.length - 1;
  const seen = new Set<number>();
  for (;;) {
    const change = changes[pos]!;
    if (change.action !== 'rollback' || change.restores === undefined || seen.has(change.seq)) break;
    seen.add(change.seq);
    const restored = changes.findIndex((c) => c.seq === change.restores);
    if (restored < 0) break;
    pos = restored;
  }
  let remaining = steps;
  for (let i = pos - 1; i >= 0; i--) {
    const change = changes[i]!;
    if (change.digest === null || !isDigest(change.digest)) continue;
    if (--remaining === 0) return change;
  }
  return undefined;
}
