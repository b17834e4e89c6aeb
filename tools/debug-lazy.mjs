/**
 * What the bundle puts in place of the `debug` package: loading `debug` (and
 * supports-color, tty, ms) costs ~15 ms of every Node start that imports
 * dockless, and it logs nothing unless `DEBUG` is set. So a logger loads the
 * real package the first time it is called or asked whether it is enabled
 * while `DEBUG` is set (also when it was set after the import, or by another
 * copy of `debug`'s `enable()`, which sets it), and otherwise does nothing.
 */
import { createRequire } from 'node:module';

let real;

export default function createDebug(namespace) {
  let logger;
  const load = () => {
    if (!process.env.DEBUG) return undefined;
    real ??= createRequire(import.meta.url)('debug');
    return (logger ??= real(namespace));
  };
  const log = (...args) => load()?.(...args);
  Object.defineProperty(log, 'enabled', { get: () => load()?.enabled ?? false });
  log.namespace = namespace;
  log.extend = (sub, delimiter = ':') => createDebug(`${namespace}${delimiter}${sub}`);
  return log;
}
