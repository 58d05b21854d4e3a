/**
 * What a failed HTTPS attempt looked like on the wire, and the facts config-init decides
 * by: did the TLS handshake complete (`secureConnect`), did the server send a TLS alert,
 * was the socket a reused keep-alive one, had any HTTP answer arrived.
 *
 * What Node.js 20 (OpenSSL 3.0) reports to a client, measured against real servers on
 * this platform (the tests in `test/transport.test.ts` and `test/init-transport.e2e.test.ts`
 * hold each row):
 *
 * | What happened | TLS | `secureConnect` | What Node reports | config-init |
 * |---|---|---|---|---|
 * | nothing listens | any | no | `ECONNREFUSED` (`connect ECONNREFUSED …`) | retried |
 * | an L4 proxy accepts, then resets (backend down or restarting) | any | no | `ECONNRESET` (`connect ECONNRESET …` or `read ECONNRESET`) | retried |
 * | accepted, then closed (FIN) before the server's handshake | any | no | `ECONNRESET` "Client network socket disconnected before secure TLS connection was established" | retried |
 * | accepted, never answers | any | no | config-init's own `ETIMEDOUT` after `--timeout` | retried |
 * | the port speaks plain HTTP | any | no | `EPROTO` "write EPROTO …:wrong version number" | retried |
 * | our CA does not trust the server (unknown CA, wrong name, expired) | any | no | `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `SELF_SIGNED_CERT_IN_CHAIN`, `DEPTH_ZERO_SELF_SIGNED_CERT`, `CERT_HAS_EXPIRED`, `ERR_TLS_CERT_ALTNAME_INVALID`, … | 77 (`CFG_INIT_ERR_SERVER_UNTRUSTED`), not retried |
 * | a server that verifies inside the handshake (OpenSSL, BoringSSL, Go) rejects our certificate, TLS 1.2 | 1.2 | **no** (the alert replaces the server's Finished) | `EPROTO`, `syscall: 'write'`, message "write EPROTO …:tlsv1 alert unknown ca:…:SSL alert number 48" (no `ERR_SSL_*` code) | 77 (`CFG_INIT_ERR_NOT_AUTHORIZED`) |
 * | the same, TLS 1.3 (the client sends its certificate after its side of the handshake is done) | 1.3 | **yes** | on the first read: `ERR_SSL_TLSV1_ALERT_UNKNOWN_CA`, `reason: 'tlsv1 alert unknown ca'`, message "…SSL alert number 48" (`ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED` = 45, `ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE` = 42, `ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED` = 116, …) | 77 (`CFG_INIT_ERR_NOT_AUTHORIZED`) |
 * | a Node.js server with `rejectUnauthorized: true` rejects our certificate, TLS 1.2 | 1.2 | no | `ECONNRESET` "Client network socket disconnected before secure TLS connection was established": identical to a proxy that closes | retried |
 * | the same, TLS 1.3 | 1.3 | yes | `ECONNRESET` "socket hang up": no alert, no HTTP answer | retried; the final 69 message says the server may reject the certificate |
 * | a reused keep-alive socket that the server had closed | any | (earlier) | `ECONNRESET` "socket hang up", `req.reusedSocket === true` | retried |
 * | the answer is cut short | any | yes | `aborted` / incomplete body (config-init reports `ECONNRESET` "response truncated") | retried |
 * | HTTP 401 or 403 (config-service checks certificates at the HTTP layer) | any | yes | a response | 77 (`CFG_INIT_ERR_NOT_AUTHORIZED`) |
 *
 * So a reset, an EOF or a timeout says nothing about the certificate: an L4 load balancer
 * accepts the TCP connection itself and resets it when its backend is down, before any
 * TLS byte from the server. Only a TLS **certificate alert** proves that a TLS server
 * processed our Certificate message and refused it; with TLS 1.3 it arrives after
 * `secureConnect`, with TLS 1.2 in place of the server's Finished message (config-init
 * always presents its certificate, so a certificate alert can only be about it). A reset
 * after a completed TLS 1.3 handshake without an alert is ambiguous (a Node.js server
 * rejecting the certificate, or a backend dying mid-request) and is retried.
 *
 * Alert numbers: RFC 8446 §6.2 (TLS 1.3) and RFC 5246 §7.2 (TLS 1.2).
 */

/** A TLS alert the server sent. */
export interface TlsAlert {
  /** Alert description number (RFC 8446 §6.2), e.g. 48. */
  readonly number: number;
  /** Its RFC name, e.g. `unknown_ca`. */
  readonly name: string;
  /** Whether the alert says the server refused our certificate (see {@link CERTIFICATE_ALERTS}). */
  readonly certificate: boolean;
}

/** Alerts by number (RFC 8446 §6.2; `no_certificate` 41 is SSL 3 only and not listed). */
export const TLS_ALERT_NAMES: Readonly<Record<number, string>> = {
  0: 'close_notify',
  10: 'unexpected_message',
  20: 'bad_record_mac',
  22: 'record_overflow',
  40: 'handshake_failure',
  42: 'bad_certificate',
  43: 'unsupported_certificate',
  44: 'certificate_revoked',
  45: 'certificate_expired',
  46: 'certificate_unknown',
  47: 'illegal_parameter',
  48: 'unknown_ca',
  49: 'access_denied',
  50: 'decode_error',
  51: 'decrypt_error',
  70: 'protocol_version',
  71: 'insufficient_security',
  80: 'internal_error',
  86: 'inappropriate_fallback',
  90: 'user_canceled',
  109: 'missing_extension',
  110: 'unsupported_extension',
  112: 'unrecognized_name',
  113: 'bad_certificate_status_response',
  115: 'unknown_psk_identity',
  116: 'certificate_required',
  120: 'no_application_protocol',
};

/**
 * The alerts by which a server refuses the client certificate: `bad_certificate` (42),
 * `unsupported_certificate` (43), `certificate_revoked` (44), `certificate_expired` (45),
 * `certificate_unknown` (46), `unknown_ca` (48), `access_denied` (49) and
 * `certificate_required` (116, TLS 1.3). Any other alert (`handshake_failure`,
 * `protocol_version`, `internal_error`, …) is about the connection, not our identity.
 */
export const CERTIFICATE_ALERTS: ReadonlySet<number> = new Set([42, 43, 44, 45, 46, 48, 49, 116]);

/** OpenSSL 3 reason text (`err.reason`, and the `ERR_SSL_*` code) → alert number. */
const ALERT_BY_REASON: ReadonlyMap<string, number> = new Map(
  Object.entries(TLS_ALERT_NAMES).map(([n, name]) => [name.replace(/_/g, ' '), Number(n)]),
);

/** Reads an error's `code` when it is a string. */
export function errorCode(err: unknown): string | undefined {
  return err !== null && typeof err === 'object' && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/**
 * The TLS alert the server sent, read from a Node error: the `SSL alert number N` that
 * OpenSSL appends to the message (TLS 1.2 errors carry only `EPROTO` and this text), else
 * the `ERR_SSL_{SSLV3,TLSV1,TLSV13}_ALERT_*` code or the `reason` (TLS 1.3).
 *
 * @returns the alert, or `undefined` when the error is not a received alert.
 */
export function tlsAlertOf(err: unknown): TlsAlert | undefined {
  const message = err instanceof Error ? err.message : '';
  const fromMessage = /SSL alert number (\d{1,3})\b/.exec(message);
  let number: number | undefined = fromMessage ? Number(fromMessage[1]) : undefined;
  if (number === undefined) {
    const code = errorCode(err) ?? '';
    const m = /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13)_ALERT_([A-Z_]+)$/.exec(code);
    const reason = err !== null && typeof err === 'object' && 'reason' in err && typeof err.reason === 'string' ? err.reason : '';
    const r = /^(?:sslv3|tlsv1|tlsv13) alert (.+)$/.exec(reason);
    const text = m ? m[1]!.toLowerCase().replace(/_/g, ' ') : r ? r[1]! : undefined;
    if (text !== undefined) number = ALERT_BY_REASON.get(text) ?? -1;
  }
  if (number === undefined) return undefined;
  return { number, name: TLS_ALERT_NAMES[number] ?? 'unknown alert', certificate: CERTIFICATE_ALERTS.has(number) };
}

/** Server certificate verification failures (our `--ca` refuses the server): final, 77. */
export const SERVER_TRUST_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE', 'CERT_REVOKED', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'INVALID_CA',
  'INVALID_PURPOSE', 'ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH',
]);

/** A failed attempt as seen by the transport: the error and where the exchange had got to. */
export interface TransportFailure {
  /** The error Node reported (or config-init's own timeout / truncation error). */
  readonly error: unknown;
  /** The socket was a reused keep-alive one (its handshake was done by an earlier request). */
  readonly reused: boolean;
  /** `secureConnect` fired: our side of the TLS handshake completed on this socket. */
  readonly handshakeDone: boolean;
  /** Response headers had arrived (a later error is a truncated answer). */
  readonly answered: boolean;
  /** Negotiated protocol (`TLSv1.3`, `TLSv1.2`) when the handshake completed. */
  readonly protocol: string | undefined;
}

/**
 * Whether a failure is the ambiguous one: a fresh connection whose TLS handshake completed
 * and that the server then closed (reset, EOF, broken pipe) without a TLS alert and without
 * any HTTP answer. A Node.js server that rejects the client certificate under TLS 1.3
 * does exactly this; so does a backend that dies right after the handshake.
 */
export function closedSilentlyAfterHandshake(f: TransportFailure): boolean {
  const code = errorCode(f.error);
  return f.handshakeDone && !f.reused && !f.answered && tlsAlertOf(f.error) === undefined && (code === 'ECONNRESET' || code === 'EPIPE');
}
