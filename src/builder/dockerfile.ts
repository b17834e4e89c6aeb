/**
 * The Dockerfile front-end of {@link LayerBuilder}: a Dockerfile (parsed by
 * `dockerfile-parse.ts`) becomes one {@link Recipe} per stage (its
 * instructions made steps by `dockerfile-steps.ts`), which the executor runs.
 *
 * Supported: `FROM` (`AS name`, multi-stage, `--platform` of this host),
 * `RUN` (shell and exec form, heredocs, `--network=none|default`,
 * `--mount=type=bind|cache|tmpfs`), `COPY`/`ADD` (`--from`, `--chown`,
 * `--chmod`, wildcards, heredocs; `--link` accepted), `ENV`, `ARG` (global
 * and per stage, build args), `WORKDIR`, `USER`, `LABEL`, `EXPOSE`,
 * `VOLUME`, `ENTRYPOINT`, `CMD`, `SHELL`, `HEALTHCHECK`, `STOPSIGNAL`,
 * `ONBUILD` (recorded, and a base image's triggers run), `MAINTAINER`; line
 * continuations, comments, the `escape` directive, variable substitution
 * (`$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alt}`, …) and `.dockerignore`
 * (or `<Dockerfile>.dockerignore` beside the Dockerfile).
 *
 * @module
 */

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { formatPlatform, hostPlatform, normalizePlatform, parsePlatform } from '../oci/index.js';
import type { ImageStoreCore as ImageStore } from '../store/index.js';
import { argDeclarations, expand, labelStep, stepsFor, type StageState } from './dockerfile-steps.js';
import { lineError, parseDockerfile, type ParsedDockerfile } from './dockerfile-parse.js';
import { buildImage } from './executor.js';
import type { Recipe } from './recipe.js';
import type { BuildProgress, BuildResult, BuildSettings } from './types.js';
import type { Runtime } from '../runtime/index.js';

export { parseDockerfile } from './dockerfile-parse.js';
export type { DockerfileHeredoc, DockerfileInstruction, DockerfileStage, ParsedDockerfile } from './dockerfile-parse.js';

/** Options of `LayerBuilder.fromDockerfile()`. */
export interface DockerfileBuildOptions {
  /** The build context directory: what `COPY`/`ADD` read from. */
  context: string;
  /**
   * The Dockerfile: a path, relative to `context` unless absolute.
   * @default `Dockerfile` in the context, else `Containerfile`
   */
  dockerfile?: string;
  /** Build args (`--build-arg NAME=value`). @default {} */
  buildArgs?: Readonly<Record<string, string>>;
  /** The stage to build (`--target`). @default the last stage */
  target?: string;
  /** Tag the image with this reference. */
  tag?: string;
  /** Labels set on the image, after the target stage's own (`build --label`); a cached build is reused only with the same labels. @default {} */
  labels?: Readonly<Record<string, string>>;
  /** Runs the `RUN` steps; it must use the same store. @default a Runtime with default directories on the store */
  runtime?: Runtime;
  /** Run every step even when the cache has it. @default false */
  noCache?: boolean;
  /** Receives progress events of every stage built. */
  onProgress?: (event: BuildProgress) => void;
  /** Cancels the build; nothing is tagged. */
  signal?: AbortSignal;
  /** Clamp times to this (seconds). @default Number(process.env.SOURCE_DATE_EPOCH) when set */
  sourceDateEpoch?: number;
  /** gzip level of new layers, 1 (fast) to 9 (small). @default 1 */
  compressionLevel?: number;
  /** Path of the native helper. */
  helperPath?: string;
}

/**
 * Builds a Dockerfile: the target stage (default: the last) and the stages
 * it needs (by `FROM <stage>` or `COPY --from=<stage>`), each a
 * {@link LayerBuilder} sharing the build cache.
 *
 * @throws {InvalidArgumentError} for a bad Dockerfile (the message names the line) or an unknown target.
 * @throws {NotFoundError} when the Dockerfile, a base image or a source file is missing.
 * @throws {BuildError} when a `RUN` fails; nothing is tagged.
 */
export function buildDockerfile(store: ImageStore, options: DockerfileBuildOptions): Promise<BuildResult> {
  try {
    return buildImage(store, dockerfileRecipe(store.buildCache.directory('mounts'), options), options.tag);
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * The recipe of a Dockerfile's target stage (its `from` and `COPY --from`
 * recipes are the stages it needs), as {@link buildDockerfile} runs it.
 *
 * @throws {InvalidArgumentError} for a bad Dockerfile or an unknown target.
 * @throws {NotFoundError} when the Dockerfile is missing.
 */
export function dockerfileRecipe(cacheMounts: string, options: DockerfileBuildOptions): Recipe {
  const context = path.resolve(options.context);
  const dockerfilePath = locateDockerfile(context, options.dockerfile);
  let text: string;
  try {
    text = readFileSync(dockerfilePath, 'utf8');
  } catch (cause) {
    throw new NotFoundError(`build: cannot read the Dockerfile \`${dockerfilePath}\``, { cause, path: dockerfilePath });
  }
  const parsed = parseDockerfile(text);
  const ignorePath = `${dockerfilePath}.dockerignore`;
  const ignore = existsSync(ignorePath) ? readFileSync(ignorePath, 'utf8') : undefined;
  const buildArgs = options.buildArgs ?? {};
  const globals = resolveGlobalArgs(parsed, buildArgs);
  const lookupGlobal = (name: string): string | undefined => globals.get(name);

  const targetIndex =
    options.target === undefined ? parsed.stages.length - 1 : parsed.stages.findIndex((s) => s.name === options.target!.toLowerCase());
  if (targetIndex < 0) throw new InvalidArgumentError(`build: target stage \`${options.target}\` is not in the Dockerfile`);

  const recipes: Recipe[] = [];
  const stageRef = (ref: string, before: number): Recipe | undefined => {
    const lower = ref.toLowerCase();
    const byName = parsed.stages.findIndex((s, i) => i < before && s.name === lower);
    if (byName >= 0) return recipes[byName];
    if (/^\d+$/.test(ref) && Number(ref) < before) return recipes[Number(ref)];
    return undefined;
  };
  for (const [index, stage] of parsed.stages.entries()) {
    const fromWord = expand(stage.line, stage.from, lookupGlobal, parsed.escape);
    if (stage.platform !== undefined) checkPlatform(stage.line, expand(stage.line, stage.platform, lookupGlobal, parsed.escape));
    const from = fromWord.toLowerCase() === 'scratch' ? 'scratch' : (stageRef(fromWord, index) ?? fromWord);
    const stageState: StageState = { cmdSet: false, escape: parsed.escape, globals, buildArgs, context, cacheMounts, stageRef: (ref) => stageRef(ref, index) };
    const settings: BuildSettings = {
      context,
      name: stage.name ?? String(index),
      buildArgs,
      ...(ignore !== undefined ? { ignore } : {}),
      ...(options.runtime !== undefined ? { runtime: options.runtime } : {}),
      ...(options.noCache !== undefined ? { noCache: options.noCache } : {}),
      ...(options.onProgress !== undefined ? { onProgress: options.onProgress } : {}),
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
      ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}),
      ...(options.compressionLevel !== undefined ? { compressionLevel: options.compressionLevel } : {}),
      ...(options.helperPath !== undefined ? { helperPath: options.helperPath } : {}),
    };
    recipes.push({
      from,
      settings,
      steps: stage.instructions.flatMap((ins) => stepsFor(ins, stageState)),
      onBuildTriggers: (triggers) =>
        triggers.flatMap((trigger) => {
          const doc = parseDockerfile(`FROM scratch\n${trigger}\n`);
          return doc.stages[0]!.instructions.flatMap((ins) => stepsFor({ ...ins, line: stage.line }, stageState));
        }),
    });
  }
  const target = recipes[targetIndex]!;
  if (options.labels !== undefined && Object.keys(options.labels).length > 0) return { ...target, steps: [...target.steps, labelStep(options.labels)] };
  return target;
}

function locateDockerfile(context: string, dockerfile: string | undefined): string {
  if (dockerfile !== undefined) return path.resolve(context, dockerfile);
  const candidate = path.join(context, 'Dockerfile');
  if (existsSync(candidate)) return candidate;
  const containerfile = path.join(context, 'Containerfile');
  return existsSync(containerfile) ? containerfile : candidate;
}

/** The values of the global `ARG`s: build args, else defaults (which may use earlier ones), plus the platform args. */
function resolveGlobalArgs(parsed: ParsedDockerfile, buildArgs: Readonly<Record<string, string>>): Map<string, string> {
  const platform = hostPlatform();
  const values = new Map<string, string>();
  const predefined: Record<string, string> = {
    TARGETPLATFORM: formatPlatform(platform),
    TARGETOS: platform.os,
    TARGETARCH: platform.architecture,
    TARGETVARIANT: platform.variant ?? '',
    BUILDPLATFORM: formatPlatform(platform),
    BUILDOS: platform.os,
    BUILDARCH: platform.architecture,
    BUILDVARIANT: platform.variant ?? '',
  };
  for (const [k, v] of Object.entries(predefined)) values.set(k, buildArgs[k] ?? v);
  for (const ins of parsed.globalArgs) {
    for (const decl of argDeclarations(ins, parsed.escape)) {
      const value = buildArgs[decl.name] ?? (decl.default !== undefined ? expand(ins.line, decl.default, (n) => values.get(n), parsed.escape) : undefined);
      if (value !== undefined) values.set(decl.name, value);
    }
  }
  return values;
}

function checkPlatform(line: number, value: string): void {
  let wanted;
  try {
    wanted = normalizePlatform(parsePlatform(value));
  } catch (err) {
    throw lineError(line, `FROM --platform: ${(err as Error).message}`, err);
  }
  const host = normalizePlatform(hostPlatform());
  if (formatPlatform(wanted) !== formatPlatform(host)) {
    throw lineError(line, `FROM --platform=${value}: only this host's platform (${formatPlatform(host)}) can be built`);
  }
}
