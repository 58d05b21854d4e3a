/**
 * Real certificates for the tests, from the project's development PKI
 * (packages/config-service/src/pki/pki.ts). Imported dynamically by path so the
 * config-init type check does not pull config-service sources into its program.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CertificateBundle {
  certPem: string;
  keyPem: string;
}
interface PkiModule {
  createCa(opts: { commonName: string }): Promise<CertificateBundle>;
  issueCertificate(
    ca: CertificateBundle,
    opts: { kind: 'server' | 'client'; commonName: string; dnsNames?: string[]; ipAddresses?: string[]; uris?: string[]; notBefore?: Date; notAfter?: Date },
  ): Promise<CertificateBundle>;
}

const PKI_MODULE = fileURLToPath(new URL('../../../config-service/src/pki/pki.ts', import.meta.url));

/** Certificates and their file paths. */
export interface TestCerts {
  ca: CertificateBundle;
  server: CertificateBundle;
  client: CertificateBundle;
  /** A client certificate from an unrelated CA (the server must reject it). */
  foreignClient: CertificateBundle;
  /** A client certificate of the test CA that expired yesterday. */
  expiredClient: CertificateBundle;
  /** A second valid client certificate of the test CA (another key), e.g. the rotated one. */
  nextClient: CertificateBundle;
  dir: string;
  files: {
    ca: string; cert: string; key: string; foreignCert: string; foreignKey: string; serverCert: string; serverKey: string;
    expiredCert: string; expiredKey: string; nextCert: string; nextKey: string;
  };
}

/** Creates a CA, a server certificate for 127.0.0.1/localhost, two client certificates, an expired one and a foreign one. */
export async function makeCerts(): Promise<TestCerts> {
  const pki = (await import(/* @vite-ignore */ PKI_MODULE)) as PkiModule;
  const ca = await pki.createCa({ commonName: 'config-init test CA' });
  const server = await pki.issueCertificate(ca, { kind: 'server', commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const client = await pki.issueCertificate(ca, { kind: 'client', commonName: 'orders', uris: ['spiffe://test.local/ns/default/sa/orders'] });
  const other = await pki.createCa({ commonName: 'some other CA' });
  const foreignClient = await pki.issueCertificate(other, { kind: 'client', commonName: 'orders' });
  const day = 86_400_000;
  const expiredClient = await pki.issueCertificate(ca, { kind: 'client', commonName: 'orders', notBefore: new Date(Date.now() - 10 * day), notAfter: new Date(Date.now() - day) });
  const nextClient = await pki.issueCertificate(ca, { kind: 'client', commonName: 'orders', uris: ['spiffe://test.local/ns/default/sa/orders'] });
  const dir = await mkdtemp(join(tmpdir(), 'config-init-certs-'));
  const files = {
    ca: join(dir, 'ca.pem'),
    cert: join(dir, 'client.pem'),
    key: join(dir, 'client-key.pem'),
    foreignCert: join(dir, 'foreign.pem'),
    foreignKey: join(dir, 'foreign-key.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server-key.pem'),
    expiredCert: join(dir, 'expired.pem'),
    expiredKey: join(dir, 'expired-key.pem'),
    nextCert: join(dir, 'next.pem'),
    nextKey: join(dir, 'next-key.pem'),
  };
  await writeFile(files.serverCert, server.certPem);
  await writeFile(files.serverKey, server.keyPem, { mode: 0o600 });
  await writeFile(files.ca, ca.certPem);
  await writeFile(files.cert, client.certPem);
  await writeFile(files.key, client.keyPem, { mode: 0o600 });
  await writeFile(files.foreignCert, foreignClient.certPem);
  await writeFile(files.foreignKey, foreignClient.keyPem, { mode: 0o600 });
  await writeFile(files.expiredCert, expiredClient.certPem);
  await writeFile(files.expiredKey, expiredClient.keyPem, { mode: 0o600 });
  await writeFile(files.nextCert, nextClient.certPem);
  await writeFile(files.nextKey, nextClient.keyPem, { mode: 0o600 });
  return { ca, server, client, foreignClient, expiredClient, nextClient, dir, files };
}
