// The contract between dockless-runtime's Node side and its native front end
// (native/runtime/): the version it prints and the native-state lines it reads.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { RUNTIME_VERSION } from '../../src/oci-runtime/main.js';
import { features } from '../../src/oci-runtime/spec-default.js';
import { NATIVE_STATE_FORMAT, OCI_VERSION, nativeStateText, type OciRecord } from '../../src/oci-runtime/state.js';

const native = (file: string) => readFileSync(join(import.meta.dirname, '..', '..', 'native', 'runtime', file), 'utf8');

const record: OciRecord = {
  id: 'c-1.x',
  bundle: '/srv/a "b"\\c',
  rootfs: '/srv/rootfs',
  pid: 4242,
  pidStart: 3303179,
  created: '2026-12-03T17:00:56.325Z',
  owner: 1000,
  annotations: { 'org.example/k': 'v "q"', empty: '' },
  cgroups: [
    { dir: '/sys/fs/cgroup/freezer/dockless-runtime/c-1.x', version: 1, controllers: ['freezer'] },
    { dir: '/sys/fs/cgroup/cpu,cpuacct/x', version: 1, controllers: ['cpu', 'cpuacct'] },
    { dir: '/sys/fs/cgroup/unified/x', version: 2, controllers: [] },
  ],
  namespaces: ['pid'],
  userns: false,
  hooks: ['poststop'],
};

describe('dockless-runtime native front end contract', () => {
  it('prints the version and runtime-spec version the Node front end prints', () => {
    const header = native('version.h');
    assert.match(header, new RegExp(`#define DLRT_VERSION "${RUNTIME_VERSION.replace(/\./g, '\\.')}"`));
    assert.match(header, new RegExp(`#define DLRT_OCI_VERSION "${OCI_VERSION.replace(/\./g, '\\.')}"`));
  });

  it('prints the features document the Node front end prints, byte for byte', () => {
    const json = `${JSON.stringify(features(), null, '    ')}\n`;
    const lines = json.split('\n').slice(0, -1).map((l) => `\t"${l.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}\\n"`);
    const macro = `#define DLRT_FEATURES \\\n${lines.join(' \\\n')}\n`;
    assert.ok(native('features.h').includes(macro), `native/runtime/features.h must hold:\n${macro}`);
  });

  it('native-state holds one key per line, strings as JSON literals, cgroups with their version and controllers', () => {
    assert.equal(
      nativeStateText(record),
      [
        NATIVE_STATE_FORMAT,
        'id "c-1.x"',
        'pid 4242',
        'pidStart 3303179',
        'bundle "/srv/a \\"b\\"\\\\c"',
        'rootfs "/srv/rootfs"',
        'created "2026-12-03T17:00:56.325Z"',
        'owner 1000',
        'annotations {"org.example/k":"v \\"q\\"","empty":""}',
        'cgroup 1 freezer "/sys/fs/cgroup/freezer/dockless-runtime/c-1.x"',
        'cgroup 1 cpu,cpuacct "/sys/fs/cgroup/cpu,cpuacct/x"',
        'cgroup 2 - "/sys/fs/cgroup/unified/x"',
        'hooks poststop',
        '',
      ].join('\n'),
    );
    assert.doesNotMatch(nativeStateText({ ...record, hooks: [] }), /^hooks/m);
  });

  it('the C reader knows the format line and every key the Node side writes', () => {
    const reader = native('record.c');
    assert.ok(reader.includes(`#define FORMAT_LINE "${NATIVE_STATE_FORMAT}"`));
    const keys = nativeStateText(record)
      .split('\n')
      .slice(1)
      .filter(Boolean)
      .map((line) => line.split(' ')[0]!);
    for (const key of new Set(keys)) assert.ok(reader.includes(`strcmp(line, "${key}") == 0`), `record.c does not read \`${key}\``);
  });
});
