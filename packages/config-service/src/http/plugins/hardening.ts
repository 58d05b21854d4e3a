/**
 * Hardening of the API listener: rate limits per identity, security headers on every
 * response, and a request id header.
 *
 * Rate limits (`@fastify/rate-limit`, in-memory store, fixed windows):
 * - before authentication, requests without a verified client certificate (bearer
 *   tokens, no credentials, rejected certificates) count against their client IP, so
 *   guessing tokens or replaying bad certificates is bounded;
 * - after authentication, every request counts against its identity: the certificate's
 *   SHA-256 fingerprint or the token's issuer and `sub`. Many pods behind one NAT or proxy
 *   do not share a bucket; one leaked credential cannot use more than its share.
 * Over the limit the answer is 429 `rate_limited` (problem+json) with `Retry-After`
 * (seconds, RFC 9110 §10.2.3), audited like every request.
 *
 * Headers (OWASP Secure Headers): `Strict-Transport-Security` (RFC 6797), `X-Content-Type-
 * Options: nosniff`, `Content-Security-Policy: default-src 'none'; frame-ancestors 'none'`,
 * `Referrer-Policy: no-referrer`, `Cross-Origin-Resource-Policy: same-origin`, and
 * `Cache-Control: no-store` on every error (and wherever a route did not set one: this API
 * serves credentials).
 *
 * A response sent before the request's body was received whole (a request refused before
 * its body is read: 401/403 on `POST /v1/encrypt` or the push webhook, 413, 429) carries
 * `Connection: close`: the connection is closed after it instead of Node reading and
 * discarding the rest of the body to keep the connection alive.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import fp from 'fastify-plugin';
import rateLimit from '@fastify/rate-limit';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditActor, AuditStore } from '../../audit/types.js';
import { CFG_ERR_RATE_LIMITED } from '../../errors.js';
import { issuerName } from '../../auth/identity.js';
import { problem, type Problem } from '../problem.js';
import { commitOrRefuse } from './audit.js';

/** Options of the hardening plugin (from `server.rateLimit`). */
export interface HardeningPluginOptions {
  /** Requests per identity (or per IP before authentication) per window; 0 turns limiting off. */
  rateLimitMax: number;
  /** The window, in ms. */
  rateLimitWindowMs: number;
  /** `max-age` of Strict-Transport-Security, in seconds. Default 31 536 000 (one year). */
  hstsMaxAgeSeconds?: number;
}

/** Headers set on every API response. */
export function securityHeaders(hstsMaxAgeSeconds = 31_536_000): Readonly<Record<string, string>> {
  return Object.freeze({
    'strict-transport-security': `max-age=${hstsMaxAgeSeconds}`,
    'x-content-type-options': 'nosniff',
    'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
    'referrer-policy': 'no-referrer',
    'cross-origin-resource-policy': 'same-origin',
  });
}

/** A problem with the standard reason phrase as its title (for statuses `problem.ts` has no title for). */
function titled(p: Problem): Problem {
  return { ...p, title: STATUS_CODES[p.status] ?? p.title };
}

/**
 * Fastify's `frameworkErrors` handler: requests the router refuses before any hook runs (a
 * path that is not valid percent-encoding, `FST_ERR_BAD_URL`; a path segment longer than
 * `maxParamLength`, `FST_ERR_MAX_PARAM_LENGTH`). Fastify's default answer skips every
 * hook and echoes the path; this one answers problem+json with the security headers,
 * never echoes input, and writes the audit event itself (fail closed: 503 when the store
 * cannot commit it).
 *
 * @param auditStore - called per request, so the store may be decorated after construction.
 * @param commitTimeoutMs - most milliseconds to wait for the event's commit (`audit.commitTimeoutMs`).
 */
export function frameworkErrorHandler(
  auditStore: () => AuditStore,
  hstsMaxAgeSeconds?: number,
  commitTimeoutMs?: number,
): (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => void {
  const headers = securityHeaders(hstsMaxAgeSeconds);
  return (error, request, reply) => {
    const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
    const status = tooLong ? 414 : 400;
    const p = tooLong
      ? titled(problem(414, 'uri_too_long', 'A path segment is longer than 1024 characters', request.id))
      : problem(400, 'invalid_request', 'The request target is not valid percent-encoding (RFC 3986 §2.1)', request.id);
    const socket = request.raw.socket as TLSSocket;
    const cert = typeof socket.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
    let actor: AuditActor = { kind: 'anonymous' };
    if (cert) {
      const issuer = issuerName(cert);
      const fingerprint256 = cert.fingerprint256.replaceAll(':', '').toLowerCase();
      // A certificate the handshake did not verify is only what the caller claims.
      actor = socket.authorized ? { kind: 'certificate', fingerprint256, issuer } : { kind: 'certificate', claimed: { fingerprint256, issuer } };
    }
    const send = (body: Problem): void => {
      void reply.code(body.status).headers(headers).header('request-id', request.id).header('cache-control', 'no-store').type('application/problem+json').send(JSON.stringify(body));
    };
    const event = {
      time: new Date().toISOString(),
      requestId: request.id,
      actor,
      clientAddress: request.ip,
      action: 'unknown',
      profiles: [],
      outcome: 'error' as const,
      status,
      reason: p.code,
      secretKeys: [],
      durationMs: 0,
    };
    void commitOrRefuse(auditStore(), event, commitTimeoutMs, request.log).then((stored) =>
      send(stored ? p : problem(503, 'audit_unavailable', 'The audit log cannot record this request; nothing was served', request.id)),
    );
  };
}

/**
 * Fastify's `clientErrorHandler`: answers what Node's HTTP parser refuses before there is
 * a request (malformed request line or headers, bytes outside the URL grammar: 400;
 * headers over the size limit: 431; headers not received within `headersTimeout`: 408)
 * as problem+json with the security headers, then closes the connection. There is no
 * request and so no audit event; the parser error is logged at debug level.
 */
export function clientErrorHandler(hstsMaxAgeSeconds?: number): (this: FastifyInstance, error: Error & { code?: string }, socket: Duplex) => void {
  const headers = Object.entries(securityHeaders(hstsMaxAgeSeconds))
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return function onClientError(this: FastifyInstance, error, socket) {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    let p: Problem;
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') p = titled(problem(408, 'request_timeout', 'The request was not received in time', ''));
    else if (error.code === 'HPE_HEADER_OVERFLOW') p = titled(problem(431, 'headers_too_large', 'The request headers are too large', ''));
    else p = problem(400, 'bad_request', 'The request is not valid HTTP/1.1', '');
    this.log.debug({ code: error.code }, 'client error');
    if (socket.writable) {
      const body = JSON.stringify(p);
      socket.write(
        `HTTP/1.1 ${p.status} ${p.title}\r\ncontent-type: application/problem+json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
          `cache-control: no-store\r\n${headers}connection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  };
}

/** The rate-limit bucket of an authenticated request. */
export function identityKey(request: FastifyRequest): string {
  const actor = request.auditActor;
  if (actor?.kind === 'certificate' && actor.fingerprint256) return `cert:${actor.fingerprint256}`;
  if (actor?.kind === 'jwt' && actor.subject) return `jwt:${actor.issuer ?? ''}\n${actor.subject}`;
  return `ip:${request.ip}`;
}

type Limiter = ReturnType<FastifyInstance['createRateLimit']>;

async function hardeningPlugin(app: FastifyInstance, opts: HardeningPluginOptions): Promise<void> {
  if (!Number.isInteger(opts.rateLimitMax) || opts.rateLimitMax < 0) throw new Error('hardening plugin: rateLimitMax must be an integer >= 0');
  const headers = securityHeaders(opts.hstsMaxAgeSeconds);

  app.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply) => {
    reply.headers(headers);
    reply.header('request-id', request.id);
    if (reply.statusCode >= 400 || !reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    // Answered before its body was read (401/403 decided before the body, 413, 429): close the
    // connection rather than let Node read and discard the rest of the body to keep it alive.
    if (!request.raw.complete) reply.header('connection', 'close');
  });

  if (opts.rateLimitMax === 0) return;
  // global: false: no per-route hooks; the two limiters below are applied by hand.
  await app.register(rateLimit, { global: false, max: opts.rateLimitMax, timeWindow: opts.rateLimitWindowMs, cache: 10_000 });
  const enforce = async (limiter: Limiter, request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const r = await limiter(request);
    if (r.isAllowed || !r.isExceeded) return;
    const retryAfter = Math.max(1, r.ttlInSeconds);
    reply.header('retry-after', String(retryAfter));
    reply.header('x-ratelimit-limit', String(r.max));
    reply.header('x-ratelimit-remaining', '0');
    request.auditReason = 'rate_limited';
    throw new CFG_ERR_RATE_LIMITED(retryAfter);
  };
  const anonymous = app.createRateLimit({ keyGenerator: (request: FastifyRequest) => `ip:${request.ip}` });
  const identified = app.createRateLimit({ keyGenerator: identityKey });

  // Registered before the auth plugin: runs before authentication.
  app.addHook('onRequest', async (request, reply) => {
    if ((request.raw.socket as TLSSocket).authorized === true) return;
    await enforce(anonymous, request, reply);
  });
  // preParsing runs after every onRequest hook (so after authentication) and before the body is read.
  app.addHook('preParsing', async (request, reply) => {
    await enforce(identified, request, reply);
  });
}

export default fp(hardeningPlugin, { name: 'hardening', fastify: '5.x', dependencies: ['audit'] });
