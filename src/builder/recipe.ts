/**
 * A build's recipe: where it starts and its steps. {@link LayerBuilder}'s
 * chained methods and the Dockerfile front-end both produce one; the
 * executor runs it. A step is planned (its variables expanded) only when the
 * build reaches it, because `ARG`s and `ENV`s of the steps before decide
 * its words.
 *
 * @module
 */

import type { ContainerConfig, ImageConfig } from '../oci/index.js';
import type { MountSpec } from '../runtime/index.js';
import type { BuildSettings } from './types.js';

/** @internal The context a step is planned in. */
export interface PlanContext {
  /** The container config so far. */
  readonly config: ContainerConfig;
  /** `ARG`s declared so far, name → value (`undefined`: declared without a value). */
  readonly args: ReadonlyMap<string, string | undefined>;
  /** A variable as the Dockerfile sees it: `ENV` first, then `ARG`s. */
  lookup(name: string): string | undefined;
}

/** @internal A step with its variables expanded, ready to run. */
export type PlannedStep =
  | { kind: 'arg'; name: string; value: string | undefined }
  | { kind: 'config'; instruction: string; args?: Record<string, string>; apply: (config: ImageConfig) => void }
  | { kind: 'workdir'; instruction: string; args?: Record<string, string>; path: string }
  | {
      kind: 'run';
      instruction: string;
      args?: Record<string, string>;
      argv: string[];
      env: Record<string, string>;
      user?: string;
      cwd?: string;
      mounts: MountSpec[];
    }
  | {
      kind: 'copy';
      instruction: string;
      args?: Record<string, string>;
      add: boolean;
      sources: string[];
      heredocs: { name: string; content: string }[];
      dest: string;
      chown?: string;
      chmod?: number;
      /** An image reference, or another recipe (a stage). */
      from?: string | Recipe;
      fetch: boolean;
      extract: boolean;
    };

/** @internal One step of a recipe: planned when the build reaches it (variables depend on the steps before). */
export interface StepDefinition {
  /** The Dockerfile line, for messages. */
  line?: number;
  plan(ctx: PlanContext): PlannedStep;
}

/** @internal What a build runs: its base, its steps and how. */
export interface Recipe {
  /** The base: an image reference in the store, `'scratch'` for none, or another recipe (a stage). */
  readonly from: string | Recipe;
  /** How it runs; `settings.name` names it in progress events and messages. */
  readonly settings: BuildSettings;
  /** The steps, in order. */
  readonly steps: StepDefinition[];
  /**
   * Turns a base image's `ONBUILD` triggers into steps that run first (a
   * Dockerfile build does); without it the triggers are dropped.
   */
  readonly onBuildTriggers?: (triggers: readonly string[]) => StepDefinition[];
}
