import { spawn } from 'node:child_process';
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
    // Making the copy spawns a process (`seal`, which also checks that the copy
    // executes), a fork of this whole Node process: more than a `run`
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
  let copy: string | undefined;
  try {
    const lines = child.stdout![Symbol.asyncIterator]();
    let out = '';
    // Its lines, one at a time: the fd number of its copy, then the check's answer.
    const line = async (): Promise<string> => {
      while (!out.includes('\n')) {
        const next = await lines.next();
        if (next.done === true) break;
        out += String(next.value);
      }
      const at = out.indexOf('\n');
      const first = at < 0 ? out : out.slice(0, at);
      out = at < 0 ? '' : out.slice(at + 1);
      return first.trim();
    };
    const n = await line();
    if (!/^\d+$/.test(n) || child.pid === undefined) throw new Error(`seal: unexpected output ${JSON.stringify(n)}`);
    fd = openSync(`/proc/${child.pid}/fd/${n}`, 'r');
    copy = `/proc/${process.pid}/fd/${fd}`;
    // Executing through this process's fd table may be refused (a non-dumpable process); then the plain path.
    // The `seal` process tries it from a child of its own, as a child of this process would: no second spawn of this one.
    child.stdin!.write(`${copy}\n`);
    const answer = await line();
    if (answer !== 'ok') throw new Error(`seal: ${copy} does not execute (${answer || 'no answer'})`);
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    throw error;
  } finally {
    child.stdin!.end();
    // Nothing more is read from it: left paused, it would hold `close` back.
    child.stdout!.destroy();
    await exited;
  }
  return copy;
}
