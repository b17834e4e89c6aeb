/**
 * Docker's flag values turned into the library's types: sizes (`512m`), CPU
 * counts, `-e`/`--env-file`, `-v`/`--mount`/`--tmpfs`, `--ulimit`,
 * `--security-opt`, durations (`30s`). Pure: every function here takes strings
 * and returns values or throws an {@link InvalidArgumentError} naming the flag.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { InvalidArgumentError, type ContainerResources, type MountSpec, type Rlimit, type RlimitName } from '../index.js';
import type { Command } from 'commander';

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/**
 * A byte size as Docker writes it: `512m`, `1g`, `1048576`, `1.5G` (binary
 * units, case-insensitive, an optional trailing `b`).
 */
export function parseSize(flag: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)b?$/i.exec(value.trim());
  if (m === null) throw new InvalidArgumentError(`${flag}: invalid size \`${value}\` (e.g. 512m, 2g)`);
  return Math.floor(Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!);
}

/** `--memory-swap`: a size, or `-1` for unlimited swap. */
export function parseSwap(value: string): number {
  return value.trim() === '-1' ? -1 : parseSize('--memory-swap', value);
}

/** A positive decimal, such as `--cpus 1.5`. */
export function parsePositive(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || value.trim() === '') throw new InvalidArgumentError(`${flag}: expected a positive number, got \`${value}\``);
  return n;
}

/** A non-negative integer, such as `--pids-limit 100` or `-t 10`. */
export function parseInteger(flag: string, value: string): number {
  if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`${flag}: expected an integer, got \`${value}\``);
  return Number(value);
}

/** The flags of `dockless update`, as commander gives them. */
export interface UpdateFlags {
  /** `-m, --memory`. */ memory?: string;
  /** `--memory-swap`. */ memorySwap?: string;
  /** `--cpus`. */ cpus?: string;
  /** `-c, --cpu-shares`. */ cpuShares?: string;
  /** `--cpuset-cpus`. */ cpusetCpus?: string;
  /** `--pids-limit`. */ pidsLimit?: string;
}

/** The resource flags `run`, `create` and `update` share, as commander options. */
export function resourceOptions(command: Command): Command {
  return command
    .option('-m, --memory <bytes>', 'memory limit')
    .option('--memory-swap <bytes>', 'memory plus swap limit, -1 for unlimited swap')
    .option('--cpus <number>', 'number of CPUs')
    .option('-c, --cpu-shares <n>', 'CPU shares (relative weight)')
    .option('--cpuset-cpus <list>', 'CPUs in which to allow execution (0-3, 0,1)')
    .option('--pids-limit <n>', 'tune the container pids limit');
}

/** The limits the resource flags give: only the flags given, with `docker run`'s value syntax. */
export function resourceFlags(flags: UpdateFlags): ContainerResources {
  return {
    ...(flags.memory !== undefined ? { memory: parseSize('--memory', flags.memory) } : {}),
    ...(flags.memorySwap !== undefined ? { memorySwap: parseSwap(flags.memorySwap) } : {}),
    ...(flags.cpus !== undefined ? { cpus: parsePositive('--cpus', flags.cpus) } : {}),
    ...(flags.cpuShares !== undefined ? { cpuShares: parseInteger('--cpu-shares', flags.cpuShares) } : {}),
    ...(flags.cpusetCpus !== undefined ? { cpuset: flags.cpusetCpus } : {}),
    ...(flags.pidsLimit !== undefined ? { pids: parseInteger('--pids-limit', flags.pidsLimit) } : {}),
  };
}

/**
 * The limits `dockless update` sets: {@link resourceFlags}; the library checks
 * the values against the container's others.
 */
export function updateResources(flags: UpdateFlags): ContainerResources {
  const resources = resourceFlags(flags);
  if (Object.keys(resources).length === 0) throw new InvalidArgumentError('update: you must provide one or more flags when using this command');
  return resources;
}

/**
 * A Docker duration (`30s`, `1m30s`, `500ms`, `1h`) in milliseconds; a bare
 * number is seconds, as Docker reads `--health-interval 5`.
 */
export function parseDuration(flag: string, value: string): number {
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const unit: Readonly<Record<string, number>> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  // µ as an escape: the bundle's scripts must be ASCII (tools/bundle.mjs), and esbuild writes a regular expression as it is.
  const parts = [...v.matchAll(/(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== v) {
    throw new InvalidArgumentError(`${flag}: invalid duration \`${value}\` (e.g. 30s, 1m30s, 500ms)`);
  }
  return parts.reduce((ms, p) => ms + Number(p[1]) * unit[p[2]!]!, 0);
}

/**
 * One `-e` value: `KEY=VALUE`, or `KEY` alone, which takes the value from
 * this process's environment (and is left out when unset), as Docker does.
 */
export function parseEnv(value: string, env: NodeJS.ProcessEnv = process.env): [string, string] | undefined {
  const eq = value.indexOf('=');
  const key = eq < 0 ? value : value.slice(0, eq);
  if (key === '') throw new InvalidArgumentError(`-e: invalid environment variable \`${value}\``);
  if (eq >= 0) return [key, value.slice(eq + 1)];
  const inherited = env[key];
  return inherited === undefined ? undefined : [key, inherited];
}

/** The lines of an `--env-file`: `KEY=VALUE` or `KEY`, `#` comments and blank lines skipped. */
export function parseEnvFile(path: string, env: NodeJS.ProcessEnv = process.env): [string, string][] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InvalidArgumentError(`--env-file: cannot read \`${path}\`: ${(error as Error).message}`);
  }
  const out: [string, string][] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const pair = parseEnv(line.trimStart(), env);
    if (pair !== undefined) out.push(pair);
  }
  return out;
}

/**
 * `-v SRC:DST[:ro|rw]`. A source that is not a path (a named volume) is
 * refused: dockless has no volumes yet.
 */
export function parseVolume(value: string, cwd = process.cwd()): MountSpec {
  const parts = value.split(':');
  if (parts.length < 2 || parts.length > 3 || parts[0] === '' || parts[1] === '') {
    throw new InvalidArgumentError(`-v: invalid volume \`${value}\` (expected HOST-PATH:CONTAINER-PATH[:ro])`);
  }
  const [source, target, mode] = parts as [string, string, string | undefined];
  if (!source.startsWith('/') && !source.startsWith('.')) {
    throw new InvalidArgumentError(`-v: named volumes are not supported (\`${source}\`); give a host path`);
  }
  if (!target.startsWith('/')) throw new InvalidArgumentError(`-v: the container path must be absolute, got \`${target}\``);
  const opts = (mode ?? '').split(',').filter((o) => o !== '');
  for (const o of opts) {
    if (!['ro', 'rw', 'z', 'Z'].includes(o)) throw new InvalidArgumentError(`-v: unknown option \`${o}\` in \`${value}\``);
  }
  return { type: 'bind', source: resolve(cwd, source), target, readonly: opts.includes('ro') };
}

/** `--mount type=bind,source=…,target=…[,readonly]` or `type=tmpfs,target=…[,tmpfs-size=…,tmpfs-mode=…]`. */
export function parseMount(value: string, cwd = process.cwd()): MountSpec {
  const fields = new Map<string, string>();
  for (const item of value.split(',')) {
    const eq = item.indexOf('=');
    const key = (eq < 0 ? item : item.slice(0, eq)).trim().toLowerCase();
    fields.set(key, eq < 0 ? 'true' : item.slice(eq + 1));
  }
  const type = fields.get('type') ?? 'volume';
  const target = fields.get('target') ?? fields.get('destination') ?? fields.get('dst');
  if (target === undefined || !target.startsWith('/')) throw new InvalidArgumentError(`--mount: an absolute target is required in \`${value}\``);
  const ro = fields.get('readonly') ?? fields.get('ro');
  const readonly = ro !== undefined && ro !== 'false' && ro !== '0';
  if (type === 'bind') {
    const source = fields.get('source') ?? fields.get('src');
    if (source === undefined || source === '') throw new InvalidArgumentError(`--mount: a bind mount needs source= in \`${value}\``);
    return { type: 'bind', source: resolve(cwd, source), target, readonly };
  }
  if (type === 'tmpfs') {
    const size = fields.get('tmpfs-size');
    const mode = fields.get('tmpfs-mode');
    return {
      type: 'tmpfs',
      target,
      readonly,
      ...(size !== undefined ? { size: parseSize('--mount tmpfs-size', size) } : {}),
      ...(mode !== undefined ? { mode: parseOctal('--mount tmpfs-mode', mode) } : {}),
    };
  }
  throw new InvalidArgumentError(`--mount: type \`${type}\` is not supported (bind or tmpfs)`);
}

/** `--tmpfs /run[:size=64m,mode=1777]`. */
export function parseTmpfs(value: string): MountSpec {
  const colon = value.indexOf(':');
  const target = colon < 0 ? value : value.slice(0, colon);
  if (!target.startsWith('/')) throw new InvalidArgumentError(`--tmpfs: the path must be absolute, got \`${target}\``);
  let size: number | undefined;
  let mode: number | undefined;
  let readonly = false;
  for (const opt of colon < 0 ? [] : value.slice(colon + 1).split(',')) {
    const [k, v] = opt.split('=') as [string, string | undefined];
    if (k === 'size' && v !== undefined) size = parseSize('--tmpfs size', v);
    else if (k === 'mode' && v !== undefined) mode = parseOctal('--tmpfs mode', v);
    else if (k === 'ro') readonly = true;
    else if (!['rw', 'noexec', 'exec', 'nosuid', 'nodev', ''].includes(k)) throw new InvalidArgumentError(`--tmpfs: unknown option \`${opt}\``);
  }
  return { type: 'tmpfs', target, readonly, ...(size !== undefined ? { size } : {}), ...(mode !== undefined ? { mode } : {}) };
}

function parseOctal(flag: string, value: string): number {
  if (!/^[0-7]{1,4}$/.test(value)) throw new InvalidArgumentError(`${flag}: expected an octal mode, got \`${value}\``);
  return parseInt(value, 8);
}

const RLIMITS: readonly RlimitName[] = [
  'as', 'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack',
];

/** `--ulimit nofile=1024:4096` (or `nofile=1024`, soft = hard; `-1` or `unlimited` for unlimited). */
export function parseUlimit(value: string): [RlimitName, Rlimit] {
  const m = /^([a-z]+)=([^:]+)(?::(.+))?$/.exec(value.trim());
  if (m === null || !RLIMITS.includes(m[1] as RlimitName)) {
    throw new InvalidArgumentError(`--ulimit: invalid \`${value}\` (expected NAME=SOFT[:HARD], NAME one of ${RLIMITS.join(', ')})`);
  }
  const num = (s: string): number => {
    if (s === '-1' || s === 'unlimited') return Infinity;
    if (!/^\d+$/.test(s)) throw new InvalidArgumentError(`--ulimit: invalid limit \`${s}\` in \`${value}\``);
    return Number(s);
  };
  const soft = num(m[2]!);
  const hard = m[3] !== undefined ? num(m[3]) : soft;
  if (soft > hard) throw new InvalidArgumentError(`--ulimit: soft limit above hard limit in \`${value}\``);
  return [m[1] as RlimitName, { soft, hard }];
}

/** What `--security-opt` values say. */
export interface SecurityOpts {
  /** The seccomp profile: `'unconfined'` or the text of a JSON file. */
  seccomp?: string;
  /** `no-new-privileges[:true|false]`. */
  noNewPrivileges?: boolean;
}

/** `--security-opt seccomp=unconfined|PATH`, `--security-opt no-new-privileges[:true|false]`. */
export function parseSecurityOpts(values: readonly string[]): SecurityOpts {
  const out: SecurityOpts = {};
  for (const value of values) {
    const sep = value.search(/[=:]/);
    const key = sep < 0 ? value : value.slice(0, sep);
    const arg = sep < 0 ? undefined : value.slice(sep + 1);
    if (key === 'seccomp' && arg !== undefined) {
      if (arg === 'unconfined') out.seccomp = 'unconfined';
      else {
        try {
          out.seccomp = readFileSync(arg, 'utf8');
        } catch (error) {
          throw new InvalidArgumentError(`--security-opt: cannot read seccomp profile \`${arg}\`: ${(error as Error).message}`);
        }
      }
    } else if (key === 'no-new-privileges') {
      out.noNewPrivileges = arg === undefined || arg === 'true';
    } else {
      throw new InvalidArgumentError(`--security-opt: \`${value}\` is not supported (seccomp=…, no-new-privileges)`);
    }
  }
  return out;
}

/** `--label k=v` / `--label k` into a record. */
export function parseLabels(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    const key = eq < 0 ? value : value.slice(0, eq);
    if (key === '') throw new InvalidArgumentError(`--label: invalid label \`${value}\``);
    out[key] = eq < 0 ? '' : value.slice(eq + 1);
  }
  return out;
}

/** `--build-arg K=V` / `--build-arg K` (from the environment). */
export function parseBuildArgs(values: readonly string[], env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const value of values) {
    const pair = parseEnv(value, env);
    if (pair !== undefined) out[pair[0]] = pair[1];
  }
  return out;
}

/** Splits `CONTAINER:PATH` (docker cp's operand) from a host path; `-` is the standard stream. */
export function parseCopyOperand(value: string): { container: string; path: string } | { host: string } {
  if (value === '-' || value.startsWith('/') || value.startsWith('.')) return { host: value };
  const colon = value.indexOf(':');
  if (colon <= 0) return { host: value };
  return { container: value.slice(0, colon), path: value.slice(colon + 1) === '' ? '/' : value.slice(colon + 1) };
}

/**
 * `--since`/`--until`: an RFC 3339 time, a Unix time in seconds, or a duration
 * before now (`42m`, `1h30m`), as `docker logs` reads them; in milliseconds since the epoch.
 */
export function parseTime(flag: string, value: string, now = Date.now()): number {
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  if (/^\d+(\.\d+)?(ns|us|\u00b5s|ms|s|m|h)/.test(v)) return now - parseDuration(flag, v);
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new InvalidArgumentError(`${flag}: invalid time \`${value}\` (RFC 3339, Unix seconds, or a duration such as 42m)`);
  return t;
}
