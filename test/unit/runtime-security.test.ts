import { strict as assert } from 'node:assert';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { InvalidArgumentError, PermissionError } from '../../src/errors.js';
import { capBitmask, LAST_CAP, resolveCaps } from '../../src/runtime/capabilities.js';
import { MASKED_PATHS, READONLY_PATHS } from '../../src/runtime/defaults.js';
import { AUDIT_ARCH } from '../../src/runtime/seccomp/compile.js';
import { SYSCALLS_X86_64 } from '../../src/runtime/seccomp/syscalls-x86_64.js';
import {
  applyDeviceAllowList,
  DEFAULT_DEVICE_RULES,
  deviceCgroupWrites,
  deviceRules,
  formatDeviceRule,
  PRIVILEGED_DEVICE_RULES,
  RLIMIT_NAMES,
  securityPlan,
  type SecurityHost,
} from '../../src/runtime/security.js';
import { evaluate, validate } from '../fixtures/bpf-interpreter.js';

const ALL = (1n << BigInt(LAST_CAP + 1)) - 1n;
const CAP_SYS_RESOURCE = 24n;
// This machine's kind of sandbox: every capability but CAP_SYS_RESOURCE.
const host: SecurityHost = { arch: 'x86_64', kernel: '6.1.0', available: ALL & ~(1n << CAP_SYS_RESOURCE) };
const CLONE_NEWUSER = 0x10000000;

function verdict(program: Buffer | undefined, name: string, args: number[] = []) {
  assert.ok(program !== undefined, 'no seccomp program');
  return evaluate(program, { nr: SYSCALLS_X86_64.get(name)!, arch: AUDIT_ARCH.x86_64, args });
}

test('a default container gets Docker’s 14 capabilities, no_new_privs, the default seccomp profile and masked paths', () => {
  const plan = securityPlan({}, host);
  assert.equal(plan.caps, 0xa80425fbn);
  assert.equal(plan.caps, capBitmask(resolveCaps()));
  assert.equal(plan.noNewPrivileges, true);
  assert.deepEqual(plan.masked, MASKED_PATHS);
  assert.deepEqual(plan.readonlyPaths, READONLY_PATHS);
  assert.deepEqual(plan.rlimits, []);
  validate(plan.seccomp!);
  assert.deepEqual(verdict(plan.seccomp, 'read'), { action: 'allow', data: 0 });
  assert.deepEqual(verdict(plan.seccomp, 'execve'), { action: 'allow', data: 0 });
  // The escapes the profile closes without CAP_SYS_ADMIN.
  assert.deepEqual(verdict(plan.seccomp, 'mount'), { action: 'errno', data: 1 });
  assert.deepEqual(verdict(plan.seccomp, 'unshare', [CLONE_NEWUSER]), { action: 'errno', data: 1 });
  assert.deepEqual(verdict(plan.seccomp, 'init_module'), { action: 'errno', data: 1 });
  assert.deepEqual(verdict(plan.seccomp, 'finit_module'), { action: 'errno', data: 1 });
});

test('capAdd and capDrop change the capability set and the seccomp rules that follow it', () => {
  const admin = securityPlan({ capAdd: ['sys_admin'] }, host);
  assert.equal(admin.caps, 0xa80425fbn | (1n << 21n));
  assert.deepEqual(verdict(admin.seccomp, 'mount'), { action: 'allow', data: 0 });
  assert.deepEqual(verdict(admin.seccomp, 'unshare', [CLONE_NEWUSER]), { action: 'allow', data: 0 });

  const noChown = securityPlan({ capDrop: ['CAP_CHOWN'] }, host);
  assert.equal(noChown.caps, 0xa80425fbn & ~1n);

  const none = securityPlan({ capDrop: ['ALL'] }, host);
  assert.equal(none.caps, 0n);
  assert.ok(none.seccomp !== undefined);
});

test('capAdd ALL gets every capability the helper can hold; naming one it cannot is a PermissionError', () => {
  assert.equal(securityPlan({ capAdd: ['ALL'] }, host).caps, host.available);
  assert.throws(() => securityPlan({ capAdd: ['SYS_RESOURCE'] }, host), PermissionError);
  assert.throws(() => securityPlan({ capAdd: ['NOT_A_CAP'] }, host), InvalidArgumentError);
  // A default capability the host lacks is left out rather than failing every container.
  const noMknod = securityPlan({}, { ...host, available: host.available! & ~(1n << 27n) });
  assert.equal(noMknod.caps, 0xa80425fbn & ~(1n << 27n));
});

test('privileged keeps every capability and runs unconfined without masked or read-only paths', () => {
  const plan = securityPlan({ privileged: true, capDrop: ['ALL'], seccomp: { defaultAction: 'SCMP_ACT_KILL' } }, host);
  assert.equal(plan.caps, undefined);
  assert.equal(plan.seccomp, undefined);
  assert.deepEqual(plan.masked, []);
  assert.deepEqual(plan.readonlyPaths, []);
  assert.equal(plan.noNewPrivileges, true);
  assert.equal(securityPlan({ privileged: true, noNewPrivileges: false }, host).noNewPrivileges, false);
});

test('seccomp: unconfined gives no program; a custom profile, object or Docker JSON text, is compiled', () => {
  assert.equal(securityPlan({ seccomp: 'unconfined' }, host).seccomp, undefined);
  const profile = {
    defaultAction: 'SCMP_ACT_ALLOW' as const,
    syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' as const }],
  };
  for (const seccomp of [profile, JSON.stringify(profile)]) {
    const plan = securityPlan({ seccomp }, host);
    assert.deepEqual(verdict(plan.seccomp, 'mkdir'), { action: 'errno', data: 1 });
    assert.deepEqual(verdict(plan.seccomp, 'mount'), { action: 'allow', data: 0 });
  }
  assert.throws(() => securityPlan({ seccomp: '{"defaultAction":"SCMP_ACT_NOPE"}' }, host), InvalidArgumentError);
});

test('noNewPrivileges defaults to true and can be turned off', () => {
  assert.equal(securityPlan({ noNewPrivileges: false }, host).noNewPrivileges, false);
  assert.throws(() => securityPlan({ noNewPrivileges: 'yes' as unknown as boolean }, host), InvalidArgumentError);
});

test('rlimits become helper arguments; unlimited is Infinity; bad ones are InvalidArgumentErrors', () => {
  assert.deepEqual(
    securityPlan({ rlimits: { nofile: { soft: 1024, hard: 4096 }, core: { soft: 0, hard: Infinity } } }, host).rlimits,
    [
      { name: 'nofile', soft: '1024', hard: '4096' },
      { name: 'core', soft: '0', hard: 'unlimited' },
    ],
  );
  for (const rlimits of [
    { nofile: { soft: 10, hard: 5 } },
    { nofile: { soft: -1, hard: 5 } },
    { nofile: { soft: 1.5, hard: 5 } },
    { files: { soft: 1, hard: 1 } },
    { nofile: 5 },
    [],
  ]) {
    assert.throws(() => securityPlan({ rlimits: rlimits as never }, host), InvalidArgumentError, JSON.stringify(rlimits));
  }
});

test('rlimit names agree with the helper’s table', async () => {
  const c = await readFile(join(import.meta.dirname, '..', '..', 'native', 'security.c'), 'utf8');
  const names = [...c.matchAll(/\{"([a-z]+)", RLIMIT_[A-Z]+\}/g)].map((m) => m[1]);
  assert.deepEqual(names.sort(), [...RLIMIT_NAMES].sort());
});

test('the devices allow-list denies everything but mknod and the safe nodes; privileged allows all', () => {
  assert.deepEqual(DEFAULT_DEVICE_RULES.map(formatDeviceRule), [
    'a *:* rwm',
    'c *:* m',
    'b *:* m',
    'c 1:3 rwm',
    'c 1:5 rwm',
    'c 1:7 rwm',
    'c 1:8 rwm',
    'c 1:9 rwm',
    'c 5:0 rwm',
    'c 5:1 rwm',
    'c 5:2 rwm',
    'c 136:* rwm',
  ]);
  assert.equal(DEFAULT_DEVICE_RULES[0]!.allow, false);
  assert.deepEqual(deviceRules({}), DEFAULT_DEVICE_RULES);
  assert.deepEqual(deviceRules({ privileged: true }), PRIVILEGED_DEVICE_RULES);
});

test('deviceCgroupWrites gives one write per rule, the deny-all first', () => {
  const writes = deviceCgroupWrites();
  assert.equal(writes.length, DEFAULT_DEVICE_RULES.length);
  assert.deepEqual(writes[0], { file: 'devices.deny', value: 'a *:* rwm' });
  assert.deepEqual(writes[3], { file: 'devices.allow', value: 'c 1:3 rwm' });
  assert.deepEqual(deviceCgroupWrites(PRIVILEGED_DEVICE_RULES), [{ file: 'devices.allow', value: 'a *:* rwm' }]);
});

test('applyDeviceAllowList writes the deny rule, then each allow rule, one per write', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dl-devices-'));
  try {
    // A regular file keeps only the last write, as a cgroup file would see each write apart.
    const seen: string[] = [];
    await writeFile(join(dir, 'devices.deny'), '');
    await writeFile(join(dir, 'devices.allow'), '');
    const rules = DEFAULT_DEVICE_RULES.slice(0, 2);
    await applyDeviceAllowList(dir, rules);
    seen.push(await readFile(join(dir, 'devices.deny'), 'utf8'), await readFile(join(dir, 'devices.allow'), 'utf8'));
    assert.deepEqual(seen, ['a *:* rwm', 'c *:* m']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
