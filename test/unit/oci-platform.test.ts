import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { InvalidArgumentError } from '../../src/errors.js';
import {
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  parsePlatform,
  platformFromNode,
  platformMatches,
  type Platform,
} from '../../src/oci/index.js';

describe('platformFromNode', () => {
  const table: Array<[platform: string, arch: string, armVersion: string | undefined, expected: Platform]> = [
    ['linux', 'x64', undefined, { os: 'linux', architecture: 'amd64' }],
    ['linux', 'arm64', undefined, { os: 'linux', architecture: 'arm64', variant: 'v8' }],
    ['linux', 'arm', '7', { os: 'linux', architecture: 'arm', variant: 'v7' }],
    ['linux', 'arm', '6', { os: 'linux', architecture: 'arm', variant: 'v6' }],
    ['linux', 'arm', undefined, { os: 'linux', architecture: 'arm', variant: 'v7' }],
    ['linux', 'arm', 'garbage', { os: 'linux', architecture: 'arm', variant: 'v7' }],
    ['linux', 'ia32', undefined, { os: 'linux', architecture: '386' }],
    ['linux', 'ppc64', undefined, { os: 'linux', architecture: 'ppc64le' }],
    ['aix', 'ppc64', undefined, { os: 'aix', architecture: 'ppc64' }],
    ['linux', 's390x', undefined, { os: 'linux', architecture: 's390x' }],
    ['linux', 'riscv64', undefined, { os: 'linux', architecture: 'riscv64' }],
    ['linux', 'loong64', undefined, { os: 'linux', architecture: 'loong64' }],
    ['linux', 'mipsel', undefined, { os: 'linux', architecture: 'mipsle' }],
    ['darwin', 'arm64', undefined, { os: 'darwin', architecture: 'arm64', variant: 'v8' }],
    ['win32', 'x64', undefined, { os: 'windows', architecture: 'amd64' }],
    ['sunos', 'x64', undefined, { os: 'solaris', architecture: 'amd64' }],
    ['freebsd', 'x64', undefined, { os: 'freebsd', architecture: 'amd64' }],
  ];
  for (const [platform, arch, armVersion, expected] of table) {
    it(`${platform}/${arch}${armVersion === undefined ? '' : ` (arm_version ${armVersion})`}`, () => {
      assert.deepEqual(platformFromNode(platform, arch, armVersion), expected);
    });
  }
});

describe('hostPlatform', () => {
  it('matches this process', () => {
    const host = hostPlatform();
    const expected = platformFromNode(
      process.platform,
      process.arch,
      (process.config.variables as Record<string, unknown>)['arm_version'] as string | undefined,
    );
    assert.deepEqual(host, expected);
    assert.ok(host.os.length > 0 && host.architecture.length > 0);
    assert.notEqual(host.architecture, 'x64');
  });

  it('returns a fresh object each call', () => {
    const a = hostPlatform();
    a.os = 'changed';
    assert.notEqual(hostPlatform().os, 'changed');
  });
});

describe('parsePlatform / formatPlatform', () => {
  const table: Array<[input: string, expected: Platform, formatted: string]> = [
    ['linux/amd64', { os: 'linux', architecture: 'amd64' }, 'linux/amd64'],
    ['linux/arm64/v8', { os: 'linux', architecture: 'arm64', variant: 'v8' }, 'linux/arm64/v8'],
    ['linux/arm/v7', { os: 'linux', architecture: 'arm', variant: 'v7' }, 'linux/arm/v7'],
    ['linux/arm/6', { os: 'linux', architecture: 'arm', variant: 'v6' }, 'linux/arm/v6'],
    ['linux/arm', { os: 'linux', architecture: 'arm' }, 'linux/arm'],
    ['Linux/AMD64', { os: 'linux', architecture: 'amd64' }, 'linux/amd64'],
    ['linux/x86_64', { os: 'linux', architecture: 'amd64' }, 'linux/amd64'],
    ['linux/aarch64', { os: 'linux', architecture: 'arm64' }, 'linux/arm64'],
    ['linux/armhf', { os: 'linux', architecture: 'arm', variant: 'v7' }, 'linux/arm/v7'],
    ['linux/armel', { os: 'linux', architecture: 'arm', variant: 'v6' }, 'linux/arm/v6'],
    ['linux/i386', { os: 'linux', architecture: '386' }, 'linux/386'],
    ['linux/386', { os: 'linux', architecture: '386' }, 'linux/386'],
    ['linux/ppc64le', { os: 'linux', architecture: 'ppc64le' }, 'linux/ppc64le'],
    ['linux/s390x', { os: 'linux', architecture: 's390x' }, 'linux/s390x'],
    ['macos/arm64', { os: 'darwin', architecture: 'arm64' }, 'darwin/arm64'],
    ['windows/amd64', { os: 'windows', architecture: 'amd64' }, 'windows/amd64'],
    ['arm64', { os: 'linux', architecture: 'arm64' }, 'linux/arm64'],
    ['aarch64', { os: 'linux', architecture: 'arm64' }, 'linux/arm64'],
    ['riscv64', { os: 'linux', architecture: 'riscv64' }, 'linux/riscv64'],
  ];
  for (const [input, expected, formatted] of table) {
    it(`${input} → ${formatted}`, () => {
      const platform = parsePlatform(input);
      assert.deepEqual(platform, expected);
      assert.equal(formatPlatform(platform), formatted);
      assert.deepEqual(parsePlatform(formatted), expected);
    });
  }

  it('an OS alone means that OS on the host architecture', () => {
    const host = hostPlatform();
    const parsed = parsePlatform('linux');
    assert.equal(parsed.os, 'linux');
    assert.equal(parsed.architecture, host.architecture);
    assert.equal(parsed.variant, host.variant);
  });

  const invalid: Array<[input: string, messagePart: RegExp]> = [
    ['', /empty/],
    ['/amd64', /empty os/],
    ['linux/', /empty architecture/],
    ['linux//v8', /empty architecture/],
    ['linux/arm64/', /empty variant/],
    ['linux/arm64/v8/extra', /too many components/],
    ['linux/amd 64', /invalid architecture "amd 64"/],
    ['lin ux/amd64', /invalid os "lin ux"/],
    ['linux/arm64/v8!', /invalid variant "v8!"/],
    ['plan10', /not a known operating system or architecture/],
    ['x86', /not a known operating system or architecture/],
  ];
  for (const [input, messagePart] of invalid) {
    it(`rejects ${JSON.stringify(input)}`, () => {
      assert.throws(() => parsePlatform(input), (err: unknown) => {
        assert.ok(err instanceof InvalidArgumentError);
        assert.match(err.message, messagePart);
        assert.ok(err.message.startsWith(`invalid platform ${JSON.stringify(input)}: `), err.message);
        return true;
      });
    });
  }

  it('formatPlatform omits an empty variant', () => {
    assert.equal(formatPlatform({ os: 'linux', architecture: 'amd64', variant: '' }), 'linux/amd64');
  });
});

describe('normalizePlatform', () => {
  const table: Array<[input: Platform, expected: Platform]> = [
    [{ os: 'linux', architecture: 'arm64', variant: 'v8' }, { os: 'linux', architecture: 'arm64' }],
    [{ os: 'linux', architecture: 'arm64', variant: '8' }, { os: 'linux', architecture: 'arm64' }],
    [{ os: 'linux', architecture: 'arm64', variant: 'v8.0' }, { os: 'linux', architecture: 'arm64' }],
    [{ os: 'linux', architecture: 'arm64', variant: 'v9.0' }, { os: 'linux', architecture: 'arm64', variant: 'v9' }],
    [{ os: 'Linux', architecture: 'aarch64' }, { os: 'linux', architecture: 'arm64' }],
    [{ os: 'linux', architecture: 'arm' }, { os: 'linux', architecture: 'arm', variant: 'v7' }],
    [{ os: 'linux', architecture: 'arm', variant: '6' }, { os: 'linux', architecture: 'arm', variant: 'v6' }],
    [{ os: 'linux', architecture: 'armhf' }, { os: 'linux', architecture: 'arm', variant: 'v7' }],
    [{ os: 'linux', architecture: 'x86_64' }, { os: 'linux', architecture: 'amd64' }],
    [{ os: 'linux', architecture: 'amd64', variant: 'v1' }, { os: 'linux', architecture: 'amd64' }],
    [{ os: 'linux', architecture: 'amd64', variant: 'v3' }, { os: 'linux', architecture: 'amd64', variant: 'v3' }],
    [
      { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.1' },
      { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.1' },
    ],
  ];
  for (const [input, expected] of table) {
    it(`${formatPlatform(input)} → ${formatPlatform(expected)}`, () => {
      assert.deepEqual(normalizePlatform(input), expected);
      assert.deepEqual(normalizePlatform(normalizePlatform(input)), expected, 'idempotent');
    });
  }

  it('does not modify its argument', () => {
    const input: Platform = { os: 'linux', architecture: 'arm64', variant: 'v8' };
    normalizePlatform(input);
    assert.deepEqual(input, { os: 'linux', architecture: 'arm64', variant: 'v8' });
  });
});

describe('platformMatches', () => {
  const p = (s: string): Platform => parsePlatform(s);
  const table: Array<[want: Platform, candidate: Platform, expected: boolean]> = [
    [p('linux/amd64'), p('linux/amd64'), true],
    [p('linux/arm64'), p('linux/arm64/v8'), true],
    [p('linux/arm64/v8'), p('linux/arm64'), true],
    [p('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: '8' }, true],
    [p('linux/arm'), p('linux/arm/v7'), true],
    [p('linux/arm/v7'), p('linux/arm'), true],
    [p('linux/aarch64'), p('linux/arm64'), true],
    [p('linux/x86_64'), p('linux/amd64'), true],
    [p('linux/amd64'), p('linux/amd64/v1'), true],
    [p('linux/amd64'), p('linux/arm64'), false],
    [p('linux/amd64'), p('windows/amd64'), false],
    [p('linux/amd64'), p('linux/386'), false],
    [p('linux/arm/v7'), p('linux/arm/v6'), false],
    [p('linux/arm/v6'), p('linux/arm'), false],
    [p('linux/arm64'), p('linux/arm64/v9'), false],
    [p('linux/amd64'), p('linux/amd64/v3'), false],
    [p('linux/arm64'), p('linux/arm'), false],
    [
      { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.1' },
      { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.1' },
      false,
    ],
    [
      { os: 'windows', architecture: 'amd64' },
      { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.1' },
      true,
    ],
  ];
  for (const [want, candidate, expected] of table) {
    it(`want ${formatPlatform(want)}${want['os.version'] ? ` (${want['os.version']})` : ''}, candidate ${formatPlatform(candidate)}${candidate['os.version'] ? ` (${candidate['os.version']})` : ''} → ${expected}`, () => {
      assert.equal(platformMatches(want, candidate), expected);
    });
  }

  it('the host platform matches itself in either form', () => {
    const host = hostPlatform();
    assert.equal(platformMatches(host, host), true);
    assert.equal(platformMatches(host, parsePlatform(formatPlatform(host))), true);
    assert.equal(platformMatches(parsePlatform(formatPlatform(host)), host), true);
  });
});
