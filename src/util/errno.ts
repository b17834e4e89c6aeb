/**
 * Telling Node's system errors apart by their `code`, and turning them into
 * dockless errors.
 *
 * @module
 */

import { AlreadyExistsError, DocklessError, IOError, NotFoundError, PermissionError } from '../errors.js';

/** Whether `err` is a Node system error with the given `code`. */
export function isErrno(err: unknown, ...codes: string[]): boolean {
  return typeof err === 'object' && err !== null && codes.includes((err as NodeJS.ErrnoException).code ?? '');
}

/**
 * The dockless error for a failed filesystem call: {@link NotFoundError} for
 * ENOENT and ENOTDIR, {@link PermissionError} for EACCES, EPERM and EROFS,
 * {@link AlreadyExistsError} for EEXIST,
 * {@link IOError} otherwise; `cause` is the Node error. The message gets the
 * errno code appended (`` open `/x`: ENOSPC ``).
 */
export function fsError(cause: unknown, message: string, path?: string): DocklessError {
  if (cause instanceof DocklessError) return cause;
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const text = typeof code === 'string' ? `${message}: ${code}` : `${message}: ${cause instanceof Error ? cause.message : String(cause)}`;
  const options = path === undefined ? { cause } : { cause, path };
  if (isErrno(cause, 'ENOENT', 'ENOTDIR')) return new NotFoundError(text, options);
  if (isErrno(cause, 'EACCES', 'EPERM', 'EROFS')) return new PermissionError(text, options);
  if (isErrno(cause, 'EEXIST')) return new AlreadyExistsError(text, options);
  const syscall = (cause as NodeJS.ErrnoException | undefined)?.syscall;
  return new IOError(text, {
    ...options,
    ...(typeof code === 'string' ? { errnoCode: code } : {}),
    ...(typeof syscall === 'string' ? { syscall } : {}),
  });
}
