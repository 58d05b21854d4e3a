/**
 * Logger options shared by the API and management listeners (pino). Redaction paths are
 * fixed here, never built from input (pino docs, "Redaction").
 */
import type { LoggerOptions } from 'pino';

/** Paths censored in every log line: credentials in headers and anything named like a secret. */
export const REDACT_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'headers.authorization',
  'password',
  'token',
  '*.password',
  '*.token',
  'credentials',
  '*.credentials',
];

/** pino options for `level`: JSON lines to stdout with redaction. */
export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: [...REDACT_PATHS], censor: '[Redacted]' },
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    formatters: { level: (label) => ({ level: label }) },
  };
}
