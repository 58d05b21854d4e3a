/**
 * Who is calling: the identity of a client certificate or of a verified JWT (SPEC §3).
 *
 * A certificate names its application through, in this order of preference:
 * 1. the first URI SAN matching the `uriSan` pattern (SPIFFE X.509-SVID form
 *    `spiffe://<trust-domain>/ns/<ns>/sa/<app>`),
 * 2. else the first DNS SAN matching the `dnsSan` pattern,
 * 3. else the first subject CN matching the `commonName` pattern.
 * Each pattern is a regular expression with a named group `app`; the group's text is the
 * principal's subject.
 *
 * Certificates are read with Node's native `X509Certificate` (OpenSSL; about 1.7 ms less
 * per connection than parsing them in JavaScript). Its `subjectAltName` text quotes every
 * value holding a comma, quote or non-ASCII character as a JSON string literal (Node
 * 17.3.1+, CVE-2021-44532), so {@link parseSubjectAltNames} reads it back exactly; names
 * (`subject`, `issuer`) come one RDN per line with RFC 2253 escapes (OpenSSL
 * `XN_FLAG_SEP_MULTILINE | ASN1_STRFLGS_ESC_2253`). The issuer is reported as
 * `@peculiar/x509` prints it (the form audit events always had), computed once per
 * distinct issuer ({@link issuerName}).
 */
import { X509Certificate } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { CFG_ERR_SETTINGS_INVALID, CFG_ERR_UNAUTHENTICATED, withData } from '../errors.js';
import { x509 } from '../pki/x509.js';
import { SCOPES, type Principal, type Scope } from './policy.js';

/** The three identity patterns: regular expression sources, each with a named group `app`. */
export interface IdentityPatterns {
  /** Matched against each URI SAN, in certificate order. */
  uriSan: string;
  /** Matched against each DNS SAN, in certificate order. */
  dnsSan: string;
  /** Matched against each subject CN, in certificate order. */
  commonName: string;
}

/**
 * Default patterns (SPEC §3): a SPIFFE ID whose last path segment is the app
 * (`spiffe://<td>/ns/<ns>/sa/<app>`), the first label of a DNS name, or a whole CN. App
 * names are 1 to 63 characters of `[a-z0-9._-]` starting and ending alphanumeric (a DNS
 * label for the DNS form).
 */
export const DEFAULT_IDENTITY_PATTERNS: Readonly<IdentityPatterns> = Object.freeze({
  uriSan: '^spiffe://[^/]+/ns/[^/]+/sa/(?<app>[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?)$',
  dnsSan: '^(?<app>[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)\\.',
  commonName: '^(?<app>[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?)$',
});

/** Identity patterns compiled by {@link compileIdentityPatterns}. */
export interface CompiledIdentityPatterns {
  readonly uriSan: RegExp;
  readonly dnsSan: RegExp;
  readonly commonName: RegExp;
}

/** Where a certificate identity came from. */
export type IdentitySource = 'uri-san' | 'dns-san' | 'cn';

/** The identity of a client certificate. */
export interface CertificatePrincipal {
  kind: 'certificate';
  /** The application name: the text of the pattern's `app` group. */
  subject: string;
  /** Which field supplied it. */
  source: IdentitySource;
  /** The whole SAN value that matched (for `uri-san` and `dns-san`). */
  san?: string;
  /** SHA-256 of the certificate DER, lower-case hex without colons. */
  fingerprint256: string;
  /**
   * Issuer DN as `@peculiar/x509` prints it: RDNs in certificate order joined by `, `,
   * values escaped as RFC 4514 §2.4 says (e.g. `CN=Dev CA\, Inc.`).
   */
  issuer: string;
  /** Serial number, lower-case hex without leading zero octets (as `certificateSerial`). */
  serialNumber: string;
}

const PATTERN_KEYS = ['uriSan', 'dnsSan', 'commonName'] as const;
const compiledCache = new WeakMap<IdentityPatterns, CompiledIdentityPatterns>();

/**
 * Compiles and checks identity patterns once, at start-up or settings reload.
 *
 * Patterns are compiled without flags (case-sensitive, not anchored unless they anchor
 * themselves).
 *
 * @param patterns - regular expression sources; a missing (undefined) one takes its value
 *   from {@link DEFAULT_IDENTITY_PATTERNS}.
 * @param settingPrefix - the settings path the patterns live under, used in error messages.
 *   Default `'identity'`, giving `identity.uriSan`, `identity.dnsSan`, `identity.commonName`.
 * @returns the compiled patterns (frozen).
 * @throws CFG_ERR_SETTINGS_INVALID when a pattern is not a valid regular expression or has
 *   no named group `app`; the message names the setting, `data.setting` holds it.
 */
export function compileIdentityPatterns(patterns: Partial<IdentityPatterns>, settingPrefix = 'identity'): CompiledIdentityPatterns {
  const out: Partial<Record<(typeof PATTERN_KEYS)[number], RegExp>> = {};
  for (const key of PATTERN_KEYS) {
    const setting = `${settingPrefix}.${key}`;
    const source: unknown = patterns[key] ?? DEFAULT_IDENTITY_PATTERNS[key];
    if (typeof source !== 'string') {
      throw withData(new CFG_ERR_SETTINGS_INVALID(`${setting}: must be a regular expression string`), { setting });
    }
    let re: RegExp;
    try {
      re = new RegExp(source);
    } catch (err) {
      throw withData(new CFG_ERR_SETTINGS_INVALID(`${setting}: not a valid regular expression (${(err as Error).message})`), { setting });
    }
    // `(?:p)|` always matches the empty string, and its `groups` lists every named group of p.
    const groups = new RegExp(`(?:${source})|`).exec('')?.groups;
    if (!groups || !Object.prototype.hasOwnProperty.call(groups, 'app')) {
      throw withData(new CFG_ERR_SETTINGS_INVALID(`${setting}: the pattern has no named group 'app', write (?<app>...)`), { setting });
    }
    out[key] = re;
  }
  return Object.freeze(out as Required<typeof out>);
}

function compiled(patterns: IdentityPatterns | CompiledIdentityPatterns): CompiledIdentityPatterns {
  if (patterns.uriSan instanceof RegExp && patterns.dnsSan instanceof RegExp && patterns.commonName instanceof RegExp) {
    return patterns as CompiledIdentityPatterns;
  }
  const plain = patterns as IdentityPatterns;
  let hit = compiledCache.get(plain);
  if (!hit) {
    hit = compileIdentityPatterns(plain);
    compiledCache.set(plain, hit);
  }
  return hit;
}

function appOf(re: RegExp, value: string): string | null {
  const app = re.exec(value)?.groups?.['app'];
  return app ? app : null;
}

/**
 * Derives the principal of a client certificate (SPEC §3).
 *
 * @param der - the certificate, DER (e.g. `tlsSocket.getPeerCertificate().raw`).
 * @param patterns - compiled patterns, or pattern sources (compiled once per object and
 *   cached).
 * @returns the principal, or null when no URI SAN, DNS SAN or CN matches its pattern (or a
 *   match leaves the `app` group empty).
 * @throws CFG_ERR_UNAUTHENTICATED (401) when the bytes are not an X.509 certificate.
 * @throws CFG_ERR_SETTINGS_INVALID when uncompiled patterns are invalid.
 */
export function principalFromCertificate(
  der: Uint8Array,
  patterns: IdentityPatterns | CompiledIdentityPatterns,
): CertificatePrincipal | null {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(Buffer.from(der.buffer, der.byteOffset, der.byteLength));
  } catch {
    throw new CFG_ERR_UNAUTHENTICATED('the client certificate cannot be parsed');
  }
  return principalFromX509(cert, patterns);
}

/**
 * {@link principalFromCertificate} for a certificate Node already parsed
 * (`tlsSocket.getPeerX509Certificate()`): nothing is parsed in JavaScript but the SAN and
 * subject text.
 *
 * @throws CFG_ERR_UNAUTHENTICATED (401) when its SAN text cannot be read back.
 * @throws CFG_ERR_SETTINGS_INVALID when uncompiled patterns are invalid.
 */
export function principalFromX509(cert: X509Certificate, patterns: IdentityPatterns | CompiledIdentityPatterns): CertificatePrincipal | null {
  const re = compiled(patterns);
  let sans: SubjectAltNames;
  try {
    sans = parseSubjectAltNames(cert.subjectAltName);
  } catch {
    throw new CFG_ERR_UNAUTHENTICATED('the client certificate cannot be parsed');
  }
  const base = {
    kind: 'certificate' as const,
    fingerprint256: cert.fingerprint256.replaceAll(':', '').toLowerCase(),
    issuer: issuerName(cert),
    serialNumber: serialHex(cert.serialNumber),
  };
  for (const uri of sans.uris) {
    const app = appOf(re.uriSan, uri);
    if (app) return { ...base, subject: app, source: 'uri-san', san: uri };
  }
  for (const dns of sans.dnsNames) {
    const app = appOf(re.dnsSan, dns);
    if (app) return { ...base, subject: app, source: 'dns-san', san: dns };
  }
  for (const cn of nameValues(cert.subject, 'CN')) {
    const app = appOf(re.commonName, cn);
    if (app) return { ...base, subject: app, source: 'cn' };
  }
  return null;
}

/** URI and DNS SANs of a certificate, in certificate order. */
export interface SubjectAltNames {
  uris: string[];
  dnsNames: string[];
}

/**
 * Reads Node's `X509Certificate.subjectAltName` text back into values: entries are
 * `TYPE:value` separated by `, `; a value holding a comma, quote, backslash or a
 * non-printable or non-ASCII character is a JSON string literal (Node >= 17.3.1). Only
 * `URI` and `DNS` entries are returned; other forms are skipped.
 *
 * @param text - the `subjectAltName` property; undefined when the certificate has none.
 * @throws SyntaxError when a quoted value is not a JSON string.
 */
export function parseSubjectAltNames(text: string | undefined): SubjectAltNames {
  const out: SubjectAltNames = { uris: [], dnsNames: [] };
  if (!text) return out;
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon === -1) break;
    const type = text.slice(i, colon);
    let value: string;
    let next: number;
    if (text[colon + 1] === '"') {
      let j = colon + 2;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      value = JSON.parse(text.slice(colon + 1, j + 1)) as string;
      next = j + 1;
    } else {
      const end = text.indexOf(', ', colon + 1);
      next = end === -1 ? text.length : end;
      value = text.slice(colon + 1, next);
    }
    if (type === 'URI') out.uris.push(value);
    else if (type === 'DNS') out.dnsNames.push(value);
    i = text.startsWith(', ', next) ? next + 2 : next + 1;
  }
  return out;
}

/**
 * The values of attribute `attr` (short name, `CN`) of a name as Node prints it: one RDN
 * per line, multi-valued RDNs joined by ` + `, RFC 2253 escapes (`\,`, `\+`, `\"`,
 * `\\`, `\XX` hex for control characters).
 */
export function nameValues(name: string, attr: string): string[] {
  const out: string[] = [];
  const prefix = `${attr}=`;
  for (const line of name.split('\n')) {
    // Split on unescaped " + " (a literal + in a value is written \+).
    for (const part of line.split(/(?<!\\) \+ /)) {
      if (!part.startsWith(prefix)) continue;
      out.push(part.slice(prefix.length).replace(/\\([0-9A-Fa-f]{2}|.)/g, (_m, c: string) => (c.length === 2 ? String.fromCharCode(Number.parseInt(c, 16)) : c)));
    }
  }
  return out;
}

/** Serial as lower-case hex without leading zero octets (the form of `certificateSerial`). */
function serialHex(serial: string): string {
  let hex = serial.toLowerCase();
  if (hex.length % 2 === 1) hex = `0${hex}`;
  while (hex.length > 2 && hex.startsWith('00')) hex = hex.slice(2);
  return hex;
}

/** Issuer DNs as `@peculiar/x509` prints them, by Node's text of the issuer (one per CA in practice). */
const issuerNames = new LRUCache<string, string>({ max: 1000 });

/**
 * The issuer DN of `cert` as `@peculiar/x509` prints it (RDNs in certificate order joined
 * by `, `, RFC 4514 escapes: `CN=Dev CA\, Inc.`), the form audit events and CRL lookups
 * use. Parsed in JavaScript once per distinct issuer (keyed by Node's own text of it), so
 * a connection costs a map lookup. '' when the certificate cannot be parsed.
 */
export function issuerName(cert: X509Certificate): string {
  const key = cert.issuer;
  let name = issuerNames.get(key);
  if (name === undefined) {
    try {
      name = new x509.X509Certificate(Uint8Array.from(cert.raw)).issuer;
    } catch {
      name = '';
    }
    issuerNames.set(key, name);
  }
  return name;
}

/** Claims of a verified JWT that carry identity and permissions (SPEC §3). */
export interface JwtIdentityClaims {
  sub?: unknown;
  /** Space-separated scopes, RFC 8693 §4.2 style. */
  scope?: unknown;
  /** App globs: an array of strings, or one space-separated string. */
  apps?: unknown;
}

/**
 * Turns the claims of an already verified JWT into a principal: subject = `sub`, scopes =
 * the known scopes of the space-separated `scope` claim (unknown ones are ignored), apps =
 * the `apps` claim (array of strings, or a space-separated string; missing = none).
 *
 * @throws CFG_ERR_UNAUTHENTICATED (401) when `sub` is missing or not a non-empty string.
 */
export function principalFromJwtClaims(claims: JwtIdentityClaims): Principal & { kind: 'jwt'; scopes: Scope[]; apps: string[] } {
  const { sub, scope, apps } = claims;
  if (typeof sub !== 'string' || sub.length === 0) throw new CFG_ERR_UNAUTHENTICATED('the token has no sub claim');
  const known = new Set<string>(SCOPES);
  const scopes = typeof scope === 'string' ? [...new Set(scope.split(/\s+/).filter((s): s is Scope => known.has(s)))] : [];
  let appGlobs: string[] = [];
  if (typeof apps === 'string') appGlobs = apps.split(/\s+/).filter((a) => a.length > 0);
  else if (Array.isArray(apps)) appGlobs = apps.filter((a): a is string => typeof a === 'string' && a.length > 0);
  return { kind: 'jwt', subject: sub, scopes, apps: appGlobs };
}
