/**
 * History for tooling (SPEC §4, §5.1):
 * `GET /v1/apps/{app}/history?profile=&ref=&limit=` lists the commits that changed the
 * documents an application reads, and `GET /v1/apps/{app}/diff?from=&to=&profile=` the
 * key-level difference of its merged configuration between two refs (secrets masked,
 * placeholders not resolved). Both need `config:read` for the application and profiles.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { CFG_ERR_APP_NOT_FOUND, CFG_ERR_INVALID_REQUEST } from '../../errors.js';
import { appHistory, diffConfigs, type ConfigChange, type HistoryCommit } from '../../config/history.js';
import type { MergedConfig } from '../../config/types.js';
import { checkRef } from '../names.js';
import { readTarget } from '../target.js';

/** Commits returned when `limit` is not given. */
export const HISTORY_DEFAULT_LIMIT = 20;
/** Largest `limit` accepted. */
export const HISTORY_MAX_LIMIT = 100;
/** Most first-parent commits one history request examines. */
export const HISTORY_SCAN_CAP = 1000;

const Params = Type.Object({ app: Type.String() });
const HistoryQuery = Type.Object(
  {
    profile: Type.Optional(Type.String({ maxLength: 1024 })),
    ref: Type.Optional(Type.String({ maxLength: 1024 })),
    limit: Type.Integer({ minimum: 1, maximum: HISTORY_MAX_LIMIT, default: HISTORY_DEFAULT_LIMIT }),
  },
  { additionalProperties: false },
);
const DiffQuery = Type.Object(
  {
    profile: Type.Optional(Type.String({ maxLength: 1024 })),
    from: Type.Optional(Type.String({ maxLength: 1024 })),
    to: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { additionalProperties: false },
);

/** Body of `GET /v1/apps/{app}/history`. */
export interface HistoryResponse {
  app: string;
  profiles: string[];
  /** The commit the walk started from (`ref`, default the configured branch). */
  commit: string;
  /** Newest first. */
  commits: HistoryCommit[];
  /** True when the walk stopped early (scan cap of {@link HISTORY_SCAN_CAP} commits, or a shallow mirror). */
  truncated: boolean;
}

/** Body of `GET /v1/apps/{app}/diff`. */
export interface DiffResponse {
  app: string;
  profiles: string[];
  /** Commit `from` resolved to. */
  from: string;
  /** Commit `to` resolved to. */
  to: string;
  /** Sorted by key. */
  changes: ConfigChange[];
}

/** Registers the history and diff routes. */
export default async function historyRoutes(app: FastifyInstance): Promise<void> {
  app.get<{ Params: Static<typeof Params>; Querystring: Static<typeof HistoryQuery> }>(
    '/v1/apps/:app/history',
    { schema: { params: Params, querystring: HistoryQuery } },
    async (request, reply): Promise<HistoryResponse> => {
      const { app: appName, profiles, commit, store } = await readTarget(request, {
        action: 'config.history',
        format: 'json',
        app: request.params.app,
        profile: request.query.profile,
        ref: request.query.ref,
      });
      const { reader, repository } = store;
      if (!(await reader.appExists(commit, appName))) throw new CFG_ERR_APP_NOT_FOUND(appName);
      const { commits, truncated } = await appHistory(repository, reader, commit, appName, profiles, {
        limit: request.query.limit,
        scanCap: HISTORY_SCAN_CAP,
      });
      reply.header('config-commit', commit).header('cache-control', 'no-store');
      return { app: appName, profiles, commit, commits, truncated };
    },
  );

  app.get<{ Params: Static<typeof Params>; Querystring: Static<typeof DiffQuery> }>(
    '/v1/apps/:app/diff',
    { schema: { params: Params, querystring: DiffQuery } },
    async (request, reply): Promise<DiffResponse> => {
      let fromRef: string | undefined;
      const { app: appName, profiles, commit: to, store } = await readTarget(
        request,
        { action: 'config.diff', format: 'json', app: request.params.app, profile: request.query.profile, ref: request.query.to },
        () => {
          // Same rules as `to` (and every ref), checked before the policy like the names.
          fromRef = checkRef(request.query.from);
          if (fromRef === undefined) throw new CFG_ERR_INVALID_REQUEST("query parameter 'from' is required");
        },
      );
      const { commit: from } = await store.resolve(fromRef);
      // audit.commit holds `to`; audit.ref holds the commit `from` resolved to.
      request.audit.ref = from;
      const { reader } = store;
      const read = async (commit: string): Promise<MergedConfig | null> =>
        (await reader.appExists(commit, appName)) ? (await reader.read(commit, appName, profiles)).merged : null;
      const [before, after] = await Promise.all([read(from), read(to)]);
      if (before === null && after === null) throw new CFG_ERR_APP_NOT_FOUND(appName);
      const empty: MergedConfig = new Map();
      const { changes, secretKeys } = diffConfigs(before ?? empty, after ?? empty);
      request.audit.secretKeys = secretKeys;
      reply.header('config-commit', to).header('cache-control', 'no-store');
      return { app: appName, profiles, from, to, changes };
    },
  );
}
