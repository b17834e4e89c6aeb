/**
 * Telling Node's system errors apart by their `code`.
 *
 * @module
 */

/** Whether `err` is a Node system error with the given `code`. */
export function isErrno(err: unknown, ...codes: string[]): boolean {
  return typeof err === 'object' && err !== null && codes.includes((err as NodeJS.ErrnoException).code ?? '');
}
