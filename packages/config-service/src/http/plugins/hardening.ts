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
 */
import type { TLSSocket } from 'node:tls';
import fp from 'fastify-plugin';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CFG_ERR_RATE_LIMITED } from '../../errors.js';

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
