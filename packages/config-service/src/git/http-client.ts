/**
 * The HTTP client isomorphic-git fetches through, with explicit timeouts (SPEC §4: "fetches
 * have explicit connect and idle timeouts below the sync deadline").
 *
 * Without an agent of its own, isomorphic-git's Node client uses `http.globalAgent`, whose
 * sockets time out after 5 s of silence (Node ≥ 19), so a remote that takes 5 s to start
 * answering failed every sync whatever the sync deadline. Here every fetch gets its own
 * agent (no keep-alive: a sync makes two or three requests every poll interval):
 * - connect timeout: the TCP connection (and, for `https:`, the TLS handshake) must be up
 *   within `connectTimeoutMs`, else the socket is destroyed with code
 *   {@link GIT_CONNECT_TIMEOUT};
 * - idle timeout: once connected, a socket on which nothing arrives (and nothing is sent)
 *   for `idleTimeoutMs` is destroyed with code {@link GIT_IDLE_TIMEOUT}. A slow remote that
 *   keeps sending (or that answers each request within the idle timeout) completes.
 * The sync deadline (`GitMirror`'s `syncTimeoutMs`) aborts the whole fetch through `signal`.
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { HttpClient } from 'isomorphic-git';
import nodeHttp from 'isomorphic-git/http/node';

/** Error code of a connection not established within the connect timeout. */
export const GIT_CONNECT_TIMEOUT = 'GIT_CONNECT_TIMEOUT';
/** Error code of a connection on which nothing arrived within the idle timeout. */
export const GIT_IDLE_TIMEOUT = 'GIT_IDLE_TIMEOUT';

/** Timeouts of {@link createGitHttpClient}, in ms. */
export interface GitHttpTimeouts {
  /** TCP connect (+ TLS handshake) deadline. */
  readonly connectTimeoutMs: number;
  /** Longest silence on a connected socket. */
  readonly idleTimeoutMs: number;
}

/** A client for one fetch; {@link GitHttpClient.close} destroys its sockets. */
export interface GitHttpClient {
  readonly http: HttpClient;
  close(): void;
}

function timeoutError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

type CreateConnection = (options: object, callback?: (err: Error | null, socket: Socket) => void) => Socket;

/** Wraps an agent's `createConnection` to arm the connect and idle timers on each socket. */
function arm(agent: http.Agent, secure: boolean, t: GitHttpTimeouts): void {
  const original = (agent as unknown as { createConnection: CreateConnection }).createConnection.bind(agent);
  (agent as unknown as { createConnection: CreateConnection }).createConnection = (options, callback) => {
    const socket = original(options, callback);
    const connectTimer = setTimeout(() => {
      socket.destroy(timeoutError(GIT_CONNECT_TIMEOUT, `no connection within ${t.connectTimeoutMs} ms`));
    }, t.connectTimeoutMs);
    connectTimer.unref();
    const connected = (): void => {
      clearTimeout(connectTimer);
      // Inactivity timer: only this listener acts on it (the agent has no `timeout` option,
      // so Node's ClientRequest does not listen for it and simple-get never sees it).
      socket.setTimeout(t.idleTimeoutMs, () => {
        socket.destroy(timeoutError(GIT_IDLE_TIMEOUT, `nothing received for ${t.idleTimeoutMs} ms`));
      });
    };
    socket.once(secure ? 'secureConnect' : 'connect', connected);
    socket.once('close', () => clearTimeout(connectTimer));
    return socket;
  };
}

/**
 * Creates the HTTP client of one fetch.
 *
 * @param timeouts - connect and idle timeouts (ms).
 * @param signal - aborts every request of the fetch (the sync deadline).
 * @returns the client to pass to isomorphic-git as `http`, and `close()`.
 */
export function createGitHttpClient(timeouts: GitHttpTimeouts, signal: AbortSignal): GitHttpClient {
  const plain = new http.Agent({ keepAlive: false });
  const secure = new https.Agent({ keepAlive: false });
  arm(plain, false, timeouts);
  arm(secure, true, timeouts);
  return {
    http: {
      request: (req) => nodeHttp.request({ ...req, agent: /^https:/i.test(req.url) ? secure : plain, signal }),
    },
    close: () => {
      plain.destroy();
      secure.destroy();
    },
  };
}
