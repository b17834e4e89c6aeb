/**
 * `container.inspect()`: a container described in the shape of `docker inspect`,
 * from its records in the state directory.
 *
 * @module
 */

import { CPU_PERIOD_US } from './cgroups/policy.js';
import type { InspectHealth } from './health.js';
import { inspectPorts, type InspectPorts, type PublishedPort } from './ports.js';
import type { ContainerConfigRecord, ContainerRecord } from './state.js';
import type { InspectNetwork, NetworkSettingsRecord } from './network-attach.js';

export type { NetworkSettingsRecord } from './network-attach.js';

/** The `NetworkSettings` part of {@link ContainerInspect}. */
export interface InspectNetworkSettings {
  /** The container's networks, by name; empty for `'none'`. */
  Networks: Record<string, InspectNetwork>;
  /** The IPv4 address on its first network, or `''`, as Docker's top-level field. */
  IPAddress: string;
  /** The gateway of its first network, or `''`. */
  Gateway: string;
  /** The MAC address on its first network, or `''`. */
  MacAddress: string;
  /** The published ports: `{ '5432/tcp': [{ HostIp: '127.0.0.1', HostPort: '49153' }] }`. */
  Ports: InspectPorts;
}

/** The `State` part of {@link ContainerInspect}. */
export interface InspectState {
  /** Docker's status words: `created`, `running`, `paused`, `exited` (also once removed). */
  Status: 'created' | 'running' | 'paused' | 'exited';
  /** Whether its process runs (also while paused), as Docker's. */
  Running: boolean;
  /** Whether its processes are frozen. */
  Paused: boolean;
  /** Host pid of the container's pid 1; 0 once it has exited. */
  Pid: number;
  /** The exit code; 0 while it runs. */
  ExitCode: number;
  /** Whether the kernel killed it for memory. */
  OOMKilled: boolean;
  /** ISO time of start; Docker's zero time before it started. */
  StartedAt: string;
  /** ISO time of the end as first seen by this process; Docker's zero time before. */
  FinishedAt: string;
  /** Whether the command ended and its restart policy waits to start it again. */
  Restarting: boolean;
  /** The healthcheck's status, failing streak and last results; only for a container with a healthcheck. */
  Health?: InspectHealth;
}

/** The `Config` part of {@link ContainerInspect}. */
export interface InspectConfig {
  /** The container's hostname. */
  Hostname: string;
  /** `NAME=value` pairs. */
  Env: string[];
  /** The command after the entrypoint. */
  Cmd: string[];
  /** null when the container has no entrypoint, as Docker shows it. */
  Entrypoint: string[] | null;
  /** The process's working directory. */
  WorkingDir: string;
  /** `''` for the default (root). */
  User: string;
  /** The image's labels. */
  Labels: Record<string, string>;
  /** The image reference, or the rootfs directory it runs from. */
  Image: string;
  /** Whether it has a terminal (`tty`). */
  Tty: boolean;
  /** Whether its stdin is kept open (`stdin`). */
  OpenStdin: boolean;
  /** The signal `stop()` sends first, as the spec's `stopSignal` names it (a name, or a number as text); absent: SIGTERM. */
  StopSignal?: string;
  /** Seconds `stop()` waits before SIGKILL, from the spec's `stopTimeoutMs`; absent: the default. */
  StopTimeout?: number;
}

/** One entry of {@link ContainerInspect.Mounts}. */
export interface InspectMount {
  /** `bind` or `tmpfs`. */
  Type: 'bind' | 'tmpfs';
  /** The host path of a bind, `tmpfs` for a tmpfs. */
  Source: string;
  /** Where it is mounted in the container. */
  Destination: string;
  /** Whether it is writable. */
  RW: boolean;
}

/** The `HostConfig` part of {@link ContainerInspect}: limits and security settings. 0 means no limit, as Docker shows it. */
export interface InspectHostConfig {
  /** Its log: `json-file` with its rotation (`max-size` in bytes, `max-file`), or `none` with `log: false`. */
  LogConfig: {
    /** `json-file`, or `none` for a container without a log. */
    Type: 'json-file' | 'none';
    /** `max-size` and `max-file`, as strings, as Docker shows them. */
    Config: Record<string, string>;
  };
  /** Memory limit in bytes. */
  Memory: number;
  /** Memory + swap limit in bytes; -1 unlimited. */
  MemorySwap: number;
  /** CPU time in billionths of a CPU. */
  NanoCpus: number;
  /** CPU weight (`cpuShares`); 0 when unset. */
  CpuShares: number;
  /** CFS period in µs when `cpus` is set; else 0. */
  CpuPeriod: number;
  /** CFS quota in µs per period when `cpus` is set; else 0. */
  CpuQuota: number;
  /** The CPUs it may run on (`cpuset`); empty when unset. */
  CpusetCpus: string;
  /** I/O weight (`ioWeight`); 0 when unset. */
  BlkioWeight: number;
  /** null when unlimited, as Docker shows it. */
  PidsLimit: number | null;
  /** Whether it runs with `privileged: true`. */
  Privileged: boolean;
  /** Whether its root filesystem is read-only. */
  ReadonlyRootfs: boolean;
  /** Whether dockless's init is its pid 1. */
  Init: boolean;
  /** The cgroup parent given, or empty. */
  CgroupParent: string;
  /** Capabilities added to the default set, or `null`. */
  CapAdd: string[] | null;
  /** Capabilities dropped from the default set, or `null`. */
  CapDrop: string[] | null;
  /** `'host'` without a user namespace, as Docker shows it; `''` with one. */
  UsernsMode: string;
  /** Its network: `'none'`, `'host'`, `'container:<id>'`, or `'pod:<id>'` in a pod that shares `net`. */
  NetworkMode: string;
  /** The restart policy: `Name` `no`, `on-failure`, `always` or `unless-stopped`; `MaximumRetryCount` 0 for no limit. */
  RestartPolicy: {
    /** The policy's name. */
    Name: string;
    /** on-failure's most restarts; 0 for no limit. */
    MaximumRetryCount: number;
  };
  /** Removed once it exits (`--rm`). */
  AutoRemove: boolean;
}

/**
 * A container in the shape of `docker inspect` (the fields that make sense
 * without a daemon). Plain data: it can be `JSON.stringify`ed as it is.
 */
export interface ContainerInspect {
  /** The 64-hex id. */
  Id: string;
  /** `/name`, as Docker writes it; `''` for a container without a name. */
  Name: string;
  /** ISO time of creation. */
  Created: string;
  /** The executable of the command (the entrypoint's first word, else the command's). */
  Path: string;
  /** The rest of the command. */
  Args: string[];
  /** Its status and process, as `docker inspect` gives them. */
  State: InspectState;
  /** The current file of its log; `''` when it keeps none. */
  LogPath: string;
  /** The image reference, or the rootfs directory. */
  Image: string;
  /** Whether the container outlives the process that created it (dockless's own). */
  Detached: boolean;
  /** How many times its restart policy started its command again. */
  RestartCount: number;
  /** Its configuration: hostname, environment, command, user, labels. */
  Config: InspectConfig;
  /** The user's mounts (binds and tmpfs). */
  Mounts: InspectMount[];
  /** Its limits and security settings. */
  HostConfig: InspectHostConfig;
  /** Its networks and addresses. */
  NetworkSettings: InspectNetworkSettings;
  /** The overlay's directories, as Docker's `GraphDriver`. */
  GraphDriver: {
    /** Always `overlay2`, as Docker names an overlayfs root. */
    Name: 'overlay2';
    /** The overlay's directories on the host. */
    Data: {
      /** The lower dirs, top-most first, `:`-separated. */
      LowerDir: string;
      /** The container's upper dir: what it wrote. */
      UpperDir: string;
      /** The overlay's work dir. */
      WorkDir: string;
    };
  };
}

/** Docker's zero time, for times that have not happened. */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

/** What {@link inspectOf} needs beside the records. */
export interface InspectInput {
  record: ContainerRecord;
  /** Missing for a container made before `config.json` existed. */
  config: ContainerConfigRecord | undefined;
  status: 'created' | 'running' | 'paused' | 'stopped' | 'removed';
  exit?: { exitCode: number; oomKilled: boolean };
  finishedAt?: string;
  health?: InspectHealth;
  restartCount?: number;
  restarting?: boolean;
  upper: string;
  work: string;
  /** Missing for a container on no network. */
  networks?: NetworkSettingsRecord | undefined;
  /** The log's current file. */
  logPath?: string;
}

/** Builds the inspect object; pure. */
export function inspectOf(input: InspectInput): ContainerInspect {
  const { record, config: c, status } = input;
  const r = c?.resources ?? {};
  const argv = record.cmd;
  const docker = status === 'stopped' || status === 'removed' ? 'exited' : status;
  const quota = r.cpus !== undefined ? Math.round(r.cpus * CPU_PERIOD_US) : 0;
  return {
    Id: record.id,
    Name: record.name !== undefined ? `/${record.name}` : '',
    Created: record.created,
    Path: argv[0] ?? '',
    Args: argv.slice(1),
    State: {
      Status: docker,
      Running: status === 'running' || status === 'paused',
      Paused: status === 'paused',
      Pid: docker === 'exited' ? 0 : record.pid,
      ExitCode: input.exit?.exitCode ?? 0,
      OOMKilled: input.exit?.oomKilled ?? false,
      StartedAt: record.started ?? ZERO_TIME,
      FinishedAt: input.finishedAt ?? ZERO_TIME,
      Restarting: input.restarting === true,
      ...(input.health !== undefined ? { Health: input.health } : {}),
    },
    LogPath: record.log !== undefined ? (input.logPath ?? '') : '',
    Image: record.image ?? record.rootfs,
    Detached: record.detached,
    RestartCount: input.restartCount ?? 0,
    Config: {
      Hostname: c?.hostname ?? '',
      Env: c?.process.env ?? [],
      Cmd: c?.cmd ?? argv,
      Entrypoint: c?.entrypoint ?? null,
      WorkingDir: c?.process.cwd ?? '',
      User: c?.user ?? '',
      Labels: c?.labels ?? {},
      Image: record.image ?? record.rootfs,
      Tty: record.tty === true,
      OpenStdin: record.openStdin === true,
      ...(record.stopSignal !== undefined ? { StopSignal: String(record.stopSignal) } : {}),
      ...(record.stopTimeoutMs !== undefined ? { StopTimeout: Math.round(record.stopTimeoutMs / 1000) } : {}),
    },
    NetworkSettings: networkSettings(input.networks, record.ports ?? []),
    Mounts: (c?.mounts ?? []).map((m) => ({ Type: m.type, Source: m.source, Destination: m.target, RW: !m.readonly })),
    HostConfig: {
      LogConfig:
        record.log !== undefined
          ? { Type: 'json-file', Config: { 'max-size': String(record.log.maxSize), 'max-file': String(record.log.maxFiles) } }
          : { Type: 'none', Config: {} },
      Memory: r.memory ?? 0,
      MemorySwap: r.memory === undefined ? 0 : (r.memorySwap ?? r.memory * 2),
      NanoCpus: r.cpus !== undefined ? Math.round(r.cpus * 1e9) : 0,
      CpuShares: r.cpuShares ?? 0,
      CpuPeriod: quota > 0 ? CPU_PERIOD_US : 0,
      CpuQuota: quota,
      CpusetCpus: r.cpuset ?? '',
      BlkioWeight: r.ioWeight ?? 0,
      PidsLimit: r.pids ?? null,
      Privileged: c?.privileged ?? false,
      ReadonlyRootfs: c?.readonlyRootfs ?? false,
      Init: c?.init ?? true,
      CgroupParent: c?.cgroupParent ?? '',
      CapAdd: c?.capAdd ?? null,
      CapDrop: c?.capDrop ?? null,
      UsernsMode: record.userns !== undefined ? '' : 'host',
      NetworkMode: record.network ?? 'none',
      RestartPolicy: { Name: c?.restart?.policy ?? 'no', MaximumRetryCount: c?.restart?.maxRetries ?? 0 },
      AutoRemove: record.autoRemove === true,
    },
    GraphDriver: { Name: 'overlay2', Data: { LowerDir: (c?.process.lowers ?? [record.rootfs]).join(':'), UpperDir: input.upper, WorkDir: input.work } },
  };
}

function networkSettings(record: NetworkSettingsRecord | undefined, ports: readonly PublishedPort[]): InspectNetworkSettings {
  const networks = record?.networks ?? {};
  const first = Object.values(networks)[0];
  return {
    Networks: networks,
    IPAddress: first?.IPAddress ?? '',
    Gateway: first?.Gateway ?? '',
    MacAddress: first?.MacAddress ?? '',
    Ports: inspectPorts(ports),
  };
}
