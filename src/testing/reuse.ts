/**
 * `reuse`: one container shared by every worker process of a test run. A
 * cross-process lock (a lock file in the runtime's state directory, taken over
 * when its holder died) makes the first asker create it and the others wait;
 * a `ready` record is written only once its wait strategy passed; each user
 * holds a file naming its pid and start time, and the last live user to let go
 * removes the container (a worker that died without letting go no longer counts).
 *
 * @module
 */

import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError, NotReadyError, type Container, type Runtime } from '../index.js';

/** How a started container is shared; see `StartContainerOptions.reuse`. */
export interface ReuseOptions {
  /** The name under which workers share it. @default a hash of the start options and the wait strategy */
  key?: string;
  /** Keep the container when the last user lets go, for the next run to find. @default false */
  keep?: boolean;
}

/** The record of a shared container that passed its wait. */
interface ReadyRecord {
  id: string;
}

/** Field 22 of /proc/<pid>/stat: with the pid, it names a process, which a reused pid does not. */
function startTime(pid: number): Promise<string | undefined> {
  return readFile(`/proc/${pid}/stat`, 'utf8').then(
    (stat) => stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19],
    () => undefined,
  );
}

async function alive(owner: string): Promise<boolean> {
  const [pid, start] = owner.trim().split(' ');
  if (pid === undefined || start === undefined || !/^\d+$/.test(pid)) return false;
  return (await startTime(Number(pid))) === start;
}

/** This process as the owner files name it. */
async function me(): Promise<string> {
  return `${process.pid} ${(await startTime(process.pid)) ?? 0}`;
}

/** The key of a set of start options: a hash of what makes one container differ from another. */
export function reuseKey(options: object, waitDescription: string | undefined): string {
  const json = JSON.stringify({ options, waitDescription }, (key, value: unknown) => (['reuse', 'wait', 'store', 'pullOptions', 'pullPolicy'].includes(key) ? undefined : value));
  return createHash('sha256').update(json).digest('hex').slice(0, 32);
}

/** The directory of a shared container, under the runtime's state directory. */
export function reuseDir(runtime: Runtime, key: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(key)) throw new InvalidArgumentError(`startContainer: reuse key \`${key}\` must be 1 to 128 letters, digits, '_', '.' or '-'`);
  return join(runtime.stateDir, 'testing-reuse', key);
}

/** Runs `fn` holding the directory's lock, taking it over from a holder that died. */
export async function withLock<T>(dir: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  await mkdir(join(dir, 'users'), { recursive: true });
  const lock = join(dir, 'lock');
  const self = await me();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await writeFile(lock, self, { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        await mkdir(join(dir, 'users'), { recursive: true });
        continue;
      }
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = await readFile(lock, 'utf8').catch(() => undefined);
    // An empty file is a lock being written, not a dead holder.
    if (holder !== undefined && holder !== '' && !(await alive(holder))) {
      const aside = `${lock}.stale-${randomBytes(6).toString('hex')}`;
      if (await rename(lock, aside).then(() => true, () => false)) {
        // Another process may have taken it over first and made a fresh lock: that one is put back.
        if ((await readFile(aside, 'utf8').catch(() => holder)) !== holder) await rename(aside, lock).catch(() => undefined);
        else await rm(aside, { force: true });
      }
      continue;
    }
    if (Date.now() > deadline) {
      throw new NotReadyError(`reuse \`${dir}\`: lock held by process ${holder?.split(' ')[0] ?? '?'} for more than ${timeoutMs} ms`, { reason: 'timeout', timeoutMs });
    }
    await sleep(20);
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}

/** The running container of the ready record, if there is one. */
export async function readyContainer(runtime: Runtime, dir: string): Promise<Container | undefined> {
  const record = await readFile(join(dir, 'ready.json'), 'utf8').then((t) => JSON.parse(t) as ReadyRecord, () => undefined);
  if (record === undefined) return undefined;
  const container = await runtime.get(record.id).catch(() => undefined);
  if (container?.status === 'running') return container;
  await container?.remove({ force: true }).catch(() => undefined);
  await rm(join(dir, 'ready.json'), { force: true });
  return undefined;
}

/** Writes the ready record, whole or not at all. */
export async function markReady(dir: string, id: string): Promise<void> {
  const tmp = join(dir, `ready.json.${randomBytes(6).toString('hex')}`);
  await writeFile(tmp, JSON.stringify({ id } satisfies ReadyRecord));
  await rename(tmp, join(dir, 'ready.json'));
}

/** Adds this process as a user; returns its user file. */
export async function addUser(dir: string): Promise<string> {
  const file = join(dir, 'users', `${process.pid}-${randomBytes(6).toString('hex')}`);
  await writeFile(file, await me());
  return file;
}

/**
 * Lets go of a user file (under the lock); the last live user removes the
 * container and the directory, unless `keep`.
 */
export async function release(runtime: Runtime, dir: string, userFile: string, keep: boolean, timeoutMs: number): Promise<void> {
  const last = await withLock(dir, timeoutMs, async () => {
    await rm(userFile, { force: true });
    let users = 0;
    for (const name of await readdir(join(dir, 'users')).catch(() => [] as string[])) {
      const owner = await readFile(join(dir, 'users', name), 'utf8').catch(() => '');
      if (await alive(owner)) users++;
      else await rm(join(dir, 'users', name), { force: true });
    }
    if (users > 0 || keep) return false;
    const container = await readyContainer(runtime, dir);
    await container?.remove({ force: true });
    await rm(join(dir, 'ready.json'), { force: true });
    return true;
  });
  // Left behind when another process took the lock meanwhile: it is then that process's directory.
  if (last) await rmdir(join(dir, 'users')).then(() => rmdir(dir)).catch(() => undefined);
}
