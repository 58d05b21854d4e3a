/**
 * Log redaction by construction (src/logger.ts: serializers), tested on the captured log
 * stream as pino recommends.
 */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { describe, expect, it } from 'vitest';
import { loggerOptions, logSerializers, REDACTED } from '../../src/logger.js';

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
  logger.error({ err: Object.assign(new Error('boom'), { code: 'E_X', data: { nested: { password: SECRETS[1] } }, cause: { token: SECRETS[2] } }) }, 'an Error');
}

describe('redaction', () => {
  it('leaves a line without credential-named keys as it was logged (no per-line scan)', () => {
    const { logger, lines } = capture((sink) => pino(loggerOptions('info'), sink));
    const audit = { requestId: 'r1', actor: { kind: 'certificate', subject: 'orders' }, profiles: ['prod'], secretKeys: ['db.password'] };
    logger.info({ audit, repo: 'config' }, 'audit event');
    expect(JSON.parse(lines()[0]!)).toMatchObject({ audit, repo: 'config', msg: 'audit event' });
  });

  it('censors headers, credentials and values in every line of the default logger', () => {
    const { logger, lines } = capture((sink) => pino(loggerOptions('debug'), sink));
    logEverything(logger);
    const all = lines().join('\n');
    expect(lines()).toHaveLength(7);
    for (const s of SECRETS) expect(all).not.toContain(s);
    expect(all).toContain(REDACTED);
    // Harmless fields stay readable.
    expect(all).toContain('/v1/apps/orders/config');
    const err = JSON.parse(lines()[6]!) as { err: Record<string, unknown> };
    expect(err.err).toMatchObject({ type: 'Error', message: 'boom', code: 'E_X', data: { nested: { password: REDACTED } }, cause: { token: REDACTED } });
  });

  it('applies to a child of an injected logger (what startService does)', () => {
    const { logger, lines } = capture((sink) => pino({ level: 'debug' }, sink).child({}, { serializers: logSerializers() }));
    logEverything(logger);
    const all = lines().join('\n');
    for (const s of SECRETS) expect(all).not.toContain(s);
  });
});
