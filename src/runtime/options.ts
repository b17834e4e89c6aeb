/**
 * The options of `Runtime` and of its launches.
 *
 * @module
 */

import type { ImageStoreCore as ImageStore } from '../store/index.js';
import type { AbortError } from '../errors.js';
import type { ContainerSpec, NetworkSetting } from './spec.js';
import type { UsernsSetting } from './userns.js';
import type { NetworkAttacher } from './network-attach.js';
import type { LogOptions } from './logs.js';

/** Options of `Runtime`. */
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
  /**
   * Delete removed containers' directories in a helper process of their own that
   * outlives this one, instead of in this process: `remove()` returns as before (the
   * directories are gone from their places), and neither this process's end nor
   * disposing the runtime waits for the deletion. For a program that removes a
   * container and exits (the `dockless` command). While that process runs, `audit()`
   * counts what it deletes as being removed by a live process; if it dies, the next
   * runtime to open the state directory, or `prune()`, deletes what it left.
   * A rootless container's upper directory is always deleted in this process.
   * @default false: the deletion runs in this process, and disposal waits for it
   */
  detachRemoval?: boolean;
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
  /**
   * The network of containers whose spec has no `network`; see {@link ContainerSpec.network}.
   * @default 'none'
   */
  network?: NetworkSetting;
  /**
   * How containers join `'bridge'` and user-defined networks. The `Runtime`
   * exported by dockless brings its own; without one, such a spec is an
   * `InvalidArgumentError`.
   * @default the network engine of dockless's `Runtime`
   */
  networkAttacher?: NetworkAttacher;
  /**
   * What gives a rootless container outbound network access (and reaches the
   * host's addresses): `'auto'` takes slirp4netns, else pasta, whichever is
   * installed (Debian 12's pasta cannot reach the host's own addresses, so
   * slirp4netns comes first); `'none'` leaves the container without.
   * Inbound (published ports) is dockless's own forwarder either way.
   * @default 'auto'
   */
  rootlessOutbound?: RootlessOutbound;
  /**
   * The log of containers whose spec has no `log`; see {@link ContainerSpec.log}.
   * @default { maxSize: 20 MiB, maxFiles: 5 }
   */
  log?: LogOptions | false;
}

/** The outbound helpers a rootless container's network can use; see {@link RuntimeOptions.rootlessOutbound}. */
export type RootlessOutbound = 'auto' | 'slirp4netns' | 'pasta' | 'none';

/** Options of `Runtime.create` and `Runtime.run`. */
export interface LaunchOptions {
  /**
   * Cancels the launch: the promise rejects with {@link AbortError} and nothing
   * is left behind (the half-made container is killed and removed). Aborting
   * once the container is returned does nothing to it.
   */
  signal?: AbortSignal;
}
