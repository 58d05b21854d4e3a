/**
 * The transport of config-init: the client's TLS material and one HTTPS request.
 *
 * {@link TlsClient} re-reads the certificate, key and CA files before every attempt (a
 * certificate rotated by cert-manager or the kubelet while config-init retries is used
 * by the next attempt) and opens a new connection after any failed attempt, so no socket,
 * TLS session or secure context outlives a failure. A run whose attempts all succeed
 * keeps one keep-alive connection (one TLS handshake for every format) as long as the
 * files do not change.
 *
 * Only `node:` built-ins: config-init is bundled into one file without dependencies.
 */
import https from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import { label } from './args.js';
import { ConfigInitError } from './errors.js';
import { errorCode, type TransportFailure } from './transport-errors.js';

/** Largest response body accepted (bytes). */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** Client certificate, key and CA as PEM bytes. */
export interface TlsMaterial {
  /** PEM certificate chain of the client. */
  cert: Buffer;
  /** PEM private key of the client. Never logged. */
  key: Buffer;
  /** PEM CA bundle that signs the server; `undefined` means Node's built-in roots. */
  ca: Buffer | undefined;
}

/** Paths of the client's TLS files (`--cert`, `--key`, `--ca`). */
export interface TlsFiles {
  /** PEM certificate chain. */
  certFile: string;
  /** PEM private key. */
  keyFile: string;
  /** PEM CA bundle, or `undefined` for Node's built-in roots. */
  caFile: string | undefined;
}

/** A complete HTTP answer. */
export interface RawResponse {
  /** HTTP status code. */
  status: number;
  /** Response headers (lower-case names). */
  headers: IncomingHttpHeaders;
  /** The whole body (at most {@link MAX_BODY_BYTES}). */
  body: Buffer;
}

/** What one attempt gave: an answer, or a transport failure with its circumstances. */
export type AttemptOutcome = { res: RawResponse } | { failure: TransportFailure };

/**
 * Reads the client certificate, key and CA files.
 *
 * @throws {@link ConfigInitError} `CFG_INIT_ERR_CREDENTIALS` (64) for a missing or
 *   unreadable file (`ENOENT`, `EACCES`, `EISDIR`, …), naming the flag and path but never
 *   the contents; `CFG_INIT_ERR_LOCAL_IO` (73) for other I/O errors.
 */
export async function loadTlsMaterial(files: TlsFiles): Promise<TlsMaterial> {
  const read = async (path: string, flag: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (err) {
      const code = errorCode(err) ?? 'error';
      const usage = ['ENOENT', 'EACCES', 'EPERM', 'EISDIR', 'ENOTDIR', 'ELOOP', 'ENAMETOOLONG'].includes(code);
      throw new ConfigInitError(
        usage ? 'CFG_INIT_ERR_CREDENTIALS' : 'CFG_INIT_ERR_LOCAL_IO',
        `cannot read ${label(flag)} file '${path}': ${code}`,
        { cause: err },
      );
    }
  };
  const [cert, key, ca] = await Promise.all([
    read(files.certFile, 'cert'),
    read(files.keyFile, 'key'),
    files.caFile === undefined ? Promise.resolve(undefined) : read(files.caFile, 'ca'),
  ]);
  return { cert, key, ca };
}

/**
 * Builds a TLS context and so checks the material (PEM parses, key matches certificate).
 * OpenSSL's reason never contains key bytes.
 *
 * @throws {@link ConfigInitError} `CFG_INIT_ERR_CREDENTIALS` (64) naming the three flags.
 */
export function secureContextOf(tls: TlsMaterial): SecureContext {
  try {
    return createSecureContext({ cert: tls.cert, key: tls.key, ...(tls.ca ? { ca: tls.ca } : {}) });
  } catch (err) {
    const reason = err instanceof Error ? err.message.replace(/^error:[0-9A-F]+:/i, '') : 'invalid';
    throw new ConfigInitError(
      'CFG_INIT_ERR_CREDENTIALS',
      `the client certificate, key or CA is not usable (${reason}); check ${label('cert')}, ${label('key')} and ${label('ca')}`,
      { cause: err },
    );
  }
}

function sameMaterial(a: TlsMaterial, b: TlsMaterial): boolean {
  return a.cert.equals(b.cert) && a.key.equals(b.key) && (a.ca === undefined ? b.ca === undefined : b.ca !== undefined && a.ca.equals(b.ca));
}

/** What a re-read of the TLS files found (for logs). */
export interface TlsReloadInfo {
  /** `changed`: new bytes, a new connection is opened; `kept`: re-reading failed, the last good material is used. */
  readonly outcome: 'changed' | 'kept';
  /** Why the last good material was kept (flag, path and error code; never file contents). */
  readonly reason?: string;
}

/** How a {@link TlsClient} gets and reports its material. */
export interface TlsClientOptions {
  /** The material to start with (already checked by the caller, or checked here). */
  readonly initial: TlsMaterial;
  /** The files to re-read before every attempt after the first; without them `initial` is used throughout. */
  readonly files?: TlsFiles | undefined;
  /** Called when a re-read finds new bytes or fails. */
  readonly onReload?: ((info: TlsReloadInfo) => void) | undefined;
}

/**
 * An HTTPS client for one run: fresh TLS material for every attempt, one keep-alive
 * connection while attempts succeed, a new connection after any failure.
 *
 * Re-reading: before every attempt but the first, the three files are read again. New
 * bytes → a new secure context and a new connection. A read or a check that fails (a
 * file caught half-replaced, a key that does not match the certificate yet) keeps the
 * last good material for that attempt and reports it through `onReload`: the kubelet and
 * cert-manager replace secret files atomically, so the next attempt reads a consistent
 * pair again.
 */
export class TlsClient {
  #material: TlsMaterial;
  #context: SecureContext;
  #agent: https.Agent | undefined;
  #attempts = 0;
  readonly #files: TlsFiles | undefined;
  readonly #onReload: ((info: TlsReloadInfo) => void) | undefined;

  /**
   * @throws {@link ConfigInitError} `CFG_INIT_ERR_CREDENTIALS` (64) when `initial` is not
   *   usable.
   */
  constructor(opts: TlsClientOptions) {
    this.#material = opts.initial;
    this.#context = secureContextOf(opts.initial);
    this.#files = opts.files;
    this.#onReload = opts.onReload;
  }

  /** Re-reads the files (not before the first attempt: the caller just read them). */
  async #refresh(): Promise<void> {
    this.#attempts += 1;
    if (this.#files === undefined || this.#attempts === 1) return;
    let next: TlsMaterial;
    let context: SecureContext;
    try {
      next = await loadTlsMaterial(this.#files);
      if (sameMaterial(next, this.#material)) return;
      context = secureContextOf(next);
    } catch (err) {
      this.#onReload?.({ outcome: 'kept', reason: err instanceof Error ? err.message : String(err) });
      return;
    }
    this.#material = next;
    this.#context = context;
    this.discardConnection();
    this.#onReload?.({ outcome: 'changed' });
  }

  /**
   * One GET of `url` within `timeoutMs` (connect, TLS handshake and the whole answer),
   * with extra request `headers` (`If-None-Match` of a long-poll). Never rejects: a
   * transport error comes back as a {@link TransportFailure}.
   */
  async request(url: URL, accept: string, timeoutMs: number, headers: Readonly<Record<string, string>> = {}): Promise<AttemptOutcome> {
    await this.#refresh();
    this.#agent ??= new https.Agent({ keepAlive: true, maxSockets: 1, secureContext: this.#context });
    const outcome = await requestOnce(url, accept, this.#agent, timeoutMs, headers);
    if ('failure' in outcome) this.discardConnection();
    return outcome;
  }

  /** Closes the connection: the next request opens a new one (new TCP, new TLS handshake). */
  discardConnection(): void {
    this.#agent?.destroy();
    this.#agent = undefined;
  }

  /** Closes everything; call when the run ends. */
  close(): void {
    this.discardConnection();
  }
}

/**
 * One HTTP GET over `agent`: resolves with the whole answer, or with the transport
 * failure and what had happened on the socket before it (see `transport-errors.ts`).
 */
export function requestOnce(url: URL, accept: string, agent: https.Agent, timeoutMs: number, headers: Readonly<Record<string, string>> = {}): Promise<AttemptOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    let handshakeDone = false;
    let protocol: string | undefined;
    let answered = false;
    const finish = (v: AttemptOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(v);
    };
    const req = https.request(url, {
      method: 'GET',
      agent,
      headers: { ...headers, accept: `${accept}, application/problem+json;q=0.1`, 'user-agent': 'config-init' },
    });
    const timer = setTimeout(() => {
      req.destroy(Object.assign(new Error(`attempt timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    req.on('socket', (socket) => {
      const tls = socket as TLSSocket;
      // A reused keep-alive socket finished its handshake for an earlier request.
      if (req.reusedSocket) {
        handshakeDone = true;
        protocol = tls.getProtocol?.() ?? undefined;
        return;
      }
      tls.once('secureConnect', () => {
        handshakeDone = true;
        protocol = tls.getProtocol() ?? undefined;
      });
    });
    const fail = (error: unknown): void => finish({ failure: { error, reused: req.reusedSocket, handshakeDone, answered, protocol } });
    req.on('error', fail);
    req.on('response', (res: IncomingMessage) => {
      answered = true;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          req.destroy(Object.assign(new Error(`response larger than ${MAX_BODY_BYTES} bytes`), { code: 'ERR_BODY_TOO_LARGE' }));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', fail);
      res.on('aborted', () => fail(Object.assign(new Error('response aborted'), { code: 'ECONNRESET' })));
      res.on('end', () => {
        if (!res.complete) {
          fail(Object.assign(new Error('response truncated'), { code: 'ECONNRESET' }));
          return;
        }
        finish({ res: { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks, size) } });
      });
    });
    req.end();
  });
}
