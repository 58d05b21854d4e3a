/**
 * Webhooks are idempotent per delivery id (issue 7): the same delivery sent twice starts
 * one fetch. A bare repository served by the real `git http-backend`, the service
 * mirroring it with polling off, deliveries signed with the real HMAC (GitHub, Gitea) or
 * token (GitLab). Fetches are counted at the remote: each sync asks it for
 * `info/refs?service=git-upload-pack`.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  httpsGet,
  makeCerts,
  makeIssuer,
  startGitRemote,
  startTestService,
  writeWebhookSecret,
  type ClientCert,
  type GitHttpServer,
  type GitRemote,
  type GitTestRepo,
  type HttpsResult,
  type TestIssuer,
  type TestPki,
  type TestService,
} from '#helpers';

const HOOK_SECRET = 'whsec-deliveries-5d1e9a7c3b';

let root: string;
let remote: GitRemote;
let work: GitTestRepo;
let server: GitHttpServer;
let pki: TestPki;
let issuer: TestIssuer;
let orders: ClientCert;
let service: TestService;
let n = 0;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'cfg-deliveries-e2e-'));
  remote = await startGitRemote(root, { 'orders/application.yml': 'n: 0\n' });
  ({ work, server } = remote);
  pki = await makeCerts('deliveries');
  issuer = makeIssuer(pki.dir);
  orders = await pki.client('orders');
  service = await startTestService({
    pki,
    repository: { url: remote.url, branch: 'main', pollIntervalMs: 0, webhookSecretFile: writeWebhookSecret(root, HOOK_SECRET) },
    settings: { jwt: { publicKeyFile: issuer.publicKeyFile, issuer: issuer.issuer, audience: issuer.audience } },
  });
});

afterAll(async () => {
  await service?.close();
  await remote?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Fetches the service has started at the remote so far. */
const fetches = (): number => server.log.filter((r) => r.method === 'GET' && r.url === '/config.git/info/refs?service=git-upload-pack').length;

/** Commits `n: <next>` and pushes it to the remote. @returns the commit id. */
function push(): string {
  const commit = work.commitFiles({ 'orders/application.yml': `n: ${++n}\n` }, `n${n}`);
  remote.push('main');
  return commit;
}

type Style = 'github' | 'gitea' | 'gitlab';

/** A push delivery as each Git host sends it: signature (or token), event and delivery id headers. */
function deliver(style: Style, id: string, opts: { secret?: string } = {}): Promise<HttpsResult> {
  const body = JSON.stringify({ ref: 'refs/heads/main', after: work.git('rev-parse', 'HEAD'), repository: { full_name: 'platform/config' } });
  const secret = opts.secret ?? HOOK_SECRET;
  const hex = createHmac('sha256', secret).update(body).digest('hex');
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (style === 'github') Object.assign(headers, { 'x-hub-signature-256': `sha256=${hex}`, 'x-github-event': 'push', 'x-github-delivery': id });
  if (style === 'gitea') Object.assign(headers, { 'x-gitea-signature': hex, 'x-gitea-event': 'push', 'x-gitea-delivery': id, 'x-github-delivery': id });
  if (style === 'gitlab') Object.assign(headers, { 'x-gitlab-token': secret, 'x-gitlab-event': 'Push Hook', 'x-gitlab-event-uuid': `event-${id}`, 'idempotency-key': id });
  return httpsGet(service.apiUrl, '/v1/hooks/git', { ca: pki.ca.certPem, method: 'POST', body, headers });
}

/** Polls CONFIG(orders) until it serves `commit`. */
async function untilServes(commit: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const res = await httpsGet(service.apiUrl, '/v1/apps/orders/config', { ca: pki.ca.certPem, cert: orders.cert, key: orders.key });
    if (res.headers['config-commit'] === commit) return;
    if (Date.now() > deadline) throw new Error(`still serving ${res.headers['config-commit']} after ${ms} ms, want ${commit}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function webhookEvents(): Promise<Array<Record<string, unknown>>> {
  const token = await issuer.sign({ sub: 'auditor', scope: 'audit:read', apps: ['*'] });
  const res = await httpsGet(service.apiUrl, '/v1/audit?action=git.webhook&limit=1000', { ca: pki.ca.certPem, headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return res.json<{ events: Array<Record<string, unknown>> }>().events;
}

const SCHEDULED = { accepted: true, repository: 'config', sync: 'scheduled' };
const DUPLICATE = { accepted: true, repository: 'config', sync: 'duplicate' };

describe('POST /v1/hooks/git: one fetch per delivery id', () => {
  const answers: Array<[HttpsResult, string]> = [];
  let perSync = 0;

  it.each<Style>(['github', 'gitea', 'gitlab'])('%s: the same delivery twice starts one fetch; the second is answered 202 duplicate', async (style) => {
    const id = randomUUID();
    const before = fetches();
    const commit = push();
    const first = await deliver(style, id);
    expect([first.status, first.json()]).toEqual([202, SCHEDULED]);
    expect(first.headers['x-webhook-duplicate']).toBeUndefined();
    await untilServes(commit);
    perSync ||= fetches() - before;
    expect(perSync).toBeGreaterThan(0);
    expect(fetches() - before).toBe(perSync);

    const second = await deliver(style, id);
    expect([second.status, second.json(), second.headers['x-webhook-duplicate']]).toEqual([202, DUPLICATE, 'true']);
    answers.push([first, 'webhook:first'], [second, 'webhook_duplicate']);
  });

  it('a new delivery after the duplicates fetches once more: no duplicate started a fetch', async () => {
    const before = fetches();
    const commit = push();
    const fresh = await deliver('github', randomUUID());
    expect([fresh.status, fresh.json()]).toEqual([202, SCHEDULED]);
    await untilServes(commit);
    // Any fetch a duplicate had started would have begun before this delivery's and be counted here.
    expect(fetches() - before).toBe(perSync);
  });

  it('a copy of an accepted delivery id with a wrong signature is still refused 401', async () => {
    const id = randomUUID();
    expect((await deliver('github', id)).status).toBe(202);
    const forged = await deliver('github', id, { secret: 'not-the-secret' });
    expect(forged.status).toBe(401);
    expect(forged.json()).toMatchObject({ code: 'unauthenticated' });
  });

  it('duplicates are audited with their own reason, allowed, 202', async () => {
    const events = await webhookEvents();
    const byRequest = (r: HttpsResult) => events.find((e) => e.requestId === r.headers['request-id']);
    for (const [answer, kind] of answers) {
      const event = byRequest(answer);
      const reason = kind === 'webhook_duplicate' ? 'webhook_duplicate' : expect.stringMatching(/^webhook:(hmac-sha256|token)$/);
      expect(event).toMatchObject({ action: 'git.webhook', outcome: 'allowed', status: 202, reason });
    }
    expect(events.filter((e) => e.reason === 'webhook_duplicate')).toHaveLength(3);
    expect(service.logs.filter((l) => l.includes('"msg":"webhook delivery already accepted within webhooks.deliveryWindowMs; no sync"'))).toHaveLength(3);
  });
});
