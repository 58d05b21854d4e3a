import { X509Certificate, createPrivateKey } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { x509 } from '../../src/pki/x509.js';
import {
  certificateSerial,
  createCa,
  createCrl,
  issueCertificate,
  type CertificateBundle,
  type KeyAlgorithm,
} from '../../src/pki/pki.js';
import { handshake } from './tls-helpers.js';

const DAY = 86_400_000;
const SKEW = 5 * 60_000;

describe.each<{ algorithm: KeyAlgorithm; keyType: string }>([
  { algorithm: 'ecdsa-p256', keyType: 'ec' },
  { algorithm: 'rsa-2048', keyType: 'rsa' },
])('$algorithm', ({ algorithm, keyType }) => {
  let ca: CertificateBundle;
  let server: CertificateBundle;
  let client: CertificateBundle;
  let other: CertificateBundle;
  let stranger: CertificateBundle;
  let expired: CertificateBundle;

  beforeAll(async () => {
    ca = await createCa({ commonName: 'Test CA', algorithm });
    server = await issueCertificate(ca, {
      kind: 'server',
      commonName: 'localhost',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1', '::1'],
    });
    client = await issueCertificate(ca, {
      kind: 'client',
      commonName: 'orders',
      uris: ['spiffe://example.org/ns/default/sa/orders'],
      dnsNames: ['orders.default.svc'],
    });
    other = await createCa({ commonName: 'Other CA', algorithm });
    stranger = await issueCertificate(other, { kind: 'client', commonName: 'orders' });
    expired = await issueCertificate(ca, {
      kind: 'client',
      commonName: 'orders',
      notBefore: new Date(Date.now() - 10 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
  });

  const serverTls = (extra: object = {}) => ({
    key: server.keyPem,
    cert: server.certPem,
    ca: ca.certPem,
    requestCert: true,
    rejectUnauthorized: true,
    ...extra,
  });
  const clientTls = (bundle: CertificateBundle | null, extra: object = {}) => ({
    ca: ca.certPem,
    servername: 'localhost',
    ...(bundle ? { key: bundle.keyPem, cert: bundle.certPem } : {}),
    ...extra,
  });

  it('makes a CA: CA:true critical with pathlen 0, keyCertSign+cRLSign critical, SKI = AKI, 3650 days', () => {
    const cert = new x509.X509Certificate(ca.certPem);
    const node = new X509Certificate(ca.certPem);
    expect(node.ca).toBe(true);
    expect(node.subject).toBe('CN=Test CA');
    expect(node.issuer).toBe('CN=Test CA');
    expect(node.checkIssued(node)).toBe(true);
    expect(node.verify(node.publicKey)).toBe(true);
    const bc = cert.getExtension(x509.BasicConstraintsExtension);
    expect([bc?.critical, bc?.ca, bc?.pathLength]).toEqual([true, true, 0]);
    const ku = cert.getExtension(x509.KeyUsagesExtension);
    expect([ku?.critical, ku?.usages]).toEqual([true, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign]);
    const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
    const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension);
    expect(ski?.keyId).toMatch(/^[0-9a-f]{40}$/);
    expect(aki?.keyId).toBe(ski?.keyId);
    expect(cert.notAfter.getTime() - cert.notBefore.getTime()).toBe(3650 * DAY + SKEW);
    expect(ca.keyPem.startsWith('-----BEGIN PRIVATE KEY-----\n')).toBe(true);
    expect(createPrivateKey(ca.keyPem).asymmetricKeyType).toBe(keyType);
  });

  it('makes a server certificate: serverAuth, SANs for localhost, 127.0.0.1 and ::1, AKI = CA SKI, 397 days', () => {
    const node = new X509Certificate(server.certPem);
    const caNode = new X509Certificate(ca.certPem);
    expect(node.ca).toBe(false);
    expect(node.subject).toBe('CN=localhost');
    expect(node.issuer).toBe('CN=Test CA');
    expect(node.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(node.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(node.checkHost('localhost')).toBe('localhost');
    expect(node.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(node.checkIP('::1')).toBe('::1');
    expect(node.checkIssued(caNode)).toBe(true);
    expect(node.verify(caNode.publicKey)).toBe(true);
    const cert = new x509.X509Certificate(server.certPem);
    const bc = cert.getExtension(x509.BasicConstraintsExtension);
    expect([bc?.critical, bc?.ca]).toEqual([true, false]);
    const ku = cert.getExtension(x509.KeyUsagesExtension);
    const expectedUsage =
      algorithm === 'rsa-2048'
        ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
        : x509.KeyUsageFlags.digitalSignature;
    expect([ku?.critical, ku?.usages]).toEqual([true, expectedUsage]);
    const caSki = new x509.X509Certificate(ca.certPem).getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
    expect(cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(caSki);
    expect(cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).toMatch(/^[0-9a-f]{40}$/);
    expect(cert.notAfter.getTime() - cert.notBefore.getTime()).toBe(397 * DAY + SKEW);
    expect(createPrivateKey(server.keyPem).asymmetricKeyType).toBe(keyType);
  });

  it('makes a client certificate: clientAuth, SPIFFE URI SAN and DNS SAN', () => {
    const node = new X509Certificate(client.certPem);
    expect(node.subject).toBe('CN=orders');
    expect(node.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(node.subjectAltName).toBe('DNS:orders.default.svc, URI:spiffe://example.org/ns/default/sa/orders');
  });

  it('gives random positive 16-octet serial numbers, reported like Node in lower case', () => {
    const serials = [ca, server, client, expired].map((b) => certificateSerial(b.certPem));
    for (const [i, b] of [ca, server, client, expired].entries()) {
      expect(serials[i]).toBe(new X509Certificate(b.certPem).serialNumber.toLowerCase());
      expect(serials[i]).toMatch(/^[4-7][0-9a-f]{31}$/);
    }
    expect(new Set(serials).size).toBe(4);
  });

  it('completes mutual TLS with the issued client certificate', async () => {
    const r = await handshake(serverTls(), clientTls(client));
    expect(r).toMatchObject({ accepted: true, serverAuthorized: true, authorizationError: null, clientError: null });
    expect(r.peerDer?.equals(new X509Certificate(client.certPem).raw)).toBe(true);
  });

  it('is verified by the client through the IP SANs 127.0.0.1 and ::1 (no servername)', async () => {
    const v4 = await handshake(serverTls(), clientTls(client, { servername: undefined }), '127.0.0.1');
    expect(v4).toMatchObject({ accepted: true, serverAuthorized: true });
    const v6 = await handshake(serverTls(), clientTls(client, { servername: undefined }), '::1');
    expect(v6).toMatchObject({ accepted: true, serverAuthorized: true });
  });

  it('rejects a client certificate from another CA', async () => {
    const strict = await handshake(serverTls(), clientTls(stranger));
    expect(strict).toMatchObject({ accepted: false, serverAuthorized: null });
    const lenient = await handshake(serverTls({ rejectUnauthorized: false }), clientTls(stranger));
    expect(lenient).toMatchObject({ serverAuthorized: false, authorizationError: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  });

  it('rejects an expired client certificate', async () => {
    const strict = await handshake(serverTls(), clientTls(expired));
    expect(strict).toMatchObject({ accepted: false, serverAuthorized: null });
    const lenient = await handshake(serverTls({ rejectUnauthorized: false }), clientTls(expired));
    expect(lenient).toMatchObject({ serverAuthorized: false, authorizationError: 'CERT_HAS_EXPIRED' });
  });

  it('rejects a client without a certificate', async () => {
    const strict = await handshake(serverTls(), clientTls(null));
    expect(strict).toMatchObject({ accepted: false, serverAuthorized: null, clientError: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' });
  });

  it('rejects a revoked certificate through a CRL and still accepts the others', async () => {
    const extra = await issueCertificate(ca, { kind: 'client', commonName: 'billing' });
    const crl = await createCrl(ca, [{ serialNumber: certificateSerial(client.certPem) }]);
    expect(crl.startsWith('-----BEGIN X509 CRL-----\n')).toBe(true);
    const strict = await handshake(serverTls({ crl }), clientTls(client));
    expect(strict).toMatchObject({ accepted: false, serverAuthorized: null });
    const lenient = await handshake(serverTls({ crl, rejectUnauthorized: false }), clientTls(client));
    expect(lenient).toMatchObject({ serverAuthorized: false, authorizationError: 'CERT_REVOKED' });
    const ok = await handshake(serverTls({ crl }), clientTls(extra));
    expect(ok).toMatchObject({ accepted: true, serverAuthorized: true });
  });

  it('makes a CRL that verifies against the CA, with AKI, cRLNumber, dates and entries', async () => {
    const thisUpdate = new Date('2030-01-02T03:04:05Z');
    const nextUpdate = new Date('2030-01-09T03:04:05Z');
    const revokedAt = new Date('2030-01-01T00:00:00Z');
    const serial = certificateSerial(client.certPem);
    const pem = await createCrl(
      ca,
      [
        { serialNumber: serial.toUpperCase().replace(/(..)(?!$)/g, '$1:'), revocationDate: revokedAt, reason: 'keyCompromise' },
        { serialNumber: '0a' },
      ],
      { thisUpdate, nextUpdate, crlNumber: 42n },
    );
    const crl = new x509.X509Crl(pem);
    expect(await crl.verify({ publicKey: new x509.X509Certificate(ca.certPem) })).toBe(true);
    expect(crl.issuer).toBe('CN=Test CA');
    expect(crl.thisUpdate.toISOString()).toBe('2030-01-02T03:04:05.000Z');
    expect(crl.nextUpdate?.toISOString()).toBe('2030-01-09T03:04:05.000Z');
    expect(crl.entries.map((e) => [e.serialNumber, e.revocationDate.toISOString(), e.reason])).toEqual([
      [serial, '2030-01-01T00:00:00.000Z', x509.X509CrlReason.keyCompromise],
      ['0a', '2030-01-02T03:04:05.000Z', undefined],
    ]);
    const caSki = new x509.X509Certificate(ca.certPem).getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
    expect(crl.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(caSki);
    expect(Buffer.from(crl.getExtension('2.5.29.20')?.value ?? new ArrayBuffer(0)).toString('hex')).toBe('02012a');
  });

  it('makes OpenSSL refuse every certificate once the CRL is past its nextUpdate', async () => {
    const crl = await createCrl(ca, [], { thisUpdate: new Date(Date.now() - 2 * DAY), nextUpdate: new Date(Date.now() - DAY) });
    const lenient = await handshake(serverTls({ crl, rejectUnauthorized: false }), clientTls(client));
    expect(lenient).toMatchObject({ serverAuthorized: false, authorizationError: 'CRL_HAS_EXPIRED' });
  });
});

describe('issueCertificate', () => {
  let ecCa: CertificateBundle;
  let rsaCa: CertificateBundle;
  beforeAll(async () => {
    ecCa = await createCa({ commonName: 'EC CA' });
    rsaCa = await createCa({ commonName: 'RSA CA', algorithm: 'rsa-2048' });
  });

  it('defaults to ECDSA P-256 for a CA and to the CA algorithm for certificates', async () => {
    expect(createPrivateKey(ecCa.keyPem).asymmetricKeyDetails).toEqual({ namedCurve: 'prime256v1' });
    const leaf = await issueCertificate(rsaCa, { kind: 'client', commonName: 'a' });
    expect(createPrivateKey(leaf.keyPem).asymmetricKeyDetails).toEqual({ modulusLength: 2048, publicExponent: 65537n });
  });

  it('issues an ECDSA certificate from an RSA CA when asked, and it works in TLS', async () => {
    const server = await issueCertificate(rsaCa, { kind: 'server', commonName: 'localhost', dnsNames: ['localhost'] });
    const leaf = await issueCertificate(rsaCa, { kind: 'client', commonName: 'a', algorithm: 'ecdsa-p256' });
    expect(createPrivateKey(leaf.keyPem).asymmetricKeyType).toBe('ec');
    expect(new X509Certificate(leaf.certPem).verify(new X509Certificate(rsaCa.certPem).publicKey)).toBe(true);
    const r = await handshake(
      { key: server.keyPem, cert: server.certPem, ca: rsaCa.certPem, requestCert: true, rejectUnauthorized: true },
      { ca: rsaCa.certPem, servername: 'localhost', key: leaf.keyPem, cert: leaf.certPem },
    );
    expect(r).toMatchObject({ accepted: true, serverAuthorized: true });
  });

  it('keeps a CN with a comma and quotes verbatim', async () => {
    const ca = await createCa({ commonName: 'Dev CA, "quoted"' });
    const leaf = await issueCertificate(ca, { kind: 'client', commonName: 'x+y=z, "q"' });
    const cert = new x509.X509Certificate(leaf.certPem);
    expect(cert.subjectName.getField('CN')).toEqual(['x+y=z, "q"']);
    expect(cert.issuerName.getField('CN')).toEqual(['Dev CA, "quoted"']);
    expect(new X509Certificate(leaf.certPem).checkIssued(new X509Certificate(ca.certPem))).toBe(true);
  });

  it('uses exact notBefore/notAfter (whole seconds) and validityDays', async () => {
    const notBefore = new Date('2031-05-06T07:08:09.999Z');
    const notAfter = new Date('2031-06-06T07:08:09.000Z');
    const a = new x509.X509Certificate((await issueCertificate(ecCa, { kind: 'client', commonName: 'a', notBefore, notAfter })).certPem);
    expect([a.notBefore.toISOString(), a.notAfter.toISOString()]).toEqual(['2031-05-06T07:08:09.000Z', '2031-06-06T07:08:09.000Z']);
    const b = new x509.X509Certificate((await issueCertificate(ecCa, { kind: 'client', commonName: 'b', validityDays: 30 })).certPem);
    expect(b.notAfter.getTime() - b.notBefore.getTime()).toBe(30 * DAY + SKEW);
  });

  it.each<[string, Parameters<typeof issueCertificate>[1], string]>([
    ['notAfter before notBefore', { kind: 'client', commonName: 'a', notBefore: new Date('2030-01-02Z'), notAfter: new Date('2030-01-01Z') }, 'notAfter must be later than notBefore'],
    ['a non-IP address', { kind: 'server', commonName: 'a', ipAddresses: ['localhost'] }, "'localhost' is not an IPv4 or IPv6 address"],
    ['a non-ASCII DNS name', { kind: 'server', commonName: 'a', dnsNames: ['bücher.example'] }, "DNS name 'bücher.example' is not ASCII (use its A-label form)"],
    ['a non-ASCII URI', { kind: 'client', commonName: 'a', uris: ['spiffe://ex/ü'] }, "URI 'spiffe://ex/ü' is not ASCII (percent-encode it)"],
    ['an empty CN', { kind: 'client', commonName: '' }, 'commonName must be 1 to 64 characters (RFC 5280 ub-common-name)'],
    ['zero validity days', { kind: 'client', commonName: 'a', validityDays: 0 }, 'validityDays must be a positive number of days'],
  ])('refuses %s with CFG_ERR_PKI', async (_label, opts, message) => {
    await expect(issueCertificate(ecCa, opts)).rejects.toMatchObject({ code: 'CFG_ERR_PKI', statusCode: 500, message });
  });

  it('refuses a CA bundle whose key is not the certificate key', async () => {
    await expect(issueCertificate({ certPem: ecCa.certPem, keyPem: rsaCa.keyPem }, { kind: 'client', commonName: 'a' })).rejects.toMatchObject({
      code: 'CFG_ERR_PKI',
      message: 'CA private key does not belong to the CA certificate',
    });
  });

  it('refuses to sign with a certificate that is not a CA', async () => {
    const leaf = await issueCertificate(ecCa, { kind: 'client', commonName: 'a' });
    await expect(issueCertificate(leaf, { kind: 'client', commonName: 'b' })).rejects.toMatchObject({
      code: 'CFG_ERR_PKI',
      message: 'CA certificate is not a CA (basicConstraints CA:true missing)',
    });
  });

  it('refuses an unreadable CA key without echoing it', async () => {
    const keyPem = '-----BEGIN PRIVATE KEY-----\nTUlTU0lORw==\n-----END PRIVATE KEY-----\n';
    await expect(issueCertificate({ certPem: ecCa.certPem, keyPem }, { kind: 'client', commonName: 'a' })).rejects.toMatchObject({
      code: 'CFG_ERR_PKI',
      message: 'CA private key cannot be read (expected an unencrypted PEM private key)',
    });
  });
});

describe('createCrl and certificateSerial', () => {
  it('refuses a serial listed twice and a non-hex serial', async () => {
    const ca = await createCa({ commonName: 'CRL CA' });
    await expect(createCrl(ca, [{ serialNumber: '0A' }, { serialNumber: '0a' }])).rejects.toMatchObject({
      code: 'CFG_ERR_PKI',
      message: 'Serial number 0a is listed twice',
    });
    await expect(createCrl(ca, [{ serialNumber: 'xyz' }])).rejects.toMatchObject({
      code: 'CFG_ERR_PKI',
      message: "Serial number 'xyz' is not hexadecimal",
    });
  });

  it('refuses text that is not a certificate', () => {
    expect(() => certificateSerial('hello')).toThrow(expect.objectContaining({ code: 'CFG_ERR_PKI', message: 'Not a PEM X.509 certificate' }));
  });
});
