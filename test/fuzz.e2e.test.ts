/**
 * Fuzzing the API's names over real TLS: more than 10,000 generated paths, query strings
 * and refs (percent-encodings, double encodings, `..`, NUL, overlong UTF-8 such as
 * `%C0%AE`, backslashes, very long segments, unicode, duplicate parameters) sent over a
 * few keep-alive connections with bounded concurrency. No answer may be a 5xx, no body may
 * hold another application's data or a file outside the repository, and the service must
 * be healthy afterwards.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from 'node:tls';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsGet, makeCerts, makeGitRepo, startTestService, type ClientCert, type TestPki, type TestService } from '#helpers';

const CANARIES = ['OTHER-APP-CANARY-31', 'CANARY-9c41e', 'OTHER-TEAM-7d2'];
const TOTAL = Number(process.env.FUZZ_TOTAL ?? 10_500);
const CONNECTIONS = 4;
const IN_FLIGHT = Number(process.env.FUZZ_IN_FLIGHT ?? 16);

let pki: TestPki;
let orders: ClientCert;
let service: TestService;

beforeAll(async () => {
  pki = await makeCerts('fuzz');
  orders = await pki.client('orders');
  const base = mkdtempSync(path.join(os.tmpdir(), 'fuzz-base-'));
  const holder = path.join(base, 'holder');
  mkdirSync(holder);
  for (const dir of [base, holder]) writeFileSync(path.join(dir, 'canary.yml'), 'leak: CANARY-9c41e\n');
  const repo = await makeGitRepo({
    'application.yml': 'shared: yes\n',
    'orders/application.yml': 'x: 1\n',
    'orders/application-dev.yml': 'x: 2\n',
    'orders/files/logback.xml': '<configuration/>\n',
    'payments/application.yml': 'secret: OTHER-APP-CANARY-31\n',
    'secrets/other-team.yml': 'token: OTHER-TEAM-7d2\n',
  });
  repo.git('tag', 'v1');
  repo.git('branch', 'release/2024-01');
  service = await startTestService({
    pki,
    dataDir: path.join(holder, 'data'),
    repository: { path: repo.dir, branch: 'main' },
    server: { rateLimit: { max: 0 } },
    logLevel: 'warn',
  });
});

afterAll(async () => {
  await service?.close();
});

/** mulberry32: a small seeded PRNG, so a failing input can be reproduced. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ATOMS = [
  'orders', 'payments', 'secrets', 'other-team', 'canary.yml', 'canary', 'dev', 'prod', 'main', 'v1', 'release', 'HEAD',
  '..', '.', '...', '%2e%2e', '%2E%2E', '%252e%252e', '%25252e', '.%2e', '%2e.',
  '/', '%2F', '%2f', '%252F', '%25252F', '\\', '%5C', '%5c', '%255C', '..\\..', '..%5C..',
  '%00', '%2500', '\u0000', '%0a', '%0d%0a', '%09', '%20', '+', '%2B',
  '%C0%AE', '%C0%AF', '%C1%9C', '%E0%80%AE', '%F0%80%80%AE', '%C0%2E', '%FF', '%FE%FF', '%EF%BB%BF',
  '%E2%80%AE', '%F0%9F%98%80', encodeURIComponent('ä'), 'ä', '\u00ff', encodeURIComponent('ｏｒｄｅｒｓ'), encodeURIComponent('оrders'),
  '%', '%%', '%zz', '%2', '#', '%23', '?', '%3F', ';', '%3B', ',', '%2C', '&', '%26', '=', '%3D', ':', '@', '@{', '~', '^', '*', '[', ']',
  'refs/heads/main', 'refs%2Fheads%2Fmain', 'main..', 'main.lock', '-rf', '$(id)', '`id`', '${x}', '%24%7Bx%7D', "'", '"', '<', '>',
];

function segment(r: () => number): string {
  const roll = r();
  if (roll < 0.04) return 'a'.repeat(1 + Math.floor(r() * 3000)); // very long
  if (roll < 0.07) return '%2e%2e%2f'.repeat(1 + Math.floor(r() * 200));
  const n = 1 + Math.floor(r() * 4);
  let s = '';
  for (let i = 0; i < n; i++) s += ATOMS[Math.floor(r() * ATOMS.length)];
  return s;
}

const FORMATS = ['json', 'yaml', 'properties', 'env', 'dotenv', 'xml', '', 'JSON', '..%2Fjson'];

function query(r: () => number): string {
  const parts: string[] = [];
  const n = Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const key = ['profile', 'ref', 'format', 'profile', 'ref', 'explain', 'resolve', segment(r)][Math.floor(r() * 8)]!;
    let value: string;
    if (key === 'format') value = FORMATS[Math.floor(r() * FORMATS.length)]!;
    else if (key === 'profile') value = Array.from({ length: 1 + Math.floor(r() * 3) }, () => (r() < 0.4 ? ['dev', 'prod', 'eu'][Math.floor(r() * 3)]! : segment(r))).join(r() < 0.5 ? ',' : '%2C');
    else value = segment(r);
    parts.push(`${key}=${value}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

function generatePath(r: () => number): string {
  const roll = r();
  if (roll < 0.35) return `/v1/apps/${segment(r)}/config${query(r)}`;
  if (roll < 0.55) return `/v1/apps/orders/config${query(r)}`;
  if (roll < 0.62) return `/v1/apps/${segment(r)}/files/${segment(r)}${r() < 0.5 ? `/${segment(r)}` : ''}${query(r)}`;
  if (roll < 0.7) return `/v1/apps/${segment(r)}${query(r)}`;
  if (roll < 0.8) return `/${segment(r)}/${segment(r)}${r() < 0.6 ? `/${segment(r)}` : ''}`; // Spring-style route
  if (roll < 0.85) return `/v1/apps/orders/config?ref=${segment(r)}`;
  if (roll < 0.9) return `/v1/audit${query(r)}`;
  if (roll < 0.95) return `/${segment(r)}${query(r)}`;
  return `/v1/apps/${segment(r)}/config/${segment(r)}`;
}

/** undici's own check of a request target (lib/core/request.js): it refuses anything else. */
const UNDICI_INVALID_PATH = /[^\u0021-\u00ff]/;

/** Sends one request with a raw request target (NUL, CR/LF, spaces ...) on its own TLS connection. */
function rawRequest(rawPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: Number(new URL(service.apiUrl).port), ca: pki.ca.certPem, cert: orders.cert, key: orders.key, servername: 'localhost' }, () => {
      socket.end(Buffer.from(`GET ${rawPath} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`, 'latin1'));
    });
    let out = '';
    socket.on('data', (d: Buffer) => (out += d.toString('latin1')));
    socket.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 0);
      resolve({ status, body: out.slice(out.indexOf('\r\n\r\n') + 4) });
    });
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error('raw request timed out')));
  });
}

describe('fuzzing names, queries and refs', () => {
  it(`answers ${TOTAL} generated requests without a 5xx or a leak, and stays healthy`, async () => {
    const r = rng(0x5eed_c0de);
    const paths = Array.from({ length: TOTAL }, () => generatePath(r));
    // undici refuses some request targets itself (control characters, spaces): those go
    // raw over their own TLS connection. Every generated path reaches the server.
    const pool = new Pool(service.apiUrl, {
      connections: CONNECTIONS,
      pipelining: 1,
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
      connect: { ca: pki.ca.certPem, cert: orders.cert, key: orders.key, servername: 'localhost' },
    });
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    let sent = 0;
    let sentRaw = 0;
    let next = 0;
    const check = (p: string, status: number, body: string): void => {
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (status >= 500 || status === 0) failures.push(`${status} ${JSON.stringify(p).slice(0, 200)} ${body.slice(0, 200)}`);
      for (const c of CANARIES) if (body.includes(c)) failures.push(`canary ${c} in ${JSON.stringify(p).slice(0, 200)}`);
    };
    const worker = async (): Promise<void> => {
      while (next < paths.length) {
        const p = paths[next++]!;
        if (UNDICI_INVALID_PATH.test(p)) {
          const res = await rawRequest(p).catch((err: Error) => ({ status: 0, body: err.message }));
          sentRaw++;
          check(p, res.status, res.body);
          continue;
        }
        let status = 0;
        let body = '';
        for (let attempt = 0; attempt < 2 && status === 0; attempt++) {
          try {
            const res = await pool.request({ method: 'GET', path: p });
            status = res.statusCode;
            body = await res.body.text();
            // Every error the application answers is RFC 9457 problem+json.
            if (status >= 400 && !String(res.headers['content-type']).startsWith('application/problem+json')) {
              failures.push(`not problem+json: ${status} ${JSON.stringify(p).slice(0, 200)} ${body.slice(0, 120)}`);
            }
          } catch (err) {
            // The server closes a connection after a parse error it answered (400/414/431): retry once.
            body = `${(err as { code?: string }).code ?? 'error'}`;
          }
        }
        sent++;
        check(p, status, body);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    await pool.close();

    expect(failures).toEqual([]);
    expect(sent + sentRaw).toBe(TOTAL);
    expect(sentRaw).toBeGreaterThan(0);
    // The generator reached the interesting answers, not only one kind of rejection.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(50);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(TOTAL / 10);
    expect([...statuses.keys()].every((s) => s < 500)).toBe(true);

    const ready = await fetch(`${service.managementUrl}/health/ready`);
    expect(ready.status).toBe(200);
    const normal = await httpsGet(service.apiUrl, '/v1/apps/orders/config?profile=dev', { ca: pki.ca.certPem, cert: orders.cert, key: orders.key });
    expect(normal.status).toBe(200);
    expect(normal.json()).toEqual({ shared: 'yes', x: 2 });
  });
});
