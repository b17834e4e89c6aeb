import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { InvalidArgumentError } from '../../src/errors.js';
import {
  Reference,
  isDigestReference,
  parseReference,
  withDigest,
  withTag,
} from '../../src/oci/index.js';

const HEX = 'a'.repeat(64);
const DIGEST = `sha256:${HEX}`;
const SHA512 = `sha512:${'b'.repeat(128)}`;

interface Expected {
  domain: string;
  path: string;
  tag?: string;
  digest?: string;
  /** toString() */
  full: string;
  familiar: string;
}

const valid: Array<[input: string, expected: Expected]> = [
  ['alpine', { domain: 'docker.io', path: 'library/alpine', tag: 'latest', full: 'docker.io/library/alpine:latest', familiar: 'alpine:latest' }],
  ['alpine:3.20', { domain: 'docker.io', path: 'library/alpine', tag: '3.20', full: 'docker.io/library/alpine:3.20', familiar: 'alpine:3.20' }],
  ['library/alpine', { domain: 'docker.io', path: 'library/alpine', tag: 'latest', full: 'docker.io/library/alpine:latest', familiar: 'alpine:latest' }],
  ['docker.io/alpine', { domain: 'docker.io', path: 'library/alpine', tag: 'latest', full: 'docker.io/library/alpine:latest', familiar: 'alpine:latest' }],
  ['docker.io/library/alpine:edge', { domain: 'docker.io', path: 'library/alpine', tag: 'edge', full: 'docker.io/library/alpine:edge', familiar: 'alpine:edge' }],
  ['index.docker.io/library/alpine', { domain: 'docker.io', path: 'library/alpine', tag: 'latest', full: 'docker.io/library/alpine:latest', familiar: 'alpine:latest' }],
  ['index.docker.io/alpine', { domain: 'docker.io', path: 'library/alpine', tag: 'latest', full: 'docker.io/library/alpine:latest', familiar: 'alpine:latest' }],
  ['user/app', { domain: 'docker.io', path: 'user/app', tag: 'latest', full: 'docker.io/user/app:latest', familiar: 'user/app:latest' }],
  ['user/app:1', { domain: 'docker.io', path: 'user/app', tag: '1', full: 'docker.io/user/app:1', familiar: 'user/app:1' }],
  ['a/b/c', { domain: 'docker.io', path: 'a/b/c', tag: 'latest', full: 'docker.io/a/b/c:latest', familiar: 'a/b/c:latest' }],
  // library/ is only dropped from a two-component official path.
  ['library/a/b', { domain: 'docker.io', path: 'library/a/b', tag: 'latest', full: 'docker.io/library/a/b:latest', familiar: 'library/a/b:latest' }],
  ['ghcr.io/owner/repo', { domain: 'ghcr.io', path: 'owner/repo', tag: 'latest', full: 'ghcr.io/owner/repo:latest', familiar: 'ghcr.io/owner/repo:latest' }],
  // A registry other than Docker Hub gets no library/ namespace.
  ['quay.io/alpine', { domain: 'quay.io', path: 'alpine', tag: 'latest', full: 'quay.io/alpine:latest', familiar: 'quay.io/alpine:latest' }],
  ['localhost/foo', { domain: 'localhost', path: 'foo', tag: 'latest', full: 'localhost/foo:latest', familiar: 'localhost/foo:latest' }],
  ['localhost:5000/foo/bar:tag', { domain: 'localhost:5000', path: 'foo/bar', tag: 'tag', full: 'localhost:5000/foo/bar:tag', familiar: 'localhost:5000/foo/bar:tag' }],
  ['host:5000/a/b:tag', { domain: 'host:5000', path: 'a/b', tag: 'tag', full: 'host:5000/a/b:tag', familiar: 'host:5000/a/b:tag' }],
  ['192.168.1.10:5000/app', { domain: '192.168.1.10:5000', path: 'app', tag: 'latest', full: '192.168.1.10:5000/app:latest', familiar: '192.168.1.10:5000/app:latest' }],
  ['[::1]:5000/foo:bar', { domain: '[::1]:5000', path: 'foo', tag: 'bar', full: '[::1]:5000/foo:bar', familiar: '[::1]:5000/foo:bar' }],
  ['[fe80::1]/foo', { domain: '[fe80::1]', path: 'foo', tag: 'latest', full: '[fe80::1]/foo:latest', familiar: '[fe80::1]/foo:latest' }],
  // Domains may have uppercase and hyphens; only the path must be lowercase.
  ['My-Registry.Example.com/team/app', { domain: 'My-Registry.Example.com', path: 'team/app', tag: 'latest', full: 'My-Registry.Example.com/team/app:latest', familiar: 'My-Registry.Example.com/team/app:latest' }],
  // `localhost:5000` alone has no slash, so Docker reads it as image `localhost`, tag `5000`.
  ['localhost:5000', { domain: 'docker.io', path: 'library/localhost', tag: '5000', full: 'docker.io/library/localhost:5000', familiar: 'localhost:5000' }],
  ['alpine@' + DIGEST, { domain: 'docker.io', path: 'library/alpine', digest: DIGEST, full: `docker.io/library/alpine@${DIGEST}`, familiar: `alpine@${DIGEST}` }],
  ['alpine:3.20@' + DIGEST, { domain: 'docker.io', path: 'library/alpine', tag: '3.20', digest: DIGEST, full: `docker.io/library/alpine:3.20@${DIGEST}`, familiar: `alpine:3.20@${DIGEST}` }],
  ['localhost:5000/x@' + SHA512, { domain: 'localhost:5000', path: 'x', digest: SHA512, full: `localhost:5000/x@${SHA512}`, familiar: `localhost:5000/x@${SHA512}` }],
  // Path separators: '.', '_', '__', runs of '-'.
  ['user/a.b_c__d---e', { domain: 'docker.io', path: 'user/a.b_c__d---e', tag: 'latest', full: 'docker.io/user/a.b_c__d---e:latest', familiar: 'user/a.b_c__d---e:latest' }],
  ['a.b_c__d---e', { domain: 'docker.io', path: 'library/a.b_c__d---e', tag: 'latest', full: 'docker.io/library/a.b_c__d---e:latest', familiar: 'a.b_c__d---e:latest' }],
  // Tags: word characters, '.', '-', uppercase allowed, up to 128.
  ['app:V1.0-rc_1', { domain: 'docker.io', path: 'library/app', tag: 'V1.0-rc_1', full: 'docker.io/library/app:V1.0-rc_1', familiar: 'app:V1.0-rc_1' }],
  ['app:_', { domain: 'docker.io', path: 'library/app', tag: '_', full: 'docker.io/library/app:_', familiar: 'app:_' }],
  [`app:${'t'.repeat(128)}`, { domain: 'docker.io', path: 'library/app', tag: 't'.repeat(128), full: `docker.io/library/app:${'t'.repeat(128)}`, familiar: `app:${'t'.repeat(128)}` }],
  ['0/1', { domain: 'docker.io', path: '0/1', tag: 'latest', full: 'docker.io/0/1:latest', familiar: '0/1:latest' }],
  // 63 hex characters is a name, not an image id.
  ['a'.repeat(63), { domain: 'docker.io', path: `library/${'a'.repeat(63)}`, tag: 'latest', full: `docker.io/library/${'a'.repeat(63)}:latest`, familiar: `${'a'.repeat(63)}:latest` }],
];

describe('parseReference: valid references', () => {
  for (const [input, want] of valid) {
    it(input.length > 60 ? `${input.slice(0, 60)}…` : input, () => {
      const ref = parseReference(input);
      assert.ok(ref instanceof Reference);
      assert.equal(ref.domain, want.domain);
      assert.equal(ref.path, want.path);
      assert.equal(ref.tag, want.tag);
      assert.equal(ref.digest, want.digest);
      assert.equal(ref.name, `${want.domain}/${want.path}`);
      assert.equal(ref.toString(), want.full);
      assert.equal(`${ref}`, want.full);
      assert.equal(JSON.stringify(ref), JSON.stringify(want.full));
      assert.equal(ref.familiar, want.familiar);
      // Normalisation is idempotent, from either form.
      assert.equal(parseReference(ref.toString()).toString(), want.full);
      assert.equal(parseReference(ref.familiar).toString(), want.full);
    });
  }
});

const invalid: Array<[input: string, messagePart: RegExp]> = [
  ['', /: empty$/],
  [HEX, /64-character hex string is an image id/],
  ['Alpine', /repository name must be lowercase/],
  ['user/App', /repository name must be lowercase/],
  ['docker.io/Library/alpine', /repository name must be lowercase/],
  // Docker would read `MyHost` as a registry; we report the likelier mistake.
  ['MyHost/app', /repository name must be lowercase/],
  ['alpine:', /empty tag/],
  ['alpine:.tag', /invalid tag "\.tag"/],
  ['alpine:-tag', /invalid tag "-tag"/],
  ['alpine:ta/g', /invalid domain "alpine:ta"/],
  ['alpine:ta+g', /invalid tag "ta\+g"/],
  [`alpine:${'t'.repeat(129)}`, /invalid tag "t{129}"/],
  ['alpine@', /invalid digest "": empty/],
  ['alpine@sha256:abc', /invalid digest "sha256:abc": sha256 needs 64 hex characters, got 3/],
  [`alpine@sha256:${'A'.repeat(64)}`, /invalid digest .*lowercase/],
  [`alpine@md5:${'a'.repeat(32)}`, /unsupported algorithm "md5"/],
  [`alpine@${HEX}`, /invalid digest .*missing algorithm prefix/],
  [`alpine@${DIGEST}@${DIGEST}`, /invalid digest/],
  [`@${DIGEST}`, /missing repository name/],
  [':tag', /missing repository name/],
  ['a//b', /empty path component/],
  ['a/', /empty path component/],
  ['/a', /empty path component/],
  ['localhost:5000/', /missing repository path/],
  ['ghcr.io//x', /empty path component/],
  ['a-', /invalid path component "a-"/],
  ['-a', /invalid path component "-a"/],
  ['a..b', /invalid path component "a\.\.b"/],
  ['a___b', /invalid path component "a___b"/],
  ['a_', /invalid path component "a_"/],
  ['.a', /invalid path component "\.a"/],
  ['a b', /invalid path component "a b"/],
  ['a\tb', /invalid path component/],
  ['café', /invalid path component "café"/],
  ['host:port/x', /invalid domain "host:port"/],
  ['-host.com/x', /invalid domain "-host\.com"/],
  ['host-.com/x', /invalid domain "host-\.com"/],
  ['ho_st.com/x', /invalid domain "ho_st\.com"/],
  ['[::1/x', /invalid domain/],
  ['.com/x', /invalid domain/],
  // A first component with a '.' is a domain, and '_' is not allowed in one.
  ['a.b_c/d', /invalid domain "a\.b_c"/],
  [`a/${'b'.repeat(250)}`, /repository name must not be more than 255 characters \(got 262\)/],
];

describe('parseReference: malformed references', () => {
  for (const [input, messagePart] of invalid) {
    it(`rejects ${JSON.stringify(input.length > 60 ? `${input.slice(0, 60)}…` : input)}`, () => {
      assert.throws(() => parseReference(input), (err: unknown) => {
        assert.ok(err instanceof InvalidArgumentError, `got ${String(err)}`);
        assert.equal(err.code, 'ERR_DOCKLESS_INVALID_ARGUMENT');
        assert.match(err.message, messagePart);
        assert.ok(
          err.message.startsWith(`invalid reference ${JSON.stringify(input)}: `),
          `message names the input: ${err.message}`,
        );
        return true;
      });
    });
  }

  it('keeps the digest error as the cause', () => {
    try {
      parseReference('alpine@sha256:abc');
      assert.fail('should throw');
    } catch (err) {
      assert.ok(err instanceof InvalidArgumentError);
      assert.ok(err.cause instanceof InvalidArgumentError);
    }
  });

  it('rejects a non-string', () => {
    assert.throws(() => parseReference(undefined as unknown as string), InvalidArgumentError);
  });

  it('accepts a name of exactly 255 characters', () => {
    // 'docker.io/' + 'a/' + 243 = 255
    const input = `a/${'b'.repeat(243)}`;
    assert.equal(parseReference(input).name.length, 255);
  });
});

describe('parseReference options', () => {
  it('defaultTag: false leaves a bare name without a tag', () => {
    const ref = parseReference('alpine', { defaultTag: false });
    assert.equal(ref.tag, undefined);
    assert.equal(ref.toString(), 'docker.io/library/alpine');
    assert.equal(ref.familiar, 'alpine');
  });

  it('defaultTag sets another default tag, and only when none is given', () => {
    assert.equal(parseReference('alpine', { defaultTag: 'edge' }).tag, 'edge');
    assert.equal(parseReference('alpine:3', { defaultTag: 'edge' }).tag, '3');
    assert.equal(parseReference(`alpine@${DIGEST}`, { defaultTag: 'edge' }).tag, undefined);
  });

  it('an invalid defaultTag is rejected', () => {
    assert.throws(() => parseReference('alpine', { defaultTag: '.bad' }), /invalid tag "\.bad"/);
  });
});

describe('Reference', () => {
  it('is immutable', () => {
    const ref = parseReference('alpine');
    assert.throws(() => {
      (ref as { tag?: string }).tag = 'x';
    }, TypeError);
  });

  it('familiarName drops docker.io and library/', () => {
    assert.equal(parseReference('alpine:3').familiarName, 'alpine');
    assert.equal(parseReference('user/app').familiarName, 'user/app');
    assert.equal(parseReference('ghcr.io/o/r').familiarName, 'ghcr.io/o/r');
  });

  it('the constructor validates and normalises its parts', () => {
    const ref = new Reference({ domain: 'index.docker.io', path: 'alpine', tag: '3' });
    assert.equal(ref.toString(), 'docker.io/library/alpine:3');
    const table: Array<[ConstructorParameters<typeof Reference>[0], RegExp]> = [
      [{ domain: 'docker.io', path: 'Alpine' }, /must be lowercase/],
      [{ domain: 'bad_domain', path: 'alpine' }, /invalid domain "bad_domain"/],
      [{ domain: 'docker.io', path: '' }, /missing repository path/],
      [{ domain: 'docker.io', path: 'a', tag: '' }, /empty tag/],
      [{ domain: 'docker.io', path: 'a', digest: 'sha256:x' }, /invalid digest "sha256:x"/],
    ];
    for (const [parts, message] of table) {
      assert.throws(() => new Reference(parts), (err: unknown) => err instanceof InvalidArgumentError && message.test(err.message));
    }
  });
});

describe('isDigestReference', () => {
  const table: Array<[input: string, expected: boolean]> = [
    [`alpine@${DIGEST}`, true],
    [`alpine:3@${DIGEST}`, true],
    [`localhost:5000/a@${SHA512}`, true],
    ['alpine', false],
    ['alpine:3', false],
    ['localhost:5000/a', false],
    // Not a reference at all: never throws.
    ['Alpine@sha256:x', false],
    ['', false],
  ];
  for (const [input, expected] of table) {
    it(`${JSON.stringify(input.slice(0, 40))} → ${expected}`, () => {
      assert.equal(isDigestReference(input), expected);
      if (expected) assert.equal(isDigestReference(parseReference(input)), true);
    });
  }
  it('accepts a Reference', () => {
    assert.equal(isDigestReference(parseReference('alpine')), false);
  });
});

describe('withTag / withDigest', () => {
  it('withTag replaces the tag and keeps the repository', () => {
    const ref = withTag(parseReference('localhost:5000/a/b:1'), '2');
    assert.equal(ref.toString(), 'localhost:5000/a/b:2');
    assert.equal(withTag(parseReference('alpine:3.19'), '3.20').familiar, 'alpine:3.20');
  });

  it('withTag keeps a digest, as Docker does', () => {
    const ref = withTag(parseReference(`alpine@${DIGEST}`), 'v1');
    assert.equal(ref.toString(), `docker.io/library/alpine:v1@${DIGEST}`);
  });

  it('withDigest pins a digest and keeps the tag', () => {
    const ref = withDigest(parseReference('alpine'), DIGEST);
    assert.equal(ref.toString(), `docker.io/library/alpine:latest@${DIGEST}`);
    assert.equal(isDigestReference(ref), true);
  });

  it('do not modify the original', () => {
    const original = parseReference('alpine:1');
    withTag(original, '2');
    withDigest(original, DIGEST);
    assert.equal(original.toString(), 'docker.io/library/alpine:1');
  });

  it('reject malformed tags and digests', () => {
    const ref = parseReference('alpine');
    assert.throws(() => withTag(ref, ''), /empty tag/);
    assert.throws(() => withTag(ref, 'a b'), /invalid tag "a b"/);
    assert.throws(() => withDigest(ref, 'sha256:abc'), /invalid digest "sha256:abc"/);
    assert.throws(() => withDigest(ref, HEX), InvalidArgumentError);
  });
});
