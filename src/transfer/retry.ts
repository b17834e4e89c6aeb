/**
 * When and how long to wait before trying a registry request again.
 *
 * @module
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { AbortError } from '../errors.js';

/** How many times a request is sent at most (the first try included). */
export const MAX_ATTEMPTS = 5;

const BASE_DELAY_MS = 250;
const MAX_DELAY_MS = 4000;
const MAX_RETRY_AFTER_MS = 10_000;

const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
  'ERR_PREMATURE_EOF',
]);

/**
 * Whether an error of the transport (not an HTTP status) is worth a retry:
 * connections refused, reset, cut or timed out, and bodies that ended early.
 */
export function isRetryableNetworkError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && RETRYABLE_CODES.has(code)) return true;
  // Node reports a response cut mid-body as "aborted" (ECONNRESET on the socket, no code on the error).
  const message = (err as Error | null)?.message ?? '';
  return message === 'aborted' || message === 'socket hang up';
}

/** Whether an HTTP status is worth a retry: 5xx other than 501, and 429. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

/**
 * The delay before retry number `attempt` (0 for the first retry):
 * exponential from 250 ms, capped at 4 s, with jitter; a server's
 * `Retry-After` (seconds) wins when given, up to 10 s.
 */
export function retryDelay(attempt: number, retryAfter?: string | string[]): number {
  const header = Array.isArray(retryAfter) ? retryAfter[0] : retryAfter;
  const seconds = header === undefined ? NaN : Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, MAX_RETRY_AFTER_MS);
  const base = Math.min(BASE_DELAY_MS * 2 ** attempt, MAX_DELAY_MS);
  return base / 2 + Math.random() * (base / 2);
}

/**
 * Waits `ms`, or rejects with an {@link AbortError} when `signal` aborts first.
 */
export async function wait(ms: number, signal: AbortSignal | undefined, label: string): Promise<void> {
  try {
    await sleep(ms, undefined, signal === undefined ? undefined : { signal });
  } catch (err) {
    throw new AbortError(`${label}: aborted`, { cause: signal?.reason ?? err });
  }
}
