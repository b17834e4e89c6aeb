/**
 * Pulling an image from a registry into a store.
 *
 * @module
 */

import createDebug from 'debug';
import PQueue from 'p-queue';
import { AbortError, AlreadyExistsError, DigestMismatchError, InvalidArgumentError } from '../errors.js';
import {
  chainIds as computeChainIds,
  checkDescriptor,
  type Descriptor,
  type Digest,
  hostPlatform,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  isConfigMediaType,
  isDigest,
  isIndexMediaType,
  isLayerMediaType,
  isManifestMediaType,
  parseReference,
  type Platform,
  shortDigest,
  toPlatform,
} from '../oci/index.js';
import type { IngestSession, LayerIngest } from '../store/index.js';
import type { TransferStore } from './types.js';
import type { AuthFileOptions } from './auth-config.js';
import { RegistryClient, type FetchedManifest } from './registry-client.js';
import { isRetryableNetworkError, MAX_ATTEMPTS, retryDelay, wait } from './retry.js';
import { rememberBlobSource } from './blob-sources.js';
import { selectManifest } from './select-platform.js';
import type { PullOptions, PullProgress, PullResult } from './types.js';
import { parseJsonObject, progressEmitter, releaseChunk, type WithoutOp, settleSiblings } from '../util/index.js';

const debug = createDebug('dockless:transfer');

const DEFAULT_CONCURRENCY = 3;
const MAX_INDEX_NESTING = 4;
const MAX_CONFIG_SIZE = 8 << 20;
/** Attempts of one layer download in all, however much each attempt moved. */
const MAX_LAYER_ATTEMPTS = 50;
/**
 * Bytes of a layer's body handed to its writer at once. A registry's body
 * arrives in socket reads of at most 64 KiB; each write costs a turn through
 * the writer's two pipes, the digest, the ingest file and zlib's thread pool,
 * all on the thread that also parses the tar. Gathered into 256 KiB, a
 * layer's download takes a quarter of the turns; 1 MiB saved a little more
 * CPU but held more memory per layer being pulled (three at once).
 */
const BODY_GATHER = 256 << 10;

/** Options of {@link pullImage} beyond the public ones. */
export interface PullInternals {
  /** Where auth files are looked for (tests). */
  authFiles?: AuthFileOptions;
}

/**
 * Pulls `reference` from its registry into `store`; see {@link ImageStore.pull}.
 * Everything is downloaded, verified and unpacked before any of it becomes
 * visible, and only then is the tag set.
 */
export async function pullImage(
  store: TransferStore,
  reference: string,
  options: PullOptions & PullInternals = {},
): Promise<PullResult> {
  const ref = parseReference(reference);
  const context = `pull ${ref.toString()}`;
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
    throw new InvalidArgumentError(`${context}: concurrency must be a positive integer, got ${String(concurrency)}`);
  }
  const platform = toPlatform(options.platform, context);
  const signal = options.signal;
  if (signal?.aborted) throw new AbortError(`${context}: aborted`, { cause: signal.reason });
  const emit = progressEmitter('pull', options.onProgress);

  const client = await RegistryClient.connect({
    registry: ref.domain,
    repository: ref.path,
    credentials: options.credentials,
    insecure: options.insecure,
    context,
    signal,
    authFiles: options.authFiles,
  });
  const repo = ref.path;
  const scopes = [RegistryClient.scope(repo, 'pull')];

  // Documents: the manifest (or index) the reference names, down to the platform's manifest.
  const top = await client.getManifest(repo, ref.digest ?? ref.tag!, scopes);
  const documents: FetchedManifest[] = [top];
  let current = top;
  let manifestDescriptor: Descriptor = { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length };
  for (let depth = 0; isIndexMediaType(current.mediaType); depth++) {
    if (depth >= MAX_INDEX_NESTING) throw new InvalidArgumentError(`${context}: image indexes nested too deeply`);
    const index = parseJsonObject<ImageIndex>(current.bytes, `${context}: image index ${shortDigest(current.digest)}`);
    const entry = checkDescriptor(selectManifest(index, platform, context), `${context}: image index ${shortDigest(current.digest)}`);
    current = await client.getManifest(repo, entry.digest, scopes);
    manifestDescriptor = { mediaType: entry.mediaType, digest: current.digest, size: current.bytes.length };
    if (entry.platform !== undefined) manifestDescriptor.platform = entry.platform;
    documents.push(current);
  }
  if (!isManifestMediaType(current.mediaType)) {
    throw new InvalidArgumentError(`${context}: ${shortDigest(current.digest)} is a ${current.mediaType}, not an image manifest`);
  }
  const manifest = parseJsonObject<ImageManifest>(current.bytes, `${context}: manifest ${shortDigest(current.digest)}`);
  const where = `${context}: manifest ${shortDigest(current.digest)}`;
  if (typeof manifest.config !== 'object' || manifest.config === null || !Array.isArray(manifest.layers)) {
    throw new InvalidArgumentError(`${where}: not an image manifest (no config or layers)`);
  }
  const configDescriptor = checkDescriptor(manifest.config, where);
  if (!isConfigMediaType(configDescriptor.mediaType)) {
    throw new InvalidArgumentError(`${where}: config has media type ${configDescriptor.mediaType}, so this is not a container image`);
  }
  if (configDescriptor.size > MAX_CONFIG_SIZE) throw new InvalidArgumentError(`${where}: config larger than ${MAX_CONFIG_SIZE} bytes`);
  const layers = manifest.layers.map((l) => checkDescriptor(l, where));

  const session = store.ingest();
  let downloaded = 0;
  try {
    for (const doc of documents) {
      if (await store.hasBlob(doc.digest)) session.keep(doc.digest);
      else await session.addBytes(doc.bytes, doc.digest, doc.bytes.length);
      downloaded += doc.bytes.length;
    }
    let configBytes: Buffer;
    rememberBlobSource(ref.domain, repo, configDescriptor.digest);
    if (await store.hasBlob(configDescriptor.digest)) {
      configBytes = await store.readBlob(configDescriptor.digest);
      session.keep(configDescriptor.digest);
    } else {
      configBytes = await client.getBlobBytes(repo, configDescriptor.digest, configDescriptor.size, scopes);
      await session.addBytes(configBytes, configDescriptor.digest, configDescriptor.size);
      downloaded += configBytes.length;
    }
    const config = parseJsonObject<ImageConfig>(configBytes, `${context}: image config ${shortDigest(configDescriptor.digest)}`);
    const diffIds = config.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || !diffIds.every((d) => isDigest(d))) {
      throw new InvalidArgumentError(`${context}: image config ${shortDigest(configDescriptor.digest)}: rootfs.diff_ids missing or malformed`);
    }
    if (diffIds.length !== layers.length) {
      throw new InvalidArgumentError(`${where}: ${layers.length} layers but the config lists ${diffIds.length} diffIDs`);
    }
    const chainIds = computeChainIds(diffIds);
    emit?.({
      type: 'resolved',
      reference: ref.toString(),
      digest: top.digest,
      mediaType: top.mediaType,
      manifest: manifestDescriptor,
      layers: layers.length,
      size: layers.reduce((sum, l) => sum + l.size, 0),
    });

    downloaded += await fetchLayers({
      store,
      session,
      client,
      repo,
      scopes,
      layers,
      diffIds: diffIds as Digest[],
      chainIds,
      concurrency,
      signal,
      emit,
      context,
    });

    if (signal?.aborted) throw new AbortError(`${context}: aborted`, { cause: signal.reason });
    await session.commit();
    // Layers whose blobs were already here but never unpacked are unpacked now, and the image's record
    // is written; the tag comes last, so that it never names an image that cannot run.
    await store.snapshot(top.digest, {
      concurrency,
      // The store keeps its fast-path record for the host's platform only.
      ...(options.platform === undefined ? {} : { platform }),
      ...(signal === undefined ? {} : { signal }),
    });
    let tag: string | undefined;
    if (ref.digest === undefined) {
      tag = ref.toString();
      await store.tag(top.digest, tag);
    } else {
      // A pull by digest sets no tag; a lease keeps the image from GC, as Docker keeps its repo digests.
      await holdDigest(store, top.digest);
    }
    emit?.({ type: 'done', reference: ref.toString(), digest: top.digest, downloadedBytes: downloaded });
    debug('%s: %s, %d bytes downloaded', context, shortDigest(top.digest), downloaded);
    const result: PullResult = {
      reference: ref.toString(),
      digest: top.digest,
      mediaType: top.mediaType,
      manifest: manifestDescriptor,
      platform: configPlatform(config, manifestDescriptor.platform),
      downloadedBytes: downloaded,
    };
    if (tag !== undefined) result.tag = tag;
    return result;
  } catch (err) {
    await session.discard();
    throw err;
  }
}

interface LayerJob {
  store: TransferStore;
  session: IngestSession;
  client: RegistryClient;
  repo: string;
  scopes: string[];
  layers: Descriptor[];
  diffIds: Digest[];
  chainIds: Digest[];
  concurrency: number;
  signal: AbortSignal | undefined;
  emit: ((event: WithoutOp<PullProgress>) => void) | undefined;
  context: string;
}

/** Downloads the missing layers in parallel; returns the bytes downloaded. */
async function fetchLayers(job: LayerJob): Promise<number> {
  const { store, session, layers, emit, context } = job;
  const queue = new PQueue({ concurrency: job.concurrency });
  // A failing layer cancels its siblings; the caller's signal cancels them all.
  const siblings = new AbortController();
  const signal = job.signal ? AbortSignal.any([job.signal, siblings.signal]) : siblings.signal;
  const seen = new Set<Digest>();
  let downloaded = 0;
  const tasks: Promise<void>[] = [];
  const jobs: Array<{ size: number; run: () => Promise<void> }> = [];
  for (const [index, layer] of layers.entries()) {
    const event = (state: 'waiting' | 'exists' | 'downloading' | 'retrying' | 'done', bytes: number, error?: string): void => {
      emit?.({ type: 'layer', index, digest: layer.digest, size: layer.size, state, bytes, ...(error === undefined ? {} : { error }) });
    };
    if (seen.has(layer.digest)) {
      // The same blob twice in one image is downloaded once; store.snapshot() unpacks the second chainID from it.
      event('exists', 0);
      continue;
    }
    seen.add(layer.digest);
    event('waiting', 0);
    jobs.push({
      size: layer.size,
      run: async () => {
        try {
          if (signal.aborted) throw new AbortError(`${context}: aborted`, { cause: signal.reason });
          rememberBlobSource(job.client.registry, job.repo, layer.digest);
          if (await store.hasBlob(layer.digest)) {
            session.keep(layer.digest);
            event('exists', 0);
            return;
          }
          const unpack = isLayerMediaType(layer.mediaType) && !(await session.hasSnapshot(job.chainIds[index]!));
          const writer = await session.layer(layer, {
            signal,
            snapshot: unpack
              ? { chainId: job.chainIds[index]!, diffId: job.diffIds[index]!, parent: index === 0 ? null : job.chainIds[index - 1]! }
              : undefined,
          });
          try {
            await downloadBlob(job, layer, writer, signal, (bytes) => event('downloading', bytes), (bytes, err) =>
              event('retrying', bytes, err.message),
            );
          } catch (err) {
            await writer.abort(err);
            throw err;
          }
          await writer.finish();
          downloaded += layer.size;
          event('done', layer.size);
        } catch (err) {
          siblings.abort(err);
          throw err;
        }
      },
    });
  }
  // Largest first: a layer's download and unpack are one stream bound by the CPU, and a large layer
  // started last would run alone at the end while the other cores idle (the makespan of LPT scheduling).
  // The sort is stable: equal sizes keep the manifest's order.
  for (const { run } of jobs.sort((a, b) => b.size - a.size)) tasks.push(queue.add(run));
  await settleSiblings(tasks, job.signal, context);
  return downloaded;
}

/**
 * Streams one blob into `writer`, resuming with a `Range` request from the
 * last byte received when the connection fails; a registry that ignores the
 * range sends the blob again from 0 and the bytes already written are
 * skipped.
 */
async function downloadBlob(
  job: LayerJob,
  layer: Descriptor,
  writer: LayerIngest,
  signal: AbortSignal,
  onBytes: (bytes: number) => void,
  onRetry: (bytes: number, err: Error) => void,
): Promise<void> {
  const what = `blob ${shortDigest(layer.digest)}`;
  const gathered = new ChunkGather(BODY_GATHER);
  const writeGathered = async (): Promise<void> => {
    if (gathered.size === 0) return;
    await writer.write(gathered.take(), true);
    onBytes(writer.written);
  };
  let failures = 0;
  for (let attempt = 1; ; attempt++) {
    const offset = writer.written;
    let body: NodeJS.ReadableStream | undefined;
    try {
      const download = await job.client.openBlob(job.repo, layer.digest, offset, job.scopes, layer.size);
      body = download.body;
      let skip = offset - download.start;
      for await (const data of download.body) {
        let chunk = data as Buffer;
        if (skip > 0) {
          if (chunk.length <= skip) {
            skip -= chunk.length;
            continue;
          }
          chunk = chunk.subarray(skip);
          skip = 0;
        }
        if (gathered.add(chunk)) {
          // Nothing reads the gathered body after this: the writer may free it once stored and unpacked.
          await writer.write(gathered.take(), true);
          onBytes(writer.written);
        }
      }
      await writeGathered();
      if (writer.written < layer.size) {
        throw Object.assign(new Error(`body ended after ${writer.written} of ${layer.size} bytes`), { code: 'ERR_PREMATURE_EOF' });
      }
      return;
    } catch (err) {
      (body as { destroy?: () => void } | undefined)?.destroy?.();
      // Bytes received before the connection failed are good: the retry resumes after them.
      if (writer.failure === undefined && !(err instanceof DigestMismatchError)) await writeGathered().catch(() => {});
      if (writer.failure !== undefined) throw writer.failure;
      if (err instanceof DigestMismatchError) throw err;
      if (signal.aborted) throw new AbortError(`${job.context}: aborted`, { cause: signal.reason });
      // Attempts that moved bytes do not use up the retry budget, up to a hard cap.
      if (writer.written === offset) failures++;
      if (!isRetryableNetworkError(err) || failures >= MAX_ATTEMPTS || attempt >= MAX_LAYER_ATTEMPTS) {
        throw job.client.networkError(err, what);
      }
      debug('%s: %s: %s at byte %d; resuming', job.context, what, (err as Error).message, writer.written);
      onRetry(writer.written, err as Error);
      await wait(retryDelay(Math.max(failures - 1, 0)), signal, job.context);
    }
  }
}

/**
 * Chunks collected until they make `limit` bytes, then taken as one buffer
 * (a chunk that alone makes the limit is taken as it is, not copied).
 */
class ChunkGather {
  readonly #limit: number;
  #chunks: Buffer[] = [];
  #size = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Bytes collected and not taken. */
  get size(): number {
    return this.#size;
  }

  /** Collects `chunk`; returns whether `limit` bytes are collected. */
  add(chunk: Buffer): boolean {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    return this.#size >= this.#limit;
  }

  /** Everything collected, as one buffer. */
  take(): Buffer {
    const out = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#size);
    // Copied: the socket reads' own buffers are freed now, not at a garbage collection (see releaseBuffer).
    if (out !== this.#chunks[0]) for (const c of this.#chunks) releaseChunk(c);
    this.#chunks = [];
    this.#size = 0;
    return out;
  }
}

/** The platform wanted, from the option (a string is parsed as Docker's `--platform`). */
function configPlatform(config: ImageConfig, fallback: Platform | undefined): Platform {
  if (typeof config.os === 'string' && typeof config.architecture === 'string') {
    const p: Platform = { os: config.os, architecture: config.architecture };
    const variant = (config as { variant?: unknown }).variant;
    if (typeof variant === 'string' && variant !== '') p.variant = variant;
    return p;
  }
  return fallback ?? hostPlatform();
}

/** Keeps an image pulled by digest from GC with a lease named after it. */
async function holdDigest(store: TransferStore, digest: Digest): Promise<void> {
  const id = `pull-${digest.replace(':', '-')}`;
  try {
    await store.lease(id, [digest]);
  } catch (err) {
    if (!(err instanceof AlreadyExistsError)) throw err;
  }
}

