/**
 * The error classes of dockless. Every error thrown by the library is a
 * {@link DocklessError}; callers branch on the class or on its stable `code`,
 * never on the message text. Messages are lowercase, outer context first:
 * `` unpack layer sha256:ab12…: mkdir `/etc`: EACCES ``.
 *
 * @module
 */

/** Options shared by every dockless error constructor. */
export interface DocklessErrorOptions {
  /** The error this one wraps. */
  cause?: unknown;
  /** The file or directory the failure concerns, when there is one. */
  path?: string;
}

/**
 * The base class of every error dockless throws.
 *
 * | code | class | meaning |
 * |---|---|---|
 * | `ERR_DOCKLESS_NOT_FOUND` | {@link NotFoundError} | a container, image, blob, file or reference does not exist |
 * | `ERR_DOCKLESS_ALREADY_EXISTS` | {@link AlreadyExistsError} | the name or id is taken |
 * | `ERR_DOCKLESS_INVALID_ARGUMENT` | {@link InvalidArgumentError} | a malformed reference, spec field or input |
 * | `ERR_DOCKLESS_INVALID_STATE` | {@link InvalidStateError} | the operation is not allowed in the object's current status |
 * | `ERR_DOCKLESS_DIGEST_MISMATCH` | {@link DigestMismatchError} | content does not match its digest or size |
 * | `ERR_DOCKLESS_PERMISSION` | {@link PermissionError} | the caller lacks a privilege the operation needs |
 * | `ERR_DOCKLESS_UNSAFE_CONTENT` | {@link UnsafeContentError} | untrusted input (a layer tar) tried to escape its bounds |
 * | `ERR_DOCKLESS_HELPER` | {@link HelperError} | the native helper reported a failed step or died |
 * | `ERR_DOCKLESS_ABORTED` | {@link AbortError} | the operation was cancelled through its `AbortSignal` |
 * | `ERR_DOCKLESS_UNAVAILABLE` | {@link UnavailableError} | a remote service (a registry) cannot be reached or keeps failing |
 * | `ERR_DOCKLESS_BUILD` | {@link BuildError} | a build step's command failed (a `RUN` exited non-zero) |
 * | `ERR_DOCKLESS_OUTPUT_LIMIT` | {@link OutputLimitError} | a command wrote more than the `maxBuffer` of `output()` allowed; it was killed |
 * | `ERR_DOCKLESS_UNHEALTHY` | {@link UnhealthyError} | `waitHealthy()` gave up: the container became unhealthy, stopped, or was not healthy in time |
 * | `ERR_DOCKLESS_NOT_READY` | {@link NotReadyError} | a `dockless/testing` wait strategy gave up: the timeout passed, or the container exited first |
 * | `ERR_DOCKLESS_UNSUPPORTED` | {@link UnsupportedError} | the input asks for something dockless cannot do yet (an OCI config field); the error names the field |
 * | `ERR_DOCKLESS_IO` | {@link IOError} | a filesystem operation failed for a reason none of the above names (disk full, I/O error, …) |
 *
 * The base class itself is never thrown: every error is one of the subclasses.
 */
export class DocklessError extends Error {
  /** A stable, machine-readable code; see the table on {@link DocklessError}. */
  readonly code: string = 'ERR_DOCKLESS';
  /** The file or directory the failure concerns, when there is one. */
  readonly path?: string;

  constructor(message: string, options: DocklessErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    if (options.path !== undefined) this.path = options.path;
  }
}

/** A container, image, blob, file or reference does not exist. */
export class NotFoundError extends DocklessError {
  override readonly code = 'ERR_DOCKLESS_NOT_FOUND';
}

/** The name or id is already taken. */
export class AlreadyExistsError extends DocklessError {
  override readonly code = 'ERR_DOCKLESS_ALREADY_EXISTS';
}

/** A malformed reference, spec field or other input. */
export class InvalidArgumentError extends DocklessError {
  override readonly code = 'ERR_DOCKLESS_INVALID_ARGUMENT';
}

/** The operation is not allowed in the object's current status (for example starting a stopped container). */
export class InvalidStateError extends DocklessError {
  override readonly code = 'ERR_DOCKLESS_INVALID_STATE';
}

/** Details carried by an {@link UnsupportedError}. */
export interface UnsupportedErrorDetails extends DocklessErrorOptions {
  /** The input field asked for, e.g. `linux.resources.blockIO` of an OCI config. */
  field?: string;
}

/**
 * The input asks for something dockless cannot do yet, such as a field of an
 * OCI runtime config the library has no counterpart for. It is refused rather
 * than ignored; {@link UnsupportedError.field} names the field.
 */
export class UnsupportedError extends DocklessError {
  override readonly code = 'ERR_DOCKLESS_UNSUPPORTED';
  /** The field asked for. */
  readonly field?: string;

  constructor(message: string, details: UnsupportedErrorDetails = {}) {
    super(message, details);
    if (details.field !== undefined) this.field = details.field;
  }
}

/** The caller lacks a privilege the operation needs. */
export class PermissionError extends DocklessError {
  override readonly code = 'ERR_DOCKLESS_PERMISSION';
}

/** The operation was cancelled through its `AbortSignal`. */
export class AbortError extends DocklessError {
  override readonly code = 'ERR_DOCKLESS_ABORTED';
}

/** Details carried by an {@link OutputLimitError}. */
export interface OutputLimitErrorDetails extends DocklessErrorOptions {
  /** The stream that went over the limit. */
  stream?: 'stdout' | 'stderr';
  /** The limit, in bytes. */
  maxBuffer?: number;
}

/**
 * A command run by `runtime.output()` or `container.output()` wrote more than
 * `maxBuffer` bytes on one stream; it was killed (SIGKILL) and its output dropped.
 */
export class OutputLimitError extends DocklessError {
  override readonly code = 'ERR_DOCKLESS_OUTPUT_LIMIT';
  /** The stream that went over the limit. */
  readonly stream?: 'stdout' | 'stderr';
  /** The limit, in bytes. */
  readonly maxBuffer?: number;

  constructor(message: string, details: OutputLimitErrorDetails = {}) {
    super(message, details);
    if (details.stream !== undefined) this.stream = details.stream;
    if (details.maxBuffer !== undefined) this.maxBuffer = details.maxBuffer;
  }
}

/** Details carried by an {@link UnhealthyError}. */
export interface UnhealthyErrorDetails extends DocklessErrorOptions {
  /** Why waiting ended: the healthcheck said `unhealthy`, the container stopped, or the timeout passed. */
  reason?: 'unhealthy' | 'exited' | 'timeout';
  /** The exit code of the last healthcheck run (-1: it timed out or could not run), when one ran. */
  exitCode?: number;
  /** The output (stdout and stderr) of the last healthcheck run, when one ran. */
  output?: string;
}

/**
 * `container.waitHealthy()` gave up: the container's healthcheck reported
 * `unhealthy`, the container stopped, or it was not healthy before the
 * timeout. Carries the last check's exit code and output.
 */
export class UnhealthyError extends DocklessError {
  override readonly code = 'ERR_DOCKLESS_UNHEALTHY';
  /** Why waiting ended. */
  readonly reason?: 'unhealthy' | 'exited' | 'timeout';
  /** The exit code of the last healthcheck run, when one ran. */
  readonly exitCode?: number;
  /** The output of the last healthcheck run, when one ran. */
  readonly output?: string;

  constructor(message: string, details: UnhealthyErrorDetails = {}) {
    super(message, details);
    if (details.reason !== undefined) this.reason = details.reason;
    if (details.exitCode !== undefined) this.exitCode = details.exitCode;
    if (details.output !== undefined) this.output = details.output;
  }
}

/** Details carried by a {@link NotReadyError}. */
export interface NotReadyErrorDetails extends DocklessErrorOptions {
  /** Why waiting ended: the deadline passed, the container exited first, or the check itself failed for good. */
  reason?: 'timeout' | 'exited' | 'failed';
  /** What was waited for, e.g. `listening ports 5432/tcp`. */
  waitedFor?: string;
  /** The milliseconds the wait was given. */
  timeoutMs?: number;
  /** The last lines of the container's log (stdout and stderr, newline removed), oldest first. */
  logTail?: readonly string[];
}

/**
 * A wait strategy of `dockless/testing` gave up: it was not satisfied before
 * the startup timeout, the container exited before it was, or what it checks
 * failed for good (`Wait.forExit()` with a non-zero exit). Carries what it
 * waited for and the last lines of the container's log, which usually say why.
 */
export class NotReadyError extends DocklessError {
  override readonly code = 'ERR_DOCKLESS_NOT_READY';
  /** Why waiting ended. */
  readonly reason?: 'timeout' | 'exited' | 'failed';
  /** What was waited for. */
  readonly waitedFor?: string;
  /** The milliseconds the wait was given. */
  readonly timeoutMs?: number;
  /** The last lines of the container's log, oldest first. */
  readonly logTail: readonly string[];

  constructor(message: string, details: NotReadyErrorDetails = {}) {
    super(message, details);
    if (details.reason !== undefined) this.reason = details.reason;
    if (details.waitedFor !== undefined) this.waitedFor = details.waitedFor;
    if (details.timeoutMs !== undefined) this.timeoutMs = details.timeoutMs;
    this.logTail = details.logTail ?? [];
  }
}

/** Details carried by an {@link UnavailableError}. */
export interface UnavailableErrorDetails extends DocklessErrorOptions {
  /** The service that failed, e.g. the registry host `registry.example.com:5000`. */
  registry?: string;
  /** The HTTP status of its last answer, when it answered at all. */
  status?: number;
}

/**
 * A remote service cannot be reached or keeps failing: connection refused or
 * cut, a timeout, or HTTP 5xx / 429 after the retries ran out. Trying again
 * later may succeed.
 */
export class UnavailableError extends DocklessError {
  override readonly code = 'ERR_DOCKLESS_UNAVAILABLE';
  /** The service that failed, e.g. the registry host `registry.example.com:5000`. */
  readonly registry?: string;
  /** The HTTP status of its last answer, when it answered at all. */
  readonly status?: number;

  constructor(message: string, details: UnavailableErrorDetails = {}) {
    super(message, details);
    if (details.registry !== undefined) this.registry = details.registry;
    if (details.status !== undefined) this.status = details.status;
  }
}

/** Details carried by a {@link BuildError}. */
export interface BuildErrorDetails extends DocklessErrorOptions {
  /** The step's number, from 1. */
  step?: number;
  /** The step's instruction, e.g. `RUN /bin/sh -c make`. */
  instruction?: string;
  /** The Dockerfile line of the instruction (from 1), for a Dockerfile build. */
  line?: number;
  /** The command's exit code. */
  exitCode?: number;
  /** The last part of the command's output (stdout and stderr, interleaved). */
  output?: string;
}

/**
 * A build step failed: a `RUN` command exited non-zero (or was killed). The
 * build made no layer for it and tagged nothing.
 */
export class BuildError extends DocklessError {
  override readonly code = 'ERR_DOCKLESS_BUILD';
  /** The step's number, from 1. */
  readonly step?: number;
  /** The step's instruction. */
  readonly instruction?: string;
  /** The Dockerfile line of the instruction (from 1), for a Dockerfile build. */
  readonly line?: number;
  /** The command's exit code. */
  readonly exitCode?: number;
  /** The last part of the command's output. */
  readonly output?: string;

  constructor(message: string, details: BuildErrorDetails = {}) {
    super(message, details);
    if (details.step !== undefined) this.step = details.step;
    if (details.instruction !== undefined) this.instruction = details.instruction;
    if (details.line !== undefined) this.line = details.line;
    if (details.exitCode !== undefined) this.exitCode = details.exitCode;
    if (details.output !== undefined) this.output = details.output;
  }
}

/** Details carried by an {@link IOError}. */
export interface IOErrorDetails extends DocklessErrorOptions {
  /** The operation that failed, e.g. `readdir` or `rename`. */
  syscall?: string;
  /** The errno name, e.g. `ENOSPC`. */
  errnoCode?: string;
}

/**
 * A filesystem operation failed for a reason that is none of the other
 * classes' (not a missing file, not a permission): the disk is full, an I/O
 * error, a read-only filesystem, too many open files. The wrapped Node error
 * is the `cause`.
 */
export class IOError extends DocklessError {
  override readonly code = 'ERR_DOCKLESS_IO';
  /** The operation that failed, e.g. `readdir` or `rename`. */
  readonly syscall?: string;
  /** The errno name, e.g. `ENOSPC`. */
  readonly errnoCode?: string;

  constructor(message: string, details: IOErrorDetails = {}) {
    super(message, details);
    if (details.syscall !== undefined) this.syscall = details.syscall;
    if (details.errnoCode !== undefined) this.errnoCode = details.errnoCode;
  }
}

/**
 * Untrusted input tried to leave the directory it belongs in: a layer tar entry,
 * or an image with a symlink where the runtime mounts something of its own
 * (`/proc`, `/sys`, `/dev`, `/etc/hosts`, …; runc's CVE-2019-16884 class).
 */
export class UnsafeContentError extends DocklessError {
  override readonly code = 'ERR_DOCKLESS_UNSAFE_CONTENT';
}

/** Details carried by a {@link DigestMismatchError}. */
export interface DigestMismatchDetails extends DocklessErrorOptions {
  /** The digest the content should have had. */
  expected: string;
  /** The digest the content had, when it was computed. */
  actual?: string;
}

/** Content does not match the digest (or size) it was announced with. */
export class DigestMismatchError extends DocklessError {
  override readonly code = 'ERR_DOCKLESS_DIGEST_MISMATCH';
  /** The digest the content should have had. */
  readonly expected: string;
  /** The digest the content had, when it was computed. */
  readonly actual?: string;

  constructor(message: string, details: DigestMismatchDetails) {
    super(message, details);
    this.expected = details.expected;
    if (details.actual !== undefined) this.actual = details.actual;
  }
}

/** Details carried by a {@link HelperError}. */
export interface HelperErrorDetails extends DocklessErrorOptions {
  /** The helper subcommand, e.g. `run`. */
  op: string;
  /** The step that failed, e.g. `pivot_root` or `mount`. */
  step?: string;
  /** The errno number the step failed with. */
  errno?: number;
  /** The errno name, e.g. `ENOENT`. */
  errnoCode?: string;
  /** The helper's exit code, when it exited. */
  exitCode?: number | null;
  /** The signal that ended the helper, when one did. */
  signal?: string | null;
  /** The last lines the helper wrote on stderr. */
  stderr?: string;
}

/** The native helper reported a failed step, exited unexpectedly or could not be started. */
export class HelperError extends DocklessError {
  override readonly code = 'ERR_DOCKLESS_HELPER';
  /** The helper subcommand, e.g. `run`. */
  readonly op: string;
  /** The step that failed, e.g. `pivot_root` or `mount`. */
  readonly step?: string;
  /** The errno number the step failed with. */
  readonly errno?: number;
  /** The errno name, e.g. `ENOENT`. */
  readonly errnoCode?: string;
  /** The helper's exit code, when it exited. */
  readonly exitCode?: number | null;
  /** The signal that ended the helper, when one did. */
  readonly signal?: string | null;
  /** The last lines the helper wrote on stderr. */
  readonly stderr?: string;

  constructor(message: string, details: HelperErrorDetails) {
    super(message, details);
    this.op = details.op;
    if (details.step !== undefined) this.step = details.step;
    if (details.errno !== undefined) this.errno = details.errno;
    if (details.errnoCode !== undefined) this.errnoCode = details.errnoCode;
    if (details.exitCode !== undefined) this.exitCode = details.exitCode;
    if (details.signal !== undefined) this.signal = details.signal;
    if (details.stderr !== undefined) this.stderr = details.stderr;
  }
}
