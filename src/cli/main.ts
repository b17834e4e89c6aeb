/**
 * `dockless`: a docker-compatible command line over the library. Docker's
 * command names, flags, output layouts and exit codes: the command's own code
 * for `run`/`exec`, 125 when dockless itself fails, 126 when the command cannot
 * be invoked, 127 when it is not found. An error prints one line naming what
 * failed; `--debug` (or `DEBUG=dockless:*`) adds the stack.
 *
 * @module
 */
import { Command, CommanderError } from 'commander';
import { DocklessError, HelperError } from '../index.js';
import { addContainerCommands } from './containers.js';
import { CliContext, ExitCode } from './context.js';
import { addImageCommands } from './images.js';
import { addNetworkCommands } from './networks.js';
import { addSystemCommands } from './system.js';

/** Docker's exit codes for a failure before the command ran. */
export const EXIT_DOCKLESS = 125;
/** The command was found but could not be invoked. */
export const EXIT_CANNOT_INVOKE = 126;
/** The command was not found. */
export const EXIT_NOT_FOUND = 127;

/** The program with every command, writing through `ctx`. */
export function buildProgram(ctx: CliContext): Command {
  const program = new Command('dockless')
    .description('Docker as a library, and this docker-compatible command line: no daemon, no socket')
    .option('--root <dir>', 'keep store, containers and state under this directory (else $DOCKLESS_ROOT, else the defaults)')
    .option('-D, --debug', 'print stack traces on errors')
    .enablePositionalOptions()
    .showSuggestionAfterError()
    .configureOutput({ writeOut: (s) => ctx.out.write(s), writeErr: (s) => ctx.err.write(s) })
    .exitOverride();
  addContainerCommands(program, ctx);
  addImageCommands(program, ctx);
  addNetworkCommands(program, ctx);
  addSystemCommands(program, ctx);
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
  const program = buildProgram(ctx);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    const { code, message } = exitFor(error);
    if (message !== '') ctx.err.write(`${message}\n`);
    if (debug && error instanceof Error && !(error instanceof ExitCode) && !(error instanceof CommanderError)) ctx.err.write(`${error.stack ?? ''}\n`);
    return code;
  }
}
