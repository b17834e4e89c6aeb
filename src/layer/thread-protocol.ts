import * as errors from '../errors.js';
import type { ApplierOptions } from './apply.js';

/** What the unpack thread is told, in order, for one layer. */
export type ToWorker =
  | { type: 'start'; job: number; root: string; options: ApplierOptions }
  | { type: 'data'; job: number; chunk: Uint8Array }
  | { type: 'end'; job: number }
  | { type: 'abort'; job: number };

/** What the unpack thread answers. */
export type FromWorker =
  /** `bytes` of the job's data were applied. */
  | { type: 'ack'; job: number; bytes: number; entries: number }
  | { type: 'done'; job: number; entries: number }
  | { type: 'error'; job: number; error: SerializedError }
  /** The job is over after an abort or an error: the thread holds nothing of it any more. */
  | { type: 'closed'; job: number };

/** An error as it crosses threads: structured clone keeps neither the class nor Node's `code`. */
export interface SerializedError {
  name: string;
  message: string;
  fields: Record<string, unknown>;
  cause?: SerializedError | undefined;
}

/** Every error class of ours, by name: a revived error keeps its class whichever one it was. */
const CLASSES = Object.fromEntries(
  Object.entries(errors).filter(([, value]) => typeof value === 'function' && value.prototype instanceof errors.DocklessError),
) as Record<string, new (message: string, details: never) => errors.DocklessError>;

/** The fields of `error` worth keeping across threads (Node's `code`, `errno`, `syscall`, `path`, a dockless error's details). */
export function serializeError(error: unknown, depth = 0): SerializedError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error), fields: {} };
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(error)) {
    if (key === 'cause' || key === 'name' || key === 'message') continue;
    if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) fields[key] = value;
  }
  const cause = (error as { cause?: unknown }).cause;
  return {
    name: error.name,
    message: error.message,
    fields,
    ...(cause !== undefined && depth < 4 ? { cause: serializeError(cause, depth + 1) } : {}),
  };
}

/** The error {@link serializeError} described, with its class when it is one of ours, else a plain `Error` with its fields. */
export function reviveError(serialized: SerializedError): Error {
  const cause = serialized.cause === undefined ? undefined : reviveError(serialized.cause);
  const Class = CLASSES[serialized.name];
  if (Class !== undefined) {
    const { code: _code, ...details } = serialized.fields;
    return new Class(serialized.message, { ...details, ...(cause !== undefined ? { cause } : {}) } as never);
  }
  const error = new Error(serialized.message, cause !== undefined ? { cause } : undefined);
  Object.assign(error, serialized.fields);
  if (serialized.name !== 'Error') error.name = serialized.name;
  return error;
}
