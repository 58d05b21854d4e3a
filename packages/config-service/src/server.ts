/**
 * Process start-up: opens the stores, builds both apps and listens. The CLI's `serve`
 * adds signal handling on top (close-with-grace); tests call {@link startService}.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { openServiceAuditStore, startAuditHealthProbe, startAuditRetention } from './audit/index.js';
import { DocumentParserPool } from './document-parser.js';
import { PgSyncBus, type SyncSignals } from './git/sync-bus.js';
import { RepositoryRegistry } from './http/plugins/repositories.js';
import type { MirrorFollower } from './http/plugins/git-store.js';
import type { AuditStore } from './audit/types.js';
import type { TlsReloadStats } from './http/tls.js';
import { logDestination, loggerOptions, logSerializers } from './logger.js';
import { buildManagementApp, type BuildInfo } from './management.js';
import { createMetrics, instrumentApi, type ServiceMetrics } from './metrics.js';
import { CFG_ERR_SETTINGS_INVALID } from './errors.js';
import { checkSettingFiles } from './settings/files.js';
import type { Settings } from './settings/schema.js';

/** Version and build commit, served by `/info`. */
export const BUILD_INFO: BuildInfo = {
  version: (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version,
  commit: process.env.CONFIG_SERVICE_BUILD_COMMIT ?? null,
};

/** A running service. */
export interface RunningService {
  api: FastifyInstance;
  management: FastifyInstance;
  /** `https://127.0.0.1:<port>` style URL of the API listener. */
  apiUrl: string;
  /** `http://127.0.0.1:<port>` URL of the management listener. */
  managementUrl: string;
  /** TLS reload counters of the API listener (reloads, failures, server certificate serial). */
  readonly tlsStats: Readonly<TlsReloadStats>;
  logger: Logger;
  /** Stops listening, waits for in-flight requests and syncs, flushes the audit store. */
  close(): Promise<void>;
}

function urlOf(app: FastifyInstance, scheme: string): string {
  const addr = app.server.address();
  if (!addr || typeof addr === 'string') return `${scheme}://${addr}`;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return `${scheme}://${host === '0.0.0.0' ? '127.0.0.1' : host}:${addr.port}`;
}

/** What {@link startService} takes besides the settings. */
export interface StartServiceOptions {
  /**
   * Destination logger (default: pino JSON to stdout at `log.level`); the service's
   * serializers (`logger.ts`) are applied to it too.
   */
  logger?: Logger;
  /** Environment for credential variables (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

/** The API part of a worker of `server.workers` (`cluster/worker.ts`). */
export interface WorkerApi {
  api: FastifyInstance;
  apiUrl: string;
  logger: Logger;
  metrics: ServiceMetrics;
  /** Stops listening, waits for in-flight requests, flushes the audit store. */
  close(): Promise<void>;
}

/** Opens the stores and builds the API app (not listening); `worker` set in a worker process. */
async function openApi(
  settings: Readonly<Settings>,
  options: StartServiceOptions & { worker?: { follower: MirrorFollower; syncBus: SyncSignals } },
): Promise<{ api: FastifyInstance; logger: Logger; auditStore: AuditStore; repositories: RepositoryRegistry; syncBus: PgSyncBus | undefined; metrics: ServiceMetrics }> {
  // Every unusable file at once, before anything is opened.
  const fileProblems = checkSettingFiles(settings);
  if (fileProblems.length > 0) throw new CFG_ERR_SETTINGS_INVALID(fileProblems.join('\n'));
  // An injected logger (tests, embedding) gets the same serializers as the default one.
  const logger = options.logger ? options.logger.child({}, { serializers: logSerializers() }) : pino(loggerOptions(settings.log.level), logDestination());
  mkdirSync(settings.dataDir, { recursive: true });
  // The primary of server.workers says once that checkpoints are off; a worker does not repeat it.
  const { store: auditStore, storeSettings: auditSettings, checkpointsSigned } = await openServiceAuditStore(settings, options.env ?? process.env, logger, {
    warnWhenUnsigned: options.worker === undefined,
  });
  const flog = logger as unknown as FastifyBaseLogger;
  // Large documents are parsed in worker threads, within the documents: limits.
  const documentParser = new DocumentParserPool(settings.documents, flog);
  let repositories: RepositoryRegistry;
  try {
    repositories = await RepositoryRegistry.open(settings, flog, options.env, documentParser.parse, options.worker?.follower);
    await repositories.start();
  } catch (err) {
    await auditStore.close();
    await documentParser.close();
    throw err;
  }
  // Replicas share sync signals through the PostgreSQL they already share (SPEC §10); in a
  // worker, the primary holds the bus and the worker's signals go through it.
  let syncBus: PgSyncBus | undefined;
  const remotes = repositories.entries.filter((e) => e.url !== undefined).map((e) => e.name);
  if (options.worker === undefined && auditSettings.kind === 'postgres' && remotes.length > 0) {
    syncBus = new PgSyncBus({ connectionString: auditSettings.connectionString, repositories: remotes, logger });
    await syncBus.start();
  }
  const signals: SyncSignals | undefined = options.worker?.syncBus ?? syncBus;
  let api: FastifyInstance;
  try {
    api = await buildApp(settings, { logger: flog, repositories, auditStore, auditCheckpoints: checkpointsSigned, ...(signals && { syncBus: signals }) });
  } catch (err) {
    await syncBus?.close();
    await repositories.stop();
    await documentParser.close();
    throw err;
  }
  const metrics = createMetrics({ repositories, git: settings.git, auditStore, tls: () => api.tlsReloader.stats });
  instrumentApi(api, metrics);
  // Readiness recovers by itself: the store is probed while it is unhealthy or idle.
  const healthProbe = startAuditHealthProbe(auditStore, {
    intervalMs: settings.audit.healthCheckIntervalMs,
    timeoutMs: settings.audit.commitTimeoutMs,
    logger,
  });
  // Retention by age (audit.retentionDays): prune hourly, first shortly after start; one
  // process of a replica does it (the primary of server.workers, or this one).
  const retention =
    settings.audit.retentionDays === undefined || options.worker !== undefined
      ? undefined
      : startAuditRetention(auditStore, { retentionDays: settings.audit.retentionDays, logger });
  api.addHook('onClose', async () => {
    await healthProbe.stop();
    await retention?.stop();
    await auditStore.close();
    await documentParser.close();
  });
  return { api, logger, auditStore, repositories, syncBus, metrics };
}

/**
 * Starts a worker's API listener (`server.workers` > 1): the stores of this process, the
 * mirrors as the primary publishes them, no management listener (the primary has it).
 */
export async function startWorkerApi(
  settings: Readonly<Settings>,
  options: StartServiceOptions & { worker: { follower: MirrorFollower; syncBus: SyncSignals } },
): Promise<WorkerApi> {
  const { api, logger, metrics } = await openApi(settings, options);
  await api.listen({ host: settings.server.host, port: settings.server.port });
  return { api, apiUrl: urlOf(api, 'https'), logger, metrics, close: () => api.close() };
}

/**
 * Starts config-service with validated settings, in this one process (what `serve` does
 * with `server.workers: 1`, and what tests and embedders use).
 * @param options.logger destination logger (default: pino JSON to stdout at `log.level`);
 *   the service's serializers (`logger.ts`) are applied to it too
 * @param options.env environment for credential variables (default `process.env`)
 */
export async function startService(settings: Readonly<Settings>, options: StartServiceOptions = {}): Promise<RunningService> {
  const { api, logger, auditStore, repositories, syncBus, metrics } = await openApi(settings, options);
  const flog = logger as unknown as FastifyBaseLogger;
  const management = await buildManagementApp({ logger: flog, repositories, git: settings.git, auditStore, metrics, build: BUILD_INFO });
  await api.listen({ host: settings.server.host, port: settings.server.port });
  await management.listen({ host: settings.management.host, port: settings.management.port });
  const service: RunningService = {
    api,
    management,
    apiUrl: urlOf(api, 'https'),
    managementUrl: urlOf(management, 'http'),
    get tlsStats() {
      return api.tlsReloader.stats;
    },
    logger,
    close: async () => {
      await management.close();
      await syncBus?.close();
      await api.close();
    },
  };
  logger.info({ api: service.apiUrl, management: service.managementUrl, repositories: repositories.entries.map((e) => e.name) }, 'config-service listening');
  return service;
}
