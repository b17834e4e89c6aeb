/**
 * The `COPY` and `ADD` steps: files from the context, another stage, an
 * image, heredocs or (`ADD`) URLs, written into a fresh upper dir.
 *
 * @module
 */

import { lstat, rm } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError } from '../../errors.js';
import { resolveUserFrom } from '../../runtime/index.js';
import type { Lease } from '../../store/index.js';
import { cacheKey, type CacheKeyInput } from '../cache.js';
import { copySources, writeContent, type FileOwner } from '../copy.js';
import { fetchTo, isUrl } from '../fetch-url.js';
import type { MergedView } from '../../layer/index.js';
import type { PlannedStep } from '../recipe.js';
import { expandSources, sourcesDigest, type SourceFs } from '../source-fs.js';
import { contextual, rewrap } from '../error-context.js';
import type { BuildState, StepHost, StepOutcome } from '../state.js';

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
  const dest = path.posix.resolve(state.config.config?.WorkingDir || '/', planned.dest);
  const destIsDir = planned.dest.endsWith('/') || count > 1 || sources.length > local.length;
  if (destIsDir && !planned.dest.endsWith('/') && (count > 1 || sources.length > local.length)) {
    throw contextual(new InvalidArgumentError(`${context}: with several sources the destination must be a directory and end with /`));
  }
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
      const chown = planned.chown !== undefined ? await resolveChown(view, planned.chown, context) : undefined;
      const now = host.nowSeconds();
      return host.withUpper(state, view, async (upper) => {
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
    });
  } finally {
    if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
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
