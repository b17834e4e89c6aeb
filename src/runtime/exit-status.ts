/**
 * A container's exit as the helper reports it (`exited` line or exit file),
 * turned into the {@link ExitStatus} that `wait()` gives.
 *
 * @module
 */

import { constants as osConstants } from 'node:os';
import type { ExitedStatus } from '../helper/index.js';
import type { ExitStatus } from './container-types.js';
import type { ExitRecord } from './state.js';

/** The name of signal number `signo`, or `null` for none. */
function signalName(signo: number | undefined): NodeJS.Signals | null {
  if (signo === undefined || signo === 0) return null;
  for (const [name, value] of Object.entries(osConstants.signals)) {
    if (value === signo) return name as NodeJS.Signals;
  }
  return null;
}

/** The {@link ExitStatus} of an `exited` status line or an exit file. */
export function exitFromStatus(status: ExitedStatus | ExitRecord): ExitStatus {
  return { exitCode: status.code, signal: signalName(status.signal), oomKilled: status.oom === true };
}
