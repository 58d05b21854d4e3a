/**
 * The OpenAPI 3.1 document of the API listener (SPEC §5: `GET /openapi.json`, generated
 * from the route schemas). `@fastify/swagger` collects every route with its `params` and
 * `querystring` schemas; the table below adds what the routes do not declare (summaries,
 * responses with their media types, the problem codes of each error status, security).
 *
 * It only feeds the document: the `transform` hook changes the schema swagger reads, not
 * the route's own schema, so request validation and response serialization are exactly as
 * the routes define them (no `response` schema is added to any route).
 *
 * `GET /openapi.json` needs an authenticated caller like every other API route (a client
 * certificate or a JWT, no particular permission) and is audited as `openapi`; the same
 * document is committed as docs/openapi.json for readers without credentials.
 */
import { readFileSync } from 'node:fs';
import swagger from '@fastify/swagger';
import type { FastifyInstance, FastifySchema } from 'fastify';
import fp from 'fastify-plugin';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** RFC 9457 problem details, as every error of this API is sent (`application/problem+json`). */
export const PROBLEM_SCHEMA = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail', 'code', 'instance'],
  properties: {
    type: { type: 'string', description: '`urn:config-service:problem:<code>`' },
    title: { type: 'string', description: 'The HTTP status text' },
    status: { type: 'integer' },
    detail: { type: 'string', description: 'What was wrong and where; never a configuration value' },
    code: { type: 'string', description: 'Stable problem code (docs/errors.md)' },
    instance: { type: 'string', description: 'Request id; the audit event and log lines carry it' },
  },
} as const;

type Status = '200' | '202' | '304' | '400' | '401' | '403' | '404' | '409' | '413' | '415' | '422' | '429' | '503';

interface RouteDoc {
  summary: string;
  tag: 'configuration' | 'files' | 'spring' | 'audit' | 'secrets' | 'operations' | 'api';
  description?: string;
  /** Media types of the 200 (or 202) answer. */
  ok: { status?: '200' | '202'; types: string[]; description: string };
  notModified?: boolean;
  /** Problem codes by status, besides the ones every authenticated route may answer. */
  errors?: Partial<Record<Status, string[]>>;
  /** `webhook`: authenticated by the request's HMAC signature, not by certificate or token. */
  auth?: 'webhook';
  /** Query parameters of routes that declare no querystring schema. */
  query?: { name: string; description: string; schema: Record<string, unknown> }[];
}

const CONFIG_422 = ['document_invalid', 'unrenderable', 'unsupported_entry', 'placeholder', 'schema_violation', 'schema_invalid', 'secret_decrypt_failed'];
const READ_ERRORS: RouteDoc['errors'] = {
  '400': ['invalid_name', 'invalid_ref', 'invalid_request'],
  '403': ['forbidden'],
  '404': ['app_not_found', 'ref_not_found'],
  '503': ['repo_unavailable', 'repo_auth_failed'],
};
const FORMAT_TYPES = ['application/json', 'application/yaml', 'text/x-java-properties', 'text/x-shellscript', 'text/plain'];
/** Long-poll (`wait=`): what a held route may also answer. */
const WAIT_ERRORS: RouteDoc['errors'] = { '429': ['too_many_waiters'] };
const WAIT_NOTE = ' With `wait=<duration>` and `If-None-Match`, the answer is held until it differs from that ETag (a commit that does not change it wakes nobody) or the wait ends with 304 (docs/api.md, "Long-poll").';
const TEMPLATE_422 = [...CONFIG_422, 'template_invalid', 'secret_reference'];

/** Route → documentation, keyed `METHOD url` as Fastify registers the route. */
const ROUTES: Record<string, RouteDoc> = {
  'GET /v1/apps': { summary: 'The applications the caller may read', tag: 'configuration', ok: { types: ['application/json'], description: '`{ apps: string[], commit }`' }, errors: { '503': ['repo_unavailable', 'repo_auth_failed'] } },
  'GET /v1/apps/{app}/config': {
    summary: "An application's merged configuration",
    tag: 'configuration',
    description: `Rendered in \`format\`; headers \`Config-Commit\`, \`ETag\` (follows the content: the documents the application reads and the options, not the commit), \`Cache-Control: no-store\`; \`If-None-Match\` → 304. With \`format=env\` and \`Accept: application/json\`, a JSON map of environment names to values.${WAIT_NOTE}`,
    ok: { types: FORMAT_TYPES, description: 'The merged document' },
    notModified: true,
    errors: { ...READ_ERRORS, ...WAIT_ERRORS, '422': CONFIG_422 },
  },
  'GET /v1/apps/{app}/files': {
    summary: "The application's raw files",
    tag: 'files',
    description: `A weak \`ETag\` that follows the files; \`If-None-Match\` → 304.${WAIT_NOTE}`,
    ok: { types: ['application/json'], description: 'Paths, sizes and SHA-256 of the raw files' },
    notModified: true,
    errors: { ...READ_ERRORS, ...WAIT_ERRORS, '422': ['unsupported_entry'] },
  },
  'GET /v1/apps/{app}/files/{*}': {
    summary: 'One raw file, byte for byte',
    tag: 'files',
    description: `\`ETag\` is the blob id.${WAIT_NOTE}`,
    ok: { types: ['application/octet-stream', 'text/plain'], description: 'The file; the media type follows its extension' },
    notModified: true,
    errors: { ...READ_ERRORS, ...WAIT_ERRORS, '400': ['invalid_name', 'invalid_ref', 'invalid_request', 'invalid_path'], '404': ['app_not_found', 'ref_not_found', 'file_not_found'], '422': ['unsupported_entry'] },
  },
  'GET /v1/apps/{app}/templates': {
    summary: "The application's templates, rendered (docs/templates.md)",
    tag: 'files',
    description: `\`templates/**\` (and \`templates-<profile>/**\`) rendered with Liquid over the merged configuration; partials (a path segment starting with \`_\`) are not listed. A weak \`ETag\`; \`If-None-Match\` → 304.${WAIT_NOTE}`,
    ok: { types: ['application/json'], description: '`{ commit, templates: [{ path, size, sha256 }] }` of the rendered outputs' },
    notModified: true,
    errors: { ...READ_ERRORS, ...WAIT_ERRORS, '422': [...TEMPLATE_422, 'unsupported_entry'] },
  },
  'GET /v1/apps/{app}/templates/{*}': {
    summary: 'One template, rendered',
    tag: 'files',
    description: `Secrets are decrypted for callers allowed \`secrets:read\`; for anyone else a template that outputs one is 422 \`secret_reference\`.${WAIT_NOTE}`,
    ok: { types: ['application/octet-stream', 'text/plain'], description: 'The rendered template; the media type follows its extension' },
    notModified: true,
    errors: { ...READ_ERRORS, ...WAIT_ERRORS, '400': ['invalid_name', 'invalid_ref', 'invalid_request', 'invalid_path'], '404': ['app_not_found', 'ref_not_found', 'template_not_found'], '422': [...TEMPLATE_422, 'unsupported_entry'] },
  },
  'GET /v1/apps/{app}/history': { summary: "Commits that changed an application's documents", tag: 'configuration', ok: { types: ['application/json'], description: 'First-parent commits, newest first' }, errors: READ_ERRORS },
  'GET /v1/apps/{app}/diff': { summary: 'Key-level diff of the configuration between two refs (secrets masked)', tag: 'configuration', ok: { types: ['application/json'], description: 'Added, removed and changed keys' }, errors: { ...READ_ERRORS, '422': CONFIG_422 } },
  'GET /v1/audit': {
    summary: 'Query the audit log (scope audit:read)',
    tag: 'audit',
    ok: { types: ['application/json', 'application/x-ndjson', 'text/csv'], description: 'Events newest first, with a cursor for the next page' },
    errors: { '400': ['invalid_request'], '403': ['forbidden'] },
  },
  'GET /v1/audit/checkpoints': {
    summary: 'Signed checkpoints of the audit chain, for an outside witness (scope audit:read)',
    tag: 'audit',
    description: 'Oldest `seq` first; `after=<seq>` returns the later ones. See docs/audit.md.',
    ok: { types: ['application/json', 'application/x-ndjson'], description: '`{ checkpoints }`, or one checkpoint per line with `format=ndjson`' },
    errors: { '400': ['invalid_request'], '403': ['forbidden'], '404': ['audit_checkpoints_off'] },
  },
  'POST /v1/encrypt': {
    summary: 'Encrypt a value into `{cipher}…` (scope encrypt)',
    tag: 'secrets',
    ok: { types: ['application/json'], description: '`{ cipher }`' },
    errors: { '400': ['invalid_request', 'secret_key_unknown'], '403': ['forbidden'], '413': ['ctp_body_too_large'], '415': ['ctp_invalid_media_type'] },
    query: [{ name: 'key', description: 'Key id to encrypt with (default: `secrets.encryptKey`)', schema: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' } }],
  },
  'POST /v1/hooks/git': {
    summary: 'Push webhook (GitHub, GitLab, Gitea): fetch the repository now',
    tag: 'operations',
    description: 'Authenticated by the request signature (`X-Hub-Signature-256`, `X-Gitea-Signature` or `X-Gitlab-Token`) with the repository\'s `webhookSecretFile`; no certificate or token.',
    auth: 'webhook',
    ok: { status: '202', types: ['application/json'], description: 'The sync was requested' },
    errors: { '401': ['unauthenticated'], '404': ['webhook_disabled'], '413': ['ctp_body_too_large'] },
  },
  'POST /v1/admin/sync': { summary: 'Fetch the repository now and report what changed (scope admin)', tag: 'operations', ok: { types: ['application/json'], description: 'The commit and the refs that moved' }, errors: { '403': ['forbidden'], '503': ['repo_unavailable', 'repo_auth_failed'] } },
  'GET /openapi.json': { summary: 'This document', tag: 'api', ok: { types: ['application/json'], description: 'OpenAPI 3.1' } },
  'GET /{a}': {
    summary: 'Spring Cloud Config: `/{app}-{profiles}.{yml|yaml|properties|json}`',
    tag: 'spring',
    ok: { types: ['application/json', 'application/yaml', 'text/x-java-properties'], description: 'The merged document in the extension\'s format' },
    notModified: true,
    errors: { ...READ_ERRORS, '422': CONFIG_422 },
    query: [{ name: 'resolvePlaceholders', description: 'false: serve `${...}` as written', schema: { type: 'boolean', default: true } }],
  },
  'GET /{a}/{b}': {
    summary: 'Spring Cloud Config: `/{app}/{profiles}` (Environment JSON) or `/{label}/{app}-{profiles}.{ext}`',
    tag: 'spring',
    description: 'A `/` inside a label is written `(_)`.',
    ok: { types: ['application/json', 'application/yaml', 'text/x-java-properties'], description: "Spring's Environment (`name`, `profiles`, `label`, `version`, `state`, `propertySources`) or the document" },
    notModified: true,
    errors: { ...READ_ERRORS, '422': CONFIG_422 },
    query: [{ name: 'resolvePlaceholders', description: 'Document forms: false serves `${...}` as written', schema: { type: 'boolean', default: true } }],
  },
  'GET /{a}/{b}/{c}': {
    summary: 'Spring Cloud Config: `/{app}/{profiles}/{label}` (Environment JSON)',
    tag: 'spring',
    description: 'A `/` inside a label is written `(_)`.',
    ok: { types: ['application/json'], description: "Spring's Environment" },
    notModified: true,
    errors: { ...READ_ERRORS, '422': CONFIG_422 },
  },
};

/** What every route behind certificate/JWT authentication may also answer. */
const COMMON: Partial<Record<Status, string[]>> = {
  '400': ['invalid_request'],
  '401': ['unauthenticated'],
  '429': ['rate_limited'],
  '503': ['audit_unavailable'],
};

const DESCRIPTIONS: Record<Status, string> = {
  '200': 'OK',
  '202': 'Accepted',
  '304': 'Not modified (`If-None-Match` matched the `ETag`; with `wait=`, the wait ended without a change)',
  '400': 'Bad request',
  '401': 'No valid client certificate or token',
  '403': 'Not allowed by the access policy',
  '404': 'Not found',
  '409': 'Conflict',
  '413': 'Body too large',
  '415': 'Unsupported media type',
  '422': 'The configuration cannot be served',
  '429': 'Too many requests (`Retry-After`)',
  '503': 'Unavailable (`Retry-After` where it applies)',
};

/** The OpenAPI path of a Fastify url: `/v1/apps/:app/files/*` → `/v1/apps/{app}/files/{*}`. */
function openapiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\*$/, '{*}');
}

function responsesOf(doc: RouteDoc | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const ok = doc?.ok ?? { types: ['application/json'], description: 'OK' };
  const bodySchema = (t: string) => (t.endsWith('json') ? { type: 'object' } : { type: 'string' });
  out[ok.status ?? '200'] = { description: ok.description, content: Object.fromEntries(ok.types.map((t) => [t, { schema: bodySchema(t) }])) };
  if (doc?.notModified) out['304'] = { description: DESCRIPTIONS['304'], type: 'null' };
  const errors: Partial<Record<Status, Set<string>>> = {};
  const merge = (from: Partial<Record<Status, string[]>> | undefined) => {
    for (const [status, codes] of Object.entries(from ?? {}) as [Status, string[]][]) for (const c of codes) (errors[status] ??= new Set()).add(c);
  };
  if (doc?.auth !== 'webhook') merge(COMMON);
  else merge({ '429': ['rate_limited'], '503': ['audit_unavailable'] });
  merge(doc?.errors);
  for (const status of (Object.keys(errors) as Status[]).sort()) {
    const codes = [...errors[status]!].sort();
    out[status] = {
      description: `${DESCRIPTIONS[status]}. Problem codes: ${codes.map((c) => `\`${c}\``).join(', ')}`,
      content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
    };
  }
  return out;
}

/** Paths of the management listener (plain HTTP, its own port): documented, not served here. */
const MANAGEMENT_PATHS = {
  '/health/live': { summary: 'Liveness', ok: 'The process serves requests' },
  '/health/ready': { summary: 'Readiness: 503 until the first sync or a mirror on disk, or while the audit store fails', ok: 'Ready' },
  '/metrics': { summary: 'Prometheus metrics (text format)', ok: 'Metrics' },
  '/info': { summary: 'Version, commit, uptime', ok: 'Build information' },
};

async function openapiPlugin(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'config-service',
        version: pkg.version,
        description:
          "Each application's merged configuration from Git over mutual TLS, with an audit log. Every error is `application/problem+json` (RFC 9457) with a stable `code` (docs/errors.md); besides the codes listed per route, any request may get 404 `not_found`, 408 `request_timeout`, 414 `uri_too_long`, 431 `headers_too_large` or 500 `internal`. Callers authenticate with a client certificate (mutual TLS) or, without one, an `Authorization: Bearer` JWT. The management listener (plain HTTP, its own port) serves `/health/live`, `/health/ready`, `/metrics` and `/info`.",
      },
      components: {
        securitySchemes: {
          // OpenAPI 3.1's `mutualTLS` scheme (openapi-types does not list it yet, hence the cast below).
          mutualTLS: { type: 'mutualTLS' as 'openIdConnect', openIdConnectUrl: undefined as unknown as string, description: 'Client certificate; the application name comes from its URI SAN (SPIFFE), DNS SAN or CN' },
          bearerJWT: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'For tooling without a certificate; permissions from `scope` and `apps`' },
        },
        schemas: { Problem: PROBLEM_SCHEMA as unknown as Record<string, unknown> },
      },
      security: [{ mutualTLS: [] }, { bearerJWT: [] }],
      tags: [
        { name: 'configuration', description: 'Merged configuration, raw files, history and diff of an application' },
        { name: 'files', description: 'Raw files and rendered templates of an application' },
        { name: 'spring', description: 'Spring Cloud Config compatibility: the Environment JSON and plain-text resources' },
        { name: 'audit', description: 'The audit log: one event per request, hash-chained, with signed checkpoints' },
        { name: 'secrets', description: '{cipher} values: encryption with the service keys' },
        { name: 'operations', description: 'Freshness of the Git mirror' },
        { name: 'api', description: 'This document' },
        { name: 'management', description: 'Management listener: plain HTTP on its own port' },
      ],
    },
    transform: ({ schema, url, route }) => {
      const path = openapiPath(url);
      const method = (Array.isArray(route.method) ? route.method[0] : route.method) as string;
      const doc = ROUTES[`${method} ${path}`];
      const own = (schema ?? {}) as FastifySchema & Record<string, unknown>;
      const documented: Record<string, unknown> = {
        ...own,
        summary: doc?.summary ?? `${method} ${path}`,
        tags: [doc?.tag ?? 'api'],
        ...(doc?.description && { description: doc.description }),
        response: responsesOf(doc),
        ...(doc?.auth === 'webhook' && { security: [] }),
      };
      // A parameter with a default may be left out: the schema requires it only so the
      // default is filled in before the handler runs.
      const query = own.querystring as { properties?: Record<string, { default?: unknown }>; required?: string[] } | undefined;
      if (query?.required) documented.querystring = { ...query, required: query.required.filter((n) => query.properties?.[n]?.default === undefined) };
      if (doc?.query && !own.querystring) {
        documented.querystring = { type: 'object', properties: Object.fromEntries(doc.query.map((q) => [q.name, { ...q.schema, description: q.description }])) };
      }
      return { schema: documented as FastifySchema, url };
    },
    transformObject: (documentObject) => {
      const object = 'openapiObject' in documentObject ? documentObject.openapiObject : documentObject.swaggerObject;
      const paths = { ...(object.paths ?? {}) } as Record<string, unknown>;
      for (const [p, d] of Object.entries(MANAGEMENT_PATHS)) {
        paths[p] = {
          servers: [{ url: 'http://{host}:{port}', description: 'Management listener', variables: { host: { default: 'localhost' }, port: { default: '8081' } } }],
          get: { summary: d.summary, tags: ['management'], security: [], responses: { '200': { description: d.ok }, ...(p === '/health/ready' && { '503': { description: 'Not ready' } }) } },
        };
      }
      return { ...object, paths } as typeof object;
    },
  });
  app.get('/openapi.json', async (request, reply) => {
    request.audit.action = 'openapi';
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(app.swagger()));
  });
}

/**
 * The OpenAPI plugin: register it before the route plugins, so every route is collected.
 * Serves `GET /openapi.json` (authenticated, audited as `openapi`).
 */
export default fp(openapiPlugin, { name: 'openapi', fastify: '5.x', dependencies: ['audit'] });
