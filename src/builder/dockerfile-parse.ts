/**
 * The Dockerfile parser: text → stages and instructions (with
 * dockerfile-ast, the parser of the VS Code Docker tooling); no variable
 * is expanded here.
 *
 * @module
 */

import type { Instruction, Heredoc } from 'dockerfile-ast';
import { InvalidArgumentError } from '../errors.js';
import { lazyRequire } from '../util/index.js';
import { splitWords } from './shell-words.js';

// Its module graph costs ~10 ms of an import of dockless, and only a Dockerfile build needs it.
const dockerfileAst = lazyRequire<typeof import('dockerfile-ast')>('dockerfile-ast');

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

/** The instructions a Dockerfile may hold. */
export const KEYWORDS: ReadonlySet<string> = new Set([
  'ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL', 'MAINTAINER', 'ONBUILD', 'RUN',
  'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
]);
const FLAGGED = new Set(['FROM', 'RUN', 'COPY', 'ADD', 'HEALTHCHECK']);

/** An {@link InvalidArgumentError} naming the Dockerfile line. */
export function lineError(line: number, message: string, cause?: unknown): InvalidArgumentError {
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
  const document = dockerfileAst().DockerfileParser.parse(text);
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
