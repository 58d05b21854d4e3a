/**
 * `openssl s_server` as a real TLS server that verifies the client certificate INSIDE the
 * handshake and answers a bad one with a TLS alert, as OpenSSL-, BoringSSL- and Go-based
 * servers do (Node's own TLS server sends no alert). Also a free-port finder.
 *
 * Needs the `openssl` command (Debian: `apt-get install openssl`); {@link startOpensslServer}
 * throws a clear error when it is missing instead of letting a test skip.
 */
import { spawn, spawnSync } from 'node:child_process';
import { connect, createServer, type AddressInfo } from 'node:net';
import type { TestCerts } from './certs.js';

/** Whether the `openssl` command runs here. */
export const HAS_OPENSSL = spawnSync('openssl', ['version']).status === 0;

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Waits until something accepts TCP connections on `port` (5 s at most). */
export async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1', () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${port} never opened`);
}

/** A running `openssl s_server`. */
export interface OpensslServer {
  /** `https://127.0.0.1:<port>`. */
  url: string;
  port: number;
  /** Kills the server. */
  close(): Promise<void>;
}

/**
 * Starts `openssl s_server -Verify 1 -verify_return_error -www` with the test server
 * certificate, trusting only the test CA: a client certificate from another CA gets alert
 * 48 `unknown_ca`, an expired one alert 45 `certificate_expired`; a good one gets a 200
 * status page.
 *
 * @param extra - more arguments, e.g. `['-tls1_2']` or `['-tls1_3']` to pin the version.
 * @throws when `openssl` is not installed (naming the package to install).
 */
export async function startOpensslServer(certs: TestCerts, extra: string[] = []): Promise<OpensslServer> {
  if (!HAS_OPENSSL) throw new Error('this test needs the openssl command (Debian: apt-get install openssl)');
  const port = await freePort();
  const child = spawn(
    'openssl',
    ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', certs.files.serverCert, '-key', certs.files.serverKey, '-CAfile', certs.files.ca,
      '-Verify', '1', '-verify_return_error', '-www', '-quiet', ...extra],
    { stdio: ['ignore', 'ignore', 'ignore'] },
  );
  await waitForPort(port);
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}
