/**
 * A TCP proxy the test controls, between a client and a real server (PostgreSQL, the
 * service), to play network faults on real connections:
 *
 * - `forward`: bytes flow both ways (connections held by `drop` are resumed or connected);
 * - `drop`: no byte moves any more, in either direction, and nothing is closed — both
 *   sockets of every connection are paused (a network that silently drops packets); new
 *   connections are accepted and held without reaching the server;
 * - `reset`: every open connection is destroyed with a TCP RST on both sides, and each new
 *   connection is reset as soon as it is accepted;
 * - `refuse`: the listening socket is closed, so new connections get ECONNREFUSED; open
 *   connections keep forwarding. Leaving `refuse` listens again on the same port.
 */
import net from 'node:net';

/** What the proxy does with connections. */
export type TcpProxyMode = 'forward' | 'drop' | 'reset' | 'refuse';

/** A running proxy. */
export interface TcpProxy {
  /** The address clients connect to. */
  readonly host: string;
  readonly port: number;
  readonly mode: TcpProxyMode;
  /** Connections accepted since start, and those open now. */
  readonly accepted: number;
  readonly open: number;
  /** Switches the mode; takes effect at once on every open connection. */
  setMode(mode: TcpProxyMode): Promise<void>;
  /** `url` with its host and port replaced by the proxy's (credentials, path and query kept). */
  rewrite(url: string): string;
  /** Destroys every connection and stops listening. */
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  /** Absent while the connection is held (accepted during `drop`). */
  server: net.Socket | undefined;
}

/**
 * Starts a proxy on 127.0.0.1 (ephemeral port) to `target`.
 * @param target the real server's address
 */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: TcpProxyMode = 'forward';
  let accepted = 0;
  const pairs = new Set<Pair>();

  const destroy = (pair: Pair, rst: boolean): void => {
    pairs.delete(pair);
    for (const s of [pair.client, pair.server]) {
      if (!s || s.destroyed) continue;
      if (rst && typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
      else s.destroy();
    }
  };

  /** Copies `from` → `to` with backpressure, only while the mode is `forward`. */
  const relay = (from: net.Socket, to: net.Socket): void => {
    from.on('data', (chunk: Buffer) => {
      if (!to.write(chunk) && mode === 'forward') {
        from.pause();
        to.once('drain', () => {
          if (mode === 'forward') from.resume();
        });
      }
    });
    from.on('end', () => to.end());
  };

  const connectServer = (pair: Pair): void => {
    const server = net.connect(target.port, target.host);
    pair.server = server;
    server.on('error', () => destroy(pair, false));
    server.on('close', () => destroy(pair, false));
    relay(pair.client, server);
    relay(server, pair.client);
    if (mode === 'forward') pair.client.resume();
    else server.pause();
  };

  const onConnection = (client: net.Socket): void => {
    accepted += 1;
    const pair: Pair = { client, server: undefined };
    pairs.add(pair);
    client.on('error', () => destroy(pair, false));
    client.on('close', () => destroy(pair, false));
    if (mode === 'reset') {
      destroy(pair, true);
      return;
    }
    client.pause();
    if (mode !== 'drop') connectServer(pair);
  };

  const listener = net.createServer({ pauseOnConnect: true }, onConnection);
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(0, '127.0.0.1', () => {
      listener.off('error', reject);
      resolve();
    });
  });
  const port = (listener.address() as net.AddressInfo).port;
  let listening = true;

  const listen = async (): Promise<void> => {
    if (listening) return;
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(port, '127.0.0.1', () => {
        listener.off('error', reject);
        resolve();
      });
    });
    listening = true;
  };
  const stopListening = async (): Promise<void> => {
    if (!listening) return;
    listening = false;
    await new Promise<void>((resolve) => listener.close(() => resolve()));
  };

  return {
    host: '127.0.0.1',
    port,
    get mode() {
      return mode;
    },
    get accepted() {
      return accepted;
    },
    get open() {
      return pairs.size;
    },
    async setMode(next) {
      mode = next;
      if (next === 'refuse') await stopListening();
      else await listen();
      for (const pair of [...pairs]) {
        switch (next) {
          case 'reset':
            destroy(pair, true);
            break;
          case 'drop':
            pair.client.pause();
            pair.server?.pause();
            break;
          case 'forward':
          case 'refuse':
            if (!pair.server) connectServer(pair);
            pair.client.resume();
            pair.server?.resume();
            break;
        }
      }
    },
    rewrite(url) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    async close() {
      for (const pair of [...pairs]) destroy(pair, false);
      await stopListening();
    },
  };
}
