/**
 * `GET /v1/apps/{app}/config` (SPEC §5.1) and `GET /v1/apps` (every repository, SPEC §4).
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { FORMATS, MEDIA_TYPES, type Format } from '../../config/types.js';
import { CFG_ERR_INVALID_REQUEST, problemCode } from '../../errors.js';
import { readableApps } from '../../auth/policy.js';
import { secretsStep } from '../../secrets/apply.js';
import { readTarget } from '../target.js';
import { secretsModeFor } from '../secrets-mode.js';
import { answerOrWait, parseWait, WAIT_PATTERN } from '../long-poll.js';

const ConfigParams = Type.Object({ app: Type.String() });
const ConfigQuery = Type.Object(
  {
    profile: Type.Optional(Type.String({ maxLength: 1024 })),
    ref: Type.Optional(Type.String({ maxLength: 1024 })),
    format: Type.Union(FORMATS.map((f) => Type.Literal(f)), { default: 'json' }),
    /** Resolve `${...}` placeholders and check the schema (SPEC §2.2, §2.4); `false` serves them as written. */
    resolve: Type.Boolean({ default: true }),
    /** Environment-name rule of `env`/`dotenv` (SPEC §8): `standard`, or Spring Boot's relaxed binding. */
    envNaming: Type.Union([Type.Literal('standard'), Type.Literal('spring')], { default: 'standard' }),
    /** With format=json: also where each value came from and what it overrode (secrets masked). */
    explain: Type.Boolean({ default: false }),
    /** Long-poll (with `If-None-Match`): hold the answer until it changes, at most this long (`30s`, `5m`, `500ms`; no unit = seconds). */
    wait: Type.Optional(Type.String({ pattern: WAIT_PATTERN })),
  },
  { additionalProperties: false },
);

/** A rendered response, cached by everything that shapes it (see `cacheKey`). */
interface Rendered {
  body: Buffer;
  etag: string;
  mediaType: string;
  propertyCount: number;
  secretKeys: string[];
  /** Ids of the keys that decrypted the secrets served. */
  secretKeyIds: string[];
}

/** Options of the config routes. */
export interface ConfigRoutesOptions {
  /** Rendered responses kept in memory (SPEC §11: warm reads skip Git and rendering); 0 turns the cache off. */
  cacheEntries: number;
}

/** The ETag of a cache key: a strong tag of 32 base64url characters of its SHA-256. */
export function etagOfKey(key: string): string {
  return `"${createHash('sha256').update(key).digest('base64url').slice(0, 32)}"`;
}

/** UTF-8 bytes of `text` in a Buffer of their own (a cached body must not pin a slab of Buffer's shared pool). */
function unpooled(text: string): Buffer {
  const body = Buffer.allocUnsafeSlow(Buffer.byteLength(text, 'utf8'));
  body.write(text, 'utf8');
  return body;
}

/** Registers the configuration routes. */
export default async function configRoutes(app: FastifyInstance, opts: ConfigRoutesOptions): Promise<void> {
  const cache = opts.cacheEntries > 0 ? new LRUCache<string, Rendered>({ max: opts.cacheEntries }) : undefined;
  /** Renders in progress, so concurrent misses of one key (a wake of many waiters) render once. */
  const rendering = new Map<string, Promise<Rendered>>();

  app.get<{ Params: Static<typeof ConfigParams>; Querystring: Static<typeof ConfigQuery> }>(
    '/v1/apps/:app/config',
    { schema: { params: ConfigParams, querystring: ConfigQuery } },
    async (request, reply) => {
      const format = request.query.format as Format;
      const target = await readTarget(request, {
        action: 'config.read',
        format,
        app: request.params.app,
        profile: request.query.profile,
        ref: request.query.ref,
      });
      const { app: appName, profiles, store } = target;
      const { resolve, envNaming, explain } = request.query;
      if (explain && format !== 'json') throw new CFG_ERR_INVALID_REQUEST('explain=true is only available with format=json');
      // `config-init exec` asks for format=env with Accept: application/json: the variables as a JSON object.
      const envMap = (format === 'env' || format === 'dotenv') && /\bapplication\/json\b/.test(request.headers.accept ?? '');
      // An explanation never shows secrets, whoever asks.
      const mode = explain ? 'redact' : secretsModeFor(request, appName, profiles);
      const options = [appName, profiles.join(','), format, resolve ? 'resolve' : 'raw', envNaming, envMap ? 'map' : 'text', mode].join('\0');
      // The answer depends on the documents the application reads and on the options, not on
      // the commit: a commit that leaves them as they were keeps the ETag and the cache entry.
      // An explanation names the commit of each origin, so it depends on the commit too.
      const keyAt = async (commit: string): Promise<string> =>
        [store.name, await store.reader.dependencyKey(commit, appName, profiles, { documents: true }), options, explain ? `explain@${commit}` : ''].join('\0');
      const produce = async (commit: string): Promise<Rendered> => {
        const key = await keyAt(commit);
        const hit = cache?.get(key);
        if (hit) return hit;
        let pending = rendering.get(key);
        if (pending === undefined) {
          pending = (async () => {
            const { config, text, secretKeys, secretKeyIds } = await store.reader.readRendered(commit, appName, profiles, format, {
              resolve,
              envNaming,
              envMap,
              explain,
              // Placeholders over secrets: composed with the plaintext (decrypt), refused (redact), masked (explain).
              secrets: secretsStep(explain ? 'explain' : mode, app.secretsKeyring),
            });
            const rendered: Rendered = {
              body: unpooled(text),
              etag: etagOfKey(key),
              mediaType: envMap ? 'application/json; charset=utf-8' : MEDIA_TYPES[format],
              propertyCount: config.merged.size,
              secretKeys,
              secretKeyIds,
            };
            cache?.set(key, rendered);
            return rendered;
          })();
          rendering.set(key, pending);
          const done = (): void => {
            rendering.delete(key);
          };
          pending.then(done, done);
        }
        return pending;
      };
      const { result: rendered, commit, notModified } = await answerOrWait(request, reply, target, {
        waitMs: parseWait(request.query.wait, app.longPoll.options.maxWaitMs),
        group: `config\0${store.name}\0${options}\0${explain ? 'explain' : ''}`,
        produce,
        etagAt: async (at) => etagOfKey(await keyAt(at)),
      });
      request.audit.secretKeys = rendered.secretKeys;
      request.audit.secretKeyIds = rendered.secretKeyIds;
      reply
        .header('config-commit', commit)
        .header('etag', rendered.etag)
        .header('cache-control', 'no-store')
        .header('config-property-count', String(rendered.propertyCount));
      if (notModified) return reply.code(304).send();
      return reply.type(rendered.mediaType).header('vary', 'accept').send(rendered.body);
    },
  );

  app.get('/v1/apps', async (request): Promise<AppsList> => {
    request.audit.action = 'apps.list';
    const registry = app.repositories;
    const repositories: AppsList['repositories'] = [];
    const all = new Set<string>();
    // Each repository at its default branch; an application is listed under the entry that
    // serves it (first match), never under one whose globs do not claim it.
    for (const store of registry.stores()) {
      let commit: string;
      try {
        ({ commit } = await store.resolve());
      } catch (err) {
        repositories.push({ name: store.name, error: problemCode((err as { code?: string }).code ?? '') });
        continue;
      }
      const served = (await store.reader.listApps(commit)).filter((a) => {
        const entry = registry.entryFor(a);
        return entry !== undefined && (entry.store === store || entry.template?.peek(a) === store);
      });
      const apps = readableApps(app.accessPolicy, request.principal, served);
      for (const a of apps) all.add(a);
      repositories.push({ name: store.name, commit, apps });
    }
    const apps = [...all].sort();
    const single = registry.single;
    if (single !== undefined && repositories[0]?.commit !== undefined) request.audit.commit = repositories[0].commit;
    request.auditReason = apps.length ? 'listed' : 'none_readable';
    return { apps, ...(single !== undefined && repositories[0]?.commit !== undefined && { commit: repositories[0].commit }), repositories };
  });
}

/** Body of `GET /v1/apps`. */
export interface AppsList {
  /** Every application the caller may read, sorted. */
  apps: string[];
  /** The commit read, when exactly one repository is configured (as before several were). */
  commit?: string;
  /** Per repository (static ones, then the per-application ones mirrored now): its commit and applications, or the problem code that kept it from being read. */
  repositories: Array<{ name: string; commit?: string; apps?: string[]; error?: string }>;
}
