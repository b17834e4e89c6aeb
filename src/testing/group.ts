/**
 * `startGroup()`: several containers started together, in the manner of a
 * compose file: on one network where each is known by its service name,
 * started in dependency order (each waits for its wait strategy before those
 * that depend on it start), and removed together, dependents first.
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import { InvalidArgumentError, type Network, type NetworkRef, type Runtime } from '../index.js';
import { startContainer, type StartContainerOptions, type StartedContainer } from './start.js';

/** One service of a group: start options, plus the services that must be ready first. */
export interface GroupService extends StartContainerOptions {
  /** Services (by name) that must be started and ready before this one starts. @default [] */
  dependsOn?: readonly string[];
}

/** Options of {@link startGroup}. */
export interface StartGroupOptions {
  /** The services, by name; each is reachable from the others by that name. */
  services: Readonly<Record<string, GroupService>>;
  /**
   * The network they share: an existing one, or none given for a new one
   * (named `dockless-group-<random>`) that the group removes with itself.
   */
  network?: NetworkRef;
}

/** Containers started by {@link startGroup}; `await using` removes them all. */
export class StartedGroup implements AsyncDisposable {
  /** The network the services share. */
  readonly network: NetworkRef;
  readonly #started: [string, StartedContainer][];
  readonly #ownNetwork: Network | undefined;

  /** @internal */
  constructor(network: NetworkRef, started: [string, StartedContainer][], ownNetwork: Network | undefined) {
    this.network = network;
    this.#started = started;
    this.#ownNetwork = ownNetwork;
  }

  /**
   * The started container of service `name`.
   *
   * @throws `InvalidArgumentError` (from `dockless`) for a name that is not a service of the group.
   */
  get(name: string): StartedContainer {
    const found = this.#started.find(([n]) => n === name);
    if (found === undefined) throw new InvalidArgumentError(`group: no service \`${name}\``);
    return found[1];
  }

  /** Removes the containers, dependents before what they depend on, then the network if the group made it. */
  async [Symbol.asyncDispose](): Promise<void> {
    await teardown(this.#started, this.#ownNetwork);
  }
}

async function teardown(started: [string, StartedContainer][], network: Network | undefined): Promise<void> {
  const errors: unknown[] = [];
  for (const [, c] of [...started].reverse()) await c[Symbol.asyncDispose]().catch((e: unknown) => errors.push(e));
  await network?.remove({ force: true }).catch((e: unknown) => errors.push(e));
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, `group: ${errors.length} parts could not be removed`);
}

/** The services in waves: each wave's dependencies are all in earlier waves. */
export function startOrder(services: Readonly<Record<string, { dependsOn?: readonly string[] }>>): string[][] {
  const names = Object.keys(services);
  for (const name of names) {
    for (const dep of services[name]!.dependsOn ?? []) {
      if (!(dep in services)) throw new InvalidArgumentError(`group: service \`${name}\` depends on \`${dep}\`, which is not a service`);
    }
  }
  const done = new Set<string>();
  const waves: string[][] = [];
  while (done.size < names.length) {
    const wave = names.filter((n) => !done.has(n) && (services[n]!.dependsOn ?? []).every((d) => done.has(d)));
    if (wave.length === 0) {
      throw new InvalidArgumentError(`group: services ${names.filter((n) => !done.has(n)).map((n) => `\`${n}\``).join(', ')} depend on each other in a cycle`);
    }
    for (const n of wave) done.add(n);
    waves.push(wave);
  }
  return waves;
}

/**
 * Starts `services` on one network, in dependency order; services of the same
 * wave start at the same time. When one fails, those already started are
 * removed (and the network, if made here) before the error is thrown.
 *
 * @throws `NotReadyError` (from `dockless`) when a service is not ready in time.
 * @throws `InvalidArgumentError` (from `dockless`) for an unknown dependency or a dependency cycle.
 * @example
 * ```ts
 * await using app = await startGroup(runtime, {
 *   services: {
 *     db: { image: 'postgres:16', ports: [5432], wait: Wait.forListeningPorts(5432) },
 *     api: { image: 'api:dev', env: { DB_HOST: 'db' }, ports: [8080], dependsOn: ['db'], wait: Wait.forHttp('/health', 8080) },
 *   },
 * });
 * ```
 */
export async function startGroup(runtime: Runtime, options: StartGroupOptions): Promise<StartedGroup> {
  const waves = startOrder(options.services);
  const ownNetwork = options.network === undefined ? await runtime.createNetwork({ name: `dockless-group-${randomBytes(4).toString('hex')}` }) : undefined;
  const network: NetworkRef = options.network ?? ownNetwork!;
  const started: [string, StartedContainer][] = [];
  try {
    for (const wave of waves) {
      const results = await Promise.allSettled(
        wave.map(async (name) => {
          const { dependsOn: _dependsOn, ...service } = options.services[name]!;
          const c = await startContainer(runtime, { ...service, network, networkAliases: [name, ...(service.networkAliases ?? [])] });
          started.push([name, c]);
        }),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
    }
  } catch (error) {
    await teardown(started, ownNetwork).catch(() => undefined);
    throw error;
  }
  return new StartedGroup(network, started, ownNetwork);
}
