/**
 * The one error catalogue of config-service.
 *
 * Every error the service raises on purpose is made here with `@fastify/error`'s
 * `createError`, so it carries a stable `code` (`CFG_ERR_<AREA>_<WHAT>`), an HTTP
 * `statusCode` and a message built from `%s` arguments. The HTTP layer turns an error
 * into an RFC 9457 problem document whose `code` member is {@link problemCode} of it
 * (`CFG_ERR_APP_NOT_FOUND` → `app_not_found`).
 *
 * Rules for messages: name what was wrong and where (file, line, key, setting), never a
 * configuration value, a credential or a key. Machine-readable details go in `data`.
 *
 * `docs/errors.md` lists every code with its cause and how to solve it; a test keeps the
 * two in step.
 */
import createError, { type FastifyErrorConstructor } from '@fastify/error';

/** Prefix shared by every code of this package. */
export const ERROR_PREFIX = 'CFG_ERR_';

// --- request validation (400) ---
export const CFG_ERR_INVALID_NAME = createError('CFG_ERR_INVALID_NAME', 'Invalid %s name: %s', 400);
export const CFG_ERR_INVALID_REF = createError('CFG_ERR_INVALID_REF', 'Invalid ref: %s', 400);
export const CFG_ERR_INVALID_REQUEST = createError('CFG_ERR_INVALID_REQUEST', 'Invalid request: %s', 400);

// --- identity and access (401, 403) ---
export const CFG_ERR_UNAUTHENTICATED = createError('CFG_ERR_UNAUTHENTICATED', 'Authentication required: %s', 401);
export const CFG_ERR_FORBIDDEN = createError('CFG_ERR_FORBIDDEN', 'Forbidden: %s', 403);

// --- configuration lookup (404, 422) ---
export const CFG_ERR_APP_NOT_FOUND = createError('CFG_ERR_APP_NOT_FOUND', "Application '%s' not found", 404);
export const CFG_ERR_REF_NOT_FOUND = createError('CFG_ERR_REF_NOT_FOUND', "Ref '%s' not found in repository '%s'", 404);
export const CFG_ERR_DOCUMENT_INVALID = createError('CFG_ERR_DOCUMENT_INVALID', '%s', 422);
export const CFG_ERR_UNRENDERABLE = createError('CFG_ERR_UNRENDERABLE', '%s', 422);
export const CFG_ERR_UNSUPPORTED_ENTRY = createError('CFG_ERR_UNSUPPORTED_ENTRY', '%s', 422);

// --- Git (503) ---
export const CFG_ERR_REPO_UNAVAILABLE = createError('CFG_ERR_REPO_UNAVAILABLE', "Repository '%s' is unavailable: %s", 503);
export const CFG_ERR_REPO_AUTH_FAILED = createError('CFG_ERR_REPO_AUTH_FAILED', "Repository '%s' refused the configured credentials", 503);

// --- audit (503) ---
export const CFG_ERR_AUDIT_UNAVAILABLE = createError('CFG_ERR_AUDIT_UNAVAILABLE', 'The audit log cannot record this request: %s', 503);

// --- start-up (not HTTP) ---
export const CFG_ERR_SETTINGS_INVALID = createError('CFG_ERR_SETTINGS_INVALID', 'Invalid service settings:\n%s', 500);
export const CFG_ERR_PKI = createError('CFG_ERR_PKI', '%s', 500);

/** Every constructor above, by code; used by the catalogue test and the docs check. */
export const ERRORS: Readonly<Record<string, FastifyErrorConstructor>> = Object.freeze({
  CFG_ERR_INVALID_NAME,
  CFG_ERR_INVALID_REF,
  CFG_ERR_INVALID_REQUEST,
  CFG_ERR_UNAUTHENTICATED,
  CFG_ERR_FORBIDDEN,
  CFG_ERR_APP_NOT_FOUND,
  CFG_ERR_REF_NOT_FOUND,
  CFG_ERR_DOCUMENT_INVALID,
  CFG_ERR_UNRENDERABLE,
  CFG_ERR_UNSUPPORTED_ENTRY,
  CFG_ERR_REPO_UNAVAILABLE,
  CFG_ERR_REPO_AUTH_FAILED,
  CFG_ERR_AUDIT_UNAVAILABLE,
  CFG_ERR_SETTINGS_INVALID,
  CFG_ERR_PKI,
});

/**
 * The stable problem `code` of an error code: the prefix dropped, lower case.
 * @example problemCode('CFG_ERR_APP_NOT_FOUND') === 'app_not_found'
 */
export function problemCode(code: string): string {
  return code.startsWith(ERROR_PREFIX) ? code.slice(ERROR_PREFIX.length).toLowerCase() : 'internal';
}

/**
 * Attaches machine-readable details to an error (never secrets or values) and returns it,
 * so `throw withData(new CFG_ERR_X(...), { file, line })` stays one expression.
 */
export function withData<E extends Error>(err: E, data: Record<string, unknown>): E & { data: Record<string, unknown> } {
  return Object.assign(err, { data });
}
