/**
 * The record a container leaves in its state directory besides `state.json`:
 * `config.json`, what inspect, the file copies and exec need (the process as it
 * was set up, under `process`), built from the launch's plan.
 *
 * @module
 */

import type { EffectiveProcess } from './image-config.js';
import type { RunPlan } from './run-args.js';
import { seccompText } from './security.js';
import type { ContainerSource } from './source.js';
import type { ContainerSpec } from './spec.js';
import type { ContainerConfigRecord, ProcessRecord } from './state.js';
import type { HealthPlan, RestartPlan } from './lifecycle-types.js';

/** What an exec into the container needs to know of its process. */
function processRecord(plan: RunPlan, lowers: string[]): ProcessRecord {
  return {
    env: [...plan.env],
    cwd: plan.cwd,
    user: { uid: plan.user.uid, gid: plan.user.gid, groups: [...plan.user.groups] },
    lowers,
    // Joined ones too: an exec joins pid 1's, whichever they are. A user namespace is joined through --userns.
    namespaces: [...plan.namespaces, ...(plan.joins ?? []).map(([type]) => type).filter((type) => type !== 'user')],
    ...(plan.caps !== undefined ? { caps: plan.caps.toString(16).padStart(16, '0') } : {}),
    noNewPrivileges: plan.noNewPrivileges === true,
    ...(plan.seccomp !== undefined ? { seccomp: seccompText(plan.seccomp) } : {}),
    rlimits: [...(plan.rlimits ?? [])],
  };
}

/** What `inspect()` and the file copies need to know of the container's configuration. */
export function configRecord(
  spec: ContainerSpec,
  source: ContainerSource,
  proc: EffectiveProcess,
  hostname: string,
  plan: RunPlan,
  lifecycle: { healthcheck?: HealthPlan | undefined; restart: RestartPlan } = { restart: { policy: 'no', maxRetries: 0 } },
): ContainerConfigRecord {
  const entrypoint = spec.entrypoint ?? source.config?.Entrypoint ?? undefined;
  const labels = { ...(source.config?.Labels ?? {}), ...(spec.labels ?? {}) };
  return {
    version: 1,
    hostname,
    process: processRecord(plan, source.lowers),
    ...(entrypoint != null && entrypoint.length > 0 ? { entrypoint: [...entrypoint] } : {}),
    cmd: proc.argv.slice(entrypoint?.length ?? 0),
    ...(proc.user !== undefined ? { user: proc.user } : {}),
    ...(Object.keys(labels).length > 0 ? { labels } : {}),
    mounts: (spec.mounts ?? []).map((m) => ({
      type: m.type,
      source: m.type === 'bind' ? m.source : 'tmpfs',
      target: m.target,
      readonly: m.readonly === true,
    })),
    ...(spec.resources !== undefined ? { resources: { ...spec.resources } } : {}),
    // A restart policy needs the init, whatever the spec said.
    init: spec.init !== false || lifecycle.restart.policy !== 'no',
    privileged: spec.privileged === true,
    readonlyRootfs: spec.readonlyRootfs === true,
    ...(spec.cgroupParent !== undefined ? { cgroupParent: spec.cgroupParent } : {}),
    ...(spec.capAdd !== undefined ? { capAdd: [...spec.capAdd] } : {}),
    ...(spec.capDrop !== undefined ? { capDrop: [...spec.capDrop] } : {}),
    ...(lifecycle.healthcheck !== undefined ? { healthcheck: lifecycle.healthcheck } : {}),
    ...(lifecycle.restart.policy !== 'no' ? { restart: lifecycle.restart } : {}),
  };
}
