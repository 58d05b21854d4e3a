/**
 * Audit plugin (SPEC §6): one event per API request, allowed or denied, committed to the
 * audit store BEFORE the response leaves (an `onSend` hook awaits the store's group
 * commit). When the store cannot commit, the response is replaced by 503
 * `audit_unavailable` and nothing is served: an unlogged read of a secret is worse than
 * a failed one. Each committed event is also written to the pino log stream (`msg: "audit
 * event"`), for log shippers.
 */
import { createHash } from 'node:crypto';
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditActor, AuditStore } from '../../audit/types.js';
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
}

declare module 'fastify' {
  interface FastifyInstance {
    auditStore: AuditStore;
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
}

function outcomeOf(status: number): 'allowed' | 'denied' | 'error' {
  if (status < 400) return 'allowed';
  return status === 401 || status === 403 ? 'denied' : 'error';
}

async function auditPlugin(app: FastifyInstance, opts: AuditPluginOptions): Promise<void> {
  if (!opts.store) throw new Error('audit plugin: option "store" is required');
  app.decorate('auditStore', opts.store);
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
    try {
      const event = await opts.store.append({
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
        ...(status === 200 && body !== undefined && { bodySha256: createHash('sha256').update(body).digest('hex') }),
        durationMs: Math.round(reply.elapsedTime),
      });
      // SPEC §6: also on the log stream, for log shippers (names and hashes only, never values).
      request.log.info({ audit: event }, 'audit event');
    } catch (err) {
      request.log.error({ err: { code: (err as { code?: string }).code, message: (err as Error).message } }, 'audit event could not be committed; response withheld');
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
