/**
 * Sync signals shared by replicas (SPEC §10): "a webhook received by one replica reaches the
 * others through PostgreSQL `LISTEN/NOTIFY`".
 *
 * One dedicated `pg.Client` per process (not a pool connection: `LISTEN` is per session)
 * listens on one channel per repository, `config_service_sync_<first 16 hex of
 * sha256(name)>` (a valid, short identifier whatever the repository is called; the
 * per-application repositories `<template>/<app>` of the template entry share their entry's
 * channel, the payload naming the application's repository). A replica
 * that accepts a webhook {@link PgSyncBus.publish | publishes} `{"repo": <name>, "from":
 * <replica id>}`; every other replica's {@link PgSyncBus.onSignal} handlers then run. A
 * replica ignores its own notifications (same random id).
 *
 * When the connection drops (`error` / `end`), the bus reconnects with exponential backoff
 * (with jitter) and, once listening again, signals every repository once to its own
 * handlers: a notification sent while it was away is lost, so it syncs to catch up.
 *
 * The connection string carries a password: errors are scrubbed of it
 * ({@link scrubError}) before they are logged, and it is never logged itself.
 */
import { createHash, randomUUID } from 'node:crypto';
import pg from 'pg';
import { connectionSecrets, scrubError } from '../audit/postgres-errors.js';

/** Where the bus reports connection problems (pino's `Logger` fits). */
export interface SyncBusLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** What the HTTP layer needs of a sync bus: publish a signal, and receive the others'. */
export interface SyncSignals {
  /**
   * Tells the other replicas that `repo` changed. Never rejects: a failure is logged (the
   * other replicas' polling, when on, still catches up).
   */
  publish(repo: string): Promise<void>;
  /**
   * Registers `handler`, called with the repository name for each signal from another
   * replica (and after a reconnect). @returns a function that removes it.
   */
  onSignal(handler: (repo: string) => void): () => void;
}

/** Options of {@link PgSyncBus}. */
export interface PgSyncBusOptions {
  /** PostgreSQL connection string (the audit store's); holds a password, never logged. */
  connectionString: string;
  /** Repositories to listen for (their configured names). */
  repositories: readonly string[];
  logger?: SyncBusLogger | undefined;
  /** First reconnect delay, ms; default 500. */
  reconnectMinMs?: number | undefined;
  /** Largest reconnect delay, ms; default 30000. */
  reconnectMaxMs?: number | undefined;
  /** Connect timeout, ms; default 5000. */
  connectTimeoutMs?: number | undefined;
}

/** Prefix of every sync channel name. */
export const SYNC_CHANNEL_PREFIX = 'config_service_sync_';

/** The `LISTEN`/`NOTIFY` channel of a repository: prefix + 16 hex digits of SHA-256(name). */
export function syncChannel(repo: string): string {
  return SYNC_CHANNEL_PREFIX + createHash('sha256').update(repo, 'utf8').digest('hex').slice(0, 16);
}

/**
 * The `repositories[]` entry of a repository name: `per-app` for `per-app/orders` (a
 * per-application repository of the template entry signals on its entry's channel).
 */
export function entryOf(repo: string): string {
  const slash = repo.indexOf('/');
  return slash === -1 ? repo : repo.slice(0, slash);
}

/** The JSON payload of a sync notification. */
export interface SyncNotification {
  repo: string;
  /** The sending replica's {@link PgSyncBus.id}. */
  from: string;
}

/** Parses a notification payload; `undefined` when it is not one of ours. */
export function parseSyncNotification(payload: string | undefined): SyncNotification | undefined {
  if (payload === undefined || payload.length > 8000) return undefined;
  try {
    const v = JSON.parse(payload) as unknown;
    if (typeof v !== 'object' || v === null) return undefined;
    const { repo, from } = v as Record<string, unknown>;
    return typeof repo === 'string' && typeof from === 'string' ? { repo, from } : undefined;
  } catch {
    return undefined;
  }
}

const SILENT: SyncBusLogger = { info: () => undefined, warn: () => undefined };

/** Sync signals over PostgreSQL `LISTEN/NOTIFY`: one connection, reconnecting with backoff. */
export class PgSyncBus implements SyncSignals {
  /** This replica's random id, sent with every notification (its own are ignored). */
  readonly id: string = randomUUID();
  readonly #connectionString: string;
  readonly #secrets: readonly string[];
  readonly #channels: ReadonlyMap<string, string>;
  readonly #logger: SyncBusLogger;
  readonly #minMs: number;
  readonly #maxMs: number;
  readonly #connectTimeoutMs: number;
  readonly #handlers = new Set<(repo: string) => void>();
  #client: pg.Client | null = null;
  #connecting: Promise<void> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #attempt = 0;
  #everListened = false;
  #closed = false;

  constructor(opts: PgSyncBusOptions) {
    if (typeof opts.connectionString !== 'string' || opts.connectionString.length === 0) throw new TypeError('PgSyncBus: connectionString is required');
    this.#connectionString = opts.connectionString;
    this.#secrets = connectionSecrets(opts.connectionString);
    this.#channels = new Map(opts.repositories.map((r) => [syncChannel(r), r]));
    this.#logger = opts.logger ?? SILENT;
    this.#minMs = opts.reconnectMinMs ?? 500;
    this.#maxMs = Math.max(this.#minMs, opts.reconnectMaxMs ?? 30_000);
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
  }

  /** True while the connection is up and listening. */
  get listening(): boolean {
    return this.#client !== null;
  }

  /**
   * Connects and listens. Never rejects: when the first attempt fails, it is logged and
   * retried in the background like a dropped connection.
   */
  async start(): Promise<void> {
    if (this.#closed) return;
    await this.#connect();
  }

  /** {@inheritDoc SyncSignals.publish} */
  async publish(repo: string): Promise<void> {
    const client = this.#client;
    if (this.#closed) return;
    if (client === null) {
      this.#logger.warn({ repo }, 'sync bus: not connected to PostgreSQL; the other replicas are not told of this webhook');
      return;
    }
    const payload: SyncNotification = { repo, from: this.id };
    try {
      await client.query('SELECT pg_notify($1, $2)', [syncChannel(entryOf(repo)), JSON.stringify(payload)]);
    } catch (err) {
      this.#logger.warn({ repo, err: scrubError(err, this.#secrets) }, 'sync bus: NOTIFY failed; the other replicas are not told of this webhook');
    }
  }

  /** {@inheritDoc SyncSignals.onSignal} */
  onSignal(handler: (repo: string) => void): () => void {
    this.#handlers.add(handler);
    return () => {
      this.#handlers.delete(handler);
    };
  }

  /** Stops reconnecting and closes the connection. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#connecting?.catch(() => undefined);
    const client = this.#client;
    this.#client = null;
    this.#handlers.clear();
    if (client !== null) await client.end().catch(() => undefined);
  }

  #connect(): Promise<void> {
    this.#connecting ??= this.#attemptConnect().finally(() => {
      this.#connecting = null;
    });
    return this.#connecting;
  }

  async #attemptConnect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.#connectionString,
      connectionTimeoutMillis: this.#connectTimeoutMs,
      keepAlive: true,
      application_name: 'config-service-sync',
    });
    let dropped = false;
    const drop = (err?: unknown): void => {
      if (dropped) return;
      dropped = true;
      client.removeListener('notification', onNotification);
      if (this.#client === client) this.#client = null;
      void client.end().catch(() => undefined);
      if (this.#closed) return;
      this.#logger.warn(
        err === undefined ? {} : { err: scrubError(err, this.#secrets) },
        'sync bus: the PostgreSQL LISTEN connection dropped; reconnecting',
      );
      this.#scheduleReconnect();
    };
    const onNotification = (msg: pg.Notification): void => this.#onNotification(msg);
    // Without an 'error' listener a broken socket would crash the process.
    client.on('error', (err) => drop(err));
    client.on('end', () => drop());
    client.on('notification', onNotification);
    try {
      await client.connect();
      for (const channel of this.#channels.keys()) await client.query(`LISTEN "${channel}"`);
    } catch (err) {
      if (dropped) return; // 'error' / 'end' already logged it and scheduled the retry
      dropped = true;
      client.removeListener('notification', onNotification);
      void client.end().catch(() => undefined);
      if (this.#closed) return;
      this.#logger.warn({ err: scrubError(err, this.#secrets), attempt: this.#attempt + 1 }, 'sync bus: cannot LISTEN on PostgreSQL; retrying');
      this.#scheduleReconnect();
      return;
    }
    if (this.#closed || dropped) {
      if (!dropped) void client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#attempt = 0;
    const reconnected = this.#everListened;
    this.#everListened = true;
    this.#logger.info({ replica: this.id, channels: [...this.#channels.keys()], reconnected }, 'sync bus: listening for sync signals');
    // Signals sent while this replica was away are lost: catch up once (a template entry's
    // name reaches no store; its mirrors catch up at their next poll).
    if (reconnected) for (const repo of this.#channels.values()) this.#emit(repo);
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#timer !== null) return;
    const base = Math.min(this.#maxMs, this.#minMs * 2 ** Math.min(this.#attempt, 20));
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    this.#attempt++;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#connect();
    }, delay);
    this.#timer.unref();
  }

  #onNotification(msg: pg.Notification): void {
    const repo = this.#channels.get(msg.channel);
    if (repo === undefined) return;
    const note = parseSyncNotification(msg.payload);
    if (note === undefined || entryOf(note.repo) !== repo || note.from === this.id) return;
    this.#emit(note.repo);
  }

  #emit(repo: string): void {
    for (const handler of [...this.#handlers]) {
      try {
        handler(repo);
      } catch (err) {
        this.#logger.warn({ repo, err: scrubError(err, this.#secrets) }, 'sync bus: a signal handler failed');
      }
    }
  }
}
