/**
 * `network create|ls|rm|inspect|connect|disconnect`, `pod create|ls|rm|inspect`
 * (the library's {@link Network} and {@link Namespace}), and `port` and
 * `attach` for a container's published ports and stdio.
 *
 * @module
 */
import type { Command } from 'commander';
import { Namespace, Network, type PodShare } from '../index.js';
import { attachStdin } from './terminal.js';
import { ExitCode, type CliContext } from './context.js';
import { DEFAULT_DETACH_KEYS, parseDetachKeys } from './detach-keys.js';
import { ago, formatRows, shortId } from './format.js';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Adds the network, pod, port and attach commands to `program`. */
export function addNetworkCommands(program: Command, ctx: CliContext): void {
  const network = program.command('network').description('Manage networks');
  network
    .command('create')
    .description('Create a bridge network')
    .argument('<name>')
    .option('--subnet <cidr>', 'subnet in CIDR format')
    .option('--gateway <ip>', 'gateway for the subnet')
    .option('--internal', 'no access to or from outside the network')
    .option('--ipv6', 'enable IPv6')
    .option('-d, --driver <driver>', 'bridge (the only driver)', 'bridge')
    .action(async (name: string, flags: { subnet?: string; gateway?: string; internal?: boolean; ipv6?: boolean; driver: string }) => {
      if (flags.driver !== 'bridge') throw new ExitCode(125, `dockless: network driver \`${flags.driver}\` is not supported (bridge)`);
      const runtime = await ctx.runtime();
      const n = await runtime.createNetwork({
        name,
        ...(flags.subnet !== undefined ? { subnet: flags.subnet } : {}),
        ...(flags.gateway !== undefined ? { gateway: flags.gateway } : {}),
        ...(flags.internal === true ? { internal: true } : {}),
        ...(flags.ipv6 === true ? { ipv6: true } : {}),
      });
      ctx.print(n.id);
    });
  network
    .command('ls')
    .alias('list')
    .description('List networks')
    .option('-q, --quiet', 'only display network IDs')
    .option('--format <format>', 'table, json, or a Go template')
    .action(async (flags: { quiet?: boolean; format?: string }) => {
      const networks = await (await ctx.runtime()).listNetworks();
      const now = Date.now();
      const rows = networks.map((n) => ({ ID: shortId(n.id), Name: n.name, Driver: 'bridge', Scope: 'local', Subnet: n.subnet, Internal: String(n.internal), CreatedAt: ago(n.created, now) }));
      const columns = [
        { heading: 'NETWORK ID', field: 'ID' },
        { heading: 'NAME', field: 'Name' },
        { heading: 'DRIVER', field: 'Driver' },
        { heading: 'SCOPE', field: 'Scope' },
      ];
      ctx.out.write(formatRows(rows, columns, flags.format, flags.quiet === true));
    });
  network
    .command('rm')
    .alias('remove')
    .description('Remove one or more networks')
    .argument('<network...>')
    .option('-f, --force', 'disconnect its containers first')
    .action(async (names: string[], flags: { force?: boolean }) => {
      const runtime = await ctx.runtime();
      for (const name of names) {
        await (await runtime.getNetwork(name)).remove({ force: flags.force === true });
        ctx.print(name);
      }
    });
  network
    .command('inspect')
    .description('Display detailed information on one or more networks')
    .argument('<network...>')
    .action(async (names: string[]) => {
      const runtime = await ctx.runtime();
      const out = [];
      for (const name of names) {
        const n: Network = await runtime.getNetwork(name);
        out.push({
          Name: n.name,
          Id: n.id,
          Created: n.created.toISOString(),
          Driver: 'bridge',
          Internal: n.internal,
          IPAM: { Config: [{ Subnet: n.subnet, Gateway: n.gateway }] },
          Options: { 'com.docker.network.bridge.name': n.bridge },
          Containers: await n.containers(),
        });
      }
      ctx.print(JSON.stringify(out, null, 4));
    });
  for (const verb of ['connect', 'disconnect'] as const) {
    const cmd = network
      .command(verb)
      .description(verb === 'connect' ? 'Connect a container to a network' : 'Disconnect a container from a network')
      .argument('<network>')
      .argument('<container>');
    if (verb === 'connect') cmd.option('--alias <name>', 'another name on the network', collect);
    cmd.action(async (name: string, container: string, flags: { alias?: string[] }) => {
      const n = await (await ctx.runtime()).getNetwork(name);
      if (verb === 'connect') await n.connect(container, { aliases: flags.alias ?? [] });
      else await n.disconnect(container);
    });
  }

  const pod = program.command('pod').description('Manage pods (namespaces that several containers share)');
  pod
    .command('create')
    .description('Create a pod')
    .option('--name <name>', 'the pod name')
    .option('--hostname <name>', "the pod's hostname")
    .option('--share <namespaces>', 'namespaces to share, comma-separated (net,ipc,uts[,pid])')
    .option('--network <network>', "the pod's network: none, bridge or a network's name", 'none')
    .option('-p, --publish <port>', "publish a port of the pod's network namespace ([ip:][hostPort:]port[/proto])", collect)
    .action(async (flags: { name?: string; hostname?: string; share?: string; network: string; publish?: string[] }) => {
      const runtime = await ctx.runtime();
      const network = flags.network === 'none' || flags.network === 'bridge' ? flags.network : await runtime.getNetwork(flags.network);
      const p = await Namespace.create(runtime, {
        ...(flags.name !== undefined ? { name: flags.name } : {}),
        network,
        ...(flags.publish !== undefined ? { ports: flags.publish } : {}),
        ...(flags.hostname !== undefined ? { hostname: flags.hostname } : {}),
        ...(flags.share !== undefined ? { share: flags.share.split(',') as PodShare[] } : {}),
        detached: true,
      });
      ctx.print(p.id);
    });
  pod
    .command('ls')
    .alias('ps')
    .description('List pods')
    .option('-q, --quiet', 'only display pod IDs')
    .option('--format <format>', 'table, json, or a Go template')
    .action(async (flags: { quiet?: boolean; format?: string }) => {
      const now = Date.now();
      const rows = (await Namespace.list(await ctx.runtime())).map((p) => ({
        ID: shortId(p.id),
        Name: p.name ?? '',
        Status: p.status === 'running' ? 'Running' : 'Exited',
        Created: ago(p.created, now),
        Share: p.share.join(','),
      }));
      const columns = [
        { heading: 'POD ID', field: 'ID' },
        { heading: 'NAME', field: 'Name' },
        { heading: 'STATUS', field: 'Status' },
        { heading: 'CREATED', field: 'Created' },
        { heading: 'SHARED', field: 'Share' },
      ];
      ctx.out.write(formatRows(rows, columns, flags.format, flags.quiet === true));
    });
  pod
    .command('rm')
    .description('Remove one or more pods')
    .argument('<pod...>')
    .option('-f, --force', 'remove its running containers too')
    .action(async (refs: string[], flags: { force?: boolean }) => {
      const runtime = await ctx.runtime();
      for (const ref of refs) {
        await (await Namespace.get(runtime, ref)).remove({ force: flags.force === true });
        ctx.print(ref);
      }
    });
  pod
    .command('inspect')
    .description('Display detailed information on a pod')
    .argument('<pod>')
    .action(async (ref: string) => {
      const p = await Namespace.get(await ctx.runtime(), ref);
      ctx.print(JSON.stringify({ ...(await p.inspect()), Containers: (await p.members()).map((m) => m.id) }, null, 4));
    });

  program
    .command('port')
    .description('List port mappings of a container')
    .argument('<container>')
    .argument('[port]', 'PORT[/PROTO]')
    .action(async (ref: string, port: string | undefined) => {
      const c = await (await ctx.runtime()).get(ref);
      const [wanted, proto] = (port ?? '').split('/');
      const lines = c
        .ports()
        .filter((p) => port === undefined || (String(p.container) === wanted && p.protocol === (proto ?? 'tcp')))
        .map((p) => (port === undefined ? `${p.container}/${p.protocol} -> ${hostPort(p.hostIp, p.host)}` : hostPort(p.hostIp, p.host)));
      if (port !== undefined && lines.length === 0) throw new ExitCode(1, `Error: No public port '${wanted}/${proto ?? 'tcp'}' published for ${ref}`);
      for (const l of lines) ctx.print(l);
    });

  program
    .command('attach')
    .description("Attach to a running container's output (and input, when it keeps stdin open)")
    .argument('<container>')
    .option('--no-stdin', 'do not attach stdin')
    .option('--detach-keys <keys>', `the key sequence that detaches (default ${DEFAULT_DETACH_KEYS}; empty: none)`)
    .action(async (ref: string, flags: { stdin?: boolean; detachKeys?: string }) => {
      const keys = parseDetachKeys(flags.detachKeys ?? DEFAULT_DETACH_KEYS);
      const c = await (await ctx.runtime()).get(ref);
      const ac = new AbortController();
      const a = await c.attach({ stdin: false, signal: ac.signal });
      a.stdout.pipe(process.stdout);
      a.stderr.pipe(process.stderr);
      const stdin = flags.stdin !== false && (await c.inspect()).Config.OpenStdin ? await attachStdin(c, keys, () => ac.abort()) : undefined;
      const detached = new Promise<'detached'>((resolveDetach) => ac.signal.addEventListener('abort', () => resolveDetach('detached'), { once: true }));
      try {
        const exit = await Promise.race([c.wait(), detached]);
        if (exit === 'detached') throw new ExitCode(0, '', { detached: true });
        throw new ExitCode(exit.exitCode);
      } finally {
        ac.abort();
        await stdin?.();
      }
    });
}

function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}
