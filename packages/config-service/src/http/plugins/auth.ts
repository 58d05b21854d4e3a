/**
 * Authentication and authorization (SPEC §3).
 *
 * Every API request is authenticated in an `onRequest` hook: by the client certificate
 * that the TLS layer verified against the configured client CA bundle and CRLs, or, when
 * no certificate was presented, by an `Authorization: Bearer` JWT verified with a public
 * key (`@fastify/jwt` in verify-only mode, keys from {@link JwtKeySource}). Routes then
 * call {@link requireAccess} with the scope, application and profiles they serve; the
 * policy decides.
 *
 * Status codes: 401 `unauthenticated` when there is no usable identity (no credentials; a
 * certificate that is untrusted, expired, not yet valid or revoked; a token that fails
 * any check of RFC 7519 §7.2 / RFC 8725), with a detail naming the rule that failed and
 * nothing else; 403 `forbidden` for a valid identity the policy does not allow, naming the
 * policy rule (`auth/policy.ts`). The audit event records the certificate's SHA-256
 * fingerprint and issuer (or the token's `sub`/`iss`) and the reason, e.g.
 * `certificate_rejected:CERT_REVOKED` or `token_rejected:audience_mismatch`. A
 * certificate that did not verify is recorded as `actor.claimed` (subject, fingerprint,
 * issuer it claims), never as `actor.subject`.
 *
 * Per connection: the peer certificate is read once, with Node's native `X509Certificate`
 * (`getPeerX509Certificate`), when the connection's first request arrives; the identity,
 * the verdict and the policy decisions already made for it (by scope, application and
 * profiles; the policy does not change while the service runs) are kept with the
 * connection, so a keep-alive request re-reads nothing.
 *
 * Open connections: the verdict on a connection's certificate is cached per connection
 * with the trust generation it holds for. When the client CA bundle or the CRLs change
 * (`TlsReloader`), the next request on an older connection re-verifies the presented
 * chain against the current ones; a certificate that no longer verifies (or is now
 * revoked, or has expired meanwhile) is refused 401 like at the handshake, audited, and
 * its connection closed (`Connection: close`).
 */
import type { X509Certificate as NodeX509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { presentedChain } from '../peer-trust.js';
import fp from 'fastify-plugin';
import fastifyJwt from '@fastify/jwt';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CFG_ERR_FORBIDDEN, CFG_ERR_UNAUTHENTICATED } from '../../errors.js';
import {
  compileIdentityPatterns,
  issuerName,
  principalFromJwtClaims,
  principalFromX509,
  type CertificatePrincipal,
  type CompiledIdentityPatterns,
  type IdentityPatterns,
  type JwtIdentityClaims,
} from '../../auth/identity.js';
import { authorize, type Decision, type PolicySettings, type Principal, type Scope } from '../../auth/policy.js';
import type { Settings } from '../../settings/schema.js';
import { JwtKeyError, JwtKeySource } from '../jwt-keys.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The access policy of the service settings. */
    accessPolicy: PolicySettings;
  }
  interface FastifyRequest {
    /** The authenticated caller; set for every request that reaches a route (not for `auth: 'webhook'` routes). */
    principal: Principal;
    /**
     * Policy decisions already made for this request's certificate principal on its
     * connection (see {@link decide}); undefined for tokens, whose claims may change per request.
     */
    decisions: Map<string, Decision> | undefined;
  }
  interface FastifyContextConfig {
    /**
     * `'webhook'`: the route authenticates the request itself (a push webhook's HMAC,
     * `routes/hooks.ts`); this plugin neither asks for a certificate or token nor sets
     * `request.principal`. No other route may set it.
     */
    auth?: 'webhook';
  }
}

/** The live trust state of the TLS listener, e.g. a {@link import('../tls.js').TlsReloader}. */
export interface TlsTrust {
  /** Changes (increments) whenever the client CA bundle or the CRLs change. */
  readonly trustGeneration: number;
  /** The generation a connection's handshake was verified under; undefined when unknown (then it is re-verified). */
  handshakeGeneration(socket: TLSSocket): number | undefined;
  /**
   * Verifies a chain (DER, leaf first, then presented intermediates) against the CURRENT
   * client CA bundle and CRLs: undefined when it verifies, else the OpenSSL error name.
   */
  verifyPeer(chain: readonly Uint8Array[]): string | undefined;
  /** The certificates of the current client CA bundle. */
  readonly material: { readonly caCertificates: readonly NodeX509Certificate[] };
}

/** Options of the auth plugin. */
export interface AuthPluginOptions {
  identity: Partial<IdentityPatterns>;
  policy: PolicySettings;
  jwt?: Settings['jwt'];
  /**
   * The listener's live trust: a connection verified under an older client CA bundle or
   * CRL set is re-verified on its next request, so a certificate that no longer verifies
   * (or was revoked since) is refused on its keep-alive connection too.
   */
  trust?: TlsTrust;
}

type JwtClaims = JwtIdentityClaims & { iss?: unknown };

/**
 * Checks that the request's principal may use `scope` (for `app` and `profiles`), else
 * throws CFG_ERR_FORBIDDEN (403) naming the rule that failed. The rule is also kept for
 * the audit event.
 */
export function requireAccess(request: FastifyRequest, scope: Scope, app?: string, profiles?: readonly string[]): void {
  const decision = decide(request, scope, app, profiles);
  request.auditReason = decision.rule;
  if (!decision.allowed) throw new CFG_ERR_FORBIDDEN(decision.rule);
}

/** Most decisions kept per connection; a connection asking for more starts over. */
const MAX_DECISIONS = 64;

/**
 * The policy's decision for the request's principal (`authorize` of `auth/policy.ts`).
 * For a certificate principal it is kept with the connection: the next request on it for
 * the same scope, application and profiles reuses it (the policy is fixed while the
 * service runs, and so is a connection's certificate).
 */
export function decide(request: FastifyRequest, scope: Scope, app?: string, profiles?: readonly string[]): Decision {
  const memo = request.decisions;
  const key = memo === undefined ? '' : `${scope}\0${app ?? ''}\0${profiles?.join(',') ?? ''}`;
  let decision = memo?.get(key);
  if (decision === undefined) {
    decision = authorize(request.server.accessPolicy, request.principal, { scope, ...(app !== undefined && { app }), ...(profiles && { profiles }) });
    if (memo !== undefined) {
      if (memo.size >= MAX_DECISIONS) memo.clear();
      memo.set(key, decision);
    }
  }
  return decision;
}

const UNTRUSTED = 'client certificate is not issued by a trusted CA';
const CRL_UNUSABLE = 'client certificate revocation status cannot be checked';

/**
 * What the caller is told for each OpenSSL verification error of a client certificate
 * (`tlsSocket.authorizationError`, X509_V_ERR_* of RFC 5280 §6 path validation).
 */
export const CERTIFICATE_ERRORS: Readonly<Record<string, string>> = Object.freeze({
  CERT_HAS_EXPIRED: 'client certificate expired',
  CERT_NOT_YET_VALID: 'client certificate is not yet valid',
  CERT_REVOKED: 'client certificate revoked',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'client certificate is self-signed and not trusted',
  SELF_SIGNED_CERT_IN_CHAIN: 'client certificate chains to an untrusted root',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: UNTRUSTED,
  UNABLE_TO_GET_ISSUER_CERT: UNTRUSTED,
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: UNTRUSTED,
  CERT_UNTRUSTED: UNTRUSTED,
  CERT_SIGNATURE_FAILURE: 'client certificate signature is invalid',
  CERT_CHAIN_TOO_LONG: 'client certificate chain is too long',
  INVALID_CA: 'client certificate chain contains an invalid CA certificate',
  INVALID_PURPOSE: 'client certificate is not valid for client authentication',
  UNABLE_TO_GET_CRL: CRL_UNUSABLE,
  CRL_HAS_EXPIRED: CRL_UNUSABLE,
  CRL_NOT_YET_VALID: CRL_UNUSABLE,
  CRL_SIGNATURE_FAILURE: CRL_UNUSABLE,
  UNABLE_TO_DECRYPT_CRL_SIGNATURE: CRL_UNUSABLE,
});

/** What the caller is told for each reason a bearer token is refused. */
const TOKEN_ERRORS: Readonly<Record<string, string>> = Object.freeze({
  expired: 'bearer token expired',
  not_yet_valid: 'bearer token is not yet valid',
  signature_invalid: 'bearer token signature is invalid',
  audience_mismatch: 'bearer token audience is not accepted',
  issuer_mismatch: 'bearer token issuer is not accepted',
  algorithm_not_allowed: 'bearer token algorithm is not accepted',
  unsigned: 'unsigned bearer tokens are not accepted',
  key_not_found: 'bearer token key is not known',
  claim_missing: 'bearer token lacks a required claim (exp, iss, aud)',
  claim_invalid: 'bearer token has a claim of the wrong type',
  malformed: 'bearer token is malformed',
  sub_missing: 'bearer token has no sub claim',
  invalid: 'bearer token rejected',
});

/** The stable reason for an error of `request.jwtVerify()`. */
function tokenReason(err: unknown): string {
  if (err instanceof JwtKeyError) return err.reason;
  const { code = '', message = '' } = err as { code?: string; message?: string };
  switch (code) {
    case 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED':
    case 'FAST_JWT_EXPIRED':
      return 'expired';
    case 'FAST_JWT_INACTIVE':
      return 'not_yet_valid';
    case 'FAST_JWT_MISSING_SIGNATURE':
      return 'unsigned';
    case 'FAST_JWT_INVALID_ALGORITHM':
      return 'algorithm_not_allowed';
    case 'FAST_JWT_INVALID_CLAIM_TYPE':
      return 'claim_invalid';
    case 'FST_JWT_BAD_REQUEST':
    case 'FAST_JWT_MALFORMED':
    case 'FAST_JWT_INVALID_TYPE':
      return 'malformed';
    case 'FAST_JWT_MISSING_REQUIRED_CLAIM':
      return 'claim_missing';
    case 'FST_JWT_AUTHORIZATION_TOKEN_INVALID':
    case 'FAST_JWT_INVALID_SIGNATURE':
    case 'FAST_JWT_INVALID_CLAIM_VALUE':
    case 'FAST_JWT_INVALID_KEY':
      // @fastify/jwt folds several fast-jwt codes into one; its message keeps the rule.
      if (/claim is required/.test(message)) return 'claim_missing';
      if (/signature/i.test(message)) return 'signature_invalid';
      if (/\baud\b/.test(message)) return 'audience_mismatch';
      if (/\biss\b/.test(message)) return 'issuer_mismatch';
      if (/malformed|must be a string/i.test(message)) return 'malformed';
      if (/key/i.test(message)) return 'algorithm_not_allowed';
      return 'invalid';
    default:
      return 'invalid';
  }
}

interface PeerIdentity {
  principal: CertificatePrincipal | null;
  fingerprint256: string;
  /** Issuer DN the certificate names (as `@peculiar/x509` prints it); '' when unreadable. */
  issuer: string;
  notAfter: number;
  /** Why verification failed, when it did (an X509_V_ERR name); once set it stays. */
  failure: string | undefined;
  /**
   * The presented chain (DER, leaf first), kept to re-verify after a trust change; read
   * from the socket only then ({@link chainOf}), against `bundle`.
   */
  chain: Uint8Array[] | undefined;
  /** The CA bundle the chain is taken against: the one in force at the connection's first request. */
  bundle: readonly NodeX509Certificate[];
  /** The trust generation `failure` was decided under. */
  generation: number;
  /** The principal as the policy sees it, and the decisions made for it on this connection. */
  policyPrincipal: Principal | undefined;
  decisions: Map<string, Decision>;
}

/**
 * The verification failure to report for a handshake that did not verify. Node gives
 * OpenSSL's LAST error of the chain walk: with CRL checking on, a self-signed or foreign
 * certificate ends with `UNABLE_TO_GET_CRL` (no CRL of its unknown issuer), which would
 * send the caller looking at CRLs. The chain is therefore verified again against the
 * bundle (`verifyPeerChain`, which names the FIRST rule broken, as it does for an open
 * connection after a trust change); OpenSSL's code is kept when that finds nothing.
 */
function verificationFailure(socket: TLSSocket, chain: readonly Uint8Array[], trust: TlsTrust | undefined): string | undefined {
  if (socket.authorized) return undefined;
  const code = String(socket.authorizationError ?? 'UNVERIFIED').replace(/[^A-Z0-9_]/gi, '');
  return (trust && chain.length > 0 ? trust.verifyPeer(chain) : undefined) ?? code;
}

/** The peer's chain, read from the socket the first time it is needed. */
function chainOf(socket: TLSSocket, peer: PeerIdentity): Uint8Array[] {
  peer.chain ??= presentedChain(socket, peer.bundle);
  return peer.chain;
}

/** The peer certificate of each connection, read once; the verdict is renewed only when the trust changed. */
const peerCache = new WeakMap<TLSSocket, PeerIdentity>();

/** The verdict on the connection's certificate as of now: read once, re-verified only when the trust changed. */
function peerOf(socket: TLSSocket, patterns: CompiledIdentityPatterns, trust: TlsTrust | undefined): PeerIdentity | undefined {
  let peer = peerCache.get(socket);
  if (!peer) {
    // A handshake that did not verify: take the chain the client presented first. Node
    // (20) no longer links a presented issuer in getPeerCertificate(true) once
    // getPeerX509Certificate() was called on such a socket; a verified one keeps its chain.
    const bundle = trust ? trust.material.caCertificates : [];
    const unverifiedChain = !socket.authorized && trust ? presentedChain(socket, bundle) : undefined;
    const cert = typeof socket.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
    if (!cert) return undefined;
    let principal: CertificatePrincipal | null;
    try {
      principal = principalFromX509(cert, patterns);
    } catch {
      principal = null;
    }
    peer = {
      principal,
      fingerprint256: principal?.fingerprint256 ?? cert.fingerprint256.replaceAll(':', '').toLowerCase(),
      issuer: principal?.issuer ?? issuerName(cert),
      notAfter: Date.parse(cert.validTo),
      failure: undefined,
      chain: unverifiedChain,
      bundle,
      // Unknown: re-verify at once (a generation that never exists).
      generation: trust ? (trust.handshakeGeneration(socket) ?? -1) : 0,
      policyPrincipal: principal ? { kind: 'certificate', subject: principal.subject } : undefined,
      decisions: new Map(),
    };
    if (!socket.authorized) peer.failure = verificationFailure(socket, trust ? chainOf(socket, peer) : [], trust);
    peerCache.set(socket, peer);
  }
  if (trust && peer.failure === undefined && peer.generation !== trust.trustGeneration) {
    peer.generation = trust.trustGeneration;
    peer.failure = trust.verifyPeer(chainOf(socket, peer));
  }
  return peer;
}

async function authPlugin(app: FastifyInstance, opts: AuthPluginOptions): Promise<void> {
  const patterns = compileIdentityPatterns(opts.identity);
  app.decorate('accessPolicy', opts.policy);
  app.decorateRequest('principal', null as unknown as Principal);
  app.decorateRequest('decisions', undefined);

  if (opts.jwt) {
    const keys = new JwtKeySource(opts.jwt, app.log);
    keys.watch();
    app.addHook('onClose', async () => keys.close());
    const required = ['exp', ...(opts.jwt.issuer ? ['iss'] : []), ...(opts.jwt.audience ? ['aud'] : [])];
    await app.register(fastifyJwt, {
      secret: { public: async (_request: FastifyRequest, token: unknown) => keys.keyFor((token as { header?: { alg?: unknown; kid?: unknown } }).header ?? {}) },
      decode: { complete: true },
      verify: {
        algorithms: keys.algorithms as never,
        // fast-jwt checks iss/aud only when present: requiredClaims makes them mandatory.
        requiredClaims: required,
        ...(opts.jwt.issuer && { allowedIss: opts.jwt.issuer }),
        ...(opts.jwt.audience && { allowedAud: opts.jwt.audience }),
        clockTolerance: opts.jwt.clockSkewSeconds * 1000,
        cache: false,
      },
    });
  }

  app.addHook('onRequest', async (request, reply) => {
    // Routes that authenticate by their own means (webhook HMAC) skip certificates and tokens.
    if (request.routeOptions.config?.auth === 'webhook') {
      request.auditActor = { kind: 'anonymous', subject: 'webhook' };
      return;
    }
    const socket = request.raw.socket as TLSSocket;
    const peer = peerOf(socket, patterns, opts.trust);
    if (peer) {
      const { principal } = peer;
      let failure = peer.failure;
      // Re-checked per request: a keep-alive connection can outlive the certificate.
      if (failure === undefined && Number.isFinite(peer.notAfter) && Date.now() > peer.notAfter) failure = peer.failure = 'CERT_HAS_EXPIRED';
      if (failure !== undefined) {
        // Not an identity: what the certificate claims is recorded apart from `subject`.
        request.auditActor = {
          kind: 'certificate',
          claimed: { ...(principal && { subject: principal.subject }), fingerprint256: peer.fingerprint256, issuer: peer.issuer },
        };
        request.auditReason = `certificate_rejected:${failure}`;
        // The connection has no use any more: close it after this answer.
        reply.header('connection', 'close');
        throw new CFG_ERR_UNAUTHENTICATED(CERTIFICATE_ERRORS[failure] ?? 'client certificate rejected');
      }
      request.auditActor = {
        kind: 'certificate',
        ...(principal && { subject: principal.subject }),
        fingerprint256: peer.fingerprint256,
        issuer: peer.issuer,
      };
      if (!principal) {
        request.auditReason = 'identity_unmatched';
        throw new CFG_ERR_FORBIDDEN('the client certificate matches no identity pattern');
      }
      request.principal = peer.policyPrincipal as Principal;
      request.decisions = peer.decisions;
      return;
    }
    const header = request.headers.authorization;
    if (header && /^bearer /i.test(header)) {
      request.auditActor = { kind: 'jwt' };
      if (!opts.jwt) {
        request.auditReason = 'jwt_not_configured';
        throw new CFG_ERR_UNAUTHENTICATED('bearer tokens are not accepted by this service');
      }
      let claims: JwtClaims;
      try {
        claims = await request.jwtVerify<JwtClaims>();
      } catch (err) {
        const reason = tokenReason(err);
        request.auditReason = `token_rejected:${reason}`;
        throw new CFG_ERR_UNAUTHENTICATED(TOKEN_ERRORS[reason] ?? TOKEN_ERRORS['invalid']!);
      }
      request.auditActor = { kind: 'jwt', ...(typeof claims.sub === 'string' && { subject: claims.sub }), ...(typeof claims.iss === 'string' && { issuer: claims.iss }) };
      if (typeof claims.sub !== 'string' || claims.sub === '') {
        request.auditReason = 'token_rejected:sub_missing';
        throw new CFG_ERR_UNAUTHENTICATED(TOKEN_ERRORS['sub_missing']!);
      }
      request.principal = principalFromJwtClaims(claims);
      return;
    }
    request.auditReason = 'no_credentials';
    throw new CFG_ERR_UNAUTHENTICATED('present a client certificate or a bearer token');
  });
}

export default fp(authPlugin, { name: 'auth', fastify: '5.x', dependencies: ['audit'] });
