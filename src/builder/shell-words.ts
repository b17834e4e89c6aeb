/**
 * Dockerfile words: splitting an instruction's arguments into words and
 * expanding variables in them, as BuildKit's shell lexer does (not a shell:
 * no globbing, no command substitution).
 *
 * - `'…'` is literal; `"…"` expands `$` and lets the escape character escape
 *   `"`, `$` and itself (any other escape is kept as written); outside quotes
 *   the escape character escapes any character.
 * - `$NAME`, `${NAME}`, `${NAME:-word}` (word when unset or empty),
 *   `${NAME-word}` (when unset), `${NAME:+word}` (word when set and not
 *   empty, else empty), `${NAME+word}` (when set), `${NAME:?message}` and
 *   `${NAME?message}` (an error when unset/empty). `word` is itself expanded.
 * - An unset variable expands to the empty string.
 *
 * @module
 */

/** Looks a variable up: its value, or `undefined` when it is not set. */
export type VariableLookup = (name: string) => string | undefined;

/** A syntax or `${NAME:?}` error of {@link expandWord}; the Dockerfile front-end adds the line. */
export class WordError extends Error {}

/** The result of {@link expandWord}. */
export interface ExpandedWord {
  /** The word with quotes removed and variables expanded. */
  value: string;
  /** The names of the variables the word referred to that were set. */
  used: Set<string>;
}

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;
const DIGIT = /[0-9]/;

class Lexer {
  pos = 0;
  readonly used = new Set<string>();

  constructor(
    readonly text: string,
    readonly lookup: VariableLookup,
    readonly escape: string,
    /** Split into words on unquoted whitespace (also inside unquoted expansions). */
    readonly split: boolean,
  ) {}

  peek(): string | undefined {
    return this.text[this.pos];
  }

  next(): string | undefined {
    return this.text[this.pos++];
  }

  /** Processes up to `stop` (consumed) or the end; returns the words (one when not splitting). */
  words(stop?: string): string[] {
    const words: string[] = [];
    let current = '';
    let inWord = false;
    const flush = (): void => {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
    };
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) {
        if (stop !== undefined) throw new WordError(`syntax error: missing '${stop}'`);
        break;
      }
      if (stop !== undefined && ch === stop) {
        this.next();
        break;
      }
      if (this.split && /\s/.test(ch)) {
        this.next();
        flush();
        continue;
      }
      if (ch === '$' && this.split) {
        // Field splitting of an unquoted expansion, as the shell does; an empty one makes no word.
        const parts = this.dollar().split(/\s+/);
        parts.forEach((part, i) => {
          if (i > 0) flush();
          if (part !== '') {
            current += part;
            inWord = true;
          }
        });
        continue;
      }
      inWord = true;
      if (ch === "'") {
        current += this.singleQuoted();
      } else if (ch === '"') {
        current += this.doubleQuoted();
      } else if (ch === '$') {
        current += this.dollar();
      } else {
        this.next();
        if (ch === this.escape) {
          const escaped = this.next();
          if (escaped === undefined) break;
          current += escaped;
        } else {
          current += ch;
        }
      }
    }
    flush();
    return words;
  }

  singleQuoted(): string {
    this.next();
    const end = this.text.indexOf("'", this.pos);
    if (end === -1) throw new WordError('unexpected end of statement while looking for matching single-quote');
    const value = this.text.slice(this.pos, end);
    this.pos = end + 1;
    return value;
  }

  doubleQuoted(): string {
    this.next();
    let out = '';
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) throw new WordError('unexpected end of statement while looking for matching double-quote');
      if (ch === '"') {
        this.next();
        return out;
      }
      if (ch === '$') {
        out += this.dollar();
        continue;
      }
      this.next();
      if (ch === this.escape) {
        const after = this.peek();
        if (after === undefined) continue;
        if (after === '"' || after === '$' || after === this.escape) {
          out += this.next();
          continue;
        }
      }
      out += ch;
    }
  }

  name(): string {
    let name = '';
    const first = this.peek();
    if (first !== undefined && DIGIT.test(first)) {
      while (this.peek() !== undefined && DIGIT.test(this.peek()!)) name += this.next();
      return name;
    }
    if (first === undefined || !NAME_START.test(first)) return '';
    while (this.peek() !== undefined && NAME_CHAR.test(this.peek()!)) name += this.next();
    return name;
  }

  get(name: string): string | undefined {
    const value = this.lookup(name);
    if (value !== undefined) this.used.add(name);
    return value;
  }

  /** A nested word (a modifier's operand), up to the closing `}`, never split. */
  operand(): string {
    const inner = new Lexer(this.text, this.lookup, this.escape, false);
    inner.pos = this.pos;
    const [word = ''] = inner.words('}');
    this.pos = inner.pos;
    for (const n of inner.used) this.used.add(n);
    return word;
  }

  dollar(): string {
    this.next();
    if (this.peek() !== '{') {
      const name = this.name();
      if (name === '') return '$';
      return this.get(name) ?? '';
    }
    this.next();
    const first = this.peek();
    if (first === undefined) throw new WordError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new WordError('syntax error: bad substitution');
    const name = this.name();
    if (name === '') throw new WordError('syntax error: bad substitution');
    const op = this.next();
    const value = this.get(name);
    switch (op) {
      case '}':
        return value ?? '';
      case ':': {
        const modifier = this.next();
        const word = this.operand();
        switch (modifier) {
          case '-':
            return value === undefined || value === '' ? word : value;
          case '+':
            return value !== undefined && value !== '' ? word : '';
          case '?':
            if (value === undefined || value === '') throw new WordError(`${name}: ${word || 'is not allowed to be unset or empty'}`);
            return value;
          default:
            throw new WordError(`unsupported modifier (:${modifier ?? ''}) in substitution`);
        }
      }
      case '-': {
        const word = this.operand();
        return value === undefined ? word : value;
      }
      case '+': {
        const word = this.operand();
        return value !== undefined ? word : '';
      }
      case '?': {
        const word = this.operand();
        if (value === undefined) throw new WordError(`${name}: ${word || 'is not allowed to be unset'}`);
        return value;
      }
      default:
        throw new WordError(`unsupported modifier (${op ?? ''}) in substitution`);
    }
  }
}

/**
 * Expands one word: quotes removed, escapes applied, variables substituted.
 *
 * @throws {WordError} on unbalanced quotes, a bad `${…}` or a `${NAME:?}` of an unset variable.
 * @example
 * expandWord('${DIR:-/srv}/"a b"', (n) => undefined).value; // '/srv/a b'
 */
export function expandWord(word: string, lookup: VariableLookup, escape = '\\'): ExpandedWord {
  const lexer = new Lexer(word, lookup, escape, false);
  const [value = ''] = lexer.words();
  return { value, used: lexer.used };
}

/**
 * Expands a string and splits it into words on unquoted whitespace (also
 * the whitespace an unquoted variable expands to), as `EXPOSE` and `VOLUME`
 * read their arguments.
 *
 * @throws {WordError} as {@link expandWord}.
 */
export function expandWords(text: string, lookup: VariableLookup, escape = '\\'): { values: string[]; used: Set<string> } {
  const lexer = new Lexer(text, lookup, escape, true);
  return { values: lexer.words(), used: lexer.used };
}

/**
 * Splits an instruction's arguments into words on unquoted whitespace,
 * keeping quotes and escapes in the words (they are removed when each word
 * is expanded), as the Dockerfile parser splits `ENV`, `LABEL` and `ARG`.
 *
 * @throws {WordError} on an unterminated quote.
 */
export function splitWords(text: string, escape = '\\'): string[] {
  const words: string[] = [];
  let current = '';
  let inWord = false;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote === undefined && /\s/.test(ch)) {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
      continue;
    }
    inWord = true;
    current += ch;
    if (ch === escape && quote !== "'" && i + 1 < text.length) {
      current += text[++i];
      continue;
    }
    if (quote === undefined && (ch === '"' || ch === "'")) quote = ch;
    else if (ch === quote) quote = undefined;
  }
  if (quote !== undefined) throw new WordError(`unexpected end of statement while looking for matching ${quote === '"' ? 'double' : 'single'}-quote`);
  if (inWord) words.push(current);
  return words;
}
