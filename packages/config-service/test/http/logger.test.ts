/**
 * Log redaction (src/logger.ts), tested on the captured log stream as pino recommends.
 */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { describe, expect, it } from 'vitest';
import { loggerOptions, REDACTED, redactOptions } from '../../src/logger.js';

function capture(make: (sink: Writable) => Logger): { logger: Logger; lines: () => string[] } {
  const out: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      out.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  return { logger: make(sink), lines: () => out };
}

const SECRETS = ['Bearer eyJ.secret.token', 'hunter2-CANARY', 'tok-CANARY', 'db-pass-CANARY', 'plain-CANARY', 'cookie-CANARY', 'PRIVATE-CANARY'];

function logEverything(logger: Logger): void {
  logger.info({ req: { method: 'GET', url: '/v1/apps/orders/config', headers: { authorization: SECRETS[0], cookie: SECRETS[5], 'proxy-authorization': SECRETS[0] } } }, 'incoming');
  logger.info({ password: SECRETS[1], token: SECRETS[2] }, 'top level');
  logger.warn({ repo: { credentials: { password: SECRETS[1] } }, auth: { token: SECRETS[2] } }, 'nested');
  logger.error({ err: { data: { value: SECRETS[3] }, plaintext: SECRETS[4] } }, 'error with data');
  logger.debug({ key: { privateKey: SECRETS[6], keyPem: SECRETS[6] }, headers: { authorization: SECRETS[0] } }, 'keys');
  logger.info({ secret: { value: SECRETS[3] }, values: [SECRETS[3]], decrypted: SECRETS[4] }, 'values');
}

describe('redaction', () => {
  it('censors headers, credentials and values in every line of the default logger', () => {
    const { logger, lines } = capture((sink) => pino(loggerOptions('debug'), sink));
    logEverything(logger);
    const all = lines().join('\n');
    expect(lines()).toHaveLength(6);
    for (const s of SECRETS) expect(all).not.toContain(s);
    expect(all).toContain(REDACTED);
    // Harmless fields stay readable.
    expect(all).toContain('/v1/apps/orders/config');
  });

  it('applies to a child of an injected logger (what startService does)', () => {
    const { logger, lines } = capture((sink) => pino({ level: 'debug' }, sink).child({}, { redact: redactOptions() }));
    logEverything(logger);
    const all = lines().join('\n');
    for (const s of SECRETS) expect(all).not.toContain(s);
  });
});
