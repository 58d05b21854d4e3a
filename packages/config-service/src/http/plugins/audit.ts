/**
 * Audit plugin (SPEC §6): one event per API request, allowed or denied, committed to the
 * audit store BEFORE the response leaves (an `onSend` hook awaits the store's group
 * commit, at most `commitTimeoutMs`). When the store cannot commit in that time, the
 * response is replaced by 503 `audit_unavailable` and nothing is served: an unlogged read
 * of a secret is worse than a failed one. Each committed event is also written to the
 * pino log stream (`msg: "audit event"`), for log shippers: its `audit` member is the
 * stored event text itself (plus `hash` and `prevHash`), written without serialising the
 * event again (`audit/log-line.ts`).
 *
 * A refused request gets a second event, its refusal record: same `requestId`, status
 * 503, outcome `error`, reason `audit_unavailable:commit_timeout` or
 * `audit_unavailable:commit_failed`, nothing served (no commit, body hash nor secret
 * keys). It is queued with `appendEventually` (committed once the store can). The first
 * event may still have been committed when its transaction was in doubt; it then always
 * precedes the refusal record in the chain, which is how a reader tells that the request
 * was not served (docs/running.md, "When the audit store hangs").
 */
import { createHash } from 'node:crypto';
import fp from 'fastify-plugin';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { eventBodyJson } from '../../audit/chain.js';
import { eventLogJson, storedEventJson } from '../../audit/event-json.js';
import { logAuditEvent, rawJsonLogger } from '../../audit/log-line.js';
import type { AuditActor, AuditEvent, AuditEventInput, AuditStore } from '../../audit/types.js';
import { problem } from '../problem.js';

/** What a route tells the audit plugin about the request it served. */
export interface AuditContext {
  action: string;
  app?: string;
  /** The repository the request read or synced (`repositories[].name`, or `<template>/<app>`). */
  repository?: string;
  profiles: string[];
  ref?: string;
  commit?: string;
  format?: string;
  /** Names of secret keys in the body served (never values). */
  secretKeys: string[];
  /** Ids of the keys that decrypted the secrets served, or of the key a failed decryption named. */
  secretKeyIds?: string[];
}

declare module 'fastify' {
  interface FastifyInstance {
    auditStore: AuditStore;
    /** True when the audit store signs checkpoints (`audit.checkpoints.keys` has a private key). */
    auditCheckpoints: boolean;
  }
  interface FastifyRequest {
    audit: AuditContext;
    /** Problem code or policy rule that decided a rejection. */
    auditReason: string | undefined;
    auditActor: AuditActor;
  }
}

/** Options of the audit plugin. */
export interface AuditPluginOptions {
  store: AuditStore;
  /**
   * Most milliseconds a response waits for its event's commit (`audit.commitTimeoutMs`);
   * then it is answered 503 `audit_unavailable`. Absent: as long as the store's own
   * timeouts allow.
   */
  commitTimeoutMs?: number;
  /** The store signs checkpoints (`GET /v1/audit/checkpoints` serves them). Default false. */
  checkpoints?: boolean;
}

/** The refusal-record reason for an append that timed out or failed. */
function refusalReason(err: unknown): string {
  const data = (err as { data?: { timedOut?: unknown } }).data;
  return data?.timedOut === true ? 'audit_unavailable:commit_timeout' : 'audit_unavailable:commit_failed';
}

/**
 * Commits the event of a request, waiting at most `commitTimeoutMs`. When it cannot be
 * committed in that time, logs why (error level, the request's logger) and queues the
 * refusal record (`store.appendEventually`): `event` with status 503, outcome `error`, the
 * reason `audit_unavailable:commit_timeout` or `audit_unavailable:commit_failed`, and
 * nothing served: only the fields that identify the request (time, request id, actor,
 * client address, action, app, profiles, ref, format, duration) are copied.
 *
 * @returns the stored event, or undefined when the caller must answer 503
 *   `audit_unavailable` instead of the response it prepared.
 */
export async function commitOrRefuse(
  store: AuditStore,
  event: AuditEventInput,
  commitTimeoutMs: number | undefined,
  log: FastifyBaseLogger,
): Promise<AuditEvent | undefined> {
  try {
    return await store.append(event, commitTimeoutMs === undefined ? {} : { timeoutMs: commitTimeoutMs });
  } catch (err) {
    const reason = refusalReason(err);
    log.error(
      { err: { code: (err as { code?: string }).code, message: (err as Error).message }, reason, status: event.status },
      'audit event could not be committed; response withheld',
    );
    // Only what identifies the request (an allow-list: nothing about what would have been served).
    const { time, requestId, actor, clientAddress, action, app, profiles, ref, format, durationMs } = event;
    store.appendEventually({
      time,
      requestId,
      actor,
      ...(clientAddress !== undefined && { clientAddress }),
      action,
      ...(app !== undefined && { app }),
      profiles,
      ...(ref !== undefined && { ref }),
      ...(format !== undefined && { format }),
      outcome: 'error',
      status: 503,
      reason,
      secretKeys: [],
      durationMs,
    });
    return undefined;
  }
}

/** SHA-256 of bodies sent as Buffers, kept while the Buffer lives (a cached rendered response is hashed once). */
const bodyHashes = new WeakMap<Buffer, string>();

/** Hex SHA-256 of a response body. */
function bodySha256(body: string | Buffer): string {
  if (typeof body === 'string') return createHash('sha256').update(body).digest('hex');
  let hash = bodyHashes.get(body);
  if (hash === undefined) {
    hash = createHash('sha256').update(body).digest('hex');
    bodyHashes.set(body, hash);
  }
  return hash;
}

function outcomeOf(status: number): 'allowed' | 'denied' | 'error' {
  if (status < 400) return 'allowed';
  return status === 401 || status === 403 ? 'denied' : 'error';
}

async function auditPlugin(app: FastifyInstance, opts: AuditPluginOptions): Promise<void> {
  if (!opts.store) throw new Error('audit plugin: option "store" is required');
  app.decorate('auditStore', opts.store);
  app.decorate('auditCheckpoints', opts.checkpoints ?? false);
  // Audit lines carry the stored text as is: no second serialisation, no redaction scan
  // (an event holds names and hashes only, by construction).
  const auditLog = rawJsonLogger(app.log);
  app.decorateRequest('audit', null as unknown as AuditContext);
  app.decorateRequest('auditReason', undefined);
  app.decorateRequest('auditActor', null as unknown as AuditActor);

  app.addHook('onRequest', async (request) => {
    request.audit = { action: 'unknown', profiles: [], secretKeys: [] };
    request.auditActor = { kind: 'anonymous' };
  });

  app.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const status = reply.statusCode;
    const a = request.audit;
    const body = typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : undefined;
    const event = await commitOrRefuse(
      opts.store,
      {
        time: new Date().toISOString(),
        requestId: request.id,
        actor: request.auditActor,
        clientAddress: request.ip,
        action: a.action,
        ...(a.app !== undefined && { app: a.app }),
        ...(a.repository !== undefined && { repository: a.repository }),
        profiles: a.profiles,
        ...(a.ref !== undefined && { ref: a.ref }),
        ...(a.commit !== undefined && { commit: a.commit }),
        ...(a.format !== undefined && { format: a.format }),
        outcome: outcomeOf(status),
        status,
        ...(request.auditReason !== undefined && { reason: request.auditReason }),
        secretKeys: a.secretKeys,
        ...(a.secretKeyIds !== undefined && a.secretKeyIds.length > 0 && { secretKeyIds: a.secretKeyIds }),
        ...(status === 200 && body !== undefined && { bodySha256: bodySha256(body) }),
        durationMs: Math.round(reply.elapsedTime),
      },
      opts.commitTimeoutMs,
      request.log,
    );
    if (event) {
      // SPEC §6: also on the log stream, for log shippers (names and hashes only, never values).
      logAuditEvent(auditLog, request.id, eventLogJson(storedEventJson(event) ?? eventBodyJson(event), event.prevHash, event.hash));
    } else {
      const p = problem(503, 'audit_unavailable', 'The audit log cannot record this request; nothing was served', request.id);
      reply.code(503).type('application/problem+json').header('cache-control', 'no-store');
      reply.removeHeader('etag');
      reply.removeHeader('config-commit');
      return JSON.stringify(p);
    }
    return payload;
  });
}

export default fp(auditPlugin, { name: 'audit', fastify: '5.x' });
