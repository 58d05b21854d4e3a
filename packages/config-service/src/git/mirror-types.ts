/**
 * The types of `GitMirror` (mirror.ts): its options, what a sync returns, and the state
 * `/health/ready` and the metrics show.
 */
import type { GitCredentials } from './credentials.js';

/** pino-compatible logger: `(object, message)`. */
export interface MirrorLogger {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
  debug(obj: Record<string, unknown>, msg: string): void;
}

/** Options of {@link GitMirror}. */
export interface GitMirrorOptions {
  /** Repository name (`config`, or `<template>/<app>`); appears in logs and errors. */
  readonly name: string;
  /** Remote URL, `http:` or `https:`; credentials embedded in it are taken out (never logged). */
  readonly url: string;
  /** Service data directory: nothing is written outside it. */
  readonly dataDir: string;
  /** The mirror's folder inside `dataDir`; default `<dataDir>/mirrors/<name>.git`. */
  readonly gitdir?: string;
  /** Branch served when a request names no ref. */
  readonly defaultBranch: string;
  /** Credentials (read anew for every fetch); override those in the URL. */
  readonly credentials?: GitCredentials | { readonly username?: string; readonly password?: string };
  /** Polling period in ms after {@link GitMirror.start}; default 30000; 0 = no polling (failures are still retried). */
  readonly pollIntervalMs?: number;
  /** Longest one sync may take, in ms; default 120000. */
  readonly syncTimeoutMs?: number;
  /** TCP connect (+ TLS handshake) deadline of each request, in ms; default 10000. */
  readonly connectTimeoutMs?: number;
  /** Longest silence on a connection, in ms; default 60000. */
  readonly idleTimeoutMs?: number;
  /** First retry delay after a failed sync, in ms; default 1000. */
  readonly retryMinMs?: number;
  /** Largest retry delay, in ms; default 300000. */
  readonly retryMaxMs?: number;
  /** Trees kept in the read cache (entries); default 20000. */
  readonly treeCacheEntries?: number;
  /** Where sync events go (never with a credential). */
  readonly logger: MirrorLogger;
}

/** One ref a sync changed. Ref names are the remote's (`refs/heads/main`, `refs/tags/v1`). */
export interface RefUpdate {
  readonly ref: string;
  /** Object id before, or `null` for a new ref. */
  readonly from: string | null;
  /** Object id after, or `null` for a ref deleted on the remote. */
  readonly to: string | null;
  /** `true` for a non-fast-forward move (force-push, or a tag moved). */
  readonly forced: boolean;
}

/** Outcome of a successful {@link GitMirror.sync}. */
export interface SyncResult {
  /** `true` when this sync created the mirror. */
  readonly initial: boolean;
  /** Commit at the head of the default branch after the sync. */
  readonly commit: string;
  /** Refs created, moved or deleted (empty when nothing changed). */
  readonly updates: readonly RefUpdate[];
  /** How many of `updates` were non-fast-forward. */
  readonly forcedUpdates: number;
  /** Wall time of the sync in ms. */
  readonly durationMs: number;
}

/** Counters of a mirror (kept for callers of earlier versions; see {@link MirrorStatus}). */
export interface MirrorStats {
  readonly syncs: number;
  readonly failures: number;
  readonly forcedUpdates: number;
  /** End of the last successful sync (kept on disk, so also after a restart). */
  readonly lastSuccessAt?: Date;
  /** Message of the last failure (sanitized); cleared by a success. */
  readonly lastError?: string;
  /** `CFG_ERR_REPO_UNAVAILABLE` or `CFG_ERR_REPO_AUTH_FAILED`; cleared by a success. */
  readonly lastErrorCode?: string;
}

/**
 * What a mirror is doing: `ok` (last sync succeeded), `cloning` (no mirror yet, first sync
 * not failed), `repo_unavailable`, `repo_auth_failed` (the remote refused the credentials),
 * `mirror_invalid` (the mirror on disk was refused and not yet cloned again).
 */
export type MirrorState = 'ok' | 'cloning' | 'repo_unavailable' | 'repo_auth_failed' | 'mirror_invalid';

/** Everything `/health/ready` and the metrics show about a mirror. */
export interface MirrorStatus {
  readonly state: MirrorState;
  /** A snapshot is published: configuration can be served. */
  readonly ready: boolean;
  /** Commit of the default branch served, or `null`. */
  readonly commit: string | null;
  /** When `commit` was fetched (kept on disk). */
  readonly commitFetchedAt: Date | null;
  /** End of the last successful sync (kept on disk). */
  readonly lastSyncAt: Date | null;
  /** Start of the last sync attempt of this process. */
  readonly lastAttemptAt: Date | null;
  readonly lastError: string | null;
  readonly lastErrorCode: string | null;
  /** When the next poll or retry is due (after {@link GitMirror.start}). */
  readonly nextAttemptAt: Date | null;
  readonly syncing: boolean;
  readonly consecutiveFailures: number;
  readonly syncs: number;
  readonly failures: number;
  readonly forcedUpdates: number;
  /** The last refusal of the mirror on disk by this process: path and reason. */
  readonly refused: { readonly at: Date; readonly path: string; readonly reason: string } | null;
}

