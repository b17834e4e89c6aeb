/**
 * A client of one registry's HTTP API (the OCI distribution spec, which is
 * Docker's registry API v2): manifests and blobs, uploads and mounts, with
 * authentication, retries on 5xx and connection errors, and typed errors.
 *
 * Past ~600 lines on purpose: it is one class over one API, whose requests
 * share the retry, resume and error-mapping state of one connection; the
 * authentication (auth.ts), the challenge parser (www-authenticate.ts) and
 * the HTTP layer (http.ts) are already apart.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import createDebug from 'debug';
import {
  AbortError,
  DigestMismatchError,
  DocklessError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
} from '../errors.js';
import {
  baseMediaType,
  type Digest,
  digestAlgorithm,
  type DigestAlgorithm,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_DOCKER_MANIFEST_SCHEMA1_SIGNED,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  parseDigest,
  shortDigest,
} from '../oci/index.js';
import { lookupCredentials, type AuthFileOptions, type FoundCredentials, type RegistryCredentials } from './auth-config.js';
import { Authenticator, USER_AGENT } from './auth.js';
import { httpRequest, readBody, type HttpRequest, type HttpResponse } from './http.js';
import { isRetryableNetworkError, isRetryableStatus, MAX_ATTEMPTS, retryDelay, wait } from './retry.js';
import { parseWwwAuthenticate } from './www-authenticate.js';

const debug = createDebug('dockless:transfer');

/** The largest manifest or index accepted (containerd's limit). */
export const MAX_MANIFEST_SIZE = 4 << 20;
const MAX_ERROR_BODY = 64 << 10;

/** The manifest media types a pull accepts, most wanted first. */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_OCI_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST,
  // Asked for only to recognise it and refuse it clearly.
  MEDIA_TYPE_DOCKER_MANIFEST_SCHEMA1_SIGNED,
].join(', ');

/** What a registry client needs. */
export interface RegistryClientOptions {
  /** The registry as references name it: `docker.io`, `ghcr.io`, `localhost:5000`. */
  registry: string;
  /** The repository the client works on, for per-repository credentials in auth files. */
  repository?: string;
  /** Credentials to use instead of the auth files'. */
  credentials?: RegistryCredentials | undefined;
  /**
   * Registries (`host` or `host:port`) that may be reached over plain HTTP
   * or with an unverified TLS certificate. Loopback registries always may.
   */
  insecure?: readonly string[] | undefined;
  /** Prefix of error messages: `pull localhost:5000/app:1`. */
  context: string;
  signal?: AbortSignal | undefined;
  /** Where auth files are looked for (tests). */
  authFiles?: AuthFileOptions | undefined;
}

/** A manifest or index fetched from a registry, verified. */
export interface FetchedManifest {
  /** Its exact bytes. */
  bytes: Buffer;
  /** Its media type (from the document, else the `Content-Type`). */
  mediaType: string;
  /** The digest of `bytes`, by the algorithm of the digest it was fetched by (sha256 for a tag). */
  digest: Digest;
}

/** A blob download in progress. */
export interface BlobDownload {
  /** The body; read it to the end or destroy it. */
  body: Readable;
  /** The offset of the body's first byte in the blob (0 unless a range was granted). */
  start: number;
}

/** What to request, for {@link RegistryClient.send}. */
interface Operation {
  method: HttpRequest['method'];
  /** A path below the API root (`/v2/…`), or an absolute URL (an upload location). */
  target: string | URL;
  headers?: Record<string, string>;
  body?: HttpRequest['body'];
  /** The scopes the request needs. */
  scopes: string[];
  /** What the request is about, for messages: `manifest app:1`. */
  what: string;
  /** Retry on 5xx and connection errors. @default true */
  retry?: boolean;
  /** Statuses returned to the caller as they are (others become errors). */
  expect: number[];
}

/** Docker Hub's API is at another host than its name. */
function apiHost(registry: string): string {
  return registry === 'docker.io' ? 'registry-1.docker.io' : registry;
}

/** Whether a registry host is on the loopback interface. */
export function isLoopback(registry: string): boolean {
  const host = registry.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Whether an error is a TLS failure against a server that may be speaking plain HTTP. */
function isTlsFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return (
    typeof code === 'string' &&
    (code.startsWith('ERR_SSL_') || code === 'EPROTO' || code === 'ECONNRESET' || code.includes('CERT') || code === 'ERR_TLS_CERT_ALTNAME_INVALID')
  );
}

/**
 * A client of one registry. Create it with {@link RegistryClient.connect},
 * which finds the credentials and pings `/v2/` to learn the scheme (HTTPS,
 * or plain HTTP for loopback and insecure registries) and the auth
 * challenge.
 */
export class RegistryClient {
  /** The registry as references name it. */
  readonly registry: string;
  readonly #context: string;
  readonly #signal: AbortSignal | undefined;
  readonly #auth: Authenticator;
  readonly #insecure: boolean;
  #base!: URL;

  private constructor(options: RegistryClientOptions, auth: Authenticator, insecure: boolean) {
    this.registry = options.registry;
    this.#context = options.context;
    this.#signal = options.signal;
    this.#auth = auth;
    this.#insecure = insecure;
  }

  /**
   * Finds credentials (options, then auth files), pings the registry and
   * returns a client ready for requests.
   *
   * @throws {UnavailableError} naming the registry when it cannot be reached.
   * @throws {PermissionError} when the ping itself is refused.
   * @throws {AbortError} when `signal` aborts.
   */
  static async connect(options: RegistryClientOptions): Promise<RegistryClient> {
    const lookup = await lookupCredentials(options.registry, options.repository, options.authFiles);
    let credentials: FoundCredentials | undefined = lookup.found;
    if (options.credentials !== undefined) credentials = { credentials: options.credentials, source: 'options.credentials' };
    const insecure =
      isLoopback(options.registry) ||
      (options.insecure ?? []).some((r) => r === options.registry || r === options.registry.replace(/:\d+$/, ''));
    const auth = new Authenticator({
      registry: options.registry,
      credentials,
      lookedIn: ['options.credentials', ...lookup.files.map((f) => f.label)],
      helpers: lookup.helpers,
      context: options.context,
      allowHttpRealm: insecure,
    });
    const client = new RegistryClient(options, auth, insecure);
    await client.#ping();
    return client;
  }

  /** The scope string for a repository: `repository:app:pull`. */
  static scope(repository: string, actions: string): string {
    return `repository:${repository}:${actions}`;
  }

  // ------------------------------------------------------------- manifests

  /**
   * Fetches a manifest or index by tag or digest, verifies it (against the
   * digest it was asked by, else against the registry's
   * `Docker-Content-Digest`), and returns its bytes.
   *
   * @throws {NotFoundError} when the registry has no such manifest (or repository).
   * @throws {DigestMismatchError} when the content does not match the digest.
   * @throws {InvalidArgumentError} when it is a Docker schema 1 manifest or too large.
   */
  async getManifest(repository: string, reference: string, scopes: string[]): Promise<FetchedManifest> {
    const what = `manifest ${repository}${reference.includes(':') ? '@' : ':'}${reference}`;
    const response = await this.send({
      method: 'GET',
      target: `/v2/${repository}/manifests/${reference}`,
      headers: { accept: MANIFEST_ACCEPT },
      scopes,
      what,
      expect: [200],
    });
    let bytes: Buffer;
    try {
      bytes = await readBody(response.body, MAX_MANIFEST_SIZE);
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ERR_BODY_TOO_LARGE') {
        throw new InvalidArgumentError(`${this.#context}: ${what} is larger than ${MAX_MANIFEST_SIZE} bytes`, { cause: err });
      }
      throw this.#networkError(err, what);
    }
    const byDigest = reference.includes(':') ? parseDigest(reference) : undefined;
    // Named as it was asked for: a pull by `@sha512:…` stores, leases and reports that digest.
    const digest = digestOf(bytes, byDigest === undefined ? 'sha256' : digestAlgorithm(byDigest));
    const expected = byDigest ?? headerDigest(response);
    if (expected !== undefined) {
      const actual = digestAlgorithm(expected) === digestAlgorithm(digest) ? digest : digestOf(bytes, digestAlgorithm(expected));
      if (actual !== expected) {
        throw new DigestMismatchError(`${this.#context}: ${what}: digest mismatch: content is ${actual}`, { expected, actual });
      }
    }
    let mediaType = baseMediaType(String(response.headers['content-type'] ?? ''));
    try {
      const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown; schemaVersion?: unknown };
      if (typeof doc.mediaType === 'string') mediaType = doc.mediaType;
      if (doc.schemaVersion === 1) mediaType = MEDIA_TYPE_DOCKER_MANIFEST_SCHEMA1_SIGNED;
    } catch (cause) {
      throw new InvalidArgumentError(`${this.#context}: ${what} is not valid JSON`, { cause });
    }
    if (mediaType === MEDIA_TYPE_DOCKER_MANIFEST_SCHEMA1_SIGNED || mediaType === 'application/vnd.docker.distribution.manifest.v1+json') {
      throw new InvalidArgumentError(
        `${this.#context}: ${what} is a Docker schema 1 manifest, which is obsolete and not supported; push the image again with a current tool`,
      );
    }
    return { bytes, mediaType, digest };
  }

  /**
   * Uploads a manifest or index under a tag or digest.
   *
   * @returns the digest the registry names it by.
   * @throws {InvalidArgumentError} when the registry refuses it (e.g. a blob it names is missing).
   */
  async putManifest(repository: string, reference: string, bytes: Buffer, mediaType: string, scopes: string[]): Promise<Digest> {
    const what = `manifest ${repository}${reference.includes(':') ? '@' : ':'}${reference}`;
    const response = await this.send({
      method: 'PUT',
      target: `/v2/${repository}/manifests/${reference}`,
      headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
      body: bytes,
      scopes,
      what,
      expect: [200, 201, 202],
    });
    response.body.resume();
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;
    const reported = headerDigest(response);
    if (reported !== undefined && reported !== digest) {
      debug('%s: registry names %s as %s', this.registry, shortDigest(digest), reported);
    }
    return digest;
  }

  // ------------------------------------------------------------- blobs

  /**
   * Whether the repository has a blob (a `HEAD`).
   *
   * @throws {PermissionError} when access is refused.
   */
  async hasBlob(repository: string, digest: Digest, scopes: string[]): Promise<boolean> {
    const response = await this.send({
      method: 'HEAD',
      target: `/v2/${repository}/blobs/${digest}`,
      scopes,
      what: `blob ${shortDigest(digest)}`,
      expect: [200, 404],
    });
    response.body.resume();
    return response.status === 200;
  }

  /**
   * Starts downloading a blob, from byte `offset` on (a `Range` request; a
   * registry that ignores it answers from 0, and `start` says so).
   *
   * @param size the blob's size, when known: a registry announcing another length fails at once.
   * @throws {NotFoundError} when the repository has no such blob.
   * @throws {DigestMismatchError} when the registry's blob has another size than `size`, or is shorter than `offset`.
   */
  async openBlob(repository: string, digest: Digest, offset: number, scopes: string[], size?: number): Promise<BlobDownload> {
    const headers: Record<string, string> = {};
    if (offset > 0) headers['range'] = `bytes=${offset}-`;
    const what = `blob ${shortDigest(digest)}`;
    const response = await this.send({
      method: 'GET',
      target: `/v2/${repository}/blobs/${digest}`,
      headers,
      scopes,
      what,
      expect: [200, 206, 416],
    });
    if (response.status === 416) {
      response.body.resume();
      throw new DigestMismatchError(
        `${this.#context}: ${what}: size mismatch: registry ${this.registry} has fewer than the ${offset} bytes already received`,
        { expected: digest },
      );
    }
    const length = Number(response.headers['content-length']);
    if (response.status === 200 && size !== undefined && Number.isSafeInteger(length) && length !== size) {
      response.body.destroy();
      throw new DigestMismatchError(
        `${this.#context}: ${what}: size mismatch: registry ${this.registry} sends ${length} bytes, the manifest says ${size}`,
        { expected: digest },
      );
    }
    let start = 0;
    if (response.status === 206) {
      const match = /^bytes (\d+)-/.exec(String(response.headers['content-range'] ?? ''));
      start = match ? Number(match[1]) : NaN;
      if (!(start <= offset)) {
        response.body.destroy();
        throw new UnavailableError(
          `${this.#context}: blob ${shortDigest(digest)}: registry ${this.registry} answered range ${String(response.headers['content-range'])} to a request from byte ${offset}`,
          { registry: this.registry, status: 206 },
        );
      }
    }
    return { body: response.body, start };
  }

  /**
   * Reads a small blob (a config) whole, verified against its digest and size.
   *
   * @throws {NotFoundError} when the repository has no such blob.
   * @throws {DigestMismatchError} when the content does not match.
   */
  async getBlobBytes(repository: string, digest: Digest, size: number, scopes: string[]): Promise<Buffer> {
    const what = `blob ${shortDigest(digest)}`;
    for (let attempt = 0; ; attempt++) {
      const { body } = await this.openBlob(repository, digest, 0, scopes, size);
      let bytes: Buffer;
      try {
        bytes = await readBody(body, Math.max(size, 0) + 1);
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'ERR_BODY_TOO_LARGE' && isRetryableNetworkError(err) && attempt + 1 < MAX_ATTEMPTS) {
          await wait(retryDelay(attempt), this.#signal, this.#context);
          continue;
        }
        if ((err as { code?: unknown }).code === 'ERR_BODY_TOO_LARGE') {
          throw new DigestMismatchError(`${this.#context}: ${what}: size mismatch: expected ${size} bytes, got more`, {
            expected: digest,
          });
        }
        throw this.#networkError(err, what);
      }
      const actual = `${digestAlgorithm(digest)}:${createHash(digestAlgorithm(digest)).update(bytes).digest('hex')}`;
      if (bytes.length !== size || actual !== digest) {
        throw new DigestMismatchError(
          `${this.#context}: ${what}: ${bytes.length !== size ? `size mismatch: expected ${size} bytes, got ${bytes.length}` : `digest mismatch: content is ${actual}`}`,
          { expected: digest, actual },
        );
      }
      return bytes;
    }
  }

  /**
   * Asks the registry to mount a blob from another repository of the same
   * registry. When it cannot, it starts an upload instead (as the spec says),
   * whose location is returned.
   */
  async mountBlob(
    repository: string,
    digest: Digest,
    from: string,
    scopes: string[],
  ): Promise<{ mounted: true } | { mounted: false; location: URL }> {
    const query = new URLSearchParams({ mount: digest, from });
    const response = await this.send({
      method: 'POST',
      target: `/v2/${repository}/blobs/uploads/?${query.toString()}`,
      headers: { 'content-length': '0' },
      scopes,
      what: `mount blob ${shortDigest(digest)} from ${from}`,
      expect: [201, 202],
    });
    response.body.resume();
    if (response.status === 201) return { mounted: true };
    return { mounted: false, location: this.#location(response, `mount blob ${shortDigest(digest)}`) };
  }

  /** Starts a blob upload; returns its location. */
  async startUpload(repository: string, scopes: string[]): Promise<URL> {
    const response = await this.send({
      method: 'POST',
      target: `/v2/${repository}/blobs/uploads/`,
      headers: { 'content-length': '0' },
      scopes,
      what: `start upload to ${repository}`,
      expect: [202],
    });
    response.body.resume();
    return this.#location(response, `start upload to ${repository}`);
  }

  /**
   * Uploads a whole blob in one `PUT` to an upload's location, which
   * completes it (monolithic upload).
   */
  async putBlob(location: URL, digest: Digest, size: number, open: () => Readable, scopes: string[]): Promise<void> {
    const url = new URL(location);
    url.searchParams.set('digest', digest);
    const response = await this.send({
      method: 'PUT',
      target: url,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: open,
      scopes,
      what: `upload blob ${shortDigest(digest)}`,
      retry: false,
      expect: [201, 204],
    });
    response.body.resume();
  }

  /**
   * Sends one chunk of a chunked upload (`PATCH` with `Content-Range`);
   * returns the location of the next request.
   */
  async patchBlob(location: URL, start: number, chunk: Buffer, what: string, scopes: string[]): Promise<URL> {
    const response = await this.send({
      method: 'PATCH',
      target: location,
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(chunk.length),
        'content-range': `${start}-${start + chunk.length - 1}`,
      },
      body: chunk,
      scopes,
      what,
      retry: false,
      expect: [202, 204],
    });
    response.body.resume();
    return this.#location(response, what);
  }

  /** Completes a chunked upload (a `PUT` with the digest and no body). */
  async finishUpload(location: URL, digest: Digest, scopes: string[]): Promise<void> {
    const url = new URL(location);
    url.searchParams.set('digest', digest);
    const response = await this.send({
      method: 'PUT',
      target: url,
      headers: { 'content-length': '0' },
      scopes,
      what: `complete upload of blob ${shortDigest(digest)}`,
      retry: false,
      expect: [201, 204],
    });
    response.body.resume();
  }

  /**
   * Turns a failure of the transport into a typed error: {@link AbortError}
   * and dockless errors as they are, anything else an
   * {@link UnavailableError} naming the registry.
   */
  networkError(err: unknown, what: string): Error {
    return this.#networkError(err, what);
  }

  // ------------------------------------------------------------- internals

  /**
   * Sends a request with authentication, retrying on 5xx, 429 and
   * connection errors (unless `retry: false`) and once on a 401 after
   * renewing the token. Statuses in `expect` are returned; others become
   * typed errors.
   */
  async send(op: Operation): Promise<HttpResponse> {
    const url = typeof op.target === 'string' ? new URL(op.target, this.#base) : op.target;
    let scopes = op.scopes;
    let authRetried = false;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...op.headers };
      const authorization = await this.#auth.header(scopes, this.#signal);
      if (authorization !== undefined) headers['authorization'] = authorization;
      let response: HttpResponse;
      try {
        response = await httpRequest({
          method: op.method,
          url,
          headers,
          body: op.body,
          signal: this.#signal,
          insecureTls: this.#insecure,
        });
      } catch (err) {
        if (op.retry !== false && isRetryableNetworkError(err) && attempt + 1 < MAX_ATTEMPTS) {
          debug('%s: %s %s: %s; retrying', this.registry, op.method, url.pathname, (err as Error).message);
          await wait(retryDelay(attempt), this.#signal, this.#context);
          continue;
        }
        throw this.#networkError(err, op.what);
      }
      if (op.expect.includes(response.status)) return response;
      if (response.status === 401 && !authRetried) {
        response.body.resume();
        const next = this.#auth.unauthorized(challengesOf(response), scopes);
        if (next.retry) {
          authRetried = true;
          scopes = next.scopes;
          attempt--;
          continue;
        }
      }
      if (op.retry !== false && isRetryableStatus(response.status) && attempt + 1 < MAX_ATTEMPTS) {
        response.body.resume();
        debug('%s: %s %s: %d; retrying', this.registry, op.method, url.pathname, response.status);
        await wait(retryDelay(attempt, response.headers['retry-after']), this.#signal, this.#context);
        continue;
      }
      throw await this.#statusError(response, op.what);
    }
  }

  async #ping(): Promise<void> {
    const host = apiHost(this.registry);
    const schemes = this.#insecure ? ['https:', 'http:'] : ['https:'];
    let last: unknown;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (attempt > 0) await wait(retryDelay(attempt - 1), this.#signal, this.#context);
      for (const [i, scheme] of schemes.entries()) {
        const url = new URL(`${scheme}//${host}/v2/`);
        let response: HttpResponse;
        try {
          response = await httpRequest({
            method: 'GET',
            url,
            headers: { 'user-agent': USER_AGENT },
            signal: this.#signal,
            insecureTls: this.#insecure,
            idleTimeout: 15_000,
          });
        } catch (err) {
          last = err;
          if (err instanceof AbortError) throw err;
          if (isTlsFailure(err) && i + 1 < schemes.length) continue;
          if (isRetryableNetworkError(err)) break;
          throw this.#networkError(err, 'ping');
        }
        response.body.resume();
        if (response.status === 200 || response.status === 401) {
          this.#base = new URL(`${scheme}//${host}/`);
          if (response.status === 401) this.#auth.setChallenge(challengesOf(response));
          debug('%s: %s, auth %s', this.registry, scheme, this.#auth.required ? 'required' : 'none');
          return;
        }
        if (isRetryableStatus(response.status)) {
          last = new UnavailableError(`registry ${this.registry} answered ${response.status}`, {
            registry: this.registry,
            status: response.status,
          });
          break;
        }
        if (response.status === 404) {
          throw new UnavailableError(
            `${this.#context}: ${url.origin} is not a registry: GET /v2/ answered 404`,
            { registry: this.registry, status: 404 },
          );
        }
        throw new UnavailableError(`${this.#context}: registry ${this.registry}: GET /v2/ answered ${response.status}`, {
          registry: this.registry,
          status: response.status,
        });
      }
    }
    throw this.#networkError(last, 'ping');
  }

  #networkError(err: unknown, what: string): Error {
    if (err instanceof DocklessError) return err;
    const code = (err as { code?: unknown } | null)?.code;
    const detail = (err as Error | null)?.message ?? String(err);
    const status = (err as { status?: unknown } | null)?.status;
    return new UnavailableError(
      `${this.#context}: registry ${this.registry} is unreachable${what === 'ping' ? '' : ` (${what})`}: ${detail}${typeof code === 'string' && !detail.includes(code) ? ` (${code})` : ''}`,
      { registry: this.registry, cause: err, ...(typeof status === 'number' ? { status } : {}) },
    );
  }

  async #statusError(response: HttpResponse, what: string): Promise<Error> {
    let detail = '';
    if (response.body.readable) {
      try {
        const body = await readBody(response.body, MAX_ERROR_BODY);
        detail = errorDetail(body);
      } catch {
        // The status says enough.
      }
    }
    const status = response.status;
    const context = `${this.#context}: ${what}`;
    switch (true) {
      case status === 404:
        return new NotFoundError(`${context}: not found on registry ${this.registry}${detail ? ` (${detail})` : ''}`);
      case status === 401 || status === 403:
        return this.#auth.refused(status, detail);
      case status === 400 || status === 413 || status === 416:
        return new InvalidArgumentError(`${context}: registry ${this.registry} refused it: ${status}${detail ? ` ${detail}` : ''}`);
      case isRetryableStatus(status):
        return new UnavailableError(
          `${context}: registry ${this.registry} keeps failing: ${status}${detail ? ` ${detail}` : ''}`,
          { registry: this.registry, status },
        );
      case status >= 400 && status < 500:
        return new InvalidArgumentError(`${context}: registry ${this.registry} refused it: ${status}${detail ? ` ${detail}` : ''}`);
      default:
        // A status the distribution spec does not allow here: the registry is not one we can use.
        return new UnavailableError(`${context}: registry ${this.registry} answered ${status}${detail ? ` ${detail}` : ''}`, {
          registry: this.registry,
          status,
        });
    }
  }

  #location(response: HttpResponse, what: string): URL {
    const location = response.headers.location;
    if (location === undefined) {
      throw new UnavailableError(`${this.#context}: ${what}: registry ${this.registry} gave no upload location`, {
        registry: this.registry,
      });
    }
    return new URL(location, this.#base);
  }
}

function challengesOf(response: HttpResponse): ReturnType<typeof parseWwwAuthenticate> {
  const header = response.headers['www-authenticate'];
  if (header === undefined) return [];
  return parseWwwAuthenticate(Array.isArray(header) ? header.join(', ') : header);
}

function headerDigest(response: HttpResponse): Digest | undefined {
  const header = response.headers['docker-content-digest'];
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  try {
    return parseDigest(value.trim());
  } catch {
    return undefined;
  }
}

/** The registry's error codes and messages: `MANIFEST_UNKNOWN: manifest unknown`. */
function errorDetail(body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    if (Array.isArray(parsed.errors) && parsed.errors.length > 0) {
      return parsed.errors
        .map((e) => [e.code, e.message].filter((x) => typeof x === 'string' && x !== '').join(': '))
        .filter((s) => s !== '')
        .join('; ');
    }
  } catch {
    // Not JSON.
  }
  return body.toString('utf8').trim().slice(0, 200);
}

function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm): Digest {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}
