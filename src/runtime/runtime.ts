/**
 * The runtime core: {@link Runtime}'s launch (spec → plan → helper), lookup,
 * listing and prune. Past ~600 lines: the launch is one ordered transaction
 * (directories, name, network, cgroups, files, helper, records) whose undo
 * must see every step it undoes; the policy of each step lives in its own
 * module (network-mode.ts, security.ts, cgroups/, userns.ts, records.ts,
 * snapshot.ts).
 *
 * @module
 */
import { chown, mkdir, readdir, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import createDebug from 'debug';
import { AlreadyExistsError, DocklessError, HelperError, InvalidArgumentError, IOError, NotFoundError, PermissionError } from '../errors.js';
import { preloadSpawn, runHelperOp, sealedHelperPath, shown, spreadSubdirs, startHelper } from '../helper/index.js';
import { CGROUP_RMDIR_AT_EXIT, CgroupSet, shimCgroupError, shimCgroups, shimMayMake } from './cgroups/cgroup-set.js';
import { detectCgroupLayout, type CgroupHost, type CgroupMount } from './cgroups/detect.js';
import { cgroupfsPlan, type CgroupfsPlan } from './cgroups/mounts.js';
import { hostInfo, type RuntimeInfo } from './host-info.js';
import { planCgroups, validateCgroupParent, validateResources } from './cgroups/policy.js';
import { Container, containerNotFound, type ContainerInfo, type ContainerInit } from './container.js';
import {
  DEFAULT_DEVICES,
  DEFAULT_DEV_SYMLINKS,
  DEFAULT_MOUNTS,
  type HelperMount,
} from './defaults.js';
import { linkArgs, runArgs, type HelperFile, type RunPlan } from './run-args.js';
import { deviceCgroupWrites, deviceRules, securityPlan, type SecurityPlan } from './security.js';
import type { ContainerSpec, NetworkSetting } from './spec.js';
import { checkHolders, defaultMounts, etcMounts, joinedUserns, networkOf, planNamespaces, validateNetwork } from './network-mode.js';
import { prunePods } from './pods.js';
import { emptyTrash, settleTrash, standbyRemover, TRASH_DIR } from './trash.js';
import { checkExecEnvelope, checkProcessStrings, checkRuntimePaths } from './spec-strings.js';
import { NAME_RE, userMount, validateSpec } from './spec-check.js';
import {
  containerPaths,
  defaultRoot,
  defaultStateDir,
  makeContainerDirs,
  readJson,
  readJsonSync,
  ROOTFS_MOUNT_POINT,
  shimContainerDirs,
  writeJsonAtomic,
  type ContainerConfigRecord,
  type ContainerPaths,
  type ContainerRecord,
} from './state.js';
import { resolveUserInLayers, type ResolvedUser } from './user.js';
import type { LaunchOptions, RootlessOutbound, RuntimeOptions } from './options.js';
import { claimName, pruneNames, readNameClaim, releaseName } from './names.js';
import { pruneLeftovers } from './prune.js';
import { reapOrphans } from './reap.js';
import { auditRuntime, unmountDetached, type AuditEntry } from './audit.js';
import { settleTeardowns } from './teardowns.js';
import {
  checkOwnDirectory,
  isErrno,
  isoTime,
  processStartTime,
  raceAbort,
  randomHex,
  reachedCodeCacheStage,
  removeDir,
  selfStartTime,
  throwIfAborted,
  checkDirOption,
} from '../util/index.js';
import {
  checkUserMapped,
  deviceBindMounts,
  planUserns,
  readUsernsHost,
  rootlessCgroupError,
  removeContainerDir,
  type UsernsHost,
  type UsernsPlan,
  type UsernsSetting,
} from './userns.js';
import { effectiveProcess, type EffectiveProcess } from './image-config.js';
import { collectOutput, encodeOutput, maxBufferOf, type OutputOptions, type OutputResult } from './output.js';
import { hostsFile, resolvConf } from './etc-files.js';
import { etcTargetsLower } from './etc-targets.js';
import { containerSource, type ContainerSource } from './source.js';
import { configRecord } from './records.js';
import { launchRecord, relaunch, type LaunchedConfigRecord } from './relaunch.js';
import { healthPlan } from './health.js';
import { restartArgs, restartPlan } from './restart.js';
import { announceLaunch, appendEvent, launchEventLines, readEvents, shimEvents, type ContainerEvent, type EventsOptions } from './events.js';
import { Forwarder } from './forwarder.js';
import { checkOutboundChoice, forwardTarget, openStartGate, planPublish } from './publish.js';
import { planIo } from './io-plan.js';
import { resolveLogOptions, type LogOptions } from './logs.js';
import type { ImageStoreCore as ImageStore, Lease } from '../store/index.js';
import type { NetworkAttacher, NetworkAttachment, SharedNetns } from './network-attach.js';
import {
  checkCloneRoot,
  cloneSpec,
  collectSnapshots,
  ContainerSnapshot,
  dropHold,
  freezeContainer,
  holdForClone,
  snapshotLayers,
  snapshotsMayExist,
  type CloneOptions,
  type ContainerSnapshotOptions,
} from './snapshot.js';

const debug = createDebug('dockless:runtime');

export type { LaunchOptions, RootlessOutbound, RuntimeOptions } from './options.js';

const ID_RE = /^[0-9a-f]{64}$/;
const ROOT_USER: ResolvedUser = { uid: 0, gid: 0, groups: [], home: '/root' };

/** statfs f_type of the filesystems whose contents a reboot empties: tmpfs, ramfs (linux/magic.h). */
const BOOT_BOUND_FS = new Set([0x01021994, 0x858458f6]);

/**
 * Creates and manages containers. No daemon: each operation runs the native
 * helper once, and containers are visible to every process through the state
 * directory.
 *
 * @example
 * ```ts
 * import { Runtime, rootfsFromHost } from 'dockless';
 * const rootfs = await rootfsFromHost('/tmp/demo-rootfs', { overwrite: true });
 * await using runtime = new Runtime(); // at the end of the scope, its containers are removed
 * await using c = await runtime.run({ rootfs: rootfs.path, cmd: ['hostname'], hostname: 'box' });
 * c.stdout?.pipe(process.stdout);
 * console.log(await c.wait()); // { exitCode: 0, signal: null, oomKilled: false }
 * ```
 */
export class Runtime implements AsyncDisposable {
  /** The persistent data directory. */
  readonly root: string;
  /** The state directory. */
  readonly stateDir: string;
  readonly #helperPath: string | undefined;
  readonly #detachRemoval: boolean;
  readonly #store: ImageStore | undefined;
  readonly #owned = new Map<string, Container>();
  /** The specs owned containers were launched with: what their snapshots' clones start from. */
  readonly #specs = new Map<string, ContainerSpec>();
  /** Whether a container's cgroups were all made here once: from then on the shim makes them (see shimCgroups). */
  #cgroupsWhole = false;
  /** Set when a first launch's shim could not make its cgroups: from then on this process makes them until it has made them whole. */
  #cgroupsShimRefused = false;
  /** Whether a snapshot was ever made below the root: until then a removal has no snapshot hold to drop (see #forget). */
  #snapshotsSeen = false;
  readonly #snapshots = new Set<ContainerSnapshot>();
  readonly #ownerStart: number;
  readonly #cgroupParent: string | undefined;
  readonly #userns: UsernsSetting | undefined;
  readonly #network: NetworkSetting | undefined;
  readonly #networks: NetworkAttacher | undefined;
  readonly #outbound: RootlessOutbound;
  readonly #log: LogOptions | false | undefined;
  #usernsHost: UsernsHost | undefined;
  /** The host's cgroup layout and cgroup mounts: see {@link Runtime.#cgroups}. */
  #cgroupLayout: { host: CgroupHost; mounts: CgroupMount[] } | undefined;
  /** The container's /sys/fs/cgroup without a user namespace, by read-only or not: only the host's mounts decide it then. */
  readonly #cgroupfsShared = new Map<boolean, CgroupfsPlan>();
  /** The plan of a spec that sets none of the security options, nearly every one: decided once (the seccomp program's copy, the capability sets). */
  #defaultSecurity: SecurityPlan | undefined;
  #ready: Promise<void> | undefined;
  /** Whether the state directory is on a filesystem a reboot empties (tmpfs, ramfs): known once #ready settled. */
  #stateBootBound = false;
  #opened: Promise<void> | undefined;

  /**
   * Makes a runtime; nothing is created on disk until the first container.
   *
   * @throws {@link InvalidArgumentError} when `root` or `stateDir` is not an absolute path, or `helperPath` not a path.
   * @throws {@link PermissionError} later, at the first container, when `root` or `stateDir` is not a directory of the caller's that only it may write.
   */
  constructor(options: RuntimeOptions = {}) {
    checkRuntimePaths(options);
    this.root = checkDirOption(options.root ?? defaultRoot(), 'runtime options: root');
    this.stateDir = checkDirOption(options.stateDir ?? defaultStateDir(), 'runtime options: stateDir');
    if (options.helperPath !== undefined && (typeof options.helperPath !== 'string' || options.helperPath === '')) {
      throw new InvalidArgumentError('runtime options: helperPath must be the path of the helper binary');
    }
    this.#helperPath = options.helperPath;
    this.#detachRemoval = options.detachRemoval === true;
    this.#store = options.store;
    this.#ownerStart = selfStartTime();
    this.#cgroupParent = validateCgroupParent(options.cgroupParent, 'runtime options');
    this.#userns = options.userns;
    validateNetwork(options.network, 'runtime options: network');
    this.#network = options.network;
    this.#networks = options.networkAttacher;
    this.#outbound = checkOutboundChoice(options.rootlessOutbound);
    if (options.log !== undefined && options.log !== false) resolveLogOptions(options.log, 'runtime options');
    this.#log = options.log;
  }

  #prepare(): Promise<void> {
    const make = (dir: string, sub: string, field: string) =>
      mkdir(join(dir, sub), { recursive: true, mode: 0o711 }).catch((cause) => {
        if (isErrno(cause, 'EEXIST', 'ENOTDIR')) {
          throw new InvalidArgumentError(`runtime options: ${field} \`${dir}\` is not a directory`, { cause, path: dir });
        }
        if (isErrno(cause, 'EACCES', 'EPERM', 'EROFS')) {
          throw new PermissionError(`runtime options: ${field}: mkdir \`${join(dir, sub)}\`: ${(cause as NodeJS.ErrnoException).code}`, { cause, path: dir });
        }
        throw cause;
      });
    this.#ready ??= Promise.all([
      make(this.root, 'containers', 'root'),
      make(this.stateDir, 'names', 'stateDir'),
      make(this.stateDir, TRASH_DIR, 'stateDir'),
      make(this.stateDir, ROOTFS_MOUNT_POINT, 'stateDir'),
    ])
      .then(([containers, ...state]) => {
        // The parents of a directory per container, when made here: see spreadSubdirs.
        const made = [
          ...(containers !== undefined ? [join(this.root, 'containers')] : []),
          ...(state.some((dir) => dir !== undefined && !dir.startsWith(`${this.stateDir}/`)) ? [this.stateDir] : []),
        ];
        return made.length > 0 ? spreadSubdirs(made, 'prepare runtime', this.#helperPath) : undefined;
      })
      .then(() => make(join(this.root, 'containers'), TRASH_DIR, 'root'))
      .then(async () => {
        const [, , state] = await Promise.all([checkOwnDirectory(this.root), checkOwnDirectory(this.stateDir), statfs(this.stateDir)]);
        this.#stateBootBound = BOOT_BOUND_FS.has(Number(state.type));
      });
    // A failed preparation is retried by the next launch rather than remembered.
    this.#ready.catch(() => {
      this.#ready = undefined;
    });
    return this.#ready;
  }

  /**
   * Creates a container and sets it up (namespaces, root filesystem, mounts)
   * without starting its command; `container.start()` starts it.
   *
   * @throws {@link InvalidArgumentError} for a malformed spec, naming the field: also a NUL
   *   byte in any string (of the spec or of the image config), and a command and
   *   environment too large for `execve` (with their size and the limit).
   * @throws {@link NotFoundError} when the rootfs, a bind source or the user does not exist.
   * @throws {@link AlreadyExistsError} when the name is taken.
   * @throws {@link UnsafeContentError} when the image (or rootfs) has a symlink where the
   *   runtime mounts something of its own (`/proc`, `/sys`, `/dev`, `/etc/hosts`, `/etc/resolv.conf`,
   *   …): runc refuses these too, as they would redirect a security mount.
   * @throws {@link HelperError} when a setup step fails; nothing is left behind. Its message
   *   is `<context>: <the helper's message>: <ERRNO>`, e.g. ``create container 3f2a…: chdir `/app`: ENOENT``.
   * @throws {@link AbortError} when `options.signal` aborts the launch; nothing is left behind.
   */
  create(spec: ContainerSpec, options: LaunchOptions = {}): Promise<Container> {
    return this.#launch(spec, false, options.signal);
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
  run(spec: ContainerSpec, options: LaunchOptions = {}): Promise<Container> {
    return this.#launch(spec, true, options.signal);
  }

  /**
   * Runs a container to its end and returns what it wrote and how it ended,
   * then removes it: the commonest call in one. Its stdin is closed at once.
   * A non-zero exit is a result, not an error.
   *
   * @throws what {@link Runtime.run} throws; {@link InvalidArgumentError} for a
   *   spec that is `detached` or whose `stdio` is not `'pipe'`;
   *   {@link OutputLimitError} when the command writes more than `maxBuffer`
   *   bytes on a stream (it is killed); {@link AbortError} when `options.signal` aborts.
   * @example
   * ```ts
   * const { stdout, stderr, exitCode } = await runtime.output({ rootfs: '/tmp/rootfs', cmd: ['uname', '-a'] });
   * ```
   */
  output(spec: ContainerSpec, options?: OutputOptions & { encoding?: 'utf8' }): Promise<OutputResult<string>>;
  output(spec: ContainerSpec, options: OutputOptions & { encoding: 'buffer' }): Promise<OutputResult<Buffer>>;
  async output(spec: ContainerSpec, options: OutputOptions = {}): Promise<OutputResult<string> | OutputResult<Buffer>> {
    const context = 'output of container';
    const max = maxBufferOf(options, context);
    if (spec?.detached === true) throw new InvalidArgumentError(`${context}: spec.detached cannot be used with output()`);
    if (spec?.stdio !== undefined && spec.stdio !== 'pipe') throw new InvalidArgumentError(`${context}: spec.stdio must be 'pipe' with output()`);
    await using c = await this.run({ ...spec, stdio: 'pipe', outputBuffer: 'block' }, options.signal !== undefined ? { signal: options.signal } : {});
    c.stdin?.end();
    const kill = () => void c.kill('SIGKILL').catch(() => undefined);
    options.signal?.addEventListener('abort', kill, { once: true });
    try {
      const out = await collectOutput(c, max, `${context} ${c.id.slice(0, 12)}`, kill);
      const exit = await c.wait(options.signal !== undefined ? { signal: options.signal } : {});
      return encodeOutput(out, exit, options.encoding);
    } finally {
      options.signal?.removeEventListener('abort', kill);
    }
  }

  async #launch(spec: ContainerSpec, start: boolean, signal: AbortSignal | undefined, snapshot?: string): Promise<Container> {
    const trying = !this.#cgroupsWhole && !this.#cgroupsShimRefused;
    try {
      return await this.#launchOnce(spec, start, signal, snapshot);
    } catch (error) {
      // The shim was let make a first launch's cgroups and could not (a stats-only hierarchy this process
      // would have gone without): once more, with the cgroups made here.
      if (trying && this.#cgroupsShimRefused) return this.#launchOnce(spec, start, signal, snapshot);
      throw error;
    }
  }

  async #launchOnce(spec: ContainerSpec, start: boolean, signal: AbortSignal | undefined, snapshot?: string): Promise<Container> {
    throwIfAborted(signal, `${start ? 'run' : 'create'} container`);
    // The code cache then holds what this process compiles to run and remove it (written at its exit, once).
    reachedCodeCacheStage('run');
    validateSpec(spec);
    validateResources(spec.resources);
    const cgroupParent = validateCgroupParent(spec.cgroupParent, 'container spec') ?? this.#cgroupParent;
    const defaults =
      spec.capAdd === undefined && spec.capDrop === undefined && spec.privileged === undefined && spec.seccomp === undefined && spec.noNewPrivileges === undefined && spec.rlimits === undefined;
    // Shared between launches: nothing downstream writes to the plan (its program is only piped to the helper and encoded in the records).
    const security = defaults ? (this.#defaultSecurity ??= securityPlan({})) : securityPlan(spec);
    const restart = restartPlan(spec.restart);
    const usernsSetting = spec.userns ?? this.#userns;
    // Root without a user namespace needs nothing of readUsernsHost, whose first getpwuid (NSS) costs ~20 ms.
    let userns = usernsSetting === undefined && process.getuid?.() === 0 ? undefined : planUserns(usernsSetting, (this.#usernsHost ??= readUsernsHost()));
    validateNetwork(spec.network, 'container spec: network');
    // Docker's rule: a spec that publishes ports and names no network gets 'bridge' (rootless:
    // its own namespace, given outbound access by publish.ts, which needs no shared namespace).
    const publishes = (spec.ports?.length ?? 0) > 0 && spec.namespace === undefined && userns?.rootless !== true;
    const fallback = this.#network ?? (publishes && this.#networks !== undefined ? 'bridge' : undefined);
    const network = networkOf(spec, fallback, this.#networks !== undefined);
    const nsPlan = await planNamespaces(spec, {
      stateDir: this.stateDir,
      network: fallback,
      userns: userns !== undefined,
      containerPaths: async (ref) => this.pathsOf((await this.get(ref)).id),
    });
    // Rootless, a network's bridge is in the user's network namespace: the container joins its user namespace.
    let shared: SharedNetns | undefined;
    if (network !== undefined && userns?.rootless === true && this.#networks?.sharedNetns !== undefined) {
      if (spec.userns !== undefined) {
        throw new InvalidArgumentError('container spec: userns cannot be given for a rootless container on a network: it joins the user namespace of the network namespace');
      }
      shared = await this.#networks.sharedNetns(network);
      if (shared !== undefined) {
        nsPlan.joins.push(['user', `/proc/${shared.pid}/ns/user`]);
        nsPlan.userns = shared.userns;
        nsPlan.holders.push({ pid: shared.pid, start: shared.start, what: 'the rootless network namespace' });
      }
    }
    if (nsPlan.userns !== undefined && userns !== undefined) userns = joinedUserns(userns, nsPlan.userns);
    // On a shared namespace the outbound access is the namespace's.
    const publish = planPublish(spec, userns?.rootless === true && shared === undefined, this.#outbound);
    let context = `${start ? 'run' : 'create'} container`;
    const source = await containerSource(spec, this.#store, this.root, userns);
    throwIfAborted(signal, context);
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
    const id = randomHex(32);
    const short = id.slice(0, 12);
    context = `${context} ${short}`;
    let held = false;
    if (snapshot !== undefined) {
      const template = await holdForClone(this.root, this.stateDir, snapshot, id, context);
      held = true;
      try {
        checkCloneRoot(template, snapshotLayers(this.root, template.lowers), source.lowers, userns, context);
      } catch (error) {
        await dropHold(this.root, snapshot, `clone-${id}`, this.#helperPath);
        throw error;
      }
      source.lowers = [join(this.root, 'templates', snapshot, 'layer'), ...template.lowers];
    }
    const hostname = nsPlan.hostname ?? spec.hostname ?? short;
    const proc = effectiveProcess(spec, source.config, hostname);
    checkProcessStrings(proc);
    const health = healthPlan(spec.healthcheck, source.config?.Healthcheck, source.config?.Shell);
    const preparing = Promise.all([
      proc.user === undefined ? ROOT_USER : resolveUserInLayers(source.lowers, proc.user),
      this.#prepare(),
    ]);
    // While the thread pool makes the directories, this thread loads what the helper's spawn needs.
    preloadSpawn();
    const [user] = await preparing;
    if (userns !== undefined) checkUserMapped(user, userns);
    // What dead owners left is reaped while the helper starts, when this thread would only wait: the reap judges
    // this launch as it judges another process's, live. The launch settles after it.
    let reaping: Promise<void> | undefined;
    throwIfAborted(signal, context);
    const env: Record<string, string> = { HOME: user.home || '/', ...proc.env };
    const envList = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    checkExecEnvelope(spec, proc.argv, envList);
    const paths = containerPaths(this.root, this.stateDir, id);
    const detached = spec.detached === true;
    const stdio = spec.stdio ?? 'pipe';
    const io = planIo(spec, this.#log, paths, context);
    const cgroupHost = this.#cgroups().host;
    // Rootless, no device node can be made (nor used from a filesystem the namespace mounted), and
    // the v1 devices cgroup is not the user's to create: it is left out rather than failing the container.
    const devices = userns?.rootless === true ? undefined : deviceCgroupWrites(deviceRules(spec));
    if (userns?.rootless === true) {
      debug('%s rootless: no devices cgroup, and no cgroup where none is delegated: nothing but `resources` is enforced through cgroups', short);
    }
    const cgroupPlan = planCgroups(spec.resources, cgroupHost, `dockless-${id}`, cgroupParent, devices);
    // Without limits to show after the exit (stats() of a stopped container), nothing needs the
    // cgroups once the container has exited: the shim removes them then, off this thread.
    const limited = spec.resources !== undefined && Object.values(spec.resources).some((v) => v !== undefined);
    // Until this process has seen a plan's cgroups made whole, the shim makes them only as root, where
    // nothing this process would skip is unwritable (shimMayMake); a refusal is retried with them made here (#launch).
    const shimmable =
      userns?.rootless !== true &&
      (this.#cgroupsWhole || (!this.#cgroupsShimRefused && process.getuid?.() === 0 && userns === undefined && shimMayMake(cgroupPlan)));
    const shim = shimmable ? shimCgroups(cgroupPlan, { rmdirAtExit: !limited }) : undefined;
    const speculative = shim !== undefined && !this.#cgroupsWhole;

    // The shim makes the upper and work directories and writes hostname, hosts and resolv.conf (before anything
    // of the container opens them), saving this thread their round trips; with a user namespace they are chowned here, so made here.
    const shimFiles = userns === undefined;
    let cleanup = true;
    let announced = false;
    /** The token of the `.new-` directory the shim makes the state directory in, when it makes it. */
    let making: string | undefined;
    let named = false;
    let attachment: NetworkAttachment | undefined;
    let cgroupsCreating: Promise<CgroupSet> | undefined;
    let leasing: Promise<Lease> | undefined;
    let forwarder: Forwarder | undefined;
    // Outbound access is set up before the workload runs: it waits on the start fifo meanwhile.
    const gated = start && (publish?.outbound === true || shared !== undefined);
    // Where nothing of this process needs the state directory before the helper runs (no name claim,
    // network, published port or held namespace; cgroups made by the shim, after it), the shim makes it and
    // writes the launch's events and the record too: this thread makes no file operation to launch.
    const shimState =
      shimFiles && shim !== undefined && spec.name === undefined && network === undefined && publish === undefined && nsPlan.holders.length === 0 && !gated;
    try {
      // The lease keeps gc() from the image's snapshots while the container exists.
      if (source.targets !== undefined && this.#store !== undefined) {
        leasing = this.#store.lease(leaseId(id), source.targets, { processBound: !detached });
        leasing.catch(() => undefined);
      }
      // Made here, the state directory (naming this process) comes before the name claim and the
      // cgroups: others judge those abandoned by it (names.ts, prune.ts). The shim makes it only where
      // neither is claimed nor made here, once pid 1 is cloned (shimContainerDirs).
      const like = { lower: source.lowers[0]!, owner: userns?.rootless !== true };
      const shimMade = shimState ? shimContainerDirs(paths, like) : undefined;
      making = shimMade?.state.token;
      const shimDirs = shimMade?.dirs ?? (await makeContainerDirs(paths, like, { shim: shimFiles }));
      if (spec.name !== undefined) {
        await claimName(this.stateDir, spec.name, id);
        named = true;
      }
      if (network !== undefined) {
        // The reap prunes the networks' places that no container has any more: not while this one takes its own.
        await (reaping = this.#open());
        attachment = await this.#networks!.attach({
          id,
          ...(spec.name !== undefined ? { name: spec.name } : {}),
          hostname,
          network,
          aliases: spec.networkAliases ?? [],
          hostsPath: paths.hosts,
          settingsPath: paths.networks,
        });
      }
      if (shim !== undefined) cgroupsCreating = Promise.resolve(shim.set);
      else {
        // Made while the files below are written; limits are in place before the helper starts.
        cgroupsCreating = CgroupSet.create(cgroupPlan, context);
        if (userns?.rootless === true) cgroupsCreating = cgroupsCreating.catch((e) => Promise.reject(rootlessCgroupError(e, userns.hostRoot.uid)));
        else {
          const planned = cgroupPlan.hierarchies.length;
          // Once every cgroup of a plan could be made here, the shim makes them (shimCgroups): this process has the right to.
          cgroupsCreating.then((set) => {
            if (set.entries.length === planned) this.#cgroupsWhole = true;
          }, () => undefined);
        }
        cgroupsCreating.catch(() => undefined);
      }
      // The shim appends them first thing, before any event of its own: it may record the command's end
      // (`die`) before this process hears it started. No file operation of this thread for them.
      const labels = { ...(source.config?.Labels ?? {}), ...(spec.labels ?? {}) };
      const about = { name: spec.name, image: spec.image, labels };
      const launchLines = launchEventLines(id, about, start);
      // Lines too long for one atomic append are appended here, before the helper runs.
      if (launchLines === undefined) announced = true;
      // Settled, not Promise.all: the cleanup must not remove the directory under a write still running.
      const etcFiles: HelperFile[] = [
        { path: paths.hostname, mode: 0o644, content: `${hostname}\n` },
        // On a network the attacher wrote it, and keeps it current.
        ...(attachment === undefined ? [{ path: paths.hosts, mode: 0o644, content: nsPlan.etc.kind === 'host' ? nsPlan.etc.hosts : hostsFile(hostname) }] : []),
        { path: paths.resolv, mode: 0o644, content: nsPlan.etc.kind === 'host' ? nsPlan.etc.resolv : resolvConf() },
      ];
      for (const written of await Promise.allSettled([
        launchLines === undefined ? announceLaunch(this.stateDir, id, about, start) : undefined,
        ...(shimFiles ? [] : etcFiles.map((f) => writeFile(f.path, f.content, { mode: f.mode }))),
      ])) {
        if (written.status === 'rejected') throw written.reason;
      }
      if (userns !== undefined && !userns.rootless) {
        // Bind-mounted as they are: the container's root must own them to write them, as it would without a user namespace.
        const { uid, gid } = userns.hostRoot;
        await Promise.all([paths.hostname, paths.hosts, paths.resolv].map((p) => chown(p, uid, gid)));
      }

      const cgroups = await cgroupsCreating;
      const readonlyCgroupfs = spec.privileged !== true;
      // Without a user namespace only the host's mounts decide it: shared between launches as DEFAULT_MOUNTS are (nothing downstream writes to a plan).
      const sharedCgroupfs = userns === undefined ? this.#cgroupfsShared.get(readonlyCgroupfs) : undefined;
      const cgroupfs =
        sharedCgroupfs ??
        cgroupfsPlan({
          hostMounts: this.#cgroups().mounts,
          cgroups: cgroups.entries,
          callerCgroups: cgroupHost.hierarchies,
          userns: userns !== undefined,
          readonly: readonlyCgroupfs,
        });
      if (userns === undefined) this.#cgroupfsShared.set(readonlyCgroupfs, cgroupfs);
      if (cgroupfs.skipped.length > 0) {
        debug('%s user namespace: cgroup v1 cannot be mounted, and no cgroup directory is known to bind for %s', short, cgroupfs.skipped.join(', '));
      }
      // As root without a user namespace: the shared lower's /etc must carry the image's owner. An image's
      // snapshots (it has lease targets) never change; a rootfs directory may.
      const etcLower = userns === undefined && process.getuid?.() === 0 ? await etcTargetsLower(this.root, source.lowers, source.targets !== undefined) : undefined;
      const plan: RunPlan = {
        id,
        target: paths.target,
        lowers: etcLower !== undefined ? [etcLower, ...source.lowers] : source.lowers,
        upper: paths.upper,
        work: paths.work,
        // An upper that will not be started again after a reboot need not survive a crash: an auto-removed
        // container's, or any whose records a reboot empties (a state directory on tmpfs, the default's /run).
        ...(spec.autoRemove === true || this.#stateBootBound ? { volatileUpper: true } : {}),
        namespaces: nsPlan.namespaces,
        ...(nsPlan.joins.length > 0 ? { joins: nsPlan.joins } : {}),
        ...(nsPlan.utsJoined ? {} : { hostname }),
        mounts: [
          ...defaultMounts(nsPlan, DEFAULT_MOUNTS),
          ...cgroupfs.mounts,
          ...(userns !== undefined ? deviceBindMounts(DEFAULT_DEVICES) : []),
          ...etcMounts(nsPlan, paths),
          ...mounts,
        ],
        devices: userns !== undefined ? [] : DEFAULT_DEVICES,
        symlinks: [...DEFAULT_DEV_SYMLINKS, ...cgroupfs.symlinks],
        masked: security.masked,
        readonlyPaths: [...security.readonlyPaths, ...cgroupfs.readonlyPaths],
        readonlyRootfs: spec.readonlyRootfs === true,
        cwd: proc.cwd,
        user,
        env: envList,
        // The init re-forks the command under a restart policy.
        init: spec.init !== false || restart.policy !== 'no',
        ...(security.caps !== undefined ? { caps: security.caps } : {}),
        noNewPrivileges: security.noNewPrivileges,
        ...(security.seccomp !== undefined ? { seccomp: security.seccomp } : {}),
        rlimits: security.rlimits,
        exitFile: paths.exit,
        cgroups: cgroups.dirs,
        ...(cgroups.oomFile !== undefined ? { oomFile: cgroups.oomFile } : {}),
        // Made here (a runtime's first container, a v2 host), an unlimited container's cgroups are the shim's to remove at its exit all the same.
        ...(shim !== undefined ? { cgroupSteps: shim.args } : !limited && userns?.rootless !== true && cgroups.entries.length > 0 ? { cgroupSteps: [CGROUP_RMDIR_AT_EXIT] } : {}),
        ...(shimFiles ? { files: etcFiles, dirs: shimDirs } : {}),
        ...(userns !== undefined ? { userns } : {}),
        cmd: proc.argv,
        ...(attachment !== undefined && attachment.enter === undefined ? { link: attachment.link } : {}),
        restartArgs: restartArgs(restart, paths.restart),
        events: { ...shimEvents(this.stateDir, spec.name, spec.image), ...(launchLines !== undefined ? { launch: launchLines } : {}) },
        ...(shimMade !== undefined ? { state: shimMade.state } : {}),
        ...(io.io !== undefined ? { io: io.io } : {}),
        ...(start && !gated ? {} : { startFifo: paths.fifo }),
        ...(publish !== undefined || attachment?.enter !== undefined ? { reportNetns: true } : {}),
        ...(detached ? {} : { dieWithParent: process.pid }),
      };

      const helperPath = await sealedHelperPath(this.#helperPath);
      throwIfAborted(signal, context);
      if (publish !== undefined) {
        forwarder = await Forwarder.bind({
          ports: publish.ports,
          detached,
          context,
          ...(this.#helperPath !== undefined ? { helperPath: this.#helperPath } : {}),
        });
      }
      // The records of what was launched, written by the shim before its `pid` line (so before the
      // record below, which others take a launch's end by): over the config descriptor, never argv (they hold the environment).
      const records: HelperFile[] = [
        // Owner-only: it holds the environment.
        {
          path: paths.config,
          mode: 0o600,
          content: JSON.stringify({
            ...configRecord(spec, source, proc, hostname, plan, { healthcheck: health, restart }),
            launch: launchRecord(plan, cgroupPlan, publish, nsPlan.holders),
          } satisfies LaunchedConfigRecord),
        },
      ];
      // The record, pid 1's pid and start time left as zeros: what only the launch knows (ports, once bound).
      // One literal, in the file's order: no spreading of a half into the other once the pid is known.
      const recordOf = (): ContainerRecord => {
        const created = isoTime();
        return {
          version: 1,
          id,
          ...(spec.name !== undefined ? { name: spec.name } : {}),
          created,
          pid: 0,
          pidStart: 0,
          ...(start ? { started: created } : {}),
          ownerPid: process.pid,
          ownerStart: this.#ownerStart,
          detached,
          rootfs: source.label,
          ...(spec.image !== undefined ? { image: spec.image } : {}),
          cmd: proc.argv,
          stdio,
          ...(cgroups.entries.length > 0 ? { cgroups: [...cgroups.entries] } : {}),
          ...(userns !== undefined ? { userns: { uidMap: userns.uidMap, gidMap: userns.gidMap, rootless: userns.rootless } } : {}),
          network: nsPlan.mode,
          ...(nsPlan.pod !== undefined ? { namespace: nsPlan.pod } : {}),
          ...(forwarder !== undefined ? { ports: [...forwarder.ports], forwarder: forwarder.record } : {}),
          ...(io.io?.tty !== undefined ? { tty: true } : {}),
          ...(io.io?.stdinFifo !== undefined ? { openStdin: true } : {}),
          ...(io.io?.log !== undefined ? { log: { maxSize: io.io.log.maxSize, maxFiles: io.io.log.maxFiles } } : {}),
          ...stopAndLabels(spec, source.config),
          ...(health !== undefined ? { healthcheck: true as const } : {}),
          ...(spec.autoRemove === true ? { autoRemove: true as const } : {}),
        };
      };
      // The shim writes it, pid 1's pid and start time put between the two halves (`--record`).
      const early = shimState ? recordOf() : undefined;
      const shimRecord = early !== undefined ? { path: paths.record, ...recordHalves(JSON.stringify(early)) } : undefined;
      // From here on the shim may have recorded the launch: a failed one records its removal.
      announced = true;
      const helper = await startHelper('run', runArgs({ ...plan, lateFiles: records, ...(shimRecord !== undefined ? { record: shimRecord } : {}) }), {
        stdio: io.stdio,
        detached,
        context,
        ...(plan.seccomp !== undefined ? { inputs: [plan.seccomp] } : {}),
        helperPath,
      });
      reaping ??= this.#open();

      let record: ContainerRecord;
      let steps: (Promise<unknown> | undefined)[] = [];
      try {
        const { pid, start: pidStart } = await raceAbort(helper.next('pid'), signal, context);
        // Made by the shim before this line: it has the right to.
        if (speculative) this.#cgroupsWhole = true;
        // The helper opened the namespace files before this line: their holders must still be the same processes.
        checkHolders(nsPlan.holders);
        if (forwarder !== undefined || attachment?.enter !== undefined) {
          const reported = await helper.next('netns');
          // A joined user namespace is not the shim's to report: the holder's is it.
          const ns = shared !== undefined ? { ...reported, user: reported.user ?? `/proc/${shared.pid}/ns/user` } : reported;
          if (attachment?.enter !== undefined) {
            const enter = ['--in-userns', `/proc/${attachment.enter.pid}/ns/user`, '--in-netns', `/proc/${attachment.enter.pid}/ns/net`];
            await raceAbort(
              runHelperOp('net', ['veth', ...enter, '--netns', ns.net, ...linkArgs(attachment.link)], {
                context,
                ...(this.#helperPath !== undefined ? { helperPath: this.#helperPath } : {}),
              }),
              signal,
              context,
            );
          }
          if (forwarder !== undefined) await raceAbort(forwarder.attach(forwardTarget(publish!, pid, processStartTime(pid) ?? 0, ns)), signal, context);
          if (gated) await openStartGate(paths.fifo);
        }
        record = early ?? recordOf();
        record.pid = pid;
        record.pidStart = pidStart ?? processStartTime(pid) ?? 0;
        steps = [
          // The record comes last (the shim wrote the others): others take a state directory without one for a launch in progress, and read nothing else in it.
          shimRecord === undefined ? writeJsonAtomic(paths.record, record) : undefined,
          helper.next(start ? 'started' : 'created'),
          leasing,
        ];
        await raceAbort(Promise.all(steps), signal, context);
      } catch (error) {
        // A healthy helper would wait for a start that never comes, or run on
        // unrecorded or aborted: killing the shim takes pid 1 with it (PR_SET_PDEATHSIG).
        helper.child.kill('SIGKILL');
        // The record's write may still be running: removing the state directory under it
        // fails with ENOTEMPTY, and that failure would hide this one.
        await Promise.allSettled([...steps, helper.exit]);
        if (shim !== undefined && error instanceof HelperError && error.step === 'make cgroup') {
          // Only where this process would have gone on without the cgroup: a stats-only hierarchy's directory.
          if (speculative && cgroupPlan.hierarchies.some((p) => p.dir === error.path && p.optional.length === p.controllers.length)) {
            this.#cgroupsShimRefused = true;
          }
          throw shimCgroupError(cgroupPlan, context, error.path ?? '', error.errnoCode, error);
        }
        if (error instanceof DocklessError) throw error;
        const code = (error as NodeJS.ErrnoException).code;
        throw new IOError(`${start ? 'run' : 'create'} container ${short}: write \`${paths.record}\`: ${code ?? String(error)}`, {
          cause: error,
          path: paths.record,
          ...(code !== undefined ? { errnoCode: code } : {}),
        });
      }
      const pid = record.pid;
      if (detached) helper.unref();
      const container = new Container({
        record,
        paths,
        helper,
        status: start ? 'running' : 'created',
        onRemove: async (c, record) => this.#forget(c, record),
        ...(this.#helperPath !== undefined ? { helperPath: this.#helperPath } : {}),
        detachRemoval: this.#detachRemoval,
        relaunch: this.#relauncher,
        healthcheck: health ?? null,
      });
      this.#owned.set(id, container);
      this.#specs.set(id, spec);
      cleanup = false;
      debug('%s %s pid %d', short, start ? 'started' : 'created', pid);
      // Forked once the launch has returned, while the caller typically waits for the container: not between its
      // last remove() and its exit (see standbyRemover). Not during the launch: a fork while the helper's spawn has
      // not exec'd yet copies this process's pages twice over.
      if (!detached && !this.#detachRemoval) setImmediate(() => standbyRemover(this.#helperPath));
      return container;
    } finally {
      if (cleanup) {
        // Before the state directory goes: without it the claim would look dead to others while still ours.
        if (named) await releaseName(this.stateDir, spec.name!, id);
        // The launch's own failure is what the caller gets; what the cleanup could not undo is only logged.
        const undone = await Promise.allSettled([
          attachment !== undefined ? this.#networks!.detach(id) : undefined,
          rm(paths.state, { recursive: true, force: true, maxRetries: 3 }),
          // A shim killed while it made the state directory leaves it under its `.new-` name.
          making !== undefined ? rm(join(this.stateDir, `.new-${making}`), { recursive: true, force: true }) : undefined,
          removeContainerDir(paths.bundle, userns, this.#helperPath),
          cgroupsCreating?.then((set) => set.remove(), () => undefined).catch(() => undefined),
          leasing?.then((lease) => lease.release(), () => undefined).catch(() => undefined),
          forwarder?.kill(),
        ]);
        if (held) await dropHold(this.root, snapshot!, `clone-${id}`, this.#helperPath).catch(() => undefined);
        for (const r of undone) if (r.status === 'rejected') debug('%s cleanup after a failed launch: %s', short, String(r.reason));
        if (announced) await appendEvent(this.stateDir, { action: 'remove', id, attributes: spec.name !== undefined ? { name: spec.name } : {} });
      }
      await (reaping ?? this.#open());
    }
  }

  readonly #relauncher: NonNullable<ContainerInit['relaunch']> = async (container, record, paths, context) => {
    const started = await relaunch(record, paths, { helperPath: this.#helperPath, ownerStart: this.#ownerStart, networks: this.#networks }, context);
    // It now dies with this process, so this runtime's disposal removes it.
    if (!record.detached) this.#owned.set(container.id, container);
    return started;
  };

  /** The host's cgroup layout and the cgroup mounts this process sees, both from one read of /proc (once per runtime). */
  #cgroups(): { host: CgroupHost; mounts: CgroupMount[] } {
    return (this.#cgroupLayout ??= detectCgroupLayout());
  }

  /** What only the audit finds: mounts left in this mount namespace, and image leases of containers that are gone. */
  async #pruneAudited(): Promise<void> {
    const store = this.#store;
    const found = await auditRuntime({
      root: this.root,
      stateDir: this.stateDir,
      cgroupHost: this.#cgroups().host,
      cgroupParent: this.#cgroupParent,
      ...(store !== undefined ? { leases: () => store.leases() } : {}),
    });
    // Deepest first: a mount below another is unmounted before it.
    for (const entry of found.filter((e) => e.orphaned).sort((a, b) => b.what.length - a.what.length)) {
      if (entry.kind === 'mount') await unmountDetached(entry.what).catch((e: unknown) => debug('prune: umount %s: %s', entry.what, String(e)));
      if (entry.kind === 'lease') await store?.releaseLease(entry.what).catch(() => false);
    }
  }

  /** Once per runtime, at its first look at the state directory: what owners that died left behind goes (reap.ts). */
  #open(): Promise<void> {
    this.#opened ??= this.#reap().then(
      (ids) => {
        if (ids.length > 0) debug('reaped the containers of dead owners %o', ids.map((id) => id.slice(0, 12)));
      },
      (error: unknown) => debug('reap: %s', String(error)),
    );
    return this.#opened;
  }

  /** Removes the orphaned containers, then dead pods and the network places neither has any more. */
  async #reap(): Promise<string[]> {
    const networks = this.#networks;
    const store = this.#store;
    const reaped = await reapOrphans({
      root: this.root,
      stateDir: this.stateDir,
      helperPath: this.#helperPath,
      ...(networks !== undefined ? { detach: (id: string) => networks.detach(id) } : {}),
      ...(store !== undefined ? { releaseLease: async (id: string) => void (await store.releaseLease(leaseId(id))) } : {}),
    });
    // What removals that died half-way left (trash.ts).
    const trashed = await Promise.all([
      emptyTrash(this.stateDir, removeDir),
      emptyTrash(join(this.root, 'containers'), (path) => removeContainerDir(path, undefined, this.#helperPath)),
    ]);
    if (trashed.flat().length > 0) debug('emptied the trash of dead removals %o', trashed.flat());
    const pods = await prunePods(this.stateDir);
    if (pods.length > 0) debug('removed dead pods %o', pods.map((id) => id.slice(0, 12)));
    await networks?.prune();
    return reaped;
  }

  async #forget(container: Container, record: ContainerRecord): Promise<void> {
    this.#owned.delete(container.id);
    this.#specs.delete(container.id);
    // Read, not remembered: a snapshot of the container (from any process) puts its layer under it. Until a
    // snapshot made the templates directory (once seen, always read), no config names one: one stat, no read.
    this.#snapshotsSeen ||= snapshotsMayExist(this.root);
    const config = this.#snapshotsSeen ? readJsonSync<ContainerConfigRecord>(this.pathsOf(container.id).config) : undefined;
    for (const snapshot of snapshotLayers(this.root, config?.process.lowers ?? [])) {
      await dropHold(this.root, snapshot, `clone-${container.id}`, this.#helperPath).catch((error: unknown) => {
        debug('%s remove: snapshot %s: %s', container.id.slice(0, 12), snapshot.slice(0, 12), String(error));
      });
    }
    // From the record the container holds: info() would read its restart count and health from disk.
    if (record.image !== undefined && this.#store !== undefined) {
      await this.#store.releaseLease(leaseId(container.id)).catch(() => false);
    }
    if (container.name !== undefined) await releaseName(this.stateDir, container.name, container.id);
    if (this.#networks !== undefined) await this.#networks.detach(container.id);
  }

  /**
   * Finds a container by id, unique id prefix or name, including containers of
   * other processes (through the state directory).
   *
   * @throws {@link NotFoundError} when no container matches.
   */
  async get(ref: string): Promise<Container> {
    await this.#open();
    let id = ref;
    if (!ID_RE.test(ref)) {
      const claim = NAME_RE.test(ref) ? await readNameClaim(this.stateDir, ref).catch(() => undefined) : undefined;
      if (claim !== undefined && ID_RE.test(claim.id)) id = claim.id;
      else {
        const ids = (await this.#ids()).filter((x) => x.startsWith(ref));
        if (ids.length !== 1 || ref.length === 0) throw containerNotFound(ref);
        id = ids[0]!;
      }
    }
    const owned = this.#owned.get(id);
    if (owned !== undefined && owned.status !== 'stopped') return owned;
    const paths = containerPaths(this.root, this.stateDir, id);
    const record = await readJson<ContainerRecord>(paths.record);
    if (owned !== undefined) {
      // Another process may have restarted it since: then it is that process's.
      if (record === undefined || record.pid === owned.pid) return owned;
      this.#owned.delete(id);
    }
    if (record === undefined) throw containerNotFound(ref);
    return new Container({
      record,
      paths,
      status: record.started !== undefined ? 'running' : 'created',
      onRemove: async (c, record) => this.#forget(c, record),
      ...(this.#helperPath !== undefined ? { helperPath: this.#helperPath } : {}),
      detachRemoval: this.#detachRemoval,
      relaunch: this.#relauncher,
    });
  }

  async #ids(): Promise<string[]> {
    const entries = await readdir(this.stateDir).catch(() => [] as string[]);
    return entries.filter((e) => ID_RE.test(e));
  }

  /** Every container in the state directory, of this process and of others, oldest first. */
  async list(): Promise<ContainerInfo[]> {
    await this.#open();
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
   * Removes every stopped container (also those left behind by a process that
   * died), and what crashes left without a container: state directories
   * without a record whose launching process is gone (with their data
   * directories and name files), and empty `dockless-<id>` cgroups below the
   * runtime's `cgroupParent`, on every cgroup hierarchy, that no container of
   * this state directory has. Running and created containers, and launches in
   * progress, are never touched. A cgroup or data directory with no state
   * directory at all is taken only once it is a minute old; runtimes that share
   * a cgroup parent should share a state directory, or one prunes the other's
   * stopped containers' cgroups. Pods (`Namespace`) whose holder is dead
   * (killed, or gone with the process that owned them) lose their records
   * and names too. Everything {@link Runtime.audit} calls orphaned goes:
   * containers that died with their owner (which every runtime also takes
   * when it first opens the state directory), mounts left in this mount
   * namespace (`umount -l`), image leases of containers that are gone. As
   * root, also host-wide: the bridges and firewall elements of networks whose
   * state directory was deleted without a `prune()` (any runtime's; the
   * `inet dockless` table's elements name the directory that owns each).
   *
   * @returns the ids of the containers removed, stopped or left behind.
   */
  async prune(): Promise<string[]> {
    const removed: string[] = await this.#reap();
    for (const id of await this.#ids()) {
      const container = await this.get(id).catch(() => undefined);
      if (container === undefined || container.status !== 'stopped') continue;
      // One container that cannot be removed (another process got there first, a busy
      // cgroup) does not keep the others and the leftovers from being pruned.
      try {
        await container.remove();
        removed.push(id);
      } catch (error) {
        debug('prune: %s not removed: %s', id.slice(0, 12), error instanceof Error ? error.message : String(error));
      }
    }
    const leftovers = await pruneLeftovers({
      root: this.root,
      stateDir: this.stateDir,
      cgroupHost: this.#cgroups().host,
      cgroupParent: this.#cgroupParent,
      helperPath: this.#helperPath,
    });
    await pruneNames(this.stateDir);
    const snapshots = await collectSnapshots(this.root, this.#helperPath);
    if (snapshots.length > 0) debug('prune: removed snapshots %o', snapshots);
    await this.#pruneAudited();
    const pods = await prunePods(this.stateDir);
    if (pods.length > 0) debug('prune: removed pods %o', pods);
    await this.#networks?.prune();
    await this.#networks?.pruneBridges?.();
    if (leftovers.cgroups.length > 0) debug('prune: removed cgroups %o', leftovers.cgroups);
    return [...removed, ...leftovers.containers];
  }

  /**
   * Everything dockless made on this host for this state directory, each
   * with whether it is *orphaned* (nothing will use or remove it but
   * {@link Runtime.prune}) and why: containers' state records, launches
   * without one, data (upper) directories, cgroups on every hierarchy, mounts
   * left in this mount namespace, names, pods, helper processes (pid 1s,
   * namespace holders, port forwarders), image leases, network places, veths
   * and firewall elements. A container that is not detached is orphaned once
   * its owner is gone (it died with it); what belongs to another live process
   * never is. A data directory with no state directory (a launch may be
   * making it) is orphaned once a minute old, as `prune()` takes it; a
   * `dockless-<id>` cgroup that no container of this state directory has is
   * listed but never orphaned: runtimes with other state directories share
   * the cgroup parent.
   *
   * @example
   * ```ts
   * // At the end of a test suite: nothing leaked.
   * const leaks = (await runtime.audit()).filter((e) => e.orphaned);
   * assert.deepEqual(leaks, []);
   * ```
   */
  async audit(): Promise<AuditEntry[]> {
    const store = this.#store;
    const [own, networks] = await Promise.all([
      auditRuntime({
        root: this.root,
        stateDir: this.stateDir,
        cgroupHost: this.#cgroups().host,
        cgroupParent: this.#cgroupParent,
        ...(store !== undefined ? { leases: () => store.leases() } : {}),
      }),
      this.#networks?.audit?.() ?? [],
    ]);
    return [...own, ...networks];
  }

  /**
   * Kills and removes every container this runtime created that is not
   * detached and not removed yet; detached containers, and containers of other
   * processes found with {@link Runtime.get}, are left as they are; snapshots
   * it made are released. For
   * `await using runtime = new Runtime()`.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    const results = await Promise.allSettled(
      [...this.#owned.values()].filter((c) => !c.info().detached).map((c) => c.remove({ force: true })),
    );
    // After the clones: a snapshot's layer goes with its last hold.
    results.push(...(await Promise.allSettled([...this.#snapshots].map((s) => s.release()))));
    await Promise.all([settleTrash(), settleTeardowns(this.stateDir)]);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length === 1) throw failed[0]!.reason;
    if (failed.length > 1) throw new AggregateError(failed.map((r) => r.reason as unknown), `dispose runtime: ${failed.length} containers could not be removed`);
  }

  /**
   * Freezes a container's filesystem as a snapshot that clones start from
   * ("warm once, fork many"): a running container is stopped first (its stop
   * signal, SIGKILL after `stopTimeoutMs`), then its upper directory, all it
   * wrote, becomes a read-only layer in place: renamed, not copied, not
   * committed. Each clone mounts it under its own upper dir, so a clone starts
   * in the time its command takes to start. The template keeps showing its
   * files (the layer is now its lower); removing it, or releasing the
   * snapshot, while clones exist keeps the layer until the last is removed.
   *
   * What is not in the upper directory is not in the snapshot: tmpfs mounts
   * start empty in clones; read-only bind mounts are shared; writable bind
   * mounts are refused unless `shareBindMounts` (every clone would write the
   * same host directory).
   *
   * @throws {@link InvalidArgumentError} when the container was not launched by this runtime and `options.spec` is not given.
   * @throws {@link InvalidStateError} when the container was removed, or has writable bind mounts and `shareBindMounts` is not set.
   * @throws {@link UnavailableError} with `processState: true`: CRIU cannot checkpoint here (the message says why).
   * @example
   * ```ts
   * const db = await runtime.run({ rootfs, cmd: ['redis-server'] });
   * // … load the fixture data …
   * await using tpl = await runtime.snapshot(db);
   * await using a = await runtime.clone(tpl);
   * ```
   */
  async snapshot(ref: Container | string, options: ContainerSnapshotOptions = {}): Promise<ContainerSnapshot> {
    const container = typeof ref === 'string' ? await this.get(ref) : ref;
    const spec = options.spec ?? this.#specs.get(container.id);
    const frozen = await freezeContainer(container, spec, this.pathsOf(container.id), options, { root: this.root, stateDir: this.stateDir });
    const template: ContainerSpec = { ...spec! };
    delete template.name;
    const handle: ContainerSnapshot = new ContainerSnapshot({
      id: frozen.id,
      layer: frozen.layer,
      container: container.id,
      spec: template,
      clone: (overrides, cloneOptions) => this.clone(frozen.id, cloneSpec(template, overrides, `clone snapshot ${frozen.id.slice(0, 12)}`), cloneOptions),
      release: async () => {
        this.#snapshots.delete(handle);
        await dropHold(this.root, frozen.id, frozen.hold, this.#helperPath);
      },
    });
    this.#snapshots.add(handle);
    return handle;
  }

  /**
   * A new container from a snapshot: `spec` as for {@link Runtime.run}, its
   * root the snapshot's template's root with the snapshot's layer on top
   * (`snapshot.clone()` fills `spec` in from the template's). Its writes go to
   * its own upper dir; no other clone nor the template sees them.
   *
   * @throws {@link NotFoundError} when the snapshot no longer exists.
   * @throws {@link InvalidArgumentError} when `spec`'s root or user namespace is not the template's.
   * @throws what {@link Runtime.run} throws.
   */
  clone(snapshot: ContainerSnapshot | string, spec: ContainerSpec, options: CloneOptions = {}): Promise<Container> {
    const id = typeof snapshot === 'string' ? snapshot : snapshot.id;
    return this.#launch(spec, options.start !== false, options.signal, id);
  }

  /** What `Namespace.create()` needs of the runtime: its helper, the user namespace of a rootless pod, and its outbound helper choice. @internal */
  podSetup(): { helperPath: string | undefined; userns: UsernsPlan | undefined; outbound: RootlessOutbound } {
    this.#usernsHost ??= readUsernsHost();
    const userns = planUserns(this.#userns, this.#usernsHost);
    return { helperPath: this.#helperPath, userns: userns?.rootless === true ? userns : undefined, outbound: this.#outbound };
  }

  /**
   * The events of every container of this state directory, from every process
   * (as `docker events`; see {@link ContainerEventAction}), in the order they
   * were recorded: past ones from `since` on, then new ones (polled every 100 ms)
   * until `until` passes or `signal` aborts.
   *
   * @throws {@link InvalidArgumentError} for an unknown filter or event name, or a bad time.
   * @example
   * ```ts
   * const ac = new AbortController();
   * for await (const e of runtime.events({ filters: { event: ['die'] }, signal: ac.signal })) {
   *   console.log(e.id.slice(0, 12), e.action, e.attributes.exitCode);
   * }
   * ```
   */
  events(options: EventsOptions = {}): AsyncIterable<ContainerEvent> {
    return readEvents(this.stateDir, options);
  }

  /**
   * What this runtime finds on the host (cgroup layout, rootless or not, the
   * kernel, the helper and its version) and where it keeps its data, as
   * `docker info` reports them.
   */
  info(): Promise<RuntimeInfo> {
    return hostInfo(this.root, this.stateDir, this.#helperPath);
  }

  /** The snapshots a container runs on (a clone's, or a template's own), top-most first; for commit. @internal */
  async snapshotsOf(id: string): Promise<string[]> {
    const config = await readJson<ContainerConfigRecord>(this.pathsOf(id).config).catch(() => undefined);
    return snapshotLayers(this.root, config?.process.lowers ?? []);
  }

  /** The paths of a container; for tests and tools. @internal */
  pathsOf(id: string): ContainerPaths {
    return containerPaths(this.root, this.stateDir, id);
  }
}

/** The record's labels and stop settings: the spec's over the image's. */
function stopAndLabels(spec: ContainerSpec, config: ContainerSource['config']): Pick<ContainerRecord, 'labels' | 'stopSignal' | 'stopTimeoutMs'> {
  const labels = { ...(config?.Labels ?? {}), ...(spec.labels ?? {}) };
  const stopSignal = spec.stopSignal ?? config?.StopSignal ?? undefined;
  return {
    ...(Object.keys(labels).length > 0 ? { labels } : {}),
    ...(stopSignal !== undefined && stopSignal !== 'SIGTERM' ? { stopSignal } : {}),
    ...(spec.stopTimeoutMs !== undefined ? { stopTimeoutMs: spec.stopTimeoutMs } : {}),
  };
}

/** Where a record made with zeros for pid 1 (see #launch) has them, in its JSON. */
const PID_SLOT = '"pid":0,"pidStart":0';

/**
 * A container record's JSON either side of its pid and start time, as the shim's `--record` takes it
 * (`head` ends and `tail` begins with a comma). Found by text: no string value holds an unescaped quote,
 * and no key before them is `pid`.
 */
function recordHalves(text: string): { head: string; tail: string } {
  const at = text.indexOf(PID_SLOT);
  return { head: text.slice(0, at), tail: text.slice(at + PID_SLOT.length) };
}

function leaseId(containerId: string): string {
  return `container-${containerId}`;
}
