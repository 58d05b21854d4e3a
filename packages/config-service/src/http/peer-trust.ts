/**
 * The client trust of the TLS listener as data (the CA bundle's certificates and the
 * CRLs), and the re-verification of a client certificate chain against it, for
 * connections that were verified under an older bundle or CRL set (docs/security.md,
 * "Trust changes and open connections").
 *
 * {@link verifyPeerChain} follows OpenSSL's client-certificate verification as Node runs
 * it (RFC 5280 §6.1 path validation, without policy processing): build a path from the
 * leaf through the intermediates the peer presented or the bundle holds to a self-signed
 * certificate OF THE BUNDLE (Node does not accept partial chains), each issuer a CA whose
 * key verifies the signature; then, when CRLs are configured, the leaf's revocation
 * (OpenSSL's `X509_V_FLAG_CRL_CHECK`: the leaf only, its issuer must have a CRL that has
 * not passed its `nextUpdate`); then the validity period of every certificate of the path.
 * Errors are named as OpenSSL names them (`X509_V_ERR_*` without the prefix), so a
 * refusal on an open connection reads like one at the handshake.
 */
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { serialOf } from '../pki/pki.js';
import { x509 } from '../pki/x509.js';

/**
 * Revoked certificates of the loaded CRLs, by issuer DN (as `@peculiar/x509` prints it,
 * the form the identity module uses) and lower-case hex serial; and which issuers have a
 * CRL at all, with its `nextUpdate`.
 */
export class RevocationList {
  readonly #byIssuer = new Map<string, Set<string>>();
  readonly #crls = new Map<string, Date | undefined>();
  #size = 0;

  /** Records that `issuer` has a CRL, valid until `nextUpdate` (absent: no end). The earliest end wins. */
  addCrl(issuer: string, nextUpdate: Date | undefined): void {
    const known = this.#crls.get(issuer);
    if (!this.#crls.has(issuer) || (nextUpdate && (!known || nextUpdate < known))) this.#crls.set(issuer, nextUpdate);
  }

  /** Adds one revoked serial of `issuer`. */
  add(issuer: string, serial: string): void {
    let set = this.#byIssuer.get(issuer);
    if (!set) {
      set = new Set();
      this.#byIssuer.set(issuer, set);
    }
    if (!set.has(serial)) {
      set.add(serial);
      this.#size += 1;
    }
  }

  /** True when the certificate `serial` (lower-case hex, no leading zero octets) of `issuer` is revoked. */
  has(issuer: string, serial: string): boolean {
    return this.#byIssuer.get(issuer)?.has(serial) ?? false;
  }

  /** The CRL of `issuer`: `{ nextUpdate }` when one is loaded, undefined when none. */
  crlOf(issuer: string): { nextUpdate: Date | undefined } | undefined {
    return this.#crls.has(issuer) ? { nextUpdate: this.#crls.get(issuer) } : undefined;
  }

  /** Number of revoked certificates listed. */
  get size(): number {
    return this.#size;
  }
}

/** What a client certificate must verify against. */
export interface ClientTrust {
  /** The certificates of the client CA bundle (`server.tls.clientCa`). */
  caCertificates: readonly X509Certificate[];
  /** The loaded CRLs. */
  revoked: RevocationList;
  /** True when CRLs are configured (`server.tls.crl` not empty): the leaf's revocation is then checked. */
  crlCheck: boolean;
}

/** Longest path accepted (leaf included), as OpenSSL's default verify depth bounds it. */
const MAX_PATH = 10;

function issuedBy(subject: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return subject.checkIssued(issuer) && subject.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

function selfSigned(c: X509Certificate): boolean {
  return issuedBy(c, c);
}

/**
 * The chain of a TLS peer, leaf first, as DER, for a later re-verification: the leaf and
 * the certificates Node links above it (`getPeerCertificate(true)`: what the peer
 * presented, completed from the listener's trust store). An intermediate that is in
 * `bundle` (the trust store when the chain is taken) is left out: Node may have added it,
 * and it counts only while the bundle holds it. Self-signed certificates are kept: one
 * that is not in the bundle any more names the failure as OpenSSL does
 * (`SELF_SIGNED_CERT_IN_CHAIN`), and it is never a trust anchor unless the bundle holds it.
 * @returns an empty list when the peer presented no certificate.
 */
export function presentedChain(socket: TLSSocket, bundle: readonly X509Certificate[] = []): Uint8Array[] {
  const leaf = socket.getPeerCertificate(true);
  if (!leaf?.raw) return [];
  const inBundle = new Set(bundle.map((c) => c.fingerprint256));
  const out: Uint8Array[] = [leaf.raw];
  const seen = new Set<string>([leaf.fingerprint256]);
  let cur = leaf.issuerCertificate;
  while (cur?.raw && !seen.has(cur.fingerprint256) && out.length < MAX_PATH) {
    seen.add(cur.fingerprint256);
    try {
      const c = new X509Certificate(cur.raw);
      if (selfSigned(c) || !inBundle.has(c.fingerprint256)) out.push(cur.raw);
    } catch {
      // not a certificate Node could give back as DER: ignore it
    }
    cur = cur.issuerCertificate;
  }
  return out;
}

/** The extensions path validation reads, from one certificate. */
function extensionsOf(c: X509Certificate): { ca: boolean | undefined; pathLength: number | undefined; keyUsage: number | undefined; eku: string[] | undefined } {
  try {
    const p = new x509.X509Certificate(Uint8Array.from(c.raw));
    const bc = p.getExtension(x509.BasicConstraintsExtension);
    const ku = p.getExtension(x509.KeyUsagesExtension);
    const eku = p.getExtension(x509.ExtendedKeyUsageExtension);
    return { ca: bc?.ca, pathLength: bc?.pathLength, keyUsage: ku?.usages, eku: eku?.usages.map(String) };
  } catch {
    return { ca: undefined, pathLength: undefined, keyUsage: undefined, eku: undefined };
  }
}

/**
 * Verifies a client certificate chain against `trust` at `now`.
 *
 * The checks run in OpenSSL's order and the FIRST rule broken is named (the root cause;
 * Node's `authorizationError` holds OpenSSL's last error instead, e.g. `UNABLE_TO_GET_CRL`
 * for a certificate of an unknown CA when CRLs are configured): building the path
 * (`DEPTH_ZERO_SELF_SIGNED_CERT`, `SELF_SIGNED_CERT_IN_CHAIN`,
 * `UNABLE_TO_GET_ISSUER_CERT_LOCALLY`, `UNABLE_TO_GET_ISSUER_CERT` for a bundle
 * certificate that is not self-signed and whose issuer is missing (no partial chains),
 * `CERT_CHAIN_TOO_LONG`), then each certificate's role (`INVALID_CA`; `INVALID_PURPOSE`: a
 * leaf whose key usage or extended key usage excludes TLS client authentication, or a CA
 * whose extended key usage does; `PATH_LENGTH_EXCEEDED`), then the leaf's revocation when
 * CRLs are configured (`UNABLE_TO_GET_CRL`, `CRL_HAS_EXPIRED`, `CERT_REVOKED`), then the
 * validity of the path from its top down to the leaf (`CERT_NOT_YET_VALID`,
 * `CERT_HAS_EXPIRED`). Name constraints, policies and critical extensions are not
 * checked here (OpenSSL checks them at the handshake).
 *
 * @param chain DER certificates, leaf first, then intermediates the peer presented (any order).
 * @returns undefined when the chain verifies, else the error name (X509_V_ERR_* without
 *   the prefix); `CERT_UNTRUSTED` for bytes that are not a certificate.
 */
export function verifyPeerChain(chain: readonly Uint8Array[], trust: ClientTrust, now: Date = new Date()): string | undefined {
  let certs: X509Certificate[];
  try {
    certs = chain.map((der) => new X509Certificate(Buffer.from(der)));
  } catch {
    return 'CERT_UNTRUSTED';
  }
  const leaf = certs[0];
  if (!leaf) return 'CERT_UNTRUSTED';
  const bundle = trust.caCertificates;
  const anchors = new Set(bundle.map((c) => c.fingerprint256));
  // Issuers: the bundle first (trust anchors), then what the peer presented.
  const candidates = [...bundle, ...certs.slice(1)];
  const chainErrors: string[] = [];

  // 1. The path, from the leaf up to a self-signed certificate of the bundle.
  const path: X509Certificate[] = [leaf];
  for (let cur = leaf; ; ) {
    if (selfSigned(cur)) {
      if (!anchors.has(cur.fingerprint256)) chainErrors.push(path.length === 1 ? 'DEPTH_ZERO_SELF_SIGNED_CERT' : 'SELF_SIGNED_CERT_IN_CHAIN');
      break;
    }
    if (path.length >= MAX_PATH) {
      chainErrors.push('CERT_CHAIN_TOO_LONG');
      break;
    }
    const issuer = candidates.find((c) => !path.some((p) => p.fingerprint256 === c.fingerprint256) && issuedBy(cur, c));
    if (!issuer) {
      // As OpenSSL: the issuer of a bundle certificate (no partial chains), or of a presented one.
      chainErrors.push(anchors.has(cur.fingerprint256) ? 'UNABLE_TO_GET_ISSUER_CERT' : 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
      break;
    }
    path.push(issuer);
    cur = issuer;
  }

  // 2. Each certificate's role: CA flag, purpose (TLS client), path length.
  let below = 0;
  path.forEach((c, i) => {
    const ext = extensionsOf(c);
    const anchor = anchors.has(c.fingerprint256) && selfSigned(c);
    if (i > 0) {
      const isCa = ext.ca === true && (ext.keyUsage === undefined || (ext.keyUsage & x509.KeyUsageFlags.keyCertSign) !== 0);
      // A self-signed anchor without extensions (a v1 root) is a CA for OpenSSL too.
      if (!isCa && !(anchor && ext.ca === undefined)) chainErrors.push('INVALID_CA');
    }
    if (!anchor) {
      // anyExtendedKeyUsage does not count (OpenSSL's xku_reject).
      const ekuRejects = ext.eku !== undefined && !ext.eku.includes(x509.ExtendedKeyUsage.clientAuth);
      const kuRejects =
        i === 0 && ext.keyUsage !== undefined && (ext.keyUsage & (x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement)) === 0;
      if (ekuRejects || kuRejects) chainErrors.push('INVALID_PURPOSE');
    }
    if (i > 1 && ext.pathLength !== undefined && below > ext.pathLength) chainErrors.push('PATH_LENGTH_EXCEEDED');
    if (i > 0 && !c.checkIssued(c)) below += 1;
  });

  // 3. Revocation of the leaf (X509_V_FLAG_CRL_CHECK).
  let crlError: string | undefined;
  if (trust.crlCheck) {
    try {
      const parsed = new x509.X509Certificate(Uint8Array.from(leaf.raw));
      const crl = trust.revoked.crlOf(parsed.issuer);
      if (!crl) crlError = 'UNABLE_TO_GET_CRL';
      else if (crl.nextUpdate && crl.nextUpdate < now) crlError = 'CRL_HAS_EXPIRED';
      else if (trust.revoked.has(parsed.issuer, serialOf(parsed))) crlError = 'CERT_REVOKED';
    } catch {
      crlError = 'UNABLE_TO_GET_CRL';
    }
  }

  // 4. Validity, from the top of the path down to the leaf.
  const lateErrors: string[] = [];
  for (const c of [...path].reverse()) {
    if (now < new Date(c.validFrom)) lateErrors.push('CERT_NOT_YET_VALID');
    else if (now > new Date(c.validTo)) lateErrors.push('CERT_HAS_EXPIRED');
  }

  return chainErrors[0] ?? crlError ?? lateErrors[0];
}
