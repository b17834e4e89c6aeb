/**
 * Parsing of the `WWW-Authenticate` header (RFC 7235 §4.1), which a registry
 * sends with a 401 to say how to authenticate: `Basic realm="…"`, or
 * `Bearer realm="https://auth…/token",service="registry",scope="repository:a/b:pull"`.
 *
 * @module
 */

/** One challenge of a `WWW-Authenticate` header. */
export interface AuthChallenge {
  /** The auth scheme, lowercased: `basic`, `bearer`, … */
  scheme: string;
  /** The auth-params, names lowercased, values unquoted. */
  params: Record<string, string>;
  /** The token68 form of credentials, for the rare scheme that sends one instead of params. */
  token68?: string;
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68_CHAR = /[A-Za-z0-9\-._~+/]/;

/**
 * Parses a `WWW-Authenticate` header value into its challenges, in order.
 * Lenient as browsers are: malformed parts are skipped, never thrown on, so a
 * registry's odd header costs at most that challenge. Several headers may be
 * joined with `, ` before parsing.
 *
 * @example
 * ```ts
 * parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io"');
 * // [{ scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io' } }]
 * ```
 */
export function parseWwwAuthenticate(header: string): AuthChallenge[] {
  const challenges: AuthChallenge[] = [];
  let pos = 0;
  const n = header.length;

  const skipSpace = (): void => {
    while (pos < n && (header[pos] === ' ' || header[pos] === '\t')) pos++;
  };
  const skipSeparators = (): void => {
    while (pos < n && (header[pos] === ' ' || header[pos] === '\t' || header[pos] === ',')) pos++;
  };
  const readToken = (): string => {
    const start = pos;
    while (pos < n && TCHAR.test(header[pos]!)) pos++;
    return header.slice(start, pos);
  };
  const readQuoted = (): string => {
    // header[pos] === '"'
    pos++;
    let out = '';
    while (pos < n && header[pos] !== '"') {
      if (header[pos] === '\\' && pos + 1 < n) pos++;
      out += header[pos];
      pos++;
    }
    pos++; // closing quote (or end)
    return out;
  };
  /**
   * Whether a `name=value` auth-param starts at pos, as opposed to a new
   * scheme or a token68 (whose `=` padding is followed by nothing, a comma,
   * or more `=`).
   */
  const paramAhead = (): boolean => {
    let p = pos;
    while (p < n && TCHAR.test(header[p]!)) p++;
    if (p === pos) return false;
    while (p < n && (header[p] === ' ' || header[p] === '\t')) p++;
    if (header[p] !== '=') return false;
    p++;
    while (p < n && (header[p] === ' ' || header[p] === '\t')) p++;
    return p < n && header[p] !== ',' && header[p] !== '=';
  };

  while (pos < n) {
    skipSeparators();
    if (pos >= n) break;
    const scheme = readToken();
    if (scheme === '') {
      // Not a token: skip to the next comma.
      while (pos < n && header[pos] !== ',') pos++;
      continue;
    }
    const challenge: AuthChallenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    skipSpace();
    // token68?
    if (pos < n && header[pos] !== ',' && !paramAhead()) {
      const start = pos;
      while (pos < n && TOKEN68_CHAR.test(header[pos]!)) pos++;
      while (pos < n && header[pos] === '=') pos++;
      if (pos > start) challenge.token68 = header.slice(start, pos);
      skipSpace();
    }
    // auth-params, comma separated, until something that is not `name=`.
    for (;;) {
      const save = pos;
      skipSeparators();
      if (pos >= n || !paramAhead()) {
        // Leave commas for the outer loop when a new scheme follows.
        if (pos < n) pos = save;
        break;
      }
      const name = readToken().toLowerCase();
      skipSpace();
      pos++; // '='
      skipSpace();
      let value: string;
      if (header[pos] === '"') value = readQuoted();
      else value = readToken();
      if (!Object.hasOwn(challenge.params, name)) challenge.params[name] = value;
      skipSpace();
    }
  }
  return challenges;
}

/**
 * The `scope` values of a Bearer challenge's `scope` param: the registry may
 * ask for several, separated by spaces.
 *
 * @example
 * ```ts
 * challengeScopes({ scheme: 'bearer', params: { scope: 'repository:a:pull repository:b:pull' } });
 * // ['repository:a:pull', 'repository:b:pull']
 * ```
 */
export function challengeScopes(challenge: AuthChallenge): string[] {
  const scope = challenge.params['scope'];
  return scope === undefined ? [] : scope.split(' ').filter((s) => s !== '');
}
