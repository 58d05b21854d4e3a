/**
 * Long-poll on the real service (issue 12, SPEC §5.1): `wait=` with `If-None-Match` holds
 * a read until the answer changes. A remote served by the real `git http-backend`, polling
 * off, pushes plus signed webhooks; a local repository for the ref poll; the socket timeout
 * raised for held requests; per-caller cap; shutdown. Every answer is audited with its own
 * reason. Verdicts rest on outcomes and ordering, never on how fast the machine is.
 */
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  httpsGet,
  makeCerts,
  makeGitRepo,
  pushAndNotify as push,
  startGitRemote,
  startTestService,
  writeWebhookSecret,
  type ClientCert,
  type GitRemote,
  type GitTestRepo,
  type HttpsResult,
  type TestPki,
  type TestService,
} from '#helpers';

const HOOK_SECRET = 'whsec-long-poll-3c9e1a7b5d';

type Sqlite = new (file: string, opts: { readonly: boolean }) => { prepare(sql: string): { all(): unknown[] }; close(): void };
const Database = createRequire(new URL('../packages/config-service/package.json', import.meta.url))('better-sqlite3') as Sqlite;

interface AuditEventView {
  requestId: string;
  action: string;
  app?: string;
  status: number;
  outcome: string;
  reason?: string;
  commit?: string;
  bodySha256?: string;
}

let root: string;
let remote: GitRemote;
let work: GitTestRepo;
let pki: TestPki;
let orders: ClientCert;
let service: TestService;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'cfg-long-poll-'));
  remote = await startGitRemote(root, {
    'application.yml': 'shared: 1\n',
    'orders/application.yml': 'x: 1\n',
    'orders/files/logback.xml': '<configuration/>\n',
    'billing/application.yml': 'y: 1\n',
  });
  work = remote.work;
  pki = await makeCerts('long-poll');
  orders = await pki.client('orders');
  service = await startTestService({
    pki,
    repository: { url: remote.url, branch: 'main', pollIntervalMs: 0, webhookSecretFile: writeWebhookSecret(root, HOOK_SECRET) },
    // Held requests outlive the whole-request and socket timeouts: the wait raises them.
    server: { requestTimeoutMs: 3000, headersTimeoutMs: 2000, keepAliveTimeoutMs: 1000 },
    settings: { longPoll: { maxWaitersPerIdentity: 3 } },
  });
});

afterAll(async () => {
  await service?.close();
  await remote?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

function get(path: string, headers: Record<string, string> = {}, svc: TestService = service): Promise<HttpsResult> {
  return httpsGet(svc.apiUrl, path, { ca: pki.ca.certPem, cert: orders.cert, key: orders.key, headers });
}

/** Pushes `files` as one commit and sends the signed push webhook; resolves when the mirror serves it. */
async function pushAndNotify(files: Record<string, string | null>, message: string): Promise<string> {
  return (await push({ remote, apiUrl: service.apiUrl, ca: pki.ca.certPem, secret: HOOK_SECRET, client: orders }, files, message, 30_000)).commit;
}

const auditEvents = async (): Promise<AuditEventView[]> =>
  (await (service.api as unknown as { auditStore: { query(q: { limit: number }): Promise<{ events: AuditEventView[] }> } }).auditStore.query({ limit: 500 })).events;

/** Settles with the answer, or `pending` while none came; never rejects. */
function track(p: Promise<HttpsResult>): { readonly state: 'pending' | 'answered'; readonly result: Promise<HttpsResult> } {
  let state: 'pending' | 'answered' = 'pending';
  const result = p.finally(() => (state = 'answered'));
  return {
    get state() {
      return state;
    },
    result,
  };
}

describe('long-poll on the config route', () => {
  it('a commit that does not change the answer wakes nobody; one that does answers the held request with the new body, audited wait_changed', async () => {
    const first = await get('/v1/apps/orders/config?format=properties');
    expect(first.status).toBe(200);
    const etag = first.headers.etag as string;
    expect(first.body).toBe('shared=1\nx=1\n');
    const held = track(get('/v1/apps/orders/config?format=properties&wait=120s', { 'if-none-match': etag }));

    // billing only: orders' documents are the same blobs, so its answer and ETag stay.
    const cBilling = await pushAndNotify({ 'billing/application.yml': 'y: 2\n' }, 'billing only');
    const again = await get('/v1/apps/orders/config?format=properties');
    expect(again.headers['config-commit']).toBe(cBilling);
    expect(again.headers.etag).toBe(etag);
    expect(held.state).toBe('pending');

    const cOrders = await pushAndNotify({ 'orders/application.yml': 'x: 2\n' }, 'orders');
    const res = await held.result;
    expect(res.status).toBe(200);
    expect(res.body).toBe('shared=1\nx=2\n');
    expect(res.headers['config-commit']).toBe(cOrders);
    expect(res.headers.etag).not.toBe(etag);

    const events = (await auditEvents()).filter((e) => e.action === 'config.read' && e.reason === 'wait_changed');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ status: 200, outcome: 'allowed', commit: cOrders });
  });

  it('a change of the shared application.yml wakes every application that reads it', async () => {
    const cur = await get('/v1/apps/orders/config?format=json');
    const held = get('/v1/apps/orders/config?format=json&wait=120s', { 'if-none-match': cur.headers.etag as string });
    await new Promise((r) => setTimeout(r, 200));
    await pushAndNotify({ 'application.yml': 'shared: 2\n' }, 'shared');
    const res = await held;
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ shared: 2, x: 2 });
  });

  it('the wait ends with 304 (audit reason wait_timeout), past server.requestTimeoutMs and the socket timeout', async () => {
    const cur = await get('/v1/apps/orders/config?format=yaml');
    // 6 s: longer than requestTimeoutMs (3 s) and the socket timeout (max(3 s, 1 s) + 1 s).
    const res = await get('/v1/apps/orders/config?format=yaml&wait=6s', { 'if-none-match': cur.headers.etag as string });
    expect(res.status).toBe(304);
    expect(res.headers.etag).toBe(cur.headers.etag);
    const ev = (await auditEvents()).filter((e) => e.reason === 'wait_timeout');
    expect(ev.length).toBeGreaterThanOrEqual(1);
    expect(ev[0]).toMatchObject({ action: 'config.read', status: 304, outcome: 'allowed' });
  });

  it('without a matching If-None-Match a wait answers at once; If-None-Match without wait is a plain 304', async () => {
    const cur = await get('/v1/apps/orders/config?format=json');
    const changed = await get('/v1/apps/orders/config?format=json&wait=120s', { 'if-none-match': '"something-else"' });
    expect(changed.status).toBe(200);
    const plain = await get('/v1/apps/orders/config?format=json', { 'if-none-match': cur.headers.etag as string });
    expect(plain.status).toBe(304);
    const bad = await get('/v1/apps/orders/config?format=json&wait=soon');
    expect(bad.status).toBe(400);
  });

  it('a caller over longPoll.maxWaitersPerIdentity gets 429 too_many_waiters with Retry-After', async () => {
    const cur = await get('/v1/apps/orders/config?format=env');
    const etag = cur.headers.etag as string;
    const held = [1, 2, 3].map(() => track(get('/v1/apps/orders/config?format=env&wait=120s', { 'if-none-match': etag })));
    // The three are held once the hub counts them; a fourth is refused.
    const deadline = Date.now() + 30_000;
    while (service.api.longPoll.waiters < 3) {
      if (Date.now() > deadline) throw new Error('the requests were never held');
      await new Promise((r) => setTimeout(r, 20));
    }
    const refused = await get('/v1/apps/orders/config?format=env&wait=120s', { 'if-none-match': etag });
    expect(refused.status).toBe(429);
    expect(refused.json<{ code: string }>().code).toBe('too_many_waiters');
    expect(refused.headers['retry-after']).toBe('5');
    expect(held.every((h) => h.state === 'pending')).toBe(true);
    await pushAndNotify({ 'orders/application.yml': 'x: 3\n' }, 'orders x3');
    for (const h of held) expect((await h.result).status).toBe(200);
    expect(service.api.longPoll.waiters).toBe(0);
  });
});

describe('long-poll on the files routes', () => {
  it('the file list has a weak ETag that follows the files; a changed file wakes it', async () => {
    const list = await get('/v1/apps/orders/files');
    expect(list.status).toBe(200);
    expect(list.headers.etag).toMatch(/^W\/"/);
    const held = track(get('/v1/apps/orders/files?wait=120s', { 'if-none-match': list.headers.etag as string }));
    const heldFile = track(get('/v1/apps/orders/files/logback.xml?wait=120s', { 'if-none-match': `"${work.git('rev-parse', 'HEAD:orders/files/logback.xml')}"` }));
    await pushAndNotify({ 'orders/application.yml': 'x: 4\n' }, 'documents only');
    expect(held.state).toBe('pending');
    expect(heldFile.state).toBe('pending');
    await pushAndNotify({ 'orders/files/logback.xml': '<configuration debug="true"/>\n' }, 'logback');
    const res = await held.result;
    expect(res.status).toBe(200);
    expect(res.json<{ files: Array<{ path: string; size: number }> }>().files).toEqual([expect.objectContaining({ path: 'logback.xml', size: Buffer.byteLength('<configuration debug="true"/>\n') })]);
    const file = await heldFile.result;
    expect(file.status).toBe(200);
    expect(file.body).toBe('<configuration debug="true"/>\n');
  });
});

describe('long-poll on a local repository', () => {
  it('a commit in the local repository wakes the waiter (refs read every longPoll.localPollMs while it waits)', async () => {
    const local = await makeGitRepo({ 'orders/application.yml': 'a: 1\n' });
    const svc = await startTestService({ pki, repository: { path: local.dir, branch: 'main', refCacheMs: 0 }, settings: { longPoll: { localPollMs: 100 } } });
    try {
      const cur = await get('/v1/apps/orders/config', {}, svc);
      const held = get('/v1/apps/orders/config?wait=120s', { 'if-none-match': cur.headers.etag as string }, svc);
      await new Promise((r) => setTimeout(r, 300));
      const c2 = local.commitFiles({ 'orders/application.yml': 'a: 2\n' }, 'a2');
      const res = await held;
      expect(res.status).toBe(200);
      expect(res.headers['config-commit']).toBe(c2);
      expect(res.json()).toEqual({ a: 2 });
    } finally {
      await svc.close();
      local.remove();
    }
  });

  it('shutdown answers held requests at once with 304 (audit reason wait_shutdown)', async () => {
    const local = await makeGitRepo({ 'orders/application.yml': 'a: 1\n' });
    const svc = await startTestService({ pki, repository: { path: local.dir, branch: 'main' } });
    try {
      const cur = await get('/v1/apps/orders/config', {}, svc);
      const held = get('/v1/apps/orders/config?wait=5m', { 'if-none-match': cur.headers.etag as string }, svc);
      const deadline = Date.now() + 30_000;
      while (svc.api.longPoll.waiters < 1) {
        if (Date.now() > deadline) throw new Error('never held');
        await new Promise((r) => setTimeout(r, 20));
      }
      const closing = svc.close();
      const res = await held;
      expect(res.status).toBe(304);
      await closing;
      // The audit store is closed now: read its file (the event was committed before the answer left).
      const db = new Database(svc.auditPath, { readonly: true });
      try {
        const events = (db.prepare('SELECT event FROM audit_events').all() as Array<{ event: string }>).map((r) => JSON.parse(r.event) as AuditEventView);
        expect(events.filter((e) => e.reason === 'wait_shutdown').map((e) => [e.action, e.status])).toEqual([['config.read', 304]]);
      } finally {
        db.close();
      }
    } finally {
      local.remove();
    }
  });
});
