/**
 * The checks of a {@link ContainerSpec} that come before anything is written:
 * its shape, its names, and the user's mounts turned into the helper's form.
 *
 * @module
 */

import { constants as osConstants } from 'node:os';
import { isAbsolute } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { shown } from '../helper/index.js';
import type { HelperMount } from './defaults.js';
import type { ContainerSpec, MountSpec } from './spec.js';
import { checkSpecStrings } from './spec-strings.js';

/** What a container name may be, as Docker allows. */
export const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

/** A user's mount in the helper's form, checked. */
export function userMount(mount: MountSpec, index: number): HelperMount {
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

/** Refuses a spec that cannot describe a container, naming the field. */
export function validateSpec(spec: ContainerSpec): void {
  if (spec === null || typeof spec !== 'object') throw new InvalidArgumentError('container spec: expected an object');
  checkSpecStrings(spec);
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
    throw new InvalidArgumentError(`container spec: cwd must be an absolute path, got ${shown(spec.cwd)}`);
  }
  if (spec.name !== undefined && !NAME_RE.test(spec.name)) {
    throw new InvalidArgumentError(`container spec: name ${shown(spec.name)} must match ${NAME_RE.source}`);
  }
  if (spec.stdio !== undefined && !['pipe', 'inherit', 'ignore'].includes(spec.stdio)) {
    throw new InvalidArgumentError(`container spec: stdio must be 'pipe', 'inherit' or 'ignore', got \`${String(spec.stdio)}\``);
  }
  for (const [key, value] of Object.entries(spec.env ?? {})) {
    if (key === '' || key.includes('=') || key.includes('\0') || typeof value !== 'string' || value.includes('\0')) {
      throw new InvalidArgumentError(`container spec: env ${shown(key)} is not a valid variable`);
    }
  }
  if (spec.hostname !== undefined && !/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,63})$/.test(spec.hostname)) {
    throw new InvalidArgumentError(`container spec: hostname ${shown(spec.hostname)} is not a valid hostname`);
  }
  for (const [key, value] of Object.entries(spec.labels ?? {})) {
    if (key === '' || typeof value !== 'string') throw new InvalidArgumentError(`container spec: label ${shown(key)} must be a non-empty name with a string value`);
  }
  if (spec.stopTimeoutMs !== undefined && (typeof spec.stopTimeoutMs !== 'number' || !Number.isFinite(spec.stopTimeoutMs) || spec.stopTimeoutMs < 0)) {
    throw new InvalidArgumentError('container spec: stopTimeoutMs must be a number of milliseconds, 0 or more');
  }
  const sig = spec.stopSignal;
  if (sig !== undefined && !(typeof sig === 'number' ? Number.isInteger(sig) && sig > 0 && sig < 65 : typeof sig === 'string' && sig in osConstants.signals)) {
    throw new InvalidArgumentError(`container spec: stopSignal ${shown(String(sig))} is not a signal (a name such as 'SIGQUIT', or a number)`);
  }
}

