#!/usr/bin/env node
// The whole mission on the bundled sample, end to end:
//   examples/config-repo → a real Git repository → a development PKI → config-service over
//   mTLS → config-init publishing real files (allowed) and being refused (wrong certificate)
//   → the audit events of both → a clean stop.
// Run it with `pnpm demo` (it builds first). Everything lands in a fresh temporary folder,
// which is removed at the end (it holds the development CA's private key) unless
// `--keep` is given or DEMO_KEEP=1 is set. Colours only on a terminal, never with NO_COLOR.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, lstatSync, readlinkSync, rmSync, writeFileSync, openSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const serviceCli = path.join(root, 'packages/config-service/dist/cli/main.js');
const initCli = path.join(root, 'packages/config-init/dist/config-init.mjs');
const work = mkdtempSync(path.join(os.tmpdir(), 'config-service-demo-'));
const keep = process.argv.includes('--keep') || ['1', 'true', 'yes'].includes((process.env.DEMO_KEEP ?? '').toLowerCase());
// https://no-color.org: any non-empty NO_COLOR turns colours off; a pipe or a file gets none either.
const colour = process.stdout.isTTY === true && !process.env.NO_COLOR;
const bold = (text) => (colour ? `\x1b[1m${text}\x1b[0m` : text);
const step = (text) => process.stdout.write(`\n${bold(`==> ${text}`)}\n`);
const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.status !== 0 && !opts.allowFail) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${r.stderr}`);
  }
  return r;
};

let service;
try {
  step(`Work folder: ${work}`);

  step('Turning examples/config-repo into a real Git repository');
  const repo = path.join(work, 'config-repo');
  cpSync(path.join(root, 'examples/config-repo'), repo, { recursive: true });
  const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 'Demo', GIT_AUTHOR_EMAIL: 'demo@example.com', GIT_COMMITTER_NAME: 'Demo', GIT_COMMITTER_EMAIL: 'demo@example.com' };
  run('git', ['init', '-q', '-b', 'main', repo]);
  run('git', ['-C', repo, 'add', '-A'], { env: gitEnv });
  run('git', ['-C', repo, 'commit', '-q', '-m', 'Sample configuration'], { env: gitEnv });
  const commit = run('git', ['-C', repo, 'rev-parse', 'HEAD']).stdout.trim();
  process.stdout.write(`commit ${commit}\n`);

  step('Creating a development PKI (ECDSA P-256): CA, server certificate, client certificates for orders and payments');
  const pki = path.join(work, 'pki');
  run(process.execPath, [serviceCli, 'pki', 'init', '--dir', pki]);
  run(process.execPath, [serviceCli, 'pki', 'issue', '--dir', pki, '--app', 'orders']);
  run(process.execPath, [serviceCli, 'pki', 'issue', '--dir', pki, '--app', 'payments']);
  process.stdout.write(readdirSync(pki).sort().join('  ') + '\n');

  step('Starting config-service (API on TLS, management on plain HTTP)');
  const settingsFile = path.join(work, 'service.yml');
  writeFileSync(
    settingsFile,
    [
      'server:',
      '  host: 127.0.0.1',
      '  port: 0',
      '  tls: { cert: pki/server.crt, key: pki/server.key, clientCa: pki/ca.crt }',
      'management: { host: 127.0.0.1, port: 0 }',
      'dataDir: data',
      'repositories:',
      '  - name: config',
      `    path: ${JSON.stringify(repo)}`,
      '    branch: main',
      'log: { level: info }',
      '',
    ].join('\n'),
  );
  const logFile = path.join(work, 'service.log');
  const logFd = openSync(logFile, 'w');
  service = spawn(process.execPath, [serviceCli, 'serve', '--config', settingsFile], { stdio: ['ignore', logFd, logFd] });
  const { api, management } = await waitForListening(logFile, service);
  process.stdout.write(`API ${api}   management ${management}   (log: ${logFile})\n`);
  const ready = await (await fetch(`${management}/health/ready`)).json();
  process.stdout.write(`/health/ready → ${JSON.stringify(ready)}\n`);

  step('config-init for orders (profile prod) with the orders certificate: allowed');
  const out = path.join(work, 'orders-config');
  const ok = run(process.execPath, [initCli, 'fetch', '--server', api, '--app', 'orders', '--profile', 'prod', '--format', 'properties,json,env',
    '--cert', path.join(pki, 'orders.crt'), '--key', path.join(pki, 'orders.key'), '--ca', path.join(pki, 'ca.crt'), '--output-dir', out], { allowFail: true });
  process.stdout.write(ok.stderr);
  process.stdout.write(`exit code ${ok.status}\n`);
  if (ok.status !== 0) throw new Error('config-init failed for orders');
  for (const name of readdirSync(out).sort()) {
    const p = path.join(out, name);
    const st = lstatSync(p);
    const what = st.isSymbolicLink() ? ` -> ${readlinkSync(p)}` : st.isDirectory() ? '/' : '';
    process.stdout.write(`  ${name}${what}\n`);
  }
  for (const name of ['application.properties', '.config-meta.json']) {
    process.stdout.write(`\n--- ${name}\n${readFileSync(path.join(out, name), 'utf8')}`);
  }

  step('config-init for orders with the payments certificate: denied');
  const denied = run(process.execPath, [initCli, 'fetch', '--server', api, '--app', 'orders', '--profile', 'prod',
    '--cert', path.join(pki, 'payments.crt'), '--key', path.join(pki, 'payments.key'), '--ca', path.join(pki, 'ca.crt'), '--output-dir', path.join(work, 'stolen')], { allowFail: true });
  process.stdout.write(denied.stderr);
  process.stdout.write(`exit code ${denied.status} (77 = not authorized)\n`);
  if (denied.status !== 77) throw new Error('expected config-init to exit 77');

  step('Stopping config-service');
  service.kill('SIGTERM');
  await new Promise((resolve) => service.once('exit', resolve));
  service = undefined;

  step('The audit log: one event per request');
  const events = run(process.execPath, [serviceCli, 'audit', 'query', '--config', settingsFile]).stdout.trim().split('\n').map((l) => JSON.parse(l));
  for (const e of events.reverse()) {
    process.stdout.write(`${e.time}  ${e.outcome.padEnd(7)} ${String(e.status).padEnd(4)} ${e.action} app=${e.app} profiles=${e.profiles.join(',')} format=${e.format ?? '-'} actor=${e.actor.subject ?? e.actor.kind} commit=${(e.commit ?? '-').slice(0, 12)} reason=${e.reason ?? '-'}\n`);
  }
  const verify = run(process.execPath, [serviceCli, 'audit', 'verify', '--config', settingsFile]).stdout.trim();
  process.stdout.write(`audit verify → ${verify}\n`);

  step('Done');
  if (keep) {
    process.stdout.write(`Kept everything in ${work}\n(pki/ holds the development CA's private key: remove the folder when you are done: rm -rf ${work})\n`);
  } else {
    process.stdout.write(`Removed ${work} (it held the development CA's private key); run with --keep (or DEMO_KEEP=1) to keep it.\n`);
  }
  process.stdout.write(nextSteps());
} catch (err) {
  process.stderr.write(`\ndemo failed: ${err.message}\n`);
  if (keep) process.stderr.write(`The demo folder is kept for a look: ${work}\n`);
  process.exitCode = 1;
} finally {
  if (service) {
    service.kill('SIGTERM');
    await new Promise((resolve) => service.once('exit', resolve));
  }
  if (!keep) rmSync(work, { recursive: true, force: true });
}

/** What to run next, and where the documentation is (printed last). */
function nextSteps() {
  const cli = 'npx -y pnpm@10.34.9 --silent';
  return [
    '',
    bold('Next steps'),
    `  1. Your own configuration repository: lay it out as docs/repository-layout.md says, then check it:`,
    `       ${cli} config-service validate <your-config-repo>`,
    `  2. A service of your own on the sample repository, step by step: docs/running.md, "Try it locally"`,
    `     (a development PKI, examples/service.yml, serve, then curl, config-init and the audit log):`,
    `       ${cli} config-service pki init --dir pki`,
    `       ${cli} config-service pki issue --dir pki --app <your-app>`,
    `       ${cli} config-service serve --config service.yml`,
    `  3. Fetch an application's configuration as its pod would (docs/config-init.md):`,
    `       ${cli} config-init fetch --server https://localhost:8443 --app <your-app> --cert pki/<your-app>.crt --key pki/<your-app>.key --ca pki/ca.crt --output-dir ./config`,
    `  4. Read the audit log (docs/running.md, "Audit log"):`,
    `       ${cli} config-service audit query --sqlite data/audit.sqlite --limit 20`,
    '',
    '  Documentation: README.md (the table of every page), docs/running.md to run the service,',
    '  docs/configuration.md for merge rules, docs/security.md for identities, tokens and policy.',
    '',
  ].join('\n');
}

async function waitForListening(logFile, child) {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`config-service exited ${child.exitCode}:\n${readFileSync(logFile, 'utf8')}`);
    for (const line of readFileSync(logFile, 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      const rec = JSON.parse(line);
      if (rec.msg === 'config-service listening') return { api: rec.api, management: rec.management };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('config-service did not start within 30 s');
}
