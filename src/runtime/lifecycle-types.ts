/**
 * The resolved restart policy and healthcheck, as `config.json` keeps them
 * (types only, so that the state records and the code that acts on them do
 * not import each other).
 *
 * @module
 */

/** A healthcheck with every default resolved (milliseconds), as `config.json` keeps it. */
export interface HealthPlan {
  /** The command to exec. */
  cmd: string[];
  interval: number;
  timeout: number;
  retries: number;
  startPeriod: number;
  startInterval: number;
}

/** A restart policy in the helper's terms. */
export interface RestartPlan {
  policy: 'no' | 'on-failure' | 'always' | 'unless-stopped';
  /** on-failure: the most restarts, 0 for no limit. */
  maxRetries: number;
}

