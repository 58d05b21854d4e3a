/**
 * Starts the real config-service in this process on ephemeral ports with real TLS, and
 * captures every log line it writes (to assert that no secret reaches the log).
 */
import { appendFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { loadSettings, startService, type RunningService } from 'config-service';
import type { TestPki } from './certs.ts';

export interface TestService extends RunningService {
  /** Every log line written so far, raw. */
  logs: string[];
  dataDir: string;
  auditPath: string;
}

export interface TestServiceOptions {
  pki: TestPki;
  /** Repository settings (name defaults to `config`). */
  repository: Record<string, unknown>;
  /** More settings merged over the defaults. */
  settings?: Record<string, unknown>;
  /** Settings merged into `server` (and `server.tls`), e.g. `{ rateLimit: { max: 0 }, tls: { crl: [file] } }`. */
  server?: Record<string, unknown> & { tls?: Record<string, unknown> };
  env?: NodeJS.ProcessEnv;
  dataDir?: string;
  logLevel?: string;
}

let started = 0;

/** Starts config-service with a settings object built like a user's service.yml. */
export async function startTestService(opts: TestServiceOptions): Promise<TestService> {
  const dataDir = opts.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'cfgsvc-data-'));
  const logs: string[] = [];
  // global-setup.ts searches these files for planted secrets after the last test file.
  const logFile = process.env.E2E_SERVICE_LOG_DIR ? path.join(process.env.E2E_SERVICE_LOG_DIR, `${process.pid}-${++started}.log`) : undefined;
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(line);
      if (logFile) appendFileSync(logFile, chunk);
      cb();
    },
  });
  const settings = loadSettings({
    env: opts.env ?? {},
    overrides: {
      server: {
        host: '127.0.0.1',
        port: 0,
        ...opts.server,
        tls: { cert: opts.pki.serverCertFile, key: opts.pki.serverKeyFile, clientCa: opts.pki.caFile, ...opts.server?.tls },
      },
      management: { host: '127.0.0.1', port: 0 },
      dataDir,
      repositories: [{ name: 'config', ...opts.repository }],
      log: { level: opts.logLevel ?? 'debug' },
      ...opts.settings,
    },
  });
  const logger = pino({ level: settings.log.level }, sink);
  const service = await startService(settings, { logger, env: opts.env ?? {} });
  return { ...service, logs, dataDir, auditPath: settings.audit.sqlitePath! };
}
