/**
 * A throwaway PKI per test file: a CA, a server certificate for 127.0.0.1/localhost,
 * and client certificates on demand, written as PEM files in a temp folder.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCa, issueCertificate, type CertificateBundle } from 'config-service';

export interface ClientCert {
  cert: string;
  key: string;
  /** Paths of the PEM files. */
  certFile: string;
  keyFile: string;
}

export interface TestPki {
  dir: string;
  ca: CertificateBundle;
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  /** Issues a client certificate for `app` (SPIFFE URI SAN + DNS SAN + CN) and writes it. */
  client(app: string, opts?: Parameters<typeof issueCertificate>[1] extends infer O ? Partial<O> : never): Promise<ClientCert>;
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
  return {
    dir,
    ca,
    caFile,
    serverCertFile,
    serverKeyFile,
    async client(app, opts = {}) {
      const issued = await issueCertificate(opts.ca ?? ca, {
        kind: 'client',
        commonName: app,
        uris: [`spiffe://example.org/ns/default/sa/${app}`],
        dnsNames: [`${app}.default.svc`],
        ...opts,
      } as Parameters<typeof issueCertificate>[1]);
      n += 1;
      return { cert: issued.certPem, key: issued.keyPem, certFile: write(`client-${n}-${app}.crt`, issued.certPem), keyFile: write(`client-${n}-${app}.key`, issued.keyPem) };
    },
  };
}
