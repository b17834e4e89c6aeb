import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { InvalidArgumentError } from '../../src/errors.js';
import {
  ALL_CAPS,
  DOCKER_DEFAULT_CAPS,
  LAST_CAP,
  capBitmask,
  capName,
  capNames,
  capNumber,
  capsFromBitmask,
  normalizeCapName,
  resolveCaps,
} from '../../src/runtime/capabilities.js';

// Docker's default set, by number: CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, FSETID 4,
// KILL 5, SETGID 6, SETUID 7, SETPCAP 8, NET_BIND_SERVICE 10, NET_RAW 13,
// SYS_CHROOT 18, MKNOD 27, AUDIT_WRITE 29, SETFCAP 31.
const DEFAULT_NUMBERS = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];
const EVERY = Array.from({ length: LAST_CAP + 1 }, (_, i) => i);

test('ALL_CAPS numbers every capability 0..40 once', () => {
  const numbers = Object.values(ALL_CAPS).sort((a, b) => a - b);
  assert.deepEqual(numbers, EVERY);
  assert.equal(ALL_CAPS.CAP_SYS_ADMIN, 21);
  assert.equal(ALL_CAPS.CAP_NET_ADMIN, 12);
  assert.equal(ALL_CAPS.CAP_BPF, 39);
  assert.equal(ALL_CAPS.CAP_CHECKPOINT_RESTORE, 40);
  assert.ok(Object.isFrozen(ALL_CAPS));
});

test('DOCKER_DEFAULT_CAPS is Docker\'s 14', () => {
  assert.equal(DOCKER_DEFAULT_CAPS.length, 14);
  assert.deepEqual(DOCKER_DEFAULT_CAPS.map(capNumber).sort((a, b) => a - b), DEFAULT_NUMBERS);
  assert.ok(Object.isFrozen(DOCKER_DEFAULT_CAPS));
});

test('names: short, full and any case', () => {
  const cases: [string, string][] = [
    ['NET_ADMIN', 'CAP_NET_ADMIN'],
    ['CAP_NET_ADMIN', 'CAP_NET_ADMIN'],
    ['net_admin', 'CAP_NET_ADMIN'],
    ['cap_sys_admin', 'CAP_SYS_ADMIN'],
    [' sys_ptrace ', 'CAP_SYS_PTRACE'],
  ];
  for (const [input, want] of cases) assert.equal(normalizeCapName(input), want, input);
  assert.equal(capNumber('sys_admin'), 21);
  assert.equal(capName(21), 'CAP_SYS_ADMIN');
  assert.deepEqual(capNames([0, 39]), ['CAP_CHOWN', 'CAP_BPF']);
  for (const bad of ['NET_ADMN', 'CAP_', '', 'ALL']) assert.throws(() => normalizeCapName(bad), InvalidArgumentError, bad);
  for (const bad of [-1, 41, 1.5]) assert.throws(() => capName(bad), InvalidArgumentError, String(bad));
});

test('resolveCaps follows docker run', () => {
  const without = (...caps: number[]): number[] => DEFAULT_NUMBERS.filter((c) => !caps.includes(c));
  const cases: [string, Parameters<typeof resolveCaps>[0], number[]][] = [
    ['default', {}, DEFAULT_NUMBERS],
    ['no options', undefined, DEFAULT_NUMBERS],
    ['add one', { capAdd: ['NET_ADMIN'] }, [...DEFAULT_NUMBERS, 12].sort((a, b) => a - b)],
    ['add with prefix, any case', { capAdd: ['cap_sys_admin'] }, [...DEFAULT_NUMBERS, 21].sort((a, b) => a - b)],
    ['add one already there', { capAdd: ['CHOWN'] }, DEFAULT_NUMBERS],
    ['drop two', { capDrop: ['MKNOD', 'CAP_NET_RAW'] }, without(27, 13)],
    ['drop one not there', { capDrop: ['SYS_ADMIN'] }, DEFAULT_NUMBERS],
    ['add and drop', { capAdd: ['NET_ADMIN'], capDrop: ['MKNOD'] }, [0, 1, 3, 4, 5, 6, 7, 8, 10, 12, 13, 18, 29, 31]],
    ['drop ALL', { capDrop: ['ALL'] }, []],
    ['drop all, add back', { capDrop: ['all'], capAdd: ['NET_BIND_SERVICE', 'CHOWN'] }, [0, 10]],
    ['add ALL', { capAdd: ['ALL'] }, EVERY],
    ['add ALL, drop some', { capAdd: ['ALL'], capDrop: ['SYS_ADMIN', 'SYS_MODULE'] }, EVERY.filter((c) => c !== 21 && c !== 16)],
    ['privileged', { privileged: true }, EVERY],
    ['privileged ignores drop', { privileged: true, capDrop: ['ALL'] }, EVERY],
    ['not privileged', { privileged: false }, DEFAULT_NUMBERS],
  ];
  for (const [name, options, want] of cases) assert.deepEqual(resolveCaps(options), want, name);
});

test('resolveCaps rejects unknown capabilities, naming the option', () => {
  assert.throws(() => resolveCaps({ capAdd: ['NET_ADMN'] }), (err: unknown) => err instanceof InvalidArgumentError && /capAdd: unknown capability `NET_ADMN`/.test(err.message));
  assert.throws(() => resolveCaps({ capDrop: ['FOO'] }), (err: unknown) => err instanceof InvalidArgumentError && /capDrop: unknown capability `FOO`/.test(err.message));
  // Validated even when privileged makes the lists moot, as Docker does.
  assert.throws(() => resolveCaps({ privileged: true, capAdd: ['FOO'] }), InvalidArgumentError);
  assert.throws(() => resolveCaps({ capAdd: 'NET_ADMIN' as unknown as string[] }), InvalidArgumentError);
});

test('capBitmask and capsFromBitmask', () => {
  // The CapEff a default Docker container shows in /proc/self/status.
  assert.equal(capBitmask(resolveCaps()), 0xa80425fbn);
  assert.equal(capBitmask(resolveCaps({ privileged: true })), 0x1ffffffffffn);
  assert.equal(capBitmask([]), 0n);
  assert.deepEqual(capsFromBitmask(0xa80425fbn), DEFAULT_NUMBERS);
  assert.deepEqual(capsFromBitmask('00000000a80425fb'), DEFAULT_NUMBERS);
  assert.deepEqual(capsFromBitmask('0x1ffffffffff'), EVERY);
  assert.deepEqual(capsFromBitmask(0n), []);
  for (const caps of [[], [63], [0, 31, 32, 40]]) assert.deepEqual(capsFromBitmask(capBitmask(caps)), caps);
  assert.throws(() => capBitmask([64]), InvalidArgumentError);
  assert.throws(() => capBitmask([-1]), InvalidArgumentError);
  assert.throws(() => capsFromBitmask('xyz'), InvalidArgumentError);
  assert.throws(() => capsFromBitmask('1'.repeat(17)), InvalidArgumentError);
});
