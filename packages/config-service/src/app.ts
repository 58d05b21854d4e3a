/**
 * The API application factory: builds the TLS Fastify instance with its plugins and
 * routes, without listening (fastify docs, "Testing": app vs server).
 */
import { randomUUID } from 'node:crypto';
import type https from 'node:https';
import type { Server as TlsServer } from 'node:tls';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { CFG_ERR_SETTINGS_INVALID, withData } from './errors.js';
import type { AuditStore } from './audit/types.js';
import auditPlugin from './http/plugins/audit.js';
import authPlugin from './http/plugins/auth.js';
import hardeningPlugin, { clientErrorHandler, frameworkErrorHandler } from './http/plugins/hardening.js';
import repositoriesPlugin, { type RepositoryRegistry } from './http/plugins/repositories.js';
import { formatSchemaErrors, installProblemHandlers } from './http/problem.js';
import { loadTlsMaterial, secureContextOptions, TlsReloader } from './http/tls.js';
import openapiPlugin from './http/openapi.js';
import auditRoutes from './http/routes/audit.js';
import configRoutes from './http/routes/config.js';
import filesRoutes from './http/routes/files.js';
import springRoutes from './http/routes/spring.js';
import encryptRoutes from './http/routes/encrypt.js';
import hooksRoutes from './http/routes/hooks.js';
import type { SyncSignals } from './git/sync-bus.js';
import historyRoutes from './http/routes/history.js';
import templatesRoutes from './http/routes/templates.js';
import { LongPollHub } from './http/long-poll.js';
import type { Settings } from './settings/schema.js';

/** What {@link buildApp} needs besides the settings: the open stores and the logger. */
export interface AppDependencies {
  logger: FastifyBaseLogger;
  /** The repositories, opened (and started) by the caller; stopped when the app closes. */
  repositories: RepositoryRegistry;
  auditStore: AuditStore;
  /** The audit store signs checkpoints (`GET /v1/audit/checkpoints` serves them). Default false. */
  auditCheckpoints?: boolean;
  /** Sync signals shared by replicas (PostgreSQL audit store and remote repositories only). */
  syncBus?: SyncSignals | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Watches and reloads the listener's certificate, key, client CA bundle and CRLs. */
    tlsReloader: TlsReloader;
  }
}

/**
 * Builds the API listener's app: TLS that asks every client for a certificate and
 * verifies it against `server.tls.clientCa` (and CRLs), then audit, hardening (security
 * headers, rate limits), auth and routes. Verification failures are answered at the HTTP
 * layer (401 problem+json) so that they are audited like every other request.
 *
 * The TLS files are validated first ({@link loadTlsMaterial}) and watched once the app
 * listens ({@link TlsReloader}); slow-client limits come from `server.headersTimeoutMs`,
 * `server.requestTimeoutMs` and `server.keepAliveTimeoutMs` (all ms), and the TLS
 * handshake gets `server.headersTimeoutMs` too.
 *
 * @throws CFG_ERR_SETTINGS_INVALID when a TLS file cannot be read or does not validate
 *   (the message names the setting), or `server.headersTimeoutMs` exceeds
 *   `server.requestTimeoutMs` (Node refuses that combination).
 */
export async function buildApp(settings: Readonly<Settings>, deps: AppDependencies): Promise<FastifyInstance> {
  const server = settings.server;
  if (server.requestTimeoutMs > 0 && server.headersTimeoutMs > server.requestTimeoutMs) {
    throw withData(new CFG_ERR_SETTINGS_INVALID('  server.headersTimeoutMs: must not exceed server.requestTimeoutMs'), { setting: 'server.headersTimeoutMs' });
  }
  const material = await loadTlsMaterial(server.tls);
  for (const warning of material.warnings) deps.logger.warn({ setting: warning.slice(0, warning.indexOf(':')) }, warning);
  const httpsOptions: https.ServerOptions = {
    ...secureContextOptions(material),
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
    // Slow-client limits (Node http.Server): headers, whole request, idle keep-alive, handshake.
    headersTimeout: server.headersTimeoutMs,
    requestTimeout: server.requestTimeoutMs,
    keepAliveTimeout: server.keepAliveTimeoutMs,
    connectionsCheckingInterval: 1000,
    ...(server.headersTimeoutMs > 0 && { handshakeTimeout: server.headersTimeoutMs }),
  };
  const app = Fastify({
    loggerInstance: deps.logger,
    https: httpsOptions,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    requestTimeout: server.requestTimeoutMs,
    keepAliveTimeout: server.keepAliveTimeoutMs,
    // Socket inactivity timeout: never shorter than a request or an idle keep-alive may last.
    connectionTimeout: Math.max(server.requestTimeoutMs, server.keepAliveTimeoutMs) + 1000,
    bodyLimit: server.bodyLimitBytes,
    return503OnClosing: true,
    // One line per request at info, the audit event (plugins/audit.ts); Fastify's own
    // "incoming request" / "request completed" pair is written at debug level below.
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { maxParamLength: 1024 },
    // Bad percent-encoding and overlong segments: answered and audited like every request.
    frameworkErrors: frameworkErrorHandler(() => deps.auditStore, undefined, settings.audit.commitTimeoutMs),
    clientErrorHandler: clientErrorHandler(),
    // One sentence per bad parameter, naming the values that exist (`format=xml`).
    schemaErrorFormatter: formatSchemaErrors,
  });
  // Fastify has no option for it; Node's default is 60 s.
  app.server.headersTimeout = server.headersTimeoutMs;

  const reloader = new TlsReloader(app.server as unknown as TlsServer, server.tls, material, deps.logger, {
    // The handshake timeout set above (Node's default when it is off).
    handshakeTimeoutMs: server.headersTimeoutMs > 0 ? server.headersTimeoutMs : 120_000,
  });
  app.decorate('tlsReloader', reloader);
  app.addHook('onListen', async () => reloader.start());
  app.addHook('onClose', async () => reloader.stop());

  // Long-polls (SPEC §5.1): held requests are answered at once when the service closes.
  const longPoll = new LongPollHub({ ...settings.longPoll, logger: deps.logger });
  app.decorate('longPoll', longPoll);
  app.addHook('preClose', async () => longPoll.close());

  if (deps.logger.level === 'debug' || deps.logger.level === 'trace') {
    // Hooks only when debug is on: at info, a request costs no extra work for them.
    app.addHook('onRequest', async (request) => {
      request.log.debug({ req: request.raw }, 'incoming request');
    });
    app.addHook('onResponse', async (request, reply) => {
      request.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
    });
  }
  installProblemHandlers(app);
  await app.register(auditPlugin, { store: deps.auditStore, commitTimeoutMs: settings.audit.commitTimeoutMs, checkpoints: deps.auditCheckpoints ?? false });
  await app.register(hardeningPlugin, { rateLimitMax: server.rateLimit.max, rateLimitWindowMs: server.rateLimit.timeWindowMs });
  await app.register(repositoriesPlugin, { registry: deps.repositories });
  await app.register(authPlugin, {
    identity: settings.identity,
    policy: settings.policy,
    ...(settings.jwt && { jwt: settings.jwt }),
    trust: reloader,
  });
  // Before the routes: @fastify/swagger collects the routes registered after it.
  await app.register(openapiPlugin);
  await app.register(encryptRoutes, { secrets: settings.secrets });
  await app.register(configRoutes, { cacheEntries: settings.cache.maxEntries });
  await app.register(auditRoutes);
  await app.register(filesRoutes, { cacheEntries: settings.cache.maxEntries });
  await app.register(templatesRoutes, { cacheEntries: settings.cache.maxEntries, templates: settings.templates });
  await app.register(springRoutes, { cacheEntries: settings.cache.maxEntries });
  await app.register(historyRoutes);
  await app.register(hooksRoutes, { ...(deps.syncBus && { syncBus: deps.syncBus }), deliveryWindowMs: settings.webhooks.deliveryWindowMs });
  return app;
}
