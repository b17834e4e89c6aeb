/**
 * Live progress for pull, push, load, save and build, from the library's
 * {@link ProgressEvent}s. On a terminal: one line per layer (state, bytes
 * done/total, speed), or per build step (state, timing, the output tail of a
 * running `RUN`), redrawn in place with log-update. Elsewhere (CI, pipes,
 * `--progress=plain`): a plain line per change of state, never an escape code.
 *
 * @module
 */
import { createLogUpdate } from 'log-update';
import type { ProgressEvent } from '../index.js';
import { humanSize } from './format.js';

/** How progress is shown: redrawn lines, plain lines, or nothing. */
export type ProgressMode = 'tty' | 'plain' | 'quiet';

/** `--progress=auto|plain|tty` and `-q` to a mode: auto is tty on a terminal that is not dumb. */
export function progressMode(flag: string | undefined, quiet: boolean, stream: NodeJS.WriteStream): ProgressMode {
  if (quiet) return 'quiet';
  if (flag === 'plain') return 'plain';
  if (flag === 'tty') return 'tty';
  return stream.isTTY === true && process.env.TERM !== 'dumb' && !process.env.CI ? 'tty' : 'plain';
}

interface Item {
  label: string;
  state: string;
  bytes: number;
  size: number;
  startedAt: number;
  tail: string[];
  detail: string;
}

const REDRAW_MS = 100;
const TAIL_LINES = 5;

/** Turns progress events into lines on `out` in the chosen mode. */
export class ProgressDisplay {
  readonly #out: NodeJS.WriteStream;
  readonly #mode: ProgressMode;
  readonly #items = new Map<string, Item>();
  readonly #update: ReturnType<typeof createLogUpdate> | undefined;
  #header = '';
  #timer: NodeJS.Timeout | undefined;

  /** A display writing to `out` (a terminal or not, as `mode` says). */
  constructor(out: NodeJS.WriteStream, mode: ProgressMode) {
    this.#out = out;
    this.#mode = mode;
    // A terminal that reports no size (a pty nobody sized, as under script(1)) would get nothing drawn.
    const sized = {
      write: (text: string): boolean => out.write(text),
      get columns(): number {
        return out.columns > 0 ? out.columns : 80;
      },
      get rows(): number {
        return out.rows > 0 ? out.rows : 24;
      },
    } as unknown as NodeJS.WriteStream;
    this.#update = mode === 'tty' ? createLogUpdate(sized, { showCursor: true }) : undefined;
  }

  /** The listener to give as `onProgress`. */
  readonly listener = (event: ProgressEvent): void => {
    if (this.#mode === 'quiet') return;
    this.#handle(event);
    if (this.#mode === 'tty' && this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#draw();
      }, REDRAW_MS);
    }
  };

  /** Draws the final state and leaves it on the screen. */
  finish(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#update !== undefined) {
      this.#draw();
      this.#update.done();
    }
  }

  #item(key: string, label: string): Item {
    let item = this.#items.get(key);
    if (item === undefined) {
      item = { label, state: 'waiting', bytes: 0, size: 0, startedAt: Date.now(), tail: [], detail: '' };
      this.#items.set(key, item);
    }
    return item;
  }

  #set(item: Item, state: string, detail = ''): void {
    const changed = item.state !== state;
    item.state = state;
    item.detail = detail;
    if (changed && this.#mode === 'plain') this.#line(`${item.label}: ${state}${detail !== '' ? ` ${detail}` : ''}`);
  }

  #line(text: string): void {
    this.#out.write(`${text}\n`);
  }

  #handle(event: ProgressEvent): void {
    switch (event.op) {
      case 'pull': {
        if (event.type === 'resolved') {
          this.#header = `${event.reference}: pulling ${event.layers} layer${event.layers === 1 ? '' : 's'} (${humanSize(event.size)})`;
          if (this.#mode === 'plain') this.#line(this.#header);
        } else if (event.type === 'layer') {
          const item = this.#item(event.digest, shortDigest(event.digest));
          item.bytes = event.bytes;
          item.size = event.size;
          const state = {
            waiting: 'Waiting',
            exists: 'Already exists',
            downloading: event.bytes >= event.size ? 'Extracting' : 'Downloading',
            retrying: 'Retrying',
            done: 'Pull complete',
          }[event.state];
          this.#set(item, state, event.state === 'retrying' && event.error !== undefined ? `(${event.error})` : '');
        } else if (event.type === 'done') {
          this.#header = `${event.reference}: pulled, digest ${event.digest} (${humanSize(event.downloadedBytes)} downloaded)`;
          if (this.#mode === 'plain') this.#line(this.#header);
        }
        return;
      }
      case 'push': {
        if (event.type === 'blob') {
          const item = this.#item(event.digest, shortDigest(event.digest));
          item.bytes = event.bytes;
          item.size = event.size;
          const state = { waiting: 'Waiting', exists: 'Layer already exists', mounted: `Mounted from ${event.from ?? 'another repository'}`, uploading: 'Pushing', retrying: 'Retrying', done: 'Pushed' }[event.state];
          this.#set(item, state);
        } else if (event.type === 'manifest') {
          this.#header = `${event.reference}: digest: ${event.digest}`;
          if (this.#mode === 'plain') this.#line(this.#header);
        }
        return;
      }
      case 'import':
      case 'export': {
        const verb = event.op === 'import' ? 'Loading' : 'Saving';
        if (event.type === 'bytes') {
          const item = this.#item('bytes', verb);
          item.bytes = event.bytes;
          item.size = event.total ?? 0;
          this.#set(item, verb);
        } else if (event.type === 'layer') {
          const item = this.#item(event.digest, shortDigest(event.digest));
          item.bytes = event.size;
          item.size = event.size;
          this.#set(item, event.cached === true ? 'Already exists' : event.op === 'import' ? 'Loaded' : 'Saved');
        } else if (event.type === 'image') {
          const text = `${event.op === 'import' ? 'Loaded image' : 'Saved image'}: ${event.references.join(', ') || '(untagged)'}`;
          if (this.#mode === 'plain') this.#line(text);
          else this.#header = text;
        }
        return;
      }
      case 'snapshot':
        return;
      case 'build': {
        const key = `${event.stage ?? ''}#${event.step}`;
        const item = this.#item(key, `#${event.step}/${event.total} ${event.instruction}`);
        if (event.type === 'step-start') {
          item.startedAt = Date.now();
          this.#set(item, 'running');
        } else if (event.type === 'step-cached') {
          this.#set(item, 'CACHED');
        } else if (event.type === 'step-done') {
          this.#set(item, 'DONE', `${(event.durationMs / 1000).toFixed(1)}s`);
        } else if (event.type === 'step-output') {
          const lines = event.data.split('\n').filter((l) => l !== '');
          if (this.#mode === 'plain') for (const l of lines) this.#line(`#${event.step} ${l}`);
          item.tail.push(...lines);
          item.tail.splice(0, Math.max(0, item.tail.length - TAIL_LINES));
        }
        return;
      }
    }
  }

  #draw(): void {
    if (this.#update === undefined) return;
    const now = Date.now();
    const lines: string[] = [];
    if (this.#header !== '') lines.push(this.#header);
    for (const item of this.#items.values()) {
      let text = `${item.label}: ${item.state}`;
      if (item.size > 0 && item.state !== 'Already exists' && !item.state.startsWith('Mounted')) {
        const seconds = (now - item.startedAt) / 1000;
        const speed = seconds > 0.2 && item.bytes < item.size ? `  ${humanSize(item.bytes / seconds)}/s` : '';
        text += `  ${bar(item.bytes / item.size)} ${humanSize(item.bytes)}/${humanSize(item.size)}${speed}`;
      }
      if (item.state === 'running') text += `  ${((now - item.startedAt) / 1000).toFixed(1)}s`;
      if (item.detail !== '') text += `  ${item.detail}`;
      lines.push(text);
      if (item.state === 'running') for (const t of item.tail) lines.push(`    ${t}`);
    }
    this.#update(lines.join('\n'));
  }
}

function shortDigest(digest: string): string {
  return digest.replace(/^sha(256|512):/, '').slice(0, 12);
}

function bar(fraction: number): string {
  const width = 30;
  const full = Math.max(0, Math.min(width, Math.round(fraction * width)));
  return `[${'='.repeat(Math.max(0, full - 1))}${full > 0 ? '>' : ''}${' '.repeat(width - full)}]`;
}
