/**
 * The `dockless-runtime` command line: runc's commands and flags, so that
 * podman (`--runtime`), containerd (the runc shim's `BinaryName`) and the OCI
 * validation suite can drive dockless. Errors go to stderr and, with `--log`,
 * to the log file in `--log-format` (runc's JSON lines: conmon and the shim
 * read the last `error` line from it).
 *
 * @module
 */

import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { AlreadyExistsError, DocklessError, UnsupportedError } from '../errors.js';
import { containerEvents, parseInterval } from './events.js';
import { execInContainer } from './exec.js';
import {
  containerPids,
  containerState,
  createContainer,
  deleteContainer,
  freezeContainer,
  inNestedUserns,
  killContainer,
  listContainers,
  notImplemented,
  psTable,
  runContainer,
  startContainer,
  type GlobalOptions,
} from './lifecycle.js';
import { defaultSpec, features } from './spec-default.js';
import { readResourcesFile, runcUpdateResources, updateContainer, type RuncUpdateFlags } from './update.js';
import { OCI_VERSION } from './state.js';
import { translateConfig } from './translate.js';

/** The version `--version` prints. */
export const RUNTIME_VERSION = '0.1.0';

/**
 * The default `--root`: `/run/dockless-runtime`, rootless `$XDG_RUNTIME_DIR/dockless-runtime`.
 * Rootless includes root of a user namespace other than the host's unless `$USER` is
 * `root` (runc's rule: rootless podman runs its runtime so, with its `$XDG_RUNTIME_DIR`).
 */
export function defaultRoot(): string {
  const uid = process.getuid?.() ?? 0;
  const xdg = process.env['XDG_RUNTIME_DIR'];
  if (xdg && (uid !== 0 || (inNestedUserns() && process.env['USER'] !== 'root'))) return join(xdg, 'dockless-runtime');
  return uid === 0 ? '/run/dockless-runtime' : `/tmp/dockless-runtime-${uid}`;
}

interface Globals {
  root: string;
  log?: string;
  logFormat: 'text' | 'json';
  debug?: boolean;
  systemdCgroup?: boolean;
  rootless: string;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function logError(globals: Globals | undefined, message: string): void {
  process.stderr.write(`dockless-runtime: ${message}\n`);
  if (globals?.log === undefined) return;
  const line =
    globals.logFormat === 'json'
      ? JSON.stringify({ level: 'error', msg: message, time: new Date().toISOString() })
      : `time="${new Date().toISOString()}" level=error msg="${message.replace(/"/g, '\\"')}"`;
  try {
    appendFileSync(globals.log, `${line}\n`);
  } catch {
    /* the log is best effort; stderr has it */
  }
}

/**
 * Runs the command line `argv` (without node and the script) and returns the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await main(['--root', '/run/x', 'state', 'c1']);
 * ```
 */
export async function main(argv: readonly string[]): Promise<number> {
  return commandLine(argv, false);
}

/** What ends a rehearsal's command before its action. */
class RehearsalEnd extends Error {}

/**
 * Parses `argv` as {@link main} does and stops before the command's action, and
 * translates the default spec for a fixed host: what dockless-runtime's V8 startup
 * snapshot (native/snapshot-entry.cjs) runs at build time so that the
 * blob keeps that code compiled. It reads no environment, file or host fact (the
 * blob would freeze them), writes nothing and touches no state.
 */
export async function rehearse(argv: readonly string[]): Promise<void> {
  translateConfig(defaultSpec(), '/rehearsal', { uid: 0, umask: 0o22, arch: 'x86_64', kernel: '6.1.0', nestedUserns: false });
  await commandLine(argv, true);
}

async function commandLine(argv: readonly string[], rehearsal: boolean): Promise<number> {
  let exitCode = 0;
  let globals: Globals | undefined;
  const program = new Command('dockless-runtime');
  program
    .description('an OCI runtime (runc-compatible command line) on the dockless helper')
    .version(`dockless-runtime version ${RUNTIME_VERSION}\nspec: ${OCI_VERSION}`, '-v, --version')
    .option('--root <dir>', 'state directory', rehearsal ? '/rehearsal' : defaultRoot())
    .option('--log <file>', 'log file (errors)')
    .addOption(new Option('--log-format <format>', 'log format').choices(['text', 'json']).default('text'))
    .option('--debug', 'debug output')
    .option('--systemd-cgroup', 'cgroupsPath is a systemd unit (not supported)')
    .addOption(new Option('--rootless <value>', 'rootless or not; dockless decides from the caller\'s uid (auto), and refuses a contradicting value').choices(['auto', 'true', 'false']).default('auto'))
    .option('--criu <path>', 'ignored: checkpoint/restore is not supported')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({
      writeErr: (s) => {
        if (!rehearsal) process.stderr.write(s);
      },
    })
    .hook('preAction', () => {
      if (rehearsal) throw new RehearsalEnd();
      globals = program.opts<Globals>();
      globals.root = resolve(globals.root);
      if (globals.debug === true) process.env['DEBUG'] ??= 'dockless:*';
      const uid = process.getuid?.() ?? 0;
      if ((globals.rootless === 'false' && uid !== 0) || (globals.rootless === 'true' && uid === 0)) {
        throw new UnsupportedError(`--rootless ${globals.rootless}: dockless-runtime is rootless exactly when its caller is not root (uid ${uid})`, { field: '--rootless' });
      }
      if (globals.systemdCgroup === true) {
        throw new UnsupportedError('--systemd-cgroup: systemd cgroup management is not supported; use cgroupfs paths (podman: --cgroup-manager=cgroupfs)', {
          field: '--systemd-cgroup',
        });
      }
    });
  const g = (): GlobalOptions => ({ root: globals!.root });

  const createFlags = (cmd: Command): Command =>
    cmd
      .option('-b, --bundle <dir>', 'the bundle directory', '.')
      .option('--console-socket <path>', 'unix socket the terminal master is sent to')
      .option('--pid-file <path>', 'write pid 1 here')
      .option('--no-pivot', 'accepted; dockless always uses pivot_root')
      .option('--no-new-keyring', 'keep the caller\'s session keyring')
      .option('--preserve-fds <n>', 'extra fds to pass (only 0 is supported)', '0');
  const checkPreserve = (n: string) => {
    if (Number(n) !== 0) throw new UnsupportedError('--preserve-fds: passing extra descriptors is not supported yet', { field: '--preserve-fds' });
  };
  interface CreateFlags {
    bundle: string;
    consoleSocket?: string;
    pidFile?: string;
    newKeyring: boolean;
    preserveFds: string;
  }
  const createOpts = (o: CreateFlags) => ({
    ...g(),
    bundle: o.bundle,
    ...(o.consoleSocket !== undefined ? { consoleSocket: o.consoleSocket } : {}),
    ...(o.pidFile !== undefined ? { pidFile: o.pidFile } : {}),
    noNewKeyring: o.newKeyring === false,
  });

  createFlags(program.command('create').argument('<id>').description('create a container')).action(async (id: string, o: CreateFlags) => {
    checkPreserve(o.preserveFds);
    await createContainer(id, createOpts(o));
  });
  createFlags(program.command('run').argument('<id>').option('-d, --detach', 'detach').description('create and start a container')).action(
    async (id: string, o: CreateFlags & { detach?: boolean }) => {
      checkPreserve(o.preserveFds);
      exitCode = await runContainer(id, { ...createOpts(o), detach: o.detach === true });
    },
  );
  program.command('start').argument('<id>').action(async (id: string) => startContainer(id, g()));
  program.command('state').argument('<id>').action(async (id: string) => {
    process.stdout.write(`${JSON.stringify(await containerState(id, g()), null, 2)}\n`);
  });
  program
    .command('kill')
    .argument('<id>')
    .argument('[signal]', 'name or number', 'SIGTERM')
    .option('-a, --all', 'every process of the container')
    .action(async (id: string, signal: string, o: { all?: boolean }) => killContainer(id, signal, { ...g(), all: o.all === true }));
  program
    .command('delete')
    .argument('<id>')
    .option('-f, --force', 'kill it first')
    .action(async (id: string, o: { force?: boolean }) => deleteContainer(id, { ...g(), force: o.force === true }));
  program.command('pause').argument('<id>').action(async (id: string) => freezeContainer(id, true, g()));
  program.command('resume').argument('<id>').action(async (id: string) => freezeContainer(id, false, g()));
  program
    .command('list')
    .alias('ls')
    .addOption(new Option('-f, --format <format>').choices(['table', 'json']).default('table'))
    .option('-q, --quiet', 'ids only')
    .action(async (o: { format: string; quiet?: boolean }) => {
      const states = await listContainers(g());
      if (o.quiet === true) process.stdout.write(states.map((s) => `${s.id}\n`).join(''));
      else if (o.format === 'json') process.stdout.write(`${JSON.stringify(states)}\n`);
      else {
        const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'], ...states.map((s) => [s.id, String(s.pid), s.status, s.bundle, s.created, s.owner])];
        const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
        process.stdout.write(rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('   ').trimEnd() + '\n').join(''));
      }
    });
  program
    .command('ps')
    .argument('<id>')
    .argument('[ps-args...]')
    .addOption(new Option('-f, --format <format>').choices(['table', 'json']).default('table'))
    .action(async (id: string, psArgs: string[], o: { format: string }) => {
      const pids = await containerPids(id, g());
      process.stdout.write(o.format === 'json' ? `${JSON.stringify(pids)}\n` : await psTable(pids, psArgs));
    });
  program
    .command('exec')
    .argument('<id>')
    .argument('[command...]')
    .option('-p, --process <file>', 'a process.json')
    .option('-t, --tty', 'allocate a terminal')
    .option('--console-socket <path>', 'unix socket the terminal master is sent to')
    .option('-d, --detach', 'detach')
    .option('--pid-file <path>', 'write the process pid here')
    .option('--cwd <dir>', 'working directory')
    .option('-e, --env <NAME=value>', 'environment variable', collect)
    .option('-u, --user <uid[:gid]>', 'user')
    .option('-g, --additional-gids <gid>', 'supplementary group', collect)
    .option('-c, --cap <cap>', 'capability to add', collect)
    .option('--no-new-privs', 'set no_new_privs')
    .option('--process-label <label>', 'SELinux label (not supported)')
    .option('--apparmor <profile>', 'AppArmor profile (not supported)')
    .option('--preserve-fds <n>', 'extra fds to pass (only 0 is supported)', '0')
    .passThroughOptions()
    .action(async (id: string, command: string[], o: Record<string, unknown>) => {
      checkPreserve(String(o['preserveFds']));
      if (o['processLabel'] !== undefined) throw new UnsupportedError('--process-label: SELinux labels are not supported', { field: '--process-label' });
      if (o['apparmor'] !== undefined) throw new UnsupportedError('--apparmor: AppArmor is not supported', { field: '--apparmor' });
      exitCode = await execInContainer(id, command, {
        ...g(),
        ...(o['process'] !== undefined ? { process: String(o['process']) } : {}),
        tty: o['tty'] === true,
        ...(o['consoleSocket'] !== undefined ? { consoleSocket: String(o['consoleSocket']) } : {}),
        detach: o['detach'] === true,
        ...(o['pidFile'] !== undefined ? { pidFile: String(o['pidFile']) } : {}),
        ...(o['cwd'] !== undefined ? { cwd: String(o['cwd']) } : {}),
        ...(o['env'] !== undefined ? { env: o['env'] as string[] } : {}),
        ...(o['user'] !== undefined ? { user: String(o['user']) } : {}),
        ...(o['cap'] !== undefined ? { cap: o['cap'] as string[] } : {}),
        ...(o['additionalGids'] !== undefined ? { additionalGids: (o['additionalGids'] as string[]).map(Number) } : {}),
        ...(o['newPrivs'] === false ? { noNewPrivs: true } : {}),
      });
    });
  program
    .command('spec')
    .option('--rootless', 'a spec for a rootless container')
    .option('-b, --bundle <dir>', 'the bundle directory', '.')
    .action((o: { rootless?: boolean; bundle: string }) => {
      const path = resolve(o.bundle, 'config.json');
      if (existsSync(path)) throw new AlreadyExistsError(`spec: \`${path}\` exists already`, { path });
      const spec = defaultSpec(o.rootless === true, { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 });
      writeFileSync(path, `${JSON.stringify(spec, null, '\t')}\n`);
    });
  program.command('features').action(() => {
    process.stdout.write(`${JSON.stringify(features(), null, '    ')}\n`);
  });
  program
    .command('update')
    .argument('<id>')
    .option('-r, --resources <file>', 'a file with a linux.resources JSON object (- for stdin); the flags are then ignored')
    .option('--memory <bytes>', 'memory limit')
    .option('--memory-swap <bytes>', 'memory plus swap limit, -1 for unlimited swap')
    .option('--cpu-shares <n>', 'CPU shares (relative weight)')
    .option('--cpu-quota <us>', 'CPU CFS quota per period, in microseconds')
    .option('--cpu-period <us>', 'CPU CFS period, in microseconds (only 100000)')
    .option('--cpuset-cpus <list>', 'CPUs the container may run on')
    .option('--pids-limit <n>', 'maximum number of processes')
    .action(async (id: string, o: RuncUpdateFlags) => {
      const json = o.resources !== undefined ? readResourcesFile(o.resources) : undefined;
      await updateContainer(id, runcUpdateResources(o, json), g());
    });
  program
    .command('events')
    .argument('<id>')
    .option('--stats', 'print one stats event and exit')
    .option('--interval <duration>', 'time between stats events', '5s')
    .action(async (id: string, o: { stats?: boolean; interval: string }) => {
      await containerEvents(id, { ...g(), stats: o.stats === true, intervalMs: parseInterval(o.interval) });
    });
  program.command('checkpoint').argument('<id>').allowUnknownOption().action(() => notImplemented('checkpoint'));
  program.command('restore').argument('<id>').allowUnknownOption().action(() => notImplemented('restore'));

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (rehearsal) return error instanceof RehearsalEnd ? 0 : 1;
    logError(globals, error instanceof DocklessError || error instanceof Error ? error.message : String(error));
    return 1;
  }
}
