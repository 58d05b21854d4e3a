/**
 * The management listener (SPEC §5.4): plain HTTP, no certificates, so probes and
 * Prometheus can reach it. Bind it to a private interface.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { AuditStore } from './audit/types.js';
import type { GitStore } from './http/plugins/git-store.js';

/** Builds the management app. `/health/ready` is 503 until configuration can be served and the audit store is healthy. */
export async function buildManagementApp(deps: { logger: FastifyBaseLogger; gitStore: GitStore; auditStore: AuditStore }): Promise<FastifyInstance> {
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
      audit: { healthy: auditStore.healthy },
    };
    const ok = checks.repository.ready && checks.audit.healthy;
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not_ready', checks });
  });
  return app;
}
