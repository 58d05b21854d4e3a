/**
 * Push webhooks and admin sync (src/http/routes/hooks.ts): signature checks of the three
 * styles, sync coalescing, and the routes on a Fastify app with the real audit and auth
 * plugins (in-memory audit store, fake Git store), driven with `inject`.
 */
import { createHmac, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditEvent, AuditEventInput, AuditStore } from '../../../src/audit/types.js';
import { emptyStats } from '../../../src/audit/commit-queue.js';
import type { GitMirror, SyncResult } from '../../../src/git/mirror.js';
import auditPlugin from '../../../src/http/plugins/audit.js';
import authPlugin from '../../../src/http/plugins/auth.js';
import type { GitStore } from '../../../src/http/plugins/git-store.js';
import repositoriesPlugin, { RepositoryRegistry } from '../../../src/http/plugins/repositories.js';
import { installProblemHandlers } from '../../../src/http/problem.js';
import hooksRoutes, { signWebhook, SyncTrigger, verifyWebhook, webhookCredential, WEBHOOK_BODY_LIMIT } from '../../../src/http/routes/hooks.js';
import { CFG_ERR_REPO_UNAVAILABLE } from '../../../src/errors.js';

const SECRET = 'whsec-0123456789-abcdef';
const BODY = Buffer.from('{"ref":"refs/heads/main","after":"c2"}');
const hmac = (body: Uint8Array, key = SECRET): string => createHmac('sha256', key).update(body).digest('hex');

describe('webhookCredential', () => {
  it('finds Gitea first, then GitHub, then GitLab', () => {
    expect(webhookCredential({ 'x-gitlab-token': 't' })).toEqual({ style: 'gitlab', value: 't' });
    expect(webhookCredential({ 'x-gitlab-token': 't', 'x-hub-signature-256': 'sha256=a' })).toEqual({ style: 'github', value: 'sha256=a' });
    expect(webhookCredential({ 'x-hub-signature-256': 'sha256=a', 'x-gitea-signature': 'b' })).toEqual({ style: 'gitea', value: 'b' });
    expect(webhookCredential({ 'x-hub-signature': 'sha1=a' })).toBeUndefined();
    expect(webhookCredential({})).toBeUndefined();
  });
});

describe('verifyWebhook', () => {
  const key = Buffer.from(SECRET);
  it('GitHub: sha256=<hex> of the raw body (any hex case)', () => {
    expect(verifyWebhook({ style: 'github', value: `sha256=${hmac(BODY)}` }, BODY, key)).toBe(true);
    expect(verifyWebhook({ style: 'github', value: `sha256=${hmac(BODY).toUpperCase()}` }, BODY, key)).toBe(true);
  });

  it.each([
    ['no prefix', hmac(BODY)],
    ['sha1 prefix', `sha1=${hmac(BODY)}`],
    ['other body', `sha256=${hmac(Buffer.from(`${BODY.toString()} `))}`],
    ['other secret', `sha256=${hmac(BODY, 'nope')}`],
    ['truncated', `sha256=${hmac(BODY).slice(0, 63)}`],
    ['too long', `sha256=${hmac(BODY)}00`],
    ['not hex', `sha256=${'z'.repeat(64)}`],
    ['empty', ''],
  ])('GitHub refuses %s', (_name, value) => {
    expect(verifyWebhook({ style: 'github', value }, BODY, key)).toBe(false);
  });

  it('Gitea: bare hex of the raw body', () => {
    expect(verifyWebhook({ style: 'gitea', value: hmac(BODY) }, BODY, key)).toBe(true);
    expect(verifyWebhook({ style: 'gitea', value: `sha256=${hmac(BODY)}` }, BODY, key)).toBe(false);
    expect(verifyWebhook({ style: 'gitea', value: hmac(Buffer.from('{}')) }, BODY, key)).toBe(false);
  });

  it('GitLab: the token itself, any body', () => {
    expect(verifyWebhook({ style: 'gitlab', value: SECRET }, BODY, key)).toBe(true);
    expect(verifyWebhook({ style: 'gitlab', value: SECRET.slice(0, -1) }, BODY, key)).toBe(false);
    expect(verifyWebhook({ style: 'gitlab', value: `${SECRET} ` }, BODY, key)).toBe(false);
    expect(verifyWebhook({ style: 'gitlab', value: '' }, BODY, key)).toBe(false);
  });

  it('an empty secret verifies nothing', () => {
    expect(verifyWebhook({ style: 'gitlab', value: '' }, BODY, Buffer.alloc(0))).toBe(false);
    expect(verifyWebhook({ style: 'gitea', value: createHmac('sha256', '').update(BODY).digest('hex') }, BODY, Buffer.alloc(0))).toBe(false);
  });

  it('signWebhook produces what verifyWebhook accepts', () => {
    for (const style of ['github', 'gitea', 'gitlab'] as const) {
      const [name, value] = signWebhook(style, BODY, SECRET);
      const cred = webhookCredential({ [name]: value });
      expect(cred?.style).toBe(style);
      expect(verifyWebhook(cred!, BODY, key)).toBe(true);
    }
  });
});

function result(commit: string, n = 0): SyncResult {
  return { initial: false, commit, updates: [], forcedUpdates: n, durationMs: 1 };
}

/** A sync function whose calls stay pending until released. */
function controlledSync() {
  const pending: Array<{ resolve: (r: SyncResult) => void; reject: (e: Error) => void }> = [];
  let calls = 0;
  const sync = (): Promise<SyncResult> => {
    calls++;
    return new Promise<SyncResult>((resolve, reject) => pending.push({ resolve, reject }));
  };
  return { sync, pending, calls: () => calls };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('SyncTrigger', () => {
  it('starts at once when idle; queues ONE more for everything arriving during a sync', async () => {
    const c = controlledSync();
    const t = new SyncTrigger(c.sync);
    const a = t.request();
    expect(c.calls()).toBe(1);
    const b = t.request();
    const b2 = t.request();
    expect(b2).toBe(b);
    expect(c.calls()).toBe(1);
    c.pending[0]!.resolve(result('c1'));
    expect(await a).toEqual(result('c1'));
    await tick();
    expect(c.calls()).toBe(2);
    // A request while the queued one runs queues a third.
    const d = t.request();
    expect(d).not.toBe(b);
    c.pending[1]!.resolve(result('c2'));
    expect(await b).toEqual(result('c2'));
    await tick();
    expect(c.calls()).toBe(3);
    c.pending[2]!.resolve(result('c3'));
    expect(await d).toEqual(result('c3'));
    // Idle again: starts at once.
    const e = t.request();
    expect(c.calls()).toBe(4);
    c.pending[3]!.resolve(result('c4'));
    await e;
  });

  it('a request during a sync started elsewhere (polling) queues a fresh one instead of joining it', async () => {
    const c = controlledSync();
    let polling: Promise<unknown> | null = new Promise(() => undefined);
    let endPolling!: () => void;
    polling = new Promise<void>((r) => (endPolling = r)).then(() => {
      polling = null;
    });
    const t = new SyncTrigger(c.sync, () => polling);
    const a = t.request();
    expect(c.calls()).toBe(0);
    endPolling();
    await tick();
    await tick();
    expect(c.calls()).toBe(1);
    c.pending[0]!.resolve(result('after-poll'));
    expect((await a).commit).toBe('after-poll');
  });

  it('a failed sync fails its callers only; the queued one still runs', async () => {
    const c = controlledSync();
    const t = new SyncTrigger(c.sync);
    const a = t.request();
    const b = t.request();
    c.pending[0]!.reject(new CFG_ERR_REPO_UNAVAILABLE('config', 'down'));
    await expect(a).rejects.toMatchObject({ code: 'CFG_ERR_REPO_UNAVAILABLE' });
    await tick();
    expect(c.calls()).toBe(2);
    c.pending[1]!.resolve(result('ok'));
    expect((await b).commit).toBe('ok');
  });
});

// --- the routes ---

class MemoryAuditStore implements AuditStore {
  readonly events: AuditEventInput[] = [];
  healthy = true;
  health = { healthy: true };
  stats = { ...emptyStats(), maxBatchSize: 1 };
  async append(event: AuditEventInput): Promise<AuditEvent> {
    this.events.push(event);
    return { ...event, seq: this.events.length, prevHash: '', hash: '' };
  }
  appendEventually(event: AuditEventInput): void {
    this.events.push(event);
  }
  async probe(): Promise<void> {}
  async query(): Promise<never> {
    throw new Error('not used');
  }
  async verify(): Promise<never> {
    throw new Error('not used');
  }
  async prune(): Promise<never> {
    throw new Error('not used');
  }
  async storeId(): Promise<string> {
    return 'memory';
  }
  async examine(): Promise<never> {
    throw new Error('not used');
  }
  async checkpoint(): Promise<undefined> {
    return undefined;
  }
  async checkpoints(): Promise<never> {
    throw new Error('not used');
  }
  async close(): Promise<void> {}
}

const C0 = '0'.repeat(40);
const C1 = '1'.repeat(40);

function fakeStore(opts: { remote: boolean; sync?: () => Promise<SyncResult> }): GitStore & { syncs: number } {
  const state = { syncs: 0 };
  const mirror = opts.remote
    ? ({
        syncing: null,
        retryAfterSeconds: () => 7,
        sync: () => {
          state.syncs++;
          return opts.sync ? opts.sync() : Promise.resolve({ initial: false, commit: C1, updates: [{ ref: 'refs/heads/main', from: C0, to: C1, forced: true }], forcedUpdates: 1, durationMs: 7 });
        },
      } as unknown as GitMirror)
    : undefined;
  const trigger = mirror ? new SyncTrigger(() => mirror.sync(), () => null) : undefined;
  return {
    name: 'config',
    reader: undefined as never,
    repository: undefined as never,
    mirror,
    ready: () => true,
    resolve: async () => ({ commit: C0, ref: 'refs/heads/main' }),
    requestSync: () => trigger?.request(),
    start: async () => {},
    stop: async () => {},
    get syncs() {
      return state.syncs;
    },
  };
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'hooks-test-'));
const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const publicKeyFile = path.join(dir, 'jwt.pem');
writeFileSync(publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }).toString());

function jwt(claims: Record<string, unknown>): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: 'ES256', typ: 'JWT' })}.${b64({ iss: 'https://issuer.test', aud: 'config-service', iat: now, exp: now + 300, ...claims })}`;
  const sig = cryptoSign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  return `${input}.${sig}`;
}

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function build(store: GitStore, hooks: { webhookSecret?: string; webhookSecretFile?: string }): Promise<{ app: FastifyInstance; audit: MemoryAuditStore }> {
  const audit = new MemoryAuditStore();
  const a = Fastify();
  installProblemHandlers(a);
  await a.register(auditPlugin, { store: audit });
  await a.register(repositoriesPlugin, { registry: new RepositoryRegistry([{ name: store.name, apps: ['*'], store }]) });
  await a.register(authPlugin, {
    identity: {},
    policy: { defaultOwnApp: true, grants: [] },
    jwt: { publicKeyFile, issuer: 'https://issuer.test', audience: 'config-service', algorithms: ['ES256'], clockSkewSeconds: 0 },
  });
  await a.register(hooksRoutes, hooks);
  app = a;
  return { app: a, audit };
}

const json = { 'content-type': 'application/json' };

describe('POST /v1/hooks/git', () => {
  it.each(['github', 'gitea', 'gitlab'] as const)('%s: a valid delivery is 202, starts a sync, needs no certificate or token, and is audited', async (style) => {
    const store = fakeStore({ remote: true });
    const { app, audit } = await build(store, { webhookSecret: SECRET });
    const [h, v] = signWebhook(style, BODY, SECRET);
    const res = await app.inject({ method: 'POST', url: '/v1/hooks/git', headers: { ...json, [h]: v }, payload: BODY });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ accepted: true, repository: 'config', sync: 'scheduled' });
    expect(store.syncs).toBe(1);
    expect(audit.events.at(-1)).toMatchObject({ action: 'git.webhook', outcome: 'allowed', status: 202, actor: { kind: 'anonymous', subject: `webhook:${style}` } });
  });

  it('GitHub form-encoded deliveries are verified over the raw bytes too', async () => {
    const store = fakeStore({ remote: true });
    const { app } = await build(store, { webhookSecret: SECRET });
    const body = `payload=${encodeURIComponent(BODY.toString())}`;
    const res = await app.inject({ method: 'POST', url: '/v1/hooks/git', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-hub-signature-256': `sha256=${hmac(Buffer.from(body))}` }, payload: body });
    expect(res.statusCode).toBe(202);
  });

  it('the body is hashed as sent: re-serialised JSON does not verify', async () => {
    const store = fakeStore({ remote: true });
    const { app, audit } = await build(store, { webhookSecret: SECRET });
    const spaced = Buffer.from('{ "ref" : "refs/heads/main" }');
    const ok = await app.inject({ method: 'POST', url: '/v1/hooks/git', headers: { ...json, 'x-hub-signature-256': `sha256=${hmac(spaced)}` }, payload: spaced });
    expect(ok.statusCode).toBe(202);
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/hooks/git',
      headers: { ...json, 'x-hub-signature-256': `sha256=${hmac(Buffer.from(JSON.stringify(JSON.parse(spaced.toString()))))}` },
      payload: spaced,
    });
    expect(bad.statusCode).toBe(401);
    expect(bad.json()).toMatchObject({ code: 'unauthenticated', detail: 'Not authenticated: the webhook signature does not match' });
    expect(audit.events.at(-1)).toMatchObject({ action: 'git.webhook', outcome: 'denied', status: 401, reason: 'webhook_signature_invalid' });
    expect(store.syncs).toBe(1);
  });

  it('no signature: 401 before the body is read; audited', async () => {
    const store = fakeStore({ remote: true });
    const { app, audit } = await build(store, { webhookSecret: SECRET });
    const res = await app.inject({ method: 'POST', url: '/v1/hooks/git', headers: json, payload: BODY });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ code: 'unauthenticated' });
    expect(audit.events.at(-1)).toMatchObject({ action: 'git.webhook', status: 401, reason: 'webhook_signature_missing', actor: { kind: 'anonymous', subject: 'webhook' } });
    expect(store.syncs).toBe(0);
  });

  it('a bearer token or certificate is no substitute for the signature', async () => {
    const store = fakeStore({ remote: true });
    const { app } = await build(store, { webhookSecret: SECRET });
    const res = await app.inject({ method: 'POST', url: '/v1/hooks/git', headers: { ...json, authorization: `Bearer ${jwt({ sub: 'ops', scope: 'admin', apps: ['*'] })}` }, payload: BODY });
    expect(res.statusCode).toBe(401);
    expect(store.syncs).toBe(0);
  });

  it('bodies over the limit are 413; other media types 415', async () => {
    const { app } = await build(fakeStore({ remote: true }), { webhookSecret: SECRET });
    const big = Buffer.alloc(WEBHOOK_BODY_LIMIT + 1, 0x20);
    const r413 = await app.inject({ method: 'POST', url: '/v1/hooks/git', headers: { ...json, 'x-hub-signature-256': `sha256=${hmac(big)}` }, payload: big });
    expect(r413.statusCode).toBe(413);
    const r415 = await app.inject({ method: 'POST', url: '/v1/hooks/git', headers: { 'content-type': 'application/xml', 'x-gitlab-token': SECRET }, payload: '<x/>' });
    expect(r415.statusCode).toBe(415);
  });

  it('without a secret: 404 webhook_disabled, audited, nothing synced', async () => {
    const store = fakeStore({ remote: true });
    const { app, audit } = await build(store, {});
    const [h, v] = signWebhook('github', BODY, SECRET);
    const res = await app.inject({ method: 'POST', url: '/v1/hooks/git', headers: { ...json, [h]: v }, payload: BODY });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'webhook_disabled' });
    expect(audit.events.at(-1)).toMatchObject({ action: 'git.webhook', status: 404, reason: 'webhook_disabled' });
    expect(store.syncs).toBe(0);
  });

  it('reads the secret from webhookSecretFile (one trailing newline dropped); an unreadable or empty file stops start-up', async () => {
    const file = path.join(dir, 'hook-secret');
    writeFileSync(file, `${SECRET}\n`);
    const { app } = await build(fakeStore({ remote: true }), { webhookSecretFile: file });
    const res = await app.inject({ method: 'POST', url: '/v1/hooks/git', headers: { ...json, 'x-gitlab-token': SECRET }, payload: BODY });
    expect(res.statusCode).toBe(202);
    await app.close();

    const empty = path.join(dir, 'empty-secret');
    writeFileSync(empty, '\n');
    await expect(build(fakeStore({ remote: true }), { webhookSecretFile: empty })).rejects.toMatchObject({ code: 'CFG_ERR_SETTINGS_INVALID', message: expect.stringContaining('repositories.config.webhookSecretFile: the file is empty') });
    await expect(build(fakeStore({ remote: true }), { webhookSecretFile: path.join(dir, 'missing') })).rejects.toMatchObject({
      code: 'CFG_ERR_SETTINGS_INVALID',
      message: expect.stringContaining('cannot read (ENOENT)'),
    });
  });

  it('a local repository has nothing to sync: 202 not-needed', async () => {
    const { app } = await build(fakeStore({ remote: false }), { webhookSecret: SECRET });
    const res = await app.inject({ method: 'POST', url: '/v1/hooks/git', headers: { ...json, 'x-gitlab-token': SECRET }, payload: BODY });
    expect([res.statusCode, res.json()]).toEqual([202, { accepted: true, repository: 'config', sync: 'not-needed' }]);
  });

  it('answers at once, without waiting for the sync', async () => {
    const c = controlledSync();
    const store = fakeStore({ remote: true, sync: c.sync });
    const { app } = await build(store, { webhookSecret: SECRET });
    const res = await app.inject({ method: 'POST', url: '/v1/hooks/git', headers: { ...json, 'x-gitlab-token': SECRET }, payload: BODY });
    expect(res.statusCode).toBe(202);
    expect(c.pending).toHaveLength(1);
    c.pending[0]!.reject(new CFG_ERR_REPO_UNAVAILABLE('config', 'down')); // no unhandled rejection
    await tick();
  });
});

describe('POST /v1/admin/sync', () => {
  it('needs the admin scope', async () => {
    const store = fakeStore({ remote: true });
    const { app, audit } = await build(store, { webhookSecret: SECRET });
    const none = await app.inject({ method: 'POST', url: '/v1/admin/sync' });
    expect(none.statusCode).toBe(401);
    const reader = await app.inject({ method: 'POST', url: '/v1/admin/sync', headers: { authorization: `Bearer ${jwt({ sub: 'ops', scope: 'config:read', apps: ['*'] })}` } });
    expect(reader.statusCode).toBe(403);
    expect(reader.json()).toMatchObject({ code: 'forbidden', detail: expect.stringContaining('token-scope-missing:admin') });
    expect(audit.events.at(-1)).toMatchObject({ action: 'admin.sync', outcome: 'denied', reason: 'token-scope-missing:admin' });
    // A webhook signature is no substitute either.
    const signed = await app.inject({ method: 'POST', url: '/v1/admin/sync', headers: { 'x-gitlab-token': SECRET } });
    expect(signed.statusCode).toBe(401);
    expect(store.syncs).toBe(0);
  });

  it('runs a sync, waits for it, lists the updates; audited with the commit', async () => {
    const store = fakeStore({ remote: true });
    const { app, audit } = await build(store, {});
    const res = await app.inject({ method: 'POST', url: '/v1/admin/sync', headers: { authorization: `Bearer ${jwt({ sub: 'ops', scope: 'admin', apps: ['*'] })}`, ...json }, payload: '' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.json()).toEqual({
      repository: 'config',
      source: 'mirror',
      commit: C1,
      updates: [{ ref: 'refs/heads/main', from: C0, to: C1, forced: true }],
      forcedUpdates: 1,
      durationMs: 7,
    });
    expect(audit.events.at(-1)).toMatchObject({ action: 'admin.sync', outcome: 'allowed', status: 200, commit: C1, actor: { kind: 'jwt', subject: 'ops' } });
  });

  it('a failed sync is its problem (503)', async () => {
    const store = fakeStore({ remote: true, sync: () => Promise.reject(new CFG_ERR_REPO_UNAVAILABLE('config', 'fetch failed: connection refused')) });
    const { app, audit } = await build(store, {});
    const res = await app.inject({ method: 'POST', url: '/v1/admin/sync', headers: { authorization: `Bearer ${jwt({ sub: 'ops', scope: 'admin', apps: ['*'] })}` } });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('7');
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json()).toMatchObject({ code: 'repo_unavailable', detail: "Repository 'config' is unavailable: fetch failed: connection refused" });
    expect(audit.events.at(-1)).toMatchObject({ action: 'admin.sync', outcome: 'error', status: 503, reason: 'repo_unavailable' });
  });

  it('a local repository: 200, source local, the default branch commit', async () => {
    const { app } = await build(fakeStore({ remote: false }), {});
    const res = await app.inject({ method: 'POST', url: '/v1/admin/sync', headers: { authorization: `Bearer ${jwt({ sub: 'ops', scope: 'admin', apps: ['*'] })}` } });
    expect([res.statusCode, res.json()]).toEqual([200, { repository: 'config', source: 'local', commit: C0, updates: [], forcedUpdates: 0, durationMs: 0 }]);
  });
});
