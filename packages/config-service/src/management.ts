/**
 * The management listener (SPEC §5.4): plain HTTP, no certificates, so probes and
 * Prometheus can reach it. Bind it to a private interface.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { AuditStore } from './audit/types.js';
import { gitHealth } from './git-health.js';
import type { RepositoryRegistry } from './http/plugins/repositories.js';
import type { GitSettings } from './settings/schema.js';
import type { ServiceMetrics } from './metrics.js';

/** Build information shown at `/info`. */
export interface BuildInfo {
  version: string;
  /** Commit of config-service's own source, from `CONFIG_SERVICE_BUILD_COMMIT` at build or start. */
  commit: string | null;
}

/**
 * Builds the management app: `/health/live`, `/health/ready` (503 until every repository
 * can serve, while one is stale by `git.staleAfterMs`, and while the audit store cannot
 * commit; the body lists each repository's state and `checks.audit` is
 * `{ healthy, reason?, since? }`; with `server.workers` > 1, `checks.workers` is
 * `{ listening, wanted }` and every worker must listen), `/metrics` (Prometheus text format)
 * and `/info` (version, build commit, uptime in seconds, Node.js version).
 */
export async function buildManagementApp(deps: {
  logger: FastifyBaseLogger;
  repositories: RepositoryRegistry;
  git: GitSettings;
  auditStore: AuditStore;
  metrics: ServiceMetrics;
  build: BuildInfo;
  /** `server.workers` > 1: how many API workers listen; ready only when all of them do. */
  workers?: () => { listening: number; wanted: number };
  /** More Prometheus text appended to `/metrics` (the workers' series, summed). */
  extraMetrics?: () => Promise<string>;
}): Promise<FastifyInstance> {
  const startedAt = Date.now();
  const app = Fastify({ loggerInstance: deps.logger.child({ listener: 'management' }), logController: new LogController({ disableRequestLogging: true }) });
  app.get('/health/live', async () => ({ status: 'ok' }));
  app.get('/health/ready', async (_request, reply) => {
    const { auditStore } = deps;
    // Per repository: served commit, when it was fetched, last attempt and error (git-health.ts).
    const git = await gitHealth(deps.repositories, deps.git);
    const checks = {
      repositories: git.repositories,
      ...(git.templates.length > 0 && { templates: git.templates }),
      audit: auditStore.health,
      ...(deps.workers && { workers: deps.workers() }),
    };
    const ok = git.ready && checks.audit.healthy && (checks.workers === undefined || checks.workers.listening >= checks.workers.wanted);
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not_ready', checks });
  });
  app.get('/metrics', async (_request, reply) => {
    const own = await deps.metrics.registry.metrics();
    return reply.type(deps.metrics.registry.contentType).send(deps.extraMetrics ? `${own}\n${await deps.extraMetrics()}` : own);
  });
  app.get('/info', async () => ({
    name: 'config-service',
    version: deps.build.version,
    commit: deps.build.commit,
    uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
    node: process.version,
  }));
  return app;
}
