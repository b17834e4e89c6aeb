import { InvalidArgumentError } from '../errors.js';
import type { ContainerConfig } from '../oci/index.js';
import { DEFAULT_PATH } from './defaults.js';
import type { ContainerSpec } from './spec.js';

/** What a container runs, after the image config's defaults met the spec's overrides. */
export interface EffectiveProcess {
  /** Entrypoint followed by cmd. */
  argv: string[];
  /** `NAME=value` pairs in order, later ones winning. */
  env: Record<string, string>;
  cwd: string;
  /** The user spec to resolve, when one was given by the spec or the image. */
  user?: string;
  /** Ports the image declares, e.g. `80/tcp`. */
  exposedPorts: string[];
}

/**
 * Applies an image config's defaults under a spec, as `docker run` does:
 * `entrypoint` from the spec replaces the image's and drops the image's Cmd;
 * `cmd` from the spec replaces the image's Cmd; `env` is the image's Env with
 * the spec's on top; `cwd` and `user` fall back to WorkingDir and User.
 *
 * @throws {@link InvalidArgumentError} when neither the spec nor the image gives a command.
 */
export function effectiveProcess(spec: ContainerSpec, config: ContainerConfig | undefined, hostname: string): EffectiveProcess {
  const entrypoint = spec.entrypoint ?? config?.Entrypoint ?? [];
  const cmd = spec.cmd ?? (spec.entrypoint !== undefined ? [] : (config?.Cmd ?? []));
  const argv = [...entrypoint, ...cmd];
  if (argv.length === 0 || argv[0] === '') {
    throw new InvalidArgumentError(
      `container spec: no command: give cmd${spec.image !== undefined ? ` (image ${spec.image} has no Entrypoint or Cmd)` : ''}`,
    );
  }
  const env: Record<string, string> = { PATH: DEFAULT_PATH, HOSTNAME: hostname };
  for (const pair of config?.Env ?? []) {
    const eq = pair.indexOf('=');
    if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  Object.assign(env, spec.env);
  const user = spec.user ?? (config?.User ? config.User : undefined);
  return {
    argv,
    env,
    cwd: spec.cwd ?? (config?.WorkingDir ? config.WorkingDir : '/'),
    ...(user !== undefined ? { user } : {}),
    exposedPorts: Object.keys(config?.ExposedPorts ?? {}),
  };
}
