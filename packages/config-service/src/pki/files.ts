/**
 * The development PKI on disk, for `config-service pki init` and `config-service pki issue`.
 *
 * A PKI directory holds `ca.crt`/`ca.key` (the CA), `server.crt`/`server.key` (the API
 * listener's certificate) and one `<app>.crt`/`<app>.key` per client. Certificates are PEM;
 * keys are unencrypted PKCS#8 PEM written with mode 0600 (files are written to a temporary
 * name in the same directory, chmod-ed, then renamed, so a key is never readable by others,
 * not even briefly, and an existing file is replaced atomically).
 *
 * Client certificates are X.509-SVIDs in the SPIFFE sense: URI SAN
 * `spiffe://<trust-domain>/ns/<namespace>/sa/<app>` (SPEC §3), which the default identity
 * pattern maps back to `<app>`.
 */
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import { CFG_ERR_INVALID_NAME, CFG_ERR_PKI } from '../errors.js';
import { buildPkcs12 } from './pkcs12.js';
import { createCa, issueCertificate, type CertificateBundle, type KeyAlgorithm } from './pki.js';

/** File names inside a PKI directory. */
export const PKI_FILES = Object.freeze({
  caCert: 'ca.crt',
  caKey: 'ca.key',
  serverCert: 'server.crt',
  serverKey: 'server.key',
});

/** Names a client may not take, because its files would overwrite the CA's or the server's. */
export const RESERVED_CLIENT_NAMES: readonly string[] = Object.freeze(['ca', 'server']);

/** Default SANs of the server certificate: reachable on the loopback interface by name and by address. */
export const DEFAULT_SERVER_NAMES: readonly string[] = Object.freeze(['localhost', '127.0.0.1', '::1']);

/** Options of {@link initPki}. */
export interface InitPkiOptions {
  /** Server certificate SANs: DNS names and IP addresses (told apart with `net.isIP`). Default {@link DEFAULT_SERVER_NAMES}. */
  serverNames?: string[];
  /** Replace an existing CA. Default false. */
  force?: boolean;
  /** Key algorithm of the CA and server keys. Default `'ecdsa-p256'` (SPEC §11). */
  algorithm?: KeyAlgorithm;
  /** CN of the CA. Default `'config-service development CA'`. */
  caCommonName?: string;
  /** CA validity in days. Default 3650. */
  caValidityDays?: number;
  /** Server certificate validity in days. Default 397. */
  serverValidityDays?: number;
}

/** Absolute paths of the files {@link initPki} wrote. */
export interface PkiFiles {
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
}

/** Options of {@link issueClientFiles}. */
export interface IssueClientOptions {
  /** SPIFFE trust domain. Default `'example.org'`. */
  trustDomain?: string;
  /** Namespace in the SPIFFE path and the DNS SAN. Default `'default'`. */
  namespace?: string;
  /** Validity in days. Default 397. */
  validityDays?: number;
  /** Key algorithm. Default: the CA's. */
  algorithm?: KeyAlgorithm;
  /** Replace an existing `<app>.crt`/`<app>.key` (and the PKCS#12 file). Default false. */
  force?: boolean;
  /**
   * Also write a PKCS#12 keystore (`pkcs12.ts`: the key, the certificate and the CA, alias
   * `<app>`) for JVM clients, mode 0600, protected by `password`.
   */
  p12?: { readonly file: string; readonly password: string };
}

/** Application names: the character set of the default identity patterns (SPEC §3). */
const APP_NAME = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/;
/** A DNS label (RFC 1123), also a Kubernetes namespace name. */
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** SPIFFE ID spec §2.1: trust domain characters; lower case only. */
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;

/**
 * The SPIFFE ID of an application: `spiffe://<trustDomain>/ns/<namespace>/sa/<app>`.
 * @throws CFG_ERR_INVALID_NAME when a part breaks the SPIFFE ID rules or the app-name rule
 *   (`[a-z0-9]`, then up to 61 of `[a-z0-9._-]`, ending in `[a-z0-9]`).
 */
export function spiffeId(trustDomain: string, namespace: string, app: string): string {
  if (!TRUST_DOMAIN.test(trustDomain)) throw new CFG_ERR_INVALID_NAME('trust domain', trustDomain);
  if (!DNS_LABEL.test(namespace)) throw new CFG_ERR_INVALID_NAME('namespace', namespace);
  if (!APP_NAME.test(app)) throw new CFG_ERR_INVALID_NAME('application', app);
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${app}`;
}

async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Writes `content` to `file` atomically with `mode` (temporary file, chmod, rename). */
export async function writeAtomic(file: string, content: string | Uint8Array, mode: number): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, content, { mode, flag: 'wx' });
    await chmod(tmp, mode); // the umask may have narrowed it; make it exact
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

async function writeBundle(certFile: string, keyFile: string, bundle: CertificateBundle): Promise<void> {
  await writeAtomic(keyFile, bundle.keyPem, 0o600);
  await writeAtomic(certFile, bundle.certPem, 0o644);
}

/**
 * Creates a development PKI in `dir`: a CA and a server certificate signed by it.
 *
 * The server certificate has CN = the first server name (or `config-service` when that is
 * longer than 64 characters), extendedKeyUsage serverAuth and SANs from `serverNames`.
 * `dir` is created (mode 0700) when missing.
 *
 * @param dir - the PKI directory.
 * @returns absolute paths of `ca.crt`, `ca.key`, `server.crt`, `server.key`.
 * @throws CFG_ERR_PKI when `ca.crt` or `ca.key` already exists and `force` is not set
 *   (replacing the CA invalidates every certificate it issued), when `serverNames` is empty,
 *   or when a certificate cannot be made.
 */
export async function initPki(dir: string, opts: InitPkiOptions = {}): Promise<PkiFiles> {
  const root = path.resolve(dir);
  const files: PkiFiles = {
    caCert: path.join(root, PKI_FILES.caCert),
    caKey: path.join(root, PKI_FILES.caKey),
    serverCert: path.join(root, PKI_FILES.serverCert),
    serverKey: path.join(root, PKI_FILES.serverKey),
  };
  if (!opts.force) {
    for (const file of [files.caCert, files.caKey]) {
      if (await exists(file)) {
        throw new CFG_ERR_PKI(`${file} already exists; use --force to replace the CA (certificates it issued stop being trusted)`);
      }
    }
  }
  const serverNames = opts.serverNames ?? [...DEFAULT_SERVER_NAMES];
  if (serverNames.length === 0) throw new CFG_ERR_PKI('serverNames must name at least one DNS name or IP address');
  const dnsNames = serverNames.filter((n) => isIP(n) === 0);
  const ipAddresses = serverNames.filter((n) => isIP(n) !== 0);
  const first = serverNames[0] ?? 'config-service';
  const algorithm = opts.algorithm ?? 'ecdsa-p256';

  const ca = await createCa({
    commonName: opts.caCommonName ?? 'config-service development CA',
    validityDays: opts.caValidityDays ?? 3650,
    algorithm,
  });
  const server = await issueCertificate(ca, {
    kind: 'server',
    commonName: first.length <= 64 ? first : 'config-service',
    dnsNames,
    ipAddresses,
    validityDays: opts.serverValidityDays ?? 397,
    algorithm,
  });

  await mkdir(root, { recursive: true, mode: 0o700 });
  await writeBundle(files.caCert, files.caKey, ca);
  await writeBundle(files.serverCert, files.serverKey, server);
  return files;
}

/**
 * Issues a client certificate for application `app` with the CA in `dir` and writes
 * `<app>.crt` and `<app>.key` (mode 0600) next to it.
 *
 * The certificate has CN = `app`, extendedKeyUsage clientAuth, URI SAN
 * `spiffe://<trustDomain>/ns/<namespace>/sa/<app>` and, when `app` is a DNS label (no `.`
 * or `_`), DNS SAN `<app>.<namespace>.svc`.
 *
 * Issuing again for the same app needs `force` (as `initPki` does for the CA), so a
 * certificate in use is never replaced by mistake; then both files are replaced
 * atomically, the key with mode 0600 whatever mode the old file had. The old certificate
 * stays valid until it expires or is put on a CRL.
 *
 * @param dir - a directory made by {@link initPki}.
 * @param app - the application name: `[a-z0-9]`, then up to 61 of `[a-z0-9._-]`, ending in
 *   `[a-z0-9]`; not `ca` or `server`.
 * @returns absolute paths of the certificate and key (and of the PKCS#12 file when asked).
 * @throws CFG_ERR_INVALID_NAME for a bad app name, namespace or trust domain, or a reserved name.
 * @throws CFG_ERR_PKI when the CA files are missing or unusable, when a file to write
 *   exists and `force` is not set, or when the PKCS#12 password is too short.
 */
export async function issueClientFiles(dir: string, app: string, opts: IssueClientOptions = {}): Promise<{ cert: string; key: string; p12?: string }> {
  const root = path.resolve(dir);
  const namespace = opts.namespace ?? 'default';
  const uri = spiffeId(opts.trustDomain ?? 'example.org', namespace, app);
  if (RESERVED_CLIENT_NAMES.includes(app)) throw new CFG_ERR_INVALID_NAME('client (reserved in the PKI directory)', app);

  const cert = path.join(root, `${app}.crt`);
  const key = path.join(root, `${app}.key`);
  const p12 = opts.p12 === undefined ? undefined : path.resolve(opts.p12.file);
  if (!opts.force) {
    const existing = [];
    for (const file of [cert, key, ...(p12 === undefined ? [] : [p12])]) if (await exists(file)) existing.push(file);
    if (existing.length > 0) {
      throw new CFG_ERR_PKI(`${existing.join(' and ')} already ${existing.length === 1 ? 'exists' : 'exist'}; use --force to replace ${existing.length === 1 ? 'it' : 'them'} (the old certificate stays valid until it expires or is revoked)`);
    }
  }
  if (opts.p12 !== undefined && opts.p12.password.length < 6) throw new CFG_ERR_PKI('the PKCS#12 password must have at least 6 characters (keytool refuses shorter ones)');
  const ca = await readCa(root);
  const bundle = await issueCertificate(ca, {
    kind: 'client',
    commonName: app,
    uris: [uri],
    dnsNames: DNS_LABEL.test(app) ? [`${app}.${namespace}.svc`] : [],
    ...(opts.validityDays !== undefined ? { validityDays: opts.validityDays } : {}),
    ...(opts.algorithm !== undefined ? { algorithm: opts.algorithm } : {}),
  });
  if (p12 !== undefined && opts.p12 !== undefined) {
    // Built before anything is written, so a failure leaves no half-issued set.
    const der = await buildPkcs12(bundle.keyPem, bundle.certPem + ca.certPem, opts.p12.password, app);
    await writeBundle(cert, key, bundle);
    await writeAtomic(p12, der, 0o600);
    return { cert, key, p12 };
  }
  await writeBundle(cert, key, bundle);
  return { cert, key };
}

/**
 * Reads the CA of a PKI directory.
 * @throws CFG_ERR_PKI when `ca.crt` or `ca.key` is missing or unreadable.
 */
export async function readCa(dir: string): Promise<CertificateBundle> {
  const root = path.resolve(dir);
  const read = async (name: string): Promise<string> => {
    const file = path.join(root, name);
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new CFG_ERR_PKI(`${file} not found; run 'config-service pki init' first`);
      }
      throw new CFG_ERR_PKI(`${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  };
  return { certPem: await read(PKI_FILES.caCert), keyPem: await read(PKI_FILES.caKey) };
}
