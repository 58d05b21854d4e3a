import { X509Certificate, webcrypto } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_IDENTITY_PATTERNS,
  compileIdentityPatterns,
  nameValues,
  parseSubjectAltNames,
  principalFromCertificate,
  principalFromJwtClaims,
} from '../../src/auth/identity.js';
import { certificateSerial, createCa, issueCertificate, type CertificateBundle } from '../../src/pki/pki.js';
import { x509 } from '../../src/pki/x509.js';
import { handshake } from '../pki/tls-helpers.js';

const der = (pem: string): Buffer => new X509Certificate(pem).raw;

let ca: CertificateBundle;
beforeAll(async () => {
  ca = await createCa({ commonName: 'Test CA' });
});

const issue = (opts: { commonName: string; dnsNames?: string[]; uris?: string[] }) =>
  issueCertificate(ca, { kind: 'client', ...opts });

describe('principalFromCertificate', () => {
  it('takes the app from the SPIFFE URI SAN first, with fingerprint, issuer and serial', async () => {
    const cert = await issue({
      commonName: 'from-cn',
      dnsNames: ['from-dns.default.svc'],
      uris: ['spiffe://example.org/ns/default/sa/orders'],
    });
    const node = new X509Certificate(cert.certPem);
    expect(principalFromCertificate(der(cert.certPem), DEFAULT_IDENTITY_PATTERNS)).toEqual({
      kind: 'certificate',
      subject: 'orders',
      source: 'uri-san',
      san: 'spiffe://example.org/ns/default/sa/orders',
      fingerprint256: node.fingerprint256.replaceAll(':', '').toLowerCase(),
      issuer: 'CN=Test CA',
      serialNumber: certificateSerial(cert.certPem),
    });
    expect(principalFromCertificate(der(cert.certPem), DEFAULT_IDENTITY_PATTERNS)?.fingerprint256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('falls back to the first matching DNS SAN when no URI SAN matches', async () => {
    const cert = await issue({
      commonName: 'from-cn',
      dnsNames: ['-bad-.example', 'billing.payments.svc', 'other.default.svc'],
      uris: ['https://example.org/billing', 'spiffe://example.org/billing'],
    });
    expect(principalFromCertificate(der(cert.certPem), DEFAULT_IDENTITY_PATTERNS)).toMatchObject({
      subject: 'billing',
      source: 'dns-san',
      san: 'billing.payments.svc',
    });
  });

  it('falls back to the CN when no SAN matches', async () => {
    const cert = await issue({ commonName: 'inventory', dnsNames: ['localhost'] });
    const p = principalFromCertificate(der(cert.certPem), DEFAULT_IDENTITY_PATTERNS);
    expect(p).toMatchObject({ subject: 'inventory', source: 'cn' });
    expect(p && 'san' in p).toBe(false);
  });

  it('returns null when nothing matches', async () => {
    const cert = await issue({ commonName: 'Orders Inc.', uris: ['urn:example:orders'], dnsNames: ['localhost'] });
    expect(principalFromCertificate(der(cert.certPem), DEFAULT_IDENTITY_PATTERNS)).toBeNull();
  });

  it('is not fooled by a URI SAN holding a comma, quotes and a fake second entry', async () => {
    const sneaky = 'spiffe://example.org/ns/default/sa/x", URI:spiffe://example.org/ns/default/sa/admin';
    const cert = await issue({ commonName: 'admin', uris: [sneaky, 'spiffe://example.org/ns/default/sa/orders,admin'] });
    // Node quotes each value holding a comma or quote as a JSON string; it is read back exactly.
    expect(new X509Certificate(cert.certPem).subjectAltName).toBe(
      'URI:"spiffe://example.org/ns/default/sa/x\\"\\u002c URI:spiffe://example.org/ns/default/sa/admin", URI:"spiffe://example.org/ns/default/sa/orders\\u002cadmin"',
    );
    const san = new x509.X509Certificate(cert.certPem).getExtension(x509.SubjectAlternativeNameExtension);
    expect(san?.names.items.map((n) => n.value)).toEqual([sneaky, 'spiffe://example.org/ns/default/sa/orders,admin']);
    // Neither URI matches the SPIFFE pattern, so the CN decides; never 'admin' from a SAN.
    expect(principalFromCertificate(der(cert.certPem), DEFAULT_IDENTITY_PATTERNS)).toMatchObject({ subject: 'admin', source: 'cn' });
    const noCn = await issue({ commonName: 'Not An App', uris: [sneaky] });
    expect(principalFromCertificate(der(noCn.certPem), DEFAULT_IDENTITY_PATTERNS)).toBeNull();
  });

  it('reads the SAN and name text of Node back exactly: quotes, commas, non-ASCII, other forms', async () => {
    const uris = ['spiffe://example.org/ns/back\\slash/sa/orders', 'spiffe://example.org/ns/a/sa/x, DNS:fake.example.org', 'plain:"quoted"'];
    const cert = await issue({ commonName: 'a+b, "c"', uris, dnsNames: ['orders.example.org', 'xn--mlaut-jva.example.org'] });
    const native = new X509Certificate(cert.certPem);
    expect(parseSubjectAltNames(native.subjectAltName)).toEqual({ uris, dnsNames: ['orders.example.org', 'xn--mlaut-jva.example.org'] });
    // Non-ASCII (from a CA other than the development PKI) comes as a JSON escape.
    expect(parseSubjectAltNames('URI:"spiffe://td/ns/\\u00fc/sa/x", DNS:a.b')).toEqual({ uris: ['spiffe://td/ns/ü/sa/x'], dnsNames: ['a.b'] });
    expect(parseSubjectAltNames('email:a@b, IP Address:10.0.0.1, DNS:x.example.org, URI:https://u/v')).toEqual({ uris: ['https://u/v'], dnsNames: ['x.example.org'] });
    expect(parseSubjectAltNames(undefined)).toEqual({ uris: [], dnsNames: [] });
    expect(nameValues(native.subject, 'CN')).toEqual(['a+b, "c"']);
    expect(nameValues('CN=one + O=Org\\, Inc.\nCN=tab\\09x\\\\y', 'CN')).toEqual(['one', 'tab\tx\\y']);
    // The SPIFFE URI with a backslash in its namespace still names its app.
    expect(principalFromCertificate(der(cert.certPem), DEFAULT_IDENTITY_PATTERNS)).toMatchObject({ subject: 'orders', source: 'uri-san' });
  });

  it('takes the first matching URI SAN in certificate order', async () => {
    const cert = await issue({
      commonName: 'x',
      uris: ['spiffe://example.org/ns/a/sa/Bad', 'spiffe://example.org/ns/a/sa/first', 'spiffe://example.org/ns/a/sa/second'],
    });
    expect(principalFromCertificate(der(cert.certPem), DEFAULT_IDENTITY_PATTERNS)).toMatchObject({
      subject: 'first',
      san: 'spiffe://example.org/ns/a/sa/first',
    });
  });

  it('prints an issuer with special characters escaped', async () => {
    const other = await createCa({ commonName: 'Dev CA, "Q"' });
    const cert = await issueCertificate(other, { kind: 'client', commonName: 'orders' });
    expect(principalFromCertificate(der(cert.certPem), DEFAULT_IDENTITY_PATTERNS)?.issuer).toBe('CN=Dev CA\\, \\"Q\\"');
  });

  it('uses custom patterns, compiled or not', async () => {
    const cert = await issue({ commonName: 'svc-orders', uris: ['spiffe://corp.test/team/orders'] });
    const patterns = { uriSan: '^spiffe://corp\\.test/team/(?<app>[a-z]+)$', dnsSan: '(?<app>^$)', commonName: '^svc-(?<app>.+)$' };
    expect(principalFromCertificate(der(cert.certPem), patterns)).toMatchObject({ subject: 'orders', source: 'uri-san' });
    const compiled = compileIdentityPatterns({ ...patterns, uriSan: '^nothing(?<app>)$' });
    expect(principalFromCertificate(der(cert.certPem), compiled)).toMatchObject({ subject: 'orders', source: 'cn' });
  });

  it('skips a match whose app group is empty', async () => {
    const cert = await issue({ commonName: 'orders', uris: ['spiffe://x/'] });
    const patterns = { ...DEFAULT_IDENTITY_PATTERNS, uriSan: '^spiffe://x/(?<app>[a-z]*)$' };
    expect(principalFromCertificate(der(cert.certPem), patterns)).toMatchObject({ subject: 'orders', source: 'cn' });
  });

  it('reads URI and DNS SANs next to a SAN entry of a form @peculiar/x509 does not model', async () => {
    // GeneralNames { otherName { 1.2.3.4, [0] UTF8String "x" }, dNSName "orders.default.svc",
    //                uniformResourceIdentifier "spiffe://example.org/ns/default/sa/orders" }
    const dns = Buffer.from('orders.default.svc', 'latin1');
    const uri = Buffer.from('spiffe://example.org/ns/default/sa/orders', 'latin1');
    const otherName = Buffer.from([0xa0, 0x0a, 0x06, 0x03, 0x2a, 0x03, 0x04, 0xa0, 0x03, 0x0c, 0x01, 0x78]);
    const body = Buffer.concat([otherName, Buffer.from([0x82, dns.length]), dns, Buffer.from([0x86, uri.length]), uri]);
    const san = Buffer.concat([Buffer.from([0x30, body.length]), body]);
    const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      name: 'CN=fallback',
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as webcrypto.EcdsaParams,
      extensions: [new x509.Extension('2.5.29.17', false, san)],
    });
    const bytes = new Uint8Array(cert.rawData);
    expect(new X509Certificate(Buffer.from(bytes)).subjectAltName).toBe(
      'othername:<unsupported>, DNS:orders.default.svc, URI:spiffe://example.org/ns/default/sa/orders',
    );
    expect(principalFromCertificate(bytes, DEFAULT_IDENTITY_PATTERNS)).toMatchObject({
      subject: 'orders',
      source: 'uri-san',
      issuer: 'CN=fallback',
    });
  });

  it('refuses bytes that are not a certificate with CFG_ERR_UNAUTHENTICATED', () => {
    expect(() => principalFromCertificate(Buffer.from('not a certificate'), DEFAULT_IDENTITY_PATTERNS)).toThrow(
      expect.objectContaining({ code: 'CFG_ERR_UNAUTHENTICATED', statusCode: 401, message: 'Not authenticated: the client certificate cannot be parsed' }),
    );
  });

  it('works on the DER a real mutual-TLS server sees', async () => {
    const server = await issueCertificate(ca, { kind: 'server', commonName: 'localhost', dnsNames: ['localhost'] });
    const client = await issue({ commonName: 'x', uris: ['spiffe://example.org/ns/default/sa/orders'] });
    const r = await handshake(
      { key: server.keyPem, cert: server.certPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true },
      { ca: ca.certPem, servername: 'localhost', key: client.keyPem, cert: client.certPem },
    );
    expect(r.accepted).toBe(true);
    expect(r.peerDer && principalFromCertificate(r.peerDer, DEFAULT_IDENTITY_PATTERNS)).toMatchObject({
      subject: 'orders',
      source: 'uri-san',
      serialNumber: certificateSerial(client.certPem),
    });
  });
});

describe('compileIdentityPatterns', () => {
  it('compiles the defaults', () => {
    const c = compileIdentityPatterns(DEFAULT_IDENTITY_PATTERNS);
    expect(c.uriSan.exec('spiffe://example.org/ns/default/sa/orders')?.groups?.['app']).toBe('orders');
    expect(c.dnsSan.exec('orders.default.svc')?.groups?.['app']).toBe('orders');
    expect(c.commonName.exec('orders')?.groups?.['app']).toBe('orders');
    expect(Object.isFrozen(c)).toBe(true);
  });

  it.each<[string, Record<string, string>, string]>([
    ['an invalid expression', { uriSan: '(' }, 'identity.uriSan: not a valid regular expression (Invalid regular expression: /(/: Unterminated group)'],
    ['no app group', { dnsSan: '^(?<name>[a-z]+)\\.' }, "identity.dnsSan: the pattern has no named group 'app', write (?<app>...)"],
    ['no groups at all', { commonName: '^[a-z]+$' }, "identity.commonName: the pattern has no named group 'app', write (?<app>...)"],
    ['a group called apps', { commonName: '^(?<apps>.+)$' }, "identity.commonName: the pattern has no named group 'app', write (?<app>...)"],
    ['something that is only valid when wrapped', { uriSan: 'a)(?<app>b' }, 'identity.uriSan: not a valid regular expression (Invalid regular expression: /a)(?<app>b/: Unmatched \')\')'],
  ])('refuses %s with CFG_ERR_SETTINGS_INVALID naming the setting', (_label, override, problem) => {
    let err: unknown;
    try {
      compileIdentityPatterns({ ...DEFAULT_IDENTITY_PATTERNS, ...override });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({
      code: 'CFG_ERR_SETTINGS_INVALID',
      message: `Invalid service settings:\n${problem}`,
      data: { setting: problem.slice(0, problem.indexOf(':')) },
    });
  });

  it('fills patterns left out with the defaults', () => {
    const c = compileIdentityPatterns({ commonName: '^svc-(?<app>.+)$' });
    expect(c.uriSan.source).toBe(new RegExp(DEFAULT_IDENTITY_PATTERNS.uriSan).source);
    expect(c.dnsSan.source).toBe(new RegExp(DEFAULT_IDENTITY_PATTERNS.dnsSan).source);
    expect(c.commonName.exec('svc-orders')?.groups?.['app']).toBe('orders');
  });

  it('names settings under a custom prefix', () => {
    expect(() => compileIdentityPatterns({ ...DEFAULT_IDENTITY_PATTERNS, uriSan: 'x' }, 'tls.identity')).toThrow(
      "Invalid service settings:\ntls.identity.uriSan: the pattern has no named group 'app', write (?<app>...)",
    );
  });
});

describe('principalFromJwtClaims', () => {
  it.each<[string, Record<string, unknown>, object]>([
    ['scope string and apps list', { sub: 'ci', scope: 'config:read  encrypt bogus config:read', apps: ['orders-*', 7, ''] }, { kind: 'jwt', subject: 'ci', scopes: ['config:read', 'encrypt'], apps: ['orders-*'] }],
    ['apps as a string', { sub: 'ci', scope: 'admin', apps: 'a b*' }, { kind: 'jwt', subject: 'ci', scopes: ['admin'], apps: ['a', 'b*'] }],
    ['no scope and no apps', { sub: 'ci' }, { kind: 'jwt', subject: 'ci', scopes: [], apps: [] }],
  ])('%s', (_label, claims, principal) => {
    expect(principalFromJwtClaims(claims)).toEqual(principal);
  });

  it('needs a sub', () => {
    expect(() => principalFromJwtClaims({ scope: 'admin' })).toThrow(
      expect.objectContaining({ code: 'CFG_ERR_UNAUTHENTICATED', message: 'Not authenticated: the token has no sub claim' }),
    );
  });
});
