/**
 * A throwaway PKI per test file: a CA, a server certificate for 127.0.0.1/localhost,
 * and client certificates on demand, written as PEM files in a temp folder.
 */
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { certificateSerial, createCa, createCrl, issueCertificate, type CertificateBundle } from 'config-service';

export interface ClientCert {
  cert: string;
  key: string;
  /** Paths of the PEM files. */
  certFile: string;
  keyFile: string;
  /** Serial number, lower-case hex (as in CRLs and the audit log). */
  serial: string;
}

export interface TestPki {
  dir: string;
  ca: CertificateBundle;
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  /** Issues a client certificate for `app` (SPIFFE URI SAN + DNS SAN + CN) and writes it. */
  client(app: string, opts?: Parameters<typeof issueCertificate>[1] extends infer O ? Partial<O> & { ca?: CertificateBundle } : never): Promise<ClientCert>;
  /** A self-signed certificate for `app` (CN = app), not issued by any CA the service trusts. */
  selfSigned(app: string): Promise<ClientCert>;
  /** Path of the CRL file (`crl.pem`); written by {@link writeCrl}. */
  crlFile: string;
  /** Writes a CRL of the test CA revoking `revoked` (serials) to `crlFile`, atomically (rename). */
  writeCrl(revoked: string[]): Promise<string>;
  /** Issues a new server certificate (same names) and replaces `server.crt`/`server.key` atomically; returns its serial. */
  rotateServerCert(): Promise<string>;
}

/** Writes `text` to `file` through a temporary file and a rename, as deployment tools do. */
export function writeFileAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, file);
}

/** Creates a CA and a server certificate in a fresh temp folder. */
export async function makeCerts(name = 'test'): Promise<TestPki> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `pki-${name}-`));
  const ca = await createCa({ commonName: `${name} test CA` });
  const server = await issueCertificate(ca, { kind: 'server', commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] });
  const write = (file: string, text: string) => {
    const p = path.join(dir, file);
    writeFileSync(p, text, { mode: 0o600 });
    return p;
  };
  const caFile = write('ca.crt', ca.certPem);
  const serverCertFile = write('server.crt', server.certPem);
  const serverKeyFile = write('server.key', server.keyPem);
  let n = 0;
  const crlFile = path.join(dir, 'crl.pem');
  return {
    dir,
    ca,
    caFile,
    serverCertFile,
    serverKeyFile,
    crlFile,
    async writeCrl(revoked) {
      const pem = await createCrl(ca, revoked.map((serialNumber) => ({ serialNumber })), { crlNumber: BigInt(Date.now()) });
      writeFileAtomic(crlFile, pem);
      return crlFile;
    },
    async rotateServerCert() {
      const next = await issueCertificate(ca, { kind: 'server', commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] });
      writeFileAtomic(serverKeyFile, next.keyPem);
      writeFileAtomic(serverCertFile, next.certPem);
      return certificateSerial(next.certPem);
    },
    async selfSigned(app) {
      const own = await createCa({ commonName: app });
      n += 1;
      return { cert: own.certPem, key: own.keyPem, certFile: write(`self-${n}-${app}.crt`, own.certPem), keyFile: write(`self-${n}-${app}.key`, own.keyPem), serial: certificateSerial(own.certPem) };
    },
    async client(app, opts = {}) {
      const issued = await issueCertificate(opts.ca ?? ca, {
        kind: 'client',
        commonName: app,
        uris: [`spiffe://example.org/ns/default/sa/${app}`],
        dnsNames: [`${app}.default.svc`],
        ...opts,
      } as Parameters<typeof issueCertificate>[1]);
      n += 1;
      return {
        cert: issued.certPem,
        key: issued.keyPem,
        certFile: write(`client-${n}-${app}.crt`, issued.certPem),
        keyFile: write(`client-${n}-${app}.key`, issued.keyPem),
        serial: certificateSerial(issued.certPem),
      };
    },
  };
}
