/**
 * `startContainer()`: a container for a test, started with its files copied in
 * first, waited for until ready under one deadline, and handed back as a
 * {@link StartedContainer} that `await using` removes at the end of the scope.
 *
 * @module
 */

import { chmod, copyFile, mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, posix } from 'node:path';
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import {
  commitContainer,
  LayerBuilder,
  InvalidArgumentError,
  InvalidStateError,
  NotFoundError,
  parsePortSpec,
  type CommitOptions,
  type CommitResult,
  type DockerfileBuildOptions,
  type Container,
  type ImageStore,
  type ContainerLogReader,
  type ContainerResources,
  type ContainerSpec,
  type CopyInOptions,
  type CopyOutOptions,
  type ExecOutputOptions,
  type HealthcheckSpec,
  type LogsOptions,
  type MountSpec,
  type NamespaceRef,
  type NetworkSetting,
  type OutputResult,
  type PortSpec,
  type PullOptions,
  type PublishedPort,
  type Runtime,
  type StopOptions,
  type RestartOptions,
  type ExitStatus,
  type ContainerSnapshot,
  type ContainerSnapshotOptions,
} from '../index.js';
import { waitReady } from './ready.js';
import { addUser, markReady, readyContainer, release, reuseDir, reuseKey, withLock, type ReuseOptions } from './reuse.js';
 import { parsePortKey, Wait, type WaitStrategy } from './wait.js';
import { createProxy, type Proxy } from './proxy.js';

/** A file put into the container before it starts: given as content, or copied from the host. */
export interface FileToCopy {
  /** The absolute path in the container; parent directories it lacks are made (mode 0755). */
  path: string;
  /** The file's content. Give either `content` or `hostPath`. */
  content?: string | Buffer;
  /** A host file or directory copied to `path` (a directory must have the same name as `path`'s last component). */
  hostPath?: string;
  /** The mode of a file given by `content`. @default 0o644 */
  mode?: number;
}

/** What {@link startContainer} starts, and how it waits for it. */
export interface StartContainerOptions {
  /** An image in the runtime's store. Give either `image` or `rootfs`. */
  image?: string;
  /** A host directory as the root filesystem (never modified). Give either `image` or `rootfs`. */
  rootfs?: string;
  /** The command (the image's Cmd otherwise). */
  cmd?: readonly string[];
  /** The entrypoint (the image's otherwise). */
  entrypoint?: readonly string[];
  /** Environment variables, on top of the image's. */
  env?: Readonly<Record<string, string>>;
  /**
   * Container ports to publish: a number is published on a free port of the
   * loopback address of `ipFamily` (`127.0.0.1` by default), so nothing outside
   * the machine reaches it; strings and objects as `ContainerSpec.ports`, on
   * the wildcard or loopback address of the same family.
   * @default []
   */
  ports?: readonly (number | PortSpec | string)[];
  /** The address family of {@link StartedContainer.host} and of the ports published by number. @default 4 */
  ipFamily?: 4 | 6;
  /** Bind and tmpfs mounts. @default [] */
  mounts?: readonly MountSpec[];
  /** Files put into the container after it is created and before its command runs. @default [] */
  files?: readonly FileToCopy[];
  /** The user, as `docker run --user`. */
  user?: string;
  /** The working directory. */
  workdir?: string;
  /** Labels. */
  labels?: Readonly<Record<string, string>>;
  /** Resource limits. */
  resources?: ContainerResources;
  /** Run privileged. @default false */
  privileged?: boolean;
  /** Capabilities added. @default [] */
  capAdd?: readonly string[];
  /** The network; see `ContainerSpec.network`. */
  network?: NetworkSetting;
  /** Names the container is known by on its network. */
  networkAliases?: readonly string[];
  /** A pod (`Namespace`) to join. */
  namespace?: NamespaceRef;
  /** A healthcheck (for {@link Wait.forHealthcheck}); the image's otherwise. */
  healthcheck?: HealthcheckSpec;
  /**
   * The store `image` is pulled into, for `pullPolicy`: the one the runtime
   * runs images from. Without it, the image must already be in that store.
   */
  store?: ImageStore;
  /**
   * When `image` is pulled into `store` before the container is created:
   * `'missing'`, when the store has no image of that reference; `'always'`,
   * every time (a moved tag is followed); `'never'`.
   * @default 'missing' with a `store`, else 'never'
   */
  pullPolicy?: 'never' | 'missing' | 'always';
  /**
   * Build the image from a Dockerfile into `store` first (instead of `image`):
   * `LayerBuilder`'s cache makes a build whose inputs did not change take
   * no step again, so a fixture image is built once per content, not per test.
   */
  build?: Omit<DockerfileBuildOptions, 'runtime'>;
  /** Options of the pull (credentials, platform, insecure registries). @default {} */
  pullOptions?: PullOptions;
  /** Any other field of the container spec; the options above take precedence. */
  spec?: Partial<ContainerSpec>;
  /**
   * When the container counts as started.
   * @default `Wait.forListeningPorts()` when ports are published, else nothing
   */
  wait?: WaitStrategy;
  /** Milliseconds the whole wait may take. @default 60000 */
  startupTimeout?: number;
  /**
   * Share one container among every process that asks for the same one (the
   * worker processes of a test run): the first creates it (the others wait for
   * it to pass its wait strategy), each `await using` lets go of it, and the
   * last live user removes it. The container is detached, so it outlives the
   * worker that made it; a worker that dies without letting go stops counting.
   * `true` keys it by a hash of these options and the wait's description.
   * @default false
   */
  reuse?: boolean | ReuseOptions;
  /** Lines of the container's log a `NotReadyError` (from `dockless`) carries. @default 50 */
  logTailLines?: number;
}

const LOOPBACK = { 4: '127.0.0.1', 6: '::1' } as const;
const WILDCARD = { 4: '0.0.0.0', 6: '::' } as const;

/** The published ports the harness can report with one host address, as specs for the runtime. */
function portSpecs(ports: StartContainerOptions['ports'], family: 4 | 6): PortSpec[] {
  return (ports ?? []).map((p) => {
    if (typeof p === 'number') return { container: parsePortKey(p, 'startContainer').port, hostIp: LOOPBACK[family] };
    const parsed = parsePortSpec(p);
    // No address given: the wildcard of the harness's family, not Docker's IPv4 default.
    const noAddress = typeof p === 'string' ? /^[\d:]+(?:\/(?:tcp|udp))?$/.test(p) : p.hostIp === undefined;
    const hostIp = noAddress ? WILDCARD[family] : parsed.hostIp;
    if (hostIp !== LOOPBACK[family] && hostIp !== WILDCARD[family]) {
      throw new InvalidArgumentError(
        `startContainer: ports: \`${typeof p === 'string' ? p : JSON.stringify(p)}\` is published on ${hostIp}; the harness reports one host (${LOOPBACK[family]}, ipFamily ${family}): publish on ${LOOPBACK[family]} or ${WILDCARD[family]}`,
      );
    }
    return { container: parsed.container, host: parsed.host, hostIp, protocol: parsed.protocol };
  });
}

function toSpec(options: StartContainerOptions, family: 4 | 6): ContainerSpec {
  const set = <K extends keyof ContainerSpec>(key: K, value: ContainerSpec[K] | undefined) => (value !== undefined ? { [key]: value } : {});
  return {
    ...options.spec,
    ...set('image', options.image),
    ...set('rootfs', options.rootfs),
    ...set('cmd', options.cmd),
    ...set('entrypoint', options.entrypoint),
    ...set('env', options.env),
    ...set('mounts', options.mounts),
    ...set('user', options.user),
    ...set('cwd', options.workdir),
    ...set('labels', options.labels),
    ...set('resources', options.resources),
    ...set('privileged', options.privileged),
    ...set('capAdd', options.capAdd),
    ...set('network', options.network),
    ...set('networkAliases', options.networkAliases),
    ...set('namespace', options.namespace),
    ...set('healthcheck', options.healthcheck),
    ...(options.ports !== undefined ? { ports: portSpecs(options.ports, family) } : {}),
    // The log is what Wait.forLogMessage and a NotReadyError read; nothing is relayed to the test's own stdio.
    stdio: 'ignore',
    detached: false,
  };
}

async function copyFiles(container: Container, files: readonly FileToCopy[]): Promise<void> {
  for (const file of files) {
    const context = `startContainer: files: \`${file.path}\``;
    if (typeof file.path !== 'string' || !posix.isAbsolute(file.path) || basename(file.path) === '') {
      throw new InvalidArgumentError(`${context}: path must be an absolute file path in the container`);
    }
    if ((file.content === undefined) === (file.hostPath === undefined)) throw new InvalidArgumentError(`${context}: give either content or hostPath`);
    if (file.hostPath !== undefined) {
      const st = await stat(file.hostPath).catch((cause: unknown) => {
        throw new NotFoundError(`${context}: stat \`${file.hostPath}\`: no such file`, { cause, path: file.hostPath });
      });
      if (st.isDirectory()) {
        if (basename(file.hostPath) !== posix.basename(file.path)) {
          throw new InvalidArgumentError(`${context}: a directory is copied under its own name; \`${basename(file.hostPath)}\` differs`);
        }
        await container.copyIn(file.hostPath, posix.dirname(file.path));
        continue;
      }
    }
    // Staged under the target's own name, since copyIn puts a host file in a directory under its name.
    const staging = await mkdtemp(join(tmpdir(), 'dockless-files-'));
    try {
      const staged = join(staging, posix.basename(file.path));
      if (file.hostPath !== undefined) await copyFile(file.hostPath, staged);
      else {
        await writeFile(staged, file.content!);
        await chmod(staged, file.mode ?? 0o644);
      }
      await copyMakingParents(container, staging, file.path);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }
}

/**
 * Copies the staged `staging/<basename>` to `path`, making the parent
 * directories the container lacks (mode 0755, root's): it tries the parent,
 * then its parent, so a directory that exists is never replaced or re-moded.
 */
async function copyMakingParents(container: Container, staging: string, path: string): Promise<void> {
  const parts = path.split('/').filter(Boolean);
  const name = parts.pop()!;
  let top = join(staging, name);
  for (;;) {
    try {
      await container.copyIn(top, `/${parts.join('/')}`);
      return;
    } catch (error) {
      if (!(error instanceof NotFoundError) || parts.length === 0) throw error;
    }
    const missing = parts.pop()!;
    const dir = await mkdtemp(join(staging, 'dir-'));
    await mkdir(join(dir, missing));
    await chmod(join(dir, missing), 0o755);
    await rename(top, join(dir, missing, basename(top)));
    top = join(dir, missing);
  }
}

/**
 * A started container, as {@link startContainer} gives it: where its ports
 * are, commands and files in it, its log, and `await using` to remove it.
 */
export class StartedContainer implements AsyncDisposable {
  /** The container itself, for everything the handle does not wrap. */
  readonly container: Container;
  /**
   * The address the published ports are reached on: `127.0.0.1`, or `::1`
   * with `ipFamily: 6`. Every port is published on that address (or that
   * family's wildcard), so `host` and the listen address always agree.
   */
  readonly host: string;

  readonly #runtime: Runtime;
  readonly #release: (() => Promise<void>) | undefined;
  readonly #readiness: Readiness | undefined;
  readonly #proxies = new Set<Proxy>();

  /** @internal */
  constructor(runtime: Runtime, container: Container, host: string, release?: () => Promise<void>, readiness?: Readiness) {
    this.#runtime = runtime;
    this.container = container;
    this.host = host;
    this.#release = release;
    this.#readiness = readiness;
  }

  /**
   * Freezes the container as it is now (stopped first: its stop signal, so a
   * database shuts down cleanly) into a {@link PreparedContainer} whose
   * `clone()` gives each test its own copy-on-write container started from
   * this state, waited for as this one was. Migrate and load data once, then
   * clone per test: see `runtime.snapshot()`.
   *
   * @throws `InvalidStateError` (from `dockless`) for a shared (`reuse`) container, and as `runtime.snapshot()` does.
   * @example
   * ```ts
   * const db = await startContainer(runtime, { rootfs, cmd: ['redis-server'], ports: [6379] });
   * await db.exec(['redis-cli', 'set', 'k', 'v']);
   * await using prepared = await db.snapshot();
   * await using mine = await prepared.clone(); // has k, and its writes are its own
   * ```
   */
  async snapshot(options: ContainerSnapshotOptions = {}): Promise<PreparedContainer> {
    if (this.#release !== undefined || this.#readiness === undefined) {
      throw new InvalidStateError(`snapshot container ${this.id.slice(0, 12)}: a shared (reuse) container belongs to every worker; start one of this test's own to prepare`);
    }
    const snapshot = await this.#runtime.snapshot(this.container, options);
    return new PreparedContainer(this.#runtime, snapshot, this.host, this.#readiness);
  }

  /**
   * What a handle is made of, for a subclass (a service module's handle) built from a started one.
   * @internal
   */
  protected static parts(started: StartedContainer): [Runtime, Container, string, (() => Promise<void>) | undefined, Readiness | undefined] {
    return [started.#runtime, started.container, started.host, started.#release, started.#readiness];
  }

  /** The container's id. */
  get id(): string {
    return this.container.id;
  }

  /**
   * The host port container port `port` (`5432`, `'5432/tcp'`, `'53/udp'`) is published on.
   *
   * @throws `NotFoundError` (from `dockless`) when that port is not published.
   */
  getMappedPort(port: number | string): number {
    const key = parsePortKey(port, `get mapped port of container ${this.id.slice(0, 12)}`);
    const found = this.container.ports().find((p: PublishedPort) => p.container === key.port && p.protocol === key.protocol);
    if (found === undefined) throw new NotFoundError(`get mapped port of container ${this.id.slice(0, 12)}: port ${key.port}/${key.protocol} is not published`);
    return found.host;
  }

  /**
   * A URL of container port `port` as published: `http://127.0.0.1:49153/path`
   * (`http://[::1]:49153/path` with `ipFamily: 6`).
   *
   * @throws `NotFoundError` (from `dockless`) when that port is not published.
   */
  url(port: number | string, path = '/', protocol = 'http'): string {
    const host = isIP(this.host) === 6 ? `[${this.host}]` : this.host;
    return `${protocol}://${host}:${this.getMappedPort(port)}${path.startsWith('/') ? path : `/${path}`}`;
  }

  /** Runs `cmd` in the container to its end and gives its output and exit code (a non-zero exit does not throw). */
  exec(cmd: readonly string[], options: ExecOutputOptions = {}): Promise<OutputResult<string>> {
    return this.container.output(cmd, { ...options, encoding: 'utf8' });
  }

  /** The container's log; see `Container.logs`. */
  logs(options: LogsOptions = {}): ContainerLogReader {
    return this.container.logs(options);
  }

  /** Copies a tar stream, or a host file or directory, into container directory `containerPath`; see `Container.copyIn`. */
  copyIn(source: Readable | string, containerPath: string, options: CopyInOptions = {}): Promise<void> {
    return this.container.copyIn(source, containerPath, options);
  }

  /** A tar stream of container path `containerPath`; see `Container.copyOut`. */
  copyOut(containerPath: string, options: CopyOutOptions = {}): Promise<Readable> {
    return this.container.copyOut(containerPath, options);
  }

  /** Stops the container (stop signal, then SIGKILL after the timeout); it stays until disposed. */
  stop(options: StopOptions = {}): Promise<ExitStatus> {
    return this.container.stop(options);
  }

  /**
   * Makes an image of what the container wrote on top of its image, as
   * `docker commit`, in `store` (the store the runtime runs images from).
   * The container must have been started from an `image`.
   */
  commit(store: ImageStore, options: CommitOptions = {}): Promise<CommitResult> {
    return commitContainer(store, this.#runtime, this.container, options);
  }

  /**
   * Restarts the container in place (see `Container.restart`: same id, files
   * it wrote, published ports), then waits again with the wait strategy it
   * was started with, under the same `startupTimeout`. A log-line wait counts
   * the lines of earlier runs too: ask for the nth occurrence to wait for a
   * line of the new run.
   *
   * @throws `NotReadyError` (from `dockless`) when the wait times out or the container exits first.
   * @throws what `Container.restart` throws.
   */
  async restart(options: RestartOptions = {}): Promise<void> {
    await this.container.restart(options);
    const readiness = this.#readiness;
    const strategy = readiness?.strategy ?? (this.container.ports().length > 0 ? Wait.forListeningPorts() : undefined);
    if (readiness !== undefined && strategy !== undefined) await waitReady(this, strategy, readiness.timeoutMs, readiness.tailLines);
  }

  /**
   * A TCP proxy with toxics (see {@link Proxy}) in front of container port
   * `port` as published, listening on {@link StartedContainer.host}: connect
   * the client under test to the proxy's `host` and `port` to slow, cut or
   * reset its connections. Closed with the container.
   *
   * @throws `NotFoundError` (from `dockless`) when that port is not published.
   * @example
   * ```ts
   * const proxy = await redis.proxy(6379);
   * proxy.addToxic({ type: 'latency', latency: 100 });
   * ```
   */
  async proxy(port: number | string): Promise<Proxy> {
    const proxy = await createProxy({ upstream: { host: this.host, port: this.getMappedPort(port) }, listenHost: this.host });
    this.#proxies.add(proxy);
    return proxy;
  }

  /** Kills and removes the container and everything it wrote; a shared one (`reuse`) only when this was its last user. */
  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all([...this.#proxies].map((p) => p.close()));
    this.#proxies.clear();
    if (this.#release !== undefined) return this.#release();
    await this.container.remove({ force: true });
  }
}

/** How a started container was waited for: what its clones are waited for with. */
interface Readiness {
  strategy: WaitStrategy | undefined;
  timeoutMs: number;
  tailLines: number;
}

/** Options of {@link PreparedContainer.clone}. */
export interface CloneContainerOptions {
  /** Fields of the container spec that differ from the prepared container's (`cmd`, `env`, `mounts`, …; not its root). @default {} */
  spec?: Partial<ContainerSpec>;
  /** When the clone counts as started. @default the prepared container's wait strategy */
  wait?: WaitStrategy;
  /** Milliseconds the wait may take. @default the prepared container's `startupTimeout` */
  startupTimeout?: number;
}

/**
 * A container frozen once it was prepared (started, migrated, loaded with
 * data), made by {@link StartedContainer.snapshot}: each `clone()` is a new
 * container whose files start as the prepared one's were, written
 * copy-on-write to its own upper dir, so a test gets the prepared state in
 * the time the service takes to start. `await using` releases it; clones
 * still running keep what they need.
 */
export class PreparedContainer implements AsyncDisposable {
  /** The snapshot under the clones; see `runtime.snapshot()`. */
  readonly snapshot: ContainerSnapshot;
  readonly #runtime: Runtime;
  readonly #host: string;
  readonly #readiness: Readiness;

  /** @internal */
  constructor(runtime: Runtime, snapshot: ContainerSnapshot, host: string, readiness: Readiness) {
    this.#runtime = runtime;
    this.snapshot = snapshot;
    this.#host = host;
    this.#readiness = readiness;
  }

  /**
   * A new container started from the prepared state and waited for as the
   * prepared one was (its wait strategy and timeout, unless given).
   *
   * @throws `NotReadyError` (from `dockless`) as `startContainer` does; the clone is removed first.
   * @throws `InvalidStateError` (from `dockless`) when the prepared container was released.
   */
  async clone(options: CloneContainerOptions = {}): Promise<StartedContainer> {
    const container = await this.snapshot.clone(options.spec ?? {});
    try {
      const readiness = { ...this.#readiness, ...(options.wait !== undefined ? { strategy: options.wait } : {}), ...(options.startupTimeout !== undefined ? { timeoutMs: options.startupTimeout } : {}) };
      const started = new StartedContainer(this.#runtime, container, this.#host, undefined, readiness);
      const strategy = readiness.strategy ?? (container.ports().length > 0 ? Wait.forListeningPorts() : undefined);
      if (strategy !== undefined) await waitReady(started, strategy, readiness.timeoutMs, readiness.tailLines);
      return started;
    } catch (error) {
      await container.remove({ force: true }).catch(() => undefined);
      throw error;
    }
  }

  /** Lets go of the prepared state: no new clones; see `ContainerSnapshot.release`. */
  release(): Promise<void> {
    return this.snapshot.release();
  }

  /** Releases it; for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

/**
 * Creates a container, copies `files` into it, starts it and waits until
 * `wait` is satisfied, within `startupTimeout`. On any failure the container
 * is removed before the error is thrown.
 *
 * @throws `NotReadyError` (from `dockless`) when the wait times out, the container exits first, or the wait fails; it carries the last log lines.
 * @throws `InvalidArgumentError` (from `dockless`) for options that are not valid.
 * @example
 * ```ts
 * await using redis = await startContainer(runtime, { image: 'redis:7', ports: [6379], wait: Wait.forLogMessage('Ready to accept') });
 * const client = createClient({ url: `redis://${redis.host}:${redis.getMappedPort(6379)}` });
 * ```
 */
export async function startContainer(runtime: Runtime, options: StartContainerOptions): Promise<StartedContainer> {
  const family = options.ipFamily ?? 4;
  if (family !== 4 && family !== 6) throw new InvalidArgumentError('startContainer: ipFamily must be 4 or 6');
  const timeoutMs = options.startupTimeout ?? 60_000;
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0)) throw new InvalidArgumentError('startContainer: startupTimeout must be a number of milliseconds above 0');
  if (options.build !== undefined) {
    if (options.store === undefined) throw new InvalidArgumentError('startContainer: build needs the store to build into (options.store)');
    if (options.image !== undefined || options.rootfs !== undefined) throw new InvalidArgumentError('startContainer: give build, image or rootfs, not several');
    const built = await LayerBuilder.fromDockerfile(options.store, { ...options.build, runtime });
    options = { ...options, image: built.reference ?? built.digest, pullPolicy: 'never' };
  }
  const spec = toSpec(options, family);
  await pullImage(options);
  if (options.reuse !== undefined && options.reuse !== false) return startShared(runtime, options, spec, family, timeoutMs);
  return startOwned(runtime, options, spec, family, timeoutMs);
}

async function pullImage(options: StartContainerOptions): Promise<void> {
  const policy = options.pullPolicy ?? (options.store !== undefined ? 'missing' : 'never');
  if (!['never', 'missing', 'always'].includes(policy)) throw new InvalidArgumentError(`startContainer: pullPolicy \`${String(policy)}\` is not never, missing or always`);
  if (policy === 'never' || options.image === undefined) return;
  const { store, image } = options;
  if (store === undefined) throw new InvalidArgumentError(`startContainer: pullPolicy \`${policy}\` needs the store to pull into (options.store)`);
  if (policy === 'missing') {
    const present = await store.resolve(image).then(
      () => true,
      (error: unknown) => {
        if (error instanceof NotFoundError) return false;
        throw error;
      },
    );
    if (present) return;
  }
  await store.pull(image, options.pullOptions ?? {});
}

async function startShared(runtime: Runtime, options: StartContainerOptions, spec: ContainerSpec, family: 4 | 6, timeoutMs: number): Promise<StartedContainer> {
  const reuse: ReuseOptions = options.reuse === true || options.reuse === undefined || options.reuse === false ? {} : options.reuse;
  const dir = reuseDir(runtime, reuse.key ?? reuseKey({ ...options, spec }, options.wait?.description));
  // Waiting for the lock covers another worker's whole start, wait strategy included.
  const lockTimeout = timeoutMs + 60_000;
  const { container, user } = await withLock(dir, lockTimeout, async () => {
    let shared = await readyContainer(runtime, dir);
    if (shared === undefined) {
      shared = (await startOwned(runtime, options, { ...spec, detached: true }, family, timeoutMs)).container;
      await markReady(dir, shared.id);
    }
    return { container: shared, user: await addUser(dir) };
  });
  return new StartedContainer(runtime, container, LOOPBACK[family], () => release(runtime, dir, user, reuse.keep === true, lockTimeout));
}

async function startOwned(runtime: Runtime, options: StartContainerOptions, spec: ContainerSpec, family: 4 | 6, timeoutMs: number): Promise<StartedContainer> {
  const container = await runtime.create(spec);
  try {
    await copyFiles(container, options.files ?? []);
    await container.start();
    const readiness: Readiness = { strategy: options.wait, timeoutMs, tailLines: options.logTailLines ?? 50 };
    const started = new StartedContainer(runtime, container, LOOPBACK[family], undefined, readiness);
    const strategy = options.wait ?? (container.ports().length > 0 ? Wait.forListeningPorts() : undefined);
    if (strategy !== undefined) await waitReady(started, strategy, timeoutMs, readiness.tailLines);
    return started;
  } catch (error) {
    await container.remove({ force: true }).catch(() => undefined);
    throw error;
  }
}
