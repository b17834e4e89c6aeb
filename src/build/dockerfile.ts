/**
 * The Dockerfile front-end of {@link LayerBuilder}: parses a Dockerfile (with
 * dockerfile-ast, the parser of the VS Code Docker tooling) and turns each
 * stage into a builder.
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

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DockerfileParser, type Instruction, type Heredoc } from 'dockerfile-ast';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { formatPlatform, hostPlatform, normalizePlatform, parsePlatform } from '../oci/platform.js';
import type { ImageConfig } from '../oci/types.js';
import type { MountSpec } from '../runtime/spec.js';
import type { ImageStoreCore as ImageStore } from '../store/index.js';
import { ADD_STEP, expandPort, LayerBuilder, ON_BUILD_TRIGGERS, parseDuration, parseMode, type PlanContext, type PlannedStep, type StepDefinition } from './layer-builder.js';
import { expandWord, expandWords, splitWords, WordError } from './shell-words.js';
import type { BuildProgress, BuildResult } from './types.js';
import type { Runtime } from '../runtime/runtime.js';

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

/** One instruction of a parsed Dockerfile. */
export interface DockerfileInstruction {
  /** The keyword, uppercase: `RUN`, `COPY`, … */
  keyword: string;
  /** The line it starts on, from 1. */
  line: number;
  /** Its arguments without flags, continuation lines joined (heredoc bodies included, as written). */
  args: string;
  /** The first line of its arguments (before any heredoc body). */
  firstLine: string;
  /** Its `--name=value` flags, for `FROM`, `RUN`, `COPY`, `ADD` and `HEALTHCHECK`. */
  flags: {
    /** The flag's name, without `--`. */
    name: string;
    /** Its value, as written; `null` for a flag without `=`. */
    value: string | null;
  }[];
  /** The heredocs of `RUN`, `COPY` and `ADD`. */
  heredocs: DockerfileHeredoc[];
  /** The exec-form arguments, when they are a JSON array of strings. */
  json?: string[];
}

/** A heredoc (`<<EOF … EOF`) of an instruction. */
export interface DockerfileHeredoc {
  /** The delimiter word. */
  name: string;
  /** The body, each line ending in a newline (tabs stripped for `<<-`). */
  content: string;
  /** Whether the delimiter was quoted (no variable expansion). */
  quoted: boolean;
}

/** One stage of a parsed Dockerfile. */
export interface DockerfileStage {
  /** The `AS` name, lowercase, if any. */
  name?: string;
  /** The `FROM` image, as written (variables not expanded). */
  from: string;
  /** The `--platform` flag, as written. */
  platform?: string;
  /** The line of the `FROM`. */
  line: number;
  /** The stage's instructions after its `FROM`. */
  instructions: DockerfileInstruction[];
}

/** A parsed Dockerfile. */
export interface ParsedDockerfile {
  /** The escape character (`\`, or `` ` `` by the `escape` directive). */
  escape: string;
  /** The `ARG`s before the first `FROM`. */
  globalArgs: DockerfileInstruction[];
  /** The stages, in order. */
  stages: DockerfileStage[];
}

const KEYWORDS = new Set([
  'ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL', 'MAINTAINER', 'ONBUILD', 'RUN',
  'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
]);
const FLAGGED = new Set(['FROM', 'RUN', 'COPY', 'ADD', 'HEALTHCHECK']);
const DEFAULT_SHELL: readonly string[] = ['/bin/sh', '-c'];

function lineError(line: number, message: string, cause?: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`Dockerfile line ${line}: ${message}`, cause !== undefined ? { cause } : {});
}

/**
 * Parses a Dockerfile into stages and instructions (no variable is expanded:
 * that happens as the build reaches each instruction).
 *
 * @throws {InvalidArgumentError} naming the line: an unknown instruction, an instruction before the first `FROM`
 *   other than `ARG`, a missing argument, malformed JSON where only exec form is allowed, an unterminated heredoc.
 * @example
 * ```ts
 * const { stages } = parseDockerfile('FROM base AS build\nRUN make\nFROM scratch\nCOPY --from=build /out /\n');
 * ```
 */
export function parseDockerfile(text: string): ParsedDockerfile {
  const lines = text.split(/\r?\n/);
  const document = DockerfileParser.parse(text);
  const escape = document.getEscapeCharacter();
  const globalArgs: DockerfileInstruction[] = [];
  const stages: DockerfileStage[] = [];
  for (const ins of document.getInstructions()) {
    const parsed = parseInstruction(ins, lines);
    if (parsed.keyword === 'FROM') {
      const words = splitWords(parsed.args, escape);
      if (words.length !== 1 && !(words.length === 3 && words[1]!.toLowerCase() === 'as')) {
        throw lineError(parsed.line, 'FROM takes an image and optionally `AS name`');
      }
      const platform = parsed.flags.find((f) => f.name === 'platform')?.value ?? undefined;
      for (const f of parsed.flags) if (f.name !== 'platform') throw lineError(parsed.line, `FROM: unknown flag --${f.name}`);
      const stage: DockerfileStage = { from: words[0]!, line: parsed.line, instructions: [] };
      if (words.length === 3) {
        const name = words[2]!.toLowerCase();
        if (!/^[a-z][a-z0-9._-]*$/.test(name)) throw lineError(parsed.line, `invalid stage name \`${words[2]}\``);
        if (stages.some((s) => s.name === name)) throw lineError(parsed.line, `duplicate stage name \`${name}\``);
        stage.name = name;
      }
      if (platform !== undefined) stage.platform = platform;
      stages.push(stage);
      continue;
    }
    if (stages.length === 0) {
      if (parsed.keyword !== 'ARG') throw lineError(parsed.line, `${parsed.keyword} before the first FROM (only ARG may come before it)`);
      globalArgs.push(parsed);
      continue;
    }
    stages.at(-1)!.instructions.push(parsed);
  }
  if (stages.length === 0) throw new InvalidArgumentError('Dockerfile: no FROM instruction');
  return { escape, globalArgs, stages };
}

function parseInstruction(ins: Instruction, lines: readonly string[]): DockerfileInstruction {
  const line = ins.getRange().start.line + 1;
  const keyword = ins.getKeyword().toUpperCase();
  if (!KEYWORDS.has(keyword)) throw lineError(line, `unknown instruction \`${ins.getInstruction()}\``);
  const flags =
    FLAGGED.has(keyword) && 'getFlags' in ins
      ? (ins as unknown as { getFlags(): { getName(): string; getValue(): string | null }[] }).getFlags().map((f) => ({ name: f.getName(), value: f.getValue() }))
      : [];
  const args = (ins.getArgumentsContent() ?? '').trim();
  const heredocs = keyword === 'RUN' || keyword === 'COPY' || keyword === 'ADD' ? readHeredocs(ins, lines, line) : [];
  const firstLine = heredocs.length > 0 ? args.split('\n')[0]!.trim() : args;
  if (args === '' && keyword !== 'ONBUILD') throw lineError(line, `${keyword} requires at least one argument`);
  const parsed: DockerfileInstruction = { keyword, line, args, firstLine, flags, heredocs };
  if (heredocs.length === 0 && args.startsWith('[')) {
    try {
      const value: unknown = JSON.parse(args);
      if (Array.isArray(value) && value.every((v) => typeof v === 'string')) parsed.json = value;
    } catch {
      /* not JSON: shell form, as Docker reads it */
    }
  }
  return parsed;
}

function readHeredocs(ins: Instruction, lines: readonly string[], line: number): DockerfileHeredoc[] {
  const docs = (ins as unknown as { getHeredocs(): Heredoc[] }).getHeredocs?.() ?? [];
  return docs.map((doc) => {
    const start = doc.getStartRange();
    const opener = lines[start.start.line]!.slice(start.start.character, start.end.character);
    const m = /^<<(-?)(["']?)(.+?)\2$/.exec(opener);
    if (doc.getDelimiterRange() === null) throw lineError(line, `heredoc \`${opener}\` has no terminating \`${doc.getName()}\` line`);
    const range = doc.getContentRange();
    let body = range === null ? [] : lines.slice(range.start.line, range.end.line + 1);
    if (m?.[1] === '-') body = body.map((l) => l.replace(/^\t+/, ''));
    return { name: doc.getName(), content: body.map((l) => `${l}\n`).join(''), quoted: m?.[2] !== undefined && m[2] !== '' };
  });
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
export async function buildDockerfile(store: ImageStore, options: DockerfileBuildOptions): Promise<BuildResult> {
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

  const builders: LayerBuilder[] = [];
  const stageRef = (ref: string, before: number): LayerBuilder | undefined => {
    const lower = ref.toLowerCase();
    const byName = parsed.stages.findIndex((s, i) => i < before && s.name === lower);
    if (byName >= 0) return builders[byName];
    if (/^\d+$/.test(ref) && Number(ref) < before) return builders[Number(ref)];
    return undefined;
  };
  for (const [index, stage] of parsed.stages.entries()) {
    const fromWord = expand(stage.line, stage.from, lookupGlobal, parsed.escape);
    if (stage.platform !== undefined) checkPlatform(stage.line, expand(stage.line, stage.platform, lookupGlobal, parsed.escape));
    const from = fromWord.toLowerCase() === 'scratch' ? 'scratch' : (stageRef(fromWord, index) ?? fromWord);
    const builder = new LayerBuilder(store, {
      from,
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
    });
    const stageState: StageState = { cmdSet: false, escape: parsed.escape, globals, buildArgs, context, cacheMounts: store.buildCache.directory('mounts'), stageRef: (ref) => stageRef(ref, index) };
    builder[ON_BUILD_TRIGGERS]((triggers) =>
      triggers.flatMap((trigger) => {
        const doc = parseDockerfile(`FROM scratch\n${trigger}\n`);
        return doc.stages[0]!.instructions.flatMap((ins) => stepsFor({ ...ins, line: stage.line }, stageState));
      }),
    );
    for (const ins of stage.instructions) for (const step of stepsFor(ins, stageState)) builder[ADD_STEP](step);
    builders.push(builder);
  }
  return builders[targetIndex]!.commit(options.tag);
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

function argDeclarations(ins: DockerfileInstruction, escape: string): { name: string; default?: string }[] {
  return words(ins, escape).map((word) => {
    const eq = word.indexOf('=');
    const name = eq === -1 ? word : word.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw lineError(ins.line, `ARG: \`${name}\` is not a valid name`);
    return eq === -1 ? { name } : { name, default: word.slice(eq + 1) };
  });
}

function words(ins: DockerfileInstruction, escape: string): string[] {
  try {
    return splitWords(ins.firstLine, escape);
  } catch (err) {
    throw lineError(ins.line, (err as Error).message, err);
  }
}

function expand(line: number, word: string, lookup: (name: string) => string | undefined, escape: string): string {
  try {
    return expandWord(word, lookup, escape).value;
  } catch (err) {
    if (err instanceof WordError) throw lineError(line, err.message, err);
    throw err;
  }
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

interface StageState {
  cmdSet: boolean;
  escape: string;
  globals: ReadonlyMap<string, string>;
  buildArgs: Readonly<Record<string, string>>;
  context: string;
  /** Where `RUN --mount=type=cache` directories live. */
  cacheMounts: string;
  stageRef: (ref: string) => LayerBuilder | undefined;
}

/** Expansion against a step's context, recording the build args used. */
class Expander {
  readonly args: Record<string, string> = {};
  readonly #ctx: PlanContext;
  readonly #line: number;
  readonly #escape: string;
  readonly #env: Set<string>;

  constructor(ctx: PlanContext, line: number, escape: string) {
    this.#ctx = ctx;
    this.#line = line;
    this.#escape = escape;
    this.#env = new Set((ctx.config.Env ?? []).map((p) => p.slice(0, p.indexOf('='))));
  }

  #record(used: Set<string>): void {
    for (const name of used) {
      const value = this.#ctx.args.get(name);
      if (!this.#env.has(name) && value !== undefined) this.args[name] = value;
    }
  }

  word(w: string): string {
    try {
      const { value, used } = expandWord(w, (n) => this.#ctx.lookup(n), this.#escape);
      this.#record(used);
      return value;
    } catch (err) {
      if (err instanceof WordError) throw lineError(this.#line, err.message, err);
      throw err;
    }
  }

  words(text: string): string[] {
    try {
      const { values, used } = expandWords(text, (n) => this.#ctx.lookup(n), this.#escape);
      this.#record(used);
      return values;
    } catch (err) {
      if (err instanceof WordError) throw lineError(this.#line, err.message, err);
      throw err;
    }
  }

  /** The args used, or undefined when none (so the cache key stays small). */
  get used(): Record<string, string> | undefined {
    return Object.keys(this.args).length > 0 ? this.args : undefined;
  }
}

function configStep(line: number, instruction: (ex: Expander, ctx: PlanContext) => { text: string; apply: (image: ImageConfig) => void }, escape: string): StepDefinition {
  return {
    line,
    plan: (ctx) => {
      const ex = new Expander(ctx, line, escape);
      const { text, apply } = instruction(ex, ctx);
      const step: PlannedStep = { kind: 'config', instruction: text, apply };
      if (ex.used !== undefined) step.args = ex.used;
      return step;
    },
  };
}

function cmdForm(ins: DockerfileInstruction, ctx: PlanContext): { argv: string[]; exec: boolean } {
  if (ins.json !== undefined) return { argv: ins.json, exec: true };
  return { argv: [...(ctx.config.Shell ?? DEFAULT_SHELL), ins.args], exec: false };
}

function pairs(ins: DockerfileInstruction, ex: Expander, escape: string, what: string): [string, string][] {
  const list = words(ins, escape);
  if (list.length > 0 && !list[0]!.includes('=')) {
    // The legacy form `ENV NAME value with spaces`.
    if (list.length < 2) throw lineError(ins.line, `${what} ${list[0]} needs a value (${what} NAME=value)`);
    const name = list[0]!;
    const rest = ins.firstLine.slice(ins.firstLine.indexOf(name) + name.length).trim();
    return [[name, ex.word(rest)]];
  }
  return list.map((word) => {
    const eq = word.indexOf('=');
    if (eq <= 0) throw lineError(ins.line, `${what}: \`${word}\` is not NAME=value`);
    return [ex.word(word.slice(0, eq)), ex.word(word.slice(eq + 1))];
  });
}

/** The steps of one instruction. */
function stepsFor(ins: DockerfileInstruction, stage: StageState): StepDefinition[] {
  const { line } = ins;
  const escape = stage.escape;
  for (const f of ins.flags) {
    const allowed: Record<string, string[]> = {
      RUN: ['network', 'mount', 'security'],
      COPY: ['from', 'chown', 'chmod', 'link', 'parents', 'exclude'],
      ADD: ['from', 'chown', 'chmod', 'link', 'checksum', 'keep-git-dir'],
      HEALTHCHECK: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
    };
    if (!(allowed[ins.keyword] ?? []).includes(f.name)) throw lineError(line, `${ins.keyword}: unknown flag --${f.name}`);
  }
  const flag = (name: string): string | undefined => {
    const f = ins.flags.filter((x) => x.name === name).at(-1);
    if (f !== undefined && f.value === null) throw lineError(line, `${ins.keyword}: --${name} needs a value`);
    return f?.value ?? undefined;
  };
  switch (ins.keyword) {
    case 'ARG':
      return argDeclarations(ins, escape).map((decl) => ({
        line,
        plan: (ctx): PlannedStep => {
          const value =
            stage.buildArgs[decl.name] ??
            (decl.default !== undefined ? new Expander(ctx, line, escape).word(decl.default) : stage.globals.get(decl.name));
          return { kind: 'arg', name: decl.name, value };
        },
      }));
    case 'ENV':
      return [
        configStep(line, (ex) => {
          const list = pairs(ins, ex, escape, 'ENV');
          return {
            text: `ENV ${list.map(([k, v]) => `${k}=${v}`).join(' ')}`,
            apply: (image) => {
              image.config ??= {};
              const env = [...(image.config.Env ?? [])];
              for (const [k, v] of list) {
                const i = env.findIndex((p) => p.slice(0, p.indexOf('=')) === k);
                if (i >= 0) env[i] = `${k}=${v}`;
                else env.push(`${k}=${v}`);
              }
              image.config.Env = env;
            },
          };
        }, escape),
      ];
    case 'LABEL':
      return [
        configStep(line, (ex) => {
          const list = pairs(ins, ex, escape, 'LABEL');
          return {
            text: `LABEL ${list.map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`).join(' ')}`,
            apply: (image) => {
              image.config ??= {};
              image.config.Labels = { ...image.config.Labels, ...Object.fromEntries(list) };
            },
          };
        }, escape),
      ];
    case 'MAINTAINER':
      return [configStep(line, () => ({ text: `MAINTAINER ${ins.args}`, apply: (image) => void (image.author = ins.args) }), escape)];
    case 'USER':
      return [
        configStep(line, (ex) => {
          const user = ex.word(ins.args);
          if (user === '') throw lineError(line, 'USER: empty user');
          return { text: `USER ${user}`, apply: (image) => void ((image.config ??= {}).User = user) };
        }, escape),
      ];
    case 'STOPSIGNAL':
      return [
        configStep(line, (ex) => {
          const signal = ex.word(ins.args);
          return { text: `STOPSIGNAL ${signal}`, apply: (image) => void ((image.config ??= {}).StopSignal = signal) };
        }, escape),
      ];
    case 'EXPOSE':
      return [
        configStep(line, (ex) => {
          const ports = ex.words(ins.args);
          let keys: string[];
          try {
            keys = ports.flatMap(expandPort);
          } catch (err) {
            throw lineError(line, (err as Error).message, err);
          }
          return {
            text: `EXPOSE ${ports.join(' ')}`,
            apply: (image) => {
              image.config ??= {};
              image.config.ExposedPorts = { ...image.config.ExposedPorts };
              for (const k of keys) image.config.ExposedPorts[k] = {};
            },
          };
        }, escape),
      ];
    case 'VOLUME':
      return [
        configStep(line, (ex) => {
          const paths = (ins.json ?? ex.words(ins.args)).map((p) => (ins.json !== undefined ? ex.word(JSON.stringify(p)) : p));
          if (paths.some((p) => p === '')) throw lineError(line, 'VOLUME: empty path');
          return {
            text: `VOLUME ${JSON.stringify(paths)}`,
            apply: (image) => {
              image.config ??= {};
              image.config.Volumes = { ...image.config.Volumes };
              for (const p of paths) image.config.Volumes[p] = {};
            },
          };
        }, escape),
      ];
    case 'SHELL':
      if (ins.json === undefined || ins.json.length === 0) throw lineError(line, 'SHELL must be a JSON array: SHELL ["executable", "parameters"]');
      return [configStep(line, () => ({ text: `SHELL ${JSON.stringify(ins.json)}`, apply: (image) => void ((image.config ??= {}).Shell = [...ins.json!]) }), escape)];
    case 'CMD':
      return [
        configStep(line, (_ex, ctx) => {
          const { argv } = cmdForm(ins, ctx);
          stage.cmdSet = true;
          return { text: `CMD ${JSON.stringify(argv)}`, apply: (image) => void ((image.config ??= {}).Cmd = argv) };
        }, escape),
      ];
    case 'ENTRYPOINT':
      return [
        configStep(line, (_ex, ctx) => {
          const { argv } = cmdForm(ins, ctx);
          const clearCmd = !stage.cmdSet;
          return {
            text: `ENTRYPOINT ${JSON.stringify(argv)}`,
            apply: (image) => {
              image.config ??= {};
              image.config.Entrypoint = argv;
              if (clearCmd) image.config.Cmd = null;
            },
          };
        }, escape),
      ];
    case 'HEALTHCHECK':
      return [healthcheckStep(ins, escape)];
    case 'ONBUILD': {
      const trigger = ins.args;
      const keyword = trigger.split(/\s+/)[0]?.toUpperCase() ?? '';
      if (keyword === '') throw lineError(line, 'ONBUILD needs an instruction');
      if (['ONBUILD', 'FROM', 'MAINTAINER'].includes(keyword)) throw lineError(line, `ONBUILD ${keyword} is not allowed`);
      if (!KEYWORDS.has(keyword)) throw lineError(line, `ONBUILD: unknown instruction \`${keyword}\``);
      return [
        configStep(line, () => ({
          text: `ONBUILD ${trigger}`,
          apply: (image) => {
            image.config ??= {};
            image.config.OnBuild = [...(image.config.OnBuild ?? []), trigger];
          },
        }), escape),
      ];
    }
    case 'WORKDIR':
      return [
        {
          line,
          plan: (ctx) => {
            const ex = new Expander(ctx, line, escape);
            const dir = ex.word(ins.args);
            if (dir === '') throw lineError(line, 'WORKDIR: empty path');
            const resolved = path.posix.resolve(ctx.config.WorkingDir || '/', dir);
            return { kind: 'workdir', instruction: `WORKDIR ${resolved}`, path: resolved, ...(ex.used !== undefined ? { args: ex.used } : {}) };
          },
        },
      ];
    case 'RUN':
      return [runStep(ins, stage, flag)];
    case 'COPY':
    case 'ADD':
      return [copyStep(ins, stage, flag)];
    default:
      throw lineError(line, `unsupported instruction ${ins.keyword}`);
  }
}

function healthcheckStep(ins: DockerfileInstruction, escape: string): StepDefinition {
  const { line } = ins;
  const list = ins.args.split(/\s+/);
  const kind = list[0]!.toUpperCase();
  if (kind === 'NONE') {
    if (list.length > 1 || ins.flags.length > 0) throw lineError(line, 'HEALTHCHECK NONE takes no arguments or flags');
    return configStep(line, () => ({ text: 'HEALTHCHECK NONE', apply: (image) => void ((image.config ??= {}).Healthcheck = { Test: ['NONE'] }) }), escape);
  }
  if (kind !== 'CMD') throw lineError(line, 'HEALTHCHECK must be `HEALTHCHECK [OPTIONS] CMD command` or `HEALTHCHECK NONE`');
  const rest = ins.args.slice(list[0]!.length).trim();
  if (rest === '') throw lineError(line, 'HEALTHCHECK CMD needs a command');
  let test: string[];
  try {
    const value: unknown = rest.startsWith('[') ? JSON.parse(rest) : undefined;
    test = Array.isArray(value) && value.every((v) => typeof v === 'string') ? ['CMD', ...value] : ['CMD-SHELL', rest];
  } catch {
    test = ['CMD-SHELL', rest];
  }
  const health: NonNullable<NonNullable<ImageConfig['config']>['Healthcheck']> = { Test: test };
  for (const f of ins.flags) {
    if (f.value === null || f.value === '') throw lineError(line, `HEALTHCHECK: --${f.name} needs a value`);
    try {
      if (f.name === 'retries') {
        if (!/^\d+$/.test(f.value)) throw new InvalidArgumentError(`--retries \`${f.value}\` is not a number`);
        health.Retries = Number(f.value);
      } else {
        const key = ({ interval: 'Interval', timeout: 'Timeout', 'start-period': 'StartPeriod', 'start-interval': 'StartInterval' } as const)[
          f.name as 'interval' | 'timeout' | 'start-period' | 'start-interval'
        ];
        health[key] = Math.round(parseDuration(f.value, `--${f.name}`) * 1_000_000);
      }
    } catch (err) {
      throw lineError(line, `HEALTHCHECK ${(err as Error).message}`, err);
    }
  }
  return configStep(line, () => ({ text: `HEALTHCHECK ${JSON.stringify(health)}`, apply: (image) => void ((image.config ??= {}).Healthcheck = health) }), escape);
}

function runStep(ins: DockerfileInstruction, stage: StageState, flag: (name: string) => string | undefined): StepDefinition {
  const { line } = ins;
  const network = flag('network');
  if (network !== undefined && network !== 'none' && network !== 'default') {
    throw lineError(line, `RUN --network=${network}: build containers have no network but their own loopback ('none' or 'default')`);
  }
  if (flag('security') !== undefined) throw lineError(line, 'RUN --security is not supported');
  const mountFlags = ins.flags.filter((f) => f.name === 'mount').map((f) => f.value ?? '');
  if (ins.heredocs.length > 0 && ins.json !== undefined) throw lineError(line, 'RUN: heredocs need the shell form');
  return {
    line,
    plan: (ctx) => {
      const shell = ctx.config.Shell ?? DEFAULT_SHELL;
      let argv: string[];
      let shown: string;
      if (ins.json !== undefined) {
        argv = ins.json;
        shown = JSON.stringify(argv);
      } else if (ins.heredocs.length === 1 && /^<<-?["']?[^\s"']+["']?$/.test(ins.firstLine)) {
        // The whole command is one heredoc: its body is the script.
        const body = ins.heredocs[0]!.content;
        argv = body.startsWith('#!') ? [...shell, shebangScript(body)] : [...shell, body];
        shown = `${shell.join(' ')} ${ins.args}`;
      } else {
        argv = [...shell, ins.args];
        shown = argv.join(' ');
      }
      const ex = new Expander(ctx, line, stage.escape);
      const mounts = mountFlags.map((m) => runMount(m, ex, stage, line));
      const labels = mountFlags.map((m) => `--mount=${m}`);
      return {
        kind: 'run',
        instruction: ['RUN', ...labels, shown].join(' '),
        argv,
        env: {},
        mounts,
        ...(ex.used !== undefined ? { args: ex.used } : {}),
      };
    },
  };
}

/** A script with a `#!` line: written to a file and executed, as BuildKit runs such a heredoc. */
function shebangScript(body: string): string {
  let delimiter = 'DOCKLESS_HEREDOC';
  while (body.includes(delimiter)) delimiter += '_';
  const file = '/.dockless-heredoc';
  return `cat > ${file} <<'${delimiter}'\n${body}${delimiter}\nchmod +x ${file} && ${file}; rc=$?; rm -f ${file}; exit $rc`;
}

function runMount(spec: string, ex: Expander, stage: StageState, line: number): MountSpec {
  const fields = new Map<string, string>();
  for (const part of ex.word(spec).split(',')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    fields.set((eq === -1 ? part : part.slice(0, eq)).toLowerCase(), eq === -1 ? 'true' : part.slice(eq + 1));
  }
  const type = fields.get('type') ?? 'bind';
  const target = fields.get('target') ?? fields.get('dst') ?? fields.get('destination');
  if (target === undefined || !target.startsWith('/')) throw lineError(line, `RUN --mount=${spec}: needs an absolute target`);
  switch (type) {
    case 'tmpfs': {
      const size = fields.get('size');
      return { type: 'tmpfs', target, ...(size !== undefined ? { size: Number(size) } : {}) };
    }
    case 'bind': {
      if (fields.has('from')) throw lineError(line, `RUN --mount=${spec}: bind mounts from another stage or image are not supported`);
      const source = path.resolve(stage.context, (fields.get('source') ?? fields.get('src') ?? '.').replace(/^\/+/, ''));
      if (source !== stage.context && !source.startsWith(`${stage.context}${path.sep}`)) {
        throw lineError(line, `RUN --mount=${spec}: the source must be inside the build context`);
      }
      // Read-only whatever `rw` says: writes would reach the context, not a throwaway copy.
      return { type: 'bind', source, target, readonly: true };
    }
    case 'cache': {
      const id = fields.get('id') ?? target;
      const dir = path.join(stage.cacheMounts, createHash('sha256').update(id).digest('hex').slice(0, 32));
      // It must exist to be bound; made when the step is planned, just before it runs.
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      return { type: 'bind', source: dir, target };
    }
    default:
      throw lineError(line, `RUN --mount=type=${type} is not supported (bind, cache and tmpfs are)`);
  }
}

function copyStep(ins: DockerfileInstruction, stage: StageState, flag: (name: string) => string | undefined): StepDefinition {
  const { line } = ins;
  const add = ins.keyword === 'ADD';
  if (add && flag('checksum') !== undefined) throw lineError(line, 'ADD --checksum is not supported');
  if (!add && (flag('parents') !== undefined || flag('exclude') !== undefined)) throw lineError(line, 'COPY --parents and --exclude are not supported');
  const rawWords = ins.json ?? words(ins, stage.escape);
  const heredocNames = rawWords.filter((w) => w.startsWith('<<'));
  if (rawWords.length < 2) throw lineError(line, `${ins.keyword} needs a source and a destination`);
  if (heredocNames.length !== ins.heredocs.length) throw lineError(line, `${ins.keyword}: heredocs could not be read`);
  return {
    line,
    plan: (ctx) => {
      const ex = new Expander(ctx, line, stage.escape);
      const expanded = rawWords.map((w) => (w.startsWith('<<') ? w : ins.json !== undefined ? ex.word(JSON.stringify(w)) : ex.word(w)));
      const dest = expanded.at(-1)!;
      const sources = expanded.slice(0, -1).filter((w) => !w.startsWith('<<'));
      const esc = stage.escape;
      // An unquoted delimiter expands variables in the body, as in a shell; nothing else is special.
      const heredocs = ins.heredocs.map((h) => ({
        name: h.name,
        content: h.quoted ? h.content : ex.word(`"${[...h.content].map((c) => (c === '"' || c === esc ? esc + c : c)).join('')}"`),
      }));
      const fromRaw = flag('from');
      const fromWord = fromRaw !== undefined ? ex.word(fromRaw) : undefined;
      const chown = flag('chown');
      const chmodRaw = flag('chmod');
      let chmod: number | undefined;
      try {
        chmod = chmodRaw !== undefined ? parseMode(ex.word(chmodRaw), ins.keyword) : undefined;
      } catch (err) {
        throw lineError(line, (err as Error).message, err);
      }
      const chownValue = chown !== undefined ? ex.word(chown) : undefined;
      const from = fromWord !== undefined ? (stage.stageRef(fromWord) ?? fromWord) : undefined;
      const instruction = [
        ins.keyword,
        ...(fromWord !== undefined ? [`--from=${fromWord}`] : []),
        ...(chownValue !== undefined ? [`--chown=${chownValue}`] : []),
        ...(chmod !== undefined ? [`--chmod=${chmod.toString(8)}`] : []),
        ...expanded,
      ].join(' ');
      return {
        kind: 'copy',
        instruction,
        add,
        sources,
        heredocs,
        dest,
        ...(chownValue !== undefined ? { chown: chownValue } : {}),
        ...(chmod !== undefined ? { chmod } : {}),
        ...(from !== undefined ? { from } : {}),
        fetch: add,
        extract: add,
        ...(ex.used !== undefined ? { args: ex.used } : {}),
      };
    },
  };
}
