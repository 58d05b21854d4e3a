/**
 * Health of `watch` and `exec --watch` (`--health-port`): `GET /health/live` answers 200
 * while the process runs; `GET /health/ready` answers 200 while the published set is
 * current (the last check with config-service succeeded and found nothing newer), 503 with
 * the reason otherwise (nothing published yet, the service unreachable, a change that could
 * not be published). Both answer JSON: `{ ready, reason?, commit?, publishedAt?, checkedAt? }`.
 *
 * Plain HTTP on every interface (the kubelet probes the pod's IP). Only `node:` built-ins.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the watcher knows about its set. */
export class WatchState {
  #ready = false;
  #reason = 'nothing published yet';
  #commit: string | undefined;
  #publishedAt: string | undefined;
  #checkedAt: string | undefined;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** The set published (or found on the volume) is the one at `commit`. */
  published(commit: string): void {
    this.#commit = commit;
    this.#publishedAt = new Date(this.#now()).toISOString();
  }

  /** config-service confirmed that the published set is current. */
  current(): void {
    this.#ready = true;
    this.#reason = '';
    this.#checkedAt = new Date(this.#now()).toISOString();
  }

  /** The published set may be stale: `reason` says why (one line, no values). */
  stale(reason: string): void {
    this.#ready = false;
    this.#reason = reason;
  }

  get ready(): boolean {
    return this.#ready;
  }

  /** The JSON of `/health/ready`. */
  snapshot(): { ready: boolean; reason?: string; commit?: string; publishedAt?: string; checkedAt?: string } {
    return {
      ready: this.#ready,
      ...(this.#ready ? {} : { reason: this.#reason }),
      ...(this.#commit !== undefined && { commit: this.#commit }),
      ...(this.#publishedAt !== undefined && { publishedAt: this.#publishedAt }),
      ...(this.#checkedAt !== undefined && { checkedAt: this.#checkedAt }),
    };
  }
}

/** A running health listener. */
export interface HealthServer {
  /** The port it listens on. */
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves `/health/live` and `/health/ready` of `state` on `port` (0 = any free port).
 * @throws when the port cannot be bound (the caller reports it as a usage error)
 */
export function startHealthServer(state: WatchState, port: number, host = '0.0.0.0'): Promise<HealthServer> {
  const server = http.createServer((req, res) => {
    const send = (status: number, body: object): void => {
      const text = `${JSON.stringify(body)}\n`;
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
      res.end(req.method === 'HEAD' ? undefined : text);
    };
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { error: 'GET only' });
    if (path === '/health/live') return send(200, { live: true });
    if (path === '/health/ready') {
      const snap = state.snapshot();
      return send(snap.ready ? 200 : 503, snap);
    }
    return send(404, { error: 'not found: /health/live or /health/ready' });
  });
  server.keepAliveTimeout = 5000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.removeListener('error', reject);
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
