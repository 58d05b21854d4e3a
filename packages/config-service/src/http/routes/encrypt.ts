/**
 * Secrets on the API listener (SPEC §2.5, §5.2): loads the keyring once at start-up,
 * shares it as `app.secretsKeyring` (for the config and Spring routes, which decrypt or
 * redact with it), and serves `POST /v1/encrypt`.
 *
 * `POST /v1/encrypt` (scope `encrypt`; a request naming no app, so a grant needs
 * `apps: ['*']` and a token `apps: ['*']`):
 * - body `application/json` `{ "value": "<plaintext>", "key"?: "<key id>" }`, or
 *   `text/plain` whose whole body is the plaintext (key id in `?key=`);
 * - answers 200 `{ "cipher": "{cipher}{key:<id>}<base64>" }` with `Cache-Control: no-store`;
 * - 400 `invalid_request` (body shape), 400 `secret_key_unknown` (the key id is not
 *   configured, or no key is), 403 `forbidden`, 413 (body over {@link ENCRYPT_BODY_LIMIT}
 *   bytes), 415 (other media types).
 * The audit event has action `secrets.encrypt`, no app, no secret key names and never
 * the value; the application log records only the key id used.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CFG_ERR_INVALID_REQUEST } from '../../errors.js';
import { encryptValue, KEY_ID_PATTERN } from '../../secrets/envelope.js';
import { loadKeyring, type Keyring, type SecretsSettings } from '../../secrets/keyring.js';
import { requireAccess } from '../plugins/auth.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The secrets keyring (settings `secrets`); empty when no key is configured. */
    secretsKeyring: Keyring;
  }
}

/** Largest accepted request body of `POST /v1/encrypt`, bytes (64 KiB). */
export const ENCRYPT_BODY_LIMIT = 64 * 1024;

/** Options: the `secrets` settings (read at registration), or a ready keyring (tests). */
export interface EncryptRoutesOptions {
  secrets?: SecretsSettings;
  keyring?: Keyring;
}

const USAGE = 'send {"value": string, "key"?: string} as application/json, or the value as text/plain';

function parseBody(request: FastifyRequest<{ Querystring: { key?: unknown } }>): { value: string; key?: string } {
  const body: unknown = request.body;
  const queryKey = request.query.key;
  if (queryKey !== undefined && typeof queryKey !== 'string') throw new CFG_ERR_INVALID_REQUEST('key must be given once');
  let value: unknown;
  let key: unknown = queryKey;
  if (typeof body === 'string') {
    value = body;
  } else if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
    const o = body as Record<string, unknown>;
    const extra = Object.keys(o).filter((k) => k !== 'value' && k !== 'key');
    if (extra.length > 0) throw new CFG_ERR_INVALID_REQUEST(`unknown body member(s); ${USAGE}`);
    value = o.value;
    if (o.key !== undefined) {
      if (queryKey !== undefined && queryKey !== o.key) throw new CFG_ERR_INVALID_REQUEST('the key in the body and in the query differ');
      key = o.key;
    }
  }
  if (typeof value !== 'string') throw new CFG_ERR_INVALID_REQUEST(USAGE);
  if (key !== undefined && (typeof key !== 'string' || !KEY_ID_PATTERN.test(key))) {
    throw new CFG_ERR_INVALID_REQUEST('key must match ^[A-Za-z0-9._-]{1,64}$');
  }
  return { value, ...(key !== undefined && { key: key as string }) };
}

async function encryptRoutes(app: FastifyInstance, opts: EncryptRoutesOptions): Promise<void> {
  const keyring = opts.keyring ?? loadKeyring(opts.secrets);
  app.decorate('secretsKeyring', keyring);

  app.post<{ Querystring: { key?: unknown } }>(
    '/v1/encrypt',
    {
      bodyLimit: ENCRYPT_BODY_LIMIT,
      // Authorize before the body is read, so a caller without `encrypt` gets 403, never 413/400.
      onRequest: async (request) => {
        request.audit.action = 'secrets.encrypt';
        requireAccess(request, 'encrypt');
      },
    },
    async (request, reply) => {
      const { value, key } = parseBody(request);
      const encryptionKey = keyring.encryptionKey(key);
      const cipher = encryptValue(value, encryptionKey);
      request.log.info({ keyId: encryptionKey.id }, 'value encrypted');
      reply.header('cache-control', 'no-store');
      return { cipher };
    },
  );
}

/**
 * The secrets plugin: keyring (`app.secretsKeyring`) and `POST /v1/encrypt`.
 * Register after the audit and auth plugins and before the routes that use the keyring.
 *
 * @throws CFG_ERR_SETTINGS_INVALID at registration when a key of `secrets` is unusable
 *   (see `loadKeyring`).
 */
export default fp(encryptRoutes, { name: 'secrets', fastify: '5.x', dependencies: ['audit', 'auth'] });
