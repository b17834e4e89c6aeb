/**
 * Registry credentials from the files Docker and Podman keep them in: the
 * `auths` map of `$REGISTRY_AUTH_FILE`, `${XDG_RUNTIME_DIR}/containers/auth.json`
 * (else `$XDG_CONFIG_HOME/containers/auth.json`) and `~/.docker/config.json`
 * (`$DOCKER_CONFIG/config.json`). Credential helpers (`credsStore`,
 * `credHelpers`) are not run.
 *
 * @module
 */

import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import createDebug from 'debug';

const debug = createDebug('dockless:transfer');

/**
 * Credentials for one registry. Give `username` and `password` (the registry's
 * own Basic auth, or exchanged for a Bearer token), or an `identityToken` (an
 * OAuth2 refresh token, as `docker login` stores for some registries), or a
 * `registryToken` (a Bearer token sent as it is).
 */
export interface RegistryCredentials {
  /** The user name. */
  username?: string;
  /** The password or personal access token. */
  password?: string;
  /** An OAuth2 refresh token exchanged for access tokens at the registry's token endpoint. */
  identityToken?: string;
  /** A ready Bearer token, sent as it is. */
  registryToken?: string;
}

/** Credentials and where they were found, for error messages. */
export interface FoundCredentials {
  credentials: RegistryCredentials;
  /** `options.credentials`, or the file they came from. */
  source: string;
}

/** One file looked in. */
export interface AuthFile {
  /** The absolute path. */
  path: string;
  /** How it is named in messages, e.g. `$REGISTRY_AUTH_FILE (/run/a.json)`. */
  label: string;
}

/** Where to look; the defaults are the process's. */
export interface AuthFileOptions {
  /** The environment to read `REGISTRY_AUTH_FILE`, `XDG_RUNTIME_DIR`, `XDG_CONFIG_HOME`, `DOCKER_CONFIG` from. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** The home directory. @default os.homedir() */
  home?: string;
}

/** The result of a lookup: what was found, and every file looked in. */
export interface CredentialLookup {
  found?: FoundCredentials;
  /** The files looked in, in order. */
  files: AuthFile[];
  /** Files that name a credential helper for this registry, which dockless does not run. */
  helpers: string[];
}

interface AuthEntry {
  auth?: unknown;
  username?: unknown;
  password?: unknown;
  identitytoken?: unknown;
  registrytoken?: unknown;
}

interface AuthFileContent {
  auths?: Record<string, AuthEntry>;
  credsStore?: unknown;
  credHelpers?: Record<string, unknown>;
}

const DOCKER_HUB_KEYS = ['docker.io', 'index.docker.io', 'registry-1.docker.io'];

/**
 * The auth files, in the order they are consulted: `$REGISTRY_AUTH_FILE`;
 * `${XDG_RUNTIME_DIR}/containers/auth.json`; `$XDG_CONFIG_HOME/containers/auth.json`
 * (`~/.config/containers/auth.json`); `$DOCKER_CONFIG/config.json`
 * (`~/.docker/config.json`).
 *
 * @example
 * ```ts
 * authFiles({ env: { REGISTRY_AUTH_FILE: '/tmp/auth.json' }, home: '/home/u' }).map((f) => f.path);
 * // ['/tmp/auth.json', '/home/u/.config/containers/auth.json', '/home/u/.docker/config.json']
 * ```
 */
export function authFiles(options: AuthFileOptions = {}): AuthFile[] {
  const env = options.env ?? process.env;
  const home = options.home ?? homedir();
  const files: AuthFile[] = [];
  if (env['REGISTRY_AUTH_FILE']) {
    files.push({ path: env['REGISTRY_AUTH_FILE'], label: `$REGISTRY_AUTH_FILE (${env['REGISTRY_AUTH_FILE']})` });
  }
  if (env['XDG_RUNTIME_DIR']) {
    const path = join(env['XDG_RUNTIME_DIR'], 'containers', 'auth.json');
    files.push({ path, label: path });
  }
  const configHome = env['XDG_CONFIG_HOME'] || join(home, '.config');
  const podman = join(configHome, 'containers', 'auth.json');
  files.push({ path: podman, label: podman });
  const docker = join(env['DOCKER_CONFIG'] || join(home, '.docker'), 'config.json');
  files.push({ path: docker, label: docker });
  return files;
}

/**
 * Finds the credentials for a registry (and repository) in the auth files:
 * the first file with a matching `auths` entry wins; within a file the most
 * specific key wins (`quay.io/org/repo` over `quay.io/org` over `quay.io`).
 * Keys may carry a scheme or Docker's legacy `/v1/` suffix
 * (`https://index.docker.io/v1/` is Docker Hub). Unreadable or malformed
 * files are skipped (with a `dockless:transfer` debug line).
 *
 * @param registry the registry host as references name it (`docker.io`, `localhost:5000`).
 * @param repository the repository path (`library/alpine`), for per-repository entries.
 * @example
 * ```ts
 * const { found } = await lookupCredentials('ghcr.io', 'acme/app');
 * if (found) console.log(`using ${found.credentials.username} from ${found.source}`);
 * ```
 */
export async function lookupCredentials(
  registry: string,
  repository?: string,
  options: AuthFileOptions = {},
): Promise<CredentialLookup> {
  const files = authFiles(options);
  const helpers: string[] = [];
  for (const file of files) {
    let content: AuthFileContent;
    try {
      content = JSON.parse(await readFile(file.path, 'utf8')) as AuthFileContent;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') debug('auth file %s skipped: %s', file.path, (err as Error).message);
      continue;
    }
    if (typeof content !== 'object' || content === null) continue;
    const credentials = matchAuths(content.auths, registry, repository);
    if (credentials !== undefined) return { found: { credentials, source: file.label }, files, helpers };
    if (namesHelper(content, registry)) helpers.push(file.label);
  }
  return { files, helpers };
}

/**
 * The credentials of the best-matching entry of an `auths` map, or
 * `undefined` when none matches or the matching entries are empty (as Docker
 * leaves them when a credential helper holds the secret).
 *
 * @example
 * ```ts
 * matchAuths({ 'https://index.docker.io/v1/': { auth: 'dXNlcjpwYXNz' } }, 'docker.io', 'library/alpine');
 * // { username: 'user', password: 'pass' }
 * ```
 */
export function matchAuths(
  auths: Record<string, AuthEntry> | undefined,
  registry: string,
  repository?: string,
): RegistryCredentials | undefined {
  if (typeof auths !== 'object' || auths === null) return undefined;
  const wanted = candidateKeys(registry, repository);
  const byKey = new Map<string, AuthEntry>();
  for (const [key, entry] of Object.entries(auths)) {
    const normalised = normaliseKey(key);
    // An exact key wins over one that only normalises to the same name.
    if (!byKey.has(normalised) || key === normalised) byKey.set(normalised, entry);
  }
  for (const key of wanted) {
    const entry = byKey.get(key);
    if (entry === undefined) continue;
    const credentials = decodeEntry(entry);
    if (credentials !== undefined) return credentials;
  }
  return undefined;
}

/** The keys that name `registry/repository`, most specific first. */
function candidateKeys(registry: string, repository: string | undefined): string[] {
  const hosts = DOCKER_HUB_KEYS.includes(registry) ? DOCKER_HUB_KEYS : [registry];
  const keys: string[] = [];
  const parts = repository ? repository.split('/') : [];
  for (let i = parts.length; i >= 1; i--) {
    for (const host of hosts) keys.push(`${host}/${parts.slice(0, i).join('/')}`);
  }
  keys.push(...hosts);
  return keys;
}

/** `https://host/v1/` → `host`; `http://host/org` → `host/org`; `host` → `host`. */
function normaliseKey(key: string): string {
  let k = key.trim().replace(/^[a-z]+:\/\//i, '');
  k = k.replace(/\/+$/, '');
  // Docker's legacy API path is no repository.
  k = k.replace(/\/v[12]$/, '');
  return k;
}

function decodeEntry(entry: AuthEntry): RegistryCredentials | undefined {
  if (typeof entry !== 'object' || entry === null) return undefined;
  const out: RegistryCredentials = {};
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) {
      out.username = decoded.slice(0, colon);
      out.password = decoded.slice(colon + 1);
    }
  }
  if (out.username === undefined && typeof entry.username === 'string' && entry.username !== '') {
    out.username = entry.username;
    if (typeof entry.password === 'string') out.password = entry.password;
  }
  if (typeof entry.identitytoken === 'string' && entry.identitytoken !== '') out.identityToken = entry.identitytoken;
  if (typeof entry.registrytoken === 'string' && entry.registrytoken !== '') out.registryToken = entry.registrytoken;
  return Object.keys(out).length === 0 ? undefined : out;
}

function namesHelper(content: AuthFileContent, registry: string): boolean {
  if (typeof content.credsStore === 'string' && content.credsStore !== '') return true;
  const helpers = content.credHelpers;
  if (typeof helpers !== 'object' || helpers === null) return false;
  const hosts = DOCKER_HUB_KEYS.includes(registry) ? DOCKER_HUB_KEYS : [registry];
  return Object.keys(helpers).some((k) => hosts.includes(normaliseKey(k)));
}
