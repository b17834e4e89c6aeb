#!/usr/bin/env node
// Runs a command (the test runner) in a network namespace of its own, with only
// loopback up, when run as root: root tests make bridges, veths, nftables tables
// and set ip_forward, and none of that may reach the machine's own network.
// A non-root run (unit tests only) and a machine without unshare/ip run as they
// are, and say so.
import { spawnSync } from 'node:child_process';

const [command, ...args] = process.argv.slice(2);
if (command === undefined) {
  console.error('usage: node test/sandbox.mjs COMMAND [ARG...]');
  process.exit(2);
}

function has(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

let why;
if (process.env.DOCKLESS_TEST_NETNS === 'host') why = 'DOCKLESS_TEST_NETNS=host';
else if (process.env.DOCKLESS_IN_TEST_NETNS === '1') why = undefined;
else if (process.getuid?.() !== 0) why = 'not root';
else if (!has('unshare') || !has('ip')) why = 'unshare or ip missing (util-linux, iproute2)';

let result;
if (why === undefined && process.env.DOCKLESS_IN_TEST_NETNS !== '1') {
  console.log('# tests run in a throwaway network namespace (loopback only); the machine\'s network is not touched');
  result = spawnSync('unshare', ['--net', '--', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh', command, ...args], {
    stdio: 'inherit',
    env: { ...process.env, DOCKLESS_IN_TEST_NETNS: '1' },
  });
} else {
  if (why !== undefined) console.log(`# tests run in this network namespace: ${why}`);
  result = spawnSync(command, args, { stdio: 'inherit' });
}
if (result.error !== undefined) {
  console.error(`sandbox: ${result.error.message}`);
  process.exit(1);
}
process.exit(result.status ?? 1);
