/**
 * Wait strategies: small objects that say when a started container is ready,
 * composable with `Wait.all()` / `Wait.any()` under the one deadline that
 * `startContainer()` gives (its `startupTimeout`), which aborts `signal`.
 *
 * @module
 */

import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError, NotReadyError, UnhealthyError, type Container, type PortProtocol, type PublishedPort } from '../index.js';
import { listeningSockets } from './proc-net.js';

/** What a wait strategy is given: the container, where its ports are published, and the deadline as a signal. */
export interface WaitContext {
  /** The started container. */
  readonly container: Container;
  /** The host address its published ports are reached on (see `StartedContainer.host`). */
  readonly host: string;
  /** The ports published, as bound. */
  readonly ports: readonly PublishedPort[];
  /** The host port a container port is published on; throws when it is not published. */
  getMappedPort(port: number | string): number;
  /** Aborted when the startup deadline passes or the container exits (for strategies that do not expect an exit). */
  readonly signal: AbortSignal;
}

/**
 * When a container is ready. `waitUntilReady` resolves once it is, and
 * rejects when it can tell it never will be (a {@link NotReadyError} with
 * `reason: 'failed'`) or when `context.signal` aborts.
 */
export interface WaitStrategy {
  /** What is waited for, for people: `listening ports 8080/tcp`. */
  readonly description: string;
  /** The container ending is part of being ready (`Wait.forExit()`): its exit does not fail the wait. */
  readonly expectsExit: boolean;
  /** Resolves once the container is ready. */
  waitUntilReady(context: WaitContext): Promise<void>;
}

/** Options of {@link Wait.forHttp}. */
export interface HttpWaitOptions {
  /** The status that counts as ready: a number, or a predicate. @default 200 to 299 */
  status?: number | ((status: number) => boolean);
  /** The body that counts as ready: a string it contains, a pattern it matches, or a predicate. @default any body */
  body?: string | RegExp | ((body: string) => boolean);
  /** Speak HTTPS; the server's certificate is not verified (test servers have throwaway ones). @default false */
  tls?: boolean;
  /** The request method. @default 'GET' */
  method?: string;
  /** Request headers. @default {} */
  headers?: Readonly<Record<string, string>>;
}

/** Options of {@link Wait.forExit}. */
export interface ExitWaitOptions {
  /** The exit code that counts as success, or `'any'`. @default 0 */
  exitCode?: number | 'any';
}

/** How long a polling strategy waits between two checks, in milliseconds. */
const POLL_MS = 50;

/** Parses `5432`, `'5432'`, `'53/udp'`. */
export function parsePortKey(port: number | string, context: string): { port: number; protocol: PortProtocol } {
  const match = /^(\d+)(?:\/(tcp|udp))?$/.exec(String(port));
  const n = match === null ? NaN : Number(match[1]);
  if (match === null || !Number.isInteger(n) || n < 1 || n > 65535) {
    throw new InvalidArgumentError(`${context}: port \`${String(port)}\` is not a port number from 1 to 65535, optionally with /tcp or /udp`);
  }
  return { port: n, protocol: (match[2] as PortProtocol | undefined) ?? 'tcp' };
}

function failed(description: string, message: string, cause?: unknown): NotReadyError {
  return new NotReadyError(`wait for ${description}: ${message}`, { reason: 'failed', waitedFor: description, ...(cause !== undefined ? { cause } : {}) });
}

function matchesBody(expected: HttpWaitOptions['body'], body: string): boolean {
  if (expected === undefined) return true;
  if (typeof expected === 'string') return body.includes(expected);
  if (expected instanceof RegExp) return new RegExp(expected.source, expected.flags.replace(/[gy]/g, '')).test(body);
  return expected(body);
}

function fetchOnce(url: string, options: HttpWaitOptions, signal: AbortSignal): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const send = options.tls === true ? httpsRequest : httpRequest;
    const req = send(url, { method: options.method ?? 'GET', headers: { ...options.headers }, signal, rejectUnauthorized: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 1 << 20) body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.setTimeout(2000, () => req.destroy(new Error('no answer in 2 s')));
    req.on('error', reject);
    req.end();
  });
}

/** The wait strategies; give one (or a composition) as `wait` to `startContainer()`. */
export const Wait = {
  /**
   * The container's processes listen on these container ports (`5432`,
   * `'53/udp'`), read from the host in `/proc/<pid>/net/tcp*` and `udp*`:
   * nothing is needed inside the image. With no ports: every published port,
   * or, when none is published, any one listening socket.
   */
  forListeningPorts(...ports: (number | string)[]): WaitStrategy {
    const wanted = ports.map((p) => parsePortKey(p, 'Wait.forListeningPorts'));
    const named = (list: { port: number; protocol: string }[]) => list.map((p) => `${p.port}/${p.protocol}`).join(', ');
    return {
      description: wanted.length > 0 ? `listening ports ${named(wanted)}` : 'listening ports (the published ones, else any)',
      expectsExit: false,
      async waitUntilReady(context) {
        const required = wanted.length > 0 ? wanted : context.ports.map((p) => ({ port: p.container, protocol: p.protocol }));
        const ready = (sockets: { port: number; protocol: string }[]) => {
          const open = new Set(sockets.map((s) => `${s.port}/${s.protocol}`));
          return required.length === 0 ? open.size > 0 : required.every((p) => open.has(`${p.port}/${p.protocol}`));
        };
        // A server is often up within milliseconds: look soon, then back off to the usual interval.
        for (let delay = 2; ; delay = Math.min(delay * 2, POLL_MS)) {
          // The init's network namespace is almost always every process's: one read, no walk of /proc.
          if (ready(await listeningSockets([context.container.pid]))) return;
          const processes = delay === POLL_MS ? await context.container.top().catch(() => []) : [];
          if (processes.length > 0 && ready(await listeningSockets(processes.map((p) => p.pid)))) return;
          await sleep(delay, undefined, { signal: context.signal });
        }
      },
    };
  },

  /**
   * A log line (stdout or stderr, read from the start of the log) matches
   * `pattern` (a regular expression, or a string the line contains), `times` times.
   */
  forLogMessage(pattern: RegExp | string, times = 1): WaitStrategy {
    if (!Number.isInteger(times) || times < 1) throw new InvalidArgumentError('Wait.forLogMessage: times must be a whole number, 1 or more');
    const regex = typeof pattern === 'string' ? undefined : new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
    const matches = (line: string) => (regex !== undefined ? regex.test(line) : line.includes(pattern as string));
    const description = `log message ${regex !== undefined ? String(regex) : JSON.stringify(pattern)}${times > 1 ? ` ${times} times` : ''}`;
    return {
      description,
      expectsExit: false,
      async waitUntilReady(context) {
        let seen = 0;
        for await (const line of context.container.logs({ follow: true, signal: context.signal })) {
          if (matches(line.text.replace(/\r?\n$/, '')) && ++seen >= times) return;
        }
        throw new NotReadyError(`wait for ${description}: the log ended (the container exited) after ${seen} of ${times}`, {
          reason: 'exited',
          waitedFor: description,
        });
      },
    };
  },

  /**
   * An HTTP request to `path` on the host port that container port `port` is
   * published on is answered with the expected status (and body).
   */
  forHttp(path: string, port: number | string, options: HttpWaitOptions = {}): WaitStrategy {
    const key = parsePortKey(port, 'Wait.forHttp');
    if (key.protocol !== 'tcp') throw new InvalidArgumentError(`Wait.forHttp: port \`${String(port)}\` is not a TCP port`);
    const { status } = options;
    const statusOk = (s: number) => (status === undefined ? s >= 200 && s < 300 : typeof status === 'number' ? s === status : status(s));
    const description = `${options.tls === true ? 'https' : 'http'} ${options.method ?? 'GET'} ${path} on port ${key.port}`;
    return {
      description,
      expectsExit: false,
      async waitUntilReady(context) {
        const host = context.host.includes(':') ? `[${context.host}]` : context.host;
        const url = `${options.tls === true ? 'https' : 'http'}://${host}:${context.getMappedPort(key.port)}${path.startsWith('/') ? path : `/${path}`}`;
        for (;;) {
          const answer = await fetchOnce(url, options, context.signal).catch(() => undefined);
          if (answer !== undefined && statusOk(answer.status) && matchesBody(options.body, answer.body)) return;
          await sleep(POLL_MS * 2, undefined, { signal: context.signal });
        }
      },
    };
  },

  /** The container's healthcheck (the spec's `healthcheck`, else the image's) reports `healthy`. */
  forHealthcheck(): WaitStrategy {
    const description = 'healthcheck';
    return {
      description,
      expectsExit: false,
      async waitUntilReady(context) {
        try {
          await context.container.waitHealthy({ signal: context.signal });
        } catch (error) {
          if (error instanceof UnhealthyError && error.reason === 'unhealthy') throw failed(description, `container is unhealthy: ${error.output ?? ''}`.trim(), error);
          throw error;
        }
      },
    };
  },

  /** A command run in the container (as `container.output()`) exits 0; tried again until it does. */
  forSuccessfulCommand(cmd: readonly string[]): WaitStrategy {
    if (!Array.isArray(cmd) || cmd.length === 0) throw new InvalidArgumentError('Wait.forSuccessfulCommand: cmd must be a non-empty array');
    return {
      description: `command ${JSON.stringify(cmd)} to succeed`,
      expectsExit: false,
      async waitUntilReady(context) {
        for (;;) {
          const result = await context.container.output(cmd, { signal: context.signal }).catch(() => undefined);
          if (result?.exitCode === 0) return;
          await sleep(POLL_MS * 2, undefined, { signal: context.signal });
        }
      },
    };
  },

  /** The container's command ends (a one-shot job), with exit code 0 unless `options.exitCode` says otherwise. */
  forExit(options: ExitWaitOptions = {}): WaitStrategy {
    const expected = options.exitCode ?? 0;
    const description = expected === 'any' ? 'exit' : `exit with code ${expected}`;
    return {
      description,
      expectsExit: true,
      async waitUntilReady(context) {
        const status = await context.container.wait({ signal: context.signal });
        if (expected !== 'any' && status.exitCode !== expected) {
          throw failed(description, `container exited with code ${status.exitCode}${status.signal !== null && status.signal !== undefined ? ` (${status.signal})` : ''}`);
        }
      },
    };
  },

  /** Every strategy is satisfied (they are checked at the same time); the first failure fails all. */
  all(...strategies: WaitStrategy[]): WaitStrategy {
    if (strategies.length === 0) throw new InvalidArgumentError('Wait.all: give at least one strategy');
    return {
      description: strategies.map((s) => s.description).join(' and '),
      expectsExit: strategies.some((s) => s.expectsExit),
      async waitUntilReady(context) {
        const stop = new AbortController();
        const signal = AbortSignal.any([context.signal, stop.signal]);
        try {
          await Promise.all(strategies.map((s) => s.waitUntilReady({ ...context, signal })));
        } finally {
          stop.abort();
        }
      },
    };
  },

  /** One strategy is satisfied (the others are then stopped); fails when every one has failed. */
  any(...strategies: WaitStrategy[]): WaitStrategy {
    if (strategies.length === 0) throw new InvalidArgumentError('Wait.any: give at least one strategy');
    return {
      description: strategies.map((s) => s.description).join(' or '),
      expectsExit: strategies.some((s) => s.expectsExit),
      async waitUntilReady(context) {
        const stop = new AbortController();
        const signal = AbortSignal.any([context.signal, stop.signal]);
        try {
          await Promise.any(strategies.map((s) => s.waitUntilReady({ ...context, signal })));
        } catch (error) {
          throw error instanceof AggregateError ? (error.errors.find((e) => e instanceof NotReadyError) ?? error.errors[0]) : error;
        } finally {
          stop.abort();
        }
      },
    };
  },
} as const;
