/**
 * Templates (SPEC §5.1, docs/templates.md): `GET /v1/apps/{app}/templates` lists an
 * application's rendered templates and `GET /v1/apps/{app}/templates/{path}` serves one.
 *
 * Templates live in `<app>/templates/**`, overlaid by `<app>/templates-<profile>/**` for
 * each profile asked for (a later profile wins by path), in both layouts; files with a
 * path segment starting with `_` are partials (included, never served). They are rendered
 * with Liquid (`config/templates.ts`) over the application's merged configuration (after
 * placeholders and the schema check, like `GET /v1/apps/{app}/config`). Secrets are
 * decrypted for callers allowed `secrets:read`; for anyone else a template that outputs a
 * secret is 422 `secret_reference` (templates that output none are served).
 *
 * ETags and the rendered cache follow the content: the documents the application reads, the
 * files of its templates folders and the secrets mode, never the commit alone. Both routes
 * accept `wait=` (long-poll).
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { CFG_ERR_TEMPLATE_INVALID, CFG_ERR_TEMPLATE_NOT_FOUND, CFG_ERR_UNSUPPORTED_ENTRY, withData } from '../../errors.js';
import { isPartial, renderTemplate, templateData, type TemplateFile, type TemplateLimits } from '../../config/templates.js';
import type { AppConfigReader } from '../../config/app-config.js';
import { secretsStep, type SecretsMode } from '../../secrets/apply.js';
import type { Keyring } from '../../secrets/keyring.js';
import type { GitStore } from '../plugins/git-store.js';
import { answerOrWait, parseWait, WAIT_PATTERN } from '../long-poll.js';
import { secretsModeFor } from '../secrets-mode.js';
import { readTarget } from '../target.js';
import { fileMediaType, parseFilePath } from './files.js';

const ListParams = Type.Object({ app: Type.String() });
const OneParams = Type.Object({ app: Type.String(), '*': Type.String() });
const TemplatesQuery = Type.Object(
  {
    profile: Type.Optional(Type.String({ maxLength: 1024 })),
    ref: Type.Optional(Type.String({ maxLength: 1024 })),
    /** Long-poll (with `If-None-Match`): hold the answer until it changes, at most this long. */
    wait: Type.Optional(Type.String({ pattern: WAIT_PATTERN })),
  },
  { additionalProperties: false },
);

/** One entry of the template list. */
export interface TemplateListEntry {
  /** Path inside the templates folder, `/`-separated (`conf/nginx.conf`). */
  path: string;
  /** Size of the rendered output, bytes. */
  size: number;
  /** SHA-256 of the rendered output, lower-case hex. */
  sha256: string;
}

/** Body of `GET /v1/apps/{app}/templates`. */
export interface TemplateList {
  /** The commit the templates were rendered at. */
  commit: string;
  /** Rendered templates (partials excluded), sorted by path. */
  templates: TemplateListEntry[];
}

/** Options of the templates routes. */
export interface TemplatesRoutesOptions {
  /** Rendered template sets kept in memory; 0 keeps none. */
  cacheEntries: number;
  /** `templates:` settings. */
  templates: TemplateLimits;
}

/** One template rendered. */
interface RenderedTemplate {
  readonly body: Buffer;
  readonly sha256: string;
  readonly secretKeys: string[];
  readonly secretKeyIds: string[];
}

/** The templates of one (dependencies, mode): their files and data once, each output once. */
interface TemplateSet {
  readonly key: string;
  readonly names: string[];
  readonly outputs: Map<string, Promise<RenderedTemplate>>;
  readonly prepared: Promise<{ files: Map<string, TemplateFile>; data: Record<string, unknown>; secretKeys: string[]; secretKeyIds: string[] }>;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Registers the template routes. */
export default async function templatesRoutes(app: FastifyInstance, opts: TemplatesRoutesOptions): Promise<void> {
  const sets = new LRUCache<string, TemplateSet>({ max: Math.max(1, Math.ceil(opts.cacheEntries / 4)) });
  const texts = new LRUCache<string, string>({ max: 10_000 });
  const keyring = (): Keyring => app.secretsKeyring;

  /** The dependency key of the templates of (app, profiles) at `commit` with `mode`. */
  const keyAt = async (store: GitStore, commit: string, appName: string, profiles: readonly string[], mode: SecretsMode): Promise<string> =>
    [store.name, appName, profiles.join(','), mode, await store.reader.dependencyKey(commit, appName, profiles, { documents: true, overlays: ['templates'] })].join('\0');

  /** The template set of (app, profiles, mode) at `commit`, from the cache or new. */
  const setAt = async (store: GitStore, commit: string, appName: string, profiles: readonly string[], mode: SecretsMode): Promise<TemplateSet> => {
    const key = await keyAt(store, commit, appName, profiles, mode);
    const hit = sets.get(key);
    if (hit !== undefined) return hit;
    const entries = await store.reader.listOverlay(commit, appName, profiles, 'templates');
    const prepared = prepare(store.reader, store, commit, appName, profiles, mode, entries);
    prepared.catch(() => sets.delete(key));
    const set: TemplateSet = { key, names: entries.map((e) => e.path).filter((p) => !isPartial(p)), outputs: new Map(), prepared };
    sets.set(key, set);
    return set;
  };

  const prepare = async (
    reader: AppConfigReader,
    store: GitStore,
    commit: string,
    appName: string,
    profiles: readonly string[],
    mode: SecretsMode,
    entries: Awaited<ReturnType<AppConfigReader['listOverlay']>>,
  ): Promise<{ files: Map<string, TemplateFile>; data: Record<string, unknown>; secretKeys: string[]; secretKeyIds: string[] }> => {
    const files = new Map<string, TemplateFile>();
    for (const e of entries) {
      let text = texts.get(e.oid);
      if (text === undefined) {
        // Throws CFG_ERR_UNSUPPORTED_ENTRY (422) for symlinks, submodules, LFS pointers.
        const file = await store.repository.readFileAt(commit, e.source);
        if (!file) throw new CFG_ERR_UNSUPPORTED_ENTRY(`${JSON.stringify(e.source)} cannot be read as a file`);
        if (file.bytes.byteLength > opts.templates.maxTemplateBytes) {
          throw withData(new CFG_ERR_TEMPLATE_INVALID(`${e.source}:1:1: larger than templates.maxTemplateBytes = ${opts.templates.maxTemplateBytes} bytes`), { template: e.source, line: 1, column: 1, kind: 'limit' });
        }
        try {
          text = UTF8.decode(file.bytes);
        } catch {
          throw withData(new CFG_ERR_TEMPLATE_INVALID(`${e.source}:1:1: not UTF-8 text`), { template: e.source, line: 1, column: 1, kind: 'syntax' });
        }
        texts.set(e.oid, text);
      }
      files.set(e.path, { text, source: e.source });
    }
    const step = secretsStep(mode, keyring());
    const { resolved, merged, secretKeys, secretKeyIds } = await reader.readResolved(commit, appName, profiles, { resolve: true, secrets: step });
    // Decrypt: the plaintext. Redact: a secret the template outputs refuses the rendering.
    const data = mode === 'decrypt' ? templateData(merged) : templateData(resolved, { isSecret: (t) => step.isSecret(t) });
    return { files, data, secretKeys: mode === 'decrypt' ? secretKeys : [], secretKeyIds: mode === 'decrypt' ? secretKeyIds : [] };
  };

  const renderOne = (set: TemplateSet, name: string): Promise<RenderedTemplate> => {
    let out = set.outputs.get(name);
    if (out === undefined) {
      out = set.prepared.then(async ({ files, data, secretKeys, secretKeyIds }) => {
        const body = Buffer.from(await renderTemplate(name, files, data, opts.templates), 'utf8');
        return { body, sha256: createHash('sha256').update(body).digest('hex'), secretKeys, secretKeyIds };
      });
      set.outputs.set(name, out);
      // Errors are not kept: they may name the commit, and a bound may pass next time.
      out.catch(() => set.outputs.delete(name));
    }
    return out;
  };

  const tag = (key: string, weak: boolean): string => `${weak ? 'W/' : ''}"${createHash('sha256').update(key).digest('base64url').slice(0, 32)}"`;

  app.get<{ Params: Static<typeof ListParams>; Querystring: Static<typeof TemplatesQuery> }>(
    '/v1/apps/:app/templates',
    { schema: { params: ListParams, querystring: TemplatesQuery } },
    async (request, reply) => {
      const target = await readTarget(request, { action: 'templates.list', format: 'json', app: request.params.app, profile: request.query.profile, ref: request.query.ref });
      const { app: appName, profiles, store } = target;
      const mode = secretsModeFor(request, appName, profiles);
      const { result, commit, notModified } = await answerOrWait(request, reply, target, {
        waitMs: parseWait(request.query.wait, app.longPoll.options.maxWaitMs),
        group: `templates\0${store.name}\0${appName}\0${profiles.join(',')}\0${mode}`,
        etagAt: async (at) => tag(`list\0${await keyAt(store, at, appName, profiles, mode)}`, true),
        produce: async (at) => {
          const set = await setAt(store, at, appName, profiles, mode);
          const templates: TemplateListEntry[] = [];
          const secretKeys = new Set<string>();
          const secretKeyIds = new Set<string>();
          for (const name of set.names) {
            const r = await renderOne(set, name);
            templates.push({ path: name, size: r.body.byteLength, sha256: r.sha256 });
            for (const k of r.secretKeys) secretKeys.add(k);
            for (const k of r.secretKeyIds) secretKeyIds.add(k);
          }
          return { etag: tag(`list\0${set.key}`, true), templates, secretKeys: [...secretKeys].sort(), secretKeyIds: [...secretKeyIds].sort() };
        },
      });
      request.audit.secretKeys = result.secretKeys;
      request.audit.secretKeyIds = result.secretKeyIds;
      reply.header('config-commit', commit).header('cache-control', 'no-store').header('etag', result.etag);
      if (notModified) return reply.code(304).send();
      const body: TemplateList = { commit, templates: result.templates };
      return reply.type('application/json; charset=utf-8').send(JSON.stringify(body));
    },
  );

  app.get<{ Params: Static<typeof OneParams>; Querystring: Static<typeof TemplatesQuery> }>(
    '/v1/apps/:app/templates/*',
    { schema: { params: OneParams, querystring: TemplatesQuery } },
    async (request, reply) => {
      let segments: string[] = [];
      const target = await readTarget(
        request,
        { action: 'templates.read', format: 'raw', app: request.params.app, profile: request.query.profile, ref: request.query.ref },
        () => (segments = parseFilePath(request.params['*'])),
      );
      const { app: appName, profiles, store } = target;
      const name = segments.join('/');
      const mode = secretsModeFor(request, appName, profiles);
      const { result, commit, notModified } = await answerOrWait(request, reply, target, {
        waitMs: parseWait(request.query.wait, app.longPoll.options.maxWaitMs),
        group: `template\0${store.name}\0${appName}\0${profiles.join(',')}\0${mode}\0${name}`,
        etagAt: async (at) => tag(`one\0${name}\0${await keyAt(store, at, appName, profiles, mode)}`, false),
        produce: async (at) => {
          const set = await setAt(store, at, appName, profiles, mode);
          if (!set.names.includes(name)) throw new CFG_ERR_TEMPLATE_NOT_FOUND(appName);
          const r = await renderOne(set, name);
          return { etag: tag(`one\0${name}\0${set.key}`, false), ...r };
        },
      });
      request.audit.secretKeys = result.secretKeys;
      request.audit.secretKeyIds = result.secretKeyIds;
      reply.header('config-commit', commit).header('etag', result.etag).header('cache-control', 'no-store');
      if (notModified) return reply.code(304).send();
      return reply.type(fileMediaType(segments[segments.length - 1] as string)).send(result.body);
    },
  );
}
