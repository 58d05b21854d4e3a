/**
 * TLS material of the API listener, and its reload without a restart (SPEC §3).
 *
 * {@link loadTlsMaterial} reads the server certificate chain, its private key, the client
 * CA bundle and the CRL files, and checks them before they are used: every PEM block
 * parses, the key belongs to the certificate, the certificate is within its validity,
 * every CRL parses and (when its issuer is in the CA bundle) carries a valid signature
 * (RFC 5280 §5, §6.3), and OpenSSL accepts the whole set (`tls.createSecureContext`).
 *
 * {@link TlsReloader} watches the files (`fs.watch` on their folders, plus a periodic
 * `stat` for file systems where events are lost, e.g. Kubernetes secret volumes that swap
 * a `..data` symlink), debounces bursts of changes, reloads and validates the material,
 * and installs it with `server.setSecureContext()`: new connections get the new material,
 * live connections are not touched. A file that does not validate is logged, naming the
 * setting and the rule (never key material), and the current material stays in use.
 *
 * Node (OpenSSL) checks the client certificate against the CRLs on every full handshake
 * (`X509_V_FLAG_CRL_CHECK`: leaf certificates; a CA without a CRL makes every certificate
 * it issued fail with `UNABLE_TO_GET_CRL`). A new context also gets new session-ticket
 * keys, so a session resumed from before a revocation is not possible either.
 *
 * Open connections: every change of the CA bundle or the CRLs starts a new trust
 * generation ({@link TlsReloader.trustGeneration}); each connection is stamped with the
 * generation its handshake was verified under, and the auth plugin re-verifies the peer
 * ({@link TlsReloader.verifyPeer}, `peer-trust.ts`) on its next request when the
 * generation changed, refusing it (401) when it no longer verifies or is revoked.
 */
import { createHash, createPrivateKey, X509Certificate as NodeX509Certificate } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createSecureContext, type SecureContextOptions, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { FastifyBaseLogger } from 'fastify';
import { CFG_ERR_SETTINGS_INVALID, withData } from '../errors.js';
import { serialOf } from '../pki/pki.js';
import { x509 } from '../pki/x509.js';
import { RevocationList, verifyPeerChain } from './peer-trust.js';

export { RevocationList } from './peer-trust.js';

/** The file settings of `server.tls`. */
export interface TlsFileSettings {
  /** Server certificate chain, PEM, leaf first (`server.tls.cert`). */
  cert: string;
  /** Server private key, PEM (`server.tls.key`). */
  key: string;
  /** CA bundle client certificates must chain to, PEM (`server.tls.clientCa`). */
  clientCa: string;
  /** CRL files, PEM, one or more CRLs each (`server.tls.crl`). */
  crl: readonly string[];
}

/** Validated TLS material, ready for `tls.createSecureContext` / `server.setSecureContext`. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
  /** One PEM CRL per element (OpenSSL reads only the first CRL of each buffer). */
  crl: Buffer[];
  /** Serial of the server's leaf certificate, lower-case hex. */
  serverSerial: string;
  /** End of the server certificate's validity. */
  serverNotAfter: Date;
  revoked: RevocationList;
  /** The certificates of the client CA bundle. */
  caCertificates: NodeX509Certificate[];
  /** SHA-256 over every file's bytes: equal digests mean nothing changed. */
  digest: string;
  /** SHA-256 over the CA bundle's and the CRL files' bytes: equal digests mean the client trust did not change. */
  trustDigest: string;
  /** Problems that do not stop the material from being used (stale CRL, CRL issuer not in the bundle). */
  warnings: string[];
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const CRL_BLOCK = /-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----/g;

function invalid(setting: string, problem: string): Error {
  return withData(new CFG_ERR_SETTINGS_INVALID(`  ${setting}: ${problem}`), { setting });
}

async function readSetting(setting: string, file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw invalid(setting, `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function certificatesOf(setting: string, pem: string): x509.X509Certificate[] {
  const blocks = pem.match(CERT_BLOCK) ?? [];
  if (blocks.length === 0) throw invalid(setting, 'no PEM certificate (-----BEGIN CERTIFICATE-----) found');
  return blocks.map((block, i) => {
    try {
      return new x509.X509Certificate(block);
    } catch {
      throw invalid(setting, `certificate #${i + 1} is not a valid X.509 certificate`);
    }
  });
}

/**
 * Reads and validates the TLS files.
 *
 * Rules (each failure names its setting): the server chain has at least one certificate,
 * all parse, the leaf is valid now (RFC 5280 §4.1.2.5) and the key is its private key;
 * the CA bundle has at least one certificate and all parse; every CRL file holds at least
 * one PEM CRL, every CRL parses and, when its issuer is a certificate of the CA bundle, its
 * signature verifies with that certificate's key (RFC 5280 §6.3.3 (f)). A CRL whose
 * `nextUpdate` has passed is used, with a warning: OpenSSL then refuses every certificate
 * of that CA (`CRL_HAS_EXPIRED`), failing closed until a fresh CRL is published.
 *
 * @param now - the time validity is checked at (default now; tests).
 * @throws CFG_ERR_SETTINGS_INVALID naming the setting (`server.tls.cert`, `server.tls.key`,
 *   `server.tls.clientCa`, `server.tls.crl[i]`) and the rule; `data.setting` holds it.
 */
export async function loadTlsMaterial(files: Readonly<TlsFileSettings>, now: Date = new Date()): Promise<TlsMaterial> {
  const hash = createHash('sha256');
  const certBuf = await readSetting('server.tls.cert', files.cert);
  const keyBuf = await readSetting('server.tls.key', files.key);
  const caBuf = await readSetting('server.tls.clientCa', files.clientCa);
  const crlBufs: Buffer[] = [];
  for (const [i, f] of files.crl.entries()) crlBufs.push(await readSetting(`server.tls.crl[${i}]`, f));
  for (const b of [certBuf, keyBuf, caBuf, ...crlBufs]) hash.update(createHash('sha256').update(b).digest());
  const trustHash = createHash('sha256');
  for (const b of [caBuf, ...crlBufs]) trustHash.update(createHash('sha256').update(b).digest());
  const warnings: string[] = [];

  const chain = certificatesOf('server.tls.cert', certBuf.toString('utf8'));
  const leaf = chain[0]!;
  if (now < leaf.notBefore) throw invalid('server.tls.cert', `certificate is not valid before ${leaf.notBefore.toISOString()}`);
  if (now > leaf.notAfter) throw invalid('server.tls.cert', `certificate expired at ${leaf.notAfter.toISOString()}`);
  let keyMatches: boolean;
  try {
    const key = createPrivateKey(keyBuf);
    keyMatches = new NodeX509Certificate(Buffer.from(leaf.rawData)).checkPrivateKey(key);
  } catch {
    throw invalid('server.tls.key', 'not an unencrypted PEM private key');
  }
  if (!keyMatches) throw invalid('server.tls.key', 'the key does not belong to the certificate of server.tls.cert');

  const cas = certificatesOf('server.tls.clientCa', caBuf.toString('utf8'));
  const revoked = new RevocationList();
  const crl: Buffer[] = [];
  for (const [i, buf] of crlBufs.entries()) {
    const setting = `server.tls.crl[${i}]`;
    const blocks = buf.toString('utf8').match(CRL_BLOCK) ?? [];
    if (blocks.length === 0) throw invalid(setting, 'no PEM CRL (-----BEGIN X509 CRL-----) found');
    for (const [j, block] of blocks.entries()) {
      let parsed: x509.X509Crl;
      try {
        parsed = new x509.X509Crl(block);
        revoked.addCrl(parsed.issuer, parsed.nextUpdate);
        for (const entry of parsed.entries) revoked.add(parsed.issuer, normalizeSerial(entry.serialNumber));
      } catch {
        throw invalid(setting, `CRL #${j + 1} is not a valid X.509 CRL`);
      }
      const issuerCa = cas.find((c) => c.subject === parsed.issuer);
      if (issuerCa) {
        let ok = false;
        try {
          ok = await parsed.verify({ publicKey: issuerCa });
        } catch {
          ok = false;
        }
        if (!ok) throw invalid(setting, `CRL #${j + 1} is not signed by its issuer in server.tls.clientCa`);
      } else {
        warnings.push(`${setting}: CRL #${j + 1} is issued by a CA that is not in server.tls.clientCa; OpenSSL checks it during the handshake`);
      }
      if (parsed.nextUpdate && parsed.nextUpdate < now) {
        warnings.push(`${setting}: CRL #${j + 1} is past its nextUpdate (${parsed.nextUpdate.toISOString()}); certificates of its CA are refused until a fresh CRL is published`);
      }
      crl.push(Buffer.from(block));
    }
  }

  const material: TlsMaterial = {
    cert: certBuf,
    key: keyBuf,
    ca: caBuf,
    crl,
    serverSerial: serialOf(leaf),
    serverNotAfter: leaf.notAfter,
    revoked,
    caCertificates: cas.map((c) => new NodeX509Certificate(Buffer.from(c.rawData))),
    digest: hash.digest('hex'),
    trustDigest: trustHash.digest('hex'),
    warnings,
  };
  try {
    createSecureContext(secureContextOptions(material));
  } catch (err) {
    throw invalid('server.tls', `OpenSSL refuses the material (${(err as { code?: string }).code ?? 'error'})`);
  }
  return material;
}

function normalizeSerial(serial: string): string {
  let hex = serial.toLowerCase();
  if (hex.length % 2 === 1) hex = `0${hex}`;
  while (hex.length > 2 && hex.startsWith('00')) hex = hex.slice(2);
  return hex;
}

/** The options of `tls.createSecureContext` / `server.setSecureContext` for `material`. */
export function secureContextOptions(material: TlsMaterial): SecureContextOptions {
  return {
    cert: material.cert,
    key: material.key,
    ca: material.ca,
    ...(material.crl.length > 0 && { crl: material.crl }),
  };
}

/** Counters of {@link TlsReloader}, for tests and metrics. */
export interface TlsReloadStats {
  /** Material installed since start (the start-up load not counted). */
  reloads: number;
  /** Reload attempts whose new files did not validate (the old material stayed). */
  failures: number;
  /** Checks that found the files changed (events or polling), reloaded or not. */
  changesSeen: number;
  lastReloadAt: Date | undefined;
  /** The setting and rule of the last failure; never key material. */
  lastError: string | undefined;
  /** Serial of the server certificate in use. */
  serverSerial: string;
}

/** Options of {@link TlsReloader}. */
export interface TlsReloaderOptions {
  /** How often files are stat'ed when no watch event arrives, in ms. Default 2000. */
  pollIntervalMs?: number;
  /** Quiet time after the last change before reloading, in ms. Default 200. */
  debounceMs?: number;
  /** Watch the folders with `fs.watch` (default true); false leaves only the periodic stat. */
  watchFolders?: boolean;
  /**
   * The listener's TLS handshake timeout, in ms (Node's default 120000). A connection
   * accepted before a trust change may finish its handshake (under the old trust) up to
   * this long after it, so such connections are stamped with the previous generation.
   */
  handshakeTimeoutMs?: number;
}

type StatSignature = string;

/**
 * Watches the TLS files of a listening `tls.Server` (an `https.Server` too) and installs
 * new material when they change. Call {@link start} once the server exists and
 * {@link stop} when it closes.
 */
export class TlsReloader {
  readonly #server: TlsServer;
  readonly #files: Readonly<TlsFileSettings>;
  readonly #logger: FastifyBaseLogger;
  readonly #pollIntervalMs: number;
  readonly #debounceMs: number;
  readonly #watchFolders: boolean;
  #material: TlsMaterial;
  #signature: StatSignature = '';
  #watchers: FSWatcher[] = [];
  #pollTimer: NodeJS.Timeout | undefined;
  #debounceTimer: NodeJS.Timeout | undefined;
  #running: Promise<boolean> | undefined;
  #again = false;
  #stopped = false;
  readonly #stats: TlsReloadStats;
  readonly #handshakeTimeoutMs: number;
  #generation = 0;
  /** `performance.now()` of the last trust change. */
  #trustChangedAt = Number.NEGATIVE_INFINITY;
  /** Trust generation each connection's handshake was verified under. */
  readonly #stamps = new WeakMap<TLSSocket, number>();
  readonly #onSecureConnection = (socket: TLSSocket): void => {
    // The context of a connection is chosen when it is accepted; the handshake may end up
    // to handshakeTimeoutMs later. Within that window of a change, assume the old trust.
    const recent = performance.now() - this.#trustChangedAt < this.#handshakeTimeoutMs;
    this.#stamps.set(socket, recent ? this.#generation - 1 : this.#generation);
  };

  /**
   * @param server - the listener whose context is replaced
   * @param files - the `server.tls` file settings
   * @param material - the material the server was created with (from {@link loadTlsMaterial})
   */
  constructor(server: TlsServer, files: Readonly<TlsFileSettings>, material: TlsMaterial, logger: FastifyBaseLogger, opts: TlsReloaderOptions = {}) {
    this.#server = server;
    this.#files = files;
    this.#material = material;
    this.#logger = logger;
    this.#pollIntervalMs = opts.pollIntervalMs ?? 2000;
    this.#debounceMs = opts.debounceMs ?? 200;
    this.#watchFolders = opts.watchFolders ?? true;
    this.#stats = { reloads: 0, failures: 0, changesSeen: 0, lastReloadAt: undefined, lastError: undefined, serverSerial: material.serverSerial };
    this.#handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 120_000;
    this.#server.on('secureConnection', this.#onSecureConnection);
  }

  /** Increments each time new material with a different CA bundle or CRL set is installed; 0 at start. */
  get trustGeneration(): number {
    return this.#generation;
  }

  /**
   * The trust generation `socket`'s handshake was verified under (conservatively the
   * previous one when it completed shortly after a change); undefined for a socket this
   * listener did not see complete a handshake.
   */
  handshakeGeneration(socket: TLSSocket): number | undefined {
    return this.#stamps.get(socket);
  }

  /**
   * Verifies a client certificate chain (DER, leaf first, presented intermediates after)
   * against the CURRENT client CA bundle and CRLs; see `verifyPeerChain` in `peer-trust.ts`.
   * @returns undefined when it verifies, else the OpenSSL error name (`CERT_REVOKED`, ...).
   */
  verifyPeer(chain: readonly Uint8Array[], now: Date = new Date()): string | undefined {
    const m = this.#material;
    return verifyPeerChain(chain, { caCertificates: m.caCertificates, revoked: m.revoked, crlCheck: m.crl.length > 0 }, now);
  }

  /** The material in use. */
  get material(): TlsMaterial {
    return this.#material;
  }

  /** A snapshot of the counters. */
  get stats(): Readonly<TlsReloadStats> {
    return { ...this.#stats };
  }

  /** True when the current CRLs list certificate `serial` of `issuer` as revoked. */
  isRevoked(issuer: string, serial: string): boolean {
    return this.#material.revoked.has(issuer, serial);
  }

  #paths(): string[] {
    return [this.#files.cert, this.#files.key, this.#files.clientCa, ...this.#files.crl].map((p) => path.resolve(p));
  }

  async #statSignature(): Promise<StatSignature> {
    const parts: string[] = [];
    for (const p of this.#paths()) {
      try {
        const s = await stat(p);
        parts.push(`${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`);
      } catch (err) {
        parts.push(`missing:${(err as NodeJS.ErrnoException).code ?? ''}`);
      }
    }
    return parts.join('|');
  }

  /** Starts watching: folder watches plus the periodic stat fallback. Idempotent. */
  async start(): Promise<void> {
    if (this.#pollTimer || this.#stopped) return;
    this.#signature = await this.#statSignature();
    const dirs = new Set(this.#watchFolders ? this.#paths().map((p) => path.dirname(p)) : []);
    for (const dir of dirs) {
      try {
        // Any event in the folder counts: Kubernetes swaps a `..data` symlink, editors rename.
        const w = watch(dir, { persistent: false }, () => this.#schedule());
        w.on('error', () => undefined);
        this.#watchers.push(w);
      } catch (err) {
        this.#logger.warn({ dir, code: (err as NodeJS.ErrnoException).code }, 'cannot watch a TLS folder; relying on polling');
      }
    }
    this.#pollTimer = setInterval(() => {
      void this.#statSignature().then((sig) => {
        if (sig !== this.#signature) this.#schedule();
      });
    }, this.#pollIntervalMs);
    this.#pollTimer.unref();
  }

  /** Stops watching and polling. */
  stop(): void {
    this.#stopped = true;
    this.#server.off('secureConnection', this.#onSecureConnection);
    for (const w of this.#watchers) w.close();
    this.#watchers = [];
    if (this.#pollTimer) clearInterval(this.#pollTimer);
    if (this.#debounceTimer) clearTimeout(this.#debounceTimer);
    this.#pollTimer = undefined;
  }

  #schedule(): void {
    if (this.#stopped) return;
    if (this.#debounceTimer) clearTimeout(this.#debounceTimer);
    this.#debounceTimer = setTimeout(() => {
      this.#debounceTimer = undefined;
      void this.reload();
    }, this.#debounceMs);
    this.#debounceTimer.unref();
  }

  /**
   * Re-reads the files now and installs them when they changed and validate. Concurrent
   * calls coalesce (one more run follows a running one).
   * @returns true when new material was installed.
   */
  reload(): Promise<boolean> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#reloadOnce().finally(() => {
      this.#running = undefined;
      if (this.#again && !this.#stopped) {
        this.#again = false;
        void this.reload();
      }
    });
    return this.#running;
  }

  async #reloadOnce(): Promise<boolean> {
    // The signature is taken before reading: a write that lands during the read is seen
    // by the next poll.
    this.#signature = await this.#statSignature();
    let next: TlsMaterial;
    try {
      next = await loadTlsMaterial(this.#files);
    } catch (err) {
      const e = err as Error & { data?: { setting?: string } };
      const setting = e.data?.setting ?? 'server.tls';
      const reason = e.message.replace(/^Invalid service settings:\s*/, '').trim();
      this.#stats.changesSeen += 1;
      this.#stats.failures += 1;
      this.#stats.lastError = reason;
      this.#logger.error({ setting, reason }, 'TLS files changed but do not validate; keeping the current certificate, key, CA bundle and CRLs');
      return false;
    }
    if (next.digest === this.#material.digest) return false;
    this.#stats.changesSeen += 1;
    try {
      this.#server.setSecureContext(secureContextOptions(next));
    } catch (err) {
      this.#stats.failures += 1;
      this.#stats.lastError = `server.tls: setSecureContext failed (${(err as { code?: string }).code ?? 'error'})`;
      this.#logger.error({ setting: 'server.tls', code: (err as { code?: string }).code }, 'TLS context could not be replaced; keeping the current one');
      return false;
    }
    const previous = this.#material;
    this.#material = next;
    const trustChanged = previous.trustDigest !== next.trustDigest;
    if (trustChanged) {
      this.#generation += 1;
      this.#trustChangedAt = performance.now();
    }
    this.#stats.reloads += 1;
    this.#stats.lastReloadAt = new Date();
    this.#stats.lastError = undefined;
    this.#stats.serverSerial = next.serverSerial;
    for (const w of next.warnings) this.#logger.warn({ setting: w.slice(0, w.indexOf(':')) }, w);
    this.#logger.info(
      {
        serverSerial: next.serverSerial,
        serverNotAfter: next.serverNotAfter.toISOString(),
        serverCertChanged: previous.serverSerial !== next.serverSerial,
        revokedCertificates: next.revoked.size,
        crlFiles: this.#files.crl.length,
        trustChanged,
        trustGeneration: this.#generation,
      },
      trustChanged
        ? 'TLS material reloaded; new connections use it, open connections are re-verified on their next request'
        : 'TLS material reloaded; new connections use it',
    );
    return true;
  }
}
