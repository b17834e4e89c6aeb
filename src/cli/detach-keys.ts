/**
 * Detach keys, as Docker's: a sequence typed on an attached terminal
 * (`ctrl-p ctrl-q` unless `--detach-keys` says otherwise) that leaves the
 * container running and ends the command. The bytes of the sequence never reach
 * the container; a partial sequence followed by another byte is passed on whole.
 *
 * @module
 */
import { Transform, type TransformCallback } from 'node:stream';
import { InvalidArgumentError } from '../index.js';

/** Docker's default detach sequence. */
export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

const CTRL_SPECIAL: Readonly<Record<string, number>> = { '@': 0, '[': 27, '\\': 28, ']': 29, '^': 30, _: 31 };

/**
 * The bytes of a detach key sequence written as Docker writes it: keys
 * separated by commas, each one character or `ctrl-X` (X a letter or one of
 * `@ [ \ ] ^ _`). An empty string turns detaching off (an empty result).
 *
 * @throws {InvalidArgumentError} for a key that is neither.
 */
export function parseDetachKeys(spec: string): Buffer {
  if (spec === '') return Buffer.alloc(0);
  return Buffer.from(
    spec.split(',').map((key) => {
      if (key.length === 1 && key.charCodeAt(0) < 0x80) return key.charCodeAt(0);
      const m = /^ctrl-(.)$/i.exec(key);
      if (m !== null) {
        const c = m[1]!;
        if (/[a-z]/i.test(c)) return c.toLowerCase().charCodeAt(0) - 0x60;
        if (c in CTRL_SPECIAL) return CTRL_SPECIAL[c]!;
      }
      throw new InvalidArgumentError(`--detach-keys: invalid key \`${key}\` (a character, or ctrl- and a letter or one of @ [ \\ ] ^ _)`);
    }),
  );
}

/**
 * Passes input through, but for the detach sequence: when it has been read
 * whole, `onDetach` is called and nothing more is passed.
 */
export class DetachKeysFilter extends Transform {
  readonly #keys: Buffer;
  readonly #onDetach: () => void;
  #matched = 0;
  #detached = false;

  /** A filter for `keys` (from {@link parseDetachKeys}; empty: never detaches). */
  constructor(keys: Buffer, onDetach: () => void) {
    super();
    this.#keys = keys;
    this.#onDetach = onDetach;
  }

  /** @internal */
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.#detached) return done();
    if (this.#keys.length === 0) return done(null, chunk);
    const out: number[] = [];
    for (const byte of chunk) {
      if (byte === this.#keys[this.#matched]) {
        this.#matched++;
        if (this.#matched === this.#keys.length) {
          this.#detached = true;
          if (out.length > 0) this.push(Buffer.from(out));
          this.#onDetach();
          return done();
        }
        continue;
      }
      // Not the sequence after all: what was held back goes on, and this byte may start it again.
      for (let i = 0; i < this.#matched; i++) out.push(this.#keys[i]!);
      // (A one-key sequence never gets here: its key completes it above.)
      this.#matched = byte === this.#keys[0] ? 1 : 0;
      if (this.#matched === 0) out.push(byte);
    }
    done(null, out.length > 0 ? Buffer.from(out) : undefined);
  }
}
