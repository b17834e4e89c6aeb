/**
 * The system and registry commands: version, info, system df/prune/check,
 * login, logout, and completion scripts for bash and zsh generated from the
 * command definitions themselves.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { cpus, hostname, machine, totalmem } from 'node:os';
import type { Command } from 'commander';
import { login, logout, type RuntimeInfo } from '../index.js';
import { ExitCode, type CliContext } from './context.js';
import { formatRows, humanSize } from './format.js';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** What `info` counts, beside the runtime's {@link RuntimeInfo}. */
export interface InfoCounts {
  /** Containers in all, then by status. */
  containers: number;
  /** Running ones. */
  running: number;
  /** Paused ones. */
  paused: number;
  /** Stopped ones. */
  stopped: number;
  /** Images in the store. */
  images: number;
}

/**
 * The fields of `docker info` that scripts ask for with `--format`
 * (`{{.CgroupVersion}}`, `{{.ContainersRunning}}`, …), by Docker's names and
 * in Docker's forms: a hybrid host is cgroup version "1", as Docker reports it.
 */
export function dockerInfoFields(info: Pick<RuntimeInfo, 'cgroupVersion' | 'kernel' | 'root' | 'rootless'>, counts: InfoCounts): Record<string, string | number | string[]> {
  return {
    Containers: counts.containers,
    ContainersRunning: counts.running,
    ContainersPaused: counts.paused,
    ContainersStopped: counts.stopped,
    Images: counts.images,
    Driver: 'overlay',
    DockerRootDir: info.root,
    CgroupDriver: 'cgroupfs',
    CgroupVersion: info.cgroupVersion === 'v2' ? '2' : '1',
    KernelVersion: info.kernel,
    OSType: 'linux',
    Architecture: machine(),
    NCPU: cpus().length,
    MemTotal: totalmem(),
    Name: hostname(),
    SecurityOptions: ['name=seccomp,profile=builtin', ...(info.rootless ? ['name=rootless'] : [])],
  };
}

/** Adds version, info, system, login, logout and completion to `program`. */
export function addSystemCommands(program: Command, ctx: CliContext): void {
  program
    .command('version')
    .description('Show the dockless version information')
    .option('-f, --format <format>', 'format the output using a Go template')
    .action((flags: { format?: string }) => {
      const v = { Client: { Version: packageVersion(), Node: process.version, Os: process.platform, Arch: process.arch } };
      if (flags.format !== undefined) return void ctx.out.write(formatRows([v as never], [], flags.format));
      ctx.print(`dockless version ${v.Client.Version}\nNode.js: ${v.Client.Node}\nOS/Arch: ${v.Client.Os}/${v.Client.Arch}\nDaemon: none (dockless is a library: no daemon, no socket)`);
    });

  program
    .command('info')
    .description('Display system-wide information')
    .option('-f, --format <format>', 'format the output using a Go template (json for all of it)')
    .action(async (flags: { format?: string }) => {
      const runtime = await ctx.runtime();
      const store = await ctx.store();
      const info = await runtime.info();
      const containers = await runtime.list();
      const images = await store.list();
      const counts: InfoCounts = {
        containers: containers.length,
        running: containers.filter((c) => c.status === 'running').length,
        paused: containers.filter((c) => c.status === 'paused').length,
        stopped: containers.filter((c) => c.status === 'stopped').length,
        images: images.length,
      };
      const all = { ...info, storeRoot: store.root, ...counts, ...dockerInfoFields(info, counts) };
      if (flags.format === 'json') return ctx.print(JSON.stringify(all));
      if (flags.format !== undefined) return void ctx.out.write(formatRows([all as never], [], flags.format));
      ctx.print(
        [
          `Containers: ${all.containers}`,
          ` Running: ${all.running}`,
          ` Paused: ${all.paused}`,
          ` Stopped: ${all.stopped}`,
          `Images: ${all.images}`,
          `Storage Driver: overlay`,
          ` Store: ${all.storeRoot}`,
          ` Containers: ${info.root}`,
          ` State: ${info.stateDir}`,
          `Cgroup Version: ${info.cgroupVersion}`,
          ` Controllers: ${info.cgroupControllers.join(' ')}`,
          `Rootless: ${info.rootless}`,
          `Kernel Version: ${info.kernel}`,
          `Architecture: ${info.arch}`,
          `Helper: ${info.helperPath} (${info.helperVersion})`,
        ].join('\n'),
      );
    });

  const system = program.command('system').description('Manage dockless');
  system
    .command('df')
    .description('Show disk usage')
    .action(async () => {
      const store = await ctx.store();
      const images = await store.list();
      const containers = await (await ctx.runtime()).list();
      const size = images.reduce((n, i) => n + i.size, 0);
      const rows = [
        { Type: 'Images', TotalCount: String(images.length), Active: String(new Set(containers.map((c) => c.image).filter((i) => i !== undefined)).size), Size: humanSize(size) },
        { Type: 'Containers', TotalCount: String(containers.length), Active: String(containers.filter((c) => c.status === 'running').length), Size: '' },
      ];
      const columns = [
        { heading: 'TYPE', field: 'Type' },
        { heading: 'TOTAL', field: 'TotalCount' },
        { heading: 'ACTIVE', field: 'Active' },
        { heading: 'SIZE', field: 'Size' },
      ];
      ctx.out.write(formatRows(rows, columns, undefined));
    });
  system
    .command('prune')
    .description('Remove stopped containers, what crashed processes left, and unused image data')
    .option('-f, --force', 'do not prompt for confirmation')
    .option('-a, --all', 'accepted for docker compatibility')
    .action(async () => {
      const runtime = await ctx.runtime();
      const removed: string[] = [];
      for (const c of await runtime.list()) {
        if (c.status !== 'stopped') continue;
        await (await runtime.get(c.id)).remove().then(() => removed.push(c.id), () => undefined);
      }
      const pruned = await runtime.prune();
      const gc = await (await ctx.store()).gc();
      ctx.print(`Deleted containers: ${removed.length}`);
      for (const id of removed) ctx.print(id);
      ctx.print(`Cleaned leftovers: ${pruned.length}`);
      ctx.print(`Deleted blobs: ${gc.blobs.length}, snapshots: ${gc.snapshots.length}`);
      ctx.print(`Total reclaimed space: ${humanSize(gc.reclaimedBytes)}`);
    });
  system
    .command('check')
    .description("Check the store's consistency, and audit what dockless made on this host for leaks")
    .option('-a, --all', 'list everything the audit found, not only what is orphaned')
    .option('--format <format>', "the audit's rows: table, json, or a Go template ({{.Kind}} {{.What}} {{.ID}} {{.Orphaned}} {{.Reason}})")
    .action(async (flags: { all?: boolean; format?: string }) => {
      const problems = await (await ctx.store()).check();
      for (const p of problems) ctx.print(JSON.stringify(p));
      ctx.print(problems.length > 0 ? `store: ${problems.length} problem${problems.length === 1 ? '' : 's'}` : 'store: no problems found');
      const found = await (await ctx.runtime()).audit();
      const orphans = found.filter((e) => e.orphaned);
      const shown = flags.all === true ? found : orphans;
      if (shown.length > 0) {
        const rows = shown.map((e) => ({ Kind: e.kind, What: e.what, ID: e.id?.slice(0, 12) ?? '', Orphaned: e.orphaned ? 'yes' : 'no', Reason: e.reason }));
        const columns = ['Kind', 'What', 'ID', 'Orphaned', 'Reason'].map((field) => ({ heading: field.toUpperCase(), field }));
        ctx.out.write(formatRows(rows, columns, flags.format));
      }
      ctx.print(
        orphans.length > 0
          ? `audit: ${orphans.length} of ${found.length} orphaned (\`dockless system prune\` removes them)`
          : `audit: ${found.length} found, none orphaned`,
      );
      if (problems.length > 0 || orphans.length > 0) {
        throw new ExitCode(1, `dockless: ${problems.length} store problem${problems.length === 1 ? '' : 's'}, ${orphans.length} orphaned`);
      }
    });

  program
    .command('login')
    .description('Log in to a registry')
    .argument('[server]', 'the registry (host[:port])', 'docker.io')
    .option('-u, --username <username>', 'username')
    .option('-p, --password <password>', 'password (prefer --password-stdin)')
    .option('--password-stdin', 'take the password from stdin')
    .action(async (server: string, flags: { username?: string; password?: string; passwordStdin?: boolean }) => {
      if (flags.username === undefined) throw new ExitCode(125, 'dockless: login needs --username (dockless does not prompt)');
      const password = flags.passwordStdin === true ? await readStdin() : flags.password;
      if (password === undefined) throw new ExitCode(125, 'dockless: login needs --password-stdin or --password');
      if (flags.password !== undefined) ctx.err.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
      const result = await login(server, { username: flags.username, password });
      ctx.print(`Login Succeeded (credentials saved in ${result.file})`);
    });

  program
    .command('logout')
    .description('Log out from a registry')
    .argument('[server]', 'the registry (host[:port])', 'docker.io')
    .action(async (server: string) => {
      const files = await logout(server);
      ctx.print(files.length > 0 ? `Removing login credentials for ${server}` : `Not logged in to ${server}`);
    });

  program
    .command('completion')
    .description('Print a shell completion script (bash or zsh)')
    .argument('<shell>', 'bash or zsh')
    .action((shell: string) => {
      if (shell !== 'bash' && shell !== 'zsh') throw new ExitCode(125, `dockless: completion: unknown shell \`${shell}\` (bash or zsh)`);
      ctx.out.write(shell === 'bash' ? bashCompletion(program) : zshCompletion(program));
    });
}

interface CommandWords {
  path: string;
  subcommands: string[];
  options: string[];
}

/** The commands a user types: not the hidden ones (named `__…`) that dockless starts itself. */
const typed = (cmd: Command): Command[] => cmd.commands.filter((c) => !c.name().startsWith('__'));

function walk(cmd: Command, prefix: string[] = []): CommandWords[] {
  const path = prefix.join(' ');
  const words: CommandWords = {
    path,
    subcommands: typed(cmd).flatMap((c) => [c.name(), ...c.aliases()]),
    options: cmd.options.flatMap((o) => [o.short, o.long].filter((x): x is string => x !== undefined)),
  };
  return [words, ...typed(cmd).flatMap((c) => walk(c, [...prefix, c.name()]))];
}

/** A bash completion script for the program's commands and flags. */
export function bashCompletion(program: Command): string {
  const all = walk(program);
  const cases = all.map((w) => `    "${w.path}") echo "${[...w.subcommands, ...w.options].join(' ')}" ;;`).join('\n');
  const paths = all.map((w) => w.path).filter((p) => p !== '');
  return `# dockless bash completion: source it, or put it in /etc/bash_completion.d/dockless
_dockless_paths="|${paths.join('|')}|"
_dockless_words() {
  case "$1" in
${cases}
  esac
}
_dockless() {
  local cur path i w
  cur="\${COMP_WORDS[COMP_CWORD]}"
  path=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in -*) continue ;; esac
    case "$_dockless_paths" in
      *"|\${path:+$path }$w|"*) path="\${path:+$path }$w" ;;
    esac
  done
  COMPREPLY=($(compgen -W "$(_dockless_words "$path")" -- "$cur"))
}
complete -F _dockless dockless
`;
}

/** A zsh completion script (through bashcompinit, from the same definitions). */
export function zshCompletion(program: Command): string {
  return `#compdef dockless
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(program)}`;
}
