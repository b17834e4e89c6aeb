/**
 * `docker login` / `docker logout` for the library: check credentials against
 * the registry, then keep them in the first auth file the library reads
 * ({@link authFiles}: `$REGISTRY_AUTH_FILE`, else
 * `${XDG_RUNTIME_DIR}/containers/auth.json`, else
 * `$XDG_CONFIG_HOME/containers/auth.json`), in the `auths` format Docker and
 * Podman share, so pulls and pushes find them.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { InvalidArgumentError, IOError } from '../errors.js';
import { ensureDir, writeFileAtomic } from '../util/index.js';
import { authFiles, type AuthFileOptions, type RegistryCredentials } from './auth-config.js';
import { RegistryClient } from './registry-client.js';

/** Options of {@link login} and {@link logout}. */
export interface LoginOptions {
  /** Registries that may be reached over plain HTTP (loopback ones always may). */
  insecure?: string[];
  /** Where the auth files are (the environment and home directory). */
  authFiles?: AuthFileOptions;
  /** Cancels the check. */
  signal?: AbortSignal;
}

/** What {@link login} did. */
export interface LoginResult {
  /** The auth file the credentials were written to. */
  file: string;
}

interface AuthFileContent {
  auths?: Record<string, Record<string, unknown>>;
  [key: string]: unknown;
}

function registryKey(registry: string): string {
  const r = registry.trim().replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '');
  if (r === '' || r.includes('/')) throw new InvalidArgumentError(`login: \`${registry}\` is not a registry host (host or host:port)`);
  return r === 'index.docker.io' || r === 'registry-1.docker.io' ? 'docker.io' : r;
}

async function readAuthFile(path: string): Promise<AuthFileContent> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new IOError(`read auth file \`${path}\`: ${(error as Error).message}`, { cause: error, syscall: 'open', errnoCode: (error as NodeJS.ErrnoException).code ?? 'EIO' });
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as AuthFileContent;
  } catch (error) {
    throw new InvalidArgumentError(`auth file \`${path}\` is not valid JSON (${(error as Error).message}); fix or remove it`);
  }
}

/**
 * Checks `credentials` against the registry (a `GET /v2/` that must succeed
 * with them) and saves them for later pulls and pushes. Nothing is written
 * when the registry refuses them.
 *
 * @throws {PermissionError} when the registry refuses the credentials.
 * @throws {UnavailableError} when the registry cannot be reached.
 * @example
 * ```ts
 * await login('localhost:5000', { username: 'ci', password: process.env.TOKEN });
 * ```
 */
export async function login(registry: string, credentials: RegistryCredentials, options: LoginOptions = {}): Promise<LoginResult> {
  const key = registryKey(registry);
  if (credentials.username === undefined || credentials.username === '') throw new InvalidArgumentError('login: a username is required');
  const client = await RegistryClient.connect({
    registry: key,
    credentials,
    insecure: options.insecure,
    context: `login ${key}`,
    signal: options.signal,
    authFiles: options.authFiles,
  });
  const response = await client.send({ method: 'GET', target: '/v2/', scopes: [], what: 'login', expect: [200] });
  response.body.resume();
  const file = authFiles(options.authFiles)[0]!.path;
  const content = await readAuthFile(file);
  const auth = Buffer.from(`${credentials.username}:${credentials.password ?? ''}`).toString('base64');
  content.auths = { ...content.auths, [key]: { auth } };
  await ensureDir(dirname(file), 0o700);
  await writeFileAtomic(file, `${JSON.stringify(content, null, '\t')}\n`, undefined, { mode: 0o600 });
  return { file };
}

/**
 * Removes the saved credentials of a registry from every auth file the
 * library reads, as `docker logout` does.
 *
 * @returns the files they were removed from (empty when there were none).
 */
export async function logout(registry: string, options: LoginOptions = {}): Promise<string[]> {
  const key = registryKey(registry);
  const changed: string[] = [];
  for (const { path } of authFiles(options.authFiles)) {
    const content = await readAuthFile(path);
    const auths = content.auths ?? {};
    const keys = Object.keys(auths).filter((k) => k.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '') === key || (key === 'docker.io' && /index\.docker\.io/.test(k)));
    if (keys.length === 0) continue;
    for (const k of keys) delete auths[k];
    await writeFileAtomic(path, `${JSON.stringify(content, null, '\t')}\n`, undefined, { mode: 0o600 });
    changed.push(path);
  }
  return changed;
}
