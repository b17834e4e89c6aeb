/**
 * `dockless`: a docker-compatible command line over the library. Docker's
 * command names, flags, output layouts and exit codes: the command's own code
 * for `run`/`exec`, 125 when dockless itself fails, 126 when the command cannot
 * be invoked, 127 when it is not found. An error prints one line naming what
 * failed; `--debug` (or `DEBUG=dockless:*`) adds the stack.
 *
 * @module
 */
import { Writable } from 'node:stream';
import { Command, CommanderError } from 'commander';
import { DocklessError, HelperError } from '../index.js';
import { CliContext, ExitCode } from './context.js';

/** Docker's exit codes for a failure before the command ran. */
export const EXIT_DOCKLESS = 125;
/** The command was found but could not be invoked. */
export const EXIT_CANNOT_INVOKE = 126;
/** The command was not found. */
export const EXIT_NOT_FOUND = 127;

type CommandGroup = 'containers' | 'images' | 'networks' | 'system';

/**
 * The commands' code, loaded by group: a command loads its own group only, so
 * `dockless run` never reads the builder, the registry client, the progress
 * display or the tar code (and the bundle keeps them in chunks of their own).
 */
const GROUPS: Record<CommandGroup, () => Promise<(program: Command, ctx: CliContext) => void>> = {
  containers: async () => (await import('./containers.js')).addContainerCommands,
  images: async () => (await import('./images.js')).addImageCommands,
  networks: async () => (await import('./networks.js')).addNetworkCommands,
  system: async () => (await import('./system.js')).addSystemCommands,
};

/** The group that defines each top-level command; a unit test checks it against the groups' definitions. */
export const COMMAND_GROUPS: Readonly<Record<string, CommandGroup>> = {
  ...Object.fromEntries(
    ['run', 'create', 'start', 'exec', 'ps', 'logs', 'stop', 'restart', 'kill', 'rm', 'wait', 'inspect', 'top', 'stats', 'cp', 'pause', 'unpause', 'rename', 'diff', 'update', '__remove-on-exit'].map((c) => [c, 'containers' as const]),
  ),
  ...Object.fromEntries(
    ['commit', 'image', 'images', 'pull', 'push', 'tag', 'rmi', 'history', 'save', 'load', 'import', 'build', 'rollback'].map((c) => [c, 'images' as const]),
  ),
  ...Object.fromEntries(['network', 'pod', 'port', 'attach'].map((c) => [c, 'networks' as const])),
  ...Object.fromEntries(['version', 'info', 'system', 'login', 'logout', 'completion'].map((c) => [c, 'system' as const])),
};

/** The first word of `argv` that is not a global option: the command's name. */
export function commandName(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--root') i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/**
 * Builds the program for `argv` and parses it with a context that has no store
 * nor runtime, writing nowhere: the command fails at its first use of either,
 * before it does anything. What the command line's V8 startup snapshot
 * (native/snapshot-entry.cjs) runs at install, so that it keeps the parsing
 * code compiled rather than compiling it at each start.
 */
export async function rehearse(argv: readonly string[]): Promise<void> {
  const nowhere = new Writable({ write: (_chunk, _encoding, done) => done() }) as unknown as NodeJS.WriteStream;
  const ctx = new CliContext({}, nowhere, nowhere);
  const absent = (): Promise<never> => Promise.reject(new Error('a rehearsal has no store nor runtime'));
  Object.assign(ctx, { store: absent, runtime: absent });
  const program = await buildProgram(ctx, commandName(argv));
  await program.parseAsync([...argv], { from: 'user' }).catch(() => undefined);
}

/**
 * The program, writing through `ctx`: with `command`, the commands of that
 * command's group only; else (help, an unknown name, completion) every command.
 */
export async function buildProgram(ctx: CliContext, command?: string): Promise<Command> {
  const program = new Command('dockless')
    .description('Docker as a library, and this docker-compatible command line: no daemon, no socket')
    .option('--root <dir>', 'keep store, containers and state under this directory (else $DOCKLESS_ROOT, else the defaults)')
    .option('-D, --debug', 'print stack traces on errors')
    .enablePositionalOptions()
    .showSuggestionAfterError()
    .configureOutput({ writeOut: (s) => ctx.out.write(s), writeErr: (s) => ctx.err.write(s) })
    .exitOverride();
  const group = command !== undefined && command !== 'completion' ? COMMAND_GROUPS[command] : undefined;
  const wanted: CommandGroup[] = group !== undefined ? [group] : ['containers', 'images', 'networks', 'system'];
  for (const add of await Promise.all(wanted.map((g) => GROUPS[g]()))) add(program, ctx);
  for (const c of program.commands) c.exitOverride();
  return program;
}

/** The exit code and one-line message for an error a command threw. */
export function exitFor(error: unknown): { code: number; message: string } {
  if (error instanceof ExitCode) return { code: error.code, message: error.message };
  if (error instanceof CommanderError) {
    // Commander printed its own message already.
    const ok = error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help';
    return { code: ok ? 0 : EXIT_DOCKLESS, message: '' };
  }
  if (error instanceof HelperError && /exec/.test(error.step ?? '')) {
    if (error.errnoCode === 'ENOENT') return { code: EXIT_NOT_FOUND, message: `dockless: ${error.message}: executable file not found` };
    if (error.errnoCode === 'EACCES' || error.errnoCode === 'ENOEXEC' || error.errnoCode === 'EISDIR') {
      return { code: EXIT_CANNOT_INVOKE, message: `dockless: ${error.message}: permission denied` };
    }
  }
  if (error instanceof DocklessError) return { code: EXIT_DOCKLESS, message: `dockless: ${error.message}` };
  return { code: EXIT_DOCKLESS, message: `dockless: ${error instanceof Error ? error.message : String(error)}` };
}

/** Runs the command line `argv` (without `node` and the script) and returns the exit code. */
export async function main(argv: readonly string[], out: NodeJS.WriteStream = process.stdout, err: NodeJS.WriteStream = process.stderr): Promise<number> {
  const debug = argv.includes('--debug') || argv.includes('-D') || /dockless/.test(process.env.DEBUG ?? '');
  const root = argv.indexOf('--root');
  const ctx = new CliContext(root >= 0 && argv[root + 1] !== undefined ? { root: argv[root + 1]! } : {}, out, err);
  try {
    const program = await buildProgram(ctx, commandName(argv));
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    const { code, message } = exitFor(error);
    if (message !== '') ctx.err.write(`${message}\n`);
    // Unref'd: a process with nothing left ends at once, as it would anyway.
    if (error instanceof ExitCode && error.detached) setTimeout(() => process.exit(code), 100).unref();
    if (debug && error instanceof Error && !(error instanceof ExitCode) && !(error instanceof CommanderError)) ctx.err.write(`${error.stack ?? ''}\n`);
    return code;
  }
}
