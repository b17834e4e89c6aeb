/**
 * The teardowns of removed containers' mount namespaces still running: a shim
 * reports its exit, then drops pid 1's mount namespace (the unmounts) itself
 * or in a child of its own, which ends by itself (native/run.c, `teardown` in
 * native/PROTOCOL.md). `runtime.audit()` waits briefly for those of its state
 * directory and lists the ones that outlast the wait, so that a suite's last
 * audit sees a settled host and names every process dockless left.
 *
 * @module
 */

import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TeardownStatus } from '../helper/index.js';
import { processStartTime } from '../util/index.js';

/** One teardown child: its container and its process. */
export interface Teardown {
  id: string;
  pid: number;
  start: number;
}

/** By state directory; an entry goes once its process is seen gone. */
const running = new Map<string, Teardown[]>();

/** How long {@link settleTeardowns} waits by default: a teardown takes 1–7 ms, more on a filesystem with much to sync. */
export const TEARDOWN_WAIT_MS = 2000;

/** How many are kept before the ended ones are looked for. */
const PRUNE_AT = 256;

/** The noted teardowns whose process this process saw end: gone without a read of /proc. */
const ended = new WeakSet<Teardown>();

const alive = (t: Teardown) => !ended.has(t) && processStartTime(t.pid) === t.start;

/**
 * Notes the teardown a container's shim reported (`status`), if any, for {@link settleTeardowns}.
 * `exited` resolves true once the teardown's process is known gone (the forked shim, its own teardown,
 * seen to exit): from then on it is not read for in /proc, as every one would be when the noted ones are pruned.
 */
export function noteTeardown(stateDir: string, id: string, status: TeardownStatus | undefined, exited?: Promise<boolean>): void {
  if (status === undefined) return;
  stateDir = resolve(stateDir);
  let noted = running.get(stateDir);
  if (noted === undefined) running.set(stateDir, (noted = []));
  // The ones that ended go once there are many: a long-lived process that never audits keeps few,
  // and a removal reads /proc for none of them (each read costs the caller's CPU, at every removal).
  if (noted.length >= PRUNE_AT) {
    noted = noted.filter(alive);
    running.set(stateDir, noted);
  }
  const teardown = { id, pid: status.pid, start: status.start };
  noted.push(teardown);
  void exited?.then((gone) => void (gone && ended.add(teardown)), () => undefined);
}

/** @internal The teardowns noted for `stateDir` and not yet seen gone, oldest first. */
export function notedTeardowns(stateDir: string): readonly Teardown[] {
  return running.get(resolve(stateDir)) ?? [];
}

/**
 * Waits up to `waitMs` for the teardowns noted for `stateDir` to end.
 *
 * @returns those still running then.
 */
export async function settleTeardowns(stateDir: string, waitMs = TEARDOWN_WAIT_MS): Promise<Teardown[]> {
  const deadline = performance.now() + waitMs;
  stateDir = resolve(stateDir);
  for (;;) {
    // Read again each time: a removal meanwhile may have noted one more.
    const still = (running.get(stateDir) ?? []).filter(alive);
    if (still.length === 0) running.delete(stateDir);
    else running.set(stateDir, still);
    if (still.length === 0 || performance.now() >= deadline) return still;
    await sleep(5);
  }
}
