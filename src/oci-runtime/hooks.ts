/**
 * OCI hooks: each program runs with the container's state JSON on its stdin,
 * is killed after its timeout, and fails the operation when it fails. The
 * runtime's hooks run here; `createContainer` hooks are run by the helper's
 * pid 1 between the container's mounts and its pivot_root (see
 * {@link createHookArgs}); `startContainer` hooks run in the container
 * (its namespaces, root and cgroups, through the helper's `exec`).
 *
 * @module
 */

import { spawn } from 'node:child_process';
import { InvalidStateError } from '../errors.js';
import { sealedHelperPath, spawnHelper } from '../helper/index.js';
import { execArgs } from '../runtime/index.js';
import type { OciHook } from './config.js';
import type { OciRecord, OciState } from './state.js';

/**
 * Runs `hooks` in order.
 *
 * @param kind - the hook kind, for messages (`createRuntime`).
 * @param warn - for the kinds whose failures the runtime-spec makes warnings
 *   (`poststart`, `poststop`): each failure goes here and the next hook runs.
 * @throws {@link InvalidStateError} without `warn`, when one exits non-zero, is killed, or cannot be run.
 */
export async function runHooks(hooks: readonly OciHook[], kind: string, state: OciState, warn?: (message: string) => void): Promise<void> {
  for (const [i, hook] of hooks.entries()) {
    try {
      await runHook(hook, i, kind, state);
    } catch (error) {
      if (warn === undefined) throw error;
      warn((error as Error).message);
    }
  }
}

async function runHook(hook: OciHook, i: number, kind: string, state: OciState): Promise<void> {
  const args = hook.args !== undefined && hook.args.length > 0 ? hook.args : [hook.path];
  const child = spawn(hook.path, args.slice(1), {
    argv0: args[0]!,
    env: Object.fromEntries((hook.env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])),
    stdio: ['pipe', 'inherit', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-2000);
  });
  child.stdin!.on('error', () => undefined);
  child.stdin!.end(JSON.stringify(state));
  const timer = hook.timeout !== undefined ? setTimeout(() => child.kill('SIGKILL'), hook.timeout * 1000) : undefined;
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, s) => resolve([c, s]));
  }).catch((cause: unknown) => {
    throw new InvalidStateError(`hooks.${kind}[${i}]: run \`${hook.path}\`: ${(cause as Error).message}`, { cause });
  });
  if (timer !== undefined) clearTimeout(timer);
  if (code !== 0) {
    const how = signal !== null ? `killed by ${signal}${hook.timeout !== undefined ? ` (timeout ${hook.timeout} s?)` : ''}` : `exit code ${code}`;
    throw new InvalidStateError(`hooks.${kind}[${i}]: \`${hook.path}\` failed: ${how}${stderr !== '' ? `: ${stderr.trim()}` : ''}`);
  }
}

/**
 * The helper's `run` options for `createContainer` hooks: `--hooks-fd FD` (where
 * pid 1 reads the state once the runtime's hooks have run), then per hook
 * `--hook PATH TIMEOUT` (0: none) and its `--hook-arg`s and `--hook-env`s.
 * The arguments travel over the helper's config descriptor, never argv.
 *
 * @example
 * ```ts
 * createHookArgs([{ path: '/usr/bin/env', args: ['env'], timeout: 5 }], 6);
 * // ['--hooks-fd', '6', '--hook', '/usr/bin/env', '5', '--hook-arg', 'env']
 * ```
 */
export function createHookArgs(hooks: readonly OciHook[], fd: number): string[] {
  const args = ['--hooks-fd', String(fd)];
  for (const hook of hooks) {
    args.push('--hook', hook.path, String(hook.timeout ?? 0));
    for (const a of hook.args ?? []) args.push('--hook-arg', a);
    for (const e of hook.env ?? []) args.push('--hook-env', e);
  }
  return args;
}

function hookFailure(kind: string, i: number, hook: OciHook, how: string): InvalidStateError {
  return new InvalidStateError(`hooks.${kind}[${i}]: \`${hook.path}\` failed: ${how}`);
}

/**
 * Runs `hooks` in order inside container `record` (pid 1 created, not yet
 * started): its namespaces, root and cgroups, as root of the container with
 * the runtime's capabilities there; `path` is resolved in the container's root.
 *
 * @throws {@link InvalidStateError} when one exits non-zero, is killed, or cannot be run.
 */
export async function runHooksInContainer(hooks: readonly OciHook[], kind: string, state: OciState, record: OciRecord): Promise<void> {
  for (const [i, hook] of hooks.entries()) {
    const args = hook.args !== undefined && hook.args.length > 0 ? hook.args : [hook.path];
    const helper = spawnHelper(
      'exec',
      execArgs({
        id: record.id,
        pid: record.pid,
        pidStart: record.pidStart,
        namespaces: record.namespaces,
        userns: record.userns,
        cgroups: record.cgroups.map((c) => c.dir),
        cwd: '/',
        user: { uid: 0, gid: 0, groups: [] },
        env: hook.env ?? [],
        noNewPrivileges: false,
        rlimits: [],
        // The helper's exec searches no PATH for an absolute path: argv[0] is the path itself.
        cmd: [hook.path, ...args.slice(1)],
      }),
      { stdio: ['pipe', 1, 2], context: `hooks.${kind}[${i}]`, helperPath: await sealedHelperPath() },
    );
    helper.child.stdin?.on('error', () => undefined);
    helper.child.stdin?.end(JSON.stringify(state));
    // The hook dies with the exec shim (PR_SET_PDEATHSIG).
    const timer = hook.timeout !== undefined ? setTimeout(() => helper.child.kill('SIGKILL'), hook.timeout * 1000) : undefined;
    try {
      const exited = await helper.next('exited').catch(async (cause: unknown) => {
        const exit = await helper.exit;
        if (exit.signal === 'SIGKILL') throw hookFailure(kind, i, hook, `killed by SIGKILL (timeout ${hook.timeout} s?)`);
        throw helper.failure ?? cause;
      });
      if (exited.code !== 0) throw hookFailure(kind, i, hook, `exit code ${exited.code}`);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }
}
