/**
 * Benches run as root on the shared machine: one whose cases publish ports or
 * make networks builds a bridge, an `inet dockless` table and sets ip_forward,
 * so it must run them in a throwaway network namespace (bench/common.ts's
 * inNetSandbox), as the integration tests do.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';

const BENCH = resolve(import.meta.dirname, '../../bench');

/** What makes a bench touch the network as root: published ports, a bridge, a network, a service the harness publishes. */
const NETWORKED = /\bports:|network: 'bridge'|createNetwork\(|getNetwork\(|startRedis\(|startPostgres\(|'-p'/;

test('a bench that publishes ports or makes a network never leaves bridges, nft tables or ip_forward on the host', () => {
  const files = readdirSync(BENCH).filter((f) => f.endsWith('.ts') && !f.startsWith('_'));
  const networked = files.filter((f) => NETWORKED.test(readFileSync(join(BENCH, f), 'utf8')));
  assert.ok(networked.includes('ports.ts'), 'the pattern no longer finds the ports bench');
  const outside = networked.filter((f) => !/^inNetSandbox\(\);$/m.test(readFileSync(join(BENCH, f), 'utf8')));
  assert.deepEqual(outside, [], `these benches run their network cases on the host: ${outside.join(', ')}`);
});
