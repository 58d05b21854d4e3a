/**
 * Real TLS handshakes for the PKI and identity tests: one server, one client, on loopback.
 */
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';

/** What one handshake showed, from both ends. */
export interface HandshakeResult {
  /** The server's connection handler ran and the client read its reply. */
  accepted: boolean;
  /** `socket.authorized` on the server, or null when the server never saw a secure connection. */
  serverAuthorized: boolean | null;
  /** `socket.authorizationError` on the server (OpenSSL verify code, e.g. `CERT_REVOKED`), or null. */
  authorizationError: string | null;
  /** DER of the client certificate as the server saw it, or null. */
  peerDer: Buffer | null;
  /** `code` of the error the client saw, or null. */
  clientError: string | null;
}

/**
 * Starts `tls.createServer(serverOptions)` on `host`, connects once with `clientOptions`, and
 * reports what happened. The server answers every accepted connection with `ok`.
 */
export async function handshake(
  serverOptions: tls.TlsOptions,
  clientOptions: tls.ConnectionOptions,
  host = '127.0.0.1',
): Promise<HandshakeResult> {
  const result: HandshakeResult = { accepted: false, serverAuthorized: null, authorizationError: null, peerDer: null, clientError: null };
  const server = tls.createServer(serverOptions, (socket) => {
    result.serverAuthorized = socket.authorized;
    result.authorizationError = socket.authorizationError ? String(socket.authorizationError) : null;
    const peer = socket.getPeerCertificate();
    result.peerDer = peer && 'raw' in peer && peer.raw ? Buffer.from(peer.raw) : null;
    socket.end('ok');
  });
  server.on('tlsClientError', () => {
    /* the handshake failed on the server side; `accepted` stays false */
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  try {
    await new Promise<void>((resolve) => {
      const client = tls.connect({ host, port, ...clientOptions });
      let data = '';
      client.setEncoding('utf8');
      client.on('data', (chunk: string) => {
        data += chunk;
      });
      client.on('error', (err: NodeJS.ErrnoException) => {
        result.clientError = err.code ?? err.message;
      });
      client.on('close', () => {
        result.accepted = data === 'ok';
        resolve();
      });
    });
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  return result;
}
