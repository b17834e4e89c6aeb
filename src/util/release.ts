import type { EventEmitter } from 'node:events';

/**
 * A port whose peer is closed: what is transferred through it is dropped at
 * once, memory included. Made at first use (a MessageChannel costs a handle).
 */
let sink: InstanceType<typeof MessageChannel>['port1'] | undefined;

/**
 * Frees the memory of `buffer` now rather than at the garbage collection that
 * would find it dead, and detaches it (every view of it reads as empty).
 *
 * Why: V8 collects dead `ArrayBuffer`s of the young generation only at a
 * scavenge, and forces one only once about 32 MiB of them are waiting (twice
 * the largest semi-space). A stream that allocates a fresh buffer per chunk and
 * little else (gunzip output, socket reads) so keeps tens of MiB of dead
 * buffers resident. Transferring a buffer through a port whose peer is closed
 * detaches it and drops the backing store in the same call.
 *
 * Only for a buffer nothing else holds a view of, and never for Node's
 * shared `Buffer` pool. A buffer that cannot be transferred (already detached,
 * a `SharedArrayBuffer`, WebAssembly memory) is left to the collector.
 *
 * @param buffer - the buffer to free
 * @example
 * ```ts
 * const chunk = Buffer.allocUnsafeSlow(1 << 20);
 * hash.update(chunk);
 * releaseBuffer(chunk.buffer); // chunk.byteLength is 0 from here on
 * ```
 */
export function releaseBuffer(buffer: ArrayBufferLike): void {
  if (!(buffer instanceof ArrayBuffer) || buffer.byteLength === 0) return;
  if (sink === undefined) {
    const channel = new MessageChannel();
    channel.port2.close();
    sink = channel.port1;
    // The port must not keep the process alive.
    (sink as { unref?: () => void }).unref?.();
  }
  try {
    sink.postMessage(null, [buffer]);
  } catch {
    // Not transferable: the garbage collector frees it as before.
  }
}

/** Buffers given to several readers by {@link shareBuffer}: how many have not called {@link doneWithBuffer} yet. */
const readers = new WeakMap<ArrayBufferLike, number>();

/** Whether `chunk` spans its whole buffer: only then can nothing else hold a view of that buffer. */
const whole = (chunk: Uint8Array): boolean => chunk.byteLength > 0 && chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength;

/**
 * Frees the buffer of `chunk` (see {@link releaseBuffer}) when `chunk` spans
 * it whole: a chunk the caller owns and has copied what it needs from. A view
 * of part of a buffer is left alone, since something else may hold the rest.
 *
 * @param chunk - a chunk nothing reads after this call
 */
export function releaseChunk(chunk: Uint8Array): void {
  if (whole(chunk)) releaseBuffer(chunk.buffer);
}

/**
 * Hands `chunk`, which the caller owns whole and will not read again, to
 * `count` readers; its memory is freed (see {@link releaseBuffer}) when each
 * of them has called {@link doneWithBuffer} with it. A chunk that is a view
 * of part of a buffer is left alone: something else may hold the rest.
 *
 * A reader that does not call `doneWithBuffer` (it failed, it was given a
 * copy) leaves the buffer to the garbage collector, as without this.
 *
 * @param chunk - a chunk the caller owns whole
 * @param count - how many readers will call doneWithBuffer with it
 */
export function shareBuffer(chunk: Uint8Array, count: number): void {
  if (whole(chunk) && count > 0) readers.set(chunk.buffer, count);
}

/**
 * Says that this reader is done with `chunk` (it copied what it keeps); the
 * last reader of a chunk given by {@link shareBuffer} frees it. Anything else
 * is left alone.
 *
 * @param chunk - a chunk this reader was given
 */
export function doneWithBuffer(chunk: Uint8Array): void {
  if (!whole(chunk)) return;
  const left = readers.get(chunk.buffer);
  if (left === undefined) return;
  if (left > 1) {
    readers.set(chunk.buffer, left - 1);
    return;
  }
  readers.delete(chunk.buffer);
  releaseBuffer(chunk.buffer);
}

/**
 * Frees each chunk `source` (a socket) emits once its other `'data'`
 * listeners have run, until `until` (the response read from it) ends or
 * closes.
 *
 * Why: Node's HTTP client reads a socket through a `'data'` listener that
 * hands each read (up to 64 KiB, a buffer of its own) to the parser, which
 * copies the body out of it; the read itself is then dead but waits for a
 * scavenge, and up to 32 MiB of them piled up during a blob download (see
 * {@link releaseBuffer}).
 *
 * A chunk is freed only when this listener is the last one: every listener
 * added before it has seen the chunk, and a listener added later (the next
 * request on a kept-alive socket, if this one were still attached) would not
 * have. The listener is removed when `until` ends, in the same turn, before
 * the socket can serve another request.
 *
 * @param source - the socket the HTTP client reads
 * @param until - the response whose body is read from it
 */
export function releaseReads(source: EventEmitter, until: EventEmitter): void {
  const onData = (chunk: unknown): void => {
    const listeners = source.listeners('data');
    if (listeners[listeners.length - 1] === onData && chunk instanceof Uint8Array) releaseChunk(chunk);
  };
  const stop = (): void => {
    source.off('data', onData);
    until.off('end', stop);
    until.off('close', stop);
  };
  source.on('data', onData);
  until.on('end', stop);
  until.on('close', stop);
}
