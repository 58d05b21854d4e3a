/**
 * Keeping the mirror fresh on demand (SPEC §4, §5.2; case 14): push webhooks and an admin
 * sync.
 *
 * ## `POST /v1/hooks/git` — push webhooks
 * Authenticated by the webhook's shared secret only (no client certificate or token: Git
 * hosts present neither). Each repository has its own secret, read once, at registration,
 * from its `webhookSecretFile` (one trailing newline dropped); a delivery names its
 * repository by `?repo=<name>` or by the repository URL in its payload (`hooks-target.ts`),
 * and is checked with that repository's secret. A repository without the setting answers
 * 404 `webhook_disabled`, and start-up logs once that its webhooks are off. Three styles, chosen
 * by the header present (first match in this order):
 * - Gitea / Forgejo: `X-Gitea-Signature: <hex>`, HMAC-SHA256 of the raw body
 *   (Gitea docs, "Webhooks": "X-Gitea-Signature … HMAC SHA256 of the payload");
 * - GitHub: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the raw body (GitHub docs,
 *   "Validating webhook deliveries"); the legacy SHA-1 `X-Hub-Signature` is not accepted;
 * - GitLab: `X-Gitlab-Token: <secret>`, the secret itself (GitLab docs, "Webhooks",
 *   "Validate requests with a secret token"), compared in constant time.
 * The HMAC is computed over the exact body bytes (a raw-body parser for
 * `application/json` and `application/x-www-form-urlencoded` in this plugin's scope; at most
 * {@link WEBHOOK_BODY_LIMIT} bytes) and compared with `crypto.timingSafeEqual`.
 *
 * A valid delivery (of any event: push, tag, ping …; the body is not otherwise read) starts a
 * sync and is answered at once, 202 `{ accepted: true, repository, sync: 'scheduled' }`, without
 * waiting for it (Git hosts time deliveries out after ~10 s). A local `path` repository is
 * read in place, so there is nothing to sync: 202 `{ accepted: true, repository, sync:
 * 'not-needed' }`; a per-application repository not mirrored now: `sync: 'not-mirrored'`. A missing or wrong signature is 401 `unauthenticated` (audit reason
 * `webhook_signature_missing` / `webhook_signature_invalid`). Audit action `git.webhook`,
 * actor `{ kind: 'anonymous', subject: 'webhook:<style>' }`.
 *
 * A valid delivery whose id (`X-GitHub-Delivery`, `X-Gitea-Delivery`, `Idempotency-Key` /
 * `X-Gitlab-Event-UUID`) was already accepted within `webhooks.deliveryWindowMs` starts no
 * sync: 202 `{ accepted: true, repository, sync: 'duplicate' }` with `X-Webhook-Duplicate:
 * true`, audit reason `webhook_duplicate` (see `webhook-deliveries.ts`).
 *
 * ## `POST /v1/admin/sync[?repo=<name>]` — sync now (scope `admin`)
 * `?repo=` names the repository (needed when several are configured). Runs a sync and waits
 * for it: 200 `{ repository, source: 'mirror', commit, updates: [{ ref,
 * from, to, forced }], forcedUpdates, durationMs }`; a failed sync is its problem (503
 * `repo_unavailable` / `repo_auth_failed` with `Retry-After`; the last good mirror keeps serving). For a local
 * repository: 200 with `source: 'local'`, the default branch's commit, no updates. Audit
 * action `admin.sync` with the commit.
 *
 * ## Coalescing
 * Syncs asked for here go through the {@link SyncTrigger} of their repository: a request arriving while
 * one of its syncs runs is served by ONE more sync started right after it (a push that lands
 * while a fetch is in progress may have been missed by that fetch), shared by every request
 * that arrives meanwhile. The mirror itself also coalesces concurrent `sync()` calls, so a
 * request may join a polling sync already in flight; the next poll then covers a push it
 * missed.
 *
 * ## Replicas (SPEC §10)
 * With a {@link SyncSignals} bus (PostgreSQL `LISTEN/NOTIFY`, given only with the PostgreSQL
 * audit store and a remote mirror), a valid webhook also publishes a signal, and a signal
 * from another replica requests a sync through the same {@link SyncTrigger} (coalesced).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CFG_ERR_SETTINGS_INVALID, CFG_ERR_UNAUTHENTICATED, CFG_ERR_WEBHOOK_DISABLED, withRetryAfter } from '../../errors.js';
import type { RefUpdate, SyncResult } from '../../git/mirror.js';
import type { SyncSignals } from '../../git/sync-bus.js';
import { requireAccess } from '../plugins/auth.js';
import type { GitStore } from '../plugins/git-store.js';
import { deliveryId, DeliveryLog } from '../webhook-deliveries.js';
import { adminSyncTarget, webhookTarget } from './hooks-target.js';

/** Largest accepted webhook body, bytes (1 MiB; a push to a configuration repo is a few KiB). */
export const WEBHOOK_BODY_LIMIT = 1024 * 1024;

/** Webhook styles, named after the Git host whose signature scheme they follow. */
export type WebhookStyle = 'gitea' | 'github' | 'gitlab';

/** The signature (or token) a delivery carries, as found by {@link webhookCredential}. */
export interface WebhookCredential {
  readonly style: WebhookStyle;
  /** The header's value, untrimmed; never logged or audited. */
  readonly value: string;
}

/** Headers that carry the signature, in the order they are looked for. */
const SIGNATURE_HEADERS: ReadonlyArray<readonly [string, WebhookStyle]> = [
  ['x-gitea-signature', 'gitea'],
  ['x-hub-signature-256', 'github'],
  ['x-gitlab-token', 'gitlab'],
];

/** Event and delivery id headers of each style (logged, sanitized). */
const EVENT_HEADERS: Readonly<Record<WebhookStyle, { event: string; delivery: string }>> = {
  gitea: { event: 'x-gitea-event', delivery: 'x-gitea-delivery' },
  github: { event: 'x-github-event', delivery: 'x-github-delivery' },
  gitlab: { event: 'x-gitlab-event', delivery: 'x-gitlab-event-uuid' },
};

/**
 * Finds the webhook credential of a request: the first of `X-Gitea-Signature`,
 * `X-Hub-Signature-256`, `X-Gitlab-Token` present (Gitea also sends `X-Hub-Signature-256`;
 * either verifies).
 *
 * @returns the style and the header value, or `undefined` when none is present.
 */
export function webhookCredential(headers: IncomingHttpHeaders): WebhookCredential | undefined {
  for (const [name, style] of SIGNATURE_HEADERS) {
    const raw = headers[name];
    if (raw === undefined) continue;
    // A repeated header is refused rather than guessed at.
    return { style, value: Array.isArray(raw) ? '' : raw };
  }
  return undefined;
}

const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;

/**
 * Checks a delivery's credential against the shared secret, in constant time.
 *
 * - `github`: `sha256=<64 hex>` must equal HMAC-SHA256(secret, body);
 * - `gitea`: `<64 hex>` must equal HMAC-SHA256(secret, body);
 * - `gitlab`: the token must equal the secret (both hashed with SHA-256 first, so neither
 *   the length nor the content leaks through timing).
 *
 * @param credential - from {@link webhookCredential}.
 * @param body - the exact request body bytes.
 * @param secret - the shared secret (bytes of the secret file, newline dropped); never empty.
 * @returns `true` when the delivery is authentic.
 */
export function verifyWebhook(credential: WebhookCredential, body: Uint8Array, secret: Uint8Array): boolean {
  if (secret.length === 0) return false;
  if (credential.style === 'gitlab') {
    const given = createHash('sha256').update(credential.value, 'utf8').digest();
    const expected = createHash('sha256').update(secret).digest();
    return timingSafeEqual(given, expected);
  }
  const hex = credential.style === 'github' ? (credential.value.startsWith('sha256=') ? credential.value.slice(7) : '') : credential.value;
  if (!HEX_SHA256.test(hex)) return false;
  const expected = createHmac('sha256', secret).update(body).digest();
  return timingSafeEqual(Buffer.from(hex, 'hex'), expected);
}

/**
 * Computes the signature header a Git host would send for `body` (tests, tooling).
 * @returns `[header name, header value]`.
 */
export function signWebhook(style: WebhookStyle, body: Uint8Array | string, secret: Uint8Array | string): [string, string] {
  if (style === 'gitlab') return ['x-gitlab-token', typeof secret === 'string' ? secret : Buffer.from(secret).toString('utf8')];
  const hex = createHmac('sha256', secret).update(body).digest('hex');
  return style === 'github' ? ['x-hub-signature-256', `sha256=${hex}`] : ['x-gitea-signature', hex];
}

export { SyncTrigger } from '../../git/sync-trigger.js';

/** Options of the hooks routes (each entry's `webhookSecretFile` is read from the registry). */
export interface HooksRoutesOptions {
  /** One secret file for every repository (tests); wins over the entries' `webhookSecretFile`. */
  webhookSecretFile?: string | undefined;
  /** The secret itself, for every repository (tests); wins over both files. */
  webhookSecret?: string | Uint8Array | undefined;
  /**
   * Sync signals shared with the other replicas: a valid webhook is published there, and
   * their signals start a sync here. Unset (the default, SQLite audit) = this replica only.
   */
  syncBus?: SyncSignals | undefined;
  /** `webhooks.deliveryWindowMs`: a delivery id seen again within it starts no sync; 0 = off. Default 0. */
  deliveryWindowMs?: number | undefined;
}

/** 202 answer of `POST /v1/hooks/git`. */
export interface WebhookAccepted {
  accepted: true;
  repository: string;
  /**
   * `scheduled`: a sync was started or queued; `not-needed`: a local repository, read in
   * place; `not-mirrored`: a per-application repository this replica does not mirror now
   * (it is cloned at its first read); `duplicate`: this delivery id was accepted within the
   * window, nothing started.
   */
  sync: 'scheduled' | 'not-needed' | 'not-mirrored' | 'duplicate';
}

/** 200 answer of `POST /v1/admin/sync`. */
export interface AdminSyncResult {
  repository: string;
  /** `mirror`: a remote was fetched; `local`: a local repository, read in place (nothing fetched). */
  source: 'mirror' | 'local';
  /** The default branch's commit after the sync. */
  commit: string;
  /** Refs created, moved or deleted by the sync (remote names, `refs/heads/main`). */
  updates: readonly RefUpdate[];
  /** How many of `updates` were non-fast-forward (force-pushes, moved tags). */
  forcedUpdates: number;
  durationMs: number;
}

function readSecret(repo: string, file: string): Buffer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new CFG_ERR_SETTINGS_INVALID(`  repositories.${repo}.webhookSecretFile: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (text.length === 0) throw new CFG_ERR_SETTINGS_INVALID(`  repositories.${repo}.webhookSecretFile: the file is empty`);
  return Buffer.from(text, 'utf8');
}

/** A header value fit for a log line: short, printable, or absent. */
function headerForLog(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return typeof v === 'string' && /^[\w .:@/-]{1,100}$/.test(v) ? v : undefined;
}

/**
 * Registers `POST /v1/hooks/git` and `POST /v1/admin/sync` in an encapsulated scope (its raw
 * body parser stays here). Register after the audit, auth and repositories plugins.
 *
 * @throws CFG_ERR_SETTINGS_INVALID at registration when a `webhookSecretFile` cannot be read
 *   or is empty (the message names the setting, never the secret).
 */
export default async function hooksRoutes(app: FastifyInstance, opts: HooksRoutesOptions): Promise<void> {
  const registry = app.repositories;
  // One secret per repositories[] entry (a template entry's serves all its applications).
  const secrets = new Map<string, Buffer>();
  for (const entry of registry.entries) {
    let secret: Buffer | undefined;
    if (opts.webhookSecret !== undefined) secret = Buffer.from(opts.webhookSecret);
    else if (opts.webhookSecretFile !== undefined) secret = readSecret(entry.name, opts.webhookSecretFile);
    else if (entry.webhookSecretFile !== undefined) secret = readSecret(entry.name, entry.webhookSecretFile);
    if (secret === undefined) {
      app.log.info({ repo: entry.name }, 'push webhooks are off: repositories[].webhookSecretFile is not set; POST /v1/hooks/git answers 404');
    } else {
      if (secret.length < 16) app.log.warn({ repo: entry.name }, 'the webhook secret is shorter than 16 bytes; use a long random secret');
      secrets.set(entry.name, secret);
    }
  }
  const deliveries = new DeliveryLog({ windowMs: opts.deliveryWindowMs ?? 0 });
  const bus = opts.syncBus;
  if (bus !== undefined) {
    const unsubscribe = bus.onSignal((repo) => {
      const store = registry.byName(repo);
      if (store?.mirror === undefined) return;
      app.log.info({ repo }, 'sync signal from another replica; syncing');
      // Not awaited: failures are logged and counted by the mirror.
      store.requestSync()?.catch(() => undefined);
    });
    app.addHook('onClose', async () => unsubscribe());
  }

  // Raw bodies: the HMAC covers the exact bytes sent. Scoped to this plugin.
  const raw = (_request: FastifyRequest, body: Buffer, done: (err: Error | null, body?: Buffer) => void): void => done(null, body);
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_LIMIT }, raw);
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_LIMIT }, raw);

  app.post(
    '/v1/hooks/git',
    {
      bodyLimit: WEBHOOK_BODY_LIMIT,
      config: { auth: 'webhook' },
      // Before the body is read: a disabled hook or a delivery without signature costs nothing.
      onRequest: async (request) => {
        request.audit.action = 'git.webhook';
        const credential = webhookCredential(request.headers);
        request.auditActor = { kind: 'anonymous', subject: credential ? `webhook:${credential.style}` : 'webhook' };
        if (secrets.size === 0) throw new CFG_ERR_WEBHOOK_DISABLED(registry.entries.map((e) => e.name).join(', '));
        if (credential === undefined) {
          request.auditReason = 'webhook_signature_missing';
          throw new CFG_ERR_UNAUTHENTICATED('send X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token');
        }
      },
    },
    async (request, reply): Promise<WebhookAccepted> => {
      const credential = webhookCredential(request.headers)!;
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      // Which repository (?repo=, the payload's repository URL, or the only one), then its secret.
      const target = webhookTarget(registry, request, body);
      request.audit.repository = target.name;
      const secret = secrets.get(target.entry.name);
      if (secret === undefined) throw new CFG_ERR_WEBHOOK_DISABLED(target.entry.name);
      if (!verifyWebhook(credential, body, secret)) {
        request.auditReason = 'webhook_signature_invalid';
        request.log.warn({ repo: target.name, style: credential.style }, 'webhook refused: the signature does not match');
        throw new CFG_ERR_UNAUTHENTICATED('the webhook signature does not match');
      }
      request.auditReason = credential.style === 'gitlab' ? 'webhook:token' : 'webhook:hmac-sha256';
      const events = EVENT_HEADERS[credential.style];
      const delivery = deliveryId(credential.style, request.headers);
      if (delivery !== undefined && deliveries.seen(`${target.name}\0${delivery}`)) {
        request.auditReason = 'webhook_duplicate';
        request.log.info({ repo: target.name, style: credential.style, delivery }, 'webhook delivery already accepted within webhooks.deliveryWindowMs; no sync');
        reply.code(202).header('cache-control', 'no-store').header('x-webhook-duplicate', 'true');
        return { accepted: true, repository: target.name, sync: 'duplicate' };
      }
      const store = target.store;
      const sync: WebhookAccepted['sync'] = store === undefined ? 'not-mirrored' : store.mirror === undefined ? 'not-needed' : 'scheduled';
      request.log.info(
        { repo: target.name, style: credential.style, event: headerForLog(request, events.event), delivery: headerForLog(request, events.delivery), sync },
        'webhook accepted',
      );
      // Not awaited: failures are logged and counted by the mirror.
      if (sync === 'scheduled') store?.requestSync()?.catch(() => undefined);
      // Tell the other replicas (never rejects; a failure is logged by the bus); they may mirror
      // a per-application repository this replica does not.
      if (bus !== undefined && sync !== 'not-needed') void bus.publish(target.name);
      reply.code(202).header('cache-control', 'no-store');
      return { accepted: true, repository: target.name, sync };
    },
  );

  app.post(
    '/v1/admin/sync',
    {
      // Authorize before the body is read.
      onRequest: async (request) => {
        request.audit.action = 'admin.sync';
        requireAccess(request, 'admin');
      },
    },
    async (request, reply): Promise<AdminSyncResult> => {
      reply.header('cache-control', 'no-store');
      const target = adminSyncTarget(registry, request);
      request.audit.repository = target.name;
      const store = target.store as GitStore;
      const pending = store.requestSync();
      if (pending === undefined) {
        const { commit } = await store.resolve();
        request.audit.commit = commit;
        return { repository: store.name, source: 'local', commit, updates: [], forcedUpdates: 0, durationMs: 0 };
      }
      let result: SyncResult;
      try {
        result = await pending;
      } catch (err) {
        throw withRetryAfter(err as Error, store.mirror?.retryAfterSeconds());
      }
      request.audit.commit = result.commit;
      request.log.info({ repo: store.name, commit: result.commit, updates: result.updates.length, forcedUpdates: result.forcedUpdates }, 'admin sync done');
      return {
        repository: store.name,
        source: 'mirror',
        commit: result.commit,
        updates: result.updates.map(({ ref, from, to, forced }) => ({ ref, from, to, forced })),
        forcedUpdates: result.forcedUpdates,
        durationMs: result.durationMs,
      };
    },
  );
}
