/**
 * The retry policy of config-init (SPEC §7): what is retried, how long to wait, when to
 * stop.
 *
 * - Retried: transport failures (refused, reset, EOF, timeout, DNS, a TLS alert that is
 *   not about our certificate), HTTP 5xx and 429, honouring `Retry-After`.
 * - Final: a TLS certificate alert or HTTP 401/403 (77), a server certificate our CA does
 *   not trust (77), any other 4xx (64/65/66).
 * - Waits: capped exponential backoff with full jitter, `max(jitter, Retry-After)`, never
 *   past the overall deadline.
 *
 * Why no library: undici's `RetryAgent` (and `RetryHandler`) retries with a plain
 * exponential backoff without jitter and knows no overall deadline, so a fleet of init
 * containers restarted together would retry in lock step; `p-retry` (and `retry`) cannot
 * honour a `Retry-After` header because the delay is computed before the failure is seen.
 * Either would also be a runtime dependency that costs start-up time (SPEC §11), and
 * config-init is bundled into one file of `node:` built-ins.
 */
import { label } from './args.js';
import { FetchError, type ErrorCode } from './errors.js';
import { closedSilentlyAfterHandshake, errorCode, SERVER_TRUST_CODES, tlsAlertOf, type TransportFailure } from './transport-errors.js';

/** Backoff base delay (ms): the first retry waits random(0, 200 ms). */
export const BACKOFF_BASE_MS = 200;
/** Backoff cap (ms): no jittered delay window is larger than this. */
export const BACKOFF_CAP_MS = 10_000;

/** An attempt that failed in a way worth retrying. */
export class Retryable {
  /**
   * @param cause - short cause for logs and the final message (`ECONNRESET: …`, `HTTP 503`).
   * @param retryAfterMs - the server's `Retry-After`, in ms from now, if it sent one.
   * @param silentClose - the failure was {@link closedSilentlyAfterHandshake}: the server
   *   may be rejecting the client certificate without an alert.
   * @param timedOut - the attempt ran out of its time (`ETIMEDOUT`).
   */
  constructor(
    readonly cause: string,
    readonly retryAfterMs: number | undefined = undefined,
    readonly silentClose = false,
    readonly timedOut = false,
  ) {}
}

/**
 * Classifies a transport failure (see the table in `transport-errors.ts`).
 *
 * - A TLS certificate alert (42, 43, 44, 45, 46, 48, 49, 116) from the server: it refused
 *   our certificate → final `CFG_INIT_ERR_NOT_AUTHORIZED` (77), whatever the TLS version.
 * - Our CA does not trust the server → final `CFG_INIT_ERR_SERVER_UNTRUSTED` (77).
 * - Anything else → {@link Retryable}: a reset, EOF or timeout before the handshake
 *   completes (a load balancer whose backend restarts), another TLS alert, and also a
 *   reset right after a completed handshake without an alert (ambiguous; flagged
 *   `silentClose` so the final message can say so).
 */
export function classifyTransportError(f: TransportFailure): Retryable | FetchError {
  const alert = tlsAlertOf(f.error);
  const when = f.handshakeDone ? `after the ${f.protocol ?? 'TLS'} handshake` : 'during the TLS handshake';
  if (alert?.certificate) {
    return new FetchError(
      'CFG_INIT_ERR_NOT_AUTHORIZED',
      `the server rejected the client certificate ${when} (TLS alert ${alert.number} ${alert.name}); check ${label('cert')} (expiry, issuer) and that the service trusts its CA`,
      { cause: f.error },
    );
  }
  const code = errorCode(f.error) ?? 'ERROR';
  if (SERVER_TRUST_CODES.has(code)) {
    return new FetchError('CFG_INIT_ERR_SERVER_UNTRUSTED', `the server certificate is not trusted (${code}); check ${label('ca')} and ${label('server')}`, { cause: f.error });
  }
  if (alert) return new Retryable(`TLS alert ${alert.number} ${alert.name} ${when}`);
  const msg = (f.error instanceof Error ? f.error.message : String(f.error)).split('\n')[0] ?? '';
  const cause = code === 'ERROR' || !msg.includes(code) ? `${code}: ${msg}` : msg;
  const silent = closedSilentlyAfterHandshake(f);
  const where = silent ? ` (after a completed ${f.protocol ?? 'TLS'} handshake, without a TLS alert or an HTTP answer)` : !f.handshakeDone && !f.reused ? ' (before the TLS handshake completed)' : '';
  return new Retryable(`${cause}${where}`, undefined, silent, code === 'ETIMEDOUT');
}

/** Maps a final (non-retryable) HTTP status to an error code: 400 → 64, 401/403 → 77, 404 → 66, 422 → 65, else 65. */
export function statusErrorCode(status: number): ErrorCode {
  if (status === 400) return 'CFG_INIT_ERR_BAD_REQUEST';
  if (status === 401 || status === 403) return 'CFG_INIT_ERR_NOT_AUTHORIZED';
  if (status === 404) return 'CFG_INIT_ERR_NOT_FOUND';
  if (status === 422) return 'CFG_INIT_ERR_UNRENDERABLE';
  return 'CFG_INIT_ERR_BAD_RESPONSE';
}

/** Whether an HTTP status is retried: 429 and every 5xx. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599);
}

/** Parses `Retry-After` (delta seconds or HTTP-date, RFC 9110 §10.2.3) into ms from `now`. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** Full-jitter delay for retry number `n` (0-based): random(0, min(cap, base·2^n)), in ms. */
export function backoffDelay(n: number, random: () => number, baseMs = BACKOFF_BASE_MS, capMs = BACKOFF_CAP_MS): number {
  const window = Math.min(capMs, baseMs * 2 ** Math.min(n, 30));
  return Math.floor(random() * window);
}

/** Details of a failed attempt that will be retried. */
export interface RetryInfo {
  /** Number of the attempt that failed (1-based, across all requests). */
  attempt: number;
  /** What was being fetched: `format properties`, `environment map`, `file list`, `file 'x'`. */
  target: string;
  /** Short cause: an error code or `HTTP 503`. */
  cause: string;
  /** Delay before the next attempt (ms). */
  delayMs: number;
}

/** Injected time and randomness, so tests can control the retry loop. */
export interface RetryDeps {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Waits `ms` milliseconds. */
  sleep(ms: number): Promise<void>;
  /** Uniform random number in [0, 1). */
  random(): number;
  /** Called before each retry sleep (for logging). */
  onRetry?(info: RetryInfo): void;
}

/**
 * One retry budget shared by every request of a run: one deadline, one backoff sequence,
 * attempt counters for messages.
 */
export interface RetryBudget {
  /** When the run started (ms since the epoch). */
  readonly start: number;
  /** When attempts stop (ms since the epoch). */
  readonly deadlineAt: number;
  /** The overall deadline (ms), for messages. */
  readonly deadlineMs: number;
  /** Attempts made so far. */
  attempts: number;
  /** Retries made so far (the backoff exponent). */
  retries: number;
  /** Attempts that ended {@link Retryable.silentClose}. */
  silentCloses: number;
}

/** Starts a budget of `deadlineMs` from now. */
export function retryBudget(deadlineMs: number, now: number): RetryBudget {
  return { start: now, deadlineAt: now + deadlineMs, deadlineMs, attempts: 0, retries: 0, silentCloses: 0 };
}

/**
 * Runs `attempt` until it gives a value or a final error, or the budget's deadline passes.
 *
 * @param attempt - one try, given the time it may take (ms; the per-try timeout capped by
 *   the time left). Returns `{ value }`, a {@link Retryable} or a final {@link FetchError}.
 * @param onRetryable - called after every retryable failure, before the wait (the caller
 *   drops its connection here).
 * @throws {@link FetchError} the final error, or `CFG_INIT_ERR_UNAVAILABLE` (69) when the
 *   deadline passes or the next wait would end past it, naming the last cause.
 */
export async function retryUntilDeadline<T>(
  budget: RetryBudget,
  deps: RetryDeps,
  timeoutMs: number,
  target: string,
  attempt: (timeoutMs: number) => Promise<{ value: T } | Retryable | FetchError>,
  onRetryable: () => void = () => undefined,
): Promise<T> {
  let last: Retryable | undefined;
  for (;;) {
    const remaining = budget.deadlineAt - deps.now();
    if (remaining <= 0) break;
    budget.attempts += 1;
    const allowedMs = Math.min(timeoutMs, remaining);
    const result = await attempt(allowedMs);
    if (result instanceof FetchError) throw result;
    if (!(result instanceof Retryable)) return result.value;
    // An attempt the deadline cut short says nothing new: the cause to report stays the
    // one before it (`HTTP 503 repo_unavailable`, `ECONNREFUSED`), not a few-ms timeout.
    if (!(result.timedOut && allowedMs < timeoutMs && last !== undefined)) last = result;
    if (result.silentClose) budget.silentCloses += 1;
    onRetryable();
    let delay = backoffDelay(budget.retries, deps.random);
    if (result.retryAfterMs !== undefined) delay = Math.max(delay, result.retryAfterMs);
    if (deps.now() + delay >= budget.deadlineAt) break;
    budget.retries += 1;
    deps.onRetry?.({ attempt: budget.attempts, target, cause: result.cause, delayMs: delay });
    await deps.sleep(delay);
  }
  const hint = budget.silentCloses > 0
    ? `; ${budget.silentCloses} attempt(s) completed the TLS handshake and the server then closed the connection without a TLS alert or an HTTP answer: a server that checks client certificates after the handshake (Node.js with rejectUnauthorized) does this when it rejects the certificate, so check ${label('cert')} and that the service trusts its CA`
    : '';
  const elapsed = deps.now() - budget.start;
  throw new FetchError(
    'CFG_INIT_ERR_UNAVAILABLE',
    `config-service unavailable: gave up after ${budget.attempts} attempt(s) in ${elapsed} ms (deadline ${budget.deadlineMs} ms); last error: ${last?.cause ?? 'deadline reached before any attempt'}${hint}`,
    { cause: last },
  );
}
