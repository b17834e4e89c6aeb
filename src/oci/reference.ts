/**
 * Image references (`name:tag`, `name@digest`), parsed and normalised the way
 * Docker's `distribution/reference` does it, so that `alpine`,
 * `library/alpine`, `docker.io/library/alpine:latest` and
 * `index.docker.io/library/alpine` all name the same thing.
 *
 * Grammar (after Docker's):
 *
 * ```
 * reference      := name [ ":" tag ] [ "@" digest ]
 * name           := [domain "/"] path
 * domain         := host [":" port]          host: DNS name, IPv4, or "[" IPv6 "]"
 * path           := path-component ["/" path-component]*
 * path-component := [a-z0-9]+ (separator [a-z0-9]+)*     separator: "." | "_" | "__" | "-"+
 * tag            := [\w][\w.-]{0,127}
 * digest         := "sha256:" 64 hex | "sha512:" 128 hex
 * ```
 *
 * @module
 */

import { InvalidArgumentError } from '../errors.js';
import { parseDigest, type Digest } from './digest.js';

/** The registry a name without a domain refers to. */
export const DEFAULT_DOMAIN = 'docker.io';
/** The tag a reference without a tag or digest gets. */
export const DEFAULT_TAG = 'latest';
/** The namespace of Docker Hub's official images: `alpine` is `docker.io/library/alpine`. */
export const OFFICIAL_NAMESPACE = 'library';
/** The longest repository name (domain and path) a reference may have. */
export const NAME_MAX_LENGTH = 255;

// Docker Hub's historical name, which Docker rewrites to DEFAULT_DOMAIN.
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(
  `^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`,
);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^\w[\w.-]{0,127}$/;
const IMAGE_ID_RE = /^[a-f0-9]{64}$/;

/** The parts of a reference; the input of the {@link Reference} constructor. */
export interface ReferenceParts {
  /** The registry host, with its port if any, e.g. `docker.io` or `localhost:5000`. */
  domain: string;
  /** The repository path within the registry, e.g. `library/alpine`. */
  path: string;
  /** The tag, e.g. `3.20`. */
  tag?: string | undefined;
  /** The manifest digest, e.g. `sha256:…`. */
  digest?: string | undefined;
}

/** Options of {@link parseReference}. */
export interface ParseReferenceOptions {
  /**
   * The tag given to a reference that has neither a tag nor a digest, or
   * `false` to leave such a reference without a tag (to mean "the
   * repository", e.g. for listing its tags).
   * @default 'latest'
   */
  defaultTag?: string | false;
}

/**
 * A parsed, normalised image *reference*: a repository name (domain and path)
 * with a tag, a digest, both, or (only when parsed with `defaultTag: false`)
 * neither. Immutable; every instance is valid and normalised: the domain is
 * never `index.docker.io`, and a single-component Docker Hub path has its
 * `library/` namespace.
 *
 * @example
 * const ref = parseReference('alpine');
 * ref.toString(); // 'docker.io/library/alpine:latest'
 * ref.familiar;   // 'alpine:latest'
 */
export class Reference {
  /** The registry host and optional port, e.g. `docker.io`, `ghcr.io`, `localhost:5000`. */
  readonly domain: string;
  /** The repository path within the registry, e.g. `library/alpine`. */
  readonly path: string;
  /** The tag, when the reference has one. */
  readonly tag?: string;
  /** The manifest digest, when the reference has one; it wins over the tag when resolving. */
  readonly digest?: Digest;

  /**
   * Builds a reference from its parts, validating and normalising them as
   * {@link parseReference} does.
   *
   * @throws {InvalidArgumentError} when a part is malformed.
   */
  constructor(parts: ReferenceParts) {
    const input = formatParts(parts.domain, parts.path, parts.tag, parts.digest);
    const domain = checkDomain(parts.domain, input);
    this.domain = domain;
    this.path = checkPath(domain, parts.path, input);
    if (parts.tag !== undefined) this.tag = checkTag(parts.tag, input);
    if (parts.digest !== undefined) this.digest = checkDigest(parts.digest, input);
    const name = this.name;
    if (name.length > NAME_MAX_LENGTH) {
      fail(input, `repository name must not be more than ${NAME_MAX_LENGTH} characters (got ${name.length})`);
    }
    Object.freeze(this);
  }

  /** The full repository name, `domain/path`, e.g. `docker.io/library/alpine`. */
  get name(): string {
    return `${this.domain}/${this.path}`;
  }

  /**
   * The repository name as Docker shows it: without `docker.io/`, and without
   * `library/` for official images, e.g. `alpine`, `user/app`, `ghcr.io/o/r`.
   */
  get familiarName(): string {
    if (this.domain !== DEFAULT_DOMAIN) return this.name;
    const prefix = `${OFFICIAL_NAMESPACE}/`;
    if (this.path.startsWith(prefix) && !this.path.includes('/', prefix.length)) {
      return this.path.slice(prefix.length);
    }
    return this.path;
  }

  /** The reference as Docker shows it, e.g. `alpine:latest`, `user/app:1`, `ghcr.io/o/r@sha256:…`. */
  get familiar(): string {
    return formatParts(undefined, this.familiarName, this.tag, this.digest);
  }

  /** The full normalised form, e.g. `docker.io/library/alpine:latest`. */
  toString(): string {
    return formatParts(this.domain, this.path, this.tag, this.digest);
  }

  /** The full normalised form, so that a reference serialises as its string. */
  toJSON(): string {
    return this.toString();
  }
}

/**
 * Parses and normalises an image reference the way Docker does:
 *
 * - no domain means Docker Hub: `alpine` → `docker.io/library/alpine:latest`,
 *   `user/app` → `docker.io/user/app:latest`;
 * - the first path component is a domain only when it contains `.` or `:` or
 *   is `localhost` (`host:5000/a/b:tag`, `ghcr.io/o/r`);
 * - `index.docker.io` becomes `docker.io`;
 * - with neither tag nor digest, the tag is `latest` (see {@link ParseReferenceOptions.defaultTag});
 *   `name:tag@digest` keeps both.
 *
 * Docker treats an uppercase first component (`MyHost/app`) as a registry
 * host; here it is a path, so the mistake is reported as "must be lowercase"
 * rather than becoming a connection to a host named `MyHost`.
 *
 * @throws {InvalidArgumentError} whose message names the input and what is
 *   wrong: empty input, a 64-hex image id given as a name, an invalid digest or
 *   tag, a missing name, an invalid domain, a repository name that is not
 *   lowercase, an empty or malformed path component, or a name longer than 255
 *   characters.
 * @example
 * parseReference('localhost:5000/team/app:1.2').toString(); // 'localhost:5000/team/app:1.2'
 * parseReference('ubuntu@sha256:' + 'a'.repeat(64)).tag;      // undefined
 * parseReference('Alpine'); // throws: invalid reference "Alpine": repository name must be lowercase
 */
export function parseReference(s: string, options: ParseReferenceOptions = {}): Reference {
  if (typeof s !== 'string') {
    throw new InvalidArgumentError(`invalid reference: expected a string, got ${typeof s}`);
  }
  if (s === '') fail(s, 'empty');
  if (IMAGE_ID_RE.test(s)) {
    fail(s, 'a 64-character hex string is an image id, not a repository name');
  }

  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = checkDigest(rest.slice(at + 1), s);
    rest = rest.slice(0, at);
  }

  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon !== -1 && colon > rest.lastIndexOf('/')) {
    tag = checkTag(rest.slice(colon + 1), s);
    rest = rest.slice(0, colon);
  }

  if (rest === '') fail(s, 'missing repository name');

  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash !== -1) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      domain = first;
      path = rest.slice(slash + 1);
    }
  }

  const defaultTag = options.defaultTag ?? DEFAULT_TAG;
  if (tag === undefined && digest === undefined && defaultTag !== false) tag = defaultTag;

  domain = checkDomain(domain, s);
  path = checkPath(domain, path, s);
  const name = `${domain}/${path}`;
  if (name.length > NAME_MAX_LENGTH) {
    fail(s, `repository name must not be more than ${NAME_MAX_LENGTH} characters (got ${name.length})`);
  }
  return new Reference({ domain, path, tag, digest });
}

/**
 * Whether a reference pins a digest (`name@sha256:…`, with or without a tag).
 * A string that is not a valid reference is not a digest reference: this
 * never throws.
 *
 * @example
 * isDigestReference('alpine@sha256:' + '0'.repeat(64)); // true
 * isDigestReference('alpine:3.20');                     // false
 */
export function isDigestReference(ref: Reference | string): boolean {
  if (ref instanceof Reference) return ref.digest !== undefined;
  try {
    return parseReference(ref, { defaultTag: false }).digest !== undefined;
  } catch {
    return false;
  }
}

/**
 * The same repository with another tag. A digest, when there is one, is kept
 * (as Docker's `WithTag` keeps it), so the result still resolves by digest;
 * build from `ref.name` to drop it.
 *
 * @throws {InvalidArgumentError} when the tag is malformed.
 * @example
 * withTag(parseReference('alpine:3.19'), '3.20').familiar; // 'alpine:3.20'
 */
export function withTag(ref: Reference, tag: string): Reference {
  return new Reference({ domain: ref.domain, path: ref.path, tag, digest: ref.digest });
}

/**
 * The same repository pinned to a digest. A tag, when there is one, is kept
 * (as Docker's `WithDigest` keeps it).
 *
 * @throws {InvalidArgumentError} when the digest is malformed.
 * @example
 * withDigest(parseReference('alpine'), 'sha256:' + '0'.repeat(64)).toString();
 * // 'docker.io/library/alpine:latest@sha256:000…'
 */
export function withDigest(ref: Reference, digest: string): Reference {
  return new Reference({ domain: ref.domain, path: ref.path, tag: ref.tag, digest });
}

function fail(input: string, problem: string, cause?: unknown): never {
  throw new InvalidArgumentError(
    `invalid reference ${JSON.stringify(input)}: ${problem}`,
    cause === undefined ? {} : { cause },
  );
}

function formatParts(
  domain: string | undefined,
  path: string,
  tag: string | undefined,
  digest: string | undefined,
): string {
  return (
    (domain === undefined ? '' : `${domain}/`) +
    path +
    (tag === undefined ? '' : `:${tag}`) +
    (digest === undefined ? '' : `@${digest}`)
  );
}

function checkDomain(domain: string, input: string): string {
  if (typeof domain !== 'string' || !DOMAIN_RE.test(domain)) {
    fail(
      input,
      `invalid domain ${JSON.stringify(domain)}: must be a host name, IPv4 address or [IPv6 address], with an optional :port`,
    );
  }
  return domain === LEGACY_DEFAULT_DOMAIN ? DEFAULT_DOMAIN : domain;
}

function checkPath(domain: string, path: string, input: string): string {
  if (typeof path !== 'string' || path === '') fail(input, 'missing repository path');
  if (path.toLowerCase() !== path) fail(input, 'repository name must be lowercase');
  const components = path.split('/');
  for (const component of components) {
    if (component === '') {
      fail(input, `empty path component in repository path ${JSON.stringify(path)}`);
    }
    if (!PATH_COMPONENT_RE.test(component)) {
      fail(
        input,
        `invalid path component ${JSON.stringify(component)}: must be lowercase letters and digits separated by '.', '_', '__' or '-'`,
      );
    }
  }
  if (domain === DEFAULT_DOMAIN && components.length === 1) return `${OFFICIAL_NAMESPACE}/${path}`;
  return path;
}

function checkTag(tag: string, input: string): string {
  if (typeof tag !== 'string' || tag === '') fail(input, 'empty tag');
  if (!TAG_RE.test(tag)) {
    fail(
      input,
      `invalid tag ${JSON.stringify(tag)}: must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'`,
    );
  }
  return tag;
}

function checkDigest(digest: string, input: string): Digest {
  try {
    return parseDigest(digest);
  } catch (err) {
    return fail(input, (err as Error).message, err);
  }
}
