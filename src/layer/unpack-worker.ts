/**
 * The unpack thread: parses layer tars and writes their entries, one layer at
 * a time, for `WorkerTarApply` (unpack-thread.ts). Tar parsing and the
 * per-file calls are what bound an unpack; here they run beside the thread
 * that reads, decompresses and hashes the blob.
 *
 * @module
 */
import { parentPort } from 'node:worker_threads';
import { TarApply } from './tar-apply.js';
import { serializeError, type FromWorker, type ToWorker } from './thread-protocol.js';

const port = parentPort;
if (port === null) throw new Error('unpack-worker: not started as a worker thread');

let current: { job: number; sink: TarApply } | undefined;
let queue: Promise<void> = Promise.resolve();

const send = (message: FromWorker): void => port.postMessage(message);

function close(job: number): void {
  if (current?.job === job) {
    current.sink.abort();
    current = undefined;
  }
  send({ type: 'closed', job });
}

async function handle(message: ToWorker): Promise<void> {
  if (message.type === 'start') {
    if (current !== undefined) current.sink.abort();
    current = { job: message.job, sink: new TarApply(message.root, message.options) };
    return;
  }
  if (message.type === 'abort') {
    close(message.job);
    return;
  }
  const job = current;
  // Data after a failure of its job: the main thread learns of the failure from the error already sent.
  if (job === undefined || job.job !== message.job) return;
  try {
    if (message.type === 'data') {
      await job.sink.write(message.chunk);
      send({ type: 'ack', job: job.job, bytes: message.chunk.byteLength, entries: job.sink.entries });
    } else {
      const entries = await job.sink.end();
      current = undefined;
      send({ type: 'done', job: job.job, entries });
    }
  } catch (error) {
    send({ type: 'error', job: job.job, error: serializeError(error) });
    close(job.job);
  }
}

port.on('message', (message: ToWorker) => {
  queue = queue.then(() => handle(message));
});
