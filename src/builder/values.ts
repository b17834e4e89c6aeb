/**
 * Parsers and formatters of step values (modes, ports, durations, env pairs,
 * mount labels), shared by {@link LayerBuilder} and the Dockerfile front-end.
 *
 * @module
 */

import { InvalidArgumentError } from '../errors.js';
import type { MountSpec } from '../runtime/index.js';
import { goDurationMs } from '../util/index.js';

/** `env` with each pair set: replaced where the name is there, else appended. */
export function setEnv(env: readonly string[], pairs: readonly [string, string][]): string[] {
  const out = [...env];
  for (const [k, v] of pairs) {
    const i = out.findIndex((p) => p.slice(0, p.indexOf('=')) === k);
    if (i >= 0) out[i] = `${k}=${v}`;
    else out.push(`${k}=${v}`);
  }
  return out;
}

/** A value as an instruction shows it: bare when plain, else JSON-quoted. */
export function quoteIfNeeded(v: string): string {
  return /^[A-Za-z0-9_./:@%+,-]*$/.test(v) && v !== '' ? v : JSON.stringify(v);
}

/** A mount as a `--mount=` flag shows it. */
export function mountLabel(m: MountSpec): string {
  return m.type === 'bind'
    ? `type=bind,source=${m.source},target=${m.target}${m.readonly ? ',ro' : ''}`
    : `type=tmpfs,target=${m.target}${m.size !== undefined ? `,size=${m.size}` : ''}`;
}

/** Parses a mode: a number, or an octal string (`'755'`, `'0644'`). */
export function parseMode(mode: number | string, what: string): number {
  const n = typeof mode === 'number' ? mode : /^[0-7]{1,4}$/.test(mode) ? parseInt(mode, 8) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 0o7777) throw new InvalidArgumentError(`${what}: chmod \`${String(mode)}\` is not an octal mode`);
  return n;
}

/** The `ExposedPorts` keys of an `EXPOSE` word: `80` → `80/tcp`, `8000-8001/udp` → two. */
export function expandPort(word: string): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(word);
  if (m === null) throw new InvalidArgumentError(`expose: \`${word}\` is not a port, port range or port/protocol`);
  const first = Number(m[1]);
  const last = m[2] !== undefined ? Number(m[2]) : first;
  const proto = (m[3] ?? 'tcp').toLowerCase();
  if (first < 1 || last > 65535 || last < first) throw new InvalidArgumentError(`expose: \`${word}\` is out of range`);
  const out: string[] = [];
  for (let p = first; p <= last; p++) out.push(`${p}/${proto}`);
  return out;
}

/** Milliseconds of a duration: a number of milliseconds, or Go's form (`'1m30s'`, `'500ms'`). */
export function parseDuration(value: number | string, what: string): number {
  if (typeof value === 'number') {
    if (!(value >= 0)) throw new InvalidArgumentError(`${what}: duration ${value} must not be negative`);
    return value;
  }
  const total = goDurationMs(value);
  if (total === undefined) throw new InvalidArgumentError(`${what}: \`${value}\` is not a duration (e.g. 30s, 1m30s)`);
  return total;
}
