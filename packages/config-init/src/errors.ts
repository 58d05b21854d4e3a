/**
 * The error catalogue of config-init and the ONE place that maps error codes to process
 * exit codes (sysexits, SPEC §7).
 *
 * Every failure the CLI can report is a {@link ConfigInitError} with a stable string
 * `code`; {@link exitCodeFor} turns it into the exit code. Messages name flags, paths,
 * HTTP statuses and problem codes, never a configuration value or key material.
 */

/** Exit codes used by config-init (a subset of sysexits.h). */
export const EXIT = {
  OK: 0,
  USAGE: 64,
  DATAERR: 65,
  NOINPUT: 66,
  UNAVAILABLE: 69,
  SOFTWARE: 70,
  CANTCREAT: 73,
  NOPERM: 77,
  /** `exec`: the command exists but cannot be executed (as shells do). */
  NOEXEC: 126,
  /** `exec`: the command was not found (as shells do). */
  NOTFOUND: 127,
} as const;

/**
 * Every error code with its exit code. `docs/config-init.md` lists each of them; a test
 * keeps the two in step.
 */
export const ERROR_EXIT_CODES = {
  /** A flag or environment variable is missing, unknown or has a bad value. */
  CFG_INIT_ERR_USAGE: EXIT.USAGE,
  /** The client certificate, key or CA file cannot be read or is not valid PEM. */
  CFG_INIT_ERR_CREDENTIALS: EXIT.USAGE,
  /** The service answered 400: it rejected the request (name, ref or format). */
  CFG_INIT_ERR_BAD_REQUEST: EXIT.USAGE,
  /** The service's answer is malformed or unexpected (status, headers, content type, size). */
  CFG_INIT_ERR_BAD_RESPONSE: EXIT.DATAERR,
  /** The service answered 422: the configuration cannot be merged or rendered. */
  CFG_INIT_ERR_UNRENDERABLE: EXIT.DATAERR,
  /** The configuration is empty (`Config-Property-Count: 0`) and `--allow-empty` is off. */
  CFG_INIT_ERR_EMPTY_CONFIG: EXIT.DATAERR,
  /** A raw file path from the service is unsafe (`..`, absolute, backslash, NUL, duplicate). */
  CFG_INIT_ERR_UNSAFE_PATH: EXIT.DATAERR,
  /** `exec`: the configuration sets a variable that changes how a process loads code. */
  CFG_INIT_ERR_REFUSED_ENV: EXIT.DATAERR,
  /** The service answered 404: the application or the ref does not exist. */
  CFG_INIT_ERR_NOT_FOUND: EXIT.NOINPUT,
  /** The service stayed unreachable or failing (connection errors, 5xx, 429) until the deadline. */
  CFG_INIT_ERR_UNAVAILABLE: EXIT.UNAVAILABLE,
  /** The output directory or a file in it cannot be written. */
  CFG_INIT_ERR_CANNOT_WRITE: EXIT.CANTCREAT,
  /** A local file (certificate, key, CA) exists but reading it failed with an I/O error. */
  CFG_INIT_ERR_LOCAL_IO: EXIT.CANTCREAT,
  /** 401/403, or the server rejected our client certificate during the TLS handshake. */
  CFG_INIT_ERR_NOT_AUTHORIZED: EXIT.NOPERM,
  /** The server's certificate did not verify against the CA (wrong CA, name, or expired). */
  CFG_INIT_ERR_SERVER_UNTRUSTED: EXIT.NOPERM,
  /** A bug: an exception config-init did not expect. */
  CFG_INIT_ERR_INTERNAL: EXIT.SOFTWARE,
  /** `exec`: the command exists but is not executable (EACCES, ENOEXEC). */
  CFG_INIT_ERR_COMMAND_NOT_EXECUTABLE: EXIT.NOEXEC,
  /** `exec`: the command was not found (ENOENT, or not on PATH). */
  CFG_INIT_ERR_COMMAND_NOT_FOUND: EXIT.NOTFOUND,
} as const;

/** A stable error code of config-init. */
export type ErrorCode = keyof typeof ERROR_EXIT_CODES;

/** Base class of every error config-init reports. */
export class ConfigInitError extends Error {
  /** Stable machine-readable code; see {@link ERROR_EXIT_CODES}. */
  readonly code: ErrorCode;

  /**
   * @param code - the stable code, which decides the exit code.
   * @param message - human text; names flags, paths, statuses; never configuration values.
   * @param options - optional `cause` (kept for debugging, never printed verbatim).
   */
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigInitError';
    this.code = code;
  }
}

/** A bad command line or environment (exit 64). */
export class UsageError extends ConfigInitError {
  /** @param message - names the flag and its environment variable. */
  constructor(message: string, options?: { cause?: unknown }) {
    super('CFG_INIT_ERR_USAGE', message, options);
    this.name = 'UsageError';
  }
}

/** A failure while talking to config-service (exit 64, 65, 66, 69 or 77 by code). */
export class FetchError extends ConfigInitError {
  /** HTTP status of the last answer, when there was one. */
  readonly status: number | undefined;
  /** Problem `code` from an `application/problem+json` body, when there was one. */
  readonly problemCode: string | undefined;

  /**
   * @param code - the stable code.
   * @param message - human text without configuration values.
   * @param data - HTTP status and problem code, and an optional cause.
   */
  constructor(
    code: ErrorCode,
    message: string,
    data: { status?: number; problemCode?: string; cause?: unknown } = {},
  ) {
    super(code, message, { cause: data.cause });
    this.name = 'FetchError';
    this.status = data.status;
    this.problemCode = data.problemCode;
  }
}

/** The output could not be published (exit 73). */
export class PublishError extends ConfigInitError {
  /** @param message - names the path; @param options - the underlying fs error as `cause`. */
  constructor(message: string, options?: { cause?: unknown }) {
    super('CFG_INIT_ERR_CANNOT_WRITE', message, options);
    this.name = 'PublishError';
  }
}

/**
 * The exit code for any thrown value: a {@link ConfigInitError}'s code decides; anything
 * else is a bug (70).
 */
export function exitCodeFor(err: unknown): number {
  if (err instanceof ConfigInitError) return ERROR_EXIT_CODES[err.code];
  return EXIT.SOFTWARE;
}

/** Wraps any thrown value as a {@link ConfigInitError} (unknown values become `CFG_INIT_ERR_INTERNAL`). */
export function toConfigInitError(err: unknown): ConfigInitError {
  if (err instanceof ConfigInitError) return err;
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return new ConfigInitError('CFG_INIT_ERR_INTERNAL', `internal error: ${text}`, { cause: err });
}
