/**
 * Waiting for a group of sibling tasks (the blobs of one pull or push, the
 * files of a rootfs), where the first failure aborts the others.
 *
 * @module
 */
import { AbortError } from '../errors.js';

/**
 * Waits for every one of `tasks` to settle, then throws the failure that
 * caused the others: the first rejection that is not an {@link AbortError}
 * (the rest are usually its cancellations), else the first rejection. When the
 * caller's `signal` was aborted, throws an {@link AbortError} for `context`
 * instead, with the signal's reason as its cause.
 */
export async function settleSiblings(tasks: Iterable<Promise<unknown>>, signal?: AbortSignal, context = 'tasks'): Promise<void> {
  const results = await Promise.allSettled(tasks);
  const failure =
    results.find((r): r is PromiseRejectedResult => r.status === 'rejected' && !(r.reason instanceof AbortError)) ??
    results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure !== undefined) {
    if (signal?.aborted) throw new AbortError(`${context}: aborted`, { cause: signal.reason });
    throw failure.reason;
  }
}
