/**
 * Container events without a daemon: an append-only file in the state
 * directory, `events.jsonl`, one JSON object per line. Every process that uses
 * the state directory appends the events it causes (`create`, `start`, `kill`,
 * `pause`, `unpause`, `health_status`, `remove`); the helper's shim appends
 * those only it sees (`die`, `oom`, `restart`, also once the container's owner
 * is gone). Each line is written with one `write(2)` on an `O_APPEND` file and
 * is shorter than `PIPE_BUF`, so concurrent writers never interleave. Past
 * {@link EVENTS_MAX_BYTES} the file is renamed to `events.jsonl.1` (one
 * generation kept) before the next line; native/events.h uses the same bound.
 *
 * @module
 */

import { closeSync, constants as fsConstants, fstatSync, openSync, renameSync, statSync, writeSync } from 'node:fs';
import { open, rename, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import createDebug from 'debug';
import { InvalidArgumentError } from '../errors.js';
import { readJson, type ContainerConfigRecord } from './state.js';

const debug = createDebug('dockless:events');

/** Above this size the events file is rotated before a line is appended. */
export const EVENTS_MAX_BYTES = 1024 * 1024;
/** One line, newline included, stays below this (Linux's PIPE_BUF): one atomic append. */
const LINE_MAX = 4096;
const POLL_MS = 100;

/** The events file of a state directory. */
export function eventsFile(stateDir: string): string {
  return join(stateDir, 'events.jsonl');
}

/**
 * What happened to a container, as Docker's event `Action`s name it:
 * `create`, `start`, `die` (the command ended; also before each `restart`),
 * `oom` (the kernel's OOM killer killed one of its processes), `restart`
 * (its restart policy started the command again), `health_status` (its
 * healthcheck status changed), `kill` (a signal was sent by `kill()` or
 * `stop()`), `pause`, `unpause`, `update` (its resource limits were changed), `remove`.
 */
export type ContainerEventAction =
  | 'create'
  | 'start'
  | 'die'
  | 'oom'
  | 'restart'
  | 'health_status'
  | 'kill'
  | 'pause'
  | 'unpause'
  | 'update'
  | 'remove';

const ACTIONS: readonly ContainerEventAction[] = ['create', 'start', 'die', 'oom', 'restart', 'health_status', 'kill', 'pause', 'unpause', 'update', 'remove'];

/** Details of a {@link ContainerEvent}; which are present depends on the action. */
export interface ContainerEventAttributes {
  /** The container's name, when it has one. */
  name?: string;
  /** The image it was made from, when it was. */
  image?: string;
  /** `die`: the command's exit code (128 + the signal for a signal). */
  exitCode?: number;
  /** `die`: the signal that ended the command; `kill`: the signal sent (numbers). */
  signal?: number;
  /** `health_status`: the new status. */
  healthStatus?: 'starting' | 'healthy' | 'unhealthy';
  /** `restart`: how many times the restart policy restarted it so far. */
  restartCount?: number;
  /** The container's labels (the image's and the spec's), when it has any. */
  labels?: Record<string, string>;
}

/** One event of {@link Runtime.events}. */
export interface ContainerEvent {
  /** Always `container` for now, as Docker's `Type`. */
  type: 'container';
  /** What happened. */
  action: ContainerEventAction;
  /** The container's id. */
  id: string;
  /** The container's name, when it has one (also in `attributes.name`). */
  name?: string;
  /** When it happened (millisecond precision). */
  time: Date;
  /** Details: exit code, image, health status, … */
  attributes: ContainerEventAttributes;
}

/** Which events {@link Runtime.events} yields, as `docker events --filter`; within a key any value matches, all keys must match. */
export interface EventFilters {
  /** Container ids, id prefixes or names. */
  container?: readonly string[];
  /** Actions. */
  event?: readonly ContainerEventAction[];
  /** Labels: `key` (present) or `key=value`. */
  label?: readonly string[];
  /** Image references, as the containers were made from. */
  image?: readonly string[];
}

/** Options of {@link Runtime.events}. */
export interface EventsOptions {
  /**
   * Replay past events from this time on (as far back as the file and its
   * one rotated generation go), then follow. @default only events from now on
   */
  since?: Date | number;
  /** End the stream at this time; in the past, the replay ends it. @default never */
  until?: Date | number;
  /** Which events to yield. @default all */
  filters?: EventFilters;
  /** Ends the stream (the iterator returns; no error). */
  signal?: AbortSignal;
}

/** An event as the events file holds it (time in ms). */
interface EventLine {
  type: 'container';
  action: ContainerEventAction;
  id: string;
  time: number;
  attributes?: ContainerEventAttributes;
}

/** What {@link appendEvent} takes. */
export interface NewEvent {
  action: ContainerEventAction;
  id: string;
  attributes?: ContainerEventAttributes;
}

/** `event` as one line of the events file (newline included), short enough for one atomic append. */
export function eventLine(event: NewEvent): string {
  const base = { type: 'container', action: event.action, id: event.id, time: Date.now() };
  let line = `${JSON.stringify({ ...base, attributes: event.attributes ?? {} })}\n`;
  if (Buffer.byteLength(line) < LINE_MAX) return line;
  // Too long for one atomic write: labels go first, then everything but the essentials.
  const { labels: _labels, ...rest } = event.attributes ?? {};
  line = `${JSON.stringify({ ...base, attributes: rest })}\n`;
  if (Buffer.byteLength(line) < LINE_MAX) return line;
  const essentials: ContainerEventAttributes = {};
  for (const key of ['exitCode', 'signal', 'healthStatus', 'restartCount'] as const) {
    if (rest[key] !== undefined) (essentials as Record<string, unknown>)[key] = rest[key];
  }
  return `${JSON.stringify({ ...base, attributes: essentials })}\n`;
}

/**
 * Appends events to the state directory's events file. Never throws: an
 * event that cannot be written is only logged, as the operation it records happened.
 */
export async function appendEvent(stateDir: string, event: NewEvent, ...more: NewEvent[]): Promise<void> {
  const file = eventsFile(stateDir);
  const lines = [event, ...more].map(eventLine);
  let handle: FileHandle | undefined;
  try {
    handle = await open(file, fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT | fsConstants.O_NOFOLLOW, 0o644);
    const st = await handle.stat();
    if (st.size >= EVENTS_MAX_BYTES) {
      const now = await stat(file).catch(() => undefined);
      // Only the file this handle is: another writer may have rotated it already.
      if (now !== undefined && now.ino === st.ino && now.dev === st.dev) await rename(file, `${file}.1`);
      await handle.close();
      handle = await open(file, fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT | fsConstants.O_NOFOLLOW, 0o644);
    }
    // Together when they fit one atomic write (a launch's create and start), else line by line.
    const all = lines.join('');
    if (Buffer.byteLength(all) < LINE_MAX) await handle.write(all);
    else for (const line of lines) await handle.write(line);
  } catch (error) {
    debug('event %s of %s not written: %s', event.action, event.id.slice(0, 12), String(error));
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/**
 * {@link appendEvent} of one line made by {@link eventLine} to `file`, on this
 * thread: an open, a stat, a write and a close, where the async form waits for
 * the thread pool four times in a row. For the few appends that are on a
 * caller's path before the fork server can make them (see Container.remove).
 * Never throws, as appendEvent.
 */
export function appendEventLineSync(file: string, line: string): void {
  const flags = fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT | fsConstants.O_NOFOLLOW;
  let fd: number | undefined;
  try {
    fd = openSync(file, flags, 0o644);
    const st = fstatSync(fd);
    if (st.size >= EVENTS_MAX_BYTES) {
      const now = statSync(file, { throwIfNoEntry: false });
      // Only the file this descriptor is: another writer may have rotated it already.
      if (now !== undefined && now.ino === st.ino && now.dev === st.dev) renameSync(file, `${file}.1`);
      closeSync(fd);
      fd = openSync(file, flags, 0o644);
    }
    writeSync(fd, line);
  } catch (error) {
    debug('event not written to %s: %s', file, String(error));
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Where the helper's shim appends the events it alone sees, and the name and image they carry. */
export function shimEvents(stateDir: string, name: string | undefined, image: string | undefined): { file: string; name?: string; image?: string } {
  return { file: eventsFile(stateDir), ...(name !== undefined ? { name } : {}), ...(image !== undefined ? { image } : {}) };
}

/** What a launch records about its container. */
export interface LaunchAbout {
  name?: string | undefined;
  image?: string | undefined;
  labels: Record<string, string>;
}

function launchEvents(id: string, about: LaunchAbout, start: boolean): NewEvent[] {
  const attributes: ContainerEventAttributes = {
    ...(about.name !== undefined ? { name: about.name } : {}),
    ...(about.image !== undefined ? { image: about.image } : {}),
    ...(Object.keys(about.labels).length > 0 ? { labels: about.labels } : {}),
  };
  return [{ action: 'create', id, attributes }, ...(start ? [{ action: 'start' as const, id, attributes }] : [])];
}

/**
 * Records a launch: `create`, and with `start` `start` too. Written before the
 * helper runs, so that they come before anything the shim records.
 */
export async function announceLaunch(stateDir: string, id: string, about: LaunchAbout, start: boolean): Promise<void> {
  const [first, ...more] = launchEvents(id, about, start);
  await appendEvent(stateDir, first!, ...more);
}

/**
 * The lines {@link announceLaunch} appends, for the shim to append first thing
 * (`--events-launch`); undefined when they do not fit one atomic write (then
 * they are appended here, line by line).
 */
export function launchEventLines(id: string, about: LaunchAbout, start: boolean): string | undefined {
  const text = launchEvents(id, about, start).map(eventLine).join('');
  return Buffer.byteLength(text) < LINE_MAX ? text : undefined;
}

function timeOf(value: Date | number | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = value instanceof Date ? value.getTime() : value;
  if (typeof ms !== 'number' || !Number.isFinite(ms)) throw new InvalidArgumentError(`events: ${field} must be a Date or milliseconds since the epoch`);
  return ms;
}

function checkFilters(filters: EventFilters | undefined): void {
  if (filters === undefined) return;
  for (const [key, values] of Object.entries(filters)) {
    if (!['container', 'event', 'label', 'image'].includes(key)) throw new InvalidArgumentError(`events: unknown filter \`${key}\``);
    if (!Array.isArray(values) || !values.every((v) => typeof v === 'string')) {
      throw new InvalidArgumentError(`events: filter \`${key}\` must be an array of strings`);
    }
  }
  for (const action of filters.event ?? []) {
    if (!ACTIONS.includes(action)) throw new InvalidArgumentError(`events: unknown event \`${action}\``);
  }
}

/** Whether `event` passes `filters` (pure). */
export function matchesFilters(event: ContainerEvent, filters: EventFilters | undefined): boolean {
  if (filters === undefined) return true;
  const { container, event: actions, label, image } = filters;
  if (container !== undefined && container.length > 0) {
    const name = event.attributes.name;
    if (!container.some((c) => c === name || (c.length > 0 && event.id.startsWith(c)))) return false;
  }
  if (actions !== undefined && actions.length > 0 && !actions.includes(event.action)) return false;
  if (image !== undefined && image.length > 0 && !image.includes(event.attributes.image ?? '')) return false;
  if (label !== undefined && label.length > 0) {
    const labels = event.attributes.labels ?? {};
    for (const wanted of label) {
      const eq = wanted.indexOf('=');
      if (eq < 0 ? !(wanted in labels) : labels[wanted.slice(0, eq)] !== wanted.slice(eq + 1)) return false;
    }
  }
  return true;
}

function parseLine(text: string): ContainerEvent | undefined {
  let raw: EventLine;
  try {
    raw = JSON.parse(text) as EventLine;
  } catch {
    return undefined;
  }
  if (raw?.type !== 'container' || typeof raw.id !== 'string' || typeof raw.time !== 'number' || !ACTIONS.includes(raw.action)) {
    return undefined;
  }
  const attributes = { ...(raw.attributes ?? {}) };
  return {
    type: 'container',
    action: raw.action,
    id: raw.id,
    ...(attributes.name !== undefined ? { name: attributes.name } : {}),
    time: new Date(raw.time),
    attributes,
  };
}

/** Reads a file from `offset`; the complete lines and the offset after them. */
class LineReader {
  #handle: FileHandle;
  #offset: number;
  #partial = '';
  readonly ino: number;

  constructor(handle: FileHandle, ino: number, offset: number) {
    this.#handle = handle;
    this.ino = ino;
    this.#offset = offset;
  }

  static async open(path: string, fromEnd: boolean): Promise<LineReader | undefined> {
    const handle = await open(path, 'r').catch(() => undefined);
    if (handle === undefined) return undefined;
    const st = await handle.stat();
    return new LineReader(handle, st.ino, fromEnd ? st.size : 0);
  }

  async lines(): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const buf = Buffer.alloc(64 * 1024);
      const { bytesRead } = await this.#handle.read(buf, 0, buf.length, this.#offset);
      if (bytesRead === 0) return out;
      this.#offset += bytesRead;
      const text = this.#partial + buf.subarray(0, bytesRead).toString('utf8');
      const parts = text.split('\n');
      this.#partial = parts.pop() ?? '';
      out.push(...parts.filter((l) => l !== ''));
    }
  }

  close(): Promise<void> {
    return this.#handle.close().catch(() => undefined);
  }
}

/**
 * The events of every container of `stateDir`: past ones from `since` on,
 * then live ones (polled every 100 ms) until `until` or the signal.
 *
 * @internal Use {@link Runtime.events}.
 */
export function readEvents(stateDir: string, options: EventsOptions = {}): AsyncGenerator<ContainerEvent, void, undefined> {
  // Checked at the call, not at the first iteration.
  const since = timeOf(options.since, 'since');
  const until = timeOf(options.until, 'until');
  checkFilters(options.filters);
  return followEvents(stateDir, options, since, until);
}

async function* followEvents(
  stateDir: string,
  options: EventsOptions,
  since: number | undefined,
  until: number | undefined,
): AsyncGenerator<ContainerEvent, void, undefined> {
  const { signal, filters } = options;
  const aborted = () => signal?.aborted === true;
  const file = eventsFile(stateDir);
  const labels = new Map<string, Record<string, string> | undefined>();

  // Events the helper wrote carry no labels: those of the container's own events, or of its config.
  const withLabels = async (event: ContainerEvent): Promise<ContainerEvent> => {
    if (event.attributes.labels !== undefined) {
      labels.set(event.id, event.attributes.labels);
      return event;
    }
    if (filters?.label === undefined || filters.label.length === 0) return event;
    if (!labels.has(event.id)) {
      const config = await readJson<ContainerConfigRecord>(join(stateDir, event.id, 'config.json'));
      labels.set(event.id, config?.labels);
    }
    const known = labels.get(event.id);
    return known !== undefined ? { ...event, attributes: { ...event.attributes, labels: known } } : event;
  };
  const wanted = (event: ContainerEvent) =>
    (since === undefined || event.time.getTime() >= since) && (until === undefined || event.time.getTime() <= until);

  let reader: LineReader | undefined;
  try {
    if (since !== undefined) {
      const old = await LineReader.open(`${file}.1`, false);
      if (old !== undefined) {
        for (const line of await old.lines()) {
          const event = parseLine(line);
          if (event !== undefined && wanted(event)) {
            const full = await withLabels(event);
            if (matchesFilters(full, filters)) yield full;
          }
        }
        await old.close();
      }
    }
    reader = await LineReader.open(file, since === undefined);
    for (;;) {
      if (aborted()) return;
      if (reader !== undefined) {
        for (const line of await reader.lines()) {
          const event = parseLine(line);
          if (event === undefined) continue;
          if (until !== undefined && event.time.getTime() > until) return;
          if (!wanted(event)) continue;
          const full = await withLabels(event);
          if (matchesFilters(full, filters)) yield full;
          if (aborted()) return;
        }
      }
      if (until !== undefined && Date.now() > until) return;
      // A rotation: what is left of the old file was read above; the new one is read from its start.
      const now = await stat(file).catch(() => undefined);
      if (now !== undefined && now.ino !== reader?.ino) {
        await reader?.close();
        reader = await LineReader.open(file, false);
        continue;
      }
      await sleep(POLL_MS, undefined, signal !== undefined ? { signal } : {}).catch(() => undefined);
    }
  } finally {
    await reader?.close();
  }
}
