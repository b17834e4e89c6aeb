/**
 * Changing the resource limits of a container, as `docker update`: written
 * into its existing cgroups, and into its records so that `inspect()` shows
 * them and a restart makes its cgroups with them.
 *
 * @module
 */

import createDebug from 'debug';
import { InvalidArgumentError, InvalidStateError, NotFoundError } from '../errors.js';
import { CgroupSet, type CgroupRecord } from './cgroups/cgroup-set.js';
import { replanResources, validateResources, type CgroupPlan } from './cgroups/policy.js';
import type { ContainerResources } from './cgroups/resources.js';
import { readLaunchRecords } from './relaunch.js';
import { writeJsonAtomic, type ContainerPaths, type ContainerRecord } from './state.js';

const debug = createDebug('dockless:runtime');

/**
 * Checks `changes` on top of a container's `current` limits and writes them into
 * its cgroups (`entries`, made from plan `saved`); on failure the previous
 * limits are written back. Shared by `Container.update()` and `dockless-runtime update`.
 *
 * @returns every limit the container now has, and the cgroup plan to keep for a restart.
 * @throws {@link InvalidArgumentError} for a bad or refused value, {@link NotFoundError}
 *   for a limit the container has no cgroup for.
 */
export function updateCgroupLimits(
  entries: readonly CgroupRecord[],
  saved: CgroupPlan,
  current: ContainerResources | undefined,
  changes: ContainerResources,
  context: string,
): { resources: ContainerResources; plan: CgroupPlan } {
  if (changes === null || typeof changes !== 'object' || Array.isArray(changes)) {
    throw new InvalidArgumentError(`${context}: resources must be an object`);
  }
  const given = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined)) as ContainerResources;
  if (Object.keys(given).length === 0) throw new InvalidArgumentError(`${context}: no resource to update`);
  const resources: ContainerResources = { ...current, ...given };
  try {
    validateResources(resources);
  } catch (error) {
    throw new InvalidArgumentError(`${context}: ${(error as Error).message.replace(/^container spec: /, '')}`, { cause: error });
  }
  let plan: CgroupPlan;
  try {
    plan = replanResources(saved, resources);
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
    throw new NotFoundError(`${context}: ${error.message}`, { cause: error });
  }
  const cgroups = new CgroupSet(entries);
  try {
    cgroups.update(plan, context);
  } catch (error) {
    try {
      cgroups.update(saved, context);
    } catch (e) {
      debug('%s: writing the previous limits back: %s', context, String(e));
    }
    throw error;
  }
  return { resources, plan };
}

/**
 * Applies `changes` on top of the container's current limits (see
 * {@link updateCgroupLimits}), then records them in `config.json` (its config and its launch record, in one write).
 *
 * @returns every limit the container now has.
 * @throws {@link InvalidArgumentError} for a bad or refused value, {@link InvalidStateError}
 *   for a container without a launch record, {@link NotFoundError} for a limit it has no cgroup for.
 */
export async function updateResources(
  record: ContainerRecord,
  paths: ContainerPaths,
  changes: ContainerResources,
  context: string,
): Promise<ContainerResources> {
  const { config, launch } = await readLaunchRecords(paths);
  if (config === undefined || launch === undefined) {
    throw new InvalidStateError(`${context}: container has no launch record (made by an older dockless, or by another user)`);
  }
  const { resources, plan } = updateCgroupLimits(record.cgroups ?? [], launch.cgroups, config.resources, changes, context);
  await writeJsonAtomic(paths.config, { ...config, resources, launch: { ...launch, cgroups: plan } }, 0o600);
  return resources;
}
