/**
 * Verification keys for bearer tokens (SPEC §3), from `jwt.publicKeyFile` (one PEM public
 * key) or `jwt.jwksFile` (a JWK Set, RFC 7517, key chosen by `kid`).
 *
 * The algorithm a token may use is decided here, before any signature is checked, from
 * the configured list AND the key: RSA keys verify RS and PS algorithms, EC keys the ES
 * algorithm of their curve, Ed25519/Ed448 keys EdDSA, and only a symmetric JWK
 * (`kty: oct`) verifies HS algorithms. So a token with `alg: HS256` is never checked with
 * a public key as the HMAC secret, even when HS256 is listed (the "algorithm confusion"
 * attack, RFC 8725 §2.1 and §3.1), and `alg: none` is never accepted (RFC 8725 §3.1;
 * listing `none` is a settings error). A JWK's own `alg` and `use` restrict it further
 * (RFC 7517 §4.2, §4.4).
 *
 * The key file is re-read when it changes (polled every 2 s), so issuer key rotation
 * needs no restart; a file that no longer validates is logged and the old keys stay.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { FastifyBaseLogger } from 'fastify';
import { CFG_ERR_SETTINGS_INVALID, withData } from '../errors.js';
import type { Settings } from '../settings/schema.js';

/** The `jwt` section of the service settings. */
export type JwtSettings = NonNullable<Settings['jwt']>;

/** Every JWS algorithm this service can verify (RFC 7518 §3.1, RFC 8037 §3.1). */
export const SUPPORTED_JWT_ALGORITHMS: readonly string[] = Object.freeze([
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'HS256', 'HS384', 'HS512',
]);

const HS = ['HS256', 'HS384', 'HS512'];
const RSA = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const EC_BY_CURVE: Record<string, string> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };

/** Why a token was refused before its signature was checked. */
export type JwtKeyRejection = 'algorithm_not_allowed' | 'unsigned' | 'key_not_found';

/** Thrown by {@link JwtKeySource.keyFor}; `reason` goes into the audit event. */
export class JwtKeyError extends Error {
  /** Stable reason, safe to audit and show. */
  readonly reason: JwtKeyRejection;
  readonly code = 'CFG_JWT_KEY_REJECTED';
  constructor(reason: JwtKeyRejection, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** One verification key. */
interface VerificationKey {
  kid: string | undefined;
  /** Algorithms this key may verify: the configured ones its type supports. */
  algorithms: ReadonlySet<string>;
  /** What fast-jwt gets: SPKI PEM text for public keys, raw bytes for an `oct` secret. */
  material: string | Buffer;
}

function invalid(setting: string, problem: string): Error {
  return withData(new CFG_ERR_SETTINGS_INVALID(`  ${setting}: ${problem}`), { setting });
}

function algorithmsOfKey(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return RSA;
    case 'rsa-pss':
      return RSA.filter((a) => a.startsWith('PS'));
    case 'ec': {
      const alg = EC_BY_CURVE[key.asymmetricKeyDetails?.namedCurve ?? ''];
      return alg ? [alg] : [];
    }
    case 'ed25519':
    case 'ed448':
      return ['EdDSA'];
    default:
      return [];
  }
}

/**
 * Checks `jwt.algorithms`: known names only, never `none`.
 * @returns the configured algorithms.
 * @throws CFG_ERR_SETTINGS_INVALID naming `jwt.algorithms[i]`.
 */
export function checkJwtAlgorithms(settings: Pick<JwtSettings, 'algorithms'>): string[] {
  if (settings.algorithms.length === 0) throw invalid('jwt.algorithms', 'must list at least one algorithm');
  settings.algorithms.forEach((alg, i) => {
    if (alg.toLowerCase() === 'none') throw invalid(`jwt.algorithms[${i}]`, "'none' (unsigned tokens) is never accepted (RFC 8725 §3.1)");
    if (!SUPPORTED_JWT_ALGORITHMS.includes(alg)) throw invalid(`jwt.algorithms[${i}]`, `unknown algorithm '${alg}' (one of ${SUPPORTED_JWT_ALGORITHMS.join(', ')})`);
  });
  return [...settings.algorithms];
}

function loadPem(file: string, allowed: readonly string[]): VerificationKey[] {
  const setting = 'jwt.publicKeyFile';
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw invalid(setting, `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) throw invalid(setting, 'holds a private key; give the public key only');
  let key: KeyObject;
  try {
    key = createPublicKey(text);
  } catch {
    throw invalid(setting, 'not a PEM public key or certificate');
  }
  const algorithms = algorithmsOfKey(key).filter((a) => allowed.includes(a));
  if (algorithms.length === 0) throw invalid(setting, `the ${key.asymmetricKeyType ?? 'unknown'} key verifies none of jwt.algorithms (${allowed.join(', ')})`);
  return [{ kid: undefined, algorithms: new Set(algorithms), material: key.export({ type: 'spki', format: 'pem' }).toString() }];
}

function loadJwks(file: string, allowed: readonly string[]): VerificationKey[] {
  const setting = 'jwt.jwksFile';
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw invalid(setting, code ? `cannot read ${file} (${code})` : 'not valid JSON');
  }
  const keys = (doc as { keys?: unknown }).keys;
  if (!Array.isArray(keys)) throw invalid(setting, 'not a JWK Set (no "keys" array, RFC 7517 §5)');
  const out: VerificationKey[] = [];
  keys.forEach((raw: unknown, i) => {
    const at = `${setting} keys[${i}]`;
    if (typeof raw !== 'object' || raw === null) throw invalid(at, 'not a JSON object');
    const jwk = raw as JsonWebKey & { kid?: unknown; alg?: unknown; use?: unknown };
    if (jwk.use !== undefined && jwk.use !== 'sig') return; // encryption keys never verify tokens
    const kid = typeof jwk.kid === 'string' ? jwk.kid : undefined;
    let algorithms: string[];
    let material: string | Buffer;
    if (jwk.kty === 'oct') {
      if (typeof jwk.k !== 'string' || jwk.k.length === 0) throw invalid(at, 'oct key without "k"');
      material = Buffer.from(jwk.k, 'base64url');
      if (material.length < 32) throw invalid(at, 'symmetric key shorter than 256 bits (RFC 7518 §3.2)');
      algorithms = HS;
    } else {
      if (jwk.d !== undefined) throw invalid(at, 'holds private key material ("d"); publish public keys only');
      let key: KeyObject;
      try {
        key = createPublicKey({ key: jwk, format: 'jwk' });
      } catch {
        throw invalid(at, `not a usable ${String(jwk.kty)} public key`);
      }
      algorithms = algorithmsOfKey(key);
      material = key.export({ type: 'spki', format: 'pem' }).toString();
    }
    algorithms = algorithms.filter((a) => allowed.includes(a) && (jwk.alg === undefined || jwk.alg === a));
    if (algorithms.length > 0) out.push({ kid, algorithms: new Set(algorithms), material });
  });
  if (out.length === 0) throw invalid(setting, `no signing key verifies any of jwt.algorithms (${allowed.join(', ')})`);
  return out;
}

/**
 * The verification keys of the `jwt` settings, kept fresh. Use {@link keyFor} as the
 * `secret` function of `@fastify/jwt` in verify-only mode.
 */
export class JwtKeySource {
  readonly #settings: JwtSettings;
  readonly #allowed: string[];
  readonly #file: string;
  readonly #logger: FastifyBaseLogger;
  #keys: VerificationKey[];
  #watching = false;

  /**
   * Loads the keys.
   * @throws CFG_ERR_SETTINGS_INVALID when neither or both of `jwt.publicKeyFile` and
   *   `jwt.jwksFile` are set, `jwt.algorithms` lists `none` or an unknown name, or the key
   *   file cannot be read, parsed, or verifies none of the algorithms.
   */
  constructor(settings: JwtSettings, logger: FastifyBaseLogger) {
    this.#settings = settings;
    this.#logger = logger;
    this.#allowed = checkJwtAlgorithms(settings);
    if (!settings.publicKeyFile === !settings.jwksFile) throw invalid('jwt', 'set exactly one of jwt.publicKeyFile and jwt.jwksFile');
    this.#file = (settings.publicKeyFile ?? settings.jwksFile)!;
    this.#keys = this.#load();
    const symmetric = this.#keys.some((k) => Buffer.isBuffer(k.material));
    if (this.#allowed.some((a) => HS.includes(a)) && !symmetric) {
      logger.warn({ setting: 'jwt.algorithms' }, 'HS* algorithms are listed but no symmetric (oct) key is configured; HS* tokens are refused');
    }
  }

  #load(): VerificationKey[] {
    return this.#settings.publicKeyFile ? loadPem(this.#file, this.#allowed) : loadJwks(this.#file, this.#allowed);
  }

  /** The configured algorithms (what `@fastify/jwt` is told to allow). */
  get algorithms(): string[] {
    return [...this.#allowed];
  }

  /** Re-reads the key file whenever it changes (stat polling every `intervalMs`). */
  watch(intervalMs = 2000): void {
    if (this.#watching) return;
    this.#watching = true;
    watchFile(this.#file, { interval: intervalMs, persistent: false }, (curr, prev) => {
      if (curr.mtimeMs === prev.mtimeMs && curr.size === prev.size && curr.ino === prev.ino) return;
      try {
        this.#keys = this.#load();
        this.#logger.info({ setting: this.#settings.publicKeyFile ? 'jwt.publicKeyFile' : 'jwt.jwksFile', keys: this.#keys.length }, 'JWT verification keys reloaded');
      } catch (err) {
        const e = err as Error & { data?: { setting?: string } };
        this.#logger.error({ setting: e.data?.setting, reason: e.message.replace(/^Invalid service settings:\s*/, '').trim() }, 'JWT key file changed but does not validate; keeping the current keys');
      }
    });
  }

  /** Stops watching the key file. */
  close(): void {
    if (this.#watching) unwatchFile(this.#file);
    this.#watching = false;
  }

  /**
   * The key that verifies a token with this protected header.
   * @throws JwtKeyError `unsigned` for `alg: none`, `algorithm_not_allowed` when the
   *   algorithm is not configured or the key cannot verify it (HS* with a public key),
   *   `key_not_found` when no key has the token's `kid` (or the token has no `kid` and the
   *   set has several candidate keys).
   */
  keyFor(header: { alg?: unknown; kid?: unknown }): string | Buffer {
    const alg = header.alg;
    if (typeof alg !== 'string' || alg.toLowerCase() === 'none') throw new JwtKeyError('unsigned', 'unsigned tokens are not accepted');
    if (!this.#allowed.includes(alg)) throw new JwtKeyError('algorithm_not_allowed', 'token algorithm is not accepted');
    const kid = typeof header.kid === 'string' ? header.kid : undefined;
    let candidates = this.#keys;
    if (this.#settings.jwksFile) {
      if (kid !== undefined) candidates = candidates.filter((k) => k.kid === kid);
      if (candidates.length === 0) throw new JwtKeyError('key_not_found', 'token key id (kid) is not known');
    }
    const usable = candidates.filter((k) => k.algorithms.has(alg));
    if (usable.length === 0) throw new JwtKeyError('algorithm_not_allowed', 'token algorithm does not match its key');
    if (usable.length > 1) throw new JwtKeyError('key_not_found', 'token names no key id (kid) and several keys could verify it');
    return usable[0]!.material;
  }
}
