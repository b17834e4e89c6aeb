import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import createDebug from 'debug';
import { IOError } from '../errors.js';
import { locateHelper } from '../helper/index.js';
import { lazyRequire } from '../util/index.js';
import type { ApplierOptions } from './apply.js';
import { TarApply, type TarSink } from './tar-apply.js';
import { reviveError, type FromWorker, type ToWorker } from './thread-protocol.js';

const debug = createDebug('dockless:layer');
// Loaded with the first thread: importing the library, or running a container, starts none (~0.4 ms).
const workerThreads = lazyRequire<typeof import('node:worker_threads')>('node:worker_threads');

const HERE = fileURLToPath(import.meta.url);
/** Beside this file: `unpack-worker.js` in dist/ and in the bundle, `unpack-worker.ts` under a TypeScript loader. */
const WORKER_FILE = path.join(path.dirname(HERE), `unpack-worker${path.extname(HERE)}`);
/**
 * Bytes sent to a thread and not yet applied: enough to keep it busy while the
 * next chunks are decompressed, little enough to bound memory.
 */
const IN_FLIGHT = 4 << 20;
/**
 * A small young generation: the thread allocates a few short-lived objects
 * per entry and chunk, and a V8 default semi-space (up to 16 MiB) would only
 * grow its resident memory.
 */
const RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 6 };
/** An idle thread is ended after this long. */
const IDLE_MS = 5_000;

interface PooledThread {
  worker: Worker;
  /** The job it runs, or undefined when idle. */
  job: WorkerTarApply | undefined;
  idleTimer: NodeJS.Timeout | undefined;
}

/** Below this size (compressed), a layer is unpacked on the calling thread: a thread's start would cost more than it saves. */
const SMALL_LAYER = 512 * 1024;

const idle: PooledThread[] = [];
/** Threads started and not ended, idle or busy: at most one per CPU, since each holds a V8 heap of its own. */
let live = 0;
let nextJob = 1;

/**
 * Where `unpackLayer` should apply a layer blob of `size` bytes: a
 * small one on the calling thread, a larger one through the helper, which
 * creates its files in a process of its own.
 */
export function unpackThreadFor(size: number): 'helper' | 'main' {
  return size < SMALL_LAYER ? 'main' : 'helper';
}

function spawnThread(): PooledThread {
  const worker = WORKER_FILE.endsWith('.ts')
    ? // Under a TypeScript loader (the tests): Node 20 does not apply `--import` hooks in a worker, so tsx's CommonJS hook compiles it.
      new (workerThreads().Worker)(`require(${JSON.stringify(createRequire(HERE).resolve('tsx/cjs/api'))}).register(); require(${JSON.stringify(WORKER_FILE)});`, {
        eval: true,
        execArgv: [],
        resourceLimits: RESOURCE_LIMITS,
      })
    : new (workerThreads().Worker)(WORKER_FILE, { execArgv: [], resourceLimits: RESOURCE_LIMITS });
  const thread: PooledThread = { worker, job: undefined, idleTimer: undefined };
  live++;
  let ended = false;
  worker.on('message', (message: FromWorker) => thread.job?.receive(message));
  const died = (error: Error): void => {
    if (!ended) live--;
    ended = true;
    const at = idle.indexOf(thread);
    if (at !== -1) idle.splice(at, 1);
    thread.job?.died(error);
    thread.job = undefined;
  };
  worker.on('error', died);
  worker.on('exit', (code) => died(new IOError(`unpack thread exited with code ${code}`)));
  debug('started an unpack thread');
  return thread;
}

/**
 * Where the tar of a layer is applied: parsed on the calling thread and
 * created by the helper's `apply` op when `thread` is `'helper'` and a helper
 * is found; on an unpack thread when `thread` asks for one (or for the helper,
 * which is missing) and one is idle or may be started; else on the calling thread.
 */
export function tarSink(root: string, options: ApplierOptions, thread: 'worker' | 'main' | 'helper'): TarSink {
  if (thread === 'helper') {
    try {
      locateHelper(options.helperPath);
      return new TarApply(root, { ...options, writer: 'helper' });
    } catch (error) {
      debug('no helper to create files (%s): unpacking on an unpack thread', (error as Error).message);
      thread = 'worker';
    }
  }
  if (thread === 'worker' && (idle.length > 0 || live < availableParallelism())) return new WorkerTarApply(root, options);
  return new TarApply(root, options);
}

function acquire(job: WorkerTarApply): PooledThread {
  const thread = idle.pop() ?? spawnThread();
  if (thread.idleTimer !== undefined) clearTimeout(thread.idleTimer);
  thread.idleTimer = undefined;
  thread.job = job;
  thread.worker.ref();
  return thread;
}

function release(thread: PooledThread): void {
  thread.job = undefined;
  thread.worker.unref();
  if (idle.length >= availableParallelism()) {
    void thread.worker.terminate();
    return;
  }
  idle.push(thread);
  thread.idleTimer = setTimeout(() => {
    const at = idle.indexOf(thread);
    if (at !== -1) idle.splice(at, 1);
    void thread.worker.terminate();
  }, IDLE_MS);
  thread.idleTimer.unref();
}

/**
 * A {@link TarSink} on a worker thread: chunks are copied to the thread
 * (transferred, so each is copied once), at most {@link IN_FLIGHT} bytes
 * ahead of what it applied; its failures come back as the error classes they
 * had.
 */
export class WorkerTarApply implements TarSink {
  entries = 0;
  readonly #id = nextJob++;
  readonly #thread: PooledThread;
  #inFlight = 0;
  #failure: Error | undefined;
  #done = false;
  #closed = false;
  #waiter: { resolve: () => void; reject: (error: Error) => void } | undefined;
  #ended: { resolve: (entries: number) => void; reject: (error: Error) => void } | undefined;

  constructor(root: string, options: ApplierOptions) {
    this.#thread = acquire(this);
    this.#post({ type: 'start', job: this.#id, root, options });
  }

  async write(chunk: Uint8Array, owned = false): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    const whole = owned && chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && chunk.buffer instanceof ArrayBuffer;
    // Moved when it is a whole buffer nobody else holds; else copied, since a view's buffer may be reused under it.
    const copy = whole ? chunk : new Uint8Array(chunk);
    this.#inFlight += copy.byteLength;
    this.#post({ type: 'data', job: this.#id, chunk: copy }, [copy.buffer as ArrayBuffer]);
    while (this.#inFlight > IN_FLIGHT && this.#failure === undefined) {
      await new Promise<void>((resolve, reject) => {
        this.#waiter = { resolve, reject };
      });
    }
    if (this.#failure !== undefined) throw this.#failure;
  }

  end(): Promise<number> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise<number>((resolve, reject) => {
      this.#ended = { resolve, reject };
      this.#post({ type: 'end', job: this.#id });
    });
  }

  abort(): void {
    if (this.#closed || this.#done) return;
    this.#failure ??= new IOError('unpack thread: aborted');
    this.#post({ type: 'abort', job: this.#id });
  }

  /** @internal A message of the thread. */
  receive(message: FromWorker): void {
    if (message.job !== this.#id) return;
    switch (message.type) {
      case 'ack':
        this.#inFlight -= message.bytes;
        this.entries = message.entries;
        if (this.#inFlight <= IN_FLIGHT) this.#wake();
        return;
      case 'done':
        this.entries = message.entries;
        this.#done = true;
        this.#finishJob();
        this.#ended?.resolve(message.entries);
        return;
      case 'error':
        this.#fail(reviveError(message.error));
        return;
      case 'closed':
        this.#closed = true;
        this.#finishJob();
        return;
    }
  }

  /** @internal The thread died under this job. */
  died(error: Error): void {
    this.#closed = true;
    this.#fail(error);
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    this.#wake();
    this.#ended?.reject(this.#failure);
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.resolve();
  }

  #finishJob(): void {
    if (this.#thread.job === this) release(this.#thread);
  }

  #post(message: ToWorker, transfer?: ArrayBuffer[]): void {
    this.#thread.worker.postMessage(message, transfer);
  }
}
