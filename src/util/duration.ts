/**
 * Go's duration strings (`500ms`, `1m30s`), as Docker, runc and Dockerfiles
 * write them.
 *
 * @module
 */

const UNITS: Readonly<Record<string, number>> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds of a Go duration (`'1m30s'`, `'500ms'`), or `undefined` when `value` is not one. */
export function goDurationMs(value: string): number | undefined {
  // µ as an escape: the bundle's scripts must be ASCII (tools/bundle.mjs), and esbuild writes a regular expression as it is.
  const re = /(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h)/gy;
  let total = 0;
  let end = 0;
  for (let m = re.exec(value); m !== null; m = re.exec(value)) {
    total += Number(m[1]) * UNITS[m[2]!]!;
    end = re.lastIndex;
  }
  return value === '' || end !== value.length ? undefined : total;
}
