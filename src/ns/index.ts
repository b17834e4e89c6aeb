/**
 * Namespaces that outlive one container: {@link Namespace} (pods).
 *
 * @module
 */

export { Namespace } from './namespace.js';
export type { NamespaceInfo, NamespaceOptions, NamespaceRemoveOptions } from './namespace.js';
