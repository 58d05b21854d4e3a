/**
 * Signs test JWTs (jose) with a throwaway ES256 key pair; the public key goes into the
 * service's `jwt.publicKeyFile`.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { SignJWT } from 'jose';

export interface TestIssuer {
  publicKeyFile: string;
  issuer: string;
  audience: string;
  /** Signs a token with `claims` (sub, scope, apps ...), valid for 5 minutes unless `exp` is given. */
  sign(claims: Record<string, unknown>): Promise<string>;
  privateKey: KeyObject;
  /** The public key as SPKI PEM text (the content of `publicKeyFile`). */
  publicKeyPem: string;
}

/** Creates an ES256 issuer whose public key is written into `dir`. */
export function makeIssuer(dir: string, issuer = 'https://issuer.test', audience = 'config-service'): TestIssuer {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicKeyFile = path.join(dir, 'jwt-public.pem');
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  writeFileSync(publicKeyFile, publicKeyPem);
  return {
    publicKeyFile,
    publicKeyPem,
    issuer,
    audience,
    privateKey,
    sign: (claims) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256' })
        .setIssuer(issuer)
        .setAudience(audience)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey),
  };
}
