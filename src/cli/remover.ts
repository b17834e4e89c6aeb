/**
 * `--rm` without a daemon: the hidden command that waits for a container to
 * exit and removes it, started in the background by `run -d --rm`, `run -it
 * --rm` and the `start` of a `create --rm` container.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { Command } from 'commander';
import { NotFoundError } from '../index.js';
import { ExitCode, type CliContext } from './context.js';

/** The hidden command that `run -d --rm` starts in the background. */
export const REMOVER_COMMAND = '__remove-on-exit';

/**
 * Starts this command again, in the background and in a session of its own,
 * to wait for the container and remove it when it exits: Docker's daemon does
 * that for `run -d --rm`; here the container's shim outlives us, and this
 * small waiter does too. `attached`: until `release()`, our death (even by
 * SIGKILL: the end of its stdin) has it remove the container at once.
 */
export function spawnRemover(ctx: CliContext, id: string, options: { attached?: boolean } = {}): { release: () => void } {
  const script = process.argv[1];
  if (script === undefined) throw new ExitCode(125, 'dockless: --rm: cannot find the dockless command to wait for the container');
  const attached = options.attached === true;
  const child = spawn(process.execPath, [...process.execArgv, script, ...ctx.globalArgs(), REMOVER_COMMAND, ...(attached ? ['--attached'] : []), id], {
    detached: true,
    stdio: [attached ? 'pipe' : 'ignore', 'ignore', 'ignore'],
  });
  child.unref();
  const stdin = child.stdin as (Writable & { unref?: () => void }) | null;
  stdin?.on('error', () => undefined);
  stdin?.unref?.();
  return { release: () => void stdin?.end('d') };
}

/** Resolves when `stdin` ends without a `d` having come on it (the caller died attached); never after a `d`. */
function ownerEnds(stdin: Readable): Promise<void> {
  return new Promise((resolveEnd) => {
    let released = false;
    stdin.on('data', (d: Buffer) => (released ||= d.includes('d')));
    stdin.on('error', () => undefined);
    stdin.on('close', () => (released ? undefined : resolveEnd()));
    stdin.on('end', () => (released ? undefined : resolveEnd()));
  });
}

/** Adds the hidden {@link REMOVER_COMMAND} to `program`. */
export function addRemoverCommand(program: Command, ctx: CliContext): void {
  program
    .command(REMOVER_COMMAND, { hidden: true })
    .description('wait for a container to exit, then remove it (what `run -d --rm` leaves behind)')
    .argument('<container>')
    .option('--attached', 'remove it at once when stdin ends before a `d` (the attached command died) comes on it')
    .action(async (ref: string, flags: { attached?: boolean }) => {
      const gone = (e: unknown): Promise<undefined> => (e instanceof NotFoundError ? Promise.resolve(undefined) : Promise.reject(e));
      const ownerDied = flags.attached === true ? ownerEnds(process.stdin) : new Promise<never>(() => undefined);
      const c = await (await ctx.runtime()).get(ref).catch(gone);
      if (c !== undefined) {
        await Promise.race([c.wait(), ownerDied]);
        await c.remove({ force: true }).catch(gone);
      }
      process.stdin.destroy();
    });
}
