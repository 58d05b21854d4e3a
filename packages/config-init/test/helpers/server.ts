/**
 * A real HTTPS server that requires client certificates (mutual TLS), standing in for
 * config-service. Each test sets `handler` to script the answers.
 */
import { createHash } from 'node:crypto';
import https from 'node:https';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestCerts } from './certs.js';

/** A scripted answer; `'destroy'` drops the connection without answering, `'hang'` never answers. */
export type Answer = { status: number; headers?: OutgoingHttpHeaders; body?: string | Buffer } | 'destroy' | 'hang';

/** One request the server saw. */
export interface SeenRequest {
  /** Path as sent (percent-encoding kept). */
  path: string;
  query: URLSearchParams;
  accept: string | undefined;
  time: number;
  peerCn: string | undefined;
  /** SHA-256 fingerprint of the client certificate (`AA:BB:…`). */
  peerFingerprint256: string | undefined;
}

/** One TLS connection the server accepted (handshake completed). */
export interface SeenConnection {
  /** SHA-256 fingerprint of the client certificate (`AA:BB:…`), or `undefined` without one. */
  fingerprint256: string | undefined;
  /** Whether the certificate verified against the test CA (always true: others are destroyed). */
  authorized: boolean;
  /** Negotiated protocol, `TLSv1.3` or `TLSv1.2`. */
  protocol: string | null;
}

/** A running test server. */
export interface TestServer {
  url: string;
  port: number;
  requests: SeenRequest[];
  /** Every TLS connection whose client certificate verified, in accept order. */
  connections: SeenConnection[];
  handler: (req: SeenRequest, n: number) => Answer;
  close(): Promise<void>;
}

/** Problem+json answer as config-service sends it. */
export function problem(status: number, code: string, detail: string): Answer {
  return {
    status,
    headers: { 'content-type': 'application/problem+json' },
    body: JSON.stringify({ type: `urn:config-service:problem:${code}`, title: 'Error', status, detail, code }),
  };
}

const TYPES: Record<string, string> = {
  json: 'application/json; charset=utf-8',
  yaml: 'application/yaml; charset=utf-8',
  properties: 'text/x-java-properties; charset=utf-8',
  env: 'text/plain; charset=utf-8',
  dotenv: 'text/plain; charset=utf-8',
};

/** A 200 configuration answer for `format` at `commit`. */
export function configAnswer(format: string, body: string | Buffer, commit: string, count = 1): Answer {
  return {
    status: 200,
    headers: {
      'content-type': TYPES[format] ?? 'text/plain',
      'config-commit': commit,
      etag: `"${commit.slice(0, 12)}-${format}"`,
      'config-property-count': String(count),
      'cache-control': 'no-store',
    },
    body,
  };
}

/** Starts the server on 127.0.0.1 with an ephemeral port; `tls` pins the TLS versions (default: 1.2 to 1.3). */
export async function startServer(certs: TestCerts, tls: Pick<import('node:tls').TlsOptions, 'minVersion' | 'maxVersion'> = {}): Promise<TestServer> {
  const state: TestServer = {
    url: '',
    port: 0,
    requests: [],
    connections: [],
    handler: () => ({ status: 500 }),
    close: async () => undefined,
  };
  const server = https.createServer(
    { cert: certs.server.certPem, key: certs.server.keyPem, ca: certs.ca.certPem, requestCert: true, rejectUnauthorized: true, ...tls },
    (req: IncomingMessage, res: ServerResponse) => {
      const u = new URL(req.url ?? '/', 'https://x');
      const peer = (req.socket as import('node:tls').TLSSocket).getPeerCertificate();
      const seen: SeenRequest = {
        path: u.pathname,
        query: u.searchParams,
        accept: req.headers.accept,
        time: Date.now(),
        peerCn: peer?.subject?.CN === undefined ? undefined : String(peer.subject.CN),
        peerFingerprint256: peer?.fingerprint256,
      };
      state.requests.push(seen);
      const answer = state.handler(seen, state.requests.length);
      if (answer === 'destroy') {
        req.socket.destroy();
        return;
      }
      if (answer === 'hang') return;
      res.writeHead(answer.status, answer.headers ?? {});
      res.end(answer.body ?? '');
    },
  );
  server.on('secureConnection', (socket: import('node:tls').TLSSocket) => {
    const peer = socket.getPeerCertificate();
    state.connections.push({ fingerprint256: peer?.fingerprint256, authorized: socket.authorized, protocol: socket.getProtocol() });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  state.url = `https://127.0.0.1:${state.port}`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

/** A 200 answer to `format=env` with `Accept: application/json`: the environment map. */
export function envAnswer(env: Record<string, unknown>, commit: string, count = Object.keys(env).length): Answer {
  return {
    status: 200,
    headers: { 'content-type': 'application/json; charset=utf-8', 'config-commit': commit, 'config-property-count': String(count), 'cache-control': 'no-store' },
    body: JSON.stringify(env),
  };
}

/** A 200 answer to `GET /v1/apps/{app}/files`: the raw-file list. */
export function fileListAnswer(commit: string, files: { path: string; content: Buffer | string }[], overrides: Partial<Record<'size' | 'sha256', Record<string, unknown>>> = {}): Answer {
  const list = files.map((f) => {
    const bytes = Buffer.from(f.content);
    return {
      path: f.path,
      size: overrides.size?.[f.path] ?? bytes.length,
      sha256: overrides.sha256?.[f.path] ?? createHash('sha256').update(bytes).digest('hex'),
    };
  });
  return { status: 200, headers: { 'content-type': 'application/json', 'config-commit': commit }, body: JSON.stringify({ commit, files: list }) };
}

/** A 200 answer with one raw file's bytes. */
export function rawFileAnswer(content: Buffer | string, commit: string): Answer {
  return { status: 200, headers: { 'content-type': 'application/octet-stream', 'config-commit': commit }, body: Buffer.from(content) };
}
