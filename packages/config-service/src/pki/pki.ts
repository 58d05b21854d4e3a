/**
 * Development PKI: a self-signed CA, server and client certificates, and CRLs, built with
 * `@peculiar/x509` on Node's WebCrypto.
 *
 * Everything here produces PEM text only; writing files is {@link ./files.ts}'s job.
 * Profiles follow RFC 5280 (§4.1.2.2 serial numbers, §4.2.1.1/.2 key identifiers,
 * §4.2.1.3 key usage, §4.2.1.6 subject alternative names, §4.2.1.9 basic constraints,
 * §4.2.1.12 extended key usage, §5 CRLs). Leaf certificates also meet the SPIFFE
 * X.509-SVID rules (CA:false, keyUsage digitalSignature critical, no keyCertSign/cRLSign)
 * when given exactly one `spiffe://` URI SAN, as `issueClientFiles` does. The default key
 * algorithm is ECDSA P-256
 * (SPEC §11: handshakes about 12% cheaper than RSA-2048).
 *
 * Private keys are returned to the caller as PKCS#8 PEM and never logged or put in error
 * messages.
 */
import { createPrivateKey, createPublicKey, KeyObject, webcrypto, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { x509 } from './x509.js';
import { CFG_ERR_PKI } from '../errors.js';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type EcKeyGenParams = webcrypto.EcKeyGenParams;
type RsaHashedKeyGenParams = webcrypto.RsaHashedKeyGenParams;
type Algorithm = webcrypto.Algorithm;
type EcdsaParams = webcrypto.EcdsaParams;

/** Key algorithms the development PKI can generate. */
export type KeyAlgorithm = 'ecdsa-p256' | 'rsa-2048';

/** A certificate with its private key. */
export interface CertificateBundle {
  /** The certificate, PEM (`-----BEGIN CERTIFICATE-----`). */
  certPem: string;
  /** Its private key, unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). Never log it. */
  keyPem: string;
}

/** Options of {@link createCa}. */
export interface CreateCaOptions {
  /** Subject and issuer CN of the CA. */
  commonName: string;
  /** Validity in days from now (whole days of 86 400 s). Default 3650. */
  validityDays?: number;
  /** Key algorithm. Default `'ecdsa-p256'`. */
  algorithm?: KeyAlgorithm;
}

/** Options of {@link issueCertificate}. */
export interface IssueCertificateOptions {
  /** `server` gets extendedKeyUsage serverAuth, `client` gets clientAuth (RFC 5280 §4.2.1.12). */
  kind: 'server' | 'client';
  /** Subject CN (the only subject attribute). */
  commonName: string;
  /** dNSName SANs, ASCII (IA5String). */
  dnsNames?: string[];
  /** iPAddress SANs, IPv4 dotted quad or IPv6 text (`127.0.0.1`, `::1`). */
  ipAddresses?: string[];
  /** uniformResourceIdentifier SANs, ASCII (e.g. `spiffe://example.org/ns/default/sa/app`). */
  uris?: string[];
  /** Start of validity. Default: now minus 5 minutes (clock-skew allowance). */
  notBefore?: Date;
  /** End of validity. Default: now plus `validityDays`. */
  notAfter?: Date;
  /** Validity in days from now when `notAfter` is not given. Default 397 (CA/B Forum maximum). */
  validityDays?: number;
  /** Key algorithm of the new key. Default: the same algorithm as the CA key. */
  algorithm?: KeyAlgorithm;
}

/** Options of {@link createCrl}. */
export interface CreateCrlOptions {
  /** `thisUpdate` of the CRL. Default now. */
  thisUpdate?: Date;
  /** `nextUpdate` of the CRL; OpenSSL rejects every certificate once it has passed. Default `thisUpdate` + 30 days. */
  nextUpdate?: Date;
  /**
   * The cRLNumber (RFC 5280 §5.2.3, must increase with every CRL the CA issues).
   * Default: `thisUpdate` in whole seconds since the Unix epoch, which increases as long as
   * CRLs are not issued twice within one second.
   */
  crlNumber?: bigint;
}

/** A revoked certificate given to {@link createCrl}. */
export interface RevokedEntry {
  /** Serial number as hex, any case, colons allowed (the form {@link certificateSerial} returns). */
  serialNumber: string;
  /** Default: the CRL's `thisUpdate`. */
  revocationDate?: Date;
  /**
   * reasonCode entry extension (RFC 5280 §5.3.1). Default: none. Without one the entry
   * carries an empty crlEntryExtensions SEQUENCE (an @peculiar/x509 2.2 quirk; OpenSSL and
   * Node accept it).
   */
  reason?: CrlReason;
}

/** CRL reason codes of RFC 5280 §5.3.1 (`unspecified` is left out: it SHOULD be absent). */
export type CrlReason =
  | 'keyCompromise'
  | 'cACompromise'
  | 'affiliationChanged'
  | 'superseded'
  | 'cessationOfOperation'
  | 'certificateHold'
  | 'privilegeWithdrawn'
  | 'aACompromise';

const DAY_MS = 86_400_000;
const CLOCK_SKEW_MS = 5 * 60_000;
const CRL_DEFAULT_MS = 30 * DAY_MS;

const ECDSA_P256: EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const RSA_2048: RsaHashedKeyGenParams = {
  name: 'RSASSA-PKCS1-v1_5',
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: 'SHA-256',
};

function keyGenParams(algorithm: KeyAlgorithm): EcKeyGenParams | RsaHashedKeyGenParams {
  switch (algorithm) {
    case 'ecdsa-p256':
      return ECDSA_P256;
    case 'rsa-2048':
      return RSA_2048;
    default:
      throw new CFG_ERR_PKI(`Unsupported key algorithm '${String(algorithm)}' (use ecdsa-p256 or rsa-2048)`);
  }
}

/** The signature algorithm a key of this kind signs with: ECDSA with SHA-256 or RSASSA-PKCS1-v1_5 with SHA-256. */
function signingAlgorithm(algorithm: KeyAlgorithm): Algorithm | EcdsaParams {
  return algorithm === 'ecdsa-p256' ? { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams : { name: 'RSASSA-PKCS1-v1_5' };
}

async function generateKeyPair(algorithm: KeyAlgorithm): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(keyGenParams(algorithm), true, ['sign', 'verify'])) as CryptoKeyPair;
}

function exportPrivateKeyPem(key: CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** A CA loaded from its bundle: parsed certificate, signing key and its algorithm. */
interface LoadedCa {
  cert: x509.X509Certificate;
  signingKey: CryptoKey;
  algorithm: KeyAlgorithm;
}

/**
 * Loads a CA bundle and checks that it can sign: the key is P-256 or RSA (any size; it is
 * reported as `rsa-2048`, the default for the certificates it issues), matches the
 * certificate's public key, and the certificate says CA:true (RFC 5280 §4.2.1.9).
 * @throws CFG_ERR_PKI when any of that is not so (message names the problem, never key material).
 */
async function loadCa(ca: CertificateBundle): Promise<LoadedCa> {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(ca.certPem);
  } catch {
    throw new CFG_ERR_PKI('CA certificate is not a PEM X.509 certificate');
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(ca.keyPem);
  } catch {
    throw new CFG_ERR_PKI('CA private key cannot be read (expected an unencrypted PEM private key)');
  }
  let algorithm: KeyAlgorithm;
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') algorithm = 'ecdsa-p256';
  else if (key.asymmetricKeyType === 'rsa') algorithm = 'rsa-2048';
  else throw new CFG_ERR_PKI(`CA key type '${key.asymmetricKeyType ?? 'unknown'}' is not supported (use ECDSA P-256 or RSA)`);

  const keySpki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const certSpki = Buffer.from(cert.publicKey.rawData);
  if (!keySpki.equals(certSpki)) throw new CFG_ERR_PKI('CA private key does not belong to the CA certificate');

  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) throw new CFG_ERR_PKI('CA certificate is not a CA (basicConstraints CA:true missing)');

  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  const importParams = algorithm === 'ecdsa-p256' ? ECDSA_P256 : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  const signingKey = (await webcrypto.subtle.importKey('pkcs8', pkcs8, importParams, false, ['sign'])) as CryptoKey;
  return { cert, signingKey, algorithm };
}

/**
 * A random positive serial number of 16 octets (RFC 5280 §4.1.2.2: positive, at most 20
 * octets; CA/B Forum: at least 64 random bits). The top bit is cleared so the DER INTEGER
 * needs no leading zero, the next bit is set so it has exactly 16 octets.
 */
function randomSerialHex(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString('hex');
}

function validateDays(days: number, what: string): number {
  if (!Number.isFinite(days) || days <= 0) throw new CFG_ERR_PKI(`${what} must be a positive number of days`);
  return days;
}

function nameOf(commonName: string): x509.Name {
  if (commonName.length === 0 || commonName.length > 64) {
    throw new CFG_ERR_PKI('commonName must be 1 to 64 characters (RFC 5280 ub-common-name)');
  }
  // The object form stores the value verbatim as a UTF8String (RFC 5280 §4.1.2.6); the
  // string forms would run it through RFC 4514 unescaping and quote stripping.
  return new x509.Name([{ CN: [{ utf8String: commonName }] }]);
}

// eslint-disable-next-line no-control-regex
const IA5 = /^[\x00-\x7f]+$/;

function sanNames(opts: IssueCertificateOptions): x509.JsonGeneralNames {
  const names: x509.JsonGeneralNames = [];
  for (const dns of opts.dnsNames ?? []) {
    if (!IA5.test(dns)) throw new CFG_ERR_PKI(`DNS name '${dns}' is not ASCII (use its A-label form)`);
    names.push({ type: 'dns', value: dns });
  }
  for (const ip of opts.ipAddresses ?? []) {
    if (isIP(ip) === 0) throw new CFG_ERR_PKI(`'${ip}' is not an IPv4 or IPv6 address`);
    names.push({ type: 'ip', value: ip });
  }
  for (const uri of opts.uris ?? []) {
    if (!IA5.test(uri)) throw new CFG_ERR_PKI(`URI '${uri}' is not ASCII (percent-encode it)`);
    names.push({ type: 'url', value: uri });
  }
  return names;
}

/**
 * Creates a self-signed certificate authority.
 *
 * Extensions (RFC 5280): basicConstraints CA:true, pathLenConstraint 0, critical (the CA
 * signs only end-entity certificates); keyUsage keyCertSign + cRLSign, critical;
 * subjectKeyIdentifier and authorityKeyIdentifier (both the SHA-1 of the public key,
 * §4.2.1.2 method 1). Serial: 16 random octets. notBefore: now minus 5 minutes.
 *
 * @param opts.commonName - subject CN, 1 to 64 characters.
 * @param opts.validityDays - days from now; default 3650.
 * @param opts.algorithm - default `'ecdsa-p256'`.
 * @returns the CA certificate PEM and its PKCS#8 private key PEM.
 * @throws CFG_ERR_PKI for an empty/overlong CN, a non-positive validity or an unknown algorithm.
 */
export async function createCa(opts: CreateCaOptions): Promise<CertificateBundle> {
  const algorithm = opts.algorithm ?? 'ecdsa-p256';
  const days = validateDays(opts.validityDays ?? 3650, 'validityDays');
  const name = nameOf(opts.commonName);
  const keys = await generateKeyPair(algorithm);
  const now = Date.now();
  const ski = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(),
    name,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + days * DAY_MS),
    keys,
    signingAlgorithm: signingAlgorithm(algorithm),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ski,
      new x509.AuthorityKeyIdentifierExtension(ski.keyId),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: exportPrivateKeyPem(keys.privateKey) };
}

/**
 * Issues an end-entity certificate signed by `ca`.
 *
 * Extensions (RFC 5280): basicConstraints CA:false, critical; keyUsage digitalSignature
 * (plus keyEncipherment for RSA keys), critical; extendedKeyUsage serverAuth or clientAuth;
 * subjectAltName with the given DNS names, IP addresses and URIs (omitted when there are
 * none, as §4.2.1.6 forbids an empty one); subjectKeyIdentifier; authorityKeyIdentifier =
 * the CA's subjectKeyIdentifier. The issuer name is copied byte for byte from the CA
 * certificate's subject. Serial: 16 random octets, positive.
 *
 * Validity: `notBefore` defaults to now minus 5 minutes, `notAfter` to now plus
 * `validityDays` (default 397). The validity is not clamped to the CA's; X.509 times have
 * whole seconds, so milliseconds are dropped.
 *
 * A URI SAN of the form `spiffe://<trust-domain>/<path>` makes the certificate an
 * X.509-SVID as far as this module is concerned; the caller chooses the path.
 *
 * @param ca - the issuing CA (e.g. from {@link createCa}); its key must match its certificate.
 * @returns the new certificate PEM and its PKCS#8 private key PEM.
 * @throws CFG_ERR_PKI when the CA bundle is unusable, a SAN is malformed (non-ASCII DNS
 *   name or URI, text that is not an IP address), `notAfter` is not after `notBefore`, or
 *   the algorithm is unknown.
 */
export async function issueCertificate(ca: CertificateBundle, opts: IssueCertificateOptions): Promise<CertificateBundle> {
  const issuer = await loadCa(ca);
  const algorithm = opts.algorithm ?? issuer.algorithm;
  const name = nameOf(opts.commonName);
  const names = sanNames(opts);
  const now = Date.now();
  const notBefore = opts.notBefore ?? new Date(now - CLOCK_SKEW_MS);
  const notAfter = opts.notAfter ?? new Date(now + validateDays(opts.validityDays ?? 397, 'validityDays') * DAY_MS);
  if (!(notAfter.getTime() > notBefore.getTime())) throw new CFG_ERR_PKI('notAfter must be later than notBefore');

  const keys = await generateKeyPair(algorithm);
  const caSki = issuer.cert.getExtension(x509.SubjectKeyIdentifierExtension);
  const aki = caSki
    ? new x509.AuthorityKeyIdentifierExtension(caSki.keyId)
    : await x509.AuthorityKeyIdentifierExtension.create(issuer.cert.publicKey);
  let usage = x509.KeyUsageFlags.digitalSignature;
  if (algorithm === 'rsa-2048') usage |= x509.KeyUsageFlags.keyEncipherment;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(usage, true),
    new x509.ExtendedKeyUsageExtension([opts.kind === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    aki,
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names));

  let cert: x509.X509Certificate;
  try {
    cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerialHex(),
      subject: name,
      issuer: issuer.cert.subjectName,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: issuer.signingKey,
      signingAlgorithm: signingAlgorithm(issuer.algorithm),
      extensions,
    });
  } catch (err) {
    throw new CFG_ERR_PKI(`Cannot issue certificate for '${opts.commonName}': ${(err as Error).message}`);
  }
  return { certPem: cert.toString('pem'), keyPem: exportPrivateKeyPem(keys.privateKey) };
}

/** DER of an INTEGER holding a non-negative bigint (minimal, with a leading 0x00 when the top bit is set). */
function derInteger(value: bigint): Uint8Array {
  if (value < 0n) throw new CFG_ERR_PKI('crlNumber must not be negative');
  let hex = value.toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  let body = Buffer.from(hex, 'hex');
  if ((body[0] ?? 0) & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  if (body.length > 20) throw new CFG_ERR_PKI('crlNumber must fit in 20 octets (RFC 5280 §5.2.3)');
  return Uint8Array.from([0x02, body.length, ...body]);
}

/**
 * Normalises a serial number: strips colons and whitespace, lower-cases, drops leading zero
 * octets, and checks it is hex.
 * @throws CFG_ERR_PKI when it is not hex.
 */
function normalizeSerial(serial: string): string {
  let hex = serial.replace(/[:\s]/g, '').toLowerCase();
  if (!/^[0-9a-f]+$/.test(hex)) throw new CFG_ERR_PKI(`Serial number '${serial}' is not hexadecimal`);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  while (hex.length > 2 && hex.startsWith('00')) hex = hex.slice(2);
  return hex;
}

/**
 * Creates a CRL (RFC 5280 §5, version 2) signed by `ca`, listing `revoked`.
 *
 * It carries the authorityKeyIdentifier (the CA's subjectKeyIdentifier, §5.2.1) and a
 * cRLNumber (§5.2.3). Node's `tls.createServer({ crl })` and `tls.connect({ crl })` accept
 * the PEM as is; OpenSSL then refuses revoked certificates with `CERT_REVOKED` and all
 * certificates once `nextUpdate` has passed (`CRL_HAS_EXPIRED`).
 *
 * @param ca - the CA that issued the revoked certificates.
 * @param revoked - serial numbers (hex, as {@link certificateSerial} returns; case and
 *   colons do not matter) and optional revocation dates (default: `thisUpdate`).
 * @param opts - `thisUpdate` (default now), `nextUpdate` (default `thisUpdate` + 30 days),
 *   `crlNumber` (default `thisUpdate` in Unix seconds).
 * @returns the CRL, PEM (`-----BEGIN X509 CRL-----`).
 * @throws CFG_ERR_PKI when the CA bundle is unusable, a serial is not hex or is listed twice,
 *   or `nextUpdate` is not after `thisUpdate`.
 */
export async function createCrl(ca: CertificateBundle, revoked: ReadonlyArray<RevokedEntry>, opts: CreateCrlOptions = {}): Promise<string> {
  const issuer = await loadCa(ca);
  const thisUpdate = opts.thisUpdate ?? new Date();
  const nextUpdate = opts.nextUpdate ?? new Date(thisUpdate.getTime() + CRL_DEFAULT_MS);
  if (!(nextUpdate.getTime() > thisUpdate.getTime())) throw new CFG_ERR_PKI('nextUpdate must be later than thisUpdate');
  const crlNumber = opts.crlNumber ?? BigInt(Math.floor(thisUpdate.getTime() / 1000));

  const seen = new Set<string>();
  const entries: x509.X509CrlEntryParams[] = revoked.map((entry) => {
    const serialNumber = normalizeSerial(entry.serialNumber);
    if (seen.has(serialNumber)) throw new CFG_ERR_PKI(`Serial number ${serialNumber} is listed twice`);
    seen.add(serialNumber);
    const params: x509.X509CrlEntryParams = { serialNumber, revocationDate: entry.revocationDate ?? thisUpdate };
    if (entry.reason !== undefined) {
      const code = x509.X509CrlReason[entry.reason];
      if (typeof code !== 'number') throw new CFG_ERR_PKI(`Unknown CRL reason '${String(entry.reason)}'`);
      params.reason = code;
    }
    return params;
  });

  const caSki = issuer.cert.getExtension(x509.SubjectKeyIdentifierExtension);
  const aki = caSki
    ? new x509.AuthorityKeyIdentifierExtension(caSki.keyId)
    : await x509.AuthorityKeyIdentifierExtension.create(issuer.cert.publicKey);
  const crl = await x509.X509CrlGenerator.create({
    issuer: issuer.cert.subjectName,
    thisUpdate,
    nextUpdate,
    entries,
    extensions: [aki, new x509.Extension('2.5.29.20', false, derInteger(crlNumber))],
    signingKey: issuer.signingKey,
    signingAlgorithm: signingAlgorithm(issuer.algorithm),
  });
  // @peculiar/x509 labels CRL PEM `-----BEGIN CRL-----`; OpenSSL (and so Node) reads only
  // `-----BEGIN X509 CRL-----` (RFC 7468 §5).
  return x509.PemConverter.encode(crl.rawData, 'X509 CRL');
}

/**
 * The serial number of a certificate: lower-case hex of the positive integer without
 * leading zero octets, no colons (the same digits as Node's
 * `crypto.X509Certificate#serialNumber`, lower-cased). This is the form the audit log and
 * {@link createCrl} use.
 *
 * @param certPem - one PEM certificate (the first one is used when there are several).
 * @throws CFG_ERR_PKI when the text is not a PEM certificate.
 */
export function certificateSerial(certPem: string): string {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(certPem);
  } catch {
    throw new CFG_ERR_PKI('Not a PEM X.509 certificate');
  }
  return normalizeSerial(cert.serialNumber);
}

/**
 * Lower-case hex serial of a parsed certificate, as {@link certificateSerial}.
 * @internal shared with the identity module.
 */
export function serialOf(cert: x509.X509Certificate): string {
  return normalizeSerial(cert.serialNumber);
}
