import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NotFoundError } from '../../src/errors.js';
import type { Descriptor, ImageIndex, Platform } from '../../src/oci/index.js';
import { selectManifest } from '../../src/transfer/select-platform.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

let n = 0;
function entry(platform: Platform | undefined, extra: Partial<Descriptor> = {}): Descriptor {
  n++;
  const d: Descriptor = { mediaType: OCI_MANIFEST, digest: `sha256:${String(n).padStart(64, '0')}`, size: 100 + n, ...extra };
  if (platform !== undefined) d.platform = platform;
  return d;
}
const index = (...manifests: Descriptor[]): ImageIndex => ({ schemaVersion: 2, manifests });

const amd64 = entry({ os: 'linux', architecture: 'amd64' });
const arm64v8 = entry({ os: 'linux', architecture: 'arm64', variant: 'v8' });
const armv7 = entry({ os: 'linux', architecture: 'arm', variant: 'v7' });
const armv6 = entry({ os: 'linux', architecture: 'arm', variant: 'v6' });
const windows = entry({ os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.1' });
const attestation = entry({ os: 'unknown', architecture: 'unknown' }, {
  annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': amd64.digest },
});
const multi = index(attestation, windows, amd64, arm64v8, armv7, armv6);

describe('selectManifest', () => {
  const table: Array<[name: string, want: Platform, expected: Descriptor]> = [
    ['linux/amd64', { os: 'linux', architecture: 'amd64' }, amd64],
    ['linux/arm64 matches arm64/v8', { os: 'linux', architecture: 'arm64' }, arm64v8],
    ['linux/arm64/v8', { os: 'linux', architecture: 'arm64', variant: 'v8' }, arm64v8],
    ['linux/arm means arm/v7', { os: 'linux', architecture: 'arm' }, armv7],
    ['linux/arm/v6', { os: 'linux', architecture: 'arm', variant: 'v6' }, armv6],
    ['aliases: x86_64', { os: 'linux', architecture: 'x86_64' }, amd64],
    ['windows', { os: 'windows', architecture: 'amd64' }, windows],
  ];
  for (const [name, want, expected] of table) {
    it(name, () => assert.equal(selectManifest(multi, want, 'pull x').digest, expected.digest));
  }

  it('takes the first match when several entries match', () => {
    const second = entry({ os: 'linux', architecture: 'amd64' });
    assert.equal(selectManifest(index(amd64, second), { os: 'linux', architecture: 'amd64' }, 'x').digest, amd64.digest);
  });

  it('accepts Docker manifest list entries', () => {
    const docker = entry({ os: 'linux', architecture: 'amd64' }, { mediaType: DOCKER_MANIFEST });
    assert.equal(selectManifest(index(docker), { os: 'linux', architecture: 'amd64' }, 'x').digest, docker.digest);
  });

  it('never picks an attestation manifest, even for a platform that matches it', () => {
    assert.throws(() => selectManifest(index(attestation), { os: 'unknown', architecture: 'unknown' }, 'x'), NotFoundError);
  });

  it('takes the only entry of an index that names no platform', () => {
    const only = entry(undefined);
    assert.equal(selectManifest(index(only), { os: 'linux', architecture: 'riscv64' }, 'x').digest, only.digest);
  });

  it('fails naming the wanted platform and the ones the index has', () => {
    assert.throws(
      () => selectManifest(multi, { os: 'linux', architecture: 's390x' }, 'pull example.com/app:1'),
      (err: unknown) =>
        err instanceof NotFoundError &&
        /^pull example\.com\/app:1: no manifest for linux\/s390x in the image index \(it has windows\/amd64, linux\/amd64, linux\/arm64\/v8, linux\/arm\/v7, linux\/arm\/v6\)$/.test(
          err.message,
        ),
    );
  });

  it('does not fall back across architectures or variants', () => {
    assert.throws(() => selectManifest(index(amd64), { os: 'linux', architecture: '386' }, 'x'), NotFoundError);
    assert.throws(() => selectManifest(index(armv6), { os: 'linux', architecture: 'arm', variant: 'v7' }, 'x'), NotFoundError);
  });

  it('skips entries that are not manifests', () => {
    const blob = entry({ os: 'linux', architecture: 'amd64' }, { mediaType: 'application/octet-stream' });
    assert.throws(() => selectManifest(index(blob), { os: 'linux', architecture: 'amd64' }, 'x'), NotFoundError);
  });
});
