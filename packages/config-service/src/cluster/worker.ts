/**
 * A worker process of `server.workers` (forked by `cluster/primary.ts`): serves the API on
 * the listener it shares with the other workers (Node `cluster`), reads the remote
 * mirrors on disk at the snapshots the primary publishes, and asks the primary for syncs
 * and sync-bus signals. It opens its own audit store: SQLite serialises the writers of
 * one file and each transaction reads the chain's tail, so every worker's events join the
 * one chain (PostgreSQL: the store's own chain lock).
 *
 * This module starts the worker when it is loaded in a cluster worker; it does nothing
 * anywhere else.
 */
import cluster from 'node:cluster';
import { AggregatorRegistry, Registry } from 'prom-client';
import type { RefSnapshot } from '../git/repository.js';
import type { SyncResult } from '../git/mirror.js';
import type { SyncSignals } from '../git/sync-bus.js';
import type { MirrorFollower } from '../http/plugins/git-store.js';
import { startWorkerApi, type WorkerApi } from '../server.js';
import { fromWire, WORKER_SERIES, type ToPrimary, type ToWorker } from './messages.js';

function send(message: ToPrimary): void {
  process.send?.(message);
}

let nextId = 1;
const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
const snapshotListeners = new Map<string, Array<(s: RefSnapshot | null) => void>>();

function request<T>(message: Omit<Extract<ToPrimary, { id: number }>, 'id'>): Promise<T> {
  const id = nextId++;
  return new Promise<T>((resolve, reject) => {
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    send({ ...message, id } as ToPrimary);
  });
}

const follower: MirrorFollower = {
  snapshot: (name) => request<RefSnapshot | null>({ type: 'cfg:get-snapshot', name }),
  onSnapshot: (name, listener) => {
    const list = snapshotListeners.get(name) ?? [];
    list.push(listener);
    snapshotListeners.set(name, list);
  },
  requestSync: (name) => request<SyncResult>({ type: 'cfg:sync', name }),
};

/** Signals go through the primary, which holds the replica's one sync-bus connection. */
const syncBus: SyncSignals = {
  publish: async (repo) => send({ type: 'cfg:publish', repo }),
  onSignal: () => () => undefined,
};

let api: WorkerApi | undefined;
let closing: Promise<void> | undefined;

function shutdown(): Promise<void> {
  closing ??= (async () => {
    try {
      await api?.close();
    } finally {
      process.exit(0);
    }
  })();
  return closing;
}

async function start(message: Extract<ToWorker, { type: 'cfg:start' }>): Promise<void> {
  api = await startWorkerApi(message.settings, { env: process.env, worker: { follower, syncBus } });
  // The primary's /metrics sums the request metrics of every worker (prom-client cluster).
  const shared = new Registry();
  for (const name of WORKER_SERIES) {
    const metric = api.metrics.registry.getSingleMetric(name);
    if (metric !== undefined) shared.registerMetric(metric);
  }
  AggregatorRegistry.setRegistries([shared]);
  // Constructing one installs the worker's answer to the primary's metrics requests.
  new AggregatorRegistry();
  send({ type: 'cfg:listening', url: api.apiUrl });
}

if (cluster.isWorker) {
  process.on('message', (raw: unknown) => {
    const message = raw as ToWorker;
    switch (message?.type) {
      case 'cfg:start':
        start(message).catch((err: Error & { code?: string }) => {
          process.stderr.write(`config-service worker: ${err.code ? `${err.code}: ` : ''}${err.message}\n`);
          process.exit(1);
        });
        break;
      case 'cfg:snapshot':
        for (const listener of snapshotListeners.get(message.name) ?? []) listener(message.snapshot);
        break;
      case 'cfg:reply': {
        const p = pending.get(message.id);
        pending.delete(message.id);
        if (message.error) p?.reject(fromWire(message.error));
        else p?.resolve(message.value);
        break;
      }
      case 'cfg:shutdown':
        void shutdown();
        break;
      default:
        break;
    }
  });
  // A signal to the worker alone (the whole process group gets it at Ctrl-C): close as on shutdown.
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => void shutdown());
  process.on('disconnect', () => void shutdown());
  // Only now can a message be received: ask for the settings.
  send({ type: 'cfg:hello' });
}
