/**
 * The `RUN` step: a command in a container of the image so far; what it
 * changes is the step's layer.
 *
 * @module
 */

import createDebug from 'debug';
import { BuildError } from '../../errors.js';
import type { Digest } from '../../oci/index.js';
import { ownerInContainer } from '../../runtime/index.js';
import type { Lease } from '../../store/index.js';
import { cacheKey, type CacheKeyInput } from '../cache.js';
import { contextual } from '../error-context.js';
import { pruneUpper, RUNTIME_MOUNT_POINTS, storeLayer, storeUpperInUserns, type StoredLayer } from '../layer-from-upper.js';
import { mapsMoreThanRoot, withMappers } from '../../helper/index.js';
import type { PlannedStep } from '../recipe.js';
import { runEnv, throwIfAborted, type Adoption, type BuildState, type StepHost, type StepOutcome } from '../state.js';
import type { BuildStepInfo } from '../types.js';

const debug = createDebug('dockless:build');

const OUTPUT_TAIL = 4096;

/** Runs a `RUN` step, or finds its layer in the cache. */
export function runStep(
  host: StepHost,
  state: BuildState,
  planned: Extract<PlannedStep, { kind: 'run' }>,
  base: CacheKeyInput,
  lease: Lease,
  context: string,
  info: BuildStepInfo,
): Promise<StepOutcome> {
  const env = runEnv(state);
  const key: Digest = cacheKey({
    ...base,
    args: { ...Object.fromEntries([...state.args].filter((e): e is [string, string] => e[1] !== undefined)) },
    options: { env: planned.env, user: planned.user, cwd: planned.cwd, network: 'none', mounts: planned.mounts },
  });
  return host.layerStep(state, key, planned.instruction, lease, () => runCommand(host, state, planned, { ...env, ...planned.env }, lease, context, info));
}

async function runCommand(
  host: StepHost,
  state: BuildState,
  planned: Extract<PlannedStep, { kind: 'run' }>,
  env: Record<string, string>,
  lease: Lease,
  context: string,
  info: BuildStepInfo,
): Promise<StoredLayer> {
  const image = await host.image(state, lease);
  const runtime = host.runtime();
  const container = await runtime.run({
    image: image.digest,
    entrypoint: [],
    cmd: planned.argv,
    env,
    ...(planned.user !== undefined ? { user: planned.user } : {}),
    ...(planned.cwd !== undefined ? { cwd: planned.cwd } : {}),
    mounts: planned.mounts,
    stdio: 'pipe',
    // Its output is streamed as build events; a build step keeps no log (as Docker's).
    log: false,
  });
  let adoption: Adoption | undefined;
  try {
    container.stdin?.end();
    let tail = '';
    const collect = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const data = chunk.toString();
      tail = (tail + data).slice(-OUTPUT_TAIL);
      host.emit({ type: 'step-output', ...info, stream, data });
    };
    container.stdout?.on('data', collect('stdout'));
    container.stderr?.on('data', collect('stderr'));
    const { signal } = host.settings;
    const onAbort = (): void => void container.kill('SIGKILL').catch(() => undefined);
    signal?.addEventListener('abort', onAbort, { once: true });
    let exit;
    try {
      exit = await container.wait();
      await Promise.all([ended(container.stdout), ended(container.stderr)]);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    throwIfAborted(signal, context);
    if (exit.exitCode !== 0) {
      const how = exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${exit.exitCode}`;
      const lastLine = tail.trimEnd().split('\n').at(-1) ?? '';
      throw contextual(new BuildError(`${context}: the command ${how}${lastLine !== '' ? `: ${lastLine}` : ''}`, {
        step: info.step,
        instruction: info.instruction,
        ...(info.line !== undefined ? { line: info.line } : {}),
        exitCode: exit.exitCode,
        output: tail,
      }));
    }
    const upper = runtime.pathsOf(container.id).upper;
    const view = await host.view(state, lease);
    const placeholders = [...RUNTIME_MOUNT_POINTS, ...planned.mounts.map((m) => m.target)];
    const { userns } = container.info();
    const rootless = userns?.rootless === true;
    let stored: StoredLayer;
    if (rootless && mapsMoreThanRoot(userns)) {
      // Files of its subordinate ids may be closed to the caller (0600): read as root of the container's namespace.
      stored = await storeUpperInUserns(host.store, upper, {
        ...host.layerOptions(lease),
        userns: withMappers(userns),
        lowers: view.layers,
        placeholders,
      });
    } else {
      const xattrs = await pruneUpper(upper, view, placeholders, host.settings.helperPath);
      // Nor can a rootless one stand for the snapshot: its files of other ids than the caller's could not be removed again.
      adoption = rootless ? undefined : host.startAdoption(upper);
      // A rootless container's upper dir holds host ids: the layer has the container's.
      stored = await storeLayer(host.store, upper, { ...host.layerOptions(lease), mapOwner: rootless ? ownerInContainer(userns) : undefined, xattrs });
    }
    if (adoption !== undefined) await host.adopt(state, stored, upper, adoption);
    return stored;
  } finally {
    await container.remove({ force: true }).catch((err: unknown) => debug('%s: remove container: %s', context, (err as Error).message));
  }
}

async function ended(stream: NodeJS.ReadableStream | null): Promise<void> {
  if (stream === null) return;
  const s = stream as NodeJS.ReadableStream & { readableEnded?: boolean; destroyed?: boolean };
  if (s.readableEnded || s.destroyed) return;
  await new Promise<void>((resolve) => {
    s.once('end', resolve);
    s.once('close', resolve);
    s.once('error', () => resolve());
  });
}
