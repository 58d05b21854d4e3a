/**
 * Connection errors and credential scrubbing of the PostgreSQL audit store (also used by
 * the sync bus, which shares the connection string).
 */

/** How much longer than `queryTimeoutMs` the client waits for an answer before it drops the connection. */
export const QUERY_TIMEOUT_GRACE_MS = 1000;

/** Errors after which a connection must not go back to the pool (nor be sent a ROLLBACK). */
export function isConnectionError(err: unknown): boolean {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  // pg's client-side timeout and its "connection gone" errors carry no code.
  if (typeof message === 'string' && /^(Query read timeout|Connection terminated|Client has encountered a connection error)/.test(message)) return true;
  // Class 08 (connection exception), 57P01-03 (shutdown), or a socket error.
  return typeof code === 'string' && (/^08/.test(code) || /^57P0[123]$/.test(code) || /^E[A-Z]+$/.test(code));
}

/**
 * Every spelling of the credential a connection string holds, to keep out of logs and
 * errors: the whole string, and its password as written and decoded (userinfo or a
 * `password` parameter). Empty strings are left out.
 */
export function connectionSecrets(connectionString: string): string[] {
  const secrets = new Set<string>([connectionString]);
  const add = (s: string | null | undefined): void => {
    if (!s) return;
    secrets.add(s);
    try {
      secrets.add(decodeURIComponent(s));
    } catch {
      // not percent-encoded text; the raw form is enough
    }
    secrets.add(encodeURIComponent(s));
  };
  try {
    const url = new URL(connectionString, 'postgres://base');
    add(url.password);
    add(url.searchParams.get('password'));
  } catch {
    // Not a URL: pg will fail on it; the whole string is already a secret.
  }
  const m = /(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/.exec(connectionString);
  if (m?.[1]) add(m[1].replace(/^'|'$/g, ''));
  return [...secrets].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
}

/**
 * Returns `err` when no string in it (message, stack, own properties, causes) contains a
 * secret; otherwise a plain Error carrying the scrubbed message and the `code` only.
 */
export function scrubError(err: unknown, secrets: readonly string[]): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  if (!containsSecret(e, secrets, 0, new Set())) return e;
  const copy = new Error(scrubText(e.message, secrets));
  copy.name = e.name;
  copy.stack = `${copy.name}: ${copy.message}`;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string') (copy as Error & { code?: string }).code = code;
  return copy;
}

function scrubText(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('[REDACTED]');
  return out;
}

function containsSecret(v: unknown, secrets: readonly string[], depth: number, seen: Set<unknown>): boolean {
  if (typeof v === 'string') return secrets.some((s) => v.includes(s));
  if (typeof v !== 'object' || v === null || depth > 4 || seen.has(v)) return false;
  seen.add(v);
  const keys = new Set<string>(Object.getOwnPropertyNames(v));
  if (v instanceof Error) ['message', 'stack', 'cause'].forEach((k) => keys.add(k));
  for (const k of keys) {
    let child: unknown;
    try {
      child = (v as Record<string, unknown>)[k];
    } catch {
      continue;
    }
    if (containsSecret(child, secrets, depth + 1, seen)) return true;
  }
  return false;
}

/**
 * Why a PostgreSQL operation failed, for readiness: the timeout that expired, or the
 * error's own text (already scrubbed of credentials).
 */
export function describePgError(err: Error, connectTimeoutMs: number, queryTimeoutMs: number): string {
  const code = (err as { code?: unknown }).code;
  const message = err.message;
  if (message === 'Query read timeout') return `PostgreSQL did not answer within ${queryTimeoutMs + QUERY_TIMEOUT_GRACE_MS} ms`;
  if (/timeout exceeded when trying to connect|due to connection timeout/.test(message)) {
    return `no connection to PostgreSQL within ${connectTimeoutMs} ms`;
  }
  if (code === '57014') return `a statement ran longer than ${queryTimeoutMs} ms (statement_timeout; another replica holding the chain's lock?)`;
  if (code === 'ECONNREFUSED') return 'PostgreSQL refused the connection (ECONNREFUSED)';
  if (code === 'ECONNRESET' || code === 'EPIPE' || /Connection terminated unexpectedly/.test(message)) return 'the connection to PostgreSQL was reset or closed';
  return typeof code === 'string' ? `${code}: ${message}` : message;
}
