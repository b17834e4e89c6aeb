/**
 * A spec's `network` and `networkAliases`, checked: which network the
 * attacher is asked for, if any.
 *
 * @module
 */

import { InvalidArgumentError } from '../errors.js';
import { shown } from '../helper/index.js';
import type { NetworkRef } from './network-attach.js';
import type { ContainerSpec } from './spec.js';

const ALIAS_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

/**
 * The network to attach `spec`'s container to, or `undefined` for none
 * (`'none'`, the default).
 *
 * @throws {@link InvalidArgumentError} for a malformed `network` or alias, a
 *   mode this runtime cannot give, or a network without an attacher.
 */
export function networkOf(spec: ContainerSpec, hasAttacher: boolean): 'bridge' | NetworkRef | undefined {
  const aliases = spec.networkAliases ?? [];
  if (!Array.isArray(aliases) || !aliases.every((a) => typeof a === 'string' && ALIAS_RE.test(a))) {
    throw new InvalidArgumentError(`container spec: networkAliases must be names matching ${ALIAS_RE.source}`);
  }
  const network = spec.network ?? 'none';
  if (network === 'none') {
    if (aliases.length > 0) throw new InvalidArgumentError('container spec: networkAliases needs a network');
    return undefined;
  }
  if (network === 'bridge' || (typeof network === 'object' && network !== null && 'name' in network && typeof network.name === 'string')) {
    if (!hasAttacher) {
      throw new InvalidArgumentError(`container spec: network ${shown(typeof network === 'string' ? network : network.name)} is not available: this runtime has no network attacher`);
    }
    return network;
  }
  if (network === 'host' || (typeof network === 'object' && network !== null && 'container' in network)) {
    throw new InvalidArgumentError(`container spec: network ${shown(typeof network === 'string' ? network : 'container')} is not available`);
  }
  throw new InvalidArgumentError(`container spec: network must be 'none', 'host', 'bridge', a Network or { container }, got ${shown(String(network))}`);
}
