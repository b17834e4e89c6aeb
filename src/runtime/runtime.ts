import { randomBytes } from 'node:crypto';
import { chown, lstat, mkdir, open, readdir, readFile, rm, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import createDebug from 'debug';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError, PermissionError } from '../errors.js';
import { spawnHelper, type HelperStdio } from '../helper/index.js';
import { CgroupSet } from './cgroups/cgroup-set.js';
import { detectCgroups, type CgroupHost } from './cgroups/detect.js';
import { planCgroups, validateCgroupParent, validateResources } from './cgroups/policy.js';
import { Container, containerNotFound, type ContainerInfo } from './container.js';
import {
  DEFAULT_DEVICES,
  DEFAULT_DEV_SYMLINKS,
  DEFAULT_MOUNTS,
  DEFAULT_NAMESPACES,
  type HelperMount,
} from './defaults.js';
import { runArgs, type RunPlan } from './run-args.js';
import { deviceCgroupWrites, deviceRules, securityPlan } from './security.js';
import type { ContainerSpec, MountSpec } from './spec.js';
import {
  containerPaths,
  defaultRoot,
  defaultStateDir,
  makeContainerDirs,
  readJson,
  writeJsonAtomic,
  type ContainerPaths,
  type ContainerRecord,
} from './state.js';
import { resolveUserInLayers, type ResolvedUser } from './user.js';
import { processStartTime, selfStartTime } from '../util/index.js';
import {
  checkUserMapped,
  deviceBindMounts,
  planUserns,
  readUsernsHost,
  rootlessCgroupError,
  removeContainerDir,
  type UsernsHost,
  type UsernsSetting,
} from './userns.js';
import { effectiveProcess } from './image-config.js';
import type { ImageStoreCore as ImageStore } from '../store/index.js';
import type { ContainerConfig } from '../oci/types.js';
import type { Lease } from '../store/lease.js';
import { commitContainer, type CommitOptions, type CommitResult } from '../build/commit.js';

const debug = createDebug('dockless:runtime');

/** Options of {@link Runtime}. */
export interface RuntimeOptions {
  /**
   * Persistent data directory: containers' upper directories and logs live in `<root>/containers`.
   * @default '/var/lib/dockless' for root, else `$XDG_DATA_HOME/dockless` (or `~/.local/share/dockless`)
   */
  root?: string;
  /**
   * State directory: one directory per container with its record, readable by every process.
   * @default '/run/dockless' for root, else `$XDG_RUNTIME_DIR/dockless`
   */
  stateDir?: string;
  /** Path of the native helper. @default `$DOCKLESS_HELPER`, else the one `npm install` built */
  helperPath?: string;
  /** The image store `spec.image` references are resolved in. Without one, containers run from a `rootfs` only. */
  store?: ImageStore;
  /**
   * The cgroup containers' cgroups are created in, in every hierarchy (each
   * container gets `dockless-<id>` there): a relative path is below the calling
   * process's own cgroup, an absolute one from the hierarchy's root. Missing
   * directories are created and left in place. A spec's `cgroupParent` overrides it.
   * On cgroup v2 a cgroup with processes in it cannot hand controllers to children:
   * there, point this at a cgroup without processes (one delegated to you), or limits fail.
   * @default the calling process's own cgroup
   */
  cgroupParent?: string;
  /**
   * The user namespace of containers whose spec has no `userns`; see {@link ContainerSpec.userns}.
   * @default none for root; for any other user, the rootless default
   */
  userns?: UsernsSetting;
}

interface ContainerSource {
  /** Overlay lower dirs, top-most first. */
  lowers: string[];
  /** What the record names as the rootfs. */
  label: string;
  /** The image config's container part, for an image. */
  config?: ContainerConfig;
  /** What a lease must hold while the container exists: manifest digest and chainIDs. */
  targets?: string[];
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const ID_RE = /^[0-9a-f]{64}$/;
const ROOT_USER: ResolvedUser = { uid: 0, gid: 0, groups: [], home: '/root' };

let hostResolvConf: string | undefined;

function resolvConf(): string {
  if (hostResolvConf !== undefined) return hostResolvConf;
  let text = '';
  try {
    text = readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    /* no host resolver configuration: the container gets an empty one */
  }
  // Loopback resolvers of the host are unreachable from the container's own network namespace.
  hostResolvConf = text
    .split('\n')
    .filter((line) => !/^\s*nameserver\s+(127\.|::1\b)/.test(line))
    .join('\n');
  return hostResolvConf;
}

function hostsFile(hostname: string): string {
  return `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${hostname}\n`;
}

function userMount(mount: MountSpec, index: number): HelperMount {
  if (mount === null || typeof mount !== 'object') throw new InvalidArgumentError(`mounts[${index}]: expected an object`);
  if (typeof mount.target !== 'string' || !isAbsolute(mount.target)) {
    throw new InvalidArgumentError(`mounts[${index}]: target must be an absolute path, got \`${String(mount.target)}\``);
  }
  const ro = mount.readonly === true ? ['ro'] : [];
  if (mount.type === 'bind') {
    if (typeof mount.source !== 'string' || !isAbsolute(mount.source)) {
      throw new InvalidArgumentError(`mounts[${index}]: bind source must be an absolute path, got \`${String(mount.source)}\``);
    }
    return { type: 'bind', source: mount.source, target: mount.target, options: ['rbind', ...ro] };
  }
  if (mount.type === 'tmpfs') {
    const options = ['nosuid', 'nodev', `mode=${(mount.mode ?? 0o1777).toString(8)}`, ...ro];
    if (mount.size !== undefined) options.push(`size=${Math.floor(mount.size)}`);
    return { type: 'tmpfs', source: 'tmpfs', target: mount.target, options };
  }
  throw new InvalidArgumentError(`mounts[${index}]: unknown mount type \`${String((mount as { type: unknown }).type)}\``);
}

function validateSpec(spec: ContainerSpec): void {
  if (spec === null || typeof spec !== 'object') throw new InvalidArgumentError('container spec: expected an object');
  if ((spec.rootfs === undefined) === (spec.image === undefined)) {
    throw new InvalidArgumentError('container spec: give exactly one of rootfs and image');
  }
  if (spec.rootfs !== undefined && (typeof spec.rootfs !== 'string' || spec.rootfs === '')) {
    throw new InvalidArgumentError('container spec: rootfs must be a directory path');
  }
  if (spec.image !== undefined && (typeof spec.image !== 'string' || spec.image === '')) {
    throw new InvalidArgumentError('container spec: image must be an image reference');
  }
  for (const field of ['cmd', 'entrypoint'] as const) {
    const value = spec[field];
    if (value !== undefined && (!Array.isArray(value) || !value.every((a) => typeof a === 'string'))) {
      throw new InvalidArgumentError(`container spec: ${field} must be an array of strings`);
    }
  }
  if (spec.rootfs !== undefined && (spec.cmd === undefined || spec.cmd.length === 0) && (spec.entrypoint?.length ?? 0) === 0) {
    throw new InvalidArgumentError('container spec: cmd is required with a rootfs');
  }
  if (spec.cwd !== undefined && !isAbsolute(spec.cwd)) {
    throw new InvalidArgumentError(`container spec: cwd must be an absolute path, got \`${spec.cwd}\``);
  }
  if (spec.name !== undefined && !NAME_RE.test(spec.name)) {
    throw new InvalidArgumentError(`container spec: name \`${spec.name}\` must match ${NAME_RE.source}`);
  }
  if (spec.stdio !== undefined && !['pipe', 'inherit', 'ignore'].includes(spec.stdio)) {
    throw new InvalidArgumentError(`container spec: stdio must be 'pipe', 'inherit' or 'ignore', got \`${String(spec.stdio)}\``);
  }
  for (const [key, value] of Object.entries(spec.env ?? {})) {
    if (key === '' || key.includes('=') || key.includes('\0') || typeof value !== 'string' || value.includes('\0')) {
      throw new InvalidArgumentError(`container spec: env \`${key}\` is not a valid variable`);
    }
  }
  if (spec.hostname !== undefined && !/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/.test(spec.hostname)) {
    throw new InvalidArgumentError(`container spec: hostname \`${spec.hostname}\` is not a valid hostname`);
  }
}

/**
 * Creates and manages containers. No daemon: each operation runs the native
 * helper once, and containers are visible to every process through the state
 * directory.
 *
 * @example
 * ```ts
 * import { Runtime, rootfsFromHost } from 'dockless';
 * const rootfs = await rootfsFromHost('/tmp/demo-rootfs', { overwrite: true });
 * const runtime = new Runtime();
 * await using c = await runtime.run({ rootfs: rootfs.path, cmd: ['hostname'], hostname: 'box' });
 * c.stdout?.pipe(process.stdout);
 * console.log(await c.wait()); // { exitCode: 0, signal: null, oomKilled: false }
 * ```
 */
export class Runtime {
  /** The persistent data directory. */
  readonly root: string;
  /** The state directory. */
  readonly stateDir: string;
  readonly #helperPath: string | undefined;
  readonly #store: ImageStore | undefined;
  readonly #owned = new Map<string, Container>();
  readonly #ownerStart: number;
  readonly #cgroupParent: string | undefined;
  readonly #userns: UsernsSetting | undefined;
  #usernsHost: UsernsHost | undefined;
  #cgroupHost: CgroupHost | undefined;
  #ready: Promise<void> | undefined;

  constructor(options: RuntimeOptions = {}) {
    this.root = options.root ?? defaultRoot();
    this.stateDir = options.stateDir ?? defaultStateDir();
    this.#helperPath = options.helperPath;
    this.#store = options.store;
    this.#ownerStart = selfStartTime();
    this.#cgroupParent = validateCgroupParent(options.cgroupParent, 'runtime options');
    this.#userns = options.userns;
  }

  #prepare(): Promise<void> {
    this.#ready ??= Promise.all([
      mkdir(join(this.root, 'containers'), { recursive: true, mode: 0o711 }),
      mkdir(join(this.stateDir, 'names'), { recursive: true, mode: 0o711 }),
    ]).then(() => Promise.all([ownDirectory(this.root), ownDirectory(this.stateDir)]).then(() => undefined));
    return this.#ready;
  }

  /**
   * Creates a container and sets it up (namespaces, root filesystem, mounts)
   * without starting its command; `container.start()` starts it.
   *
   * @throws {@link InvalidArgumentError} for a malformed spec.
   * @throws {@link NotFoundError} when the rootfs, a bind source or the user does not exist.
   * @throws {@link AlreadyExistsError} when the name is taken.
   * @throws {@link HelperError} when a setup step fails; nothing is left behind.
   */
  create(spec: ContainerSpec): Promise<Container> {
    return this.#launch(spec, false);
  }

  /**
   * Creates and starts a container; resolves once its command is being executed.
   * Takes the same spec and throws the same errors as {@link Runtime.create}.
   *
   * @example
   * ```ts
   * const c = await runtime.run({ rootfs: '/tmp/rootfs', cmd: ['sh', '-c', 'echo hi'] });
   * const { exitCode } = await c.wait();
   * await c.remove();
   * ```
   */
  run(spec: ContainerSpec): Promise<Container> {
    return this.#launch(spec, true);
  }

  async #launch(spec: ContainerSpec, start: boolean): Promise<Container> {
    validateSpec(spec);
    validateResources(spec.resources);
    const cgroupParent = validateCgroupParent(spec.cgroupParent, 'container spec') ?? this.#cgroupParent;
    const security = securityPlan(spec);
    this.#usernsHost ??= readUsernsHost();
    const userns = planUserns(spec.userns ?? this.#userns, this.#usernsHost);
    const source = await this.#source(spec);
    const mounts = (spec.mounts ?? []).map(userMount);
    await Promise.all(
      mounts
        .filter((m) => m.type === 'bind')
        .map((m) =>
          stat(m.source).catch((cause) => {
            throw new NotFoundError(`bind mount source \`${m.source}\` does not exist`, { cause, path: m.source });
          }),
        ),
    );
    const id = randomBytes(32).toString('hex');
    const short = id.slice(0, 12);
    const hostname = spec.hostname ?? short;
    const proc = effectiveProcess(spec, source.config, hostname);
    const [user] = await Promise.all([
      proc.user === undefined ? ROOT_USER : resolveUserInLayers(source.lowers, proc.user),
      this.#prepare(),
    ]);
    if (userns !== undefined) checkUserMapped(user, userns);
    const paths = containerPaths(this.root, this.stateDir, id);
    const detached = spec.detached === true;
    const stdio = spec.stdio ?? 'pipe';
    this.#cgroupHost ??= detectCgroups();
    // Rootless, no device node can be made (nor used from a filesystem the namespace mounted), and
    // the v1 devices cgroup is not the user's to create: it is left out rather than failing the container.
    const devices = userns?.rootless === true ? undefined : deviceCgroupWrites(deviceRules(spec));
    if (userns?.rootless === true) {
      debug('%s rootless: no devices cgroup, and no cgroup where none is delegated: nothing but `resources` is enforced through cgroups', short);
    }
    const cgroupPlan = planCgroups(spec.resources, this.#cgroupHost, `dockless-${id}`, cgroupParent, devices);
    if (spec.name !== undefined) await this.#claimName(spec.name, id);

    let cleanup = true;
    let cgroupsCreating: Promise<CgroupSet> | undefined;
    let leasing: Promise<Lease> | undefined;
    // FileHandles, closed through themselves: closing a handle's raw fd would leave the handle
    // to close that fd number again when it is garbage-collected, by then maybe another file's.
    const logs: FileHandle[] = [];
    try {
      // Made while the directories and files below are; limits are in place before the helper starts.
      cgroupsCreating = CgroupSet.create(cgroupPlan, `${start ? 'run' : 'create'} container ${short}`);
      if (userns?.rootless === true) cgroupsCreating = cgroupsCreating.catch((e) => Promise.reject(rootlessCgroupError(e, userns.hostRoot.uid)));
      cgroupsCreating.catch(() => undefined);
      // The lease keeps gc() from the image's snapshots while the container exists.
      if (source.targets !== undefined && this.#store !== undefined) {
        leasing = this.#store.lease(leaseId(id), source.targets, { processBound: !detached });
        leasing.catch(() => undefined);
      }
      await makeContainerDirs(paths);
      await Promise.all([
        writeFile(paths.hostname, `${hostname}\n`),
        writeFile(paths.hosts, hostsFile(hostname)),
        writeFile(paths.resolv, resolvConf()),
      ]);
      if (userns !== undefined && !userns.rootless) {
        // Bind-mounted as they are: the container's root must own them to write them, as it would without a user namespace.
        const { uid, gid } = userns.hostRoot;
        await Promise.all([paths.hostname, paths.hosts, paths.resolv].map((p) => chown(p, uid, gid)));
      }

      const cgroups = await cgroupsCreating;
      const env: Record<string, string> = { HOME: user.home || '/', ...proc.env };
      const plan: RunPlan = {
        id,
        target: paths.target,
        lowers: source.lowers,
        upper: paths.upper,
        work: paths.work,
        namespaces: DEFAULT_NAMESPACES,
        hostname,
        mounts: [
          ...DEFAULT_MOUNTS,
          ...(userns !== undefined ? deviceBindMounts(DEFAULT_DEVICES) : []),
          { type: 'bind', source: paths.hostname, target: '/etc/hostname', options: [] },
          { type: 'bind', source: paths.hosts, target: '/etc/hosts', options: [] },
          { type: 'bind', source: paths.resolv, target: '/etc/resolv.conf', options: [] },
          ...mounts,
        ],
        devices: userns !== undefined ? [] : DEFAULT_DEVICES,
        symlinks: DEFAULT_DEV_SYMLINKS,
        masked: security.masked,
        readonlyPaths: security.readonlyPaths,
        readonlyRootfs: spec.readonlyRootfs === true,
        cwd: proc.cwd,
        user,
        env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
        init: spec.init !== false,
        ...(security.caps !== undefined ? { caps: security.caps } : {}),
        noNewPrivileges: security.noNewPrivileges,
        ...(security.seccomp !== undefined ? { seccomp: security.seccomp } : {}),
        rlimits: security.rlimits,
        exitFile: paths.exit,
        cgroups: cgroups.dirs,
        ...(userns !== undefined ? { userns } : {}),
        cmd: proc.argv,
        ...(start ? {} : { startFifo: paths.fifo }),
        ...(detached ? {} : { dieWithParent: process.pid }),
      };

      let helperStdio: [HelperStdio, HelperStdio, HelperStdio];
      if (stdio === 'pipe' && detached) {
        const [out, err] = await Promise.all([open(paths.stdoutLog, 'a', 0o640), open(paths.stderrLog, 'a', 0o640)]);
        logs.push(out, err);
        helperStdio = ['ignore', out.fd, err.fd];
      } else {
        helperStdio = [stdio, stdio, stdio];
      }
      const helper = spawnHelper('run', runArgs(plan), {
        stdio: helperStdio,
        detached,
        context: `${start ? 'run' : 'create'} container ${short}`,
        ...(plan.seccomp !== undefined ? { inputs: [plan.seccomp] } : {}),
        ...(this.#helperPath !== undefined ? { helperPath: this.#helperPath } : {}),
      });
      for (const handle of logs.splice(0)) await handle.close();

      const { pid } = await helper.next('pid');
      const record: ContainerRecord = {
        version: 1,
        id,
        ...(spec.name !== undefined ? { name: spec.name } : {}),
        created: new Date().toISOString(),
        pid,
        pidStart: processStartTime(pid) ?? 0,
        ownerPid: process.pid,
        ownerStart: this.#ownerStart,
        detached,
        rootfs: source.label,
        ...(spec.image !== undefined ? { image: spec.image } : {}),
        cmd: proc.argv,
        stdio,
        ...(cgroups.entries.length > 0 ? { cgroups: [...cgroups.entries] } : {}),
        ...(userns !== undefined ? { userns: { uidMap: userns.uidMap, gidMap: userns.gidMap, rootless: userns.rootless } } : {}),
      };
      if (start) record.started = record.created;
      await Promise.all([writeJsonAtomic(paths.record, record), helper.next(start ? 'started' : 'created'), leasing]).catch(
        async (error) => {
          // A healthy helper would wait for a start that never comes (or run on
          // unrecorded): killing the shim takes pid 1 with it (PR_SET_PDEATHSIG).
          helper.child.kill('SIGKILL');
          await helper.exit;
          throw error;
        },
      );
      if (detached) helper.unref();
      const container = new Container({
        record,
        paths,
        helper,
        status: start ? 'running' : 'created',
        onRemove: async (c) => this.#forget(c),
        ...(this.#helperPath !== undefined ? { helperPath: this.#helperPath } : {}),
      });
      this.#owned.set(id, container);
      cleanup = false;
      debug('%s %s pid %d', short, start ? 'started' : 'created', pid);
      return container;
    } finally {
      for (const handle of logs) await handle.close().catch(() => undefined);
      if (cleanup) {
        await Promise.all([
          rm(paths.state, { recursive: true, force: true }),
          removeContainerDir(paths.bundle, userns, this.#helperPath),
          cgroupsCreating?.then((set) => set.remove(), () => undefined).catch(() => undefined),
          leasing?.then((lease) => lease.release(), () => undefined).catch(() => undefined),
          spec.name !== undefined ? unlink(join(this.stateDir, 'names', spec.name)).catch(() => undefined) : undefined,
        ]);
      }
    }
  }

  /** Where a container's root comes from: a rootfs directory, or an image's snapshots. */
  async #source(spec: ContainerSpec): Promise<ContainerSource> {
    if (spec.rootfs !== undefined) {
      const rootfs = spec.rootfs;
      let info;
      try {
        info = await stat(rootfs);
      } catch (cause) {
        throw new NotFoundError(`rootfs \`${rootfs}\` does not exist`, { cause, path: rootfs });
      }
      if (!info.isDirectory()) throw new InvalidArgumentError(`rootfs \`${rootfs}\` is not a directory`, { path: rootfs });
      return { lowers: [rootfs], label: rootfs };
    }
    const image = spec.image as string;
    if (this.#store === undefined) {
      throw new InvalidArgumentError(`container spec: image ${image} needs a Runtime created with { store }`);
    }
    const snapshot = await this.#store.snapshot(image);
    // overlayfs needs one lower dir at least; an image without layers gets an empty one.
    const lowers = snapshot.lowerDirs.length > 0 ? snapshot.lowerDirs : [await this.#emptyDir()];
    return { lowers, label: lowers[0]!, config: snapshot.config.config, targets: [snapshot.digest, ...snapshot.chainIds] };
  }

  async #emptyDir(): Promise<string> {
    const path = join(this.root, 'empty');
    await mkdir(path, { recursive: true, mode: 0o755 });
    return path;
  }

  async #claimName(name: string, id: string): Promise<void> {
    const path = join(this.stateDir, 'names', name);
    try {
      await writeFile(path, id, { flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = (await readFile(path, 'utf8').catch(() => '')).trim();
      const alive = holder !== '' && (await stat(join(this.stateDir, holder)).then(() => true, () => false));
      if (alive) throw new AlreadyExistsError(`container name \`${name}\` is already used by container ${holder.slice(0, 12)}`);
      // The holder is gone: take the name over with the same exclusive create, so
      // two processes that both saw it stale cannot both win.
      await unlink(path).catch(() => undefined);
      try {
        await writeFile(path, id, { flag: 'wx' });
      } catch (cause) {
        throw new AlreadyExistsError(`container name \`${name}\` was just taken by another container`, { cause });
      }
    }
  }

  async #forget(container: Container): Promise<void> {
    this.#owned.delete(container.id);
    if (container.info().image !== undefined && this.#store !== undefined) {
      await this.#store.releaseLease(leaseId(container.id)).catch(() => false);
    }
    if (container.name !== undefined) {
      const path = join(this.stateDir, 'names', container.name);
      const holder = await readFile(path, 'utf8').catch(() => '');
      if (holder.trim() === container.id) await unlink(path).catch(() => undefined);
    }
  }

  /**
   * Finds a container by id, unique id prefix or name, including containers of
   * other processes (through the state directory).
   *
   * @throws {@link NotFoundError} when no container matches.
   */
  async get(ref: string): Promise<Container> {
    let id = ref;
    if (!ID_RE.test(ref)) {
      const named = await readFile(join(this.stateDir, 'names', ref), 'utf8').catch(() => undefined);
      if (named !== undefined && ID_RE.test(named.trim())) id = named.trim();
      else {
        const ids = (await this.#ids()).filter((x) => x.startsWith(ref));
        if (ids.length !== 1 || ref.length === 0) throw containerNotFound(ref);
        id = ids[0]!;
      }
    }
    const owned = this.#owned.get(id);
    if (owned !== undefined) return owned;
    const paths = containerPaths(this.root, this.stateDir, id);
    const record = await readJson<ContainerRecord>(paths.record);
    if (record === undefined) throw containerNotFound(ref);
    return new Container({
      record,
      paths,
      status: record.started !== undefined ? 'running' : 'created',
      onRemove: async (c) => this.#forget(c),
      ...(this.#helperPath !== undefined ? { helperPath: this.#helperPath } : {}),
    });
  }

  async #ids(): Promise<string[]> {
    const entries = await readdir(this.stateDir).catch(() => [] as string[]);
    return entries.filter((e) => ID_RE.test(e));
  }

  /** Every container in the state directory, of this process and of others, oldest first. */
  async list(): Promise<ContainerInfo[]> {
    const containers = await Promise.all(
      (await this.#ids()).map((id) => this.get(id).then((c) => c, () => undefined)),
    );
    const infos: ContainerInfo[] = [];
    for (const c of containers) {
      if (c === undefined) continue;
      if (c.status === 'stopped' && c.exit === undefined) await c.wait().catch(() => undefined);
      infos.push(c.info());
    }
    return infos.sort((a, b) => a.created.getTime() - b.created.getTime());
  }

  /**
   * Removes every stopped container (also those left behind by a process that died).
   *
   * @returns the ids removed.
   */
  async prune(): Promise<string[]> {
    const removed: string[] = [];
    for (const id of await this.#ids()) {
      const container = await this.get(id).catch(() => undefined);
      if (container === undefined || container.status !== 'stopped') continue;
      await container.remove();
      removed.push(id);
    }
    return removed;
  }

  /**
   * Makes a new image of a container's changes, as `docker commit` does:
   * what it wrote becomes one layer on top of its image's layers, with a
   * history entry naming its command. Works on stopped and running
   * containers (a running one is read from a copy of its changes, without
   * pausing it). Without `tag`, the image is untagged, and `gc()` may take it.
   *
   * @param container the container, or its id or name.
   * @param tag the reference to tag the new image with.
   * @returns the new image's digest, and its normalised reference when tagged.
   * @throws {@link InvalidArgumentError} without a `store`, or for a container made from a rootfs directory.
   * @throws {@link NotFoundError} when the container, or its image, is gone.
   * @example
   * ```ts
   * const c = await runtime.run({ image: 'base:1', cmd: ['sh', '-c', 'echo hi > /greeting'] });
   * await c.wait();
   * const { digest } = await runtime.commit(c, 'base:greeting', { message: 'add a greeting' });
   * ```
   */
  async commit(container: Container | string, tag?: string, options: CommitOptions = {}): Promise<CommitResult> {
    if (this.#store === undefined) throw new InvalidArgumentError('commit: needs a Runtime created with { store }');
    const c = typeof container === 'string' ? await this.get(container) : container;
    const helper = this.#helperPath !== undefined && options.helperPath === undefined ? { helperPath: this.#helperPath } : {};
    return commitContainer(this.#store, c, this.pathsOf(c.id).upper, tag, { ...options, ...helper });
  }

  /** The paths of a container; for tests and tools. @internal */
  pathsOf(id: string): ContainerPaths {
    return containerPaths(this.root, this.stateDir, id);
  }
}

/**
 * Refuses a data or state directory that another user owns or may write: its
 * records decide which pids get signalled and which cgroups get emptied.
 */
async function ownDirectory(path: string): Promise<void> {
  const info = await lstat(path);
  const uid = process.getuid?.() ?? 0;
  if (!info.isDirectory() || info.uid !== uid || (info.mode & 0o022) !== 0) {
    throw new PermissionError(
      `directory \`${path}\` must be a directory owned by uid ${uid} and writable by nobody else (owner ${info.uid}, mode ${(info.mode & 0o7777).toString(8)})`,
      { path },
    );
  }
}

function leaseId(containerId: string): string {
  return `container-${containerId}`;
}
