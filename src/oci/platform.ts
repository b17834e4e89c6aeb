/**
 * Platforms (`linux/arm64/v8`): the host's, parsing and formatting them, and
 * matching a wanted platform against an image index entry.
 *
 * Names are Go's (`GOOS`/`GOARCH`), as OCI documents use them. Comparison
 * follows containerd's normalisation, so `linux/arm64` and `linux/arm64/v8`
 * are the same platform, as are `linux/arm` and `linux/arm/v7`.
 *
 * @module
 */

import { InvalidArgumentError } from '../errors.js';
import type { Platform } from './types.js';

const KNOWN_OS: ReadonlySet<string> = new Set([
  'aix', 'android', 'darwin', 'dragonfly', 'freebsd', 'hurd', 'illumos', 'ios', 'js', 'linux',
  'netbsd', 'openbsd', 'plan9', 'solaris', 'wasip1', 'windows', 'zos',
]);

const KNOWN_ARCH: ReadonlySet<string> = new Set([
  '386', 'amd64', 'arm', 'arm64', 'loong64', 'mips', 'mipsle', 'mips64', 'mips64le', 'ppc',
  'ppc64', 'ppc64le', 'riscv64', 's390', 's390x', 'sparc64', 'wasm',
]);

// Other spellings met in the wild (uname -m, Debian, Node), mapped to Go's.
const OS_ALIASES: Readonly<Record<string, string>> = { macos: 'darwin', win32: 'windows', sunos: 'solaris' };
const ARCH_ALIASES: Readonly<Record<string, { architecture: string; variant?: string }>> = {
  x86_64: { architecture: 'amd64' },
  'x86-64': { architecture: 'amd64' },
  x64: { architecture: 'amd64' },
  i386: { architecture: '386' },
  i686: { architecture: '386' },
  ia32: { architecture: '386' },
  aarch64: { architecture: 'arm64' },
  armhf: { architecture: 'arm', variant: 'v7' },
  armel: { architecture: 'arm', variant: 'v6' },
  ppc64el: { architecture: 'ppc64le' },
  mipsel: { architecture: 'mipsle' },
  mips64el: { architecture: 'mips64le' },
};

const COMPONENT_RE = /^[A-Za-z0-9_.-]+$/;

/**
 * The OCI platform of a Node.js `process.platform` / `process.arch` pair:
 * `x64` → `amd64`, `arm64` → `arm64` variant `v8`, `arm` → `arm` variant
 * `v<armVersion>` (default `v7`), `ia32` → `386`, `ppc64` → `ppc64le` (Node
 * supports only little-endian ppc64 on Linux), `win32` → `windows`.
 *
 * @param nodePlatform a `process.platform` value.
 * @param nodeArch a `process.arch` value.
 * @param armVersion Node's `process.config.variables.arm_version` (`'6'`, `'7'`), for `arm`.
 * @example
 * platformFromNode('linux', 'arm64'); // { os: 'linux', architecture: 'arm64', variant: 'v8' }
 */
export function platformFromNode(nodePlatform: string, nodeArch: string, armVersion?: string): Platform {
  const os = Object.hasOwn(OS_ALIASES, nodePlatform) ? OS_ALIASES[nodePlatform]! : nodePlatform;
  switch (nodeArch) {
    case 'x64':
      return { os, architecture: 'amd64' };
    case 'arm64':
      return { os, architecture: 'arm64', variant: 'v8' };
    case 'arm':
      return { os, architecture: 'arm', variant: `v${armVersion !== undefined && /^\d+$/.test(armVersion) ? armVersion : '7'}` };
    case 'ia32':
      return { os, architecture: '386' };
    case 'ppc64':
      // AIX is big-endian; Node on Linux ppc64 is little-endian only.
      return { os, architecture: os === 'aix' ? 'ppc64' : 'ppc64le' };
    case 'mipsel':
      return { os, architecture: 'mipsle' };
    case 'mips64el':
      return { os, architecture: 'mips64le' };
    default:
      return { os, architecture: nodeArch };
  }
}

/**
 * The platform of the machine this process runs on, e.g.
 * `{ os: 'linux', architecture: 'amd64' }` or
 * `{ os: 'linux', architecture: 'arm64', variant: 'v8' }`. A fresh object each call.
 *
 * @example
 * const platform = hostPlatform();
 * formatPlatform(platform); // 'linux/amd64' on a typical x86-64 host
 */
export function hostPlatform(): Platform {
  const variables = process.config?.variables as Record<string, unknown> | undefined;
  const armVersion = variables?.['arm_version'];
  return platformFromNode(
    process.platform,
    process.arch,
    armVersion === undefined || armVersion === null ? undefined : String(armVersion),
  );
}

/**
 * The canonical form of a platform, used to compare platforms (containerd's
 * rules): lowercase names, aliases resolved (`x86_64` → `amd64`, `aarch64` →
 * `arm64`, `armhf` → `arm/v7`), and default variants made implicit or explicit
 * consistently: `arm64/v8` → `arm64`, `amd64/v1` → `amd64`, `arm` → `arm/v7`,
 * numeric variants prefixed with `v`.
 *
 * @example
 * normalizePlatform({ os: 'Linux', architecture: 'aarch64', variant: '8' }); // { os: 'linux', architecture: 'arm64' }
 */
export function normalizePlatform(platform: Platform): Platform {
  const { os, architecture, variant } = resolveNames(platform.os, platform.architecture, platform.variant);
  let canonicalVariant = variant;
  switch (architecture) {
    case 'arm64':
      if (variant === 'v8' || variant === 'v8.0') canonicalVariant = undefined;
      else if (variant === 'v9.0') canonicalVariant = 'v9';
      break;
    case 'amd64':
      if (variant === 'v1') canonicalVariant = undefined;
      break;
    case 'arm':
      if (variant === undefined) canonicalVariant = 'v7';
      break;
  }
  const result: Platform = { ...platform, os, architecture };
  if (canonicalVariant === undefined) delete result.variant;
  else result.variant = canonicalVariant;
  return result;
}

/**
 * Whether a candidate platform (an index entry's, an image config's) is the
 * platform wanted: the same OS, architecture and variant once both are
 * normalised (see {@link normalizePlatform}), and the same `os.version` when the
 * wanted platform names one. No cross-architecture fallback: `linux/amd64`
 * does not match `linux/386`, nor `linux/arm/v7` match `linux/arm/v6`.
 *
 * @example
 * const entry = index.manifests.find((d) => d.platform && platformMatches(hostPlatform(), d.platform));
 */
export function platformMatches(want: Platform, candidate: Platform): boolean {
  const w = normalizePlatform(want);
  const c = normalizePlatform(candidate);
  return (
    w.os === c.os &&
    w.architecture === c.architecture &&
    w.variant === c.variant &&
    (w['os.version'] === undefined || w['os.version'] === c['os.version'])
  );
}

/**
 * A platform as `os/architecture[/variant]`, the form of Docker's `--platform`.
 *
 * @example
 * formatPlatform({ os: 'linux', architecture: 'arm64', variant: 'v8' }); // 'linux/arm64/v8'
 */
export function formatPlatform(platform: Platform): string {
  const variant = platform.variant ? `/${platform.variant}` : '';
  return `${platform.os}/${platform.architecture}${variant}`;
}

/**
 * Parses a platform in Docker's `--platform` form: `os/architecture` or
 * `os/architecture/variant`. Names are lowercased and aliases resolved
 * (`linux/x86_64` → `linux/amd64`, `linux/aarch64` → `linux/arm64`); a given
 * variant is kept as written (a bare number gets a `v`), and none is added.
 * A single component is accepted as Docker accepts it: a known OS alone means
 * that OS on the host's architecture; a known architecture alone means Linux
 * on that architecture.
 *
 * @throws {InvalidArgumentError} when the string is empty, has more than three
 *   components, an empty component or one with characters outside
 *   `[A-Za-z0-9_.-]`, or is a single component that is neither a known OS nor a
 *   known architecture.
 * @example
 * parsePlatform('linux/arm64/v8'); // { os: 'linux', architecture: 'arm64', variant: 'v8' }
 * parsePlatform('arm64');          // { os: 'linux', architecture: 'arm64' }
 */
export function parsePlatform(s: string): Platform {
  const fail = (problem: string): never => {
    throw new InvalidArgumentError(`invalid platform ${JSON.stringify(s)}: ${problem}`);
  };
  if (typeof s !== 'string') {
    throw new InvalidArgumentError(`invalid platform: expected a string, got ${typeof s}`);
  }
  if (s === '') fail('empty');
  const parts = s.split('/');
  if (parts.length > 3) fail('too many components (expected os/architecture[/variant])');
  const names = ['os', 'architecture', 'variant'];
  for (const [i, part] of parts.entries()) {
    if (part === '') fail(`empty ${names[i]}`);
    if (!COMPONENT_RE.test(part)) fail(`invalid ${names[i]} ${JSON.stringify(part)}`);
  }

  if (parts.length === 1) {
    const only = parts[0]!.toLowerCase();
    const asOs = Object.hasOwn(OS_ALIASES, only) ? OS_ALIASES[only]! : only;
    if (KNOWN_OS.has(asOs)) {
      const host = hostPlatform();
      return withVariant({ os: asOs, architecture: host.architecture }, host.variant);
    }
    const asArch = resolveNames('linux', only, undefined);
    if (KNOWN_ARCH.has(asArch.architecture)) return withVariant(asArch, asArch.variant);
    return fail('not a known operating system or architecture (expected os/architecture[/variant])');
  }

  const resolved = resolveNames(parts[0]!, parts[1]!, parts[2]);
  return withVariant({ os: resolved.os, architecture: resolved.architecture }, resolved.variant);
}

function withVariant(platform: Platform, variant: string | undefined): Platform {
  const result: Platform = { os: platform.os, architecture: platform.architecture };
  if (variant !== undefined) result.variant = variant;
  return result;
}

/** Lowercases, resolves OS and architecture aliases, and prefixes a numeric variant with `v`. */
function resolveNames(
  os: string,
  architecture: string,
  variant: string | undefined,
): { os: string; architecture: string; variant: string | undefined } {
  const lowerOs = os.toLowerCase();
  const lowerArch = architecture.toLowerCase();
  const alias = Object.hasOwn(ARCH_ALIASES, lowerArch) ? ARCH_ALIASES[lowerArch] : undefined;
  let v = variant === undefined || variant === '' ? undefined : variant.toLowerCase();
  if (v !== undefined && /^\d/.test(v)) v = `v${v}`;
  return {
    os: Object.hasOwn(OS_ALIASES, lowerOs) ? OS_ALIASES[lowerOs]! : lowerOs,
    architecture: alias?.architecture ?? lowerArch,
    variant: v ?? alias?.variant,
  };
}

/**
 * A platform option as every dockless call takes it: a string
 * (`"linux/arm64/v8"`, parsed by {@link parsePlatform}) or a {@link Platform}
 * object; `undefined` means this host's ({@link hostPlatform}).
 *
 * @param context names the call in the error (`pull alpine:3`).
 * @throws {InvalidArgumentError} for a malformed string or object.
 */
export function toPlatform(option: Platform | string | undefined, context: string): Platform {
  if (option === undefined) return hostPlatform();
  if (typeof option === 'string') return parsePlatform(option);
  if (typeof option !== 'object' || option === null || typeof option.os !== 'string' || typeof option.architecture !== 'string') {
    throw new InvalidArgumentError(`${context}: platform must be "os/arch[/variant]" or { os, architecture, variant? }`);
  }
  return option;
}
