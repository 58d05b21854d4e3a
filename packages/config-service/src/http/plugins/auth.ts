/**
 * Authentication and authorization (SPEC §3).
 *
 * Every API request is authenticated in an `onRequest` hook: by the client certificate
 * that the TLS layer verified against the configured client CA bundle, or, when no
 * certificate was presented, by an `Authorization: Bearer` JWT verified with a public key
 * (`@fastify/jwt` in verify-only mode). Routes then call {@link requireAccess} with the
 * scope, application and profiles they serve; the policy decides.
 */
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import fp from 'fastify-plugin';
import fastifyJwt from '@fastify/jwt';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CFG_ERR_FORBIDDEN, CFG_ERR_UNAUTHENTICATED } from '../../errors.js';
import { compileIdentityPatterns, principalFromCertificate, principalFromJwtClaims, type IdentityPatterns, type JwtIdentityClaims } from '../../auth/identity.js';
import { authorize, type PolicySettings, type Principal, type Scope } from '../../auth/policy.js';
import type { Settings } from '../../settings/schema.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The access policy of the service settings. */
    accessPolicy: PolicySettings;
  }
  interface FastifyRequest {
    /** The authenticated caller; set for every request that reaches a route. */
    principal: Principal;
  }
}

/** Options of the auth plugin. */
export interface AuthPluginOptions {
  identity: Partial<IdentityPatterns>;
  policy: PolicySettings;
  jwt?: Settings['jwt'];
}

type JwtClaims = JwtIdentityClaims & { iss?: unknown };

/**
 * Checks that the request's principal may use `scope` (for `app` and `profiles`), else
 * throws CFG_ERR_FORBIDDEN (403) naming the rule that failed. The rule is also kept for
 * the audit event.
 */
export function requireAccess(request: FastifyRequest, scope: Scope, app?: string, profiles?: readonly string[]): void {
  const decision = authorize(request.server.accessPolicy, request.principal, { scope, ...(app !== undefined && { app }), ...(profiles && { profiles }) });
  request.auditReason = decision.rule;
  if (!decision.allowed) throw new CFG_ERR_FORBIDDEN(decision.rule);
}

async function authPlugin(app: FastifyInstance, opts: AuthPluginOptions): Promise<void> {
  const patterns = compileIdentityPatterns(opts.identity);
  app.decorate('accessPolicy', opts.policy);
  app.decorateRequest('principal', null as unknown as Principal);

  if (opts.jwt) {
    await app.register(fastifyJwt, {
      secret: { public: readFileSync(opts.jwt.publicKeyFile!, 'utf8') },
      verify: {
        algorithms: opts.jwt.algorithms as never,
        ...(opts.jwt.issuer && { allowedIss: opts.jwt.issuer }),
        ...(opts.jwt.audience && { allowedAud: opts.jwt.audience }),
        clockTolerance: opts.jwt.clockSkewSeconds * 1000,
      },
    });
  }

  app.addHook('onRequest', async (request) => {
    const socket = request.raw.socket as TLSSocket;
    const peer = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate(false) : undefined;
    if (peer && peer.raw) {
      const principal = principalFromCertificate(peer.raw, patterns);
      request.auditActor = {
        kind: 'certificate',
        ...(principal && { subject: principal.subject }),
        fingerprint256: peer.fingerprint256.replaceAll(':', '').toLowerCase(),
        issuer: principal?.issuer ?? '',
      };
      if (!socket.authorized) {
        const reason = String(socket.authorizationError ?? 'unverified');
        request.auditReason = `certificate_rejected:${reason}`;
        throw new CFG_ERR_UNAUTHENTICATED(`client certificate rejected (${reason})`);
      }
      if (!principal) {
        request.auditReason = 'identity_unmatched';
        throw new CFG_ERR_FORBIDDEN('the client certificate matches no identity pattern');
      }
      request.principal = { kind: 'certificate', subject: principal.subject };
      return;
    }
    const header = request.headers.authorization;
    if (header && /^bearer /i.test(header)) {
      if (!opts.jwt) {
        request.auditReason = 'jwt_not_configured';
        throw new CFG_ERR_UNAUTHENTICATED('bearer tokens are not accepted by this service');
      }
      let claims: JwtClaims;
      try {
        claims = await request.jwtVerify<JwtClaims>();
      } catch (err) {
        const code = (err as { code?: string }).code ?? 'invalid';
        request.auditActor = { kind: 'jwt' };
        request.auditReason = `token_rejected:${code}`;
        throw new CFG_ERR_UNAUTHENTICATED(`bearer token rejected (${code})`);
      }
      request.auditActor = { kind: 'jwt', ...(typeof claims.sub === 'string' && { subject: claims.sub }), ...(typeof claims.iss === 'string' && { issuer: claims.iss }) };
      if (typeof claims.sub !== 'string' || claims.sub === '') request.auditReason = 'token_without_sub';
      request.principal = principalFromJwtClaims(claims);
      return;
    }
    request.auditReason = 'no_credentials';
    throw new CFG_ERR_UNAUTHENTICATED('present a client certificate or a bearer token');
  });
}

export default fp(authPlugin, { name: 'auth', fastify: '5.x', dependencies: ['audit'] });
