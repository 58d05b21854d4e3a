/**
 * Verification-key selection for bearer tokens (src/http/jwt-keys.ts): algorithm
 * confusion (RFC 8725 §2.1), `none`, JWKS `kid` selection, JWK `alg`/`use`.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { FastifyBaseLogger } from 'fastify';
import { checkJwtAlgorithms, JwtKeyError, JwtKeySource, type JwtSettings } from '../../src/http/jwt-keys.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'jwt-keys-'));
const silent = pino({ level: 'silent' }) as unknown as FastifyBaseLogger;
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ed = generateKeyPairSync('ed25519');

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

const settings = (over: Partial<JwtSettings>): JwtSettings => ({ algorithms: ['RS256', 'ES256', 'EdDSA'], clockSkewSeconds: 30, ...over });

function reason(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof JwtKeyError) return err.reason;
    throw err;
  }
  return undefined;
}

describe('jwt.algorithms', () => {
  it("refuses 'none' and unknown names, naming the setting", () => {
    expect(() => checkJwtAlgorithms({ algorithms: ['ES256', 'none'] })).toThrow(/jwt\.algorithms\[1\].*never accepted/);
    expect(() => checkJwtAlgorithms({ algorithms: ['ES257'] })).toThrow(/jwt\.algorithms\[0\].*unknown algorithm/);
    expect(() => checkJwtAlgorithms({ algorithms: [] })).toThrow(/at least one/);
  });
});

describe('PEM public key', () => {
  const pem = file('ec.pem', ec.publicKey.export({ type: 'spki', format: 'pem' }).toString());

  it('verifies only the algorithm of its key type', () => {
    const keys = new JwtKeySource(settings({ publicKeyFile: pem }), silent);
    expect(keys.keyFor({ alg: 'ES256' })).toContain('BEGIN PUBLIC KEY');
    expect(reason(() => keys.keyFor({ alg: 'RS256' }))).toBe('algorithm_not_allowed');
    expect(reason(() => keys.keyFor({ alg: 'none' }))).toBe('unsigned');
    expect(reason(() => keys.keyFor({ alg: 'NONE' }))).toBe('unsigned');
    expect(reason(() => keys.keyFor({}))).toBe('unsigned');
  });

  it('never hands a public key out as an HMAC secret, even with HS256 listed', () => {
    const keys = new JwtKeySource(settings({ publicKeyFile: pem, algorithms: ['ES256', 'HS256'] }), silent);
    expect(reason(() => keys.keyFor({ alg: 'HS256' }))).toBe('algorithm_not_allowed');
    expect(() => new JwtKeySource(settings({ publicKeyFile: pem, algorithms: ['HS256'] }), silent)).toThrow(/jwt\.publicKeyFile: the ec key verifies none of jwt\.algorithms/);
  });

  it('knows RSA (RS and PS) and Ed25519 keys, and refuses a private key file', () => {
    const r = new JwtKeySource(settings({ publicKeyFile: file('rsa.pem', rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString()), algorithms: ['RS256', 'PS256'] }), silent);
    expect(typeof r.keyFor({ alg: 'PS256' })).toBe('string');
    const e = new JwtKeySource(settings({ publicKeyFile: file('ed.pem', ed.publicKey.export({ type: 'spki', format: 'pem' }).toString()) }), silent);
    expect(typeof e.keyFor({ alg: 'EdDSA' })).toBe('string');
    expect(() => new JwtKeySource(settings({ publicKeyFile: file('priv.pem', ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()) }), silent)).toThrow(/private key/);
  });

  it('needs exactly one of publicKeyFile and jwksFile', () => {
    expect(() => new JwtKeySource(settings({}), silent)).toThrow(/exactly one/);
  });
});

describe('JWKS file', () => {
  const ecJwk = { ...ec.publicKey.export({ format: 'jwk' }), kid: 'ec-1' };
  const rsaJwk = { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'rsa-1', alg: 'RS256' };
  const encJwk = { ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }), kid: 'enc-1', use: 'enc' };
  const oct = { kty: 'oct', kid: 'hmac-1', k: randomBytes(32).toString('base64url') };

  it('chooses the key by kid and checks the algorithm against it', () => {
    const keys = new JwtKeySource(settings({ jwksFile: file('jwks.json', JSON.stringify({ keys: [ecJwk, rsaJwk, encJwk] })) }), silent);
    expect(keys.keyFor({ alg: 'ES256', kid: 'ec-1' })).toContain('BEGIN PUBLIC KEY');
    expect(keys.keyFor({ alg: 'RS256', kid: 'rsa-1' })).toContain('BEGIN PUBLIC KEY');
    expect(reason(() => keys.keyFor({ alg: 'RS256', kid: 'ec-1' }))).toBe('algorithm_not_allowed');
    expect(reason(() => keys.keyFor({ alg: 'ES256', kid: 'nope' }))).toBe('key_not_found');
    expect(reason(() => keys.keyFor({ alg: 'ES256', kid: 'enc-1' }))).toBe('key_not_found'); // use: enc never verifies
    expect(keys.keyFor({ alg: 'ES256' })).toContain('BEGIN PUBLIC KEY'); // no kid, one candidate
  });

  it('honours a JWK alg (RS256 key refuses PS256)', () => {
    const keys = new JwtKeySource(settings({ jwksFile: file('jwks-alg.json', JSON.stringify({ keys: [rsaJwk] })), algorithms: ['RS256', 'PS256'] }), silent);
    expect(reason(() => keys.keyFor({ alg: 'PS256', kid: 'rsa-1' }))).toBe('algorithm_not_allowed');
  });

  it('uses an oct key for HS256 only when HS256 is listed, and only that key', () => {
    const jwks = file('jwks-oct.json', JSON.stringify({ keys: [ecJwk, oct] }));
    const without = new JwtKeySource(settings({ jwksFile: jwks }), silent);
    expect(reason(() => without.keyFor({ alg: 'HS256', kid: 'hmac-1' }))).toBe('algorithm_not_allowed');
    const withHs = new JwtKeySource(settings({ jwksFile: jwks, algorithms: ['ES256', 'HS256'] }), silent);
    expect(Buffer.isBuffer(withHs.keyFor({ alg: 'HS256', kid: 'hmac-1' }))).toBe(true);
    expect(reason(() => withHs.keyFor({ alg: 'HS256', kid: 'ec-1' }))).toBe('algorithm_not_allowed');
  });

  it('refuses private key material, short secrets and non-JWKS documents, naming the setting', () => {
    const priv = { ...ec.privateKey.export({ format: 'jwk' }), kid: 'p' };
    expect(() => new JwtKeySource(settings({ jwksFile: file('p.json', JSON.stringify({ keys: [priv] })) }), silent)).toThrow(/jwt\.jwksFile keys\[0\].*private key material/);
    expect(() => new JwtKeySource(settings({ jwksFile: file('s.json', JSON.stringify({ keys: [{ kty: 'oct', k: 'c2hvcnQ' }] })), algorithms: ['HS256'] }), silent)).toThrow(/shorter than 256 bits/);
    expect(() => new JwtKeySource(settings({ jwksFile: file('n.json', '{"x":1}') }), silent)).toThrow(/not a JWK Set/);
    expect(() => new JwtKeySource(settings({ jwksFile: file('j.json', 'nope') }), silent)).toThrow(/jwt\.jwksFile: not valid JSON/);
  });
});
