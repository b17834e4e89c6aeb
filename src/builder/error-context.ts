/**
 * Error context in builds: every error leaving a build step names the step
 * once, whether the code that threw it named it already or not. Which errors
 * already name it is recorded here, never read from their message.
 *
 * @module
 */

import { BuildError, DocklessError } from '../errors.js';

const named = new WeakSet<Error>();

/** Marks an error whose message already names its build step (or stage); returns it. */
export function contextual<E extends Error>(err: E): E {
  named.add(err);
  return err;
}

/**
 * Puts `context` before the message of a dockless error that does not name
 * its step yet (keeping its class and fields), or wraps anything else in a
 * {@link BuildError}; either way the result is marked {@link contextual}.
 */
export function rewrap(err: unknown, context: string): Error {
  if (err instanceof Error && named.has(err)) return err;
  if (err instanceof DocklessError) {
    err.message = `${context}: ${err.message}`;
    return contextual(err);
  }
  const message = err instanceof Error ? err.message : String(err);
  return contextual(new BuildError(`${context}: ${message}`, { cause: err }));
}
