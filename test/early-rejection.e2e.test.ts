/**
 * A request refused before its body is read closes the connection instead of reading and
 * discarding the body (issue 13): `POST /v1/encrypt` without credentials (401) or without
 * the `encrypt` scope (403), and the push webhook without a signature (401). The client
 * announces a 10 MB body and sends none of it: the answer comes, says `Connection: close`,
 * and the server closes the connection. (Before, Node kept the connection open to read
 * and discard the announced body.) A request whose body was read keeps its connection.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCerts, makeGitRepo, startTestService, type ClientCert, type TestPki, type TestService } from '#helpers';

let pki: TestPki;
let orders: ClientCert;
let service: TestService;

beforeAll(async () => {
  pki = await makeCerts('early-rejection');
  orders = await pki.client('orders');
  const repo = await makeGitRepo({ 'orders/application.yml': 'a: 1\n' });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'early-rejection-'));
  const secretFile = path.join(dir, 'webhook-secret');
  writeFileSync(secretFile, 'a-long-webhook-secret-for-tests\n');
  service = await startTestService({ pki, repository: { path: repo.dir, branch: 'main', webhookSecretFile: secretFile } });
});

afterAll(async () => {
  await service?.close();
});

interface Exchange {
  /** The response head (status line and headers), lower-cased header names. */
  status: number;
  headers: Record<string, string>;
  /** True when the server closed the connection (within 10 s of the answer). */
  closedByServer: boolean;
}

/** Sends request headers announcing `contentLength` bytes, and `body` only (maybe none of it). */
async function exchange(request: string, opts: { cert?: ClientCert; body?: string } = {}): Promise<Exchange> {
  const url = new URL(service.apiUrl);
  const socket: TLSSocket = connect({
    host: url.hostname,
    port: Number(url.port),
    ca: pki.ca.certPem,
    servername: 'localhost',
    ...(opts.cert && { cert: opts.cert.cert, key: opts.cert.key }),
  });
  await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  let received = '';
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
  socket.on('error', () => {});
  socket.write(request + (opts.body ?? ''));
  const headEnd = async (): Promise<void> => {
    const end = Date.now() + 20_000;
    while (!received.includes('\r\n\r\n')) {
      if (Date.now() > end) throw new Error(`no answer within 20 s; got: ${received}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await headEnd();
  const closedByServer = await Promise.race([closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]);
  socket.destroy();
  const [statusLine, ...lines] = received.slice(0, received.indexOf('\r\n\r\n')).split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
  return { status: Number(statusLine?.split(' ')[1]), headers, closedByServer };
}

const announced = (p: string, extra = ''): string =>
  `POST ${p} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n${extra}\r\n`;

describe('requests refused before their body is read', () => {
  it('POST /v1/encrypt without credentials: 401, Connection: close, the connection is closed', async () => {
    const r = await exchange(announced('/v1/encrypt'));
    expect(r.status).toBe(401);
    expect(r.headers.connection).toBe('close');
    expect(r.closedByServer).toBe(true);
  });

  it('POST /v1/encrypt without the encrypt scope: 403, Connection: close, the connection is closed', async () => {
    const r = await exchange(announced('/v1/encrypt?app=orders'), { cert: orders });
    expect(r.status).toBe(403);
    expect(r.headers.connection).toBe('close');
    expect(r.closedByServer).toBe(true);
  });

  it('the push webhook without a signature: 401, Connection: close, the connection is closed', async () => {
    const r = await exchange(announced('/v1/hooks/git'));
    expect(r.status).toBe(401);
    expect(r.headers.connection).toBe('close');
    expect(r.closedByServer).toBe(true);
  });

  it('a request whose body was read keeps its connection (keep-alive)', async () => {
    const body = '{"value":"x"}';
    const r = await exchange(`POST /v1/encrypt HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`, { body });
    expect(r.status).toBe(401);
    expect(r.headers.connection).toBe('keep-alive');
    expect(r.closedByServer).toBe(false);
  });
});
