/**
 * Development JWTs (`config-service jwt keygen` / `jwt issue`): a key pair for the
 * service's `jwt.publicKeyFile`, and tokens with the claims the service reads (`sub`,
 * `scope`, `apps`, `iss`, `aud`, `iat`, `exp`; docs/security.md, "Development tokens").
 * Production tokens come from the organisation's identity provider.
 *
 * Signed with jose (RFC 7515/7519); the algorithm follows the key: ES256 for a P-256 key,
 * RS256 for RSA, EdDSA for Ed25519 (the service's default `jwt.algorithms`).
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { lstat, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { SignJWT } from 'jose';
import { SCOPES } from '../auth/policy.js';
import { CFG_ERR_PKI, CFG_ERR_USAGE } from '../errors.js';
import { writeAtomic } from './files.js';

/** File names `jwt keygen` writes. */
export const JWT_KEY_FILES = Object.freeze({ privateKey: 'jwt-private.pem', publicKey: 'jwt-public.pem' });

/** Longest lifetime of a development token: 24 hours. */
export const MAX_TOKEN_TTL_SECONDS = 86_400;

/**
 * Writes an ECDSA P-256 key pair for development tokens into `dir` (created 0700 when
 * missing): `jwt-private.pem` (PKCS#8, 0600) and `jwt-public.pem` (SPKI, 0644, what
 * `jwt.publicKeyFile` names).
 *
 * @returns absolute paths of both files.
 * @throws CFG_ERR_PKI when either file exists and `force` is not set.
 */
export async function generateJwtKeys(dir: string, opts: { force?: boolean } = {}): Promise<{ privateKey: string; publicKey: string }> {
  const root = path.resolve(dir);
  const files = { privateKey: path.join(root, JWT_KEY_FILES.privateKey), publicKey: path.join(root, JWT_KEY_FILES.publicKey) };
  if (!opts.force) {
    for (const file of Object.values(files)) {
      const exists = await lstat(file).then(() => true, () => false);
      if (exists) throw new CFG_ERR_PKI(`${file} already exists; use --force to replace it (tokens signed with the old key stop verifying)`);
    }
  }
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await mkdir(root, { recursive: true, mode: 0o700 });
  await writeAtomic(files.privateKey, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600);
  await writeAtomic(files.publicKey, publicKey.export({ type: 'spki', format: 'pem' }).toString(), 0o644);
  return files;
}

/**
 * A duration: `<n>s`, `<n>m`, `<n>h` or `<n>d` (or plain seconds), 1 s to 24 h.
 * @returns seconds.
 * @throws CFG_ERR_USAGE naming `--ttl` for anything else.
 */
export function parseTtl(text: string): number {
  const m = /^([1-9][0-9]{0,6})([smhd]?)$/.exec(text.trim());
  const seconds = m === null ? NaN : Number(m[1]) * ({ '': 1, s: 1, m: 60, h: 3600, d: 86_400 } as Record<string, number>)[m[2]!]!;
  if (!Number.isFinite(seconds) || seconds > MAX_TOKEN_TTL_SECONDS) {
    throw new CFG_ERR_USAGE(`--ttl: '${text}' is not a duration from 1s to 24h (such as 900, 15m, 1h)`);
  }
  return seconds;
}

/** What a development token says (see {@link issueDevToken}). */
export interface DevTokenClaims {
  /** Who the caller is: the audit events' `actor.subject`. */
  readonly sub: string;
  /** Scopes, each one of `config:read secrets:read audit:read encrypt admin`. */
  readonly scopes: readonly string[];
  /** Application globs the token may reach (`*`, `orders`, `pay*`); may be empty (`audit:read` needs none). */
  readonly apps: readonly string[];
  /** Lifetime in seconds (`exp` = `iat` + this). */
  readonly ttlSeconds: number;
  /** `iss`, needed when the service sets `jwt.issuer`. */
  readonly issuer?: string;
  /** `aud`, needed when the service sets `jwt.audience`. */
  readonly audience?: string;
  /** `kid` header, for a service that reads a JWKS (`jwt.jwksFile`). */
  readonly kid?: string;
}

function algorithmOf(key: KeyObject): string {
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  if (key.asymmetricKeyType === 'rsa') return 'RS256';
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  throw new CFG_ERR_USAGE(`--key: a ${key.asymmetricKeyType ?? 'symmetric'} key cannot sign tokens the service accepts (use ECDSA P-256, RSA or Ed25519)`);
}

/**
 * Signs a development token.
 *
 * @param keyPem - the private key (PEM).
 * @param now - seconds since the epoch for `iat` (tests).
 * @returns the compact JWS.
 * @throws CFG_ERR_USAGE for an unknown scope, no scope, an empty `sub`, or a
 *   key that is not a usable private key.
 */
export async function issueDevToken(keyPem: string | Buffer, claims: DevTokenClaims, now: number = Math.floor(Date.now() / 1000)): Promise<string> {
  if (claims.sub.trim() === '') throw new CFG_ERR_USAGE('--sub: must not be empty');
  const unknown = claims.scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (unknown.length > 0) throw new CFG_ERR_USAGE(`--scope: unknown scope ${unknown.map((s) => `'${s}'`).join(', ')}; the scopes are ${SCOPES.join(', ')}`);
  if (claims.scopes.length === 0) throw new CFG_ERR_USAGE(`--scope: name at least one of ${SCOPES.join(', ')}`);
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new CFG_ERR_USAGE('--key: not an unencrypted PEM private key');
  }
  const alg = algorithmOf(key);
  let jwt = new SignJWT({ scope: [...new Set(claims.scopes)].join(' '), apps: [...claims.apps] })
    .setProtectedHeader({ alg, typ: 'JWT', ...(claims.kid !== undefined && { kid: claims.kid }) })
    .setSubject(claims.sub)
    .setIssuedAt(now)
    .setExpirationTime(now + claims.ttlSeconds);
  if (claims.issuer !== undefined) jwt = jwt.setIssuer(claims.issuer);
  if (claims.audience !== undefined) jwt = jwt.setAudience(claims.audience);
  return jwt.sign(key);
}
