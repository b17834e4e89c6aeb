/**
 * Registry authentication: anonymous, Basic, and Bearer tokens fetched from
 * the realm a registry names in its `WWW-Authenticate` challenge, cached per
 * scope until shortly before they expire, and fetched again on a 401.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import createDebug from 'debug';
import { PermissionError } from '../errors.js';
import type { FoundCredentials } from './auth-config.js';
import { httpRequest, readBody } from './http.js';
import { challengeScopes, type AuthChallenge } from './www-authenticate.js';

const debug = createDebug('dockless:transfer');

/** Tokens are renewed this long before they expire. */
const EXPIRY_MARGIN_MS = 10_000;
/** The lifetime the token spec assumes when the server does not say. */
const DEFAULT_TOKEN_LIFETIME_S = 60;
const MAX_TOKEN_RESPONSE = 1 << 20;

interface CachedToken {
  token: string;
  expires: number;
}

// Shared by every client in the process: a pull and the push after it reuse tokens.
const tokenCache = new Map<string, CachedToken>();
const inflight = new Map<string, Promise<CachedToken>>();

/** What an {@link Authenticator} needs to know about the registry and the credentials. */
export interface AuthenticatorOptions {
  /** The registry as references name it, for messages: `localhost:5000`. */
  registry: string;
  /** The credentials to use, and where they came from; `undefined` for anonymous access. */
  credentials: FoundCredentials | undefined;
  /** Where credentials were looked for, for the message of a 401 without any. */
  lookedIn: string[];
  /** Auth files that name a credential helper for this registry, which is not run. */
  helpers: string[];
  /** Prefix of error messages, e.g. `pull localhost:5000/app:1`. */
  context: string;
  /** Whether the token realm may be plain HTTP (the registry is loopback or insecure). */
  allowHttpRealm: boolean;
}

/**
 * Produces the `Authorization` header of each request, from the challenge
 * the registry sent (on its `/v2/` ping or on a 401).
 */
export class Authenticator {
  readonly #options: AuthenticatorOptions;
  #challenge: AuthChallenge | undefined;

  constructor(options: AuthenticatorOptions) {
    this.#options = options;
  }

  /** Whether the registry asked for authentication at all. */
  get required(): boolean {
    return this.#challenge !== undefined;
  }

  /** Records the challenge of a 401 (from the ping or any request); Bearer is preferred over Basic. */
  setChallenge(challenges: AuthChallenge[]): void {
    const challenge =
      challenges.find((c) => c.scheme === 'bearer' && c.params['realm'] !== undefined) ??
      challenges.find((c) => c.scheme === 'basic');
    if (challenge !== undefined) this.#challenge = challenge;
  }

  /**
   * The `Authorization` header for a request needing `scopes`, or
   * `undefined` for anonymous access. Bearer tokens come from the cache when
   * fresh.
   *
   * @throws {PermissionError} when the token endpoint refuses the credentials (or anonymous access).
   */
  async header(scopes: string[], signal: AbortSignal | undefined): Promise<string | undefined> {
    const challenge = this.#challenge;
    if (challenge === undefined) return undefined;
    const found = this.#options.credentials;
    if (challenge.scheme === 'basic') {
      const c = found?.credentials;
      if (c?.username === undefined) return undefined;
      return `Basic ${Buffer.from(`${c.username}:${c.password ?? ''}`).toString('base64')}`;
    }
    if (found?.credentials.registryToken !== undefined) return `Bearer ${found.credentials.registryToken}`;
    const key = this.#cacheKey(challenge, scopes);
    const cached = tokenCache.get(key);
    if (cached !== undefined && cached.expires > Date.now()) return `Bearer ${cached.token}`;
    // Parallel requests for one scope share one token request.
    let pending = inflight.get(key);
    if (pending === undefined) {
      pending = this.#fetchToken(challenge, scopes, signal).finally(() => inflight.delete(key));
      inflight.set(key, pending);
    }
    const token = await pending;
    tokenCache.set(key, token);
    return `Bearer ${token.token}`;
  }

  /**
   * Handles a 401: forgets the token used for `scopes`, takes the new
   * challenge, and says whether trying again can help (it cannot when the
   * registry wants Basic auth and there are no credentials).
   *
   * @returns the scopes to ask for on the retry (`scopes` plus any the challenge names).
   */
  unauthorized(challenges: AuthChallenge[], scopes: string[]): { retry: boolean; scopes: string[] } {
    const previous = this.#challenge;
    if (previous !== undefined) tokenCache.delete(this.#cacheKey(previous, scopes));
    this.setChallenge(challenges);
    const challenge = this.#challenge;
    if (challenge === undefined) return { retry: false, scopes };
    const merged = [...new Set([...scopes, ...challengeScopes(challenge)])];
    if (challenge.scheme === 'basic') {
      // The first 401 tells us to send Basic credentials; with none, or after they were sent, retrying is useless.
      return { retry: previous === undefined && this.#options.credentials?.credentials.username !== undefined, scopes: merged };
    }
    return { retry: true, scopes: merged };
  }

  /**
   * The error for a request still refused after authenticating: it names
   * the registry and which credentials are missing or were refused.
   */
  refused(status: number, detail: string): PermissionError {
    const { registry, credentials, lookedIn, helpers, context } = this.#options;
    const what = status === 403 ? 'denied access' : 'requires authentication';
    let message: string;
    if (credentials === undefined) {
      message = `${context}: registry ${registry} ${what} and no credentials were found for it (looked in ${lookedIn.join(', ')})`;
      if (helpers.length > 0) message += `; ${helpers.join(', ')} name a credential helper, which dockless does not run`;
    } else {
      const who = credentials.credentials.username !== undefined ? `user "${credentials.credentials.username}"` : 'the token';
      message = `${context}: registry ${registry} ${what} for ${who} from ${credentials.source}`;
    }
    if (detail !== '') message += `: ${detail}`;
    return new PermissionError(message);
  }

  #cacheKey(challenge: AuthChallenge, scopes: string[]): string {
    const c = this.#options.credentials?.credentials;
    const who = c === undefined ? '' : createHash('sha256').update(JSON.stringify([c.username, c.password, c.identityToken])).digest('hex');
    return JSON.stringify([challenge.params['realm'], challenge.params['service'], [...scopes].sort(), who]);
  }

  async #fetchToken(challenge: AuthChallenge, scopes: string[], signal: AbortSignal | undefined): Promise<CachedToken> {
    const { context, registry } = this.#options;
    const realm = challenge.params['realm']!;
    let url: URL;
    try {
      url = new URL(realm);
    } catch (cause) {
      throw new PermissionError(`${context}: registry ${registry} names an invalid token realm ${JSON.stringify(realm)}`, { cause });
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.#options.allowHttpRealm)) {
      throw new PermissionError(`${context}: registry ${registry} names a token realm that is not https: ${realm}`);
    }
    const service = challenge.params['service'];
    const c = this.#options.credentials?.credentials;
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': USER_AGENT };
    let response;
    if (c?.identityToken !== undefined) {
      // OAuth2 refresh-token grant, as Docker does with an identity token.
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: c.identityToken, client_id: 'dockless' });
      if (service !== undefined) form.set('service', service);
      if (scopes.length > 0) form.set('scope', scopes.join(' '));
      headers['content-type'] = 'application/x-www-form-urlencoded';
      response = await httpRequest({ method: 'POST', url, headers, body: Buffer.from(form.toString()), signal });
    } else {
      if (service !== undefined) url.searchParams.set('service', service);
      for (const scope of scopes) url.searchParams.append('scope', scope);
      if (c?.username !== undefined) {
        url.searchParams.set('account', c.username);
        headers['authorization'] = `Basic ${Buffer.from(`${c.username}:${c.password ?? ''}`).toString('base64')}`;
      }
      response = await httpRequest({ method: 'GET', url, headers, signal });
    }
    const body = await readBody(response.body, MAX_TOKEN_RESPONSE);
    if (response.status === 401 || response.status === 403) {
      throw this.refused(response.status, `token endpoint ${url.host} answered ${response.status}`);
    }
    if (response.status !== 200) {
      throw new PermissionError(`${context}: token endpoint ${url.host} of registry ${registry} answered ${response.status}`);
    }
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
    } catch (cause) {
      throw new PermissionError(`${context}: token endpoint ${url.host} answered with invalid JSON`, { cause });
    }
    const token =
      typeof parsed.token === 'string' && parsed.token !== ''
        ? parsed.token
        : typeof parsed.access_token === 'string'
          ? parsed.access_token
          : undefined;
    if (token === undefined || token === '') {
      throw new PermissionError(`${context}: token endpoint ${url.host} answered without a token`);
    }
    const lifetime = typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : DEFAULT_TOKEN_LIFETIME_S;
    const issued = typeof parsed.issued_at === 'string' ? Date.parse(parsed.issued_at) : NaN;
    const start = Number.isFinite(issued) && issued <= Date.now() ? issued : Date.now();
    debug('%s: token for %s (%d s)', registry, scopes.join(' '), lifetime);
    const margin = Math.min(EXPIRY_MARGIN_MS, lifetime * 500);
    return { token, expires: start + lifetime * 1000 - margin };
  }
}

/** The `User-Agent` of every request. */
export const USER_AGENT = 'dockless/0.1';
