/**
 * Freezing a container's processes (`pause()`): the v1 `freezer` controller
 * (`freezer.state`) or, on the unified hierarchy, `cgroup.freeze`, which every
 * non-root v2 cgroup has without a controller to enable.
 *
 * @module
 */

import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidStateError, NotFoundError } from '../../errors.js';
import { cgroupError, type CgroupRecord } from './cgroup-set.js';

/** How long {@link setFrozen} waits for the kernel to report the cgroup frozen or thawed. */
const FREEZE_TIMEOUT_MS = 10_000;

/** Where a container's freezer is. */
interface Freezer {
  /** The file written to freeze or thaw. */
  control: string;
  version: 1 | 2;
}

/** The container's freezer: a v1 cgroup with the freezer controller, else its v2 cgroup; undefined when it has neither. */
function freezerOf(cgroups: readonly CgroupRecord[]): Freezer | undefined {
  const v1 = cgroups.find((c) => c.version === 1 && c.controllers.includes('freezer'));
  if (v1 !== undefined) return { control: posix.join(v1.dir, 'freezer.state'), version: 1 };
  const v2 = cgroups.find((c) => c.version === 2);
  if (v2 !== undefined) return { control: posix.join(v2.dir, 'cgroup.freeze'), version: 2 };
  return undefined;
}

function readState(f: Freezer): string | undefined {
  try {
    if (f.version === 1) return readFileSync(f.control, 'utf8').trim();
    // cgroup.freeze says what was asked; cgroup.events says what the kernel has done.
    const events = readFileSync(posix.join(posix.dirname(f.control), 'cgroup.events'), 'utf8');
    return /^frozen 1$/m.test(events) ? 'FROZEN' : readFileSync(f.control, 'utf8').trim() === '1' ? 'FREEZING' : 'THAWED';
  } catch {
    return undefined;
  }
}

/**
 * Whether the container's processes are frozen or being frozen, read live from
 * the cgroup (so every process sees the same answer); false without a freezer.
 */
export function isFrozen(cgroups: readonly CgroupRecord[]): boolean {
  const f = freezerOf(cgroups);
  if (f === undefined) return false;
  const state = readState(f);
  return state === 'FROZEN' || state === 'FREEZING';
}

/**
 * Freezes (`frozen: true`) or thaws the container's cgroup and waits until the
 * kernel reports it done.
 *
 * @throws {@link NotFoundError} when the container has no freezer cgroup.
 * @throws {@link InvalidStateError} when the kernel does not finish in time.
 */
export async function setFrozen(cgroups: readonly CgroupRecord[], frozen: boolean, context: string): Promise<void> {
  const f = freezerOf(cgroups);
  if (f === undefined) {
    throw new NotFoundError(`${context}: the container has no freezer cgroup (cgroups not available to the process that created it)`);
  }
  const value = f.version === 1 ? (frozen ? 'FROZEN' : 'THAWED') : frozen ? '1' : '0';
  const want = frozen ? 'FROZEN' : 'THAWED';
  const deadline = Date.now() + FREEZE_TIMEOUT_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      // v1: a write of FROZEN that finds a task it cannot freeze yet leaves FREEZING; writing again retries it.
      await writeFile(f.control, value, { flag: fsConstants.O_WRONLY });
    } catch (cause) {
      throw cgroupError(context, `write \`${value}\` to`, f.control, cause);
    }
    if (readState(f) === want) return;
    if (Date.now() > deadline) {
      const state = readState(f) ?? 'unreadable';
      // A pause that did not complete must not leave the container half-frozen (and reported paused).
      if (frozen) await writeFile(f.control, f.version === 1 ? 'THAWED' : '0', { flag: fsConstants.O_WRONLY }).catch(() => undefined);
      throw new InvalidStateError(`${context}: \`${f.control}\` still ${state} after ${FREEZE_TIMEOUT_MS} ms`);
    }
    await sleep(Math.min(1 << attempt, 50));
  }
}

/** The host pids in the container's cgroup (all of them: a container's cgroups hold the same processes); undefined without cgroups. */
export async function cgroupPids(cgroups: readonly CgroupRecord[]): Promise<number[] | undefined> {
  for (const c of cgroups) {
    const text = await readFile(posix.join(c.dir, 'cgroup.procs'), 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    return text.split('\n').filter(Boolean).map(Number).filter((n) => Number.isInteger(n) && n > 0);
  }
  return undefined;
}
