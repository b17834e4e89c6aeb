/**
 * Waiting for a started container to be ready under one deadline, and the
 * typed error (with the log's last lines) when it is not.
 *
 * @module
 */

import { NotReadyError, type Container } from '../index.js';
import type { WaitContext, WaitStrategy } from './wait.js';

/** What {@link waitReady} needs of a started container. */
export interface ReadyTarget {
  container: Container;
  host: string;
  getMappedPort(port: number | string): number;
}

/** The last `lines` lines of the container's log, newline removed. */
async function logTail(container: Container, lines: number): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const line of container.logs({ tail: lines, signal: AbortSignal.timeout(2000) })) out.push(line.text.replace(/\r?\n$/, ''));
  } catch {
    // The tail is a courtesy to the reader of the error: an unreadable log leaves it short.
  }
  return out;
}

/** Waits until `strategy` is satisfied, within `timeoutMs`; a `NotReadyError` carrying the log's last lines otherwise. */
export async function waitReady(started: ReadyTarget, strategy: WaitStrategy, timeoutMs: number, tailLines: number): Promise<void> {
  const { container } = started;
  const deadline = new AbortController();
  let why: 'timeout' | 'exited' | undefined;
  const timer = setTimeout(() => {
    why ??= 'timeout';
    deadline.abort();
  }, timeoutMs);
  // Polled rather than awaited: a pending `wait()` holds the event loop open for as long as the container runs.
  const exitWatch = strategy.expectsExit
    ? undefined
    : setInterval(() => {
        if (container.status !== 'running' && container.status !== 'paused') {
          why ??= 'exited';
          deadline.abort();
        }
      }, 50);
  const context: WaitContext = {
    container,
    host: started.host,
    ports: container.ports(),
    getMappedPort: (port) => started.getMappedPort(port),
    signal: deadline.signal,
  };
  try {
    await strategy.waitUntilReady(context);
  } catch (error) {
    const reason = why ?? (error instanceof NotReadyError ? (error.reason ?? 'failed') : 'failed');
    const exit = reason === 'exited' ? await container.wait().catch(() => undefined) : undefined;
    const message =
      reason === 'timeout'
        ? `not ready after ${timeoutMs} ms`
        : reason === 'exited'
          ? `container exited${exit !== undefined ? ` with code ${exit.exitCode}` : ''} before it was ready`
          : error instanceof Error ? error.message : String(error);
    const tail = await logTail(container, tailLines);
    // The last few lines go in the message too: a test runner shows the message, not always the fields.
    const shown = tail.length > 0 ? `; last log lines:\n${tail.slice(-5).map((l) => `  ${l}`).join('\n')}` : '';
    throw new NotReadyError(`start container ${container.id.slice(0, 12)}: wait for ${strategy.description}: ${message}${shown}`, {
      reason,
      waitedFor: strategy.description,
      timeoutMs,
      logTail: tail,
      cause: error,
    });
  } finally {
    clearTimeout(timer);
    if (exitWatch !== undefined) clearInterval(exitWatch);
    deadline.abort();
  }
}
