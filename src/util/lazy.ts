import { createRequire } from 'node:module';

const requireHere = createRequire(import.meta.url);

/**
 * A CommonJS package loaded on first use rather than at import: what a
 * container run never touches (the Dockerfile parser, tar codecs) then costs
 * nothing at `import('dockless')`. Synchronous, so that a synchronous API can
 * use it; the package is resolved from this file as a static import would be.
 *
 * @param specifier - the package name, as in `import … from 'name'`
 * @returns a function that loads the package once and returns its exports
 * @example
 * ```ts
 * const tarStream = lazyRequire<typeof import('tar-stream')>('tar-stream');
 * const pack = tarStream().pack();
 * ```
 */
export function lazyRequire<T>(specifier: string): () => T {
  let loaded: { exports: T } | undefined;
  return () => (loaded ??= { exports: requireHere(specifier) as T }).exports;
}
