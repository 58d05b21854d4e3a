/**
 * The API application factory: builds the TLS Fastify instance with its plugins and
 * routes, without listening (fastify docs, "Testing": app vs server).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { CFG_ERR_SETTINGS_INVALID } from './errors.js';
import type { AuditStore } from './audit/types.js';
import auditPlugin from './http/plugins/audit.js';
import authPlugin from './http/plugins/auth.js';
import gitStorePlugin, { type GitStore } from './http/plugins/git-store.js';
import { installProblemHandlers } from './http/problem.js';
import auditRoutes from './http/routes/audit.js';
import configRoutes from './http/routes/config.js';
import type { Settings } from './settings/schema.js';

/** What {@link buildApp} needs besides the settings: the open stores and the logger. */
export interface AppDependencies {
  logger: FastifyBaseLogger;
  gitStore: GitStore;
  auditStore: AuditStore;
}

function readPem(setting: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new CFG_ERR_SETTINGS_INVALID(`  ${setting}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/**
 * Builds the API listener's app: TLS that asks every client for a certificate and
 * verifies it against `server.tls.clientCa` (and CRLs), then audit, auth and routes.
 * Verification failures are answered at the HTTP layer (401 problem+json) so that they
 * are audited like every other request.
 *
 * @throws CFG_ERR_SETTINGS_INVALID when a TLS file cannot be read
 */
export async function buildApp(settings: Readonly<Settings>, deps: AppDependencies): Promise<FastifyInstance> {
  const tls = settings.server.tls;
  const app = Fastify({
    loggerInstance: deps.logger,
    https: {
      cert: readPem('server.tls.cert', tls.cert),
      key: readPem('server.tls.key', tls.key),
      ca: readPem('server.tls.clientCa', tls.clientCa),
      ...(tls.crl.length > 0 && { crl: tls.crl.map((f, i) => readPem(`server.tls.crl.${i}`, f)) }),
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    },
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    requestTimeout: settings.server.requestTimeoutMs,
    connectionTimeout: settings.server.requestTimeoutMs,
    bodyLimit: settings.server.bodyLimitBytes,
    return503OnClosing: true,
    routerOptions: { maxParamLength: 1024 },
  });

  installProblemHandlers(app);
  app.addHook('onSend', async (_request, reply) => {
    reply.header('x-content-type-options', 'nosniff');
  });
  await app.register(auditPlugin, { store: deps.auditStore });
  await app.register(gitStorePlugin, { store: deps.gitStore });
  await app.register(authPlugin, { identity: settings.identity, policy: settings.policy, ...(settings.jwt && { jwt: settings.jwt }) });
  await app.register(configRoutes, { cacheEntries: settings.cache.maxEntries });
  await app.register(auditRoutes);
  return app;
}
