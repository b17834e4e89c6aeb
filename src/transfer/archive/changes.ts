/**
 * The Dockerfile instructions `docker import --change` accepts, applied to
 * an image's execution defaults.
 *
 * @module
 */

import { InvalidArgumentError } from '../../errors.js';
import { DEFAULT_SHELL, type ContainerConfig } from '../../oci/index.js';

/** The instructions {@link applyChanges} accepts, as `docker import --change` does. */
export const CHANGE_INSTRUCTIONS: readonly string[] = Object.freeze([
  'CMD',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'LABEL',
  'ONBUILD',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
]);

/**
 * Applies Dockerfile instructions to a container config, as
 * `docker import --change` does: `CMD` and `ENTRYPOINT` in exec form
 * (`["a","b"]`) or shell form (run by the config's `Shell`, default
 * `/bin/sh -c`), `ENV` and `LABEL` as `k=v …` (quotes and backslashes as in
 * a Dockerfile) or the legacy `ENV k v`, `EXPOSE 80 53/udp 8000-8002`,
 * `VOLUME ["/a"]` or `VOLUME /a /b`, `WORKDIR` (a relative one is taken from
 * the previous one), `USER`, `STOPSIGNAL`, `ONBUILD`. Instruction names are
 * case-insensitive. Returns a new config; `config` is not changed.
 *
 * @throws {InvalidArgumentError} naming the change that is unknown or malformed.
 * @example
 * applyChanges({}, ['ENV PATH=/usr/bin DEBUG=1', 'CMD ["/app", "--serve"]', 'EXPOSE 8080']);
 * // { Env: ['PATH=/usr/bin', 'DEBUG=1'], Cmd: ['/app', '--serve'], ExposedPorts: { '8080/tcp': {} } }
 */
export function applyChanges(config: Partial<ContainerConfig>, changes: readonly string[]): ContainerConfig {
  const result: ContainerConfig = structuredClone(config) as ContainerConfig;
  for (const change of changes) {
    if (typeof change !== 'string') throw new InvalidArgumentError(`change: expected a string, got ${typeof change}`);
    const match = /^\s*([A-Za-z]+)(?:\s+([\s\S]*))?$/.exec(change);
    const fail = (problem: string): never => {
      throw new InvalidArgumentError(`change ${JSON.stringify(change)}: ${problem}`);
    };
    if (match === null) fail('expected an instruction and its arguments');
    const instruction = match![1]!.toUpperCase();
    const args = (match![2] ?? '').trim();
    if (!CHANGE_INSTRUCTIONS.includes(instruction)) {
      fail(`unknown instruction (accepted: ${CHANGE_INSTRUCTIONS.join(', ')})`);
    }
    if (args === '' && instruction !== 'CMD' && instruction !== 'ENTRYPOINT') fail('missing arguments');
    switch (instruction) {
      case 'CMD':
      case 'ENTRYPOINT': {
        const command = jsonArray(args) ?? (args === '' ? [] : [...(result.Shell ?? DEFAULT_SHELL), args]);
        if (instruction === 'CMD') result.Cmd = command;
        else result.Entrypoint = command;
        break;
      }
      case 'ENV': {
        const env = [...(result.Env ?? [])];
        for (const [key, value] of keyValues(args, fail, true)) {
          const i = env.findIndex((e) => e.split('=', 1)[0] === key);
          if (i >= 0) env[i] = `${key}=${value}`;
          else env.push(`${key}=${value}`);
        }
        result.Env = env;
        break;
      }
      case 'LABEL': {
        const labels = { ...(result.Labels ?? {}) };
        for (const [key, value] of keyValues(args, fail, false)) labels[key] = value;
        result.Labels = labels;
        break;
      }
      case 'EXPOSE': {
        const ports = { ...(result.ExposedPorts ?? {}) };
        for (const word of words(args, fail)) {
          const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(word);
          if (m === null) fail(`invalid port ${JSON.stringify(word)}`);
          const first = Number(m![1]);
          const last = m![2] === undefined ? first : Number(m![2]);
          if (first < 1 || last > 65535 || last < first || last - first > 65535) fail(`invalid port range ${JSON.stringify(word)}`);
          const proto = (m![3] ?? 'tcp').toLowerCase();
          for (let p = first; p <= last; p++) ports[`${p}/${proto}`] = {};
        }
        result.ExposedPorts = ports;
        break;
      }
      case 'VOLUME': {
        const volumes = { ...(result.Volumes ?? {}) };
        for (const v of jsonArray(args) ?? words(args, fail)) {
          if (v === '') fail('empty volume path');
          volumes[v] = {};
        }
        result.Volumes = volumes;
        break;
      }
      case 'WORKDIR': {
        const dir = unquote(args);
        result.WorkingDir = dir.startsWith('/') ? dir : joinPath(result.WorkingDir ?? '/', dir);
        break;
      }
      case 'USER':
        result.User = unquote(args);
        break;
      case 'STOPSIGNAL':
        result.StopSignal = unquote(args);
        break;
      case 'ONBUILD':
        result.OnBuild = [...(result.OnBuild ?? []), args];
        break;
    }
  }
  return result;
}

/** The array of a JSON-form argument (`["a", "b"]`), or `undefined` when it is not one. */
function jsonArray(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  try {
    const parsed: unknown = JSON.parse(args);
    if (Array.isArray(parsed) && parsed.every((x) => typeof x === 'string')) return parsed;
  } catch {
    // Not JSON: Docker then takes it in shell form.
  }
  return undefined;
}

/** Splits on unquoted whitespace, removing quotes and backslash escapes, as a Dockerfile word list. */
function words(args: string, fail: (problem: string) => never): string[] {
  const out: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < args.length; i++) {
    const c = args[i]!;
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < args.length) word += args[++i];
      else word += c;
      continue;
    }
    if (/\s/.test(c)) {
      if (inWord) out.push(word);
      word = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === '"' || c === "'") quote = c;
    else if (c === '\\' && i + 1 < args.length) word += args[++i];
    else word += c;
  }
  if (quote !== undefined) fail('unterminated quote');
  if (inWord) out.push(word);
  return out;
}

/** `k=v k2="v 2"` pairs, or (when `legacy`) the `k v…` form of ENV without `=`. */
function keyValues(args: string, fail: (problem: string) => never, legacy: boolean): Array<[string, string]> {
  const first = words(args, fail);
  if (legacy && first.length > 0 && !first[0]!.includes('=')) {
    const m = /^(\S+)\s+([\s\S]*)$/.exec(args);
    if (m === null) fail('ENV needs a value (ENV NAME=value, or ENV NAME value)');
    return [[m![1]!, m![2]!]];
  }
  return first.map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) fail(`expected key=value, got ${JSON.stringify(w)}`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

function unquote(s: string): string {
  const t = s.trim();
  if (t.length >= 2 && (t[0] === '"' || t[0] === "'") && t.at(-1) === t[0]) return t.slice(1, -1);
  return t;
}

function joinPath(base: string, rel: string): string {
  return `${base.replace(/\/+$/, '')}/${rel}`;
}
