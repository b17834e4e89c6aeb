import { strict as assert } from 'node:assert';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { enterArgs, readRootlessNetns, stopRootlessNetns, type RootlessNetnsRecord } from '../../src/ns/rootless-netns.js';
import { processStartTime } from '../../src/util/index.js';

const record = (pid: number, pidStart: number): RootlessNetnsRecord => ({
  version: 1,
  pid,
  pidStart,
  keeperPid: 0,
  keeperStart: 0,
  userns: { uidMap: [{ containerId: 0, hostId: 1000, size: 1 }], gidMap: [{ containerId: 0, hostId: 1000, size: 1 }], rootless: true },
});

// The record names its holder by pid and start time: a dead holder, or a reused pid, must never be taken for the namespace.
test('the recorded namespace is found only while its holder is the process it was', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dl-rlnetns-'));
  try {
    assert.equal(await readRootlessNetns(dir), undefined);
    const self = processStartTime(process.pid)!;
    await writeFile(join(dir, 'rootless-netns'), JSON.stringify(record(process.pid, self)));
    assert.equal((await readRootlessNetns(dir))?.pid, process.pid);
    await writeFile(join(dir, 'rootless-netns'), JSON.stringify(record(process.pid, self + 1)));
    assert.equal(await readRootlessNetns(dir), undefined);
    await writeFile(join(dir, 'rootless-netns'), '{not json');
    assert.equal(await readRootlessNetns(dir), undefined);
    // Stopping a record whose holder is another process signals nothing and removes the record.
    await writeFile(join(dir, 'rootless-netns'), JSON.stringify(record(process.pid, self + 1)));
    await stopRootlessNetns(dir);
    assert.equal(await readRootlessNetns(dir), undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("the helper enters the namespace through the holder's user namespace, then its network namespace", () => {
  assert.deepEqual(enterArgs(record(42, 7)), ['--in-userns', '/proc/42/ns/user', '--in-netns', '/proc/42/ns/net']);
});
