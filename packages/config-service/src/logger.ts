/**
 * Logger options shared by the API and management listeners (pino). Redaction paths are
 * fixed here, never built from input (pino docs, "Redaction"), and applied to every
 * logger the service writes with, also one injected by a caller (`startService`).
 *
 * What is censored: credentials in request and response headers (`Authorization`,
 * `Proxy-Authorization`, `Cookie`, `Set-Cookie`), anything named like a credential
 * (`password`, `passphrase`, `token`, `secret`, `credentials`, private keys), and anything
 * named like a configuration value (`value`, `values`, `plaintext`, `decrypted`), up to
 * two levels deep. Code must still never put a configuration value in a log line: this is
 * the second line of defence, not the first.
 */
import type { LoggerOptions } from 'pino';

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

/** Paths censored in every log line (pino `redact.paths` syntax). */
export const REDACT_PATHS: readonly string[] = Object.freeze([
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers["proxy-authorization"]',
  'headers.cookie',
  '*.headers.authorization',
  ...CREDENTIAL_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]),
]);

/** The text that replaces a censored value. */
export const REDACTED = '[Redacted]';

/** pino `redact` options with {@link REDACT_PATHS}. */
export function redactOptions(): { paths: string[]; censor: string } {
  return { paths: [...REDACT_PATHS], censor: REDACTED };
}

/** pino options for `level`: JSON lines to stdout with redaction. */
export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: redactOptions(),
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    formatters: { level: (label) => ({ level: label }) },
  };
}
