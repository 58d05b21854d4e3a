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
export const CFG_ERR_UNAUTHENTICATED = createError('CFG_ERR_UNAUTHENTICATED', 'Not authenticated: %s', 401);
export const CFG_ERR_FORBIDDEN = createError('CFG_ERR_FORBIDDEN', 'Not allowed by the access policy (%s)', 403);

// --- configuration lookup (404, 422) ---
export const CFG_ERR_APP_NOT_FOUND = createError('CFG_ERR_APP_NOT_FOUND', "Application '%s' not found", 404);
export const CFG_ERR_REF_NOT_FOUND = createError('CFG_ERR_REF_NOT_FOUND', "Ref '%s' not found in repository '%s'", 404);
export const CFG_ERR_DOCUMENT_INVALID = createError('CFG_ERR_DOCUMENT_INVALID', '%s', 422);
export const CFG_ERR_UNRENDERABLE = createError('CFG_ERR_UNRENDERABLE', '%s', 422);
export const CFG_ERR_UNSUPPORTED_ENTRY = createError('CFG_ERR_UNSUPPORTED_ENTRY', '%s', 422);
/**
 * A document goes over one of the `documents:` limits (bytes, nesting depth, keys, alias
 * expansions, parse time, parse memory). `%s` names the file, where the limit was crossed
 * (line and column, or byte offset), the setting and its value; `data` carries `document`,
 * `line`/`column` or `offset`, `limit` (the setting's path), `value` and `commit`.
 */
export const CFG_ERR_DOCUMENT_LIMIT_EXCEEDED = createError('CFG_ERR_DOCUMENT_LIMIT_EXCEEDED', '%s', 422);

// --- Git (503) ---
export const CFG_ERR_REPO_UNAVAILABLE = createError('CFG_ERR_REPO_UNAVAILABLE', "Repository '%s' is unavailable: %s", 503);
export const CFG_ERR_REPO_AUTH_FAILED = createError('CFG_ERR_REPO_AUTH_FAILED', "Repository '%s' refused the configured credentials", 503);

/**
 * A repository named by a request (`?repo=` of `POST /v1/hooks/git` and `POST /v1/admin/sync`)
 * is not configured (or, for a per-application repository, not mirrored). `%s` = the name.
 */
export const CFG_ERR_REPO_NOT_FOUND = createError('CFG_ERR_REPO_NOT_FOUND', "No repository '%s' is configured", 404);

// --- audit (503) ---
export const CFG_ERR_AUDIT_UNAVAILABLE = createError('CFG_ERR_AUDIT_UNAVAILABLE', 'The audit log cannot record this request: %s', 503);
/**
 * `GET /v1/audit/checkpoints` on a service that signs no checkpoint: `audit.checkpoints.keys`
 * has no key with a private part (issue 13).
 */
export const CFG_ERR_AUDIT_CHECKPOINTS_OFF = createError(
  'CFG_ERR_AUDIT_CHECKPOINTS_OFF',
  'Audit checkpoints are off on this service: audit.checkpoints.keys has no private key',
  404,
);

// --- secrets (400, 422) ---
/**
 * A `{cipher}` value could not be decrypted (SPEC §2.5): `%s` = the quoted flattened key
 * path, followed by ` in <document>:<line>:<column>` when the document is known; key id
 * (`?` when unknown); fixed reason. Never names the ciphertext or the plaintext. 422: the
 * configuration in the repository is unusable for this request, like a broken document;
 * the request fails closed and nothing is served. Built by `secretDecryptError`.
 */
export const CFG_ERR_SECRET_DECRYPT_FAILED = createError('CFG_ERR_SECRET_DECRYPT_FAILED', "Cannot decrypt the secret at key %s (key id '%s'): %s", 422);
/**
 * A value composes a secret through a placeholder (`url: jdbc:...?password=${db.password}`)
 * for a caller not allowed `secrets:read`, or a secret names a placeholder's key. `%s`
 * names the document, line, column, the key and the secret key it references, never a
 * value. The value is never served as ciphertext or in part.
 */
export const CFG_ERR_SECRET_REFERENCE = createError('CFG_ERR_SECRET_REFERENCE', '%s', 422);
/** `POST /v1/encrypt` names a key id that is not configured with a public key, or none is configured. */
export const CFG_ERR_SECRET_KEY_UNKNOWN = createError('CFG_ERR_SECRET_KEY_UNKNOWN', 'No encryption key: %s', 400);

// --- placeholders and schemas (422) ---
/**
 * A `${...}` placeholder cannot be resolved (SPEC §2.2): a key without value and without
 * default, a cycle (`a -> b -> a`) or nesting past the bound. `%s` names the document,
 * line, column, the key chain and the placeholder's key, never a value.
 */
export const CFG_ERR_PLACEHOLDER = createError('CFG_ERR_PLACEHOLDER', '%s', 422);
/**
 * The merged configuration breaks the application's JSON Schema (SPEC §2.4). `%s` names
 * the schema file, the key path and the rule (`must be integer`), never the value.
 */
export const CFG_ERR_SCHEMA_VIOLATION = createError('CFG_ERR_SCHEMA_VIOLATION', '%s', 422);
/** The application's schema file is not JSON or not a usable JSON Schema. `%s` names the file. */
export const CFG_ERR_SCHEMA_INVALID = createError('CFG_ERR_SCHEMA_INVALID', '%s', 422);

// --- raw files (400, 404) ---
/** A raw-file path (`GET /v1/apps/{app}/files/{path}`) breaks the path rules: `%s` = the rule broken, never the path. */
export const CFG_ERR_INVALID_PATH = createError('CFG_ERR_INVALID_PATH', 'Invalid file path: %s', 400);
/** No files folder of the application holds a regular file at the path asked for. */
export const CFG_ERR_FILE_NOT_FOUND = createError('CFG_ERR_FILE_NOT_FOUND', "File not found in the files folders of application '%s'", 404);

// --- webhooks (404) ---
/**
 * `POST /v1/hooks/git` while push webhooks are off: the repository has no
 * `webhookSecretFile`. `%s` = the repository name.
 */
export const CFG_ERR_WEBHOOK_DISABLED = createError('CFG_ERR_WEBHOOK_DISABLED', "Push webhooks are off for repository '%s' (no webhookSecretFile)", 404);

// --- hardening (429) ---
/**
 * Too many requests from one identity (certificate fingerprint or token subject) or, before
 * authentication, one client IP, within `server.rateLimit.timeWindowMs`. `%s` = seconds
 * until the window resets; the response carries the same number in `Retry-After`.
 */
export const CFG_ERR_RATE_LIMITED = createError('CFG_ERR_RATE_LIMITED', 'Too many requests; retry in %s s', 429);

/**
 * A long-poll (`wait=`) would hold more requests than `longPoll.maxWaiters` on this replica,
 * or than `longPoll.maxWaitersPerIdentity` for this caller. `%s` names the setting; the
 * response carries `Retry-After`.
 */
export const CFG_ERR_TOO_MANY_WAITERS = createError('CFG_ERR_TOO_MANY_WAITERS', 'Too many held requests: %s', 429);

// --- templates (404, 422) ---
/** No templates folder of the application holds a renderable template at the path asked for. */
export const CFG_ERR_TEMPLATE_NOT_FOUND = createError('CFG_ERR_TEMPLATE_NOT_FOUND', "Template not found in the templates folders of application '%s'", 404);
/**
 * A template cannot be rendered: a syntax error, a missing variable or filter (strict), an
 * `include`/`render` of a file that is not in the templates folders, or a bound crossed
 * (`templates.renderTimeoutMs`, `templates.maxOutputBytes`). `%s` names the template, line,
 * column and the variable, filter or bound, never a value.
 */
export const CFG_ERR_TEMPLATE_INVALID = createError('CFG_ERR_TEMPLATE_INVALID', '%s', 422);

// --- injector (400) ---
/**
 * `config-service injector` received a body that is not an `admission.k8s.io/v1`
 * AdmissionReview with a request (`%s` names the field). Bad pod annotations are not
 * errors: they are answered with a denial in a valid AdmissionReview.
 */
export const CFG_ERR_ADMISSION_REVIEW_INVALID = createError('CFG_ERR_ADMISSION_REVIEW_INVALID', 'Invalid AdmissionReview: %s', 400);

// --- start-up (not HTTP) ---
export const CFG_ERR_SETTINGS_INVALID = createError('CFG_ERR_SETTINGS_INVALID', 'Invalid service settings:\n%s', 500);
export const CFG_ERR_PKI = createError('CFG_ERR_PKI', '%s', 500);
/**
 * A `config-service` command was given options that do not fit together or a value it
 * cannot use (`--since yesterday`, two audit stores at once); the CLI exits 64 (EX_USAGE).
 */
export const CFG_ERR_USAGE = createError('CFG_ERR_USAGE', '%s', 400);

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
  CFG_ERR_DOCUMENT_LIMIT_EXCEEDED,
  CFG_ERR_REPO_UNAVAILABLE,
  CFG_ERR_REPO_AUTH_FAILED,
  CFG_ERR_REPO_NOT_FOUND,
  CFG_ERR_AUDIT_UNAVAILABLE,
  CFG_ERR_SECRET_DECRYPT_FAILED,
  CFG_ERR_SECRET_KEY_UNKNOWN,
  CFG_ERR_SECRET_REFERENCE,
  CFG_ERR_PLACEHOLDER,
  CFG_ERR_SCHEMA_VIOLATION,
  CFG_ERR_SCHEMA_INVALID,
  CFG_ERR_INVALID_PATH,
  CFG_ERR_FILE_NOT_FOUND,
  CFG_ERR_WEBHOOK_DISABLED,
  CFG_ERR_RATE_LIMITED,
  CFG_ERR_TOO_MANY_WAITERS,
  CFG_ERR_TEMPLATE_NOT_FOUND,
  CFG_ERR_TEMPLATE_INVALID,
  CFG_ERR_ADMISSION_REVIEW_INVALID,
  CFG_ERR_SETTINGS_INVALID,
  CFG_ERR_PKI,
  CFG_ERR_USAGE,
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

/**
 * Marks a 503 error with the seconds a client should wait (`Retry-After`, RFC 9110
 * §10.2.3); the problem handler sends the header. `undefined` leaves the error unmarked.
 */
export function withRetryAfter<E extends Error>(err: E, seconds: number | undefined): E {
  if (seconds !== undefined && Number.isFinite(seconds)) Object.assign(err, { retryAfterSeconds: Math.max(1, Math.ceil(seconds)) });
  return err;
}
