/**
 * Cancellation through `AbortSignal`, as {@link AbortError}s that name what was
 * cancelled.
 *
 * @module
 */

import { AbortError } from '../errors.js';

/** The {@link AbortError} for `context`, carrying the signal's reason as its cause. */
export function abortError(signal: AbortSignal, context: string): AbortError {
  return new AbortError(`${context}: aborted`, { cause: signal.reason });
}

/** Throws an {@link AbortError} when `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, context: string): void {
  if (signal?.aborted === true) throw abortError(signal, context);
}

/**
 * Settles as `promise` does, or rejects with an {@link AbortError} as soon as
 * `signal` aborts; `promise` itself goes on (the caller undoes its work).
 */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined, context: string): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) {
    // Nobody else may be listening: its later rejection must not be an unhandled one.
    promise.catch(() => undefined);
    return Promise.reject(abortError(signal, context));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal, context));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
