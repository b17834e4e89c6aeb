// A pod's network and ports as options are checked, and as its members see them
// (src/ns/namespace.ts, src/runtime/network-mode.ts): no root, no helper.
import { strict as assert } from 'node:assert';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { InvalidArgumentError, Namespace, NotFoundError, Runtime } from '../../src/index.js';
import { planNamespaces } from '../../src/runtime/network-mode.js';
import { podPaths, type PodRecord } from '../../src/runtime/pods.js';
import { processStartTime } from '../../src/util/index.js';

async function withStateDir(fn: (stateDir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'dl-podnet-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('pod network options', () => {
  it('bad network and ports are an InvalidArgumentError before anything is made', () =>
    withStateDir(async (stateDir) => {
      const runtime = new Runtime({ root: join(stateDir, 'root'), stateDir });
      const bad: Parameters<typeof Namespace.create>[1][] = [
        { network: 'host' as 'none' },
        { network: 42 as unknown as 'none' },
        { network: 'bridge', share: ['ipc'] },
        { ports: ['80'], share: ['uts'] },
        { ports: ['1:2:3:4'] },
        { ports: '80' as unknown as string[] },
      ];
      for (const options of bad) {
        await assert.rejects(Namespace.create(runtime, options), InvalidArgumentError, JSON.stringify(options));
      }
      assert.deepEqual(await Namespace.list(runtime), []);
    }));

  it("a member of a pod on a network gets the pod's /etc/hosts and /etc/resolv.conf, not files of its own", () =>
    withStateDir(async (stateDir) => {
      const id = 'a'.repeat(64);
      const paths = podPaths(stateDir, id);
      await mkdir(paths.state, { recursive: true });
      const record: PodRecord = {
        version: 1,
        id,
        created: new Date().toISOString(),
        share: ['net', 'uts'],
        hostname: 'web',
        pid: process.pid,
        pidStart: processStartTime(process.pid)!,
        keeperPid: process.pid,
        keeperStart: processStartTime(process.pid)!,
        ownerPid: process.pid,
        ownerStart: processStartTime(process.pid)!,
        detached: false,
        network: 'bridge',
      };
      await writeFile(paths.record, JSON.stringify(record));
      const ctx = {
        stateDir,
        network: undefined,
        userns: false,
        containerPaths: async (ref: string) => {
          throw new NotFoundError(`no such container: ${ref}`);
        },
      };
      const plan = await planNamespaces({ rootfs: '/', cmd: ['true'], namespace: { id } }, ctx);
      assert.deepEqual(plan.etc, { kind: 'shared', hostname: 'web', hosts: paths.hosts, resolv: paths.resolv });
      const { network: _, ...loopbackOnly } = record;
      await writeFile(paths.record, JSON.stringify(loopbackOnly));
      assert.deepEqual((await planNamespaces({ rootfs: '/', cmd: ['true'], namespace: { id } }, ctx)).etc, { kind: 'own' });
    }));
});
