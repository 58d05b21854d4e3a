/**
 * Test helper: a Git smart-HTTP server on 127.0.0.1 running the real `git http-backend` as
 * a CGI program, optionally behind HTTP Basic authentication. Node built-ins only.
 *
 * Every repository under `projectRoot` is served (`GIT_HTTP_EXPORT_ALL`), e.g. a bare repo
 * `<projectRoot>/config.git` at `<url>/config.git`. Pushing over HTTP is enabled too.
 *
 * For failure tests it can misbehave ({@link GitHttpBehaviour}, changed while running with
 * `configure`): answer late, never answer, trickle forever, send a pack lacking the commit
 * it advertised, or require other credentials (a rotated token, the old one revoked).
 */
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How the server misbehaves; change it while running with {@link GitHttpServer.configure}. */
export interface GitHttpBehaviour {
  /** When set, every request without these Basic credentials gets 401 + `WWW-Authenticate`. */
  auth?: { readonly username: string; readonly password: string } | undefined;
  /** Every response starts this many ms late (nothing is sent meanwhile). */
  delayMs?: number | undefined;
  /** Requests are accepted and never answered (until the server closes). */
  hang?: boolean | undefined;
  /** Responses start at once but their body is one byte every this many ms, forever (a pkt-line that never ends). */
  trickleMs?: number | undefined;
  /**
   * `POST …/git-upload-pack` bodies get each `want <key>` replaced by `want <value>` before
   * git sees them: the server then sends a pack for another commit than the one it
   * advertised (a pack lacking the advertised commit).
   */
  rewriteWants?: Readonly<Record<string, string>> | undefined;
}

/** Options of {@link startGitHttpServer}. */
export interface GitHttpServerOptions extends GitHttpBehaviour {
  /** Directory holding the served repositories (`GIT_PROJECT_ROOT`). */
  readonly projectRoot: string;
}

/** One request the server answered. */
export interface GitHttpRequestRecord {
  readonly method: string;
  /** Path and query, as received. */
  readonly url: string;
  readonly status: number;
  /** Response body bytes sent. */
  readonly bytes: number;
  /** The `Authorization` header as received (to check what clients send), or undefined. */
  readonly authorization: string | undefined;
}

/** A running server. */
export interface GitHttpServer {
  /** Base URL, `http://127.0.0.1:<port>` (no trailing slash). */
  readonly url: string;
  /** Requests answered so far (all methods, including 401s). */
  readonly requests: number;
  /** Response body bytes of `POST …/git-upload-pack` (the packfiles, mostly) so far. */
  readonly bytesSent: number;
  /** Every request answered so far, in order. */
  readonly log: readonly GitHttpRequestRecord[];
  /** Changes how the server behaves from the next request on (fields given replace the current ones). */
  configure(behaviour: GitHttpBehaviour): void;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

function authorized(req: IncomingMessage, auth: GitHttpBehaviour['auth']): string | undefined | false {
  if (auth === undefined) return undefined;
  const header = req.headers.authorization ?? '';
  const m = /^Basic\s+(.+)$/i.exec(header);
  if (m?.[1] === undefined) return false;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return false;
  const user = decoded.slice(0, colon);
  const pass = decoded.slice(colon + 1);
  return user === auth.username && pass === auth.password ? user : false;
}

/**
 * Starts the server on an ephemeral port of 127.0.0.1.
 * @returns the server's URL, counters and `close()`.
 */
export async function startGitHttpServer(opts: GitHttpServerOptions): Promise<GitHttpServer> {
  const log: GitHttpRequestRecord[] = [];
  let bytesSent = 0;

  const behaviour: GitHttpBehaviour = { auth: opts.auth, delayMs: opts.delayMs, hang: opts.hang, trickleMs: opts.trickleMs, rewriteWants: opts.rewriteWants };
  const timers = new Set<NodeJS.Timeout>();

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    if (behaviour.hang === true) {
      req.resume();
      return; // never answered
    }
    if (behaviour.trickleMs !== undefined) {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'application/x-git-upload-pack-advertisement', 'Cache-Control': 'no-cache' });
      // A pkt-line announcing 65516 bytes of data, then one byte per tick: never complete,
      // never silent.
      res.write('fff0');
      const t = setInterval(() => res.write('a'), behaviour.trickleMs);
      timers.add(t);
      res.on('close', () => {
        clearInterval(t);
        timers.delete(t);
      });
      return;
    }
    if (behaviour.delayMs !== undefined && behaviour.delayMs > 0) {
      const t = setTimeout(() => {
        timers.delete(t);
        serve(req, res);
      }, behaviour.delayMs);
      timers.add(t);
      return;
    }
    serve(req, res);
  };

  const serve = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    const record = (status: number, bytes: number): void => {
      log.push({ method, url: req.url ?? '/', status, bytes, authorization: req.headers.authorization });
      if (method === 'POST' && url.pathname.endsWith('/git-upload-pack')) bytesSent += bytes;
    };
    const user = authorized(req, behaviour.auth);
    if (user === false) {
      req.resume();
      const body = 'Unauthorized\n';
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"', 'Content-Type': 'text/plain', 'Content-Length': body.length });
      res.end(body);
      record(401, body.length);
      return;
    }
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      GIT_PROJECT_ROOT: opts.projectRoot,
      GIT_HTTP_EXPORT_ALL: '1',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_CONFIG_COUNT: '2',
      GIT_CONFIG_KEY_0: 'http.receivepack',
      GIT_CONFIG_VALUE_0: 'true',
      GIT_CONFIG_KEY_1: 'safe.directory',
      GIT_CONFIG_VALUE_1: '*',
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_PROTOCOL: 'HTTP/1.1',
      SERVER_SOFTWARE: 'git-http-test-server',
      REQUEST_METHOD: method,
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.replace(/^\?/, ''),
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
      REMOTE_USER: user ?? 'anonymous',
    };
    if (req.headers['content-type'] !== undefined) env.CONTENT_TYPE = req.headers['content-type'];
    if (req.headers['content-length'] !== undefined) env.CONTENT_LENGTH = req.headers['content-length'];
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined) env.HTTP_CONTENT_ENCODING = encoding;
    const protocol = req.headers['git-protocol'];
    if (typeof protocol === 'string') env.GIT_PROTOCOL = protocol;

    const cgi = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    cgi.stdin.on('error', () => undefined);
    const rewrites = behaviour.rewriteWants;
    if (rewrites !== undefined && method === 'POST' && url.pathname.endsWith('/git-upload-pack') && encoding === undefined) {
      // Same length (40 hex for 40 hex), so the pkt-line lengths stay right.
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let body = Buffer.concat(chunks).toString('latin1');
        for (const [from, to] of Object.entries(rewrites)) body = body.split(`want ${from}`).join(`want ${to}`);
        cgi.stdin.end(Buffer.from(body, 'latin1'));
      });
    } else {
      req.pipe(cgi.stdin);
    }
    let stderr = '';
    cgi.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });

    let head = Buffer.alloc(0);
    let headersDone = false;
    let status = 200;
    let bodyBytes = 0;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        bodyBytes += chunk.length;
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      let end = head.indexOf('\r\n\r\n');
      let sep = 4;
      if (end === -1) {
        end = head.indexOf('\n\n');
        sep = 2;
      }
      if (end === -1) return;
      headersDone = true;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
        const colon = line.indexOf(':');
        if (colon === -1) continue;
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 500;
        else headers[name] = value;
      }
      res.writeHead(status, headers);
      const rest = head.subarray(end + sep);
      bodyBytes += rest.length;
      if (rest.length > 0) res.write(rest);
    });
    cgi.on('close', (code) => {
      if (!headersDone) {
        const body = `git http-backend failed (${code ?? 'signal'}): ${stderr}`;
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(body);
        record(500, Buffer.byteLength(body));
        return;
      }
      res.end();
      record(status, bodyBytes);
    });
    cgi.on('error', () => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  };

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return log.length;
    },
    get bytesSent() {
      return bytesSent;
    },
    log,
    configure: (b) => Object.assign(behaviour, b),
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
