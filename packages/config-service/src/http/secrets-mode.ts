/**
 * Whether a request gets secrets decrypted or redacted (SPEC §2.5).
 */
import type { FastifyRequest } from 'fastify';
import { decide } from './plugins/auth.js';
import type { SecretsMode } from '../secrets/apply.js';

/**
 * `{cipher}` values are decrypted for a caller allowed `secrets:read` on the application
 * and every profile asked for, and redacted (`"<redacted>"`) for anyone else. Redaction is
 * not a denial: the rest of the configuration is still served.
 */
export function secretsModeFor(request: FastifyRequest, app: string, profiles: readonly string[]): SecretsMode {
  return decide(request, 'secrets:read', app, profiles).allowed ? 'decrypt' : 'redact';
}
