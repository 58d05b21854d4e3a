/**
 * The management listener (SPEC §5.4): plain HTTP, no certificates, so probes and
 * Prometheus can reach it. Bind it to a private interface.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { AuditStore } from './audit/types.js';
import type { GitStore } from './http/plugins/git-store.js';
import type { ServiceMetrics } from './metrics.js';

/** Build information shown at `/info`. */
export interface BuildInfo {
  version: string;
  /** Commit of config-service's own source, from `CONFIG_SERVICE_BUILD_COMMIT` at build or start. */
  commit: string | null;
}

/**
 * Builds the management app: `/health/live`, `/health/ready` (503 until configuration can
 * be served and while the audit store cannot commit; `checks.audit` is
 * `{ healthy, reason?, since? }`), `/metrics` (Prometheus text format)
 * and `/info` (version, build commit, uptime in seconds, Node.js version).
 */
export async function buildManagementApp(deps: { logger: FastifyBaseLogger; gitStore: GitStore; auditStore: AuditStore; metrics: ServiceMetrics; build: BuildInfo }): Promise<FastifyInstance> {
  const startedAt = Date.now();
  const app = Fastify({ loggerInstance: deps.logger.child({ listener: 'management' }), logController: new LogController({ disableRequestLogging: true }) });
  app.get('/health/live', async () => ({ status: 'ok' }));
  app.get('/health/ready', async (_request, reply) => {
    const { gitStore, auditStore } = deps;
    const stats = gitStore.mirror?.stats;
    const checks = {
      repository: {
        name: gitStore.name,
        ready: gitStore.ready(),
        ...(stats && {
          lastSyncAt: stats.lastSuccessAt?.toISOString() ?? null,
          syncAgeMs: stats.lastSuccessAt ? Date.now() - stats.lastSuccessAt.getTime() : null,
          lastError: stats.lastError ?? null,
        }),
      },
      audit: auditStore.health,
    };
    const ok = checks.repository.ready && checks.audit.healthy;
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not_ready', checks });
  });
  app.get('/metrics', async (_request, reply) => {
    return reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
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
