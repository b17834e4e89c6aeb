/**
 * Pushing an image from a store to a registry.
 *
 * @module
 */

import { progressEmitter, settleSiblings } from '../util/index.js';
import { PassThrough, type Readable } from 'node:stream';
import createDebug from 'debug';
import PQueue from 'p-queue';
import { AbortError, InvalidArgumentError, NotFoundError } from '../errors.js';
import {
  type Descriptor,
  type Digest,
  type ImageIndex,
  type ImageManifest,
  isIndexMediaType,
  isManifestMediaType,
  isNondistributableMediaType,
  parseReference,
  type Platform,
  type Reference,
  shortDigest,
  toPlatform,
} from '../oci/index.js';
import type { TransferStore } from './types.js';
import type { AuthFileOptions } from './auth-config.js';
import { RegistryClient } from './registry-client.js';
import { isRetryableNetworkError, MAX_ATTEMPTS, retryDelay, wait } from './retry.js';
import { blobSources, rememberBlobSource } from './blob-sources.js';
import { selectManifest } from './select-platform.js';
import type { PushOptions, PushResult } from './types.js';

const debug = createDebug('dockless:transfer');

const DEFAULT_CONCURRENCY = 3;

/** Options of {@link pushImage} beyond the public ones. */
export interface PushInternals {
  /** Where auth files are looked for (tests). */
  authFiles?: AuthFileOptions;
}

/** A manifest to push, with the blobs it needs. */
interface ManifestToPush {
  descriptor: Descriptor;
  bytes: Buffer;
  blobs: Array<{ descriptor: Descriptor; kind: 'layer' | 'config' }>;
}

/**
 * Pushes an image of `store` to a registry; see {@link ImageStore.push}.
 * Blobs first (skipped when the registry has them, mounted when another
 * repository of the registry has them), manifests last.
 */
export async function pushImage(
  store: TransferStore,
  image: string,
  options: PushOptions & PushInternals = {},
): Promise<PushResult> {
  const source = await store.resolve(image);
  // A bare digest or image id names no repository (and would parse as `sha256:<tag>`).
  const bare = typeof image === 'string' && (/^sha(256|512):/.test(image) || /^[a-f0-9]{64}$/.test(image));
  const sourceRef = bare ? undefined : parseReference(image);
  if (options.to === undefined && sourceRef === undefined) {
    throw new InvalidArgumentError(`push ${image}: a destination reference is needed (options.to) when pushing by digest or image id`);
  }
  const dest = parseReference(options.to ?? image);
  const context = `push ${dest.toString()}`;
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
    throw new InvalidArgumentError(`${context}: concurrency must be a positive integer, got ${String(concurrency)}`);
  }
  const chunkSize = options.chunkSize;
  if (chunkSize !== undefined && (!Number.isSafeInteger(chunkSize) || chunkSize < 1)) {
    throw new InvalidArgumentError(`${context}: chunkSize must be a positive integer, got ${String(chunkSize)}`);
  }
  if (dest.digest !== undefined && dest.digest !== source.digest && dest.tag === undefined) {
    throw new InvalidArgumentError(`${context}: the image is ${source.digest}, not ${dest.digest}`);
  }
  const platform = toPlatform(options.platform, context);
  const signal = options.signal;
  if (signal?.aborted) throw new AbortError(`${context}: aborted`, { cause: signal.reason });
  const emit = progressEmitter('push', options.onProgress);

  // What to push: the index and every manifest of it when all are here, else the platform's manifest.
  const plan = await planPush(store, source, platform, context);
  const repo = dest.path;
  const blobs = new Map<Digest, { descriptor: Descriptor; kind: 'layer' | 'config' }>();
  for (const m of plan.manifests) for (const b of m.blobs) if (!blobs.has(b.descriptor.digest)) blobs.set(b.descriptor.digest, b);
  const mountSources = await mountCandidates(store, dest, sourceRef, [...blobs.keys()]);
  const mountRepos = [...new Set([...mountSources.values()].flat())];
  const scopes = [RegistryClient.scope(repo, 'pull,push'), ...mountRepos.map((r) => RegistryClient.scope(r, 'pull'))];
  const client = await RegistryClient.connect({
    registry: dest.domain,
    repository: repo,
    credentials: options.credentials,
    insecure: options.insecure,
    context,
    signal,
    authFiles: options.authFiles,
  });

  // Blobs, each once, in parallel.
  const queue = new PQueue({ concurrency });
  const siblings = new AbortController();
  const taskSignal = signal ? AbortSignal.any([signal, siblings.signal]) : siblings.signal;
  let uploaded = 0;
  const tasks = [...blobs.values()].map(({ descriptor, kind }) => {
    const event = (state: 'waiting' | 'exists' | 'mounted' | 'uploading' | 'retrying' | 'done', bytes: number, extra: { from?: string; error?: string } = {}): void =>
      emit?.({ type: 'blob', digest: descriptor.digest, size: descriptor.size, kind, state, bytes, ...extra });
    event('waiting', 0);
    return queue.add(async () => {
      try {
        if (taskSignal.aborted) throw new AbortError(`${context}: aborted`, { cause: taskSignal.reason });
        const bytes = await pushBlob({
          client,
          store,
          repo,
          scopes,
          descriptor,
          mountSources: mountSources.get(descriptor.digest) ?? [],
          chunkSize,
          signal: taskSignal,
          context,
          event,
        });
        rememberBlobSource(dest.domain, repo, descriptor.digest);
        uploaded += bytes;
      } catch (err) {
        siblings.abort(err);
        throw err;
      }
    });
  });
  await settleSiblings(tasks, signal, context);

  // Manifests last: an index's manifests by digest, then the top one under the tag.
  for (const m of plan.manifests) {
    if (signal?.aborted) throw new AbortError(`${context}: aborted`, { cause: signal.reason });
    if (m === plan.top) continue;
    await client.putManifest(repo, m.descriptor.digest, m.bytes, m.descriptor.mediaType, scopes);
    emit?.({ type: 'manifest', digest: m.descriptor.digest, mediaType: m.descriptor.mediaType, reference: `${dest.name}@${m.descriptor.digest}` });
  }
  if (signal?.aborted) throw new AbortError(`${context}: aborted`, { cause: signal.reason });
  const top = plan.top;
  const pushedAs = dest.tag ?? top.descriptor.digest;
  const digest = await client.putManifest(repo, pushedAs, top.bytes, top.descriptor.mediaType, scopes);
  emit?.({ type: 'manifest', digest, mediaType: top.descriptor.mediaType, reference: dest.tag !== undefined ? `${dest.name}:${dest.tag}` : `${dest.name}@${digest}` });
  debug('%s: %s, %d bytes uploaded', context, shortDigest(digest), uploaded);
  const result: PushResult = {
    reference: dest.tag !== undefined ? `${dest.name}:${dest.tag}` : `${dest.name}@${digest}`,
    digest,
    mediaType: top.descriptor.mediaType,
    size: top.bytes.length,
    uploadedBytes: uploaded,
  };
  if (dest.tag !== undefined) result.tag = dest.tag;
  return result;
}

interface PushPlan {
  /** Every manifest to push, the top one last. */
  manifests: ManifestToPush[];
  top: ManifestToPush;
}

async function planPush(store: TransferStore, source: Descriptor, platform: Platform, context: string): Promise<PushPlan> {
  const loadManifest = async (descriptor: Descriptor): Promise<ManifestToPush> => {
    const bytes = await store.readBlob(descriptor.digest);
    const manifest = JSON.parse(bytes.toString('utf8')) as ImageManifest;
    const blobs: ManifestToPush['blobs'] = [{ descriptor: manifest.config, kind: 'config' }];
    for (const layer of manifest.layers ?? []) {
      // Non-distributable (foreign) layers stay where their urls point, as Docker leaves them.
      if (isNondistributableMediaType(layer.mediaType) && (layer.urls?.length ?? 0) > 0) continue;
      blobs.push({ descriptor: layer, kind: 'layer' });
    }
    for (const b of blobs) {
      if (!(await store.hasBlob(b.descriptor.digest))) {
        throw new NotFoundError(`${context}: ${b.kind} ${b.descriptor.digest} of manifest ${shortDigest(descriptor.digest)} is not in the store`);
      }
    }
    return { descriptor: { mediaType: descriptor.mediaType, digest: descriptor.digest, size: bytes.length }, bytes, blobs };
  };
  if (isManifestMediaType(source.mediaType)) {
    const top = await loadManifest(source);
    return { manifests: [top], top };
  }
  if (!isIndexMediaType(source.mediaType)) {
    throw new InvalidArgumentError(`${context}: ${source.digest} is a ${source.mediaType}, not an image`);
  }
  const bytes = await store.readBlob(source.digest);
  const index = JSON.parse(bytes.toString('utf8')) as ImageIndex;
  const children = Array.isArray(index.manifests) ? index.manifests : [];
  const present = await Promise.all(children.map((c) => store.hasBlob(c.digest)));
  if (children.length > 0 && present.every(Boolean) && children.every((c) => isManifestMediaType(c.mediaType))) {
    const manifests = await Promise.all(children.map(loadManifest));
    const top: ManifestToPush = { descriptor: { mediaType: source.mediaType, digest: source.digest, size: bytes.length }, bytes, blobs: [] };
    return { manifests: [...manifests, top], top };
  }
  // A pull keeps one platform of an index: push that platform's manifest, as the index cannot be complete.
  const entry = selectManifest(index, platform, context);
  if (!isManifestMediaType(entry.mediaType) || !(await store.hasBlob(entry.digest))) {
    throw new NotFoundError(`${context}: the image index has no manifest for this platform in the store`);
  }
  debug('%s: index %s is partial; pushing its %s manifest', context, shortDigest(source.digest), platform.architecture);
  const top = await loadManifest(entry);
  return { manifests: [top], top };
}

/**
 * For each blob, the repositories of the destination registry that
 * probably have it: those this process pulled it from or pushed it to, the
 * source reference's, and those of the store's tags on that registry whose
 * image has it. At most 4 in all, as a token request names every one.
 */
async function mountCandidates(
  store: TransferStore,
  dest: Reference,
  source: Reference | undefined,
  digests: Digest[],
): Promise<Map<Digest, string[]>> {
  const tagged = new Map<string, Set<Digest>>();
  for (const summary of await store.list()) {
    let ref: Reference;
    try {
      ref = parseReference(summary.reference);
    } catch {
      continue;
    }
    if (ref.domain !== dest.domain || ref.path === dest.path) continue;
    try {
      const details = await store.inspect(summary.reference);
      const set = tagged.get(ref.path) ?? new Set<Digest>();
      set.add(details.configDigest);
      for (const layer of details.layers) set.add(layer.digest);
      tagged.set(ref.path, set);
    } catch {
      // An incomplete image is no mount source.
    }
  }
  const all = new Set<string>();
  const result = new Map<Digest, string[]>();
  for (const digest of digests) {
    const repos: string[] = [];
    const add = (repo: string): void => {
      if (repo === dest.path || repos.includes(repo)) return;
      if (!all.has(repo) && all.size >= 4) return;
      all.add(repo);
      repos.push(repo);
    };
    for (const repo of blobSources(dest.domain, digest)) add(repo);
    if (source !== undefined && source.domain === dest.domain) add(source.path);
    for (const [repo, set] of tagged) if (set.has(digest)) add(repo);
    result.set(digest, repos);
  }
  return result;
}

interface BlobPush {
  client: RegistryClient;
  store: TransferStore;
  repo: string;
  scopes: string[];
  descriptor: Descriptor;
  mountSources: string[];
  chunkSize: number | undefined;
  signal: AbortSignal;
  context: string;
  event: (state: 'exists' | 'mounted' | 'uploading' | 'retrying' | 'done', bytes: number, extra?: { from?: string; error?: string }) => void;
}

/** Pushes one blob unless the registry has it; returns the bytes uploaded. */
async function pushBlob(job: BlobPush): Promise<number> {
  const { client, repo, scopes, descriptor, event } = job;
  const digest = descriptor.digest;
  if (await client.hasBlob(repo, digest, scopes)) {
    event('exists', 0);
    return 0;
  }
  let location: URL | undefined;
  for (const from of job.mountSources) {
    const mount = await client.mountBlob(repo, digest, from, scopes);
    if (mount.mounted) {
      event('mounted', 0, { from });
      return 0;
    }
    // The registry started an upload instead; use it (the next mount attempt would start another).
    location = mount.location;
    break;
  }
  for (let attempt = 0; ; attempt++) {
    let sent = 0;
    try {
      location ??= await client.startUpload(repo, scopes);
      event('uploading', 0);
      const onBytes = (n: number): void => {
        sent = n;
        event('uploading', n);
      };
      if (job.chunkSize === undefined) {
        await client.putBlob(location, digest, descriptor.size, () => countingStream(job, onBytes), scopes);
      } else {
        await uploadChunks(job, location, onBytes);
      }
      event('done', descriptor.size);
      return descriptor.size;
    } catch (err) {
      location = undefined;
      if (job.signal.aborted) throw new AbortError(`${job.context}: aborted`, { cause: job.signal.reason });
      const status = (err as { status?: unknown }).status;
      const retryable =
        isRetryableNetworkError(err) ||
        isRetryableNetworkError((err as { cause?: unknown }).cause) ||
        (typeof status === 'number' && status >= 500);
      if (!retryable || attempt + 1 >= MAX_ATTEMPTS) throw client.networkError(err, `upload blob ${shortDigest(digest)}`);
      debug('%s: upload %s failed after %d bytes: %s; starting again', job.context, shortDigest(digest), sent, (err as Error).message);
      event('retrying', 0, { error: (err as Error).message });
      await wait(retryDelay(attempt), job.signal, job.context);
    }
  }
}

/** The blob from the store (verified as it is read), reporting the bytes that went through. */
function countingStream(job: BlobPush, onBytes: (n: number) => void): Readable {
  // getBlob is async; a PassThrough stands in until it opens.
  const out = new PassThrough();
  let n = 0;
  out.on('data', (chunk: Buffer) => {
    n += chunk.length;
    onBytes(n);
  });
  out.pause();
  job.store.getBlob(job.descriptor.digest).then(
    (blob) => {
      blob.on('error', (err) => out.destroy(err));
      blob.pipe(out);
    },
    (err: Error) => out.destroy(err),
  );
  return out;
}

/** Uploads a blob in `chunkSize` pieces (`PATCH` each, then `PUT` with the digest). */
async function uploadChunks(job: BlobPush, start: URL, onBytes: (n: number) => void): Promise<void> {
  const chunkSize = job.chunkSize!;
  const blob = await job.store.getBlob(job.descriptor.digest);
  let location = start;
  let offset = 0;
  let pending: Buffer[] = [];
  let pendingSize = 0;
  const what = `upload blob ${shortDigest(job.descriptor.digest)}`;
  const flush = async (): Promise<void> => {
    if (pendingSize === 0) return;
    const chunk = Buffer.concat(pending, pendingSize);
    pending = [];
    pendingSize = 0;
    location = await job.client.patchBlob(location, offset, chunk, what, job.scopes);
    offset += chunk.length;
    onBytes(offset);
  };
  try {
    for await (const data of blob) {
      let chunk = data as Buffer;
      while (chunk.length > 0) {
        const take = Math.min(chunk.length, chunkSize - pendingSize);
        pending.push(chunk.subarray(0, take));
        pendingSize += take;
        chunk = chunk.subarray(take);
        if (pendingSize === chunkSize) await flush();
      }
    }
    await flush();
  } finally {
    blob.destroy();
  }
  await job.client.finishUpload(location, job.descriptor.digest, job.scopes);
}
