/**
 * The audit log (SPEC §6): the store contract, its implementations, the hash chain and the
 * export formats. The HTTP layer and the CLI import from here only.
 */
import { openSqliteAuditStore } from './sqlite-store.js';
import type { AuditLogger, AuditStore } from './types.js';

export type {
  AuditActor,
  AuditEvent,
  AuditEventInput,
  AuditLogger,
  AuditPage,
  AuditQuery,
  AuditStore,
  AuditStoreStats,
  ChainBreakReason,
  VerifyResult,
} from './types.js';
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
export { AUDIT_CSV_COLUMNS, AUDIT_EXPORT_CONTENT_TYPES, formatAuditEvents, type AuditExportFormat } from './format.js';

/** Settings of the SQLite store (the default). */
export interface SqliteAuditStoreSettings {
  kind: 'sqlite';
  /** Path of the database file; created when missing. */
  path: string;
}

/**
 * Which audit store to open, as the service settings give it. A union on `kind`: the
 * PostgreSQL store adds `{ kind: 'postgres'; url: string; ... }` here and a `case` in
 * {@link createAuditStore}; the `never` check there makes the compiler point at it.
 */
export type AuditStoreSettings = SqliteAuditStoreSettings;

/**
 * Opens the audit store the settings name. Asynchronous so that stores that must connect
 * first (PostgreSQL) fit the same call.
 *
 * @param logger receives operational messages (write failures, recovery), not events.
 * @throws (rejects) CFG_ERR_AUDIT_UNAVAILABLE (503) when the store cannot be opened (`cause` set).
 */
export async function createAuditStore(settings: AuditStoreSettings, logger?: AuditLogger): Promise<AuditStore> {
  switch (settings.kind) {
    case 'sqlite':
      return openSqliteAuditStore(logger ? { path: settings.path, logger } : { path: settings.path });
    default: {
      const unknownKind: never = settings.kind;
      throw new TypeError(`Unknown audit store kind: ${String(unknownKind)}`);
    }
  }
}
