/**
 * Logger options shared by the API and management listeners (pino), applied to every
 * logger the service writes with, also one injected by a caller (`startService`).
 *
 * Redaction by construction (pino docs, "Serializers"): a log line holds what the code put
 * in it, and pino runs a serializer only for a top-level key that has one, so a line
 * without such a key (the per-request audit line, most operational lines) costs nothing
 * extra. Path-based redaction (`redact.paths`) is not used: it scans every line.
 *
 * - A key named like a credential or a configuration value (`authorization`, `password`,
 *   `passphrase`, `token`, `secret`, `credentials`, private keys, `value`, `values`,
 *   `plaintext`, `decrypted`, ...) is written as {@link REDACTED} whatever it holds.
 * - `err` keeps its type, message, code, status and stack; its `data` and `cause` are
 *   copied with every credential-named key censored, at any depth.
 * - `req` keeps method, URL and peer address, never headers; `res` keeps the status
 *   code; `headers` keeps every header but `Authorization`, `Proxy-Authorization`,
 *   `Cookie` and `Set-Cookie`.
 * - Objects under the keys that may carry a settings or request object by mistake
 *   (`auth`, `repo`, `key`, `settings`, `options`, `config`, `data`, `body`, `query`,
 *   `params`, `payload`) are copied with credential-named keys censored, at any depth;
 *   strings and numbers under them are written as they are.
 *
 * Code must still never put a configuration value in a log line: this is the second line
 * of defence, not the first.
 */
import { pino, type DestinationStream, type LoggerOptions, type SerializerFn } from 'pino';

const CREDENTIAL_KEYS = [
  'authorization',
  'password',
  'passphrase',
  'token',
  'accessToken',
  'refreshToken',
  'secret',
  'clientSecret',
  'credentials',
  'privateKey',
  'keyPem',
  // decrypted or configuration values
  'value',
  'values',
  'plaintext',
  'decrypted',
];
const CREDENTIAL = new Set(CREDENTIAL_KEYS.map((k) => k.toLowerCase()));
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie']);

/** Top-level keys whose object values are copied with credential-named keys censored. */
const CONTAINER_KEYS = ['auth', 'repo', 'key', 'settings', 'options', 'config', 'data', 'body', 'query', 'params', 'payload'];

/** The text that replaces a censored value. */
export const REDACTED = '[Redacted]';

/** The keys censored wherever {@link scrub} looks (lower-case). */
export const CENSORED_KEYS: ReadonlySet<string> = CREDENTIAL;

/**
 * A copy of `value` in which every key named like a credential or a value (any case) holds
 * {@link REDACTED}, at any depth (at most 8 levels; deeper objects are replaced). Strings,
 * numbers and the like are returned as they are.
 */
export function scrub(value: unknown, depth = 0): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= 8) return '[Object]';
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  if (value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = CREDENTIAL.has(k.toLowerCase()) ? REDACTED : scrub(v, depth + 1);
  return out;
}

function headers(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = CREDENTIAL_HEADERS.has(k.toLowerCase()) ? REDACTED : v;
  return out;
}

function request(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const r = value as { method?: unknown; url?: unknown; ip?: unknown; socket?: { remoteAddress?: unknown; remotePort?: unknown } };
  return {
    method: r.method,
    url: r.url,
    ...(r.socket && { remoteAddress: r.socket.remoteAddress, remotePort: r.socket.remotePort }),
  };
}

function response(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  return { statusCode: (value as { statusCode?: unknown }).statusCode };
}

function error(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const e = value instanceof Error ? pino.stdSerializers.err(value) : value;
  const { type, message, code, statusCode, stack, ...rest } = e as Record<string, unknown>;
  return {
    ...(type !== undefined && { type }),
    ...(message !== undefined && { message }),
    ...(code !== undefined && { code }),
    ...(statusCode !== undefined && { statusCode }),
    ...(stack !== undefined && { stack }),
    ...(scrub(rest) as object),
  };
}

const censor: SerializerFn = () => REDACTED;
const container: SerializerFn = (v: unknown) => scrub(v);

/** pino `serializers` that redact by construction (see the module header). */
export function logSerializers(): Record<string, SerializerFn> {
  const out: Record<string, SerializerFn> = { err: error, error, req: request, res: response, headers };
  for (const k of CONTAINER_KEYS) out[k] = container;
  for (const k of CREDENTIAL_KEYS) out[k] = censor;
  return out;
}

/** pino options for `level`: JSON lines to stdout, with {@link logSerializers}. */
export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    serializers: logSerializers(),
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    formatters: { level: (label) => ({ level: label }) },
  };
}

/**
 * Standard output for the service's log lines, written asynchronously: while one write is
 * in flight the next lines gather and leave in one `write()` (one system call for many
 * requests under load, at once when idle). Lines still buffered are written synchronously
 * when the process exits (pino's exit handler).
 */
export function logDestination(): DestinationStream {
  return pino.destination({ dest: 1, sync: false });
}
