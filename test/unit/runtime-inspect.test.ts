import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { inspectOf, ZERO_TIME } from '../../src/runtime/inspect.js';
import type { ContainerConfigRecord, ContainerRecord } from '../../src/runtime/state.js';

const record: ContainerRecord = {
  version: 1,
  id: 'a'.repeat(64),
  name: 'web',
  created: '2026-01-01T00:00:00.000Z',
  started: '2026-01-01T00:00:01.000Z',
  pid: 4242,
  pidStart: 1,
  ownerPid: 1,
  ownerStart: 1,
  detached: true,
  rootfs: '/snapshots/top',
  image: 'docker.io/library/nginx:latest',
  cmd: ['/docker-entrypoint.sh', 'nginx', '-g', 'daemon off;'],
  stdio: 'pipe',
};

const config: ContainerConfigRecord = {
  version: 1,
  hostname: 'web',
  process: {
    env: ['PATH=/usr/bin', 'A=1'],
    cwd: '/',
    user: { uid: 0, gid: 0, groups: [] },
    lowers: ['/snapshots/top', '/snapshots/base'],
    namespaces: ['mount', 'pid'],
    noNewPrivileges: true,
    rlimits: [],
  },
  entrypoint: ['/docker-entrypoint.sh'],
  cmd: ['nginx', '-g', 'daemon off;'],
  labels: { maintainer: 'x' },
  mounts: [{ type: 'bind', source: '/srv', target: '/usr/share/nginx/html', readonly: true }],
  resources: { memory: 128 * 1024 * 1024, cpus: 1.5, pids: 100 },
  init: true,
  privileged: false,
  readonlyRootfs: false,
};

test('inspectOf: Docker names and zero values for a running container', () => {
  const i = inspectOf({ record, config, status: 'running', upper: '/c/upper', work: '/c/work' });
  assert.equal(i.Name, '/web');
  assert.equal(i.Path, '/docker-entrypoint.sh');
  assert.deepEqual(i.Args, ['nginx', '-g', 'daemon off;']);
  assert.deepEqual(i.State, {
    Status: 'running',
    Running: true,
    Paused: false,
    Pid: 4242,
    ExitCode: 0,
    OOMKilled: false,
    StartedAt: '2026-01-01T00:00:01.000Z',
    FinishedAt: ZERO_TIME,
    Restarting: false,
  });
  assert.equal(i.RestartCount, 0);
  assert.deepEqual(i.HostConfig.RestartPolicy, { Name: 'no', MaximumRetryCount: 0 });
  assert.deepEqual(i.Config.Entrypoint, ['/docker-entrypoint.sh']);
  assert.deepEqual(i.Config.Cmd, ['nginx', '-g', 'daemon off;']);
  assert.equal(i.Config.User, '');
  assert.deepEqual(i.Mounts, [{ Type: 'bind', Source: '/srv', Destination: '/usr/share/nginx/html', RW: false }]);
  assert.equal(i.HostConfig.Memory, 128 * 1024 * 1024);
  assert.equal(i.HostConfig.MemorySwap, 256 * 1024 * 1024);
  assert.equal(i.HostConfig.NanoCpus, 1.5e9);
  assert.equal(i.HostConfig.CpuQuota, 150_000);
  assert.equal(i.HostConfig.PidsLimit, 100);
  assert.equal(i.HostConfig.UsernsMode, 'host');
  assert.deepEqual(i.HostConfig.LogConfig, { Type: 'none', Config: {} });
  assert.equal(i.LogPath, '');
  assert.equal(i.Config.Tty, false);
  const logged = inspectOf({
    record: { ...record, tty: true, openStdin: true, log: { maxSize: 1024, maxFiles: 2 } },
    config,
    status: 'running',
    upper: '/c/upper',
    work: '/c/work',
    logPath: '/c/json.log',
  });
  assert.deepEqual([logged.Config.Tty, logged.Config.OpenStdin, logged.LogPath], [true, true, '/c/json.log']);
  assert.deepEqual(logged.HostConfig.LogConfig, { Type: 'json-file', Config: { 'max-size': '1024', 'max-file': '2' } });
  assert.equal(i.GraphDriver.Data.LowerDir, '/snapshots/top:/snapshots/base');
});

test('inspectOf: paused is running too; exited has no pid and keeps the exit', () => {
  const paused = inspectOf({ record, config, status: 'paused', upper: '/u', work: '/w' });
  assert.equal(paused.State.Status, 'paused');
  assert.equal(paused.State.Running, true);
  assert.equal(paused.State.Paused, true);
  const exited = inspectOf({
    record,
    config,
    status: 'stopped',
    exit: { exitCode: 137, oomKilled: true },
    finishedAt: '2026-01-01T00:01:00.000Z',
    upper: '/u',
    work: '/w',
  });
  assert.equal(exited.State.Status, 'exited');
  assert.equal(exited.State.Pid, 0);
  assert.equal(exited.State.ExitCode, 137);
  assert.equal(exited.State.OOMKilled, true);
  assert.equal(exited.State.FinishedAt, '2026-01-01T00:01:00.000Z');
});

test('inspectOf: without config.json (an older container) the record alone still gives the shape', () => {
  const { name: _name, ...unnamed } = record;
  const i = inspectOf({ record: unnamed, config: undefined, status: 'created', upper: '/u', work: '/w' });
  assert.equal(i.Name, '');
  assert.equal(i.State.Status, 'created');
  assert.deepEqual(i.Config.Cmd, record.cmd);
  assert.equal(i.HostConfig.Memory, 0);
  assert.equal(i.HostConfig.PidsLimit, null);
});

test('inspectOf: Config.StopSignal and Config.StopTimeout, as docker inspect shows --stop-signal and --stop-timeout', () => {
  // They were kept and used by stop() but missing from inspect: `inspect -f '{{.Config.StopSignal}}'` failed.
  const set = inspectOf({ record: { ...record, stopSignal: 'SIGUSR1', stopTimeoutMs: 3000 }, config, status: 'running', upper: '/c/upper', work: '/c/work' });
  assert.equal(set.Config.StopSignal, 'SIGUSR1');
  assert.equal(set.Config.StopTimeout, 3);
  const unset = inspectOf({ record, config, status: 'running', upper: '/c/upper', work: '/c/work' });
  assert.equal('StopSignal' in unset.Config || 'StopTimeout' in unset.Config, false);
});
