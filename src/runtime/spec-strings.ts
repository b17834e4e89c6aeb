/**
 * The strings of a container spec and of an image config that end up in the
 * helper's argv and in the workload's `execve`: each is refused with an
 * {@link InvalidArgumentError} naming its field (never a bare Node error, never
 * the whole value echoed back) before anything is written to disk.
 *
 * @module
 */

import { InvalidArgumentError } from '../errors.js';
import {
  HOST_NAME_MAX,
  PATH_MAX,
  checkExecSize,
  checkExecString,
  ownStackLimit,
  shown,
  type ExecString,
} from '../helper/index.js';
import type { EffectiveProcess } from './image-config.js';
import type { ContainerSpec } from './spec.js';

const CONTEXT = 'container spec';
/** `LOGIN_NAME_MAX` without its NUL: the longest user or group name. */
const LOGIN_NAME_MAX = 255;
/** The longest container name (the pattern in runtime.ts allows 128 characters). */
const NAME_MAX = 128;

function checkText(field: string, value: unknown, max?: { bytes: number; what: string }, context = CONTEXT): void {
  if (typeof value !== 'string') return;
  if (value.includes('\0')) throw new InvalidArgumentError(`${context}: ${field} contains a NUL byte: ${shown(value)}`);
  const bytes = Buffer.byteLength(value);
  if (max !== undefined && bytes > max.bytes) {
    throw new InvalidArgumentError(`${context}: ${field} is ${bytes} bytes, longer than ${max.what} (${max.bytes}): ${shown(value)}`);
  }
}

function checkPath(field: string, value: unknown, context = CONTEXT): void {
  checkText(field, value, { bytes: PATH_MAX - 1, what: 'PATH_MAX' }, context);
}

/**
 * Checks the paths of `new Runtime()`'s options: no NUL byte, within `PATH_MAX`.
 *
 * @throws {@link InvalidArgumentError} naming the option.
 */
export function checkRuntimePaths(options: { root?: unknown; stateDir?: unknown; helperPath?: unknown }): void {
  for (const key of ['root', 'stateDir', 'helperPath'] as const) checkPath(key, options[key], 'runtime options');
}

function checkUser(field: string, value: unknown): void {
  checkText(field, value);
  if (typeof value !== 'string') return;
  for (const part of value.split(':')) {
    checkText(field, part, { bytes: LOGIN_NAME_MAX, what: 'LOGIN_NAME_MAX' });
  }
}

function checkEnvEntry(key: string, value: unknown): void {
  const field = `env ${shown(key)}`;
  if (key === '' || key.includes('=') || key.includes('\0')) {
    throw new InvalidArgumentError(`${CONTEXT}: ${field} is not a valid variable name`);
  }
  if (typeof value === 'string') checkExecString(CONTEXT, field, `${key}=${value}`);
}

/**
 * Checks the spec's own strings (before anything else looks at them): no NUL
 * byte in `rootfs`, `cmd`, `entrypoint`, `env`, `cwd`, `user`, `hostname`,
 * `name` or a mount's `source`/`target`; a hostname of at most
 * `HOST_NAME_MAX` bytes; paths within `PATH_MAX`; each argument and variable
 * within `MAX_ARG_STRLEN`; a tmpfs `size` and `mode` that are numbers the
 * kernel takes. Fields of the wrong type are left to the spec's other checks.
 *
 * @throws {@link InvalidArgumentError} naming the field.
 */
export function checkSpecStrings(spec: ContainerSpec): void {
  if (spec === null || typeof spec !== 'object') return;
  checkPath('rootfs', spec.rootfs);
  checkText('image', spec.image, { bytes: PATH_MAX - 1, what: 'PATH_MAX' });
  checkPath('cwd', spec.cwd);
  checkUser('user', spec.user);
  checkText('hostname', spec.hostname, { bytes: HOST_NAME_MAX, what: 'HOST_NAME_MAX' });
  checkText('name', spec.name, { bytes: NAME_MAX, what: 'the longest container name' });
  checkText('cgroupParent', spec.cgroupParent, { bytes: PATH_MAX - 1, what: 'PATH_MAX' });
  for (const field of ['capAdd', 'capDrop'] as const) {
    const list = spec[field];
    if (!Array.isArray(list)) continue;
    list.forEach((cap: unknown, i) => checkText(`${field}[${i}]`, cap, { bytes: NAME_MAX, what: 'the longest capability name' }));
  }
  if (spec.rlimits !== null && typeof spec.rlimits === 'object') {
    for (const key of Object.keys(spec.rlimits)) checkText('rlimits key', key, { bytes: 32, what: 'the longest resource name' });
  }
  for (const field of ['entrypoint', 'cmd'] as const) {
    const list = spec[field];
    if (!Array.isArray(list)) continue;
    list.forEach((arg: unknown, i) => {
      if (typeof arg === 'string') checkExecString(CONTEXT, `${field}[${i}]`, arg);
    });
  }
  if (spec.env !== null && typeof spec.env === 'object') {
    for (const [key, value] of Object.entries(spec.env)) checkEnvEntry(key, value);
  }
  if (Array.isArray(spec.mounts)) {
    spec.mounts.forEach((mount: unknown, i) => {
      if (mount === null || typeof mount !== 'object') return;
      const m = mount as Record<string, unknown>;
      checkPath(`mounts[${i}].target`, m.target);
      checkPath(`mounts[${i}].source`, m.source);
      if (m.type !== 'tmpfs') return;
      if (m.size !== undefined && (typeof m.size !== 'number' || !Number.isSafeInteger(m.size) || m.size <= 0)) {
        throw new InvalidArgumentError(`${CONTEXT}: mounts[${i}].size must be a positive whole number of bytes, got ${shown(String(m.size))}`);
      }
      if (m.mode !== undefined && (typeof m.mode !== 'number' || !Number.isInteger(m.mode) || m.mode < 0 || m.mode > 0o7777)) {
        throw new InvalidArgumentError(`${CONTEXT}: mounts[${i}].mode must be a file mode from 0 to 0o7777, got ${shown(String(m.mode))}`);
      }
    });
  }
}

/**
 * Checks what the container will run once the image config's defaults are in
 * (a hostile image's Entrypoint, Cmd, Env, WorkingDir and User included): no
 * NUL byte, each string within `MAX_ARG_STRLEN`, paths within `PATH_MAX`.
 *
 * @throws {@link InvalidArgumentError} naming the field.
 */
export function checkProcessStrings(proc: EffectiveProcess): void {
  proc.argv.forEach((arg, i) => checkExecString(CONTEXT, `command argument ${i} (entrypoint and cmd)`, arg));
  for (const [key, value] of Object.entries(proc.env)) checkEnvEntry(key, value);
  checkPath('cwd (or the image\'s WorkingDir)', proc.cwd);
  checkUser('user (or the image\'s User)', proc.user);
}

/**
 * Refuses a command and environment too large for the workload's own `execve`
 * inside the container: the limit is a quarter of its stack limit (the spec's
 * `rlimits.stack`, else the one it inherits from this process).
 *
 * @param env `NAME=value` strings, exactly as the workload gets them.
 * @throws {@link InvalidArgumentError} giving the size, the limit and the fields.
 */
export function checkExecEnvelope(spec: ContainerSpec, argv: readonly string[], env: readonly string[]): void {
  const stackSoft = spec.rlimits?.stack?.soft ?? ownStackLimit();
  const file = argv[0] ?? '';
  let filename = Buffer.byteLength(file) + 1;
  if (!file.includes('/')) {
    const path = env.find((e) => e.startsWith('PATH='))?.slice(5) ?? '';
    filename += Math.max(1, ...path.split(':').map((dir) => Buffer.byteLength(dir))) + 1;
  }
  const strings = (field: string, values: readonly string[]): ExecString[] => values.map((value) => ({ field, value }));
  checkExecSize(
    CONTEXT,
    [
      { field: 'cmd', strings: strings('cmd', argv) },
      { field: 'env', strings: strings('env', env) },
    ],
    stackSoft,
    filename,
  );
}
