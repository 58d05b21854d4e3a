/**
 * A TCP proxy the test controls, between a client and a real server (PostgreSQL, the
 * service), standing in for an L4 load balancer (a Kubernetes Service, HAProxy in TCP
 * mode, a cloud NLB) or a network fault. Node built-ins only.
 *
 * Modes (switch at any time with {@link TcpProxy.setMode}; it applies at once to every
 * open connection):
 *
 * - `forward`: bytes flow both ways; connections held by `drop` are resumed (or connected
 *   to the target if they were accepted during `drop`). When the target cannot be reached
 *   (refused, reset, unreachable) the accepted client connection is RESET, which is what
 *   an L4 balancer does while its backend restarts: the client sees a successful TCP
 *   connect followed by `ECONNRESET`.
 * - `drop`: no byte moves any more, in either direction, and nothing is closed: both
 *   sockets of every connection are paused (a network that silently drops packets); new
 *   connections are accepted and held without reaching the target.
 * - `reset`: every open connection is destroyed with a TCP RST on both sides, and each new
 *   connection is reset as soon as it is accepted.
 * - `reset-on-accept`: each new connection is accepted and reset at once, without
 *   contacting the target; open connections keep forwarding.
 * - `refuse`: the listening socket is closed, so new connections get `ECONNREFUSED`; open
 *   connections keep forwarding. Leaving `refuse` listens again on the same port.
 *
 * {@link TcpProxy.resetAll} resets every open connection (both sides), e.g. to cut
 * keep-alive connections when a backend "restarts".
 */
import net from 'node:net';

/** What the proxy does with connections; see the module comment. */
export type TcpProxyMode = 'forward' | 'drop' | 'reset' | 'reset-on-accept' | 'refuse';

/** Counters of what the proxy did (for assertions and messages). */
export interface TcpProxyStats {
  /** Client connections accepted. */
  accepted: number;
  /** Client connections piped to the target (the target accepted). */
  forwarded: number;
  /** Client connections reset by the proxy (reset modes, target unreachable, resetAll). */
  reset: number;
  /** Client connections accepted during `drop` and held without reaching the target. */
  dropped: number;
  /** Connections to the target that failed before connecting (refused, reset, ...). */
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
  /** Connections open now. */
  readonly open: number;
  /** Switches the mode; resolves once it applies (`refuse` closes the listener). */
  setMode(mode: TcpProxyMode): Promise<void>;
  /** Points new connections at another target port (and host). */
  setTarget(port: number, host?: string): void;
  /** `url` with its host and port replaced by the proxy's (credentials, path and query kept). */
  rewrite(url: string): string;
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
  mode?: Exclude<TcpProxyMode, 'refuse'>;
}

interface Pair {
  client: net.Socket;
  /** Absent while the connection is held (accepted during `drop`). */
  upstream: net.Socket | undefined;
}

/** Starts a proxy; resolves once it listens. */
export async function startTcpProxy(opts: TcpProxyOptions): Promise<TcpProxy> {
  let mode: TcpProxyMode = opts.mode ?? 'forward';
  let targetPort = opts.targetPort;
  let targetHost = opts.targetHost ?? '127.0.0.1';
  const host = opts.host ?? '127.0.0.1';
  const stats: TcpProxyStats = { accepted: 0, forwarded: 0, reset: 0, dropped: 0, targetFailures: 0 };
  const pairs = new Set<Pair>();

  const destroy = (pair: Pair, rst: boolean): void => {
    pairs.delete(pair);
    for (const s of [pair.client, pair.upstream]) {
      if (!s || s.destroyed) continue;
      if (rst) {
        try {
          s.resetAndDestroy();
          continue;
        } catch {
          // not connected yet: a plain destroy
        }
      }
      s.destroy();
    }
  };

  /** Copies `from` → `to` with backpressure; `drop` pauses both sides. */
  const relay = (from: net.Socket, to: net.Socket): void => {
    from.on('data', (chunk: Buffer) => {
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => {
          if (mode !== 'drop') from.resume();
        });
      }
    });
    from.on('end', () => to.end());
  };

  const connectUpstream = (pair: Pair): void => {
    const upstream = net.connect(targetPort, targetHost);
    pair.upstream = upstream;
    let connected = false;
    upstream.on('connect', () => {
      connected = true;
      stats.forwarded += 1;
    });
    upstream.on('error', () => {
      if (!connected) {
        stats.targetFailures += 1;
        stats.reset += 1;
        destroy(pair, true);
      } else {
        destroy(pair, false);
      }
    });
    // A server that closes normally: finish the client's side gracefully (no lost bytes).
    upstream.on('close', () => {
      pairs.delete(pair);
      if (!pair.client.destroyed) pair.client.end();
    });
    relay(pair.client, upstream);
    relay(upstream, pair.client);
    if (mode === 'drop') upstream.pause();
    else pair.client.resume();
  };

  const onConnection = (client: net.Socket): void => {
    stats.accepted += 1;
    const pair: Pair = { client, upstream: undefined };
    pairs.add(pair);
    client.on('error', () => destroy(pair, false));
    client.on('close', () => destroy(pair, false));
    if (mode === 'reset' || mode === 'reset-on-accept') {
      stats.reset += 1;
      destroy(pair, true);
      return;
    }
    if (mode === 'drop') {
      stats.dropped += 1;
      return;
    }
    connectUpstream(pair);
  };

  const listener = net.createServer({ pauseOnConnect: true }, onConnection);
  listener.on('error', () => undefined);
  const listenOn = (port: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(port, host, () => {
        listener.off('error', reject);
        resolve();
      });
    });
  await listenOn(opts.port ?? 0);
  const port = (listener.address() as net.AddressInfo).port;
  let listening = true;

  const resetAll = (): void => {
    for (const pair of [...pairs]) {
      stats.reset += 1;
      destroy(pair, true);
    }
  };
  const stopListening = async (): Promise<void> => {
    if (!listening) return;
    listening = false;
    await new Promise<void>((resolve) => listener.close(() => resolve()));
  };

  return {
    host,
    port,
    get mode() {
      return mode;
    },
    stats,
    get open() {
      return pairs.size;
    },
    async setMode(next) {
      mode = next;
      if (next === 'refuse') await stopListening();
      else if (!listening) {
        await listenOn(port);
        listening = true;
      }
      for (const pair of [...pairs]) {
        if (next === 'reset') {
          stats.reset += 1;
          destroy(pair, true);
        } else if (next === 'drop') {
          pair.client.pause();
          pair.upstream?.pause();
        } else {
          if (!pair.upstream) connectUpstream(pair);
          pair.client.resume();
          pair.upstream?.resume();
        }
      }
    },
    setTarget(nextPort, nextHost) {
      targetPort = nextPort;
      if (nextHost !== undefined) targetHost = nextHost;
    },
    rewrite(url) {
      const u = new URL(url);
      u.hostname = host;
      u.port = String(port);
      return u.toString();
    },
    resetAll,
    async close() {
      resetAll();
      await stopListening();
    },
  };
}
