/**
 * What the bundle puts in place of the `debug` package: loading `debug` (and
 * supports-color, tty, ms) costs ~15 ms of every Node start, and it logs
 * nothing unless `DEBUG` is set. So the real package is required only when
 * `DEBUG` is set when a logger is made, and otherwise a logger does nothing.
 */
import { createRequire } from 'node:module';


let real;

export default function createDebug(namespace) {
  if (!process.env.DEBUG) return Object.assign(() => {}, { enabled: false, namespace, extend: (sub) => createDebug(`${namespace}:${sub}`), log: () => {} });
  real ??= createRequire(import.meta.url)('debug');
  return real(namespace);
}
