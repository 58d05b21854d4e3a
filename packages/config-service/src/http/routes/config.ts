/**
 * `GET /v1/apps/{app}/config` (SPEC §5.1) and `GET /v1/apps`.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { render } from '../../config/render.js';
import { FORMATS, MEDIA_TYPES, type Format } from '../../config/types.js';
import { readableApps } from '../../auth/policy.js';
import { requireAccess } from '../plugins/auth.js';
import { assertName, checkRef, parseProfiles } from '../names.js';

const ConfigParams = Type.Object({ app: Type.String() });
const ConfigQuery = Type.Object(
  {
    profile: Type.Optional(Type.String({ maxLength: 1024 })),
    ref: Type.Optional(Type.String({ maxLength: 1024 })),
    format: Type.Union(FORMATS.map((f) => Type.Literal(f)), { default: 'json' }),
  },
  { additionalProperties: false },
);

/** A rendered response, cached by (commit, app, profiles, format). */
interface Rendered {
  body: Buffer;
  etag: string;
  propertyCount: number;
}

/** Options of the config routes. */
export interface ConfigRoutesOptions {
  /** Rendered responses kept in memory (SPEC §11: warm reads skip Git and rendering). */
  cacheEntries: number;
}

/** Registers the configuration routes. */
export default async function configRoutes(app: FastifyInstance, opts: ConfigRoutesOptions): Promise<void> {
  const cache = new LRUCache<string, Rendered>({ max: Math.max(1, opts.cacheEntries) });

  app.get<{ Params: Static<typeof ConfigParams>; Querystring: Static<typeof ConfigQuery> }>(
    '/v1/apps/:app/config',
    { schema: { params: ConfigParams, querystring: ConfigQuery } },
    async (request, reply) => {
      const audit = request.audit;
      audit.action = 'config.read';
      const { app: appName } = request.params;
      const format = request.query.format as Format;
      audit.format = format;
      assertName('application', appName);
      audit.app = appName;
      const profiles = parseProfiles(request.query.profile);
      audit.profiles = profiles;
      const ref = checkRef(request.query.ref);
      if (ref !== undefined) audit.ref = ref;

      requireAccess(request, 'config:read', appName, profiles);

      const { commit } = await app.gitStore.resolve(ref);
      audit.commit = commit;
      const key = `${commit}\0${appName}\0${profiles.join(',')}\0${format}`;
      let rendered = cache.get(key);
      if (!rendered) {
        const config = await app.gitStore.reader.read(commit, appName, profiles);
        const body = Buffer.from(render(config.merged, format), 'utf8');
        const etag = `"${createHash('sha256').update(key).digest('base64url').slice(0, 32)}"`;
        rendered = { body, etag, propertyCount: config.merged.size };
        cache.set(key, rendered);
      }
      reply
        .header('config-commit', commit)
        .header('etag', rendered.etag)
        .header('cache-control', 'no-store')
        .header('config-property-count', String(rendered.propertyCount));
      if (request.headers['if-none-match'] === rendered.etag) return reply.code(304).send();
      return reply.type(MEDIA_TYPES[format]).send(rendered.body);
    },
  );

  app.get('/v1/apps', async (request) => {
    request.audit.action = 'apps.list';
    const { commit } = await app.gitStore.resolve();
    request.audit.commit = commit;
    const apps = readableApps(app.accessPolicy, request.principal, await app.gitStore.reader.listApps(commit));
    request.auditReason = apps.length ? 'listed' : 'none_readable';
    return { apps, commit };
  });
}
