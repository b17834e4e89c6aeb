import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidArgumentError } from '../../src/errors.js';
import {
  contains,
  formatIp4,
  macOf,
  nextFree,
  overlaps,
  parseGateway,
  parseIp4,
  parseProcRoutes,
  parseSubnet4,
  pickSubnet,
  ula64,
} from '../../src/ns/ipam.js';

test('subnets parse, and malformed ones or ones with host bits are InvalidArgumentErrors', () => {
  assert.deepEqual(parseSubnet4('10.88.0.0/16'), { base: parseIp4('10.88.0.0'), prefix: 16 });
  for (const bad of ['10.88.0.1/16', '10.88.0.0', '10.88.0.0/31', '10.88.0.0/7', '300.1.0.0/16', 'x/16', '10.88.0.0/16 ']) {
    assert.throws(() => parseSubnet4(bad), InvalidArgumentError, bad);
  }
});

test('overlaps: nested, equal and disjoint subnets', () => {
  const s = (t: string) => parseSubnet4(t);
  assert.equal(overlaps(s('10.0.0.0/8'), s('10.88.0.0/16')), true);
  assert.equal(overlaps(s('10.88.0.0/16'), s('10.88.0.0/16')), true);
  assert.equal(overlaps(s('10.88.128.0/17'), s('10.88.0.0/16')), true);
  assert.equal(overlaps(s('10.88.0.0/16'), s('10.89.0.0/16')), false);
  assert.equal(overlaps(s('192.168.1.0/24'), s('192.168.2.0/24')), false);
});

test('a gateway must be a host address of its subnet', () => {
  const s = parseSubnet4('10.1.2.0/24');
  assert.equal(formatIp4(parseGateway('10.1.2.254', s)), '10.1.2.254');
  for (const bad of ['10.1.2.0', '10.1.2.255', '10.1.3.1', 'nope']) assert.throws(() => parseGateway(bad, s), InvalidArgumentError, bad);
});

test('nextFree goes onwards from the last address, skips the gateway and taken ones, wraps, and says when full', () => {
  const s = parseSubnet4('10.1.2.0/29'); // hosts .1 to .6
  const ip = (n: number) => parseIp4(`10.1.2.${n}`)!;
  assert.equal(nextFree(s, ip(1), new Set(), ip(2)), ip(2));
  assert.equal(nextFree(s, ip(1), new Set([ip(2), ip(3)]), ip(2)), ip(4));
  assert.equal(nextFree(s, ip(1), new Set([ip(6)]), ip(6)), ip(2));
  assert.equal(nextFree(s, ip(1), new Set([2, 3, 4, 5, 6].map(ip)), ip(2)), undefined);
  assert.equal(contains(s, ip(7)), true);
});

test('/proc/net/route: destinations with their masks, default routes left out', () => {
  const text = [
    'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
    'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0',
    'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
    'docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0',
  ].join('\n');
  assert.deepEqual(
    parseProcRoutes(text).map((r) => [r.iface, formatIp4(r.dest.base), r.dest.prefix]),
    [
      ['eth0', '192.0.2.0', 24],
      ['docker0', '172.17.0.0', 16],
    ],
  );
});

test('pickSubnet skips subnets taken by networks or routed by the host', () => {
  const used = [parseSubnet4('10.89.0.0/16')];
  const routes = [{ iface: 'eth0', dest: parseSubnet4('10.90.0.0/15') }];
  assert.equal(formatIp4(pickSubnet(used, routes)!.base), '10.92.0.0');
  assert.equal(pickSubnet([parseSubnet4('10.0.0.0/8')], []), undefined);
});

test('MAC addresses are locally administered and carry the IPv4 address, as Docker makes them', () => {
  assert.equal(macOf(parseIp4('10.88.0.2')!), '02:42:0a:58:00:02');
});

test('an IPv6 network gets a unique local /64 named by its id', () => {
  assert.match(ula64('a'.repeat(64)), /^fd[0-9a-f]{2}(:[1-9a-f][0-9a-f]{0,3}|:0){3}::$/);
  assert.notEqual(ula64('a'.repeat(64)), ula64('b'.repeat(64)));
});
