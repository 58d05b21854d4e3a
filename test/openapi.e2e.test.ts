/**
 * `GET /openapi.json` (SPEC §5): the OpenAPI 3.1 document generated from the route schemas
 * is what docs/openapi.json holds (regenerate with `npx -y pnpm@10.34.9 openapi`), it is a
 * valid OpenAPI 3.1 document (@seriousme/openapi-schema-validator), it lists every route of
 * the API listener with its problem+json errors, and it needs an authenticated caller.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, httpsGet, makeCerts, makeGitRepo, startTestService, type ClientCert, type TestPki, type TestService } from '#helpers';

const COMMITTED = path.join(REPO_ROOT, 'docs/openapi.json');

let pki: TestPki;
let orders: ClientCert;
let service: TestService;

beforeAll(async () => {
  pki = await makeCerts('openapi');
  orders = await pki.client('orders');
  const repo = await makeGitRepo({ 'orders/application.yml': 'a: 1\n' });
  service = await startTestService({ pki, repository: { path: repo.dir, branch: 'main' } });
});
afterAll(async () => {
  await service?.close();
});

type Doc = { openapi: string; paths: Record<string, Record<string, { responses: Record<string, { description: string; content?: Record<string, unknown> }>; security?: unknown[] }>> };

async function served(): Promise<Doc> {
  const res = await httpsGet(service.apiUrl, '/openapi.json', { ca: pki.ca.certPem, cert: orders.cert, key: orders.key });
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
  return res.json<Doc>();
}

describe('GET /openapi.json', () => {
  it('is docs/openapi.json (else run `npx -y pnpm@10.34.9 openapi` and commit the file)', async () => {
    const committed = JSON.parse(readFileSync(COMMITTED, 'utf8')) as Doc;
    expect(await served(), 'docs/openapi.json differs from what the service serves: run `npx -y pnpm@10.34.9 openapi`').toEqual(committed);
  });

  it('is a valid OpenAPI 3.1 document', async () => {
    const result = await new Validator().validate((await served()) as unknown as Parameters<Validator['validate']>[0]);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect((await served()).openapi).toBe('3.1.0');
    // The validator refuses what is not OpenAPI 3.1 (here: no `info`).
    expect((await new Validator().validate({ openapi: '3.1.0', paths: {} } as unknown as Parameters<Validator['validate']>[0])).valid).toBe(false);
  });

  it('lists every route of the API listener, each with its problem+json errors and codes', async () => {
    const doc = await served();
    const ops = Object.entries(doc.paths).flatMap(([p, methods]) => Object.keys(methods).filter((m) => m !== 'servers').map((m) => `${m.toUpperCase()} ${p}`));
    expect(ops).toEqual(
      expect.arrayContaining([
        'GET /v1/apps', 'GET /v1/apps/{app}/config', 'GET /v1/apps/{app}/files', 'GET /v1/apps/{app}/files/{*}', 'GET /v1/apps/{app}/history', 'GET /v1/apps/{app}/diff',
        'GET /v1/audit', 'POST /v1/encrypt', 'POST /v1/hooks/git', 'POST /v1/admin/sync', 'GET /openapi.json', 'GET /{a}', 'GET /{a}/{b}', 'GET /{a}/{b}/{c}',
        'GET /health/live', 'GET /health/ready', 'GET /metrics', 'GET /info',
      ]),
    );
    const config = doc.paths['/v1/apps/{app}/config']!.get!;
    expect(Object.keys(config.responses)).toEqual(['200', '304', '400', '401', '403', '404', '422', '429', '503']);
    expect(config.responses['404']!.description).toBe('Not found. Problem codes: `app_not_found`, `ref_not_found`');
    expect(config.responses['404']!.content).toEqual({ 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } });
    for (const [p, methods] of Object.entries(doc.paths)) {
      if (p.startsWith('/health') || p === '/metrics' || p === '/info') continue;
      for (const [m, op] of Object.entries(methods)) if (m !== 'servers') expect(Object.keys(op.responses), `${m} ${p}`).toContain('401');
    }
    expect(doc.paths['/v1/hooks/git']!.post!.security).toEqual([]);
  });

  it('needs an authenticated caller (401 without a certificate or token), and is audited', async () => {
    const res = await httpsGet(service.apiUrl, '/openapi.json', { ca: pki.ca.certPem });
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const audit = service.logs.map((l) => JSON.parse(l) as { audit?: { action: string; status: number } }).filter((l) => l.audit?.action === 'openapi');
    expect(audit.map((l) => l.audit!.status)).toContain(200);
  });

  it('adds no response schema to a route: config bodies are served as before (unknown keys kept)', async () => {
    const res = await httpsGet(service.apiUrl, '/v1/apps/orders/config?format=json', { ca: pki.ca.certPem, cert: orders.cert, key: orders.key });
    expect(res.status).toBe(200);
    expect(res.body).toBe('{\n  "a": 1\n}\n');
  });
});
