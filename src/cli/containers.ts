/**
 * The container commands: run, create, start, exec, ps, logs, stop, restart, kill, rm,
 * wait, inspect, top, stats, cp, pause, unpause, rename, diff, update. Each is a thin layer
 * over {@link Runtime} and {@link Container}; flag values are turned into the
 * spec by ./run-spec.ts.
 *
 * @module
 */
import { posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { NotFoundError, type Container, type ContainerInfo, type Runtime } from '../index.js';
import { ExitCode, type CliContext } from './context.js';
import { parseCopyOperand, parseInteger, parseTime, resourceOptions, updateResources, type UpdateFlags } from './flags.js';
import { ago, binarySize, formatRows, humanDuration, shortCommand, shortId, type Column, type Row } from './format.js';
import { DEFAULT_DETACH_KEYS, parseDetachKeys } from './detach-keys.js';
import { attachStdin, connectTerminal } from './terminal.js';
import { addRunOptions, specFromRunOptions, type RunFlags } from './run-spec.js';
import { addRemoverCommand, spawnRemover } from './remover.js';
import { Namespace, type ContainerSpec } from '../index.js';

const PS_COLUMNS: readonly Column[] = [
  { heading: 'CONTAINER ID', field: 'ID' },
  { heading: 'IMAGE', field: 'Image' },
  { heading: 'COMMAND', field: 'Command' },
  { heading: 'CREATED', field: 'RunningFor' },
  { heading: 'STATUS', field: 'Status' },
  { heading: 'PORTS', field: 'Ports' },
  { heading: 'NAMES', field: 'Names' },
];

function statusText(info: ContainerInfo, now: number): string {
  switch (info.status) {
    case 'created':
      return 'Created';
    case 'running':
      return `Up ${humanDuration(now - info.created.getTime())}${info.health === undefined ? '' : info.health === 'starting' ? ' (health: starting)' : ` (${info.health})`}`;
    case 'paused':
      return `Up ${humanDuration(now - info.created.getTime())} (Paused)`;
    case 'stopped':
      return `Exited (${info.exit?.exitCode ?? 0})`;
  }
}

/** A `docker ps` row of a container. */
export function psRow(info: ContainerInfo, full: boolean, now = Date.now()): Row {
  return {
    ID: shortId(info.id, full),
    Image: info.image ?? info.rootfs,
    Command: shortCommand(info.cmd, full),
    CreatedAt: info.created.toISOString(),
    RunningFor: ago(info.created, now),
    Status: statusText(info, now),
    State: info.status === 'stopped' ? 'exited' : info.status,
    Ports: info.status === 'running' || info.status === 'paused' ? (info.ports ?? []).map((p) => `${p.hostIp}:${p.host}->${p.container}/${p.protocol}`).join(', ') : '',
    Names: info.name ?? '',
    Labels: Object.entries(info.labels).map(([k, v]) => `${k}=${v}`).join(','),
    Pid: String(info.pid),
  };
}

async function each(ctx: CliContext, refs: readonly string[], action: (c: Container, ref: string) => Promise<void>): Promise<void> {
  const runtime = await ctx.runtime();
  let failed = false;
  for (const ref of refs) {
    try {
      await action(await runtime.get(ref), ref);
    } catch (error) {
      // A command's own exit code (start -a ends with the container's).
      if (error instanceof ExitCode) throw error;
      failed = true;
      ctx.err.write(`Error response from dockless: ${(error as Error).message}\n`);
    }
  }
  if (failed) throw new ExitCode(1);
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Adds the container commands to `program`. */
export function addContainerCommands(program: Command, ctx: CliContext): void {
  addRunOptions(
    program
      .command('run')
      .description('Create and run a new container from an image')
      .argument('<image>', 'the image (or --rootfs DIR and the command)')
      .argument('[command...]', 'the command and its arguments')
      .passThroughOptions()
      .option('-d, --detach', 'run in the background and print the container ID')
      .option('--rm', 'remove the container when it exits')
      .option('--detach-keys <keys>', `with -i on a terminal, the key sequence that detaches (default ${DEFAULT_DETACH_KEYS}; empty: none)`),
  ).action(async (image: string, command: string[], flags: RunFlags & { detach?: boolean; rm?: boolean; detachKeys?: string }) => {
    const runtime = await ctx.runtime();
    const spec = { ...(await resolveRunSpec(ctx, image, command, flags)), ...(flags.rm === true ? { autoRemove: true } : {}) };
    if (flags.rm === true && spec.restart !== undefined && spec.restart !== 'no') throw new ExitCode(125, 'dockless: conflicting options: --restart and --rm');
    const keys = parseDetachKeys(flags.detachKeys ?? DEFAULT_DETACH_KEYS);
    if (flags.detach === true) {
      const c = await runtime.run({ ...spec, detached: true, stdio: 'pipe' });
      if (flags.rm === true) spawnRemover(ctx, c.id);
      ctx.print(c.id);
      await ctx.flushStore();
      return;
    }
    const interactive = flags.interactive === true || flags.tty === true;
    // Someone at a terminal can type the detach keys: the container is detached then, and this process attached to it until they do.
    const detachable = flags.interactive === true && process.stdin.isTTY === true && keys.length > 0;
    // Without --rm the container is kept once it exits (ps -a, logs, start, rm), as Docker's: it must outlive us.
    const kept = flags.rm !== true;
    const c = await runtime.run({ ...spec, ...(detachable || kept ? { detached: true, attach: true } : {}), stdio: interactive ? 'pipe' : 'inherit' });
    // Detachable, the container outlives us: with --rm, a waiter removes it when it exits, or at once if we die attached (as Docker's daemon would once the CLI is gone).
    const remover = detachable && flags.rm === true ? spawnRemover(ctx, c.id, { attached: true }) : undefined;
    const forward = (sig: NodeJS.Signals): void => void c.kill(sig).catch(() => undefined);
    const signals: NodeJS.Signals[] = flags.tty === true ? ['SIGTERM', 'SIGHUP'] : ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const s of signals) process.on(s, forward);
    let detach: () => void = () => undefined;
    const detached = new Promise<'detached'>((resolveDetach) => (detach = () => resolveDetach('detached')));
    const terminal = interactive ? connectTerminal(c, flags.interactive === true, flags.tty === true, detachable ? { keys, onDetach: detach } : undefined) : undefined;
    try {
      const exit = await Promise.race([c.wait(), detached]);
      // What the run unpacked reaches the disk before we end (the container may be started again after a reboot).
      await ctx.flushStore();
      if (exit === 'detached') {
        remover?.release();
        throw new ExitCode(0, '', { detached: true });
      }
      if (flags.rm === true) await c.remove();
      throw new ExitCode(exit.exitCode);
    } finally {
      terminal?.();
      for (const s of signals) process.off(s, forward);
    }
  });

  addRemoverCommand(program, ctx);

  addRunOptions(
    program
      .command('create')
      .description('Create a new container (started later with `dockless start`)')
      .argument('<image>')
      .argument('[command...]')
      .passThroughOptions()
      .option('--rm', 'remove the container when it exits (after `dockless start`)'),
  ).action(async (image: string, command: string[], flags: RunFlags & { rm?: boolean }) => {
    const runtime = await ctx.runtime();
    const spec = await resolveRunSpec(ctx, image, command, flags);
    if (flags.rm === true && spec.restart !== undefined && spec.restart !== 'no') throw new ExitCode(125, 'dockless: conflicting options: --restart and --rm');
    const c = await runtime.create({ ...spec, ...(flags.rm === true ? { autoRemove: true } : {}), detached: true, stdio: 'pipe' });
    ctx.print(c.id);
    // `dockless start` may come after a reboot: the image's files it unpacked must be on disk by then.
    await ctx.flushStore();
  });

  program
    .command('start')
    .description('Start one or more created containers')
    .argument('<container...>')
    .option('-a, --attach', "attach the container's output (and wait for it)")
    .option('-i, --interactive', "attach the container's stdin (it was created with -i); implies --attach")
    .option('--detach-keys <keys>', `the key sequence that detaches (default ${DEFAULT_DETACH_KEYS}; empty: none)`)
    .action(async (refs: string[], flags: { attach?: boolean; interactive?: boolean; detachKeys?: string }) => {
      const keys = parseDetachKeys(flags.detachKeys ?? DEFAULT_DETACH_KEYS);
      const attach = flags.attach === true || flags.interactive === true;
      if (attach && refs.length > 1) throw new ExitCode(125, 'dockless: you cannot start and attach multiple containers at once');
      await each(ctx, refs, async (c, ref) => {
        // As Docker's: attaching to one that runs already is not an error.
        const running = c.status === 'running' || c.status === 'paused';
        const since = new Date();
        // An exited container runs again, as with Docker's start; attached, only what this run writes is shown.
        const again = c.status === 'stopped';
        if (again) await c.restart();
        else if (!(attach && running)) await c.start();
        // `create --rm`: with no daemon to remove it, a waiter does unless we stay attached to the end.
        const autoRemove = c.info().autoRemove === true;
        if (!attach) {
          if (autoRemove && !running) spawnRemover(ctx, c.id);
          return ctx.print(ref);
        }
        const ac = new AbortController();
        const stdin = flags.interactive === true ? await attachStdin(c, keys, () => ac.abort()) : undefined;
        try {
          for await (const line of c.logs({ follow: true, partial: true, signal: ac.signal, ...(running || again ? { since } : {}) })) (line.stream === 'stderr' ? ctx.err : ctx.out).write(line.text);
        } catch (error) {
          if (!ac.signal.aborted) throw error;
        } finally {
          await stdin?.();
        }
        if (ac.signal.aborted) {
          if (autoRemove) spawnRemover(ctx, c.id);
          throw new ExitCode(0, '', { detached: true });
        }
        const exit = await c.wait();
        if (autoRemove) await c.remove({ force: true }).catch((e: unknown) => (e instanceof NotFoundError ? undefined : Promise.reject(e)));
        throw new ExitCode(exit.exitCode);
      });
    });

  program
    .command('exec')
    .description('Run a command in a running container')
    .argument('<container>')
    .argument('<command...>')
    .passThroughOptions()
    .option('-d, --detach', 'run the command in the background')
    .option('-i, --interactive', 'keep stdin open')
    .option('-t, --tty', 'allocate a pseudo-TTY')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable', collect)
    .option('-u, --user <user>', 'user name or uid[:gid]')
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('--privileged', 'give the command extended privileges')
    .option('--detach-keys <keys>', `with -i on a terminal, the key sequence that detaches (default ${DEFAULT_DETACH_KEYS}; empty: none)`)
    .action(async (ref: string, command: string[], flags: { detach?: boolean; interactive?: boolean; tty?: boolean; env?: string[]; user?: string; workdir?: string; privileged?: boolean; detachKeys?: string }) => {
      const keys = parseDetachKeys(flags.detachKeys ?? DEFAULT_DETACH_KEYS);
      // As for run -it: someone at a terminal can leave the command running with the detach keys, so it must not die with us.
      const detachable = flags.detach !== true && flags.interactive === true && process.stdin.isTTY === true && keys.length > 0;
      const runtime = await ctx.runtime();
      const c = await runtime.get(ref);
      const env: Record<string, string> = {};
      for (const e of flags.env ?? []) {
        const eq = e.indexOf('=');
        if (eq > 0) env[e.slice(0, eq)] = e.slice(eq + 1);
        else if (process.env[e] !== undefined) env[e] = process.env[e]!;
      }
      const p = await c.exec(command, {
        env,
        ...(flags.user !== undefined ? { user: flags.user } : {}),
        ...(flags.workdir !== undefined ? { cwd: flags.workdir } : {}),
        ...(flags.privileged === true ? { privileged: true } : {}),
        ...(flags.tty === true ? { tty: true, ttySize: { columns: process.stdout.columns || 80, rows: process.stdout.rows || 24 } } : {}),
        stdio: flags.detach === true ? 'ignore' : flags.tty === true || flags.interactive === true ? 'pipe' : 'inherit',
        ...(flags.detach === true || detachable ? { detached: true } : {}),
      });
      if (flags.detach === true) return;
      let detach: () => void = () => undefined;
      const detached = new Promise<'detached'>((resolveDetach) => (detach = () => resolveDetach('detached')));
      const undo = flags.tty === true || flags.interactive === true ? connectTerminal(p, flags.interactive === true, flags.tty === true, detachable ? { keys, onDetach: detach } : undefined) : undefined;
      // Detachable, it no longer dies with us: a closed terminal still ends it, as it ends a shell at that terminal.
      // A write to (or read from) a terminal that hung up fails with EIO, which Node may deliver before SIGHUP: the same hangup.
      const hangup = (): void => p.kill('SIGHUP');
      if (detachable) {
        process.on('SIGHUP', hangup);
        process.stdout.on('error', hangup);
        process.stdin.on('error', hangup);
      }
      try {
        const exit = await Promise.race([p.wait(), detached]);
        if (exit === 'detached') throw new ExitCode(0, '', { detached: true });
        throw new ExitCode(exit.exitCode);
      } finally {
        process.off('SIGHUP', hangup);
        process.stdout.off('error', hangup);
        process.stdin.off('error', hangup);
        undo?.();
      }
    });

  program
    .command('ps')
    .description('List containers')
    .option('-a, --all', 'show all containers (default shows just running)')
    .option('-q, --quiet', 'only display container IDs')
    .option('-f, --filter <filter>', 'filter output (status=, name=, id=, label=, ancestor=, health=, exited=, before=, since=)', collect)
    .option('--format <format>', 'table, json, or a Go template')
    .option('--no-trunc', "don't truncate output")
    .option('-n, --last <n>', 'show n last created containers')
    .option('-l, --latest', 'show the latest created container')
    .action(async (flags: { all?: boolean; quiet?: boolean; filter?: string[]; format?: string; trunc?: boolean; last?: string; latest?: boolean }) => {
      const runtime = await ctx.runtime();
      let list = (await runtime.list()).sort((a, b) => b.created.getTime() - a.created.getTime());
      const filters = flags.filter ?? [];
      const showAll = flags.all === true || flags.last !== undefined || flags.latest === true || filters.some((f) => f.startsWith('status=') || f.startsWith('exited='));
      if (!showAll) list = list.filter((c) => c.status === 'running' || c.status === 'paused');
      // As a daemon would have: a check that fell due while nobody looked runs now (inspect runs overdue ones).
      list = await Promise.all(list.map(async (c) => (c.health !== undefined && c.status === 'running' ? refreshHealth(runtime, c) : c)));
      for (const f of filters) {
        const [key, ref] = [f.slice(0, f.indexOf('=')), f.slice(f.indexOf('=') + 1)];
        if (key !== 'before' && key !== 'since') {
          list = list.filter(containerFilter(f));
          continue;
        }
        const created = (await runtime.get(ref)).created.getTime();
        list = list.filter((c) => (key === 'before' ? c.created.getTime() < created : c.created.getTime() > created));
      }
      if (flags.latest === true) list = list.slice(0, 1);
      if (flags.last !== undefined) list = list.slice(0, parseInteger('--last', flags.last));
      const now = Date.now();
      ctx.out.write(formatRows(list.map((c) => psRow(c, flags.trunc === false, now)), PS_COLUMNS, flags.format, flags.quiet === true));
    });

  program
    .command('logs')
    .description("Fetch a container's logs")
    .argument('<container>')
    .option('-f, --follow', 'follow log output')
    .option('-n, --tail <n>', 'number of lines to show from the end (or "all")')
    .option('--since <time>', 'show logs since a timestamp (RFC 3339) or relative time (e.g. 42m)')
    .option('--until <time>', 'show logs before a timestamp or relative time')
    .option('-t, --timestamps', 'show timestamps')
    .action(async (ref: string, flags: { follow?: boolean; tail?: string; since?: string; until?: string; timestamps?: boolean }) => {
      const c = await (await ctx.runtime()).get(ref);
      const ac = new AbortController();
      const stop = (): void => ac.abort();
      process.once('SIGINT', stop);
      try {
        for await (const line of c.logs({
          ...(flags.follow === true ? { follow: true, partial: true } : {}),
          ...(flags.tail !== undefined && flags.tail !== 'all' ? { tail: parseInteger('--tail', flags.tail) } : {}),
          ...(flags.since !== undefined ? { since: parseTime('--since', flags.since) } : {}),
          ...(flags.until !== undefined ? { until: parseTime('--until', flags.until) } : {}),
          ...(flags.timestamps === true ? { timestamps: true } : {}),
          signal: ac.signal,
        })) {
          (line.stream === 'stderr' ? ctx.err : ctx.out).write(line.text);
        }
      } catch (error) {
        if (!ac.signal.aborted) throw error;
      } finally {
        process.off('SIGINT', stop);
      }
    });

  program
    .command('stop')
    .description('Stop one or more running containers')
    .argument('<container...>')
    .option('-t, --time <seconds>', "seconds to wait before killing it (default: the container's stop timeout, else 10)")
    .action(async (refs: string[], flags: { time?: string }) => {
      const timeoutMs = flags.time !== undefined ? parseInteger('--time', flags.time) * 1000 : undefined;
      await each(ctx, refs, async (c, ref) => {
        if (c.status === 'running' || c.status === 'paused') await c.stop(timeoutMs !== undefined ? { timeoutMs } : {});
        ctx.print(ref);
      });
    });

  program
    .command('restart')
    .description('Restart one or more containers')
    .argument('<container...>')
    .option('-t, --time <seconds>', "seconds to wait before killing it (default: the container's stop timeout, else 10)")
    .action(async (refs: string[], flags: { time?: string }) => {
      const timeoutMs = flags.time !== undefined ? parseInteger('--time', flags.time) * 1000 : undefined;
      await each(ctx, refs, async (c, ref) => {
        await c.restart(timeoutMs !== undefined ? { timeoutMs } : {});
        ctx.print(ref);
      });
    });

  resourceOptions(program.command('update').description('Update the resource limits of one or more containers').argument('<container...>'))
    .action(async (refs: string[], flags: UpdateFlags) => {
      const resources = updateResources(flags);
      await each(ctx, refs, async (c, ref) => {
        await c.update(resources);
        ctx.print(ref);
      });
    });

  program
    .command('kill')
    .description('Kill one or more running containers')
    .argument('<container...>')
    .option('-s, --signal <signal>', 'signal to send', 'KILL')
    .action(async (refs: string[], flags: { signal: string }) => {
      const signal = /^\d+$/.test(flags.signal) ? Number(flags.signal) : ((flags.signal.toUpperCase().startsWith('SIG') ? flags.signal.toUpperCase() : `SIG${flags.signal.toUpperCase()}`) as NodeJS.Signals);
      await each(ctx, refs, async (c, ref) => {
        await c.kill(signal);
        ctx.print(ref);
      });
    });

  program
    .command('rm')
    .description('Remove one or more containers')
    .argument('<container...>')
    .option('-f, --force', 'force the removal of a running container')
    .option('-v, --volumes', 'remove anonymous volumes (dockless has none)')
    .action(async (refs: string[], flags: { force?: boolean }) => {
      await each(ctx, refs, async (c, ref) => {
        // As Docker's: only a running (or paused) container needs -f; a created one has not run anything yet.
        await c.remove({ force: flags.force === true || c.status === 'created' });
        ctx.print(ref);
      });
    });

  program
    .command('wait')
    .description('Block until containers stop, then print their exit codes')
    .argument('<container...>')
    .action(async (refs: string[]) => {
      await each(ctx, refs, async (c) => ctx.print(String((await c.wait()).exitCode)));
    });

  program
    .command('inspect')
    .description('Return low-level information on containers or images')
    .argument('<name...>')
    .option('-f, --format <format>', 'format the output using a Go template')
    .option('--type <type>', 'container or image')
    .action(async (refs: string[], flags: { format?: string; type?: string }) => {
      const runtime = await ctx.runtime();
      const results: unknown[] = [];
      const missing: string[] = [];
      for (const ref of refs) {
        let found: unknown;
        if (flags.type !== 'image') found = await runtime.get(ref).then((c) => c.inspect(), (e: unknown) => (e instanceof NotFoundError ? undefined : Promise.reject(e)));
        if (found === undefined && flags.type !== 'container') {
          const store = await ctx.store();
          found = await store.inspect(ref).catch((e: unknown) => (e instanceof NotFoundError ? undefined : Promise.reject(e)));
        }
        if (found === undefined) missing.push(ref);
        else results.push(found);
      }
      // As Docker's: what was found is printed, then one error line for each name that was not.
      printInspect(ctx, results, flags.format);
      if (missing.length > 0) throw new ExitCode(1, missing.map((ref) => `Error: No such object: ${ref}`).join('\n'));
    });

  program
    .command('top')
    .description('Display the running processes of a container')
    .argument('<container>')
    .action(async (ref: string) => {
      const c = await (await ctx.runtime()).get(ref);
      const rows = (await c.top()).map((p) => ({ UID: String(p.uid), PID: String(p.pid), PPID: String(p.ppid), STATE: p.state, CMD: p.command.join(' ') }));
      ctx.out.write(formatRows(rows, ['UID', 'PID', 'PPID', 'STATE', 'CMD'].map((f) => ({ heading: f, field: f })), undefined));
    });

  program
    .command('stats')
    .description('Display resource usage of containers')
    .argument('[container...]')
    .option('--no-stream', 'print one sample and exit')
    .option('--format <format>', 'table, json, or a Go template')
    .action(async (refs: string[], flags: { stream?: boolean; format?: string }) => {
      const runtime = await ctx.runtime();
      const targets = refs.length > 0 ? refs : (await runtime.list()).filter((c) => c.status === 'running').map((c) => c.id);
      const columns = ['ID', 'Name', 'CPUTime', 'MemUsage', 'PIDs'].map((f) => ({ heading: { ID: 'CONTAINER ID', Name: 'NAME', CPUTime: 'CPU TIME', MemUsage: 'MEM USAGE / LIMIT', PIDs: 'PIDS' }[f]!, field: f }));
      for (;;) {
        const rows: Row[] = [];
        for (const ref of targets) {
          const c = await runtime.get(ref);
          const s = await c.stats();
          rows.push({
            ID: shortId(c.id),
            Name: c.info().name ?? '',
            CPUTime: `${(s.cpu.usageNanos / 1e9).toFixed(2)}s`,
            MemUsage: `${binarySize(s.memory.usage)} / ${s.memory.limit !== undefined ? binarySize(s.memory.limit) : 'unlimited'}`,
            PIDs: String(s.pids.current),
          });
        }
        ctx.out.write(formatRows(rows, columns, flags.format));
        if (flags.stream === false) return;
        await new Promise((r) => setTimeout(r, 1000));
      }
    });

  program
    .command('cp')
    .description('Copy files between a container and the host (`-` is a tar stream on stdin/stdout)')
    .argument('<src>')
    .argument('<dest>')
    .action(async (src: string, dest: string) => {
      const runtime = await ctx.runtime();
      const from = parseCopyOperand(src);
      const to = parseCopyOperand(dest);
      if ('container' in from && 'host' in to) {
        const c = await runtime.get(from.container);
        const tar = await c.copyOut(from.path);
        if (to.host === '-') await pipeline(tar, ctx.out);
        else await (await import('./host-tar.js')).extractTar(tar, to.host);
      } else if ('host' in from && 'container' in to) {
        const c = await runtime.get(to.container);
        if (from.host === '-') return c.copyIn(process.stdin, to.path);
        // docker cp copies into an existing directory, else as the name given.
        await c.copyIn(from.host, to.path).catch(async (error: unknown) => {
          if (!(error instanceof NotFoundError) || to.path.endsWith('/')) throw error;
          await c.copyIn((await import('./host-tar.js')).packHostPath(from.host, posix.basename(to.path)), posix.dirname(to.path));
        });
      } else {
        throw new ExitCode(125, 'dockless: copying between two containers or two host paths is not supported; one of SRC and DEST must be CONTAINER:PATH');
      }
    });

  for (const [name, description] of [['pause', 'Pause all processes within one or more containers'], ['unpause', 'Unpause all processes within one or more containers']] as const) {
    program
      .command(name)
      .description(description)
      .argument('<container...>')
      .action(async (refs: string[]) => {
        await each(ctx, refs, async (c, ref) => {
          await (name === 'pause' ? c.pause() : c.unpause());
          ctx.print(ref);
        });
      });
  }

  program
    .command('rename')
    .description('Rename a container')
    .argument('<container>')
    .argument('<new-name>')
    .action(async (ref: string, name: string) => {
      await (await (await ctx.runtime()).get(ref)).rename(name);
    });

  program
    .command('diff')
    .description("Inspect changes to files or directories on a container's filesystem")
    .argument('<container>')
    .action(async (ref: string) => {
      const changes = await (await (await ctx.runtime()).get(ref)).diff();
      ctx.out.write(changes.map((c) => `${c.kind} ${c.path}\n`).join(''));
    });
}

/** `info` with the health an overdue check gives, when one was due. */
async function refreshHealth(runtime: Runtime, info: ContainerInfo): Promise<ContainerInfo> {
  try {
    const status = (await (await runtime.get(info.id)).inspect()).State.Health?.Status;
    return status !== undefined ? { ...info, health: status } : info;
  } catch {
    return info;
  }
}

/** Prints inspect results: a JSON array, or one template line per result. */
export function printInspect(ctx: CliContext, results: readonly unknown[], format: string | undefined): void {
  if (format === undefined) ctx.print(JSON.stringify(results, null, 4));
  else for (const r of results) ctx.out.write(formatRows([r as Row], [], format));
}

function containerFilter(filter: string): (c: ContainerInfo) => boolean {
  const eq = filter.indexOf('=');
  const key = filter.slice(0, eq);
  const value = filter.slice(eq + 1);
  switch (key) {
    case 'status':
      return (c) => (c.status === 'stopped' ? 'exited' : c.status) === value;
    case 'name':
      return (c) => c.name !== undefined && new RegExp(value).test(c.name);
    case 'id':
      return (c) => c.id.startsWith(value);
    case 'label': {
      const eqv = value.indexOf('=');
      const name = eqv < 0 ? value : value.slice(0, eqv);
      return (c) => name in c.labels && (eqv < 0 || c.labels[name] === value.slice(eqv + 1));
    }
    case 'ancestor':
      return (c) => c.image === value || (c.image ?? '').startsWith(`${value}:`) || (c.image ?? '').includes(`/${value}`);
    case 'exited':
      if (!/^-?\d+$/.test(value)) throw new ExitCode(125, `dockless: invalid filter 'exited=${value}' (an exit code)`);
      return (c) => c.status === 'stopped' && c.exit?.exitCode === Number(value);
    case 'health':
      if (!['starting', 'healthy', 'unhealthy', 'none'].includes(value)) throw new ExitCode(125, `dockless: invalid filter 'health=${value}' (starting, healthy, unhealthy, none)`);
      return (c) => (c.health ?? 'none') === value;
    default:
      throw new ExitCode(125, `dockless: invalid filter '${key}' (status, name, id, label, ancestor, health, exited, before, since)`);
  }
}

/**
 * The run flags that need the runtime or the store: `--network` by name,
 * `--pod`, `-P` (the image's exposed ports); and the command line's default
 * network, `'bridge'` as Docker's (for root; `$DOCKLESS_NETWORK` changes it,
 * e.g. to `none`; a non-root caller gets its own namespace, given outbound
 * access when it publishes ports).
 */
async function resolveRunSpec(ctx: CliContext, image: string, command: readonly string[], flags: RunFlags & { network?: string; pod?: string }): Promise<ContainerSpec> {
  const spec: ContainerSpec = { ...specFromRunOptions(image, command, flags) };
  const runtime = await ctx.runtime();
  if (flags.pod !== undefined) {
    if (flags.network !== undefined) throw new ExitCode(125, 'dockless: --network and --pod exclude each other (a pod has its network)');
    return { ...spec, namespace: await Namespace.get(runtime, flags.pod) };
  }
  if (flags.publishAll === true && spec.image !== undefined) {
    const details = await (await ctx.store()).inspect(spec.image);
    const exposed = Object.keys(details.config.config?.ExposedPorts ?? {});
    spec.ports = [...(spec.ports ?? []), ...exposed.map((p) => { const [port, proto] = p.split('/'); return `${port}/${proto ?? 'tcp'}`; })];
  }
  const root = process.getuid?.() === 0;
  const mode = flags.network ?? process.env.DOCKLESS_NETWORK ?? (root ? 'bridge' : undefined);
  if (mode === undefined || mode === 'default') return spec;
  if (mode === 'none' || mode === 'host' || mode === 'bridge') return { ...spec, network: mode };
  if (mode.startsWith('container:')) return { ...spec, network: { container: mode.slice('container:'.length) } };
  return { ...spec, network: await runtime.getNetwork(mode) };
}
