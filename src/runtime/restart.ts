/**
 * Restart policies, decided here and carried out by the helper: the
 * container's init forks the command again in the same container (same
 * namespaces, same upper directory) with Docker's backoff, and the shim, its
 * parent on the host, records each restart in `restart.json` and the events
 * file. No process of the caller's is needed, so a detached container is
 * restarted after its owner exited.
 *
 * @module
 */

import { InvalidArgumentError } from '../errors.js';
import type { RestartPlan, RestartPolicy } from './lifecycle-types.js';
import { readJson } from './state.js';

export type { RestartPlan, RestartPolicy } from './lifecycle-types.js';

/**
 * Checks and normalises `spec.restart`.
 *
 * @throws {@link InvalidArgumentError} for an unknown policy or a bad `maxRetries`.
 */
export function restartPlan(setting: RestartPolicy | undefined): RestartPlan {
  if (setting === undefined) return { policy: 'no', maxRetries: 0 };
  if (typeof setting === 'string') {
    if (!['no', 'on-failure', 'always', 'unless-stopped'].includes(setting)) {
      throw new InvalidArgumentError(`container spec: restart must be 'no', 'on-failure', 'always' or 'unless-stopped', got \`${String(setting)}\``);
    }
    return { policy: setting, maxRetries: 0 };
  }
  if (typeof setting !== 'object' || setting === null || setting.policy !== 'on-failure') {
    throw new InvalidArgumentError("container spec: restart must be a policy name or { policy: 'on-failure', maxRetries }");
  }
  const max = setting.maxRetries ?? 0;
  if (!Number.isSafeInteger(max) || max < 0 || max > 0x7fffffff) {
    throw new InvalidArgumentError('container spec: restart.maxRetries must be an integer, 0 or more');
  }
  return { policy: 'on-failure', maxRetries: max };
}

/** The helper's `run` options for a restart policy (none for `'no'`). */
export function restartArgs(plan: RestartPlan, file: string): string[] {
  if (plan.policy === 'no') return [];
  return ['--restart', plan.policy, ...(plan.maxRetries > 0 ? ['--restart-max', String(plan.maxRetries)] : []), '--restart-file', file];
}

/** What the shim writes to `restart.json` at each death and restart. */
export interface RestartRecord {
  /** Restarts so far. */
  restartCount: number;
  /** The command ended and waits out the backoff before it is started again. */
  restarting: boolean;
  /** When this record was written (ms since the epoch): with `restarting` false, when the command was started again. */
  time: number;
  /** While restarting: how the command ended. */
  exitCode?: number;
  signal?: number;
}

/** The restart record, or undefined when the container was never restarted. */
export function readRestartRecord(path: string): Promise<RestartRecord | undefined> {
  return readJson<RestartRecord>(path);
}
