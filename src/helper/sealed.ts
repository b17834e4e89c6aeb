import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import createDebug from 'debug';
import { ForkServer } from './fork-server.js';
import { locateHelper } from './locate.js';

const debug = createDebug('dockless:helper');

/** Per helper path: the path of its sealed copy, made once per process. */
const copies = new Map<string, Promise<string>>();
/** Helper paths asked for once: the copy is made on the second start. */
const askedOnce = new Set<string>();

/**
 * A path that executes a sealed in-memory copy of the helper (a memfd held open
 * by this process, reached as `/proc/<pid>/fd/<n>`), so that `run` need not copy
 * itself on every start (see `seal` in native/PROTOCOL.md); the helper's own
 * path on the first call (the copy is made on the second) and when no copy can
 * be had. Either way the helper that `run` leaves running
 * is a sealed copy: `run` seals itself when it is not one.
 *
 * @throws {@link NotFoundError} when the helper is not there or not executable.
 */
export function sealedHelperPath(override?: string): Promise<string> {
  const path = locateHelper(override);
  // The server's children are sealed copies already (see fork-server.ts), and once an
  // op was spawned in its stead the next forkable op starts it.
  if (ForkServer.running(path) || ForkServer.expected(path)) return Promise.resolve(path);
  let copy = copies.get(path);
  if (copy === undefined) {
    // Making the copy spawns two processes (`seal`, then a check that it
    // executes), each a fork of this whole Node process: more than a `run`
    // sealing itself costs. A program that starts one container never gets
    // that back, so the first start seals itself and the second makes the copy.
    if (!askedOnce.has(path)) {
      askedOnce.add(path);
      return Promise.resolve(path);
    }
    copy = makeCopy(path).catch((error: unknown) => {
      debug('no sealed copy of %s, each run seals itself: %s', path, error instanceof Error ? error.message : String(error));
      return path;
    });
    copies.set(path, copy);
  }
  return copy;
}

async function makeCopy(path: string): Promise<string> {
  const child = spawn(path, ['seal'], { stdio: ['pipe', 'pipe', 'ignore', 'ignore'], env: {} });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  let fd: number | undefined;
  try {
    let out = '';
    for await (const chunk of child.stdout!) {
      out += String(chunk);
      if (out.includes('\n')) break;
    }
    const n = out.trim();
    if (!/^\d+$/.test(n) || child.pid === undefined) throw new Error(`seal: unexpected output ${JSON.stringify(out)}`);
    fd = openSync(`/proc/${child.pid}/fd/${n}`, 'r');
  } finally {
    child.stdin!.end();
    await exited;
  }
  const copy = `/proc/${process.pid}/fd/${fd}`;
  // Executing through this process's fd table may be refused (a non-dumpable process); then the plain path.
  const check = spawnSync(copy, ['version'], { stdio: ['ignore', 'pipe', 'ignore'], env: {} });
  if (check.status !== 0) {
    closeSync(fd);
    throw new Error(`seal: ${copy} does not execute (${check.error?.message ?? `exit ${check.status}`})`);
  }
  return copy;
}
