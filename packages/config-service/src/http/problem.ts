/**
 * RFC 9457 problem details: the one error handler of the API listener.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifySchemaValidationError } from 'fastify';
import { problemCode } from '../errors.js';
import { KEY_ID_PATTERN } from '../secrets/envelope.js';

/** The body of every error response (`application/problem+json`, RFC 9457). */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** Stable machine-readable code, e.g. `app_not_found` (see docs/errors.md). */
  code: string;
  /** Request id, to find the audit event and the log lines. */
  instance: string;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** Builds a problem document. `code` is the stable problem code (`app_not_found`). */
export function problem(status: number, code: string, detail: string, requestId: string): Problem {
  return { type: `urn:config-service:problem:${code}`, title: TITLES[status] ?? 'Error', status, detail, code, instance: requestId };
}

/** Sends `p` as `application/problem+json` and returns the reply. */
export function sendProblem(reply: FastifyReply, p: Problem): FastifyReply {
  return reply.code(p.status).type('application/problem+json').header('cache-control', 'no-store').send(p);
}

/** Maps any thrown error to its problem; 5xx other than our own coded ones stay generic. */
export function toProblem(err: FastifyError, request: FastifyRequest): Problem {
  const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
  if (err.code?.startsWith('CFG_ERR_')) return problem(status, problemCode(err.code), err.message, request.id);
  if (err.validation) return problem(400, 'invalid_request', err.message, request.id);
  if (status < 500) return problem(status, (err.code ?? 'bad_request').replace(/^FST_ERR_/, '').toLowerCase(), err.message, request.id);
  return problem(500, 'internal', 'Internal error; the request id names the log entry', request.id);
}

/**
 * Fastify's `schemaErrorFormatter`: one sentence per bad parameter instead of one per
 * schema branch. A value outside a list (`format=xml`, a union of literals, which Ajv
 * reports as one `const` error per literal plus an `anyOf`) becomes
 * `querystring parameter 'format' must be one of: json, yaml, properties, env, dotenv`.
 * Other rules keep Ajv's wording, prefixed with the parameter. Never quotes the value.
 *
 * @param errors - Ajv's errors for one part of the request.
 * @param dataVar - `querystring`, `params`, `body` or `headers`.
 * @returns the error Fastify answers with (400, `err.validation` kept).
 */
export function formatSchemaErrors(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const byPath = new Map<string, { allowed: unknown[]; rules: string[] }>();
  for (const e of errors) {
    const params = e.params as { allowedValue?: unknown; allowedValues?: unknown[]; missingProperty?: unknown; additionalProperty?: unknown };
    let where = e.instancePath.replace(/^\//, '').replaceAll('/', '.');
    if (e.keyword === 'required' && typeof params.missingProperty === 'string') where = where === '' ? params.missingProperty : `${where}.${params.missingProperty}`;
    let slot = byPath.get(where);
    if (slot === undefined) byPath.set(where, (slot = { allowed: [], rules: [] }));
    if (e.keyword === 'const') slot.allowed.push(params.allowedValue);
    else if (e.keyword === 'enum') slot.allowed.push(...(params.allowedValues ?? []));
    else if (e.keyword === 'anyOf' || e.keyword === 'oneOf') continue;
    else if (e.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') slot.rules.push(`has no parameter '${params.additionalProperty}'`);
    else if (e.keyword === 'required') slot.rules.push('is required');
    else slot.rules.push(e.message ?? `must satisfy ${e.keyword}`);
  }
  const parts: string[] = [];
  for (const [where, slot] of byPath) {
    const name = where === '' ? dataVar : `${dataVar} parameter '${where}'`;
    const rules = [...new Set(slot.rules)];
    if (slot.allowed.length > 0) rules.unshift(`must be one of: ${[...new Set(slot.allowed.map(String))].join(', ')}`);
    else if (rules.length === 0) rules.push('is not valid');
    parts.push(`${name} ${rules.join(', and ')}`);
  }
  return new Error(parts.join('; '));
}

/**
 * Installs the error and not-found handlers: 4xx messages pass through, unexpected 5xx
 * are logged with request context and answered generically.
 */
export function installProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const p = toProblem(err, request);
    if (p.status >= 500 && !err.code?.startsWith('CFG_ERR_')) request.log.error({ err }, 'unhandled error');
    else if (p.status >= 500) request.log.warn({ code: err.code, detail: err.message }, 'request failed');
    // 401/403 keep the precise rule the auth layer recorded; every other error records its code.
    if (p.status !== 401 && p.status !== 403) request.auditReason = p.code;
    else request.auditReason ??= p.code;
    // A failed decryption names its key id; the audit event records it (never a value).
    const keyId = (err as { data?: { keyId?: unknown } }).data?.keyId;
    if (err.code === 'CFG_ERR_SECRET_DECRYPT_FAILED' && typeof keyId === 'string' && KEY_ID_PATTERN.test(keyId) && request.audit) {
      request.audit.secretKeyIds = [keyId];
    }
    // Git unavailable: when the next sync attempt is due; too many waiters (set by withRetryAfter).
    const retryAfter = (err as { retryAfterSeconds?: unknown }).retryAfterSeconds;
    if ((p.status === 503 || p.status === 429) && typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
    return sendProblem(reply, p);
  });
  app.setNotFoundHandler((request, reply) => {
    request.auditReason = 'not_found';
    return sendProblem(reply, problem(404, 'not_found', 'No such route', request.id));
  });
}
