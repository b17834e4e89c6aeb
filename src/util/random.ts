import { closeSync, openSync, readSync } from 'node:fs';
import { lazyRequire } from './lazy.js';

const crypto = lazyRequire<typeof import('node:crypto')>('node:crypto');

/** Random bytes read ahead from the kernel, handed out in order. */
let pool = Buffer.alloc(0);
let used = 0;

/**
 * `bytes` random bytes as lowercase hex, for ids and unique names. Read from
 * `/dev/urandom` rather than `node:crypto`: loading Node's crypto modules costs
 * a process that runs one container a few milliseconds it needs for nothing
 * else. Falls back to `node:crypto` where `/dev/urandom` cannot be read.
 *
 * @example
 * ```ts
 * const id = randomHex(32); // 64 hex digits
 * ```
 */
export function randomHex(bytes: number): string {
  if (used + bytes > pool.length) {
    pool = Buffer.allocUnsafe(Math.max(bytes, 256));
    used = 0;
    let got = 0;
    try {
      const fd = openSync('/dev/urandom', 'r');
      try {
        while (got < pool.length) got += readSync(fd, pool, got, pool.length - got, null);
      } finally {
        closeSync(fd);
      }
    } catch {
      crypto().randomFillSync(pool, got);
    }
  }
  const hex = pool.toString('hex', used, used + bytes);
  used += bytes;
  return hex;
}
