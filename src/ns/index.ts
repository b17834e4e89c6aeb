/**
 * Networks (and, with pods, namespaces that outlive a container): the engine
 * behind `runtime.createNetwork()` and the `'bridge'` network, and the public
 * {@link Network}.
 *
 * @module
 */

export { DEFAULT_NETWORK, NetworkEngine } from './network-engine.js';
export type { ConnectTarget, CreateNetworkOptions, NetworkEngineOptions } from './network-engine.js';
export { Network } from './network.js';
export type { ConnectOptions, NetworkHost, RemoveNetworkOptions } from './network.js';
export { HOST_ALIAS } from './hosts.js';
export type { MemberRecord, NetworkRecord } from './network-state.js';
