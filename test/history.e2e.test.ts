/**
 * History for tooling (SPEC §4, §5.1) on the real service over mTLS:
 * `GET /v1/apps/{app}/history` lists only the commits that changed the documents an
 * application reads, and `GET /v1/apps/{app}/diff` the key-level changes between two refs,
 * with `{cipher}` values redacted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsGet, makeCerts, makeGitRepo, startTestService, type ClientCert, type GitTestRepo, type HttpsResult, type TestPki, type TestService } from '#helpers';

let pki: TestPki;
let orders: ClientCert;
let billing: ClientCert;
let service: TestService;
let repo: GitTestRepo;
let c1: string;
let c2: string;
let c3: string;
let c4: string;

const OLD_SECRET = '{cipher}{key:k1}AAAAOLDCIPHERTEXT0001';
const NEW_SECRET = '{cipher}{key:k1}AAAANEWCIPHERTEXT0002';
const SAME_SECRET = '{cipher}{key:k1}AAAASAMECIPHERTEXT003';

const get = (path: string, cert: ClientCert = orders): Promise<HttpsResult> =>
  httpsGet(service.apiUrl, path, { ca: pki.ca.certPem, cert: cert.cert, key: cert.key });

interface AuditEventView {
  action: string;
  status: number;
  app?: string;
  profiles: string[];
  ref?: string;
  commit?: string;
  secretKeys: string[];
}
const auditEvents = async (): Promise<AuditEventView[]> =>
  (await (service.api as unknown as { auditStore: { query(q: { limit: number }): Promise<{ events: AuditEventView[] }> } }).auditStore.query({ limit: 200 })).events;

beforeAll(async () => {
  pki = await makeCerts('history');
  orders = await pki.client('orders');
  billing = await pki.client('billing');
  repo = await makeGitRepo({
    'application.yml': 'shared:\n  timeout: 5\n',
    'orders/application.yml': `server:\n  port: 8080\nfeature:\n  old: true\ndb:\n  user: app\n  password: '${OLD_SECRET}'\n  token: '${SAME_SECRET}'\n`,
    'orders/application-prod.yml': 'db:\n  pool: 5\n',
    'billing/application.yml': 'x: 1\n',
  });
  c1 = repo.commit;
  c2 = repo.commitFiles(
    {
      'orders/application.yml': `server:\n  port: 8080\nfeature:\n  new: enabled\ndb:\n  user: app\n  password: '${NEW_SECRET}'\n  token: '${SAME_SECRET}'\n`,
      'orders/application-prod.yml': 'db:\n  pool: 10\n',
    },
    'orders: new feature, prod pool\n\nLonger body that is not returned.',
  );
  c3 = repo.commitFiles({ 'billing/application.yml': 'x: 2\n' }, 'billing only');
  // application-dev.yml is shared but not read for profile prod.
  c4 = repo.commitFiles({ 'application.yml': 'shared:\n  timeout: 7\n', 'application-dev.yml': 'dev: true\n' }, 'shared timeout');
  service = await startTestService({ pki, repository: { path: repo.dir, branch: 'main' } });
});

afterAll(async () => {
  await service?.close();
  repo?.remove();
});

const entry = (commit: string, message: string, documents: string[]) => ({
  commit,
  time: '2024-01-01T00:00:00.000Z',
  author: { name: 'Test Author' },
  message,
  documents,
});

describe('GET /v1/apps/{app}/history', () => {
  it('lists exactly the commits that changed what orders reads for prod, newest first', async () => {
    const res = await get('/v1/apps/orders/history?profile=prod');
    expect(res.status).toBe(200);
    expect(res.headers['config-commit']).toBe(c4);
    expect(res.json()).toEqual({
      app: 'orders',
      profiles: ['prod'],
      commit: c4,
      truncated: false,
      commits: [
        entry(c4, 'shared timeout', ['application.yml']),
        entry(c2, 'orders: new feature, prod pool', ['orders/application-prod.yml', 'orders/application.yml']),
        entry(c1, 'initial', ['application.yml', 'orders/application-prod.yml', 'orders/application.yml']),
      ],
    });
    expect(res.body).not.toContain('example.test');
    expect(res.json<{ commits: Array<{ commit: string }> }>().commits.map((c) => c.commit)).not.toContain(c3);
  });

  it('limit=1 returns the newest relevant commit; ref starts the walk elsewhere; audited', async () => {
    const one = await get('/v1/apps/orders/history?profile=prod&limit=1');
    expect(one.status).toBe(200);
    expect(one.json<{ commits: unknown[] }>().commits).toEqual([entry(c4, 'shared timeout', ['application.yml'])]);
    const atC3 = await get(`/v1/apps/orders/history?ref=${c3}`);
    expect(atC3.status).toBe(200);
    expect(atC3.json<{ commits: Array<{ commit: string; documents: string[] }> }>().commits.map((c) => [c.commit, c.documents])).toEqual([
      [c2, ['orders/application.yml']],
      [c1, ['application.yml', 'orders/application.yml']],
    ]);
    const event = (await auditEvents()).find((e) => e.action === 'config.history' && e.ref === c3);
    expect(event).toMatchObject({ status: 200, app: 'orders', profiles: [], commit: c3 });
  });

  it('refuses an unknown app (404), a bad ref (400), a bad limit (400), another app (403)', async () => {
    const unknown = await get('/v1/apps/nosuch/history', await pki.client('nosuch'));
    expect(unknown.status).toBe(404);
    expect(unknown.json<{ code: string }>().code).toBe('app_not_found');
    const badRef = await get('/v1/apps/orders/history?ref=a..b');
    expect(badRef.status).toBe(400);
    expect(badRef.json<{ code: string }>().code).toBe('invalid_ref');
    const badLimit = await get('/v1/apps/orders/history?limit=101');
    expect(badLimit.status).toBe(400);
    expect(badLimit.json<{ code: string }>().code).toBe('invalid_request');
    const other = await get('/v1/apps/orders/history', billing);
    expect(other.status).toBe(403);
    expect(other.json<{ code: string }>().code).toBe('forbidden');
  });
});

describe('GET /v1/apps/{app}/diff', () => {
  it('lists added, removed and changed keys between two refs, secrets redacted; audited with both commits', async () => {
    const res = await get(`/v1/apps/orders/diff?from=${c1}&profile=prod`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({
      app: 'orders',
      profiles: ['prod'],
      from: c1,
      to: c4,
      changes: [
        { key: 'db.password', change: 'changed', from: '<redacted>', to: '<redacted>' },
        { key: 'db.pool', change: 'changed', from: '5', to: '10' },
        { key: 'feature.new', change: 'added', to: 'enabled' },
        { key: 'feature.old', change: 'removed', from: 'true' },
        { key: 'shared.timeout', change: 'changed', from: '5', to: '7' },
      ],
    });
    for (const text of ['CIPHERTEXT', '{cipher}']) expect(res.body).not.toContain(text);
    const event = (await auditEvents()).find((e) => e.action === 'config.diff' && e.status === 200);
    expect(event).toMatchObject({ app: 'orders', profiles: ['prod'], commit: c4, ref: c1, secretKeys: ['db.password'] });
  });

  it('takes `to` as a ref; the reverse diff swaps the sides; equal refs give no changes', async () => {
    const res = await get(`/v1/apps/orders/diff?from=${c3}&to=${c1}`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({
      app: 'orders',
      profiles: [],
      from: c3,
      to: c1,
      changes: [
        { key: 'db.password', change: 'changed', from: '<redacted>', to: '<redacted>' },
        { key: 'feature.new', change: 'removed', from: 'enabled' },
        { key: 'feature.old', change: 'added', to: 'true' },
      ],
    });
    const same = await get('/v1/apps/orders/diff?from=main&to=main');
    expect(same.json()).toMatchObject({ from: c4, to: c4, changes: [] });
  });

  it('refuses a missing from (400), a bad ref (400), an unknown app (404), another app (403)', async () => {
    const missing = await get('/v1/apps/orders/diff');
    expect(missing.status).toBe(400);
    expect(missing.json<{ code: string }>().code).toBe('invalid_request');
    for (const q of ['from=a..b', `from=${c1}&to=b@{1}`]) {
      const bad = await get(`/v1/apps/orders/diff?${q}`);
      expect(bad.status, q).toBe(400);
      expect(bad.json<{ code: string }>().code, q).toBe('invalid_ref');
    }
    const notFound = await get('/v1/apps/orders/diff?from=nosuchbranch');
    expect(notFound.status).toBe(404);
    expect(notFound.json<{ code: string }>().code).toBe('ref_not_found');
    const unknown = await get(`/v1/apps/nosuch/diff?from=${c1}`, await pki.client('nosuch'));
    expect(unknown.status).toBe(404);
    expect(unknown.json<{ code: string }>().code).toBe('app_not_found');
    const other = await get(`/v1/apps/orders/diff?from=${c1}`, billing);
    expect(other.status).toBe(403);
    expect(other.body).not.toContain('CIPHERTEXT');
  });
});
