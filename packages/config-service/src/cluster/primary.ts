/**
 * `config-service serve` with `server.workers` > 1 (SPEC §10: a replica uses every core):
 * this primary process forks the workers (`cluster/worker.ts`), which share the API
 * listener through Node's `cluster` (connections handed out round-robin by the primary),
 * and keeps everything that must happen once per replica:
 *
 * - the remote mirrors: the first sync, polling, and the syncs that webhooks, the admin
 *   sync and sync-bus signals ask for (workers send them here; concurrent asks coalesce
 *   in the repository's `SyncTrigger`). After each sync the new snapshot (refs and packs)
 *   is sent to every worker BEFORE the sync's answer, so an admin sync that returns has
 *   been published everywhere; workers read the mirror on disk at that snapshot;
 * - the sync bus (PostgreSQL `LISTEN/NOTIFY`), with one connection;
 * - the management listener: `/health/ready` also waits for every worker to listen, and
 *   `/metrics` adds the workers' request counters and durations (prom-client's
 *   `AggregatorRegistry`) to the primary's own series;
 * - audit retention (the workers append; see `cluster/worker.ts` for the chain).
 *
 * Shutdown (SIGTERM/SIGINT through `serve`): every worker is told to close (it stops
 * accepting, finishes its requests and flushes its audit events) and is waited for, then
 * the primary closes. A worker that dies is forked again after a second. TLS files are
 * watched by every worker itself (`TlsReloader`), so a reload reaches each of them.
 */
import cluster, { type Worker } from 'node:cluster';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pino, type Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { openServiceAuditStore, startAuditHealthProbe, startAuditRetention } from '../audit/index.js';
import { CFG_ERR_SETTINGS_INVALID } from '../errors.js';
import { checkSettingFiles } from '../settings/files.js';
import { PgSyncBus } from '../git/sync-bus.js';
import { RepositoryRegistry } from '../http/plugins/repositories.js';
import { logDestination, loggerOptions } from '../logger.js';
import { buildManagementApp } from '../management.js';
import { createMetrics } from '../metrics.js';
import { BUILD_INFO } from '../server.js';
import type { Settings } from '../settings/schema.js';
import { toWire, WORKER_SERIES, type ToPrimary, type ToWorker } from './messages.js';

/** A running primary. */
export interface RunningCluster {
  logger: Logger;
  /** `https://host:port` of the API listener the workers share. */
  apiUrl: string;
  /** `http://host:port` of the management listener. */
  managementUrl: string;
  /** Workers listening now. */
  readonly listening: number;
  /** Closes every worker (graceful), then the primary's listeners, mirrors and stores. */
  close(): Promise<void>;
}

const WORKER_ENTRY = fileURLToPath(new URL('./worker-main.js', import.meta.url));

/**
 * Starts the primary: syncs the mirrors, forks `workers` API processes, listens for
 * management. Resolves once every worker listens.
 */
export async function startCluster(settings: Readonly<Settings>, options: { workers: number; env?: NodeJS.ProcessEnv }): Promise<RunningCluster> {
  const env = options.env ?? process.env;
  // Every unusable file at once, before anything is opened or forked.
  const fileProblems = checkSettingFiles(settings);
  if (fileProblems.length > 0) throw new CFG_ERR_SETTINGS_INVALID(fileProblems.join('\n'));
  const logger = pino(loggerOptions(settings.log.level), logDestination()).child({ role: 'primary' });
  const flog = logger as unknown as FastifyBaseLogger;
  mkdirSync(settings.dataDir, { recursive: true });
  // The primary appends no request events; it prunes (retention anchors are signed) and probes.
  const { store: auditStore, storeSettings: auditSettings } = await openServiceAuditStore(settings, env, logger, { warnWhenUnsigned: true });
  const repositories = await RepositoryRegistry.open(settings, flog, env);
  await repositories.start();
  const remotes = repositories.entries.filter((e) => e.url !== undefined).map((e) => e.name);
  let syncBus: PgSyncBus | undefined;
  if (auditSettings.kind === 'postgres' && remotes.length > 0) {
    syncBus = new PgSyncBus({ connectionString: auditSettings.connectionString, repositories: remotes, logger });
    await syncBus.start();
    syncBus.onSignal((repo) => {
      const store = repositories.byName(repo);
      if (store?.mirror === undefined) return;
      logger.info({ repo }, 'sync signal from another replica; syncing');
      store.requestSync()?.catch(() => undefined);
    });
  }
  const healthProbe = startAuditHealthProbe(auditStore, { intervalMs: settings.audit.healthCheckIntervalMs, timeoutMs: settings.audit.commitTimeoutMs, logger });
  const retention = settings.audit.retentionDays === undefined ? undefined : startAuditRetention(auditStore, { retentionDays: settings.audit.retentionDays, logger });

  const listening = new Set<Worker>();
  let apiUrl = '';
  const broadcast = (message: ToWorker): void => {
    for (const w of Object.values(cluster.workers ?? {})) if (w?.isConnected()) w.send(message);
  };
  // Every publication (a sync, a mirror refused and recloned) reaches every worker.
  for (const store of repositories.statics) {
    if (store.mirror === undefined) continue;
    store.repository.onSnapshot((snapshot) => broadcast({ type: 'cfg:snapshot', name: store.name, snapshot }));
  }

  const onMessage = (worker: Worker, raw: unknown): void => {
    const message = raw as ToPrimary;
    const reply = (m: Omit<Extract<ToWorker, { type: 'cfg:reply' }>, 'type'>): void => {
      if (worker.isConnected()) worker.send({ type: 'cfg:reply', ...m });
    };
    switch (message?.type) {
      case 'cfg:hello':
        worker.send({ type: 'cfg:start', settings: settings as Settings } satisfies ToWorker);
        break;
      case 'cfg:listening':
        listening.add(worker);
        apiUrl = message.url;
        break;
      case 'cfg:get-snapshot': {
        const store = repositories.byName(message.name);
        reply({ id: message.id, value: store?.repository.snapshot ?? null });
        break;
      }
      case 'cfg:sync': {
        const store = repositories.byName(message.name);
        const sync = store?.requestSync();
        if (sync === undefined) {
          reply({ id: message.id, error: { message: `repository ${message.name} is not mirrored`, code: 'CFG_ERR_REPO_UNAVAILABLE', statusCode: 503 } });
          break;
        }
        // The snapshot broadcast of the sync is sent before this reply (one ordered channel).
        sync.then(
          (value) => reply({ id: message.id, value }),
          (err: unknown) => reply({ id: message.id, error: toWire(err) }),
        );
        break;
      }
      case 'cfg:publish':
        void syncBus?.publish(message.repo);
        break;
      default:
        break;
    }
  };

  let closing = false;
  cluster.setupPrimary({ exec: WORKER_ENTRY, args: [], serialization: 'advanced' });
  const fork = (): Worker => {
    const worker = cluster.fork();
    worker.on('message', (m: unknown) => onMessage(worker, m));
    worker.on('exit', (code, signal) => {
      listening.delete(worker);
      if (closing) return;
      logger.error({ worker: worker.id, pid: worker.process.pid, code, signal }, 'API worker exited; starting another');
      setTimeout(() => {
        if (!closing) fork();
      }, 1000).unref();
    });
    return worker;
  };
  for (let i = 0; i < options.workers; i++) fork();
  // Every worker listens before the replica says it is ready (or start-up fails).
  const deadline = Date.now() + Math.max(60_000, settings.documents.parseTimeoutMs);
  while (listening.size < options.workers) {
    if (Date.now() > deadline) {
      closing = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.kill();
      throw new Error(`only ${listening.size} of ${options.workers} API workers started; see their log lines`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  const metrics = createMetrics({ repositories, git: settings.git, auditStore });
  for (const name of WORKER_SERIES) metrics.registry.removeSingleMetric(name);
  const aggregator = new AggregatorRegistry();
  const management: FastifyInstance = await buildManagementApp({
    logger: flog,
    repositories,
    git: settings.git,
    auditStore,
    metrics,
    build: BUILD_INFO,
    workers: () => ({ listening: listening.size, wanted: options.workers }),
    extraMetrics: () => aggregator.clusterMetrics(),
  });
  await management.listen({ host: settings.management.host, port: settings.management.port });
  const addr = management.server.address();
  const managementUrl = typeof addr === 'object' && addr ? `http://${addr.address === '0.0.0.0' ? '127.0.0.1' : addr.address}:${addr.port}` : String(addr);
  logger.info({ api: apiUrl, management: managementUrl, workers: options.workers, repositories: repositories.entries.map((e) => e.name) }, 'config-service listening');

  return {
    logger,
    apiUrl,
    managementUrl,
    get listening() {
      return listening.size;
    },
    close: async () => {
      closing = true;
      const exits = Object.values(cluster.workers ?? {}).map(
        (w) =>
          new Promise<void>((resolve) => {
            if (!w || w.isDead()) return resolve();
            w.once('exit', () => resolve());
            if (w.isConnected()) w.send({ type: 'cfg:shutdown' } satisfies ToWorker);
            else w.kill('SIGTERM');
          }),
      );
      await Promise.all(exits);
      await management.close();
      await syncBus?.close();
      await repositories.stop();
      await healthProbe.stop();
      await retention?.stop();
      await auditStore.close();
    },
  };
}
