/**
 * Path patterns of builds: `.dockerignore` files and the wildcards of
 * `COPY`/`ADD` sources, with Docker's semantics (Go's `filepath.Match`, plus
 * `**` in `.dockerignore`).
 *
 * @module
 */

import path from 'node:path';
import { InvalidArgumentError } from '../errors.js';

/** Whether a path has wildcard characters (`*`, `?`, `[`). */
export function hasWildcards(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

/**
 * Compiles a Go `filepath.Match` pattern (`*` and `?` never match `/`,
 * `[a-z]` and `[^a-z]` classes, `\` escapes) into an anchored regex. With
 * `doubleStar`, `**` matches any number of directories, as in `.dockerignore`.
 *
 * @throws {InvalidArgumentError} for an unterminated character class.
 * @example
 * globToRegExp('*.txt').test('a.txt'); // true
 * globToRegExp('**\/*.go', { doubleStar: true }).test('a/b/c.go'); // true
 */
export function globToRegExp(pattern: string, options: { doubleStar?: boolean } = {}): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') {
      if (options.doubleStar && pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else {
          re += '.*';
        }
      } else {
        re += '[^/]*';
      }
    } else if (ch === '?') {
      re += '[^/]';
    } else if (ch === '[') {
      const end = classEnd(pattern, i);
      if (end === -1) throw new InvalidArgumentError(`pattern \`${pattern}\`: unterminated character class`);
      let body = pattern.slice(i + 1, end);
      const negated = body.startsWith('^') || body.startsWith('!');
      if (negated) body = body.slice(1);
      let cls = '';
      for (let j = 0; j < body.length; j++) {
        const c = body[j] === '\\' && j + 1 < body.length ? body[++j]! : body[j]!;
        cls += /[\\\]^[]/.test(c) ? `\\${c}` : c;
      }
      re += negated ? `[^/${cls}]` : `(?!/)[${cls}]`;
      i = end;
    } else if (ch === '\\' && i + 1 < pattern.length) {
      re += escapeRegExp(pattern[++i]!);
    } else {
      re += escapeRegExp(ch);
    }
  }
  return new RegExp(`^${re}$`, 's');
}

function classEnd(pattern: string, start: number): number {
  let i = start + 1;
  if (pattern[i] === '^' || pattern[i] === '!') i++;
  if (pattern[i] === ']') i++;
  for (; i < pattern.length; i++) {
    if (pattern[i] === '\\') i++;
    else if (pattern[i] === ']') return i;
  }
  return -1;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

interface IgnoreRule {
  pattern: string;
  regexp: RegExp;
  exception: boolean;
}

/**
 * The rules of a `.dockerignore` file: one pattern per line, `#` comments,
 * `!pattern` re-includes, the last matching rule wins, and a rule that
 * matches a directory also covers everything below it.
 *
 * @example
 * ```ts
 * const ignore = DockerIgnore.parse('node_modules\n*.log\n!keep.log\n');
 * ignore.excludes('node_modules/x/y.js'); // true
 * ignore.excludes('keep.log');            // false
 * ```
 */
export class DockerIgnore {
  readonly #rules: IgnoreRule[];

  private constructor(rules: IgnoreRule[]) {
    this.#rules = rules;
  }

  /** An ignore list that excludes nothing. */
  static readonly EMPTY = new DockerIgnore([]);

  /**
   * Parses the text of a `.dockerignore` file.
   *
   * @throws {InvalidArgumentError} naming the line of a malformed pattern.
   */
  static parse(text: string): DockerIgnore {
    const rules: IgnoreRule[] = [];
    const lines = text.split(/\r?\n/);
    lines.forEach((raw, index) => {
      if (raw.startsWith('#')) return;
      let pattern = raw.trim();
      if (pattern === '') return;
      const exception = pattern.startsWith('!');
      if (exception) pattern = pattern.slice(1).trim();
      if (pattern === '') return;
      pattern = path.posix.normalize(pattern);
      if (pattern.startsWith('/')) pattern = pattern.replace(/^\/+/, '');
      pattern = pattern.replace(/\/+$/, '');
      if (pattern === '' || pattern === '.') return;
      try {
        rules.push({ pattern, regexp: globToRegExp(pattern, { doubleStar: true }), exception });
      } catch (cause) {
        throw new InvalidArgumentError(`.dockerignore line ${index + 1}: ${(cause as Error).message}`, { cause });
      }
    });
    return new DockerIgnore(rules);
  }

  /** Whether there are `!` rules (so an excluded directory may still have included files below it). */
  get hasExceptions(): boolean {
    return this.#rules.some((r) => r.exception);
  }

  /** Whether no rule is set. */
  get empty(): boolean {
    return this.#rules.length === 0;
  }

  /** Whether `rel` (a context-relative path with `/` separators) is excluded from the build context. */
  excludes(rel: string): boolean {
    if (this.#rules.length === 0) return false;
    const parts = rel.split('/');
    let excluded = false;
    for (const rule of this.#rules) {
      let matched = rule.regexp.test(rel);
      // A rule naming a directory covers what is below it.
      for (let i = 1; !matched && i < parts.length; i++) matched = rule.regexp.test(parts.slice(0, i).join('/'));
      if (matched) excluded = !rule.exception;
    }
    return excluded;
  }

  /** The patterns, `!` included, in order; part of the cache key of what they select. */
  toString(): string {
    return this.#rules.map((r) => `${r.exception ? '!' : ''}${r.pattern}`).join('\n');
  }
}
