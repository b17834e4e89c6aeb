/**
 * `docker run`'s flags (shared by `run` and `create`) and their translation to
 * a {@link ContainerSpec}. Flags the library cannot honour yet are refused with
 * a message naming them, never ignored.
 *
 * @module
 */
import type { Command } from 'commander';
import { InvalidArgumentError, rootlessUsernsMaps, type ContainerSpec, type MountSpec, type Rlimit, type RlimitName } from '../index.js';
import {
  parseDuration,
  parseEnv,
  parseEnvFile,
  parseInteger,
  parseLabels,
  parseMount,
  parseSecurityOpts,
  parseTmpfs,
  parseUlimit,
  parseVolume,
  resourceFlags,
  resourceOptions,
} from './flags.js';

/** The values commander collects for `run`/`create`. */
export interface RunFlags {
  /** `-e`. */ env?: string[];
  /** `--env-file`. */ envFile?: string[];
  /** `-v`. */ volume?: string[];
  /** `--mount`. */ mount?: string[];
  /** `--tmpfs`. */ tmpfs?: string[];
  /** `--name`. */ name?: string;
  /** `-u`. */ user?: string;
  /** `-w`. */ workdir?: string;
  /** `--entrypoint`. */ entrypoint?: string;
  /** `--hostname`. */ hostname?: string;
  /** `--init`. */ init?: boolean;
  /** `--read-only`. */ readOnly?: boolean;
  /** `--memory`. */ memory?: string;
  /** `--memory-swap`. */ memorySwap?: string;
  /** `--cpus`. */ cpus?: string;
  /** `--cpu-shares`. */ cpuShares?: string;
  /** `--cpuset-cpus`. */ cpusetCpus?: string;
  /** `--pids-limit`. */ pidsLimit?: string;
  /** `--ulimit`. */ ulimit?: string[];
  /** `--cap-add`. */ capAdd?: string[];
  /** `--cap-drop`. */ capDrop?: string[];
  /** `--privileged`. */ privileged?: boolean;
  /** `--security-opt`. */ securityOpt?: string[];
  /** `--userns`. */ userns?: string;
  /** `--label`. */ label?: string[];
  /** `--rootfs` (ours): run a host directory instead of an image. */ rootfs?: boolean;
  /** `--stop-signal`. */ stopSignal?: string;
  /** `-p`. */ publish?: string[];
  /** `-P`. */ publishAll?: boolean;
  /** `--network-alias`. */ networkAlias?: string[];
  /** `-i`. */ interactive?: boolean;
  /** `-t`. */ tty?: boolean;
  /** `--restart`. */ restart?: string;
  /** `--health-cmd`. */ healthCmd?: string;
  /** `--health-interval`. */ healthInterval?: string;
  /** `--health-timeout`. */ healthTimeout?: string;
  /** `--health-retries`. */ healthRetries?: string;
  /** `--health-start-period`. */ healthStartPeriod?: string;
  /** `--health-start-interval`. */ healthStartInterval?: string;
  /** `--no-healthcheck` (commander: `healthcheck: false`). */ healthcheck?: boolean;
  /** `--stop-timeout` (seconds). */ stopTimeout?: string;
  /** Flags the library does not carry yet, by name. */
  [unsupported: string]: unknown;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Flags accepted so that scripts keep parsing, but refused when given, with the reason. */
const NOT_YET: Readonly<Record<string, string>> = {};

/** Adds `docker run`'s container flags to a command. */
export function addRunOptions(command: Command): Command {
  command
    .option('-e, --env <KEY=VALUE>', 'set environment variables', collect)
    .option('--env-file <file>', 'read a file of environment variables', collect)
    .option('-v, --volume <src:dst[:ro]>', 'bind mount a host path', collect)
    .option('--mount <mount>', 'attach a mount (type=bind|tmpfs,…)', collect)
    .option('--tmpfs <path[:opts]>', 'mount a tmpfs', collect)
    .option('--name <name>', 'assign a name to the container')
    .option('-u, --user <user>', 'username or uid[:gid]')
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('--entrypoint <cmd>', "overwrite the image's entrypoint")
    .option('-h, --hostname <name>', 'container host name')
    .option('--init', 'run an init as pid 1 that forwards signals and reaps zombies (else the command is pid 1, as Docker runs it)')
    .option('--read-only', "mount the container's root filesystem read-only");
  return resourceOptions(command)
    .option('--ulimit <name=soft[:hard]>', 'ulimit options', collect)
    .option('--cap-add <cap>', 'add Linux capabilities', collect)
    .option('--cap-drop <cap>', 'drop Linux capabilities', collect)
    .option('--privileged', 'give extended privileges to this container')
    .option('--security-opt <opt>', 'security options (seccomp=…, no-new-privileges)', collect)
    .option('--userns <mode>', 'user namespace: host, auto, private; keep-id, nomap (not root)')
    .option('-l, --label <k=v>', 'set metadata on a container', collect)
    .option('--stop-signal <signal>', 'signal to stop the container')
    .option('--stop-timeout <seconds>', 'seconds to wait after the stop signal before SIGKILL')
    .option('-p, --publish <[ip:]host:container[/proto]>', "publish a container's port to the host", collect)
    .option('-P, --publish-all', 'publish every exposed port to a free host port')
    .option('--network <mode>', 'none, host, bridge, container:NAME, or a network name')
    .option('--network-alias <name>', 'another name on a user-defined network', collect)
    .option('--pod <name>', 'join a pod (dockless pod create)')
    .option('-i, --interactive', 'keep stdin open')
    .option('-t, --tty', 'allocate a pseudo-TTY')
    .option('--restart <policy>', 'no, on-failure[:max-retries], always, unless-stopped')
    .option('--health-cmd <command>', 'command to run to check health (sh -c)')
    .option('--health-interval <duration>', 'time between checks (e.g. 30s)')
    .option('--health-timeout <duration>', 'time a check may take')
    .option('--health-retries <n>', 'consecutive failures to report unhealthy')
    .option('--health-start-period <duration>', 'start period during which failures do not count')
    .option('--health-start-interval <duration>', 'time between checks in the start period')
    .option('--no-healthcheck', "disable the image's healthcheck")
    .option('--rootfs', 'the first argument is a root filesystem directory, not an image');
}

/** `--restart no|on-failure[:N]|always|unless-stopped`. */
export function parseRestart(value: string): NonNullable<ContainerSpec['restart']> {
  const m = /^(no|always|unless-stopped|on-failure)(?::(\d+))?$/.exec(value.trim());
  if (m === null || (m[2] !== undefined && m[1] !== 'on-failure')) {
    throw new InvalidArgumentError(`--restart: invalid policy \`${value}\` (no, on-failure[:max-retries], always, unless-stopped)`);
  }
  if (m[1] === 'on-failure' && m[2] !== undefined) return { policy: 'on-failure', maxRetries: Number(m[2]) };
  return m[1] as 'no' | 'always' | 'unless-stopped' | 'on-failure';
}

function healthOf(flags: RunFlags): Pick<ContainerSpec, 'healthcheck'> {
  if (flags.healthcheck === false) return { healthcheck: { test: 'none' } };
  const h: NonNullable<ContainerSpec['healthcheck']> = {
    ...(flags.healthCmd !== undefined ? { test: flags.healthCmd } : {}),
    ...(flags.healthInterval !== undefined ? { interval: parseDuration('--health-interval', flags.healthInterval) } : {}),
    ...(flags.healthTimeout !== undefined ? { timeout: parseDuration('--health-timeout', flags.healthTimeout) } : {}),
    ...(flags.healthRetries !== undefined ? { retries: parseInteger('--health-retries', flags.healthRetries) } : {}),
    ...(flags.healthStartPeriod !== undefined ? { startPeriod: parseDuration('--health-start-period', flags.healthStartPeriod) } : {}),
    ...(flags.healthStartInterval !== undefined ? { startInterval: parseDuration('--health-start-interval', flags.healthStartInterval) } : {}),
  };
  return Object.keys(h).length > 0 ? { healthcheck: h } : {};
}

/**
 * `--userns`: Docker's `host` (and `''`, the default), podman's `auto` (also
 * with `:size=…` options, which are not honoured yet and refused), `private`
 * (a new one, as `auto`), and for a caller that is not root `keep-id` and
 * `nomap` ({@link rootlessUsernsMaps}).
 */
export function parseUserns(mode: string | undefined): ContainerSpec['userns'] {
  switch (mode) {
    case undefined:
    case '':
    case 'host':
      return undefined;
    case 'auto':
    case 'private':
      return 'auto';
    case 'keep-id':
    case 'nomap':
      return rootlessUsernsMaps(mode);
    default:
      throw new InvalidArgumentError(`--userns: \`${mode}\` is not supported (host, auto, private; keep-id and nomap when not root)`);
  }
}

/** The spec `run IMAGE COMMAND…` with these flags describes. */
export function specFromRunOptions(image: string, command: readonly string[], flags: RunFlags): ContainerSpec {
  for (const [key, why] of Object.entries(NOT_YET)) {
    if (flags[key] !== undefined) throw new InvalidArgumentError(why);
  }
  const env: Record<string, string> = {};
  for (const [k, v] of (flags.envFile ?? []).flatMap((f) => parseEnvFile(f))) env[k] = v;
  for (const e of flags.env ?? []) {
    const pair = parseEnv(e);
    if (pair !== undefined) env[pair[0]] = pair[1];
  }
  const mounts: MountSpec[] = [
    ...(flags.volume ?? []).map((v) => parseVolume(v)),
    ...(flags.mount ?? []).map((m) => parseMount(m)),
    ...(flags.tmpfs ?? []).map((t) => parseTmpfs(t)),
  ];
  const resources: NonNullable<ContainerSpec['resources']> = resourceFlags(flags);
  const rlimits: Partial<Record<RlimitName, Rlimit>> = {};
  for (const u of flags.ulimit ?? []) {
    const [name, limit] = parseUlimit(u);
    rlimits[name] = limit;
  }
  const security = parseSecurityOpts(flags.securityOpt ?? []);
  const userns = parseUserns(flags.userns);
  const labels = parseLabels(flags.label ?? []);
  const stopSignal = flags.stopSignal === undefined ? undefined : /^\d+$/.test(flags.stopSignal) ? Number(flags.stopSignal) : (`SIG${flags.stopSignal.toUpperCase().replace(/^SIG/, '')}` as NodeJS.Signals);
  return {
    ...(flags.rootfs === true ? { rootfs: image } : { image }),
    ...(command.length > 0 ? { cmd: command } : {}),
    ...(flags.entrypoint !== undefined ? { entrypoint: flags.entrypoint === '' ? [] : [flags.entrypoint] } : {}),
    ...(Object.keys(env).length > 0 ? { env } : {}),
    ...(flags.workdir !== undefined ? { cwd: flags.workdir } : {}),
    ...(flags.user !== undefined ? { user: flags.user } : {}),
    ...(flags.hostname !== undefined ? { hostname: flags.hostname } : {}),
    ...(flags.name !== undefined ? { name: flags.name } : {}),
    ...(mounts.length > 0 ? { mounts } : {}),
    ...(flags.readOnly === true ? { readonlyRootfs: true } : {}),
    // Docker's default is no init: the command is pid 1 (signals it has no handler for do nothing).
    init: flags.init === true,
    ...(Object.keys(resources).length > 0 ? { resources } : {}),
    ...(Object.keys(rlimits).length > 0 ? { rlimits } : {}),
    ...(flags.capAdd !== undefined ? { capAdd: flags.capAdd } : {}),
    ...(flags.capDrop !== undefined ? { capDrop: flags.capDrop } : {}),
    ...(flags.privileged === true ? { privileged: true } : {}),
    ...(security.seccomp !== undefined ? { seccomp: security.seccomp } : {}),
    ...(security.noNewPrivileges !== undefined ? { noNewPrivileges: security.noNewPrivileges } : {}),
    ...(userns !== undefined ? { userns } : {}),
    // podman's keep-id runs the command as the caller, unless -u says otherwise.
    ...(flags.user === undefined && flags.userns === 'keep-id' ? { user: `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}` } : {}),
    ...(Object.keys(labels).length > 0 ? { labels } : {}),
    ...(stopSignal !== undefined ? { stopSignal } : {}),
    ...(flags.stopTimeout !== undefined ? { stopTimeoutMs: parseInteger('--stop-timeout', flags.stopTimeout) * 1000 } : {}),
    ...((flags.publish?.length ?? 0) > 0 ? { ports: flags.publish! } : {}),
    ...((flags.networkAlias?.length ?? 0) > 0 ? { networkAliases: flags.networkAlias! } : {}),
    ...(flags.tty === true ? { tty: true, ttySize: { columns: process.stdout.columns || 80, rows: process.stdout.rows || 24 } } : {}),
    ...(flags.interactive === true ? { stdin: true } : {}),
    ...(flags.restart !== undefined ? { restart: parseRestart(flags.restart) } : {}),
    ...healthOf(flags),
  };
}
