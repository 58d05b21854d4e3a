/**
 * Fetching one application's configuration from config-service over mutual TLS.
 *
 * `node:https` with ONE keep-alive `https.Agent` per run (one TLS handshake for all
 * formats), a per-attempt timeout, an overall deadline, and retries with capped
 * exponential backoff and full jitter.
 *
 * Why no library: undici's `RetryAgent` (and `RetryHandler`) retries with a plain
 * exponential backoff without jitter and knows no overall deadline, so a fleet of init
 * containers restarted together would retry in lock step; `p-retry` (and `retry`) cannot
 * honour a `Retry-After` header because the delay is computed before the failure is seen.
 * Either would also be a runtime dependency that costs start-up time (SPEC §11). The
 * loop below is ~60 lines and does exactly SPEC §7: retry connection errors, timeouts,
 * 5xx and 429 (honouring `Retry-After`, seconds or HTTP-date, capped by the deadline);
 * never retry other 4xx; never retry TLS authentication failures.
 */
import { createHash } from 'node:crypto';
import https from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { EnvNaming, Format } from './args.js';
import { ENV_NAME_RE, label } from './args.js';
import { ConfigInitError, FetchError, type ErrorCode } from './errors.js';

/** Backoff base delay (ms): the first retry waits random(0, 200 ms). */
export const BACKOFF_BASE_MS = 200;
/** Backoff cap (ms): no jittered delay window is larger than this. */
export const BACKOFF_CAP_MS = 10_000;
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

/** What to fetch. */
export interface FetchOptions {
  /** API base URL (https). */
  server: URL;
  /** Application name. */
  app: string;
  /** Profiles (may be empty). */
  profiles: readonly string[];
  /** Ref asked for, or `undefined` for the default branch. */
  ref: string | undefined;
  /** Formats; the first answer's commit pins the others. */
  formats: readonly Format[];
  /** Per-attempt timeout (ms). */
  timeoutMs: number;
  /** Overall deadline of the whole fetch (ms). */
  deadlineMs: number;
  /** Accept an empty configuration (`Config-Property-Count: 0`). */
  allowEmpty: boolean;
  /** TLS client material. */
  tls: TlsMaterial;
  /** Environment-name style for `env`, `dotenv` and the environment map (default `standard`). */
  envNaming?: EnvNaming;
  /** Fetch the environment map first (`format=env`, `Accept: application/json`), for `exec`. */
  envMap?: boolean;
  /** Fetch the raw files too (list, then each file), at the pinned commit. */
  files?: boolean;
}

/** The environment map of `exec` as the service sent it. */
export interface FetchedEnv {
  /** Variable name → value, exactly as sent. */
  env: Readonly<Record<string, string>>;
  /** `Config-Commit` of the answer. */
  commit: string;
  /** SHA-256 hex of the body (matches the `sha256` of the service's audit event). */
  sha256: string;
}

/** One entry of the raw-file list. */
export interface FileEntry {
  /** Relative `/`-separated path below the application's files (validated). */
  path: string;
  /** Size in bytes. */
  size: number;
  /** SHA-256 hex (lower case). */
  sha256: string;
}

/** One raw file, verified against its list entry. */
export interface FetchedFile {
  /** Relative `/`-separated path (validated). */
  path: string;
  /** The bytes. */
  body: Buffer;
  /** SHA-256 hex of the bytes. */
  sha256: string;
}

/** One rendered document as the service sent it. */
export interface FetchedDocument {
  /** The format asked for. */
  format: Format;
  /** The body, byte for byte. */
  body: Buffer;
  /** `Config-Commit` of the answer. */
  commit: string;
  /** `ETag` of the answer, if any. */
  etag: string | undefined;
  /** `Config-Property-Count`, if the service sent it. */
  propertyCount: number | undefined;
  /** Media type of the answer (lower case, no parameters). */
  contentType: string;
}

/** The result of {@link fetchConfig}: everything asked for, all at one commit. */
export interface FetchResult {
  /** The commit everything was read at. */
  commit: string;
  /** One document per requested format, in order. */
  documents: FetchedDocument[];
  /** The environment map (when `envMap` was asked for). */
  env?: Readonly<Record<string, string>> | undefined;
  /** SHA-256 hex of the environment map's body (when fetched). */
  envSha256?: string | undefined;
  /** The raw files in list order (when `files` was asked for). */
  files?: FetchedFile[] | undefined;
  /** HTTP attempts made in total (1 per format when nothing failed). */
  attempts: number;
}

/** Details of a failed attempt that will be retried. */
export interface RetryInfo {
  /** Number of the attempt that failed (1-based, across all requests). */
  attempt: number;
  /** What was being fetched: `format properties`, `environment map`, `file list`, `file 'x'`. */
  target: string;
  /** Short cause: an error code or `HTTP 503`. */
  cause: string;
  /** Delay before the next attempt (ms). */
  delayMs: number;
}

/** Injected time and randomness, so tests can control the retry loop. */
export interface FetchDeps {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Waits `ms` milliseconds. */
  sleep(ms: number): Promise<void>;
  /** Uniform random number in [0, 1). */
  random(): number;
  /** Called before each retry sleep (for logging). */
  onRetry?(info: RetryInfo): void;
}

/** Default {@link FetchDeps}: the real clock and `Math.random`. */
export const realFetchDeps: FetchDeps = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: () => Math.random(),
};

/** Media types requested per format (Accept), most specific first. */
const ACCEPT: Record<Format, string> = {
  json: 'application/json',
  yaml: 'application/yaml, text/yaml;q=0.9, text/plain;q=0.5',
  properties: 'text/x-java-properties, text/plain;q=0.9',
  env: 'text/x-shellscript, text/plain;q=0.9',
  dotenv: 'text/plain',
};

/** Whether a 200 answer's media type fits the format asked for. */
function contentTypeFits(format: Format, type: string): boolean {
  if (type === 'application/problem+json') return false;
  if (format === 'json') return type === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(type);
  // Text formats: any text/* except HTML (a proxy's error page), or the yaml / shell types.
  if (type === 'text/html') return false;
  if (type.startsWith('text/')) return true;
  if (format === 'yaml') return type === 'application/yaml' || type === 'application/x-yaml';
  if (format === 'env') return type === 'application/x-sh' || type === 'application/x-shellscript';
  return false;
}

function ioCode(err: unknown): string | undefined {
  return err !== null && typeof err === 'object' && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/**
 * Reads the client certificate, key and CA files and checks they form a usable TLS
 * context (PEM parses, key matches certificate).
 *
 * @throws {@link ConfigInitError} `CFG_INIT_ERR_CREDENTIALS` (64) for a missing,
 *   unreadable or invalid file, naming the flag and path but never the contents;
 *   `CFG_INIT_ERR_LOCAL_IO` (73) for other I/O errors.
 */
export async function loadTlsMaterial(files: { certFile: string; keyFile: string; caFile: string | undefined }): Promise<TlsMaterial> {
  const read = async (path: string, flag: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (err) {
      const code = ioCode(err) ?? 'error';
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

/** Builds the one TLS context of a run; OpenSSL's reason never contains key bytes. */
function secureContextOf(tls: TlsMaterial): SecureContext {
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

/** Server certificate verification failures (our side refuses the server): not retried. */
const SERVER_TRUST_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE', 'CERT_REVOKED', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'INVALID_CA',
  'INVALID_PURPOSE', 'ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH',
]);

/**
 * Consecutive fresh connections that the server closes without any HTTP answer after
 * which config-init concludes that the server rejects the client certificate (77).
 */
export const SUSPECT_RESET_LIMIT = 3;

/** An attempt that failed in a way worth retrying. */
class Retryable {
  constructor(
    readonly cause: string,
    readonly retryAfterMs: number | undefined = undefined,
    /** A fresh connection was reset or closed before any HTTP answer (see {@link classifyTransportError}). */
    readonly suspectRejection = false,
  ) {}
}

/**
 * Classifies a transport error.
 *
 * - A TLS alert from the server (`unknown ca`, `bad certificate`, `certificate required`,
 *   `certificate expired`, `access denied`, ...) means it rejected our certificate during
 *   the handshake (nginx, Envoy, Go and `openssl s_server` answer this way): final, 77.
 * - A server certificate that does not verify: final, 77.
 * - Everything else (refused, DNS, timeout, reset) may be transient and is retried.
 *
 * Careful: a Node.js TLS server with `rejectUnauthorized: true` sends NO alert. OpenSSL
 * accepts the handshake and Node checks the peer afterwards and destroys the socket, and
 * with TLS 1.3 our side has already finished its handshake and sent the request; all we
 * see is ECONNRESET ("socket hang up") with no HTTP answer. A restarting pod can look the
 * same once, so such a reset on a FRESH connection (a reused keep-alive socket that the
 * server closed is a benign race) is retried but counted; {@link SUSPECT_RESET_LIMIT}
 * in a row end the run with 77. Services that check certificates at the HTTP layer (as
 * config-service does, to allow JWT callers) answer 401/403, which map to 77 directly.
 */
export function classifyTransportError(err: unknown, reused: boolean): Retryable | FetchError {
  const code = ioCode(err) ?? 'ERROR';
  if (/^ERR_SSL_.*ALERT/.test(code)) {
    const alert = code.replace(/^ERR_SSL_(SSLV3|TLSV1|TLSV13)_ALERT_/, '').toLowerCase().replace(/_/g, ' ');
    return new FetchError('CFG_INIT_ERR_NOT_AUTHORIZED', `the server rejected the client certificate during the TLS handshake (alert: ${alert}); check ${label('cert')} and that the service trusts its CA`, { cause: err });
  }
  if (SERVER_TRUST_CODES.has(code)) {
    return new FetchError('CFG_INIT_ERR_SERVER_UNTRUSTED', `the server certificate is not trusted (${code}); check ${label('ca')} and ${label('server')}`, { cause: err });
  }
  const msg = err instanceof Error ? err.message : String(err);
  const cause = code === 'ERROR' || !msg.includes(code) ? `${code}: ${msg}` : msg;
  return new Retryable(cause, undefined, !reused && (code === 'ECONNRESET' || code === 'EPIPE'));
}

/** Parses `Retry-After` (delta seconds or HTTP-date) into ms from `now`. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** Full-jitter delay for retry number `n` (0-based): random(0, min(cap, base·2^n)). */
export function backoffDelay(n: number, random: () => number, baseMs = BACKOFF_BASE_MS, capMs = BACKOFF_CAP_MS): number {
  const window = Math.min(capMs, baseMs * 2 ** Math.min(n, 30));
  return Math.floor(random() * window);
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function mediaType(headers: IncomingHttpHeaders): string {
  return (header(headers, 'content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** Strips control characters and caps the length of text taken from a server answer. */
function clean(text: string, max = 300): string {
  // eslint-disable-next-line no-control-regex
  const t = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
}

/** Reads `code` and `detail` (or `title`) of a problem+json body, if it is one. */
function problemOf(res: RawResponse): { code: string | undefined; text: string } {
  const type = mediaType(res.headers);
  if (type.endsWith('json') && res.body.length < 65_536) {
    try {
      const p: unknown = JSON.parse(res.body.toString('utf8'));
      if (p !== null && typeof p === 'object') {
        const o = p as Record<string, unknown>;
        const code = typeof o.code === 'string' ? clean(o.code, 80) : undefined;
        const detail = typeof o.detail === 'string' ? o.detail : typeof o.title === 'string' ? o.title : '';
        return { code, text: clean(detail) };
      }
    } catch {
      // not a problem document; fall through
    }
  }
  return { code: undefined, text: '' };
}

interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One HTTP attempt: resolves with the full response or rejects with the transport error. */
function requestOnce(
  url: URL,
  accept: string,
  agent: https.Agent,
  timeoutMs: number,
): Promise<{ res: RawResponse } | { err: unknown; reused: boolean }> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (v: { res: RawResponse } | { err: unknown; reused: boolean }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(v);
    };
    const req = https.request(url, {
      method: 'GET',
      agent,
      headers: { accept: `${accept}, application/problem+json;q=0.1`, 'user-agent': 'config-init' },
    });
    const timer = setTimeout(() => {
      const err = Object.assign(new Error(`attempt timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' });
      req.destroy(err);
    }, timeoutMs);
    let answered = false;
    // Once any answer arrived, a later reset is a truncated response, not a rejection.
    const fail = (err: unknown): void => finish({ err, reused: req.reusedSocket || answered });
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

/** `{server}` with `/v1/apps/{app}` and `rest` appended to its path (a path prefix is kept). */
function appUrl(server: URL, app: string, rest: string, query: readonly string[]): URL {
  const url = new URL(server.href);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/v1/apps/${encodeURIComponent(app)}${rest}`;
  const q = query.filter(Boolean).join('&');
  url.search = q === '' ? '' : `?${q}`;
  return url;
}

/**
 * Builds `GET {server}/v1/apps/{app}/config?profile=…&format=…[&ref=…][&envNaming=spring]`.
 * `envNaming=spring` is sent only for the formats that carry environment names (`env`,
 * `dotenv`); `standard` is the service's default and is not sent.
 */
export function configUrl(server: URL, app: string, profiles: readonly string[], format: Format, ref: string | undefined, envNaming: EnvNaming = 'standard'): URL {
  // Names are validated (`[a-z0-9._-]`), so only the ref needs encoding.
  return appUrl(server, app, '/config', [
    profiles.length > 0 ? `profile=${profiles.join(',')}` : '',
    `format=${format}`,
    ref !== undefined ? `ref=${encodeURIComponent(ref)}` : '',
    envNaming === 'spring' && (format === 'env' || format === 'dotenv') ? 'envNaming=spring' : '',
  ]);
}

/** Builds `GET {server}/v1/apps/{app}/files?profile=…&ref=…`. */
export function filesListUrl(server: URL, app: string, profiles: readonly string[], ref: string | undefined): URL {
  return appUrl(server, app, '/files', [profiles.length > 0 ? `profile=${profiles.join(',')}` : '', ref !== undefined ? `ref=${encodeURIComponent(ref)}` : '']);
}

/**
 * Builds `GET {server}/v1/apps/{app}/files/{path}?profile=…&ref=…`, each path segment
 * URL-encoded on its own (a `/` inside the path stays a separator). `path` must have
 * passed {@link filePathViolation}.
 */
export function fileUrl(server: URL, app: string, path: string, profiles: readonly string[], ref: string | undefined): URL {
  const encoded = path.split('/').map(encodeURIComponent).join('/');
  return appUrl(server, app, `/files/${encoded}`, [profiles.length > 0 ? `profile=${profiles.join(',')}` : '', ref !== undefined ? `ref=${encodeURIComponent(ref)}` : '']);
}

/**
 * Why a raw-file path from the service cannot be published, or `null` if it can: it must
 * be relative, `/`-separated, with no empty, `.` or `..` segment, no backslash, no NUL or
 * other control character, each segment at most 255 bytes, at most 4096 bytes in all.
 */
export function filePathViolation(path: string): string | null {
  if (path === '') return 'is empty';
  if (Buffer.byteLength(path, 'utf8') > 4096) return 'is longer than 4096 bytes';
  if (path.startsWith('/')) return 'is absolute';
  if (path.includes('\\')) return 'contains a backslash';
  if (path.includes('\0')) return 'contains NUL';
  // eslint-disable-next-line no-control-regex
  if (/[\u0001-\u001f\u007f]/.test(path)) return 'contains a control character';
  for (const seg of path.split('/')) {
    if (seg === '') return "has an empty segment ('//' or a trailing '/')";
    if (seg === '.' || seg === '..') return "has a '.' or '..' segment";
    if (Buffer.byteLength(seg, 'utf8') > 255) return 'has a segment longer than 255 bytes';
  }
  return null;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function checkCommit(res: RawResponse, pinned: string | undefined, bad: (what: string) => FetchError, required: boolean): string | undefined {
  const commit = header(res.headers, 'config-commit')?.trim();
  if (commit === undefined || commit === '') {
    if (required) throw bad('missing or malformed Config-Commit header');
    return undefined;
  }
  if (!/^[0-9a-f]{4,64}$/i.test(commit)) throw bad('missing or malformed Config-Commit header');
  if (pinned !== undefined && commit.toLowerCase() !== pinned.toLowerCase()) {
    throw bad(`commit ${commit} differs from the pinned commit ${pinned}`);
  }
  return commit;
}

function propertyCountOf(res: RawResponse, bad: (what: string) => FetchError): number | undefined {
  const countHeader = header(res.headers, 'config-property-count');
  if (countHeader === undefined) return undefined;
  if (!/^\d+$/.test(countHeader.trim())) throw bad('malformed Config-Property-Count header');
  return Number(countHeader.trim());
}

/** Checks a 200 answer; returns the document or throws a final error. */
function checkDocument(res: RawResponse, format: Format, pinned: string | undefined, allowEmpty: boolean): FetchedDocument {
  const bad = (what: string): FetchError =>
    new FetchError('CFG_INIT_ERR_BAD_RESPONSE', `bad response for format ${format}: ${what}`, { status: res.status });
  const commit = checkCommit(res, pinned, bad, true) ?? '';
  const type = mediaType(res.headers);
  if (!contentTypeFits(format, type)) throw bad(`unexpected Content-Type '${clean(type, 80) || '(none)'}'`);
  const propertyCount = propertyCountOf(res, bad);
  let text: string;
  try {
    text = utf8.decode(res.body);
  } catch {
    throw bad('body is not valid UTF-8');
  }
  if (format === 'json') {
    try {
      JSON.parse(text);
    } catch {
      throw bad('body is not valid JSON');
    }
  }
  // Without the header (an older service or a proxy that drops it), judge by the body.
  const empty = propertyCount !== undefined ? propertyCount === 0 : /^\s*(\{\s*\}\s*)?$/.test(text);
  if (empty && !allowEmpty) {
    throw new FetchError('CFG_INIT_ERR_EMPTY_CONFIG', `the configuration is empty (format ${format}, commit ${commit}); refusing to publish it without --allow-empty`, { status: res.status });
  }
  return { format, body: res.body, commit, etag: header(res.headers, 'etag'), propertyCount, contentType: type };
}

/**
 * Checks the answer to `format=env` with `Accept: application/json`: a JSON object of
 * environment names (SPEC §8 pattern) to string values without NUL (which no process
 * environment can hold). Never quotes a value in an error.
 */
function checkEnvMap(res: RawResponse, pinned: string | undefined, allowEmpty: boolean): FetchedEnv {
  const bad = (what: string): FetchError =>
    new FetchError('CFG_INIT_ERR_BAD_RESPONSE', `bad response for the environment map: ${what}`, { status: res.status });
  const commit = checkCommit(res, pinned, bad, true) ?? '';
  const type = mediaType(res.headers);
  if (type !== 'application/json') throw bad(`unexpected Content-Type '${clean(type, 80) || '(none)'}' (expected application/json; is config-service too old for exec?)`);
  const propertyCount = propertyCountOf(res, bad);
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(res.body));
  } catch {
    throw bad('body is not valid UTF-8 JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw bad('body is not a JSON object');
  const env: Record<string, string> = Object.create(null) as Record<string, string>;
  const badNames: string[] = [];
  const nonStrings: string[] = [];
  const withNul: string[] = [];
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (!ENV_NAME_RE.test(name)) badNames.push(clean(name, 80));
    else if (typeof value !== 'string') nonStrings.push(name);
    else if (value.includes('\0')) withNul.push(name);
    else env[name] = value;
  }
  if (badNames.length > 0) throw bad(`not an environment variable name: ${badNames.slice(0, 10).join(', ')}`);
  if (nonStrings.length > 0) throw bad(`value is not a string for ${nonStrings.slice(0, 10).join(', ')}`);
  if (withNul.length > 0) {
    throw new FetchError('CFG_INIT_ERR_UNRENDERABLE', `the configuration cannot be an environment: the value of ${withNul.slice(0, 10).join(', ')} contains NUL`, { status: res.status });
  }
  const count = Object.keys(env).length;
  const empty = propertyCount !== undefined ? propertyCount === 0 : count === 0;
  if (empty && !allowEmpty) {
    throw new FetchError('CFG_INIT_ERR_EMPTY_CONFIG', `the configuration is empty (environment map, commit ${commit}); refusing to use it without --allow-empty`, { status: res.status });
  }
  return { env, commit, sha256: createHash('sha256').update(res.body).digest('hex') };
}

/** Checks the raw-file list; every path is validated before any file is requested. */
function checkFileList(res: RawResponse, pinned: string | undefined): { commit: string | undefined; entries: FileEntry[] } {
  const bad = (what: string): FetchError =>
    new FetchError('CFG_INIT_ERR_BAD_RESPONSE', `bad response for the file list: ${what}`, { status: res.status });
  const headerCommit = checkCommit(res, pinned, bad, false);
  const type = mediaType(res.headers);
  if (type !== 'application/json') throw bad(`unexpected Content-Type '${clean(type, 80) || '(none)'}'`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(res.body));
  } catch {
    throw bad('body is not valid UTF-8 JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || !Array.isArray((parsed as { files?: unknown }).files)) throw bad("body has no 'files' array");
  const body = parsed as { commit?: unknown; files: unknown[] };
  let commit = headerCommit;
  if (body.commit !== undefined) {
    if (typeof body.commit !== 'string' || !/^[0-9a-f]{4,64}$/i.test(body.commit)) throw bad("malformed 'commit'");
    const against = pinned ?? headerCommit;
    if (against !== undefined && body.commit.toLowerCase() !== against.toLowerCase()) throw bad(`commit ${body.commit} differs from the pinned commit ${against}`);
    commit = body.commit;
  }
  const entries: FileEntry[] = [];
  const seen = new Set<string>();
  for (const item of body.files) {
    const e = item as { path?: unknown; size?: unknown; sha256?: unknown } | null;
    if (e === null || typeof e !== 'object' || typeof e.path !== 'string') throw bad('a file entry has no path');
    if (typeof e.size !== 'number' || !Number.isSafeInteger(e.size) || e.size < 0 || e.size > MAX_BODY_BYTES) throw bad(`file '${clean(e.path, 200)}': bad size`);
    if (typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/i.test(e.sha256)) throw bad(`file '${clean(e.path, 200)}': bad sha256`);
    const why = filePathViolation(e.path);
    if (why) throw new FetchError('CFG_INIT_ERR_UNSAFE_PATH', `refusing raw file path '${clean(e.path, 200)}': it ${why}`, { status: res.status });
    if (seen.has(e.path)) throw new FetchError('CFG_INIT_ERR_UNSAFE_PATH', `refusing raw file path '${clean(e.path, 200)}': it is listed twice`, { status: res.status });
    seen.add(e.path);
    entries.push({ path: e.path, size: e.size, sha256: e.sha256.toLowerCase() });
  }
  // A path that is also a folder of another (`a` and `a/b`) cannot be written.
  for (const { path } of entries) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      if (seen.has(parent)) throw new FetchError('CFG_INIT_ERR_UNSAFE_PATH', `refusing raw file path '${clean(path, 200)}': '${clean(parent, 200)}' is also a file`, { status: res.status });
    }
  }
  return { commit, entries };
}

/** Checks one raw file against its list entry (size and SHA-256, and the commit when sent). */
function checkFile(res: RawResponse, entry: FileEntry, pinned: string | undefined): FetchedFile {
  const bad = (what: string): FetchError =>
    new FetchError('CFG_INIT_ERR_BAD_RESPONSE', `bad response for file '${clean(entry.path, 200)}': ${what}`, { status: res.status });
  checkCommit(res, pinned, bad, false);
  if (mediaType(res.headers) === 'application/problem+json') throw bad("unexpected Content-Type 'application/problem+json'");
  if (res.body.length !== entry.size) throw bad(`size ${res.body.length} differs from the listed ${entry.size}`);
  const sha = createHash('sha256').update(res.body).digest('hex');
  if (sha !== entry.sha256) throw bad(`sha256 ${sha} differs from the listed ${entry.sha256}`);
  return { path: entry.path, body: res.body, sha256: sha };
}

/** Maps a final (non-retryable) HTTP status to an error code. */
function statusCode(status: number): ErrorCode {
  if (status === 400) return 'CFG_INIT_ERR_BAD_REQUEST';
  if (status === 401 || status === 403) return 'CFG_INIT_ERR_NOT_AUTHORIZED';
  if (status === 404) return 'CFG_INIT_ERR_NOT_FOUND';
  if (status === 422) return 'CFG_INIT_ERR_UNRENDERABLE';
  return 'CFG_INIT_ERR_BAD_RESPONSE';
}

/** State shared by every request of one fetch: one agent, one deadline, one retry budget. */
interface Session {
  readonly opts: FetchOptions;
  readonly deps: FetchDeps;
  readonly agent: https.Agent;
  readonly start: number;
  readonly deadlineAt: number;
  attempts: number;
  retries: number;
}

/**
 * One GET with the retry policy: retries transport errors, 5xx and 429 (honouring
 * `Retry-After`) with full-jitter backoff until the session deadline; any other status is
 * final; a 200 is handed to `check`, which returns the value or throws a final error.
 *
 * @param target - what is fetched, for messages (`format properties`, `file list`, ...).
 * @param ref - the ref the request asks for (for messages).
 */
async function getWithRetry<T>(s: Session, url: URL, accept: string, target: string, ref: string | undefined, check: (res: RawResponse) => T): Promise<T> {
  const { opts, deps } = s;
  let last: Retryable | undefined;
  let suspects = 0;
  for (;;) {
    const remaining = s.deadlineAt - deps.now();
    if (remaining <= 0) break;
    s.attempts += 1;
    const outcome = await requestOnce(url, accept, s.agent, Math.min(opts.timeoutMs, remaining));
    let result: Retryable | FetchError | { value: T };
    if ('err' in outcome) {
      result = classifyTransportError(outcome.err, outcome.reused);
    } else {
      const { res } = outcome;
      if (res.status === 200) {
        result = { value: check(res) };
      } else if (res.status === 429 || (res.status >= 500 && res.status <= 599)) {
        const p = problemOf(res);
        result = new Retryable(`HTTP ${res.status}${p.code ? ` ${p.code}` : ''}`, parseRetryAfter(header(res.headers, 'retry-after'), deps.now()));
      } else {
        const p = problemOf(res);
        const what = `HTTP ${res.status}${p.code ? ` ${p.code}` : ''}${p.text ? `: ${p.text}` : ''}`;
        const subject = `app '${opts.app}'${ref !== undefined ? ` at ref '${ref}'` : ''}`;
        result = new FetchError(statusCode(res.status), `config-service refused ${subject} (${target}): ${what}`, {
          status: res.status,
          ...(p.code ? { problemCode: p.code } : {}),
        });
      }
    }
    if (result instanceof FetchError) throw result;
    if (!(result instanceof Retryable)) return result.value;
    last = result;
    suspects = result.suspectRejection ? suspects + 1 : 0;
    if (suspects >= SUSPECT_RESET_LIMIT) {
      throw new FetchError(
        'CFG_INIT_ERR_NOT_AUTHORIZED',
        `the server closed ${suspects} fresh connections in a row right after the TLS handshake without answering (${result.cause}); it most likely rejects the client certificate: check ${label('cert')} and that the service trusts its CA`,
        { cause: result },
      );
    }
    let delay = backoffDelay(s.retries, deps.random);
    if (result.retryAfterMs !== undefined) delay = Math.max(delay, result.retryAfterMs);
    if (deps.now() + delay >= s.deadlineAt) break;
    s.retries += 1;
    deps.onRetry?.({ attempt: s.attempts, target, cause: result.cause, delayMs: delay });
    await deps.sleep(delay);
  }
  const hint = suspects > 0 ? ' (the server closed the connection without answering: it may be rejecting the client certificate)' : '';
  const elapsed = deps.now() - s.start;
  throw new FetchError(
    'CFG_INIT_ERR_UNAVAILABLE',
    `config-service unavailable: gave up after ${s.attempts} attempt(s) in ${elapsed} ms (deadline ${opts.deadlineMs} ms); last error: ${last?.cause ?? 'deadline reached before any attempt'}${hint}`,
    { cause: last },
  );
}

/**
 * Fetches one application's configuration, all at one commit: the environment map first
 * (when `envMap`), then every requested format, then the raw files (when `files`).
 *
 * The first answer is fetched at `opts.ref` (or the default branch); its `Config-Commit`
 * pins every further request (`ref=<commit>`). Every answer is checked (status, commit,
 * content type, UTF-8, JSON syntax, non-empty unless `allowEmpty`; raw files: safe paths,
 * size and SHA-256) before this resolves, so the caller can publish all or nothing.
 *
 * @throws {@link FetchError} with a code that decides the exit code (64, 65, 66, 69, 77).
 */
export async function fetchConfig(opts: FetchOptions, deps: FetchDeps = realFetchDeps): Promise<FetchResult> {
  const secureContext = secureContextOf(opts.tls);
  // One keep-alive agent: every request rides on one TLS session.
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, secureContext });
  const start = deps.now();
  const s: Session = { opts, deps, agent, start, deadlineAt: start + opts.deadlineMs, attempts: 0, retries: 0 };
  const naming = opts.envNaming ?? 'standard';
  let pinned: string | undefined;
  const documents: FetchedDocument[] = [];
  let env: FetchedEnv | undefined;
  let files: FetchedFile[] | undefined;
  try {
    if (opts.envMap === true) {
      const ref = opts.ref;
      const url = configUrl(opts.server, opts.app, opts.profiles, 'env', ref, naming);
      env = await getWithRetry(s, url, 'application/json', 'environment map', ref, (res) => checkEnvMap(res, undefined, opts.allowEmpty));
      pinned = env.commit;
    }
    for (const format of opts.formats) {
      const ref = pinned ?? opts.ref;
      const url = configUrl(opts.server, opts.app, opts.profiles, format, ref, naming);
      const doc = await getWithRetry(s, url, ACCEPT[format], `format ${format}`, ref, (res) => checkDocument(res, format, pinned, opts.allowEmpty));
      documents.push(doc);
      pinned ??= doc.commit;
    }
    if (opts.files === true) {
      const ref = pinned ?? opts.ref;
      const list = await getWithRetry(s, filesListUrl(opts.server, opts.app, opts.profiles, ref), 'application/json', 'file list', ref, (res) => checkFileList(res, pinned));
      pinned ??= list.commit;
      if (pinned === undefined) throw new FetchError('CFG_INIT_ERR_BAD_RESPONSE', 'bad response for the file list: no commit (neither Config-Commit nor a commit field)');
      const at = pinned;
      files = [];
      for (const entry of list.entries) {
        const url = fileUrl(opts.server, opts.app, entry.path, opts.profiles, at);
        files.push(await getWithRetry(s, url, 'application/octet-stream, */*;q=0.5', `file '${clean(entry.path, 200)}'`, at, (res) => checkFile(res, entry, at)));
      }
    }
  } finally {
    agent.destroy();
  }
  return { commit: pinned ?? '', documents, env: env?.env, envSha256: env?.sha256, files, attempts: s.attempts };
}
