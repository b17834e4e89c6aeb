import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { challengeScopes, parseWwwAuthenticate, type AuthChallenge } from '../../src/transfer/www-authenticate.js';

describe('parseWwwAuthenticate', () => {
  const table: Array<[header: string, expected: AuthChallenge[]]> = [
    ['Basic realm="Registry Realm"', [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]],
    [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
      [
        {
          scheme: 'bearer',
          params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' },
        },
      ],
    ],
    // Spaces around separators and '=' are allowed; names are case-insensitive.
    [
      'BEARER  Realm = "https://a/token" ,  Service=reg , scope="repository:a:pull,push"',
      [{ scheme: 'bearer', params: { realm: 'https://a/token', service: 'reg', scope: 'repository:a:pull,push' } }],
    ],
    // An insufficient_scope error, as the registry sends it on a 401 for a token without the action.
    [
      'Bearer realm="http://127.0.0.1:1/token",service="s",scope="repository:a:pull,push",error="insufficient_scope"',
      [
        {
          scheme: 'bearer',
          params: { realm: 'http://127.0.0.1:1/token', service: 's', scope: 'repository:a:pull,push', error: 'insufficient_scope' },
        },
      ],
    ],
    // Quoted strings may hold commas, '=' and escaped quotes.
    [
      'Basic realm="a, b=c \\"d\\""',
      [{ scheme: 'basic', params: { realm: 'a, b=c "d"' } }],
    ],
    // Several challenges in one header.
    [
      'Basic realm="r1", Bearer realm="https://t",service="s"',
      [
        { scheme: 'basic', params: { realm: 'r1' } },
        { scheme: 'bearer', params: { realm: 'https://t', service: 's' } },
      ],
    ],
    // A token68 challenge, then a params challenge.
    ['Negotiate abc+/def==, Basic realm="x"', [
      { scheme: 'negotiate', params: {}, token68: 'abc+/def==' },
      { scheme: 'basic', params: { realm: 'x' } },
    ]],
    // A scheme alone.
    ['Basic', [{ scheme: 'basic', params: {} }]],
    // The first of a repeated parameter wins.
    ['Basic realm="a", realm="b"', [{ scheme: 'basic', params: { realm: 'a' } }]],
    // Garbage is skipped, never thrown on.
    ['', []],
    [',,, ', []],
    ['"quoted", Basic realm=x', [{ scheme: 'basic', params: { realm: 'x' } }]],
    // An unterminated quoted string takes the rest of the header.
    ['Bearer realm="https://t', [{ scheme: 'bearer', params: { realm: 'https://t' } }]],
  ];
  for (const [header, expected] of table) {
    it(JSON.stringify(header), () => {
      assert.deepEqual(parseWwwAuthenticate(header), expected);
    });
  }
});

describe('challengeScopes', () => {
  it('splits a space-separated scope list', () => {
    assert.deepEqual(
      challengeScopes({ scheme: 'bearer', params: { scope: 'repository:a:pull  repository:b:pull,push' } }),
      ['repository:a:pull', 'repository:b:pull,push'],
    );
  });
  it('is empty without a scope', () => {
    assert.deepEqual(challengeScopes({ scheme: 'bearer', params: { realm: 'x' } }), []);
  });
});
