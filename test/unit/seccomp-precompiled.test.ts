/**
 * The default seccomp profile compiled at build time (tools/bundle.mjs) must
 * be, byte for byte, what the container would have compiled itself: a
 * stale or wrong table would silently change which syscalls containers may make.
 */
import assert from 'node:assert/strict';
import { release } from 'node:os';
import { test } from 'node:test';
import { capNames, resolveCaps } from '../../src/runtime/capabilities.js';
import { dockerDefaultProfile } from '../../src/runtime/seccomp/default-profile.js';
import { compileSeccomp, precompileDefaultSeccomp, precompiledSeccomp } from '../../src/runtime/seccomp/compile.js';

const caps = capNames(resolveCaps({}));
const table = precompileDefaultSeccomp([caps]);

test('the precompiled default program is the compiled one, on both architectures, for every kernel from the threshold on', () => {
  for (const arch of ['x86_64', 'aarch64'] as const) {
    for (const kernel of [table.kernel, '5.10.0', '6.1.0-18-amd64', '7.0', release()]) {
      const served = precompiledSeccomp(table, arch, caps, kernel);
      assert.ok(served !== undefined, `${arch} ${kernel}: not served`);
      assert.deepEqual(served, compileSeccomp(dockerDefaultProfile(), { arch, caps, kernel }), `${arch} ${kernel}`);
    }
  }
});

test('a kernel below the threshold, another capability set or another architecture is compiled, not served', () => {
  assert.equal(precompiledSeccomp(table, 'x86_64', caps, '4.4.0'), undefined);
  assert.equal(precompiledSeccomp(table, 'x86_64', [...caps, 'CAP_SYS_PTRACE'], release()), undefined);
  assert.equal(precompiledSeccomp(table, 'riscv64', caps, release()), undefined);
  assert.equal(precompiledSeccomp(undefined, 'x86_64', caps, release()), undefined);
});

test('the threshold is the highest minKernel of the default profile', () => {
  const mins = (dockerDefaultProfile().syscalls ?? []).flatMap((s) => [s.includes?.minKernel, s.excludes?.minKernel]).filter((k) => k !== undefined);
  const num = (k: string) => k.split('.').slice(0, 2).map(Number) as [number, number];
  const highest = mins.map(num).reduce((a, b) => (b[0] > a[0] || (b[0] === a[0] && b[1] > a[1]) ? b : a), [0, 0] as [number, number]);
  assert.deepEqual(num(table.kernel), highest);
});
