/**
 * The audit log (SPEC §6): the store contract, its implementations, the hash chain and the
 * export formats. The HTTP layer and the CLI import from here only.
 */
import { CFG_ERR_SETTINGS_INVALID } from '../errors.js';
import type { Settings } from '../settings/schema.js';
import { DEFAULT_POSTGRES_AUDIT_TABLE, openPostgresAuditStore } from './postgres-store.js';
import { openSqliteAuditStore } from './sqlite-store.js';
import type { StoreCheckpointOptions } from './checkpoint-schedule.js';
import { loadCheckpointKeys, type CheckpointKeys } from './checkpoint.js';
import type { AuditLogger, AuditStore } from './types.js';
import { logAuditCheckpoint, rawJsonLogger, type AuditLineLogger } from './log-line.js';

export type {
  AppendOptions,
  AuditActor,
  AuditClaimedActor,
  AuditEvent,
  AuditEventInput,
  AuditLogger,
  AuditPage,
  AuditQuery,
  AuditStore,
  AuditStoreHealth,
  AuditStoreStats,
  ChainBreakReason,
  ChainExamination,
  CheckpointQuery,
  ExamineOptions,
  VerifyResult,
} from './types.js';
export {
  checkCheckpointSignature,
  checkpointJson,
  loadCheckpointKeys,
  parseCheckpointEvidence,
  readPublicKeyFiles,
  type Checkpoint,
  type CheckpointKeys,
  type CheckpointPublicKey,
  type CheckpointSigner,
  type EvidenceCheckpoint,
} from './checkpoint.js';
export { defaultWriterId, type StoreCheckpointOptions } from './checkpoint-schedule.js';
export { verifyAuditStore, type AuditVerdict, type VerifyAuditOptions, type VerdictBreakReason } from './verify-report.js';
export { runWitness, type WitnessOptions, type WitnessResult } from './witness.js';
export { logAuditCheckpoint, logAuditEvent, rawJsonLogger, RawJson } from './log-line.js';
export {
  GENESIS_HASH,
  canonicalJson,
  computeEventHash,
  verifyChain,
  verifyChainAsync,
  type CanonicalValue,
  type ChainAnchor,
} from './chain.js';
export {
  DEFAULT_QUERY_LIMIT,
  MAX_QUERY_LIMIT,
  SqliteAuditStore,
  openSqliteAuditStore,
  type SqliteAuditStoreOptions,
} from './sqlite-store.js';
export {
  DEFAULT_POSTGRES_AUDIT_TABLE,
  PostgresAuditStore,
  openPostgresAuditStore,
  type PostgresAuditStoreOptions,
} from './postgres-store.js';
export { startAuditRetention, type AuditRetention, type AuditRetentionOptions } from './retention.js';
export { startAuditHealthProbe, type AuditHealthProbe, type AuditHealthProbeOptions } from './health-probe.js';
export { MAX_DEFERRED_EVENTS } from './commit-queue.js';
export { AUDIT_CSV_COLUMNS, AUDIT_EXPORT_CONTENT_TYPES, formatAuditEvents, type AuditExportFormat } from './format.js';

/** Settings of the SQLite store (the default). */
export interface SqliteAuditStoreSettings {
  kind: 'sqlite';
  /** Path of the database file; created when missing. */
  path: string;
  /** How long a write waits for another connection's lock, in ms (the service uses `audit.commitTimeoutMs`). */
  busyTimeoutMs?: number;
}

/** Settings of the PostgreSQL store (several replicas share it, SPEC §10). */
export interface PostgresAuditStoreSettings {
  kind: 'postgres';
  /** The connection string, read from the environment; holds a password, never logged. */
  connectionString: string;
  /** Table of the events; created when missing. */
  table: string;
  /** Most connections the store opens. */
  poolSize: number;
  /** Most milliseconds opening (or waiting for) a connection may take (`audit.postgres.connectTimeoutMs`). */
  connectTimeoutMs?: number;
  /** Most milliseconds one statement may run (`audit.postgres.queryTimeoutMs`). */
  queryTimeoutMs?: number;
}

/** Which audit store to open, as the service settings give it: a union on `kind`. */
export type AuditStoreSettings = SqliteAuditStoreSettings | PostgresAuditStoreSettings;

/**
 * The part of the service settings (`audit.*`) {@link auditStoreSettings} reads; loaded
 * settings fit, and absent timeouts take their defaults.
 */
export interface AuditSettingsInput {
  store: Settings['audit']['store'];
  sqlitePath?: string | undefined;
  /** `audit.commitTimeoutMs`: also how long a SQLite write waits for the file's lock. */
  commitTimeoutMs?: number | undefined;
  checkpoints?: {
    keys: readonly { id: string; privateKeyFile?: string | undefined; privateKeyEnv?: string | undefined; publicKeyFile?: string | undefined }[];
    signingKey?: string | undefined;
  };
  postgres?:
    | {
        connectionStringEnv?: string | undefined;
        table?: string | undefined;
        poolSize?: number | undefined;
        connectTimeoutMs?: number | undefined;
        queryTimeoutMs?: number | undefined;
      }
    | undefined;
}

/** Default environment variable holding the PostgreSQL connection string. */
export const DEFAULT_AUDIT_DATABASE_URL_ENV = 'CONFIG_SERVICE_AUDIT_DATABASE_URL';

/**
 * The {@link AuditStoreSettings} that the service settings (`audit.*`) and the environment
 * name. The one place `serve` and the `audit` commands build them, so they always open the
 * same store. For PostgreSQL the connection string is read from the variable
 * `audit.postgres.connectionStringEnv` names (default `CONFIG_SERVICE_AUDIT_DATABASE_URL`):
 * it carries a password, so it is never a setting value.
 *
 * @param settings loaded settings (`sqlitePath` is always set by `loadSettings`).
 * @param env the environment to read the connection string from.
 * @throws CFG_ERR_SETTINGS_INVALID when PostgreSQL is chosen and the variable is unset or
 *   empty (the message names the variable, never a value).
 */
export function auditStoreSettings(
  settings: { readonly audit: Readonly<AuditSettingsInput> },
  env: Readonly<Record<string, string | undefined>>,
): AuditStoreSettings {
  const audit = settings.audit;
  switch (audit.store) {
    case 'sqlite':
      if (!audit.sqlitePath) throw new CFG_ERR_SETTINGS_INVALID('  audit.sqlitePath: not set');
      return { kind: 'sqlite', path: audit.sqlitePath, ...(audit.commitTimeoutMs !== undefined && { busyTimeoutMs: audit.commitTimeoutMs }) };
    case 'postgres': {
      const envName = audit.postgres?.connectionStringEnv ?? DEFAULT_AUDIT_DATABASE_URL_ENV;
      const connectionString = env[envName];
      if (!connectionString) {
        throw new CFG_ERR_SETTINGS_INVALID(
          `  audit.postgres.connectionStringEnv: the environment variable ${envName} must hold the PostgreSQL connection string (audit.store is 'postgres')`,
        );
      }
      return {
        kind: 'postgres',
        connectionString,
        table: audit.postgres?.table ?? DEFAULT_POSTGRES_AUDIT_TABLE,
        poolSize: audit.postgres?.poolSize ?? 10,
        connectTimeoutMs: audit.postgres?.connectTimeoutMs ?? 5000,
        queryTimeoutMs: audit.postgres?.queryTimeoutMs ?? 5000,
      };
    }
    default: {
      const unknownStore: never = audit.store;
      throw new TypeError(`Unknown audit store: ${String(unknownStore)}`);
    }
  }
}

/**
 * The checkpoint keys of `audit.checkpoints` (none when the section is absent).
 * @throws CFG_ERR_SETTINGS_INVALID naming the setting (see `loadCheckpointKeys`).
 */
export function auditCheckpointKeys(settings: { readonly audit: Readonly<AuditSettingsInput> }, env: Readonly<Record<string, string | undefined>>): CheckpointKeys {
  const cp = settings.audit.checkpoints;
  return cp ? loadCheckpointKeys(cp, env) : { publicKeys: [] };
}

/**
 * Opens the audit store of the service settings with their signed checkpoints
 * (`audit.checkpoints`): each checkpoint is also written to the log stream, where log
 * shippers keep copies the database's administrator cannot reach (docs/audit.md). Every
 * process that writes the chain or prunes it (`serve`, each worker and the primary of
 * `server.workers`) opens its store here, so retention anchors are signed too.
 *
 * @param logger the service logger (pino): operational messages and checkpoint lines.
 * @param opts.warnWhenUnsigned log once that checkpoints are off when no signing key is set.
 * @returns the store, the settings it was opened with, and whether checkpoints are signed.
 * @throws CFG_ERR_SETTINGS_INVALID (settings or keys), CFG_ERR_AUDIT_UNAVAILABLE (the store).
 */
export async function openServiceAuditStore(
  settings: { readonly audit: Readonly<AuditSettingsInput> & { readonly checkpoints: { everyEvents: number; intervalMs: number } } },
  env: Readonly<Record<string, string | undefined>>,
  logger: AuditLogger & AuditLineLogger,
  opts: { warnWhenUnsigned: boolean },
): Promise<{ store: AuditStore; storeSettings: AuditStoreSettings; checkpointsSigned: boolean }> {
  const storeSettings = auditStoreSettings(settings, env);
  const keys = auditCheckpointKeys(settings, env);
  const checkpointLog = rawJsonLogger(logger);
  const store = await createAuditStore(
    storeSettings,
    logger,
    keys.signer && {
      signer: keys.signer,
      everyEvents: settings.audit.checkpoints.everyEvents,
      intervalMs: settings.audit.checkpoints.intervalMs,
      onCheckpoint: (_cp, json) => logAuditCheckpoint(checkpointLog, json),
    },
  );
  if (!keys.signer && opts.warnWhenUnsigned) {
    logger.warn(
      { setting: 'audit.checkpoints.keys' },
      'audit checkpoints are off: no signing key is configured; audit verify cannot prove that the newest events were not deleted (docs/audit.md)',
    );
  }
  return { store, storeSettings, checkpointsSigned: keys.signer !== undefined };
}

/**
 * Opens the audit store the settings name. Asynchronous so that stores that must connect
 * first (PostgreSQL) fit the same call.
 *
 * @param logger receives operational messages (write failures, recovery), not events.
 * @param checkpoints the signing key and schedule of signed checkpoints; absent: none.
 * @throws (rejects) CFG_ERR_AUDIT_UNAVAILABLE (503) when the store cannot be opened (`cause`
 *   set; for PostgreSQL scrubbed of the connection string's credentials).
 */
export async function createAuditStore(settings: AuditStoreSettings, logger?: AuditLogger, checkpoints?: StoreCheckpointOptions): Promise<AuditStore> {
  switch (settings.kind) {
    case 'sqlite':
      return openSqliteAuditStore({
        path: settings.path,
        ...(settings.busyTimeoutMs !== undefined && { busyTimeoutMs: settings.busyTimeoutMs }),
        ...(logger && { logger }),
        ...(checkpoints && { checkpoints }),
      });
    case 'postgres':
      return openPostgresAuditStore({
        connectionString: settings.connectionString,
        table: settings.table,
        poolSize: settings.poolSize,
        ...(settings.connectTimeoutMs !== undefined && { connectTimeoutMs: settings.connectTimeoutMs }),
        ...(settings.queryTimeoutMs !== undefined && { queryTimeoutMs: settings.queryTimeoutMs }),
        ...(logger && { logger }),
        ...(checkpoints && { checkpoints }),
      });
    default: {
      const unknownKind: never = settings;
      throw new TypeError(`Unknown audit store kind: ${String((unknownKind as { kind: unknown }).kind)}`);
    }
  }
}
