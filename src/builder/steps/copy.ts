/**
 * The `COPY` and `ADD` steps: files from the context, another stage, an
 * image, heredocs or (`ADD`) URLs, written into a fresh upper dir.
 *
 * @module
 */

import { lstatSync } from 'node:fs';
import { lstat, rm } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError } from '../../errors.js';
import { resolveUserFrom } from '../../runtime/index.js';
import type { Lease } from '../../store/index.js';
import { cacheKey, type CacheKeyInput } from '../cache.js';
import { copySources, writeContent, type FileOwner } from '../copy.js';
import { fetchTo, isUrl, type FetchedFile } from '../fetch-url.js';
import { cleanRelPath, MergedView } from '../../layer/index.js';
import type { PlannedStep } from '../recipe.js';
import { expandSources, sourcesDigest, type CopySource, type SourceFs } from '../source-fs.js';
import { contextual, rewrap } from '../error-context.js';
import type { BuildState, MadeUpper, StepHost, StepOutcome } from '../state.js';

/** Runs a `COPY` or `ADD` step, or finds its layer in the cache. */
export async function copyStep(
  host: StepHost,
  state: BuildState,
  planned: Extract<PlannedStep, { kind: 'copy' }>,
  base: CacheKeyInput,
  lease: Lease,
  context: string,
): Promise<StepOutcome> {
  const urls = planned.sources.filter(isUrl);
  const local = planned.sources.filter((s) => !isUrl(s));
  if (urls.length > 0 && !planned.add) throw contextual(new InvalidArgumentError(`${context}: COPY cannot copy from a URL; use ADD`));
  if (urls.length > 0 && !planned.fetch) {
    throw contextual(new InvalidArgumentError(`${context}: ADD from a URL fetches over the network; allow it with { fetch: true }`));
  }
  const count = local.length + urls.length + planned.heredocs.length;
  let fs: SourceFs;
  let fromKey: string | undefined;
  if (planned.from !== undefined) {
    const source = await host.source(planned.from, lease, context);
    fs = source.fs;
    fromKey = source.key;
  } else {
    fs = host.contextFs();
  }
  const sources = await expandSources(fs, local, context);
  const { dest, destIsDir } = destinationOf(state.config.config?.WorkingDir, planned, count, sources.length, local.length, context);
  const tmp = urls.length > 0 ? await host.tmpDir() : undefined;
  try {
    const fetched = tmp === undefined ? [] : await Promise.all(urls.map((u, i) => fetchTo(u, path.join(tmp, String(i)), context, host.settings.signal)));
    const content = [
      fromKey !== undefined ? `from:${fromKey}` : '',
      sources.length > 0 ? (fromKey !== undefined ? sources.map((s) => s.rel).join('\0') : await sourcesDigest(fs, sources)) : '',
      ...planned.heredocs.map((h) => `heredoc:${h.name}\0${h.content}`),
      ...fetched.map((f) => `url:${f.url}\0${f.digest}`),
    ].join('\n');
    const key = cacheKey({
      ...base,
      content,
      options: { chown: planned.chown, chmod: planned.chmod, extract: planned.add ? planned.extract : undefined },
    });
    return await host.layerStep(state, key, planned.instruction, lease, async () => {
      const view = await host.view(state, lease);
      const made = (await host.takeRunAhead(state, planned, lease)) ?? (await copyLayer(host, view, planned, { fs, sources, dest, destIsDir, fetched }, lease, context));
      return host.finishUpper(state, made);
    });
  } finally {
    if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
  }
}

/** What a `COPY` copies, and where. */
interface CopyInput {
  fs: SourceFs;
  sources: CopySource[];
  dest: string;
  destIsDir: boolean;
  fetched: FetchedFile[];
}

/** The destination of a `COPY` as a container path, and whether it is a directory. */
function destinationOf(
  workingDir: string | undefined,
  planned: Extract<PlannedStep, { kind: 'copy' }>,
  count: number,
  expanded: number,
  local: number,
  context: string,
): { dest: string; destIsDir: boolean } {
  const dest = path.posix.resolve(workingDir || '/', planned.dest);
  const destIsDir = planned.dest.endsWith('/') || count > 1 || expanded > local;
  if (destIsDir && !planned.dest.endsWith('/') && (count > 1 || expanded > local)) {
    throw contextual(new InvalidArgumentError(`${context}: with several sources the destination must be a directory and end with /`));
  }
  return { dest, destIsDir };
}

/** The layer of a `COPY` over `view`, stored, its directory not yet adopted. */
async function copyLayer(host: StepHost, view: MergedView, planned: Extract<PlannedStep, { kind: 'copy' }>, input: CopyInput, lease: Lease, context: string): Promise<MadeUpper> {
  const { fs, sources, dest, destIsDir, fetched } = input;
  const chown = planned.chown !== undefined ? await resolveChown(view, planned.chown, context) : undefined;
  const now = host.nowSeconds();
  return host.makeUpper(view, async (upper) => {
    const options = {
      destIsDir,
      now,
      extractArchives: planned.add && planned.extract && planned.from === undefined,
      ...(chown !== undefined ? { chown } : {}),
      ...(planned.chmod !== undefined ? { chmod: planned.chmod } : {}),
    };
    await copySources(upper, fs, sources, dest, options, context);
    for (const h of planned.heredocs) await writeContent(upper, h.name, h.content, dest, options, context);
    for (const f of fetched) {
      const stats = await lstat(f.path);
      await copySources(upper, fs, [{ rel: f.name, entry: { stats, hostPath: f.path } }], dest, { ...options, extractArchives: false, chmod: planned.chmod ?? 0o600 }, context);
    }
  }, lease);
}

/** A `COPY` layer made ahead, over the state before the step before it, and the paths of that state it read. */
export interface CopyAhead {
  made: MadeUpper;
  /** Root-relative paths of the state below that the copy looked at (their parents included). */
  looked: ReadonlySet<string>;
  /** The layers (host directories, top-most first) of that state. */
  layers: readonly string[];
}

/**
 * Whether `planned` can be made ahead, while the `RUN` before it runs: a
 * `COPY` of build-context files only (no other stage or image, no URL, no
 * heredoc, no archive extraction), whose result depends on the state below
 * only through the paths it looks up there.
 */
export function canCopyAhead(planned: PlannedStep): planned is Extract<PlannedStep, { kind: 'copy' }> {
  return planned.kind === 'copy' && !planned.add && planned.from === undefined && planned.heredocs.length === 0 && !planned.sources.some(isUrl);
}

/**
 * Makes the layer of `planned` (see {@link canCopyAhead}) over `below`, the
 * state the `RUN` before it starts from, recording every path of that state
 * it looks at: the layer is the step's when the `RUN`'s layer has none of
 * them ({@link stillHolds}).
 */
export async function copyAhead(
  host: StepHost,
  below: Promise<MergedView>,
  workingDir: string | undefined,
  planned: Extract<PlannedStep, { kind: 'copy' }>,
  lease: Lease,
): Promise<CopyAhead> {
  const context = `copy ahead \`${planned.instruction}\``;
  const fs = host.contextFs();
  const sources = await expandSources(fs, planned.sources, context);
  const { dest, destIsDir } = destinationOf(workingDir, planned, planned.sources.length, sources.length, planned.sources.length, context);
  const base = await below;
  const view = new RecordingView(base.layers, host.settings.helperPath);
  const made = await copyLayer(host, view, planned, { fs, sources, dest, destIsDir, fetched: [] }, lease, context);
  return { made, looked: view.looked, layers: base.layers };
}

/**
 * Whether a layer made ahead ({@link copyAhead}) is the step's over `view`,
 * the state after the `RUN`: that state is the one it was made over plus one
 * layer, and that layer has no entry (file, directory, whiteout) at any path
 * the copy looked at. Parents are checked before their children, so that no
 * lookup goes through a symlink of the new layer.
 */
export function stillHolds(ahead: CopyAhead, view: MergedView): boolean {
  const layers = view.layers;
  if (layers.length !== ahead.layers.length + 1 || ahead.layers.some((l, i) => layers[i + 1] !== l)) return false;
  const top = layers[0]!;
  const looked = [...ahead.looked].filter((rel) => rel !== '').sort((a, b) => a.split('/').length - b.split('/').length);
  return looked.every((rel) => lstatSync(path.join(top, rel), { throwIfNoEntry: false }) === undefined);
}

/** A view that records the paths looked up in it (every lookup, `resolve` and `readFile` included, goes through `lstat`). */
class RecordingView extends MergedView {
  readonly looked = new Set<string>();

  constructor(layers: readonly string[], helperPath: string | undefined) {
    super(layers, helperPath !== undefined ? { helperPath } : {});
  }

  override lstat(rel: string): ReturnType<MergedView['lstat']> {
    this.looked.add(cleanRelPath(rel));
    return super.lstat(rel);
  }
}

async function resolveChown(view: MergedView, spec: string, context: string): Promise<FileOwner> {
  const [userPart = '', groupPart] = spec.split(':');
  const numeric = (s: string): boolean => /^\d+$/.test(s);
  if (numeric(userPart) && (groupPart === undefined || numeric(groupPart))) {
    const uid = Number(userPart);
    return { uid, gid: groupPart === undefined ? uid : Number(groupPart) };
  }
  const [passwd, group] = await Promise.all([view.readFile('/etc/passwd'), view.readFile('/etc/group')]);
  try {
    const user = resolveUserFrom(groupPart === undefined ? userPart : `${userPart}:${groupPart}`, passwd?.toString() ?? '', group?.toString() ?? '');
    // Docker: a user without a group gets the gid equal to its uid.
    return { uid: user.uid, gid: groupPart === undefined ? user.uid : user.gid };
  } catch (err) {
    throw rewrap(err, `${context}: --chown`);
  }
}
