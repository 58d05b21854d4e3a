import { describe, expect, it } from 'vitest';
import { FetchError } from '../src/errors.js';
import { backoffDelay, classifyTransportError, parseRetryAfter, Retryable, retryBudget, retryUntilDeadline, type RetryDeps } from '../src/retry.js';
import type { TransportFailure } from '../src/transport-errors.js';
import { tlsAlertOf } from '../src/transport-errors.js';

/** Error objects shaped exactly as Node 20 / OpenSSL 3.0 reports them (see transport-errors.ts). */
const ERRORS = {
  tls12Alert: (n: number, reason: string) =>
    Object.assign(new Error(`write EPROTO 80EC022AAB7F0000:error:0A000418:SSL routines:ssl3_read_bytes:${reason}:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number ${n}\n`), { errno: -71, code: 'EPROTO', syscall: 'write' }),
  tls13Alert: (code: string, reason: string, n: number) =>
    Object.assign(new Error(`80EC022AAB7F0000:error:0A000418:SSL routines:ssl3_read_bytes:${reason}:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number ${n}\n`), { library: 'SSL routines', reason, code }),
  reset: (message: string) => Object.assign(new Error(message), { code: 'ECONNRESET' }),
};

function failure(error: unknown, over: Partial<TransportFailure> = {}): TransportFailure {
  return { error, reused: false, handshakeDone: false, answered: false, protocol: undefined, ...over };
}

describe('classifyTransportError', () => {
  it.each<[string, unknown, Partial<TransportFailure>, string]>([
    ['TLS 1.2 alert 48 (EPROTO, during the handshake)', ERRORS.tls12Alert(48, 'tlsv1 alert unknown ca'), {}, 'the server rejected the client certificate during the TLS handshake (TLS alert 48 unknown_ca)'],
    ['TLS 1.2 alert 45', ERRORS.tls12Alert(45, 'sslv3 alert certificate expired'), {}, 'the server rejected the client certificate during the TLS handshake (TLS alert 45 certificate_expired)'],
    ['TLS 1.3 alert 48 after secureConnect', ERRORS.tls13Alert('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'tlsv1 alert unknown ca', 48), { handshakeDone: true, protocol: 'TLSv1.3' }, 'the server rejected the client certificate after the TLSv1.3 handshake (TLS alert 48 unknown_ca)'],
    ['TLS 1.3 certificate_required', ERRORS.tls13Alert('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'tlsv13 alert certificate required', 116), { handshakeDone: true, protocol: 'TLSv1.3' }, 'the server rejected the client certificate after the TLSv1.3 handshake (TLS alert 116 certificate_required)'],
    ['TLS 1.3 bad_certificate (code only)', Object.assign(new Error('x'), { code: 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE' }), { handshakeDone: true, protocol: 'TLSv1.3' }, 'the server rejected the client certificate after the TLSv1.3 handshake (TLS alert 42 bad_certificate)'],
    ['access_denied (reason only)', Object.assign(new Error('x'), { reason: 'tlsv1 alert access denied' }), {}, 'the server rejected the client certificate during the TLS handshake (TLS alert 49 access_denied)'],
  ])('%s → 77 CFG_INIT_ERR_NOT_AUTHORIZED', (_name, error, over, message) => {
    const r = classifyTransportError(failure(error, over));
    expect(r).toBeInstanceOf(FetchError);
    expect((r as FetchError).code).toBe('CFG_INIT_ERR_NOT_AUTHORIZED');
    expect((r as FetchError).message).toBe(`${message}; check --cert (env CONFIG_INIT_CERT) (expiry, issuer) and that the service trusts its CA`);
  });

  it.each(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_HAS_EXPIRED', 'SELF_SIGNED_CERT_IN_CHAIN'])('%s (our CA refuses the server) → 77 CFG_INIT_ERR_SERVER_UNTRUSTED', (code) => {
    const r = classifyTransportError(failure(Object.assign(new Error('x'), { code })));
    expect((r as FetchError).code).toBe('CFG_INIT_ERR_SERVER_UNTRUSTED');
  });

  it.each<[string, unknown, Partial<TransportFailure>, string]>([
    ['a proxy reset at accept', Object.assign(new Error('connect ECONNRESET 127.0.0.1:8443'), { code: 'ECONNRESET' }), {}, 'connect ECONNRESET 127.0.0.1:8443 (before the TLS handshake completed)'],
    ['a reset after the ClientHello', ERRORS.reset('read ECONNRESET'), {}, 'read ECONNRESET (before the TLS handshake completed)'],
    ['an EOF before the handshake', ERRORS.reset('Client network socket disconnected before secure TLS connection was established'), {}, 'ECONNRESET: Client network socket disconnected before secure TLS connection was established (before the TLS handshake completed)'],
    ['connection refused', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), {}, 'connect ECONNREFUSED 127.0.0.1:1 (before the TLS handshake completed)'],
    ['our timeout', Object.assign(new Error('attempt timed out after 5000 ms'), { code: 'ETIMEDOUT' }), {}, 'ETIMEDOUT: attempt timed out after 5000 ms (before the TLS handshake completed)'],
    ['a reused keep-alive socket closed by the server', ERRORS.reset('socket hang up'), { reused: true, handshakeDone: true }, 'ECONNRESET: socket hang up'],
    ['a truncated answer', ERRORS.reset('response truncated'), { handshakeDone: true, answered: true }, 'ECONNRESET: response truncated'],
    ['a non-certificate alert (internal_error)', ERRORS.tls12Alert(80, 'tlsv1 alert internal error'), {}, 'TLS alert 80 internal_error during the TLS handshake'],
    ['a non-certificate alert (handshake_failure)', ERRORS.tls12Alert(40, 'sslv3 alert handshake failure'), {}, 'TLS alert 40 handshake_failure during the TLS handshake'],
  ])('%s → retried', (_name, error, over, cause) => {
    const r = classifyTransportError(failure(error, over));
    expect(r).toBeInstanceOf(Retryable);
    expect((r as Retryable).cause).toBe(cause);
    expect((r as Retryable).silentClose).toBe(false);
  });

  it('a reset after a completed TLS 1.3 handshake without an alert is retried and flagged as a silent close', () => {
    const r = classifyTransportError(failure(ERRORS.reset('socket hang up'), { handshakeDone: true, protocol: 'TLSv1.3' }));
    expect(r).toBeInstanceOf(Retryable);
    expect(r).toMatchObject({ silentClose: true, cause: 'ECONNRESET: socket hang up (after a completed TLSv1.3 handshake, without a TLS alert or an HTTP answer)' });
  });
});

describe('tlsAlertOf', () => {
  it('reads the alert from the message, the ERR_SSL code or the reason, and nothing from other errors', () => {
    expect(tlsAlertOf(ERRORS.tls12Alert(46, 'sslv3 alert certificate unknown'))).toEqual({ number: 46, name: 'certificate_unknown', certificate: true });
    expect(tlsAlertOf(Object.assign(new Error('x'), { code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' }))).toEqual({ number: 70, name: 'protocol_version', certificate: false });
    expect(tlsAlertOf(Object.assign(new Error('x'), { code: 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED' }))).toEqual({ number: 44, name: 'certificate_revoked', certificate: true });
    expect(tlsAlertOf(ERRORS.reset('socket hang up'))).toBeUndefined();
    expect(tlsAlertOf(Object.assign(new Error('write EPROTO …:wrong version number:…'), { code: 'EPROTO' }))).toBeUndefined();
  });
});

describe('retry arithmetic', () => {
  it.each([
    [0, 0.999, 199],
    [1, 0.999, 399],
    [5, 0.5, 3200],
    [6, 0.999, 9990],
    [20, 0.999, 9990],
    [3, 0, 0],
  ])('backoff for retry %i with random %f is %i ms (full jitter, cap 10 s)', (n, r, expected) => {
    expect(backoffDelay(n, () => r)).toBe(expected);
  });

  it('parses Retry-After seconds and HTTP dates', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

describe('retryUntilDeadline', () => {
  /** A fake clock: sleeping advances it; every attempt costs 10 ms. */
  function fakeDeps(): RetryDeps & { t: number; slept: number[] } {
    const d = {
      t: 1_000_000,
      slept: [] as number[],
      now: () => d.t,
      sleep: async (ms: number) => {
        d.slept.push(ms);
        d.t += ms;
      },
      random: () => 0.5,
    };
    return d;
  }

  it('retries resets to the deadline (never 77) and ends with 69 naming the last cause', async () => {
    const deps = fakeDeps();
    const budget = retryBudget(5000, deps.now());
    let dropped = 0;
    const err = await retryUntilDeadline(budget, deps, 1000, 'format properties', async () => {
      deps.t += 10;
      return classifyTransportError(failure(ERRORS.reset('read ECONNRESET')));
    }, () => (dropped += 1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FetchError);
    expect((err as FetchError).code).toBe('CFG_INIT_ERR_UNAVAILABLE');
    expect((err as FetchError).message).toMatch(/^config-service unavailable: gave up after \d+ attempt\(s\) in \d+ ms \(deadline 5000 ms\); last error: read ECONNRESET \(before the TLS handshake completed\)$/);
    // 200·2ⁿ·0.5 = 100, 200, 400, 800, 1600 ms; the next (3200) would pass the deadline.
    expect(deps.slept).toEqual([100, 200, 400, 800, 1600]);
    expect(budget.attempts).toBe(6);
    expect(dropped).toBe(6);
  });

  it('names the cause before an attempt the deadline cut short, not that attempt\'s timeout', async () => {
    const deps = fakeDeps();
    const budget = retryBudget(1000, deps.now());
    const given: number[] = [];
    const err = await retryUntilDeadline(budget, deps, 800, 'format properties', async (timeoutMs) => {
      given.push(timeoutMs);
      if (given.length === 1) {
        deps.t += 850;
        return new Retryable('HTTP 503 repo_unavailable');
      }
      // The second attempt only had the 50 ms left, and used them up.
      deps.t += timeoutMs;
      return classifyTransportError(failure(Object.assign(new Error(`attempt timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    }).catch((e: unknown) => e);
    expect(given).toEqual([800, 50]);
    expect((err as FetchError).message).toMatch(/last error: HTTP 503 repo_unavailable$/);
  });

  it('names a timeout when the attempt had its whole per-try time', async () => {
    const deps = fakeDeps();
    const budget = retryBudget(1000, deps.now());
    const err = await retryUntilDeadline(budget, deps, 300, 't', async (timeoutMs) => {
      deps.t += timeoutMs;
      return classifyTransportError(failure(Object.assign(new Error(`attempt timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    }).catch((e: unknown) => e);
    expect((err as FetchError).message).toMatch(/last error: ETIMEDOUT: attempt timed out after 300 ms \(before the TLS handshake completed\)$/);
  });

  it('returns the value after transient failures, and a final error at once', async () => {
    const deps = fakeDeps();
    const results: Array<{ value: string } | Retryable | FetchError> = [new Retryable('HTTP 503'), new Retryable('read ECONNRESET'), { value: 'ok' }];
    expect(await retryUntilDeadline(retryBudget(60_000, deps.now()), deps, 1000, 't', async () => results.shift()!)).toBe('ok');
    const final = new FetchError('CFG_INIT_ERR_NOT_AUTHORIZED', 'no');
    const budget = retryBudget(60_000, deps.now());
    await expect(retryUntilDeadline(budget, deps, 1000, 't', async () => final)).rejects.toBe(final);
    expect(budget.attempts).toBe(1);
  });

  it('says so when attempts ended in a silent close after the handshake', async () => {
    const deps = fakeDeps();
    const err = (await retryUntilDeadline(retryBudget(1000, deps.now()), deps, 1000, 't', async () =>
      classifyTransportError(failure(ERRORS.reset('socket hang up'), { handshakeDone: true, protocol: 'TLSv1.3' })),
    ).catch((e: unknown) => e)) as FetchError;
    expect(err.code).toBe('CFG_INIT_ERR_UNAVAILABLE');
    expect(err.message).toMatch(/; \d+ attempt\(s\) completed the TLS handshake and the server then closed the connection without a TLS alert or an HTTP answer: a server that checks client certificates after the handshake \(Node\.js with rejectUnauthorized\) does this when it rejects the certificate, so check --cert \(env CONFIG_INIT_CERT\) and that the service trusts its CA$/);
  });

  it('honours Retry-After as a minimum and does not start a wait that ends past the deadline', async () => {
    const deps = fakeDeps();
    const budget = retryBudget(10_000, deps.now());
    const err = (await retryUntilDeadline(budget, deps, 1000, 't', async () => new Retryable('HTTP 429', 4000)).catch((e: unknown) => e)) as FetchError;
    expect(deps.slept).toEqual([4000, 4000]);
    expect(err.message).toMatch(/last error: HTTP 429$/);
  });
});
