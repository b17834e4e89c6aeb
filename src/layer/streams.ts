import { Decompress as ZstdDecompress } from 'fzstd';
import { InvalidArgumentError } from '../errors.js';

/** Resolves when `emitter` drains, errors or closes, whichever comes first (the caller checks why). */
export function drained(emitter: NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      emitter.off('drain', done);
      emitter.off('error', done);
      emitter.off('close', done);
      resolve();
    };
    emitter.on('drain', done);
    emitter.on('error', done);
    emitter.on('close', done);
  });
}

/**
 * Decompresses a zstd stream (Node 20's zlib has none). A corrupt stream is an
 * {@link InvalidArgumentError} whose message starts with `context`.
 */
export async function* unzstd(input: AsyncIterable<Uint8Array>, context: string): AsyncGenerator<Uint8Array> {
  const out: Uint8Array[] = [];
  const decoder = new ZstdDecompress((data) => {
    if (data.byteLength > 0) out.push(data);
  });
  const push = (chunk: Uint8Array, final: boolean): void => {
    try {
      decoder.push(chunk, final);
    } catch (cause) {
      throw new InvalidArgumentError(`${context}: corrupt zstd stream: ${(cause as Error).message}`, { cause });
    }
  };
  for await (const chunk of input) {
    push(chunk, false);
    while (out.length > 0) yield out.shift()!;
  }
  push(new Uint8Array(0), true);
  while (out.length > 0) yield out.shift()!;
}
