/**
 * The Dockerfile instructions as build steps: each instruction of a stage
 * becomes the steps a builder runs, planned (variables expanded) when the
 * build reaches them.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { DEFAULT_SHELL, type ImageConfig } from '../oci/index.js';
import type { MountSpec } from '../runtime/index.js';
import { KEYWORDS, lineError, parseDockerfile, type DockerfileInstruction } from './dockerfile-parse.js';
import { expandPort, parseDuration, parseMode } from './values.js';
import type { PlanContext, PlannedStep, Recipe, StepDefinition } from './recipe.js';
import { expandWord, expandWords, splitWords, WordError } from './shell-words.js';

/** The names and defaults an `ARG` declares. */
export function argDeclarations(ins: DockerfileInstruction, escape: string): { name: string; default?: string }[] {
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

/** A word expanded against `lookup`, failing with the line. */
export function expand(line: number, word: string, lookup: (name: string) => string | undefined, escape: string): string {
  try {
    return expandWord(word, lookup, escape).value;
  } catch (err) {
    if (err instanceof WordError) throw lineError(line, err.message, err);
    throw err;
  }
}

/** What the instructions of one stage share while their steps are made. */
export interface StageState {
  cmdSet: boolean;
  escape: string;
  globals: ReadonlyMap<string, string>;
  buildArgs: Readonly<Record<string, string>>;
  context: string;
  /** Where `RUN --mount=type=cache` directories live. */
  cacheMounts: string;
  stageRef: (ref: string) => Recipe | undefined;
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

/** The step `build --label` adds at the end of the target stage: these labels, as a `LABEL` with nothing to expand. */
export function labelStep(labels: Readonly<Record<string, string>>): StepDefinition {
  const list = Object.entries(labels);
  return {
    plan: () => ({
      kind: 'config',
      instruction: `LABEL ${list.map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`).join(' ')}`,
      apply: (image) => {
        image.config ??= {};
        image.config.Labels = { ...image.config.Labels, ...Object.fromEntries(list) };
      },
    }),
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
export function stepsFor(ins: DockerfileInstruction, stage: StageState): StepDefinition[] {
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
