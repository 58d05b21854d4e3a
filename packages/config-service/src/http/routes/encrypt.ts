/**
 * Secrets on the API listener (SPEC §2.5, §5.2): loads the keyring once at start-up,
 * shares it as `app.secretsKeyring` (for the config and Spring routes, which decrypt or
 * redact with it), and serves `POST /v1/encrypt`.
 *
 * `POST /v1/encrypt` (scope `encrypt`):
 * - body `application/json` `{ "value": "<plaintext>", "key"?: "<key id>", "app"?: "<app>",
 *   "shared"?: true }`, or `text/plain` whose whole body is the plaintext (`?key=`,
 *   `?app=`, `?shared=true` in the query);
 * - `app` makes a value bound to that application (envelope version 2, `{app:<app>}`),
 *   `shared` one bound to the shared `application*` documents (`{shared}`); neither makes
 *   an unbound version-1 value (docs/secrets.md, "Binding");
 * - access: a value bound to `app` needs `encrypt` on that app (a grant's `apps` or a
 *   token's `apps` claim must match it); a shared or unbound value needs `encrypt` on
 *   every app (`apps: ['*']`). Checked before the body is read when the app is in the
 *   query or the caller holds `encrypt` nowhere (403, never 413/400);
 * - answers 200 `{ "cipher": "{cipher}{key:<id>}[{app:<app>}|{shared}]<base64>" }` with
 *   `Cache-Control: no-store`;
 * - 400 `invalid_request` (body shape, `app` with `shared`), 400 `invalid_name` (app), 400
 *   `secret_key_unknown` (the key id is not configured, or no key is), 403 `forbidden`,
 *   413 (body over {@link ENCRYPT_BODY_LIMIT} bytes), 415 (other media types).
 * The audit event has action `secrets.encrypt`, the app of a bound value, the key id
 * (`secretKeyIds`), no secret key names and never the value; the application log records
 * only the key id and binding.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { mayHoldScope } from '../../auth/policy.js';
import { CFG_ERR_FORBIDDEN, CFG_ERR_INVALID_REQUEST } from '../../errors.js';
import { appBinding, encryptValue, KEY_ID_PATTERN, SHARED_BINDING, type SecretBinding } from '../../secrets/envelope.js';
import { loadKeyring, type Keyring, type SecretsSettings } from '../../secrets/keyring.js';
import { requireAccess } from '../plugins/auth.js';
import { assertName } from '../names.js';

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

const USAGE = 'send {"value": string, "key"?: string, "app"?: string, "shared"?: true} as application/json, or the value as text/plain';

type EncryptQuery = { key?: unknown; app?: unknown; shared?: unknown };

/** One query parameter, given at most once. */
function queryString(query: EncryptQuery, name: keyof EncryptQuery): string | undefined {
  const v = query[name];
  if (v !== undefined && typeof v !== 'string') throw new CFG_ERR_INVALID_REQUEST(`${name} must be given once`);
  return v;
}

/** The app of `?app=`, validated; `undefined` when absent. */
function queryApp(query: EncryptQuery): string | undefined {
  const app = queryString(query, 'app');
  if (app !== undefined) assertName('application', app);
  return app;
}

function parseBody(request: FastifyRequest<{ Querystring: EncryptQuery }>): { value: string; key?: string; binding?: SecretBinding } {
  const body: unknown = request.body;
  const query = request.query;
  const queryKey = queryString(query, 'key');
  let app: unknown = queryApp(query);
  const queryShared = queryString(query, 'shared');
  if (queryShared !== undefined && queryShared !== 'true' && queryShared !== 'false') throw new CFG_ERR_INVALID_REQUEST('shared must be true or false');
  let shared: unknown = queryShared === 'true';
  let value: unknown;
  let key: unknown = queryKey;
  if (typeof body === 'string') {
    value = body;
  } else if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
    const o = body as Record<string, unknown>;
    const extra = Object.keys(o).filter((k) => k !== 'value' && k !== 'key' && k !== 'app' && k !== 'shared');
    if (extra.length > 0) throw new CFG_ERR_INVALID_REQUEST(`unknown body member(s); ${USAGE}`);
    value = o.value;
    if (o.key !== undefined) {
      if (queryKey !== undefined && queryKey !== o.key) throw new CFG_ERR_INVALID_REQUEST('the key in the body and in the query differ');
      key = o.key;
    }
    if (o.app !== undefined) {
      if (typeof o.app !== 'string') throw new CFG_ERR_INVALID_REQUEST(USAGE);
      if (app !== undefined && app !== o.app) throw new CFG_ERR_INVALID_REQUEST('the app in the body and in the query differ');
      assertName('application', o.app);
      app = o.app;
    }
    if (o.shared !== undefined) {
      if (typeof o.shared !== 'boolean') throw new CFG_ERR_INVALID_REQUEST('shared must be true or false');
      shared = shared === true || o.shared;
    }
  }
  if (typeof value !== 'string') throw new CFG_ERR_INVALID_REQUEST(USAGE);
  if (key !== undefined && (typeof key !== 'string' || !KEY_ID_PATTERN.test(key))) {
    throw new CFG_ERR_INVALID_REQUEST('key must match ^[A-Za-z0-9._-]{1,64}$');
  }
  if (app !== undefined && shared === true) throw new CFG_ERR_INVALID_REQUEST('give app or shared, not both');
  const binding = app !== undefined ? appBinding(app as string) : shared === true ? SHARED_BINDING : undefined;
  return { value, ...(key !== undefined && { key: key as string }), ...(binding !== undefined && { binding }) };
}

async function encryptRoutes(app: FastifyInstance, opts: EncryptRoutesOptions): Promise<void> {
  const keyring = opts.keyring ?? loadKeyring(opts.secrets);
  app.decorate('secretsKeyring', keyring);

  app.post<{ Querystring: EncryptQuery }>(
    '/v1/encrypt',
    {
      bodyLimit: ENCRYPT_BODY_LIMIT,
      // Authorize before the body is read, so a caller without `encrypt` gets 403, never 413/400.
      onRequest: async (request) => {
        request.audit.action = 'secrets.encrypt';
        const forApp = queryApp(request.query as EncryptQuery);
        if (forApp !== undefined) {
          request.audit.app = forApp;
          requireAccess(request, 'encrypt', forApp);
          return;
        }
        // The app may be in the body: refuse now only a caller who may encrypt for no app at all.
        const gate = mayHoldScope(request.server.accessPolicy, request.principal, 'encrypt');
        if (!gate.allowed) {
          request.auditReason = gate.rule;
          throw new CFG_ERR_FORBIDDEN(gate.rule);
        }
      },
    },
    async (request, reply) => {
      const { value, key, binding } = parseBody(request);
      if (binding !== undefined && binding !== SHARED_BINDING) {
        const boundApp = binding.slice('app:'.length);
        request.audit.app = boundApp;
        requireAccess(request, 'encrypt', boundApp);
      } else {
        // Shared and unbound values are readable by every application: `encrypt` on all apps.
        requireAccess(request, 'encrypt');
      }
      const encryptionKey = keyring.encryptionKey(key);
      const cipher = encryptValue(value, encryptionKey, binding);
      request.audit.secretKeyIds = [encryptionKey.id];
      request.log.info({ keyId: encryptionKey.id, binding: binding ?? 'unbound' }, 'value encrypted');
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
