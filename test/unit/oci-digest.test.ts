import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { InvalidArgumentError } from '../../src/errors.js';
import {
  EMPTY_JSON_DESCRIPTOR,
  EMPTY_SHA256_DIGEST,
  MEDIA_TYPE_DOCKER_CONFIG,
  MEDIA_TYPE_DOCKER_LAYER,
  MEDIA_TYPE_DOCKER_LAYER_FOREIGN_GZIP,
  MEDIA_TYPE_DOCKER_LAYER_GZIP,
  MEDIA_TYPE_DOCKER_LAYER_ZSTD,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_OCI_CONFIG,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_LAYER,
  MEDIA_TYPE_OCI_LAYER_GZIP,
  MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_GZIP,
  MEDIA_TYPE_OCI_LAYER_ZSTD,
  MEDIA_TYPE_OCI_MANIFEST,
  baseMediaType,
  chainId,
  chainIds,
  digestAlgorithm,
  digestHex,
  isConfigMediaType,
  isDigest,
  isIndexMediaType,
  isLayerMediaType,
  isManifestMediaType,
  isNondistributableMediaType,
  layerCompression,
  layerMediaType,
  parseDigest,
  sha256Digest,
  shortDigest,
  type LayerCompression,
} from '../../src/oci/index.js';

// Known vectors, computed once with coreutils:
//   printf a | sha256sum, printf b | sha256sum, printf c | sha256sum
//   printf '%s %s' "$D_A" "$D_B" | sha256sum           (chainID of [a, b])
//   printf '%s %s' "$CHAIN_AB" "$D_C" | sha256sum      (chainID of [a, b, c])
const D_A = 'sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb';
const D_B = 'sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d';
const D_C = 'sha256:2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6';
const CHAIN_AB = 'sha256:51c0c8ace48498d6f5fee6b0592cc06f2da0f3cbe09c5a34a97dce85c3889676';
const CHAIN_ABC = 'sha256:2fce7f8ce91bcf0a1428b36e1024639fdbd9469eea762dba98aa749631885106';
// printf abc | sha512sum
const SHA512_ABC =
  'sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f';

const HEX64 = 'a'.repeat(64);

describe('parseDigest', () => {
  const valid = [
    `sha256:${HEX64}`,
    D_A,
    EMPTY_SHA256_DIGEST,
    SHA512_ABC,
    `sha256:${'0123456789abcdef'.repeat(4)}`,
  ];
  for (const s of valid) {
    it(`accepts ${s.slice(0, 24)}…`, () => {
      assert.equal(parseDigest(s), s);
      assert.equal(isDigest(s), true);
    });
  }

  const invalid: Array<[input: string, messagePart: RegExp]> = [
    ['', /invalid digest "": empty/],
    [HEX64, /missing algorithm prefix/],
    [`:${HEX64}`, /unsupported algorithm ""/],
    [`md5:${'a'.repeat(32)}`, /unsupported algorithm "md5" \(supported: sha256, sha512\)/],
    [`SHA256:${HEX64}`, /unsupported algorithm "SHA256"/],
    [`sha384:${'a'.repeat(96)}`, /unsupported algorithm "sha384"/],
    ['sha256:', /hex part must be lowercase 0-9a-f/],
    ['sha256:abc', /sha256 needs 64 hex characters, got 3/],
    [`sha256:${'a'.repeat(63)}`, /sha256 needs 64 hex characters, got 63/],
    [`sha256:${'a'.repeat(65)}`, /sha256 needs 64 hex characters, got 65/],
    [`sha256:${'A'.repeat(64)}`, /hex part must be lowercase 0-9a-f/],
    [`sha256:${'g'.repeat(64)}`, /hex part must be lowercase 0-9a-f/],
    [`sha256:${'a'.repeat(63)} `, /hex part must be lowercase 0-9a-f/],
    [` sha256:${HEX64}`, /unsupported algorithm " sha256"/],
    [`sha256:sha256:${HEX64}`, /hex part must be lowercase/],
    [`sha512:${HEX64}`, /sha512 needs 128 hex characters, got 64/],
  ];
  for (const [input, messagePart] of invalid) {
    it(`rejects ${JSON.stringify(input.slice(0, 30))}`, () => {
      assert.throws(() => parseDigest(input), (err: unknown) => {
        assert.ok(err instanceof InvalidArgumentError);
        assert.equal(err.code, 'ERR_DOCKLESS_INVALID_ARGUMENT');
        assert.match(err.message, messagePart);
        assert.ok(err.message.includes(JSON.stringify(input)), 'message names the input');
        return true;
      });
      assert.equal(isDigest(input), false);
    });
  }

  it('isDigest is false for non-strings', () => {
    assert.equal(isDigest(undefined), false);
    assert.equal(isDigest(42), false);
  });
});

describe('digest helpers', () => {
  it('splits algorithm and hex', () => {
    assert.equal(digestAlgorithm(parseDigest(D_A)), 'sha256');
    assert.equal(digestHex(parseDigest(D_A)), D_A.slice(7));
    assert.equal(digestAlgorithm(parseDigest(SHA512_ABC)), 'sha512');
  });

  const vectors: Array<[data: Uint8Array | string, digest: string]> = [
    ['', EMPTY_SHA256_DIGEST],
    ['a', D_A],
    ['{}', EMPTY_JSON_DESCRIPTOR.digest],
    // printf 'hello\n' | sha256sum
    ['hello\n', 'sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03'],
    // printf 'héllo' | sha256sum — strings hash as UTF-8
    ['héllo', 'sha256:3c48591d8d098a4538f5e013dfcf406e948eac4d3277b10bf614e295d6068179'],
    [new Uint8Array([0x61]), D_A],
    [new Uint8Array(0), EMPTY_SHA256_DIGEST],
  ];
  for (const [data, digest] of vectors) {
    it(`sha256Digest(${JSON.stringify(typeof data === 'string' ? data : [...data])})`, () => {
      assert.equal(sha256Digest(data), digest);
    });
  }

  const shorts: Array<[input: string, short: string]> = [
    [D_A, 'ca978112ca1b'],
    [SHA512_ABC, 'ddaf35a19361'],
    ['ca978112ca1bbdcafac2', 'ca978112ca1b'],
    ['sha256:abc', 'abc'],
    ['', ''],
  ];
  for (const [input, short] of shorts) {
    it(`shortDigest(${JSON.stringify(input.slice(0, 20))}) = ${JSON.stringify(short)}`, () => {
      assert.equal(shortDigest(input), short);
    });
  }

  it('the empty JSON descriptor matches its inline data', () => {
    const bytes = Buffer.from(EMPTY_JSON_DESCRIPTOR.data!, 'base64');
    assert.equal(bytes.toString(), '{}');
    assert.equal(bytes.length, EMPTY_JSON_DESCRIPTOR.size);
    assert.equal(sha256Digest(bytes), EMPTY_JSON_DESCRIPTOR.digest);
  });
});

describe('chainIds', () => {
  const cases: Array<[name: string, diffIds: string[], expected: string[]]> = [
    ['empty stack', [], []],
    ['one layer: chainID is the diffID', [D_A], [D_A]],
    ['two layers', [D_A, D_B], [D_A, CHAIN_AB]],
    ['three layers', [D_A, D_B, D_C], [D_A, CHAIN_AB, CHAIN_ABC]],
    // Order matters: [b, a] is a different stack from [a, b].
    ['order matters', [D_B, D_A], [D_B, sha256Digest(`${D_B} ${D_A}`)]],
    ['sha512 base layer kept as is', [SHA512_ABC], [SHA512_ABC]],
  ];
  for (const [name, diffIds, expected] of cases) {
    it(name, () => {
      assert.deepEqual(chainIds(diffIds), expected);
      if (expected.length > 0) assert.equal(chainId(diffIds), expected.at(-1));
    });
  }

  it('a repeated layer still gets a distinct chainID', () => {
    const ids = chainIds([D_A, D_A, D_A]);
    assert.equal(new Set(ids).size, 3);
  });

  it('the [a, b] chainID differs from [b, a]', () => {
    assert.notEqual(chainId([D_A, D_B]), chainId([D_B, D_A]));
  });

  it('rejects a malformed diffID, naming its index', () => {
    assert.throws(
      () => chainIds([D_A, 'sha256:nothex']),
      (err: unknown) =>
        err instanceof InvalidArgumentError && /diffID 1: invalid digest "sha256:nothex"/.test(err.message),
    );
    assert.throws(() => chainIds([HEX64]), /diffID 0: invalid digest .*missing algorithm prefix/);
  });

  it('chainId of an empty stack throws', () => {
    assert.throws(() => chainId([]), InvalidArgumentError);
  });
});

describe('media types', () => {
  const compressions: Array<[mediaType: string, compression: LayerCompression]> = [
    [MEDIA_TYPE_OCI_LAYER, 'none'],
    [MEDIA_TYPE_OCI_LAYER_GZIP, 'gzip'],
    [MEDIA_TYPE_OCI_LAYER_ZSTD, 'zstd'],
    [MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_GZIP, 'gzip'],
    [MEDIA_TYPE_DOCKER_LAYER, 'none'],
    [MEDIA_TYPE_DOCKER_LAYER_GZIP, 'gzip'],
    [MEDIA_TYPE_DOCKER_LAYER_ZSTD, 'zstd'],
    [MEDIA_TYPE_DOCKER_LAYER_FOREIGN_GZIP, 'gzip'],
    [`${MEDIA_TYPE_OCI_LAYER_GZIP}; foo=bar`, 'gzip'],
  ];
  for (const [mediaType, compression] of compressions) {
    it(`layerCompression(${mediaType}) = ${compression}`, () => {
      assert.equal(layerCompression(mediaType), compression);
      assert.equal(isLayerMediaType(mediaType), true);
    });
  }

  for (const notLayer of [MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_OCI_CONFIG, 'application/octet-stream', '']) {
    it(`layerCompression rejects ${JSON.stringify(notLayer)}`, () => {
      assert.throws(() => layerCompression(notLayer), InvalidArgumentError);
      assert.equal(isLayerMediaType(notLayer), false);
    });
  }

  it('classifies manifests, indexes and configs', () => {
    const table: Array<[string, 'manifest' | 'index' | 'config']> = [
      [MEDIA_TYPE_OCI_MANIFEST, 'manifest'],
      [MEDIA_TYPE_DOCKER_MANIFEST, 'manifest'],
      [`${MEDIA_TYPE_DOCKER_MANIFEST}; charset=utf-8`, 'manifest'],
      [MEDIA_TYPE_OCI_INDEX, 'index'],
      [MEDIA_TYPE_DOCKER_MANIFEST_LIST, 'index'],
      [MEDIA_TYPE_OCI_CONFIG, 'config'],
      [MEDIA_TYPE_DOCKER_CONFIG, 'config'],
    ];
    for (const [mediaType, kind] of table) {
      assert.equal(isManifestMediaType(mediaType), kind === 'manifest', mediaType);
      assert.equal(isIndexMediaType(mediaType), kind === 'index', mediaType);
      assert.equal(isConfigMediaType(mediaType), kind === 'config', mediaType);
      assert.equal(isLayerMediaType(mediaType), false, mediaType);
    }
  });

  it('knows non-distributable layers', () => {
    assert.equal(isNondistributableMediaType(MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_GZIP), true);
    assert.equal(isNondistributableMediaType(MEDIA_TYPE_DOCKER_LAYER_FOREIGN_GZIP), true);
    assert.equal(isNondistributableMediaType(MEDIA_TYPE_OCI_LAYER_GZIP), false);
    assert.equal(isNondistributableMediaType(MEDIA_TYPE_DOCKER_LAYER_GZIP), false);
  });

  it('baseMediaType drops parameters and whitespace', () => {
    assert.equal(baseMediaType(' application/json ; charset=utf-8'), 'application/json');
    assert.equal(baseMediaType('application/json'), 'application/json');
  });

  it('layerMediaType is the inverse of layerCompression', () => {
    for (const flavour of ['oci', 'docker'] as const) {
      for (const compression of ['none', 'gzip', 'zstd'] as const) {
        const mediaType = layerMediaType(compression, flavour);
        assert.equal(layerCompression(mediaType), compression);
        assert.equal(mediaType.includes('docker'), flavour === 'docker');
      }
    }
    assert.equal(layerMediaType('gzip'), MEDIA_TYPE_OCI_LAYER_GZIP);
    assert.throws(() => layerMediaType('lz4' as LayerCompression), InvalidArgumentError);
    assert.throws(() => layerMediaType('toString' as LayerCompression), InvalidArgumentError);
  });
});
