/**
 * `startRedis()`: a ready Redis server for a test, from the host's
 * `redis-server` (Debian's `redis-server` package), with no image to pull.
 *
 * @module
 */

import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, NotFoundError, type Runtime } from '../index.js';
import { serviceRootfs } from './service-image.js';
import { startContainer, StartedContainer, type StartContainerOptions } from './start.js';
import { Wait } from './wait.js';

/** Options of {@link startRedis}. */
export interface RedisOptions {
  /** The host's `redis-server`: an absolute path, or a name looked up in `PATH`. @default 'redis-server' */
  binary?: string;
  /** A password (`requirepass`); none by default, as in testcontainers' module. */
  password?: string;
  /** More `redis-server` arguments (`['--maxmemory', '64mb']`). @default [] */
  args?: readonly string[];
  /** Any other option of `startContainer` (a network, aliases, a pod, `reuse`, resources…). */
  container?: Omit<StartContainerOptions, 'image' | 'rootfs' | 'cmd' | 'build'>;
}

/** A started Redis: the container handle, plus where and how to connect. */
export class StartedRedis extends StartedContainer {
  /** The host port Redis's 6379 is published on. */
  readonly port: number;
  /** The password, when one was set. */
  readonly password: string | undefined;
  /** `redis://[:password@]host:port`, for the `redis` and `ioredis` clients. */
  readonly connectionUrl: string;

  /** @internal */
  constructor(started: StartedContainer, password: string | undefined) {
    super(...StartedContainer.parts(started));
    this.port = started.getMappedPort(REDIS_PORT);
    this.password = password;
    const auth = password !== undefined ? `:${encodeURIComponent(password)}@` : '';
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    this.connectionUrl = `redis://${auth}${host}:${this.port}`;
  }
}

const REDIS_PORT = 6379;

async function lookPath(name: string): Promise<string | undefined> {
  if (name.includes('/')) return name;
  for (const dir of (process.env['PATH'] || '/usr/sbin:/usr/bin:/sbin:/bin').split(':').filter((d) => d.startsWith('/'))) {
    const candidate = join(dir, name);
    if (await access(candidate, constants.X_OK).then(() => true, () => false)) return candidate;
  }
  return undefined;
}

/**
 * Starts Redis and waits until it listens (its port, read from the host: the
 * server accepts commands once it listens). The image is the host's
 * `redis-server` and its libraries, built once and cached under the runtime's
 * root; nothing is pulled.
 *
 * @throws `NotFoundError` (from `dockless`) when the host has no `redis-server` (Debian: `apt-get install redis-server`).
 * @throws `NotReadyError` (from `dockless`) when it does not listen in time.
 * @example
 * ```ts
 * import { createClient } from 'redis';
 * await using redis = await startRedis(runtime);
 * const client = await createClient({ url: redis.connectionUrl }).connect();
 * await client.set('k', 'v');
 * ```
 */
export async function startRedis(runtime: Runtime, options: RedisOptions = {}): Promise<StartedRedis> {
  const binary = options.binary ?? 'redis-server';
  if (typeof binary !== 'string' || binary === '') throw new InvalidArgumentError('startRedis: binary must be a path or a name');
  // A path, not a name, so the image's cache key follows the host binary (an upgraded package rebuilds it).
  const hostPath = (await lookPath(binary)) ?? binary;
  const rootfs = await serviceRootfs(runtime, { name: 'redis', rootfs: { binaries: [hostPath] } }).catch((error: unknown) => {
    if (error instanceof NotFoundError) throw new NotFoundError(`start redis: ${error.message} (Debian: apt-get install redis-server)`, { cause: error });
    throw error;
  });
  const name = binary.slice(binary.lastIndexOf('/') + 1);
  const cmd = [`/bin/${name}`, '--port', String(REDIS_PORT), '--bind', '*', '-::*', '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--daemonize', 'no'];
  if (options.password !== undefined) cmd.push('--requirepass', options.password);
  cmd.push(...(options.args ?? []));
  const started = await startContainer(runtime, {
    ...options.container,
    rootfs,
    cmd,
    ports: [REDIS_PORT, ...(options.container?.ports ?? [])],
    wait: options.container?.wait ?? Wait.forListeningPorts(REDIS_PORT),
  });
  return new StartedRedis(started, options.password);
}
