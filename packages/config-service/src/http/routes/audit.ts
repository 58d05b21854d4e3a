/**
 * `GET /v1/audit` (SPEC §5.2, scope `audit:read`): filtered, paged audit events as
 * JSON (`{ events, nextCursor }`), NDJSON or CSV.
 *
 * `GET /v1/audit/checkpoints` (scope `audit:read`, issue 13): the signed checkpoints the
 * store keeps, oldest `seq` first, for an outside monitor (`config-service audit witness`)
 * to poll: `?after=<seq>` returns those with a higher `seq`. 404 `audit_checkpoints_off`
 * when the service signs none.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { checkpointJson } from '../../audit/checkpoint.js';
import { AUDIT_EXPORT_CONTENT_TYPES, formatAuditEvents } from '../../audit/format.js';
import { CFG_ERR_AUDIT_CHECKPOINTS_OFF } from '../../errors.js';
import { requireAccess } from '../plugins/auth.js';

const AuditQuerySchema = Type.Object(
  {
    app: Type.Optional(Type.String({ maxLength: 256 })),
    actor: Type.Optional(Type.String({ maxLength: 1024 })),
    action: Type.Optional(Type.String({ maxLength: 64 })),
    outcome: Type.Optional(Type.Union([Type.Literal('allowed'), Type.Literal('denied'), Type.Literal('error')])),
    // Checked by the stores' one parser (`audit/query.ts` parseInstant), as `audit query` is:
    // an RFC 3339 date-time, or a date alone (UTC midnight).
    since: Type.Optional(Type.String({ maxLength: 64, description: 'inclusive lower bound: an RFC 3339 date-time, or a date (UTC midnight)' })),
    until: Type.Optional(Type.String({ maxLength: 64, description: 'exclusive upper bound: an RFC 3339 date-time, or a date (UTC midnight)' })),
    commit: Type.Optional(Type.String({ pattern: '^[0-9a-f]{40}([0-9a-f]{24})?$', description: 'full commit id' })),
    requestId: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'exact request id (the Request-Id response header)' })),
    cursor: Type.Optional(Type.String({ maxLength: 256 })),
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
    format: Type.Union([Type.Literal('json'), Type.Literal('ndjson'), Type.Literal('csv')], { default: 'json' }),
  },
  { additionalProperties: false },
);

const CheckpointQuerySchema = Type.Object(
  {
    after: Type.Integer({ minimum: 0, default: 0, description: 'only checkpoints with a higher seq' }),
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
    format: Type.Union([Type.Literal('json'), Type.Literal('ndjson')], { default: 'json' }),
  },
  { additionalProperties: false },
);

/** Registers the audit query route and the checkpoint route. */
export default async function auditRoutes(app: FastifyInstance): Promise<void> {
  app.get<{ Querystring: Static<typeof AuditQuerySchema> }>('/v1/audit', { schema: { querystring: AuditQuerySchema } }, async (request, reply) => {
    request.audit.action = 'audit.read';
    requireAccess(request, 'audit:read');
    const { format, ...filters } = request.query;
    const page = await app.auditStore.query(filters);
    reply.header('cache-control', 'no-store');
    if (format === 'json') return page;
    if (page.nextCursor) reply.header('audit-next-cursor', page.nextCursor);
    return reply.type(AUDIT_EXPORT_CONTENT_TYPES[format]).send(formatAuditEvents(page.events, format));
  });

  app.get<{ Querystring: Static<typeof CheckpointQuerySchema> }>(
    '/v1/audit/checkpoints',
    { schema: { querystring: CheckpointQuerySchema } },
    async (request, reply) => {
      request.audit.action = 'audit.checkpoints';
      requireAccess(request, 'audit:read');
      if (!app.auditCheckpoints) throw new CFG_ERR_AUDIT_CHECKPOINTS_OFF();
      const { after, limit, format } = request.query;
      const checkpoints = await app.auditStore.checkpoints({ after, limit });
      reply.header('cache-control', 'no-store');
      if (format === 'json') return { checkpoints };
      return reply.type(AUDIT_EXPORT_CONTENT_TYPES.ndjson).send(checkpoints.map((c) => `${checkpointJson(c)}\n`).join(''));
    },
  );
}
