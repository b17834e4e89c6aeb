/**
 * Connecting this process's terminal to a container or an exec'd process:
 * stdin (raw on a terminal), output, resizes, and the detach keys.
 *
 * @module
 */
import type { Container } from '../index.js';
import { DetachKeysFilter } from './detach-keys.js';

/** Connects this terminal (or pipes) to an attached container: stdin, raw mode and resizes for `-t`, and the detach keys when given. Returns the undo. */
export function connectTerminal(
  c: Pick<Container, 'stdin' | 'stdout' | 'stderr' | 'resize'>,
  interactive: boolean,
  tty: boolean,
  detach?: { keys: Buffer; onDetach: () => void },
): () => void {
  const stdin = process.stdin;
  const raw = tty && interactive && stdin.isTTY === true;
  if (raw) stdin.setRawMode(true);
  const filter = detach !== undefined ? new DetachKeysFilter(detach.keys, detach.onDetach) : undefined;
  if (interactive && c.stdin !== null) (filter !== undefined ? stdin.pipe(filter) : stdin).pipe(c.stdin);
  c.stdout?.pipe(process.stdout);
  c.stderr?.pipe(process.stderr);
  const resize = (): void => void c.resize({ columns: process.stdout.columns || 80, rows: process.stdout.rows || 24 }).catch(() => undefined);
  if (tty) process.on('SIGWINCH', resize);
  return () => {
    if (tty) process.off('SIGWINCH', resize);
    if (interactive) stdin.unpipe();
    filter?.unpipe();
    c.stdout?.unpipe(process.stdout);
    c.stderr?.unpipe(process.stderr);
    if (raw) stdin.setRawMode(false);
    stdin.pause();
  };
}

/**
 * Feeds this process's stdin (raw, on a terminal) to a running container's
 * stdin through {@link Container.attach}, until the detach keys, which call
 * `onDetach`. Returns the undo.
 */
export async function attachStdin(c: Container, keys: Buffer, onDetach: () => void): Promise<() => Promise<void>> {
  const a = await c.attach({ stdin: true });
  // The output comes another way (the log); these copies are not kept.
  a.stdout.resume();
  a.stderr.resume();
  const stdin = process.stdin;
  const raw = (await c.inspect()).Config.Tty && stdin.isTTY === true;
  if (raw) stdin.setRawMode(true);
  const filter = new DetachKeysFilter(keys, onDetach);
  if (a.stdin !== null) stdin.pipe(filter).pipe(a.stdin);
  return async () => {
    stdin.unpipe();
    filter.unpipe();
    if (raw) stdin.setRawMode(false);
    stdin.pause();
    await a.close();
  };
}
