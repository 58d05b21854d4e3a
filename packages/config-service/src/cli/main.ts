#!/usr/bin/env node
/**
 * `config-service` command line: serve, injector, pki, encrypt, audit, validate. Only this file
 * touches `process` (exit codes, signals); each command's work lives in its module and is
 * imported when the command runs, so a small command does not load the server.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { loadSettings } from '../settings/load.js';
import { registerEncryptCommand } from './encrypt.js';
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
    .description('Serve the Kubernetes mutating admission webhook that adds config-init to annotated pods (SPEC §7.1)')
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
    .requiredOption('-d, --dir <dir>', 'folder holding ca.crt and ca.key; the certificate is written there')
    .requiredOption('-a, --app <app>', 'application name')
    .option('--trust-domain <domain>', 'SPIFFE trust domain', 'example.org')
    .option('--namespace <ns>', 'Kubernetes namespace in the SPIFFE ID', 'default')
    .action(async (opts: { dir: string; app: string; trustDomain: string; namespace: string }) => {
      const { issueClientFiles } = await import('../pki/files.js');
      const files = await issueClientFiles(opts.dir, opts.app, { trustDomain: opts.trustDomain, namespace: opts.namespace });
      process.stdout.write(`${files.cert}\n${files.key}\n`);
    });

  const audit = program.command('audit').description('Audit log tools');
  audit
    .command('verify')
    .description('Check the hash chain of the audit log and name the first break')
    .option('-c, --config <file>', 'service settings file')
    .action(async (opts: { config?: string }) => {
      const settings = loadSettings({ ...(opts.config && { file: opts.config }), env: process.env });
      const { auditStoreSettings, createAuditStore } = await import('../audit/index.js');
      const store = await createAuditStore(auditStoreSettings(settings, process.env));
      try {
        const result = await store.verify();
        process.stdout.write(`${JSON.stringify(result)}\n`);
        if (!result.ok) process.exitCode = 1;
      } finally {
        await store.close();
      }
    });
  audit
    .command('query')
    .description('Print audit events as NDJSON, newest first')
    .option('-c, --config <file>', 'service settings file')
    .option('--app <app>')
    .option('--actor <subject>')
    .option('--action <action>')
    .option('--outcome <outcome>', 'allowed | denied | error')
    .option('--since <iso>', 'from this time (inclusive)')
    .option('--until <iso>', 'until this time (exclusive)')
    .option('--commit <id>')
    .option('--limit <n>', 'at most this many events', '100')
    .action(async (opts: { config?: string; limit: string } & Record<string, string | undefined>) => {
      const settings = loadSettings({ ...(opts.config && { file: opts.config }), env: process.env });
      const { auditStoreSettings, createAuditStore, formatAuditEvents } = await import('../audit/index.js');
      const store = await createAuditStore(auditStoreSettings(settings, process.env));
      try {
        const { config: _c, limit, ...filters } = opts;
        const page = await store.query({ ...filters, limit: Number(limit) });
        process.stdout.write(formatAuditEvents(page.events, 'ndjson'));
      } finally {
        await store.close();
      }
    });
  registerEncryptCommand(program);
  registerValidateCommand(program);
  return program;
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
    process.stderr.write(`config-service: ${e.code ? `${e.code}: ` : ''}${e.message}\n`);
    process.exitCode = 1;
  }
}

await main(process.argv);
