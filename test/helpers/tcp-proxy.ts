/**
 * A TCP proxy the test controls, standing in for an L4 load balancer (a Kubernetes
 * Service, HAProxy in TCP mode, a cloud NLB) or a network fault between a client and a
 * server. Node built-ins only.
 *
 * Modes (switch at any time with {@link TcpProxy.setMode}):
 *
 * - `forward`: every accepted connection is piped to the target. When the target cannot
 *   be reached (refused, reset, unreachable), the accepted client connection is RESET,
 *   which is what an L4 balancer does while its backend restarts: the client sees a
 *   successful TCP connect followed by `ECONNRESET`.
 * - `reset-on-accept`: every new connection is accepted and reset at once (TCP RST),
 *   without contacting the target. Open connections are left alone.
 * - `drop`: new connections are accepted and then black-holed (nothing is forwarded,
 *   nothing is answered, nothing is closed), and every open connection stops forwarding
 *   in both directions: packets vanish, as when a network path or a peer hangs.
 *   Switching back to `forward` does not revive black-holed connections.
 *
 * {@link TcpProxy.resetAll} resets every open connection (both sides), e.g. to cut
 * keep-alive connections when a backend "restarts".
 */
import net from 'node:net';

/** How the proxy treats connections; see the module comment. */
export type TcpProxyMode = 'forward' | 'reset-on-accept' | 'drop';

/** Counters of what the proxy did (for assertions and messages). */
export interface TcpProxyStats {
  /** Client connections accepted. */
  accepted: number;
  /** Client connections piped to the target (the target accepted). */
  forwarded: number;
  /** Client connections reset by the proxy (reset-on-accept, target unreachable, resetAll). */
  reset: number;
  /** Client connections black-holed by `drop`. */
  dropped: number;
  /** Connections to the target that failed (refused, reset, ...). */
  targetFailures: number;
}

/** A running proxy. */
export interface TcpProxy {
  /** Address clients connect to. */
  readonly host: string;
  /** Port clients connect to. */
  readonly port: number;
  /** Current mode. */
  readonly mode: TcpProxyMode;
  /** Live counters. */
  readonly stats: Readonly<TcpProxyStats>;
  /** Changes the mode (see the module comment for what happens to open connections). */
  setMode(mode: TcpProxyMode): void;
  /** Points new connections at another target port (and host). */
  setTarget(port: number, host?: string): void;
  /** Resets every open connection, client and target side. */
  resetAll(): void;
  /** Resets every connection and stops listening. */
  close(): Promise<void>;
}

/** Where to listen and what to forward to. */
export interface TcpProxyOptions {
  /** Target port (the real server). */
  targetPort: number;
  /** Target host; default `127.0.0.1`. */
  targetHost?: string;
  /** Listen address; default `127.0.0.1`. */
  host?: string;
  /** Listen port; default 0 (ephemeral). */
  port?: number;
  /** Initial mode; default `forward`. */
  mode?: TcpProxyMode;
}

/** Resets a socket (RST), ignoring one that is already gone. */
function reset(socket: net.Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

/** Starts a proxy; resolves once it listens. */
export async function startTcpProxy(opts: TcpProxyOptions): Promise<TcpProxy> {
  let mode: TcpProxyMode = opts.mode ?? 'forward';
  let targetPort = opts.targetPort;
  let targetHost = opts.targetHost ?? '127.0.0.1';
  const stats: TcpProxyStats = { accepted: 0, forwarded: 0, reset: 0, dropped: 0, targetFailures: 0 };
  /** Open pairs; `upstream` is undefined while connecting or when black-holed. */
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket | undefined }>();

  const server = net.createServer({ pauseOnConnect: true }, (client) => {
    stats.accepted += 1;
    client.on('error', () => undefined);
    if (mode === 'reset-on-accept') {
      stats.reset += 1;
      reset(client);
      return;
    }
    const pair: { client: net.Socket; upstream: net.Socket | undefined } = { client, upstream: undefined };
    pairs.add(pair);
    client.on('close', () => {
      pairs.delete(pair);
      if (pair.upstream) reset(pair.upstream);
    });
    if (mode === 'drop') {
      stats.dropped += 1;
      // Read and discard, so the client's writes never fail: a black hole.
      client.on('data', () => undefined);
      client.resume();
      return;
    }
    const upstream = net.connect({ port: targetPort, host: targetHost });
    pair.upstream = upstream;
    let connected = false;
    upstream.on('error', () => {
      if (!connected) stats.targetFailures += 1;
      stats.reset += 1;
      reset(client);
    });
    upstream.on('close', () => {
      if (!client.destroyed) client.end();
    });
    upstream.on('connect', () => {
      connected = true;
      stats.forwarded += 1;
      // Forward chunk by chunk so `drop` can stop a live connection.
      client.on('data', (chunk: Buffer) => {
        if (mode !== 'drop' && !upstream.destroyed) upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        if (mode !== 'drop' && !client.destroyed) client.write(chunk);
      });
      client.on('end', () => {
        if (mode !== 'drop') upstream.end();
      });
      client.resume();
    });
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as net.AddressInfo;

  const resetAll = (): void => {
    for (const p of pairs) {
      stats.reset += 1;
      reset(p.client);
      if (p.upstream) reset(p.upstream);
    }
    pairs.clear();
  };

  return {
    host: address.address,
    port: address.port,
    get mode() {
      return mode;
    },
    stats,
    setMode(next) {
      mode = next;
    },
    setTarget(port, host) {
      targetPort = port;
      if (host !== undefined) targetHost = host;
    },
    resetAll,
    close: () =>
      new Promise<void>((resolve) => {
        resetAll();
        server.close(() => resolve());
      }),
  };
}
