/**
 * Namespaces and networks that outlive one container: {@link Namespace} (pods),
 * and the engine behind `runtime.createNetwork()` and the `'bridge'` network,
 * with the public {@link Network}.
 *
 * @module
 */

export { Namespace } from './namespace.js';
export type { NamespaceInfo, NamespaceOptions, NamespaceRemoveOptions } from './namespace.js';
export { DEFAULT_NETWORK, NetworkEngine } from './network-engine.js';
export type { ConnectTarget, CreateNetworkOptions, NetworkEngineOptions } from './network-engine.js';
export { Network } from './network.js';
export type { ConnectOptions, NetworkHost, RemoveNetworkOptions } from './network.js';
export { HOST_ALIAS } from './hosts.js';
export type { MemberRecord, NetworkRecord } from './network-state.js';
