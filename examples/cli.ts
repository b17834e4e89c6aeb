/**
 * A small docker-like command line over the library:
 *
 *   node --import tsx examples/cli.ts run [--rm] [-d] [--name N] [-e K=V] [-u USER] [-w DIR] (IMAGE | --rootfs DIR) [CMD…]
 *   node --import tsx examples/cli.ts ps | kill ID | rm ID | logs ID | stats ID
 *   node --import tsx examples/cli.ts images | pull REF | push REF [--to REF] | tag SRC DST | rmi REF | history REF | rollback REF
 *   node --import tsx examples/cli.ts import PATH [--tag REF] | save REF PATH [oci|oci-archive|docker-archive] | gc
 *
 * Set DOCKLESS_ROOT to keep its data somewhere other than the defaults.
 */
import { join } from 'node:path';
import { DocklessError, ImageStore, Runtime, type ContainerSpec, type ExportFormat } from '../src/index.js';

const root = process.env.DOCKLESS_ROOT;
const store = await ImageStore.open(root !== undefined ? { root: join(root, 'store') } : {});
const runtime = new Runtime({
  store,
  ...(root !== undefined ? { root: join(root, 'data'), stateDir: join(root, 'state') } : {}),
});

const [command, ...args] = process.argv.slice(2);

function option(name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const [, value] = args.splice(i, 2);
  return value;
}

function flag(name: string): boolean {
  const i = args.indexOf(name);
  if (i >= 0) args.splice(i, 1);
  return i >= 0;
}

async function run(): Promise<number> {
  const spec: ContainerSpec & { env: Record<string, string> } = { env: {} };
  const remove = flag('--rm');
  const detached = flag('-d');
  for (;;) {
    if (args[0] === '--name') spec.name = option('--name');
    else if (args[0] === '-e') {
      const [key, ...value] = (option('-e') ?? '').split('=');
      spec.env[key!] = value.join('=');
    } else if (args[0] === '-u') spec.user = option('-u');
    else if (args[0] === '-w') spec.cwd = option('-w');
    else if (args[0] === '--rootfs') spec.rootfs = option('--rootfs');
    else break;
  }
  if (spec.rootfs === undefined) spec.image = args.shift();
  if (args.length > 0) spec.cmd = args;
  if (detached) {
    const c = await runtime.run({ ...spec, detached: true });
    console.log(c.id);
    return 0;
  }
  const c = await runtime.run({ ...spec, stdio: 'inherit' });
  const exit = await c.wait();
  if (remove) await c.remove();
  return exit.exitCode;
}

async function main(): Promise<number> {
  switch (command) {
    case 'run':
      return run();
    case 'ps':
      for (const c of await runtime.list()) {
        console.log(`${c.id.slice(0, 12)}  ${c.status.padEnd(8)}  ${(c.image ?? c.rootfs).padEnd(40)}  ${c.cmd.join(' ')}`);
      }
      return 0;
    case 'kill':
      await (await runtime.get(args[0]!)).kill();
      return 0;
    case 'rm': {
      const force = flag('-f');
      await (await runtime.get(args[0]!)).remove({ force });
      return 0;
    }
    case 'logs': {
      const follow = flag('-f');
      for await (const line of (await runtime.get(args[0]!)).logs({ follow })) {
        (line.stream === 'stdout' ? process.stdout : process.stderr).write(line.text);
      }
      return 0;
    }
    case 'stats':
      console.log(await (await runtime.get(args[0]!)).stats());
      return 0;
    case 'images':
      for (const image of await store.list()) {
        console.log(`${image.reference.padEnd(50)}  ${image.digest.slice(7, 19)}  ${(image.size / 1e6).toFixed(1)} MB`);
      }
      return 0;
    case 'pull':
      console.log((await store.pull(args[0]!)).digest);
      return 0;
    case 'push': {
      const to = option('--to');
      console.log((await store.push(args[0]!, to !== undefined ? { to } : {})).digest);
      return 0;
    }
    case 'tag':
      await store.tag(args[0]!, args[1]!);
      return 0;
    case 'rmi':
      await store.remove(args[0]!);
      return 0;
    case 'history':
      for (const h of await store.history(args[0]!)) console.log(`${h.time}  ${h.action.padEnd(8)}  ${h.digest ?? '-'}`);
      return 0;
    case 'rollback':
      console.log((await store.rollback(args[0]!)).digest);
      return 0;
    case 'import': {
      const tag = option('--tag');
      for (const image of await store.import(args[0]!, tag !== undefined ? { tag } : {})) {
        console.log(`${image.reference ?? '<untagged>'}  ${image.digest}`);
      }
      return 0;
    }
    case 'save':
      await store.export(args[0]!, args[1]!, { format: (args[2] ?? 'docker-archive') as ExportFormat });
      return 0;
    case 'gc':
      console.log(await store.gc());
      return 0;
    default:
      console.error('usage: cli.ts run|ps|kill|rm|logs|stats|images|pull|push|tag|rmi|history|rollback|import|save|gc …');
      return 2;
  }
}

try {
  process.exitCode = await main();
} catch (error) {
  // Branch on the class or code, never on the message.
  if (error instanceof DocklessError) {
    console.error(`dockless: ${error.message} [${error.code}]`);
    process.exitCode = 1;
  } else throw error;
}
