/**
 * Re-verification of a client certificate chain (src/http/peer-trust.ts) against OpenSSL's
 * own verdict: for each case the same CA bundle and CRLs are loaded as the service loads
 * them (`loadTlsMaterial`) and given to a real `tls.Server`, the client presents the same
 * chain in a real handshake, and `verifyPeerChain` must agree with OpenSSL's verdict
 * (`authorizationError`), chains through an intermediate CA included: the same cases
 * verify, and a refused chain is named by the first rule it breaks (OpenSSL names the last
 * one it checked; both are pinned per case).
 */
import { createPrivateKey, KeyObject, randomBytes, X509Certificate, webcrypto } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { verifyPeerChain } from '../../src/http/peer-trust.js';
import { loadTlsMaterial, secureContextOptions } from '../../src/http/tls.js';
import { certificateSerial, createCa, createCrl, issueCertificate, type CertificateBundle } from '../../src/pki/pki.js';
import { x509 } from '../../src/pki/x509.js';
import { handshake } from '../pki/tls-helpers.js';

const ECDSA = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const DAY = 86_400_000;

/**
 * A CA certificate (CA:true, keyCertSign, no path length limit unless given): self-signed
 * without `issuer`, else an intermediate signed by `issuer`.
 */
async function makeCa(commonName: string, issuer?: CertificateBundle, pathLength?: number): Promise<CertificateBundle> {
  const keys = (await webcrypto.subtle.generateKey(ECDSA, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const signingKey = issuer ? await importPem(issuer.keyPem) : keys.privateKey;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(8).toString('hex').replace(/^[89a-f]/, '1'),
    subject: `CN=${commonName}`,
    issuer: issuer ? new x509.X509Certificate(issuer.certPem).subject : `CN=${commonName}`,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 30 * DAY),
    signingKey,
    publicKey: keys.publicKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [
      new x509.BasicConstraintsExtension(true, pathLength, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString() };
}

async function importPem(pem: string): Promise<webcrypto.CryptoKey> {
  const pkcs8 = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  return (await webcrypto.subtle.importKey('pkcs8', pkcs8, ECDSA, true, ['sign'])) as webcrypto.CryptoKey;
}

const der = (pem: string): Uint8Array => new Uint8Array(new X509Certificate(pem).raw);

let root: CertificateBundle;
let inter: CertificateBundle;
let other: CertificateBundle;
let limited: CertificateBundle;
let underLimited: CertificateBundle;
let server: CertificateBundle;
let viaInter: CertificateBundle;
let viaLimited: CertificateBundle;
let direct: CertificateBundle;
let expired: CertificateBundle;
let selfSigned: CertificateBundle;
let foreign: CertificateBundle;
let serverOnly: CertificateBundle;

beforeAll(async () => {
  root = await makeCa('Root R');
  inter = await makeCa('Intermediate I', root);
  other = await createCa({ commonName: 'Other O' });
  // The development PKI's CA has pathLen 0: no intermediate may sit below it.
  limited = await createCa({ commonName: 'Limited L' });
  underLimited = await makeCa('Under L', limited);
  server = await issueCertificate(root, { kind: 'server', commonName: 'localhost', ipAddresses: ['127.0.0.1'] });
  viaInter = await issueCertificate(inter, { kind: 'client', commonName: 'via-inter' });
  viaLimited = await issueCertificate(underLimited, { kind: 'client', commonName: 'via-limited' });
  direct = await issueCertificate(root, { kind: 'client', commonName: 'direct' });
  expired = await issueCertificate(root, { kind: 'client', commonName: 'old', notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) });
  selfSigned = await createCa({ commonName: 'self' });
  foreign = await issueCertificate(other, { kind: 'client', commonName: 'foreign' });
  serverOnly = await issueCertificate(root, { kind: 'server', commonName: 'not-a-client' });
});

interface Case {
  name: string;
  bundle: () => CertificateBundle[];
  /** CRL files (PEM); none: CRL checking is off. */
  crls?: () => Promise<string[]>;
  leaf: () => CertificateBundle;
  /** What the client sends after its leaf. */
  extra?: () => CertificateBundle[];
  /** `authorizationError` of the real handshake (undefined: authorized). */
  openssl: string | undefined;
  /** What verifyPeerChain names: the FIRST rule broken, where OpenSSL reports its last error. */
  expected: string | undefined;
}

const crlOf = (ca: () => CertificateBundle, revoked: () => CertificateBundle[] = () => []) => async () => [
  await createCrl(ca(), revoked().map((r) => ({ serialNumber: certificateSerial(r.certPem) }))),
];
const same = (code: string | undefined) => ({ openssl: code, expected: code });

const CASES: Case[] = [
  { name: 'leaf of the root', bundle: () => [root], leaf: () => direct, ...same(undefined) },
  { name: 'leaf via an intermediate it presents, root in the bundle', bundle: () => [root], leaf: () => viaInter, extra: () => [inter], ...same(undefined) },
  { name: 'leaf via an intermediate the bundle holds', bundle: () => [root, inter], leaf: () => viaInter, ...same(undefined) },
  { name: 'leaf via an intermediate nobody has', bundle: () => [root], leaf: () => viaInter, openssl: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', expected: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' },
  { name: 'bundle with the intermediate only (no partial chains)', bundle: () => [inter], leaf: () => viaInter, ...same('UNABLE_TO_GET_ISSUER_CERT') },
  { name: 'whole chain presented, root not in the bundle', bundle: () => [other], leaf: () => viaInter, extra: () => [inter, root], ...same('SELF_SIGNED_CERT_IN_CHAIN') },
  { name: 'intermediate below a CA with pathLen 0', bundle: () => [limited], leaf: () => viaLimited, extra: () => [underLimited], ...same('PATH_LENGTH_EXCEEDED') },
  { name: 'leaf of another CA', bundle: () => [root], leaf: () => foreign, openssl: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', expected: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' },
  { name: 'leaf of another CA that sends its root', bundle: () => [root], leaf: () => foreign, extra: () => [other], ...same('SELF_SIGNED_CERT_IN_CHAIN') },
  { name: 'self-signed CA certificate as a leaf', bundle: () => [root], leaf: () => selfSigned, openssl: 'INVALID_PURPOSE', expected: 'DEPTH_ZERO_SELF_SIGNED_CERT' },
  { name: 'server certificate as a client certificate', bundle: () => [root], leaf: () => serverOnly, ...same('INVALID_PURPOSE') },
  { name: 'expired leaf', bundle: () => [root], leaf: () => expired, ...same('CERT_HAS_EXPIRED') },
  { name: 'CRL of the root, leaf not revoked', bundle: () => [root], crls: crlOf(() => root), leaf: () => direct, ...same(undefined) },
  { name: 'CRL of the root revokes the leaf', bundle: () => [root], crls: crlOf(() => root, () => [direct]), leaf: () => direct, ...same('CERT_REVOKED') },
  {
    name: 'CRL of the intermediate revokes the leaf',
    bundle: () => [root, inter],
    crls: async () => [...(await crlOf(() => root)()), ...(await crlOf(() => inter, () => [viaInter])())],
    leaf: () => viaInter,
    ...same('CERT_REVOKED'),
  },
  { name: 'CRLs configured, none for the leaf issuer', bundle: () => [root, inter], crls: crlOf(() => root), leaf: () => viaInter, ...same('UNABLE_TO_GET_CRL') },
  {
    name: 'CRL past its nextUpdate',
    bundle: () => [root],
    crls: async () => [await createCrl(root, [], { thisUpdate: new Date(Date.now() - 3 * DAY), nextUpdate: new Date(Date.now() - DAY) })],
    leaf: () => direct,
    ...same('CRL_HAS_EXPIRED'),
  },
  { name: 'CRLs configured, leaf of another CA', bundle: () => [root], crls: crlOf(() => root), leaf: () => foreign, openssl: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', expected: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' },
  { name: 'CRLs configured, self-signed leaf', bundle: () => [root], crls: crlOf(() => root), leaf: () => selfSigned, openssl: 'UNABLE_TO_GET_CRL', expected: 'DEPTH_ZERO_SELF_SIGNED_CERT' },
  {
    name: 'CRLs configured, expired leaf that is also revoked',
    bundle: () => [root],
    crls: crlOf(() => root, () => [expired]),
    leaf: () => expired,
    openssl: 'CERT_HAS_EXPIRED',
    expected: 'CERT_REVOKED',
  },
];

describe('verifyPeerChain agrees with OpenSSL', () => {
  for (const c of CASES) {
    it(`${c.name}: ${c.expected ?? 'verifies'}`, async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'peer-trust-'));
      const write = (name: string, text: string): string => {
        const p = path.join(dir, name);
        writeFileSync(p, text);
        return p;
      };
      const crls = c.crls ? await c.crls() : [];
      const material = await loadTlsMaterial(
        {
          cert: write('server.crt', server.certPem),
          key: write('server.key', server.keyPem),
          clientCa: write('ca.crt', c.bundle().map((b) => `${b.certPem}\n`).join('')),
          crl: crls.map((pem, i) => write(`crl-${i}.pem`, pem)),
        },
        new Date(),
      );
      const leaf = c.leaf();
      const extra = c.extra?.() ?? [];
      const openssl = await handshake(
        { ...secureContextOptions(material), requestCert: true, rejectUnauthorized: false },
        { cert: [leaf.certPem, ...extra.map((e) => e.certPem)].join('\n'), key: leaf.keyPem, rejectUnauthorized: false },
      );
      expect(openssl.accepted).toBe(true);
      expect(openssl.authorizationError ?? undefined).toBe(c.openssl);
      const mine = verifyPeerChain([der(leaf.certPem), ...extra.map((e) => der(e.certPem))], {
        caCertificates: material.caCertificates,
        revoked: material.revoked,
        crlCheck: material.crl.length > 0,
      });
      expect(mine).toBe(c.expected);
    });
  }

  it('bytes that are not a certificate are untrusted', () => {
    expect(verifyPeerChain([new Uint8Array([1, 2, 3])], { caCertificates: [], revoked: undefined as never, crlCheck: false })).toBe('CERT_UNTRUSTED');
  });
});
