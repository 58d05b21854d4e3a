/**
 * The data model and the store contract of the audit log (SPEC §6, query SPEC §5.2).
 *
 * An {@link AuditStore} is injected into the HTTP layer; SQLite (`sqlite-store.ts`) is the
 * default implementation, and a PostgreSQL one must pass the same contract tests. Every
 * store keeps the events in one tamper-evident hash chain (`chain.ts`).
 *
 * Nothing in an event is ever a configuration value or a credential: secrets appear only
 * by key name, and the body served only by its SHA-256.
 */

/**
 * What an UNVERIFIED client certificate claims (it was untrusted, revoked, expired...):
 * recorded for the investigation, never as the identity. Every field is optional.
 */
export interface AuditClaimedActor {
  /** The subject the certificate would map to (identity patterns), had it verified. */
  subject?: string;
  /** Lower-case hex SHA-256 of the presented certificate (DER). */
  fingerprint256?: string;
  /** The issuer DN the certificate names (not checked). */
  issuer?: string;
}

/** Who made the request. */
export interface AuditActor {
  /** How the caller authenticated; `anonymous` when it did not (the request was denied). */
  kind: 'certificate' | 'jwt' | 'anonymous';
  /**
   * The VERIFIED identity: the application/subject derived from a certificate that
   * verified, or the `sub` of a token that verified. Absent when the credential did not
   * verify; `audit query --actor` and `GET /v1/audit?actor=` match this field only.
   */
  subject?: string;
  /** Lower-case hex SHA-256 of the client certificate (DER); verified certificates only. */
  fingerprint256?: string;
  /** The certificate issuer DN (verified certificates), or the JWT `iss`. */
  issuer?: string;
  /**
   * A client certificate that did NOT verify (untrusted CA, revoked, expired, ...): what it
   * claims, kept apart from `subject` so forged attempts never count as that subject.
   */
  claimed?: AuditClaimedActor;
}

/** One API request, as the HTTP layer reports it. The store adds `seq` and the hashes. */
export interface AuditEventInput {
  /** When the request arrived: ISO 8601 UTC with milliseconds, `YYYY-MM-DDTHH:mm:ss.sssZ`. */
  time: string;
  /** The request id (also in the application log and the `Request-Id` response header). */
  requestId: string;
  actor: AuditActor;
  /** The peer IP address as the listener saw it. */
  clientAddress?: string;
  /** What was asked: `config.read`, `files.read`, `audit.read`, `encrypt`, ... */
  action: string;
  /** The application the request was about, when it names one. */
  app?: string;
  /** The repository read or synced (`repositories[].name`, or `<template>/<app>`), when the request reached one. */
  repository?: string;
  /** The profiles asked for, in request order (empty when none). */
  profiles: string[];
  /** The ref asked for (branch, tag or commit), as the caller wrote it. */
  ref?: string;
  /** The full commit id served. */
  commit?: string;
  /** The output format served (`json`, `yaml`, `properties`, `env`, `dotenv`, ...). */
  format?: string;
  outcome: 'allowed' | 'denied' | 'error';
  /** The HTTP status code of the response. */
  status: number;
  /** Why: a problem code (`app_not_found`) or the policy rule that decided. Never a value. */
  reason?: string;
  /** Names of the secret keys in the body served (`spring.datasource.password`), never values. */
  secretKeys: string[];
  /**
   * Ids of the keys (`secrets.keys[].id`) that decrypted the secrets served, sorted; for a
   * failed decryption, the key id it named. Absent when no key was used.
   */
  secretKeyIds?: string[];
  /** Lower-case hex SHA-256 of the exact response body bytes served. */
  bodySha256?: string;
  /** Time spent serving the request, in milliseconds (may be fractional). */
  durationMs: number;
}

/** An event as stored: its input plus its place in the hash chain. */
export interface AuditEvent extends AuditEventInput {
  /**
   * Position in the chain: 1 for the first event ever stored, then +1 without gaps. A
   * number is never given twice: it comes from the store's counter, which deleting rows
   * does not roll back.
   */
  seq: number;
  /** `hash` of the event with `seq - 1`; 64 zeros (`GENESIS_HASH` in `chain.ts`) for `seq` 1. */
  prevHash: string;
  /** Lower-case hex SHA-256 of this event; see `computeEventHash` in `chain.ts`. */
  hash: string;
}

/**
 * A query of the audit log (`GET /v1/audit`). Every filter is optional and they combine
 * with AND. `app`, `actor`, `action`, `outcome` and `commit` are exact, case-sensitive
 * matches; `since` and `until` bound `time`.
 */
export interface AuditQuery {
  app?: string;
  /** Exact match on `actor.subject`. */
  actor?: string;
  action?: string;
  outcome?: AuditEventInput['outcome'];
  /** Inclusive lower bound on `time` (any ISO 8601 instant `Date` parses; compared in UTC). */
  since?: string;
  /** Exclusive upper bound on `time`. */
  until?: string;
  /** Exact (full) commit id. */
  commit?: string;
  /** Exact request id (the `Request-Id` response header): a client proves its own read was recorded. */
  requestId?: string;
  /** `nextCursor` of the previous page; absent for the first page. */
  cursor?: string;
  /** Events per page: an integer ≥ 1; default 100, values above 1000 are treated as 1000. */
  limit?: number;
}

/** One page of a query, newest event (highest `seq`) first. */
export interface AuditPage {
  events: AuditEvent[];
  /** Opaque cursor for the next (older) page; absent when this is the last page. */
  nextCursor?: string;
}

/** Why the chain is broken at an event. */
export type ChainBreakReason =
  /** The event's own content does not hash to its stored `hash`. */
  | 'hash mismatch'
  /** `prevHash` is not the `hash` of the event before (or the genesis hash). */
  | 'prev-hash mismatch'
  /** `seq` is not the previous `seq` + 1 (an event was removed or inserted). */
  | 'sequence gap'
  /**
   * The chain ends before an event known to have been written: the store's counter, or a
   * signed checkpoint, names a later `seq` (the newest events were deleted).
   * `firstBreak.seq` is the first missing `seq`.
   */
  | 'missing events'
  /** The store's counter of the last event written disagrees with the stored chain (it was edited). */
  | 'counter mismatch'
  /** An event's hash differs from the one a signed checkpoint recorded for its `seq` (the chain was rewritten). */
  | 'checkpoint mismatch'
  /** A store's indexed columns disagree with the stored event (filters would lie). */
  | 'column mismatch'
  /** A store row could not be read back as an event at all. */
  | 'malformed event';

/** The result of checking a chain. */
export interface VerifyResult {
  /** True when every event checked is intact and linked. */
  ok: boolean;
  /** Events examined, including the one that broke the chain. */
  checked: number;
  /**
   * The first event at which the chain is broken (verification stops there). `detail`
   * explains the reasons that compare the chain with something else (`missing events`,
   * `counter mismatch`, `checkpoint mismatch`).
   */
  firstBreak?: { seq: number; reason: ChainBreakReason; detail?: string };
}

/** What {@link AuditStore.examine} checks the chain against. */
export interface ExamineOptions {
  /** Hashes the chain must pass through (signed checkpoints whose signatures were checked). */
  expect?: readonly ExpectedHash[];
}

/** The full result of {@link AuditStore.examine}: the verdict and what it was based on. */
export interface ChainExamination extends VerifyResult {
  /** The store's id (kept in the database; checkpoints name it). */
  storeId: string;
  /** The store's counter of the last event written; absent when its row is missing (then `firstBreak` says so). */
  head?: ChainHead;
  /** Where the stored chain starts: `seq` 1 after the genesis hash, or the retention anchor. */
  start: ChainAnchor;
  /**
   * The retention anchor the chain starts from, when a prune left one: `checkpoint` is the
   * text of its signed retention checkpoint, `null` when it is unsigned (no key was
   * configured when it was written, or it was forged).
   */
  anchor?: { seq: number; prevHash: string; checkpoint: string | null };
  /** Expectations that were older than the start of the chain (pruned), so not checked. */
  beforeStart: readonly ExpectedHash[];
  /** How many expectations the chain was found to pass through. */
  matched: number;
}

/** Which checkpoints {@link AuditStore.checkpoints} returns. */
export interface CheckpointQuery {
  /** Only checkpoints with a `seq` above this; default 0 (all). */
  after?: number;
  /** Most checkpoints returned: an integer ≥ 1; default 100, values above 1000 are treated as 1000. */
  limit?: number;
}

/** Counters a store keeps for metrics and tests. All counts since the store was opened. */
export interface AuditStoreStats {
  /** Write transactions committed. */
  transactions: number;
  /** Write transactions that failed (all their events were rejected). */
  failedTransactions: number;
  /** Events committed. */
  events: number;
  /** Events in the largest committed transaction. */
  maxBatchSize: number;
  /**
   * Appends whose caller stopped waiting (`timeoutMs` of {@link AppendOptions} passed)
   * before their transaction committed; the request was refused with 503.
   */
  commitTimeouts: number;
  /**
   * Of {@link AuditStoreStats.commitTimeouts}, those whose transaction was already sent to
   * the database: the event may still have been committed (its acknowledgement was lost).
   */
  inDoubt: number;
  /** Health probes run ({@link AuditStore.probe}), and how many of them failed. */
  probes: number;
  probeFailures: number;
  /** Events queued with {@link AuditStore.appendEventually} and not committed yet. */
  deferredPending: number;
  /** Deferred events dropped (queue full, or still failing when the store closed). */
  deferredDropped: number;
}

/** Options of {@link AuditStore.append}. */
export interface AppendOptions {
  /**
   * Most milliseconds the caller waits for the commit. Then the promise rejects with
   * CFG_ERR_AUDIT_UNAVAILABLE (`data.timedOut: true`): an event no transaction has taken
   * yet is withdrawn (never written); an event whose transaction is already in flight
   * may still be committed (`data.inDoubt: true`). Either way the store turns unhealthy
   * until a commit or a probe succeeds. Absent: wait as long as the store's own timeouts.
   */
  timeoutMs?: number;
}

/** The state readiness and metrics show. */
export interface AuditStoreHealth {
  /** False after a write, a probe or a commit wait failed, until a commit or probe succeeds; false once closed. */
  healthy: boolean;
  /** Why the store is unhealthy, naming the store and the failure (never a credential). */
  reason?: string;
  /** ISO 8601 UTC time since when it is unhealthy. */
  since?: string;
}

/**
 * The minimal logger a store writes its operational messages to; a pino logger fits.
 * Audit events themselves are not written here (the audit plugin does that).
 */
export interface AuditLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * Where audit events are kept.
 *
 * Errors: every operation that cannot reach the storage rejects with
 * `CFG_ERR_AUDIT_UNAVAILABLE` (HTTP 503, `cause` set to the underlying error); a malformed
 * query rejects with `CFG_ERR_INVALID_REQUEST` (400); a malformed event rejects with a
 * `TypeError` (a bug in the caller).
 */
export interface AuditStore {
  /**
   * The store's id: a UUID created with the store and kept in the database. Checkpoints
   * carry it. Resolves once the store is open.
   */
  storeId(): Promise<string>;
  /**
   * Records one event. Resolves with the stored event only once it is durably committed
   * (fsynced), so a response may be sent; events appended concurrently are committed
   * together (group commit) and get consecutive `seq` in call order.
   */
  append(event: AuditEventInput, options?: AppendOptions): Promise<AuditEvent>;
  /**
   * Queues an event to be committed as soon as the store can, without a caller waiting:
   * it is retried after a failed transaction (in transactions of its own, after the next
   * successful commit or probe) and never rejects. Used for the record of a request
   * refused with 503 `audit_unavailable`. At most 10 000 such events wait in memory; more
   * are dropped (logged, counted in `deferredDropped`), as are those still failing at
   * {@link AuditStore.close}. Ignored once the store is closed.
   * @throws TypeError for a malformed event.
   */
  appendEventually(event: AuditEventInput): void;
  /**
   * Checks that a write transaction could commit now, without writing an event: the store
   * turns healthy when it passes and unhealthy (naming why) when it fails or does not
   * finish within `timeoutMs`. Never rejects. PostgreSQL: a transaction that takes the
   * chain's advisory lock, checks the database is not read-only and reads the chain tail;
   * SQLite: a `BEGIN IMMEDIATE` transaction (the write lock) that reads the tail.
   */
  probe(timeoutMs: number): Promise<void>;
  /** One page of events matching `q`, newest first. */
  query(q: AuditQuery): Promise<AuditPage>;
  /**
   * Checks the whole stored chain and names the first break. It starts at `seq` 1 after
   * the genesis hash, or, once {@link AuditStore.prune} has removed old events, at the
   * anchor the last prune recorded (the `seq` and `prevHash` the oldest remaining event
   * must carry), so `checked` counts the remaining events only.
   */
  verify(): Promise<VerifyResult>;
  /**
   * Retention by age (SPEC §6): deletes the oldest events whose `time` is before `before`,
   * and records, in the SAME transaction, the anchor the chain now starts from: `seq` + 1
   * and `hash` of the last event deleted (which is the `seq` and `prevHash` of the oldest
   * remaining event, or of the next event appended when every event was deleted).
   * {@link AuditStore.verify} starts from that anchor and appends keep chaining after the
   * last event ever stored, so the chain stays verifiable. With a signing key configured
   * the anchor carries a signed `retention` checkpoint of the last event deleted (also
   * stored with the other checkpoints and given to `onCheckpoint`), so a forged anchor is
   * refused by `audit verify`; stored checkpoints older than it are deleted with the events.
   *
   * Only a prefix of the chain is deleted: deletion stops at the first event (in `seq`
   * order) whose `time` is not before `before`, so an event with an earlier time but a
   * later `seq` waits for a later prune instead of leaving a hole.
   *
   * @param before ISO 8601 instant (a date, or a date-time with `Z` or an offset).
   * @returns how many events were deleted (0 when none is old enough).
   * @throws (rejects) CFG_ERR_INVALID_REQUEST for a `before` that is not an instant;
   *   CFG_ERR_AUDIT_UNAVAILABLE when the store is closed or the transaction fails.
   */
  prune(before: string): Promise<{ deleted: number }>;
  /**
   * The full check behind {@link AuditStore.verify}: the chain from its start (genesis or
   * the retention anchor), each row's own consistency, the counter of the last event
   * written (`missing events` when the newest events were deleted, `counter mismatch` when
   * the counter was edited), and the expected hashes of `opts.expect`. Reads one snapshot
   * a page at a time. Signatures are not checked here (`verify-report.ts` does).
   * @throws (rejects) CFG_ERR_AUDIT_UNAVAILABLE when the database cannot be read.
   */
  examine(opts?: ExamineOptions): Promise<ChainExamination>;
  /**
   * Signs a checkpoint of the chain head now and stores it, when a signing key is
   * configured and this writer committed events since its last checkpoint (or `force`).
   * Resolves with it (also given to the `onCheckpoint` listener), or undefined when none
   * was due. Never rejects: a failure is logged and retried at the next opportunity.
   */
  checkpoint(force?: boolean): Promise<Checkpoint | undefined>;
  /**
   * Stored checkpoints (periodic, shutdown and retention ones, as signed), in `seq` order
   * (then in the order they were stored).
   * @throws (rejects) CFG_ERR_INVALID_REQUEST for a bad `after` or `limit`;
   *   CFG_ERR_AUDIT_UNAVAILABLE when the database cannot be read.
   */
  checkpoints(q?: CheckpointQuery): Promise<Checkpoint[]>;
  /** Commits every pending event, signs a last checkpoint (when due), then releases the storage. Idempotent. */
  close(): Promise<void>;
  /**
   * False after a write, a probe or a commit wait failed, until a later commit or probe
   * succeeds; false once closed. Drives readiness and metrics (SPEC §6: fails closed).
   */
  readonly healthy: boolean;
  /** {@link AuditStore.healthy} with the reason and since when. */
  readonly health: Readonly<AuditStoreHealth>;
  /** Counters for metrics. */
  readonly stats: Readonly<AuditStoreStats>;
}

/** Where a chain (or the verified part of it) starts. */
export interface ChainAnchor {
  /** `seq` of the first event expected; default 1. */
  seq: number;
  /** `prevHash` the first event must carry; default `GENESIS_HASH` (chain.ts). */
  prevHash: string;
}

/**
 * A hash the chain must have at a `seq`: a signed checkpoint (already checked), from the
 * store's own checkpoint table or from outside evidence.
 */
export interface ExpectedHash {
  seq: number;
  hash: string;
  /** Where it comes from, for the verdict (`witness.ndjson:3`, `stored checkpoint`). */
  source: string;
}

/** The store's counter: the last event ever written, which a deletion of rows does not roll back. */
export interface ChainHead {
  /** 0 when no event was ever written. */
  seq: number;
  /** The hash of that event; `GENESIS_HASH` (chain.ts) when none. */
  hash: string;
}

/** One signed checkpoint. */
export interface Checkpoint {
  /** `checkpoint` (the chain head) or `retention` (the last event a prune deleted). */
  kind: 'checkpoint' | 'retention';
  /** The store's id (a UUID kept in the database), so checkpoints of another store never match. */
  storeId: string;
  /** Which process signed it (`<host>/<pid>` by default). Informational. */
  writerId: string;
  /** `seq` of the event the checkpoint is about (≥ 1). */
  seq: number;
  /** That event's `hash` (64 lower-case hex). */
  hash: string;
  /** When it was signed: ISO 8601 UTC with milliseconds. */
  time: string;
  /** `audit.checkpoints.keys[].id` of the signing key. */
  keyId: string;
  /** Ed25519 signature, base64. */
  signature: string;
}
