#!/usr/bin/env node
/**
 * `config-service` command line: serve, injector, pki, encrypt, audit, validate. Only this file
 * touches `process` (exit codes, signals); each command's work lives in its module and is
 * imported when the command runs, so a small command does not load the server.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import type { AuditStore } from '../audit/index.js';
import { CFG_ERR_USAGE } from '../errors.js';
import { loadSettings } from '../settings/load.js';
import { registerAuditCommands } from './audit.js';
import { addAuditStoreOptions, auditStoreFromOptions, writeAuditQuery, type AuditStoreOptions } from './audit-store.js';
import { registerEncryptCommand } from './encrypt.js';
import { registerJwtCommand } from './jwt.js';
import { registerValidateCommand } from './validate.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

function buildProgram(): Command {
  const program = new Command('config-service')
    .description('Serves merged application configuration from Git over mutual TLS, with an audit log')
    .version(pkg.version)
    .exitOverride();

  program
    .command('serve')
    .description('Start the API (TLS) and management (HTTP) listeners')
    .option('-c, --config <file>', 'service settings file (YAML); every setting may also come from CONFIG_SERVICE_* variables')
    .action(async (opts: { config?: string }) => {
      const settings = loadSettings({ ...(opts.config && { file: opts.config }), env: process.env });
      const { default: closeWithGrace } = await import('close-with-grace');
      const { apiWorkers } = await import('../cluster/workers.js');
      const workers = apiWorkers(settings);
      if (workers.count > 1) {
        const { startCluster } = await import('../cluster/primary.js');
        const replica = await startCluster(settings, { workers: workers.count, env: process.env });
        closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
          if (err) replica.logger.error({ err }, 'shutting down after an error');
          else replica.logger.info({ signal }, 'shutting down');
          await replica.close();
        });
        return;
      }
      const { startService } = await import('../server.js');
      const service = await startService(settings, { env: process.env });
      if (workers.reason !== undefined) service.logger.warn({ setting: 'server.workers', workers: settings.server.workers }, workers.reason);
      closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
        if (err) service.logger.error({ err }, 'shutting down after an error');
        else service.logger.info({ signal }, 'shutting down');
        await service.close();
      });
    });

  program
    .command('injector')
    .description('Serve the Kubernetes mutating admission webhook that adds config-init to annotated pods (docs/injector.md)')
    .option('-c, --config <file>', 'injector settings file (YAML); every setting may also come from CONFIG_SERVICE_INJECTOR_* variables')
    .action(async (opts: { config?: string }) => {
      const [{ loadInjectorSettings, startInjector }, { default: closeWithGrace }] = await Promise.all([import('../injector/index.js'), import('close-with-grace')]);
      const settings = loadInjectorSettings({ ...(opts.config && { file: opts.config }), env: process.env });
      const injector = await startInjector(settings);
      closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
        if (err) injector.logger.error({ err }, 'shutting down after an error');
        else injector.logger.info({ signal }, 'shutting down');
        await injector.close();
      });
    });

  const pki = program.command('pki').description('Development PKI (production uses its own CA)');
  pki
    .command('init')
    .description('Create a development CA and a server certificate (ECDSA P-256)')
    .requiredOption('-d, --dir <dir>', 'output folder')
    .option('--server-name <name...>', 'DNS names / IPs of the server certificate', ['localhost', '127.0.0.1', '::1'])
    .option('--force', 'replace an existing CA', false)
    .action(async (opts: { dir: string; serverName: string[]; force: boolean }) => {
      const { initPki } = await import('../pki/files.js');
      const files = await initPki(opts.dir, { serverNames: opts.serverName, force: opts.force });
      process.stdout.write(`${Object.values(files).join('\n')}\n`);
    });
  pki
    .command('issue')
    .description("Issue a client certificate for an application (SPIFFE URI SAN, DNS SAN and CN)")
    .requiredOption('-d, --dir <dir>', 'folder holding ca.crt and ca.key; <app>.crt and <app>.key are written there')
    .requiredOption('-a, --app <app>', 'application name')
    .option('--trust-domain <domain>', 'SPIFFE trust domain', 'example.org')
    .option('--namespace <ns>', 'Kubernetes namespace in the SPIFFE ID', 'default')
    .option('--force', 'replace an existing certificate and key of this application', false)
    .option('--p12 <file>', 'also write a PKCS#12 keystore (key, certificate, CA; alias <app>) for JVM clients')
    .option('--p12-password-file <file>', `file holding the keystore password (default: the variable ${P12_PASSWORD_ENV})`)
    .action(async (opts: { dir: string; app: string; trustDomain: string; namespace: string; force: boolean; p12?: string; p12PasswordFile?: string }) => {
      let p12: { file: string; password: string } | undefined;
      if (opts.p12 !== undefined) {
        let password: string | undefined;
        if (opts.p12PasswordFile !== undefined) {
          try {
            password = readFileSync(opts.p12PasswordFile, 'utf8').replace(/\r?\n$/, '');
          } catch (err) {
            throw new CFG_ERR_USAGE(`--p12-password-file: cannot read ${opts.p12PasswordFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
          }
        } else password = process.env[P12_PASSWORD_ENV];
        if (!password) throw new CFG_ERR_USAGE(`--p12 needs a password: --p12-password-file <file>, or the variable ${P12_PASSWORD_ENV}`);
        p12 = { file: opts.p12, password };
      } else if (opts.p12PasswordFile !== undefined) throw new CFG_ERR_USAGE('--p12-password-file: only with --p12 <file>');
      const { issueClientFiles } = await import('../pki/files.js');
      const files = await issueClientFiles(opts.dir, opts.app, { trustDomain: opts.trustDomain, namespace: opts.namespace, force: opts.force, ...(p12 && { p12 }) });
      process.stdout.write(`${files.cert}\n${files.key}\n${files.p12 === undefined ? '' : `${files.p12}\n`}`);
    });

  const audit = program.command('audit').description('Audit log tools');
  addAuditStoreOptions(
    audit
      .command('verify')
      .description('Check the hash chain of the audit log, its counter, anchor and signed checkpoints, and name the first break')
      .option('--checkpoints <file...>', 'signed checkpoints kept outside the database (NDJSON: the log stream, a witness file, GET /v1/audit/checkpoints?format=ndjson)')
      .option('--public-key <file...>', 'Ed25519 public key(s) of the checkpoint signing keys (default: audit.checkpoints.keys of the settings)'),
  ).action(async (opts: AuditStoreOptions & { checkpoints?: string[]; publicKey?: string[] }) => {
    const { verifyCommand } = await import('./audit.js');
    // The checkpoint keys come from the settings when the store does too (no --sqlite/--postgres).
    const namesStore = opts.sqlite !== undefined || opts.postgres === true || opts.databaseUrl !== undefined || opts.databaseUrlEnv !== undefined;
    const store = await openAuditStore(opts);
    try {
      const settings = namesStore && opts.config === undefined ? undefined : loadSettings({ ...(opts.config && { file: opts.config }), env: process.env });
      const result = await verifyCommand(store, {
        ...(settings && { settings }),
        ...(opts.checkpoints && { checkpointFiles: opts.checkpoints }),
        ...(opts.publicKey && { publicKeyFiles: opts.publicKey }),
        env: process.env,
      });
      process.stdout.write(`${JSON.stringify(result)}\n`);
      if (!result.ok) process.exitCode = 1;
    } finally {
      await store.close();
    }
  });
  addAuditStoreOptions(
    audit
      .command('query')
      .description('Print audit events as NDJSON, newest first, page by page')
      .option('--app <app>')
      .option('--actor <subject>', "exact actor subject (a certificate's application or a JWT's sub)")
      .option('--action <action>', 'config.read, files.read, spring.environment, audit.read, ... (docs/api.md)')
      .addOption(new Option('--outcome <outcome>').choices(['allowed', 'denied', 'error']))
      .option('--since <instant>', 'from this time (inclusive): an RFC 3339 date-time, or a date (UTC midnight)')
      .option('--until <instant>', 'until this time (exclusive): an RFC 3339 date-time, or a date (UTC midnight)')
      .option('--commit <id>', 'full commit id')
      .option('--request-id <id>', 'the request id (Request-Id response header) of one request')
      .option('--limit <n>', 'at most this many events (default 100); the cursor of the rest is printed on stderr')
      .option('--all', 'every matching event (no limit)')
      .option('--cursor <cursor>', 'continue where an earlier run stopped (the cursor it printed)'),
  ).action(async (opts: AuditStoreOptions & { limit?: string; all?: boolean; cursor?: string } & Record<string, string | boolean | undefined>) => {
    const { parseInstant } = await import('../audit/query.js');
    const filters: Record<string, string> = {};
    for (const name of ['app', 'actor', 'action', 'outcome', 'commit', 'requestId'] as const) if (typeof opts[name] === 'string') filters[name] = opts[name];
    for (const name of ['since', 'until'] as const) {
      const value = opts[name];
      if (typeof value !== 'string') continue;
      try {
        filters[name] = parseInstant(value, `--${name}`);
      } catch (err) {
        throw new CFG_ERR_USAGE((err as Error).message.replace(/^Invalid request: /, ''));
      }
    }
    if (opts.all === true && opts.limit !== undefined) throw new CFG_ERR_USAGE('--all and --limit: give one');
    const limit = opts.all === true ? undefined : Number(opts.limit ?? '100');
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) throw new CFG_ERR_USAGE(`--limit: '${opts.limit}' is not an integer >= 1`);
    if (opts.cursor !== undefined) {
      const { decodeCursor } = await import('../audit/query.js');
      try {
        decodeCursor(opts.cursor);
      } catch {
        throw new CFG_ERR_USAGE('--cursor: not a cursor that audit query printed');
      }
    }
    const store = await openAuditStore(opts);
    try {
      const { formatAuditEvents } = await import('../audit/index.js');
      const out = {
        write: (text: string) => new Promise<void>((resolve) => (process.stdout.write(text) ? resolve() : process.stdout.once('drain', resolve))),
        note: (text: string) => process.stderr.write(`${text}\n`),
      };
      const result = await writeAuditQuery(store, filters, { ...(opts.cursor !== undefined && { cursor: opts.cursor }), ...(limit !== undefined && { limit }) }, out, (events) => formatAuditEvents(events, 'ndjson'));
      if (result.nextCursor !== undefined) out.note(`more events: run again with --cursor ${result.nextCursor} (or use --all)`);
    } finally {
      await store.close();
    }
  });
  registerAuditCommands(
    audit,
    () => {
      const stop = new AbortController();
      process.once('SIGTERM', () => stop.abort());
      process.once('SIGINT', () => stop.abort());
      return { stdout: process.stdout, stderr: process.stderr, signal: stop.signal };
    },
    (code) => {
      process.exitCode = code;
    },
  );
  registerJwtCommand(program);
  registerEncryptCommand(program);
  registerValidateCommand(program);
  return program;
}

/** The variable `pki issue --p12` reads the keystore password from, without `--p12-password-file`. */
const P12_PASSWORD_ENV = 'CONFIG_SERVICE_P12_PASSWORD';

/** Opens the audit store an `audit` command names (`cli/audit-store.ts`). */
async function openAuditStore(opts: AuditStoreOptions): Promise<AuditStore> {
  const settings = await auditStoreFromOptions(opts, () => loadSettings({ ...(opts.config && { file: opts.config }), env: process.env }), process.env);
  const { createAuditStore } = await import('../audit/index.js');
  return createAuditStore(settings);
}

/** Runs the CLI with `argv` (as in `process.argv`); sets `process.exitCode` on failure. */
export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 64;
      return;
    }
    const e = err as Error & { code?: string };
    // Node's errors already start with their code (`ENOENT: no such file ...`).
    const code = e.code !== undefined && !e.message.startsWith(e.code) ? `${e.code}: ` : '';
    process.stderr.write(`config-service: ${code}${e.message}\n`);
    process.exitCode = e.code === 'CFG_ERR_USAGE' ? 64 : 1;
  }
}

await main(process.argv);
