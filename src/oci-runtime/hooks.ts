/**
 * OCI hooks: each program runs with the container's state JSON on its stdin,
 * is killed after its timeout, and fails the operation when it fails.
 *
 * @module
 */

import { spawn } from 'node:child_process';
import { InvalidStateError } from '../errors.js';
import type { OciHook } from './config.js';
import type { OciState } from './state.js';

/**
 * Runs `hooks` in order.
 *
 * @param kind - the hook kind, for messages (`createRuntime`).
 * @throws {@link InvalidStateError} when one exits non-zero, is killed, or cannot be run.
 */
export async function runHooks(hooks: readonly OciHook[], kind: string, state: OciState): Promise<void> {
  for (const [i, hook] of hooks.entries()) {
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
}
